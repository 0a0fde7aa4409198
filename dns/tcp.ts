// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message is preceded by its 2-byte length;
// a connection carries any number of queries, answered as they complete (possibly out of
// order, as RFC 7766 §6.2.1.1 allows), and is closed after an idle period.
import type net from 'node:net';

/** The message with its 2-byte length prefix. */
export function frame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  out.set(msg, 2);
  return out;
}

/**
 * Calls onMessage for every complete framed message read from sock. A zero length is a
 * framing error: onBad runs and nothing more is read. Buffers at most one message (<= 65535).
 */
export function readFrames(sock: net.Socket, maxLen: number, onMessage: (msg: Buffer) => void, onBad: () => void): void {
  let buf: Buffer = Buffer.alloc(0);
  let dead = false;
  sock.on('data', (chunk: Buffer) => {
    if (dead) return;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (len === 0 || len > maxLen) {
        dead = true;
        onBad();
        return;
      }
      if (buf.length < 2 + len) break;
      const msg = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      onMessage(msg);
      if (dead || sock.destroyed) return;
    }
  });
}

export interface TcpServeOptions {
  idleMs: number;
  maxConnections: number;
}

/**
 * Serves DNS on every connection of `server`: handle(query, reply) answers one message
 * (reply may be called later, or never for a dropped message).
 */
export function serveTcp(server: net.Server, o: TcpServeOptions, handle: (query: Buffer, reply: (msg: Buffer) => void) => void): void {
  let open = 0;
  server.on('connection', (sock) => {
    if (open >= o.maxConnections) {
      sock.destroy();
      return;
    }
    open++;
    sock.on('close', () => open--);
    sock.on('error', () => sock.destroy());
    // Idle: no bytes either way for idleMs (a pending forward keeps it open only that long).
    sock.setTimeout(o.idleMs, () => sock.destroy());
    sock.setNoDelay(true);
    readFrames(sock, 65535, (q) => {
      handle(q, (msg) => {
        if (!sock.destroyed && msg.length <= 65535) sock.write(frame(msg));
      });
    }, () => sock.destroy());
  });
}
