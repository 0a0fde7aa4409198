// Child process for native/native.test.ts. Started as
//   ip netns exec <ns> node --expose-gc native/native.child.mjs <scenario>
// inside a namespace the test created, so every interface and packet here stays in that
// namespace. Runs one scenario against the real kernel and prints one JSON line of
// observations on stdout; the test makes the assertions.
import { createRequire } from 'node:module';
import { execFileSync, spawn } from 'node:child_process';
import { executionAsyncId } from 'node:async_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const ADDON = new URL('../build/Release/tapmesh_native.node', import.meta.url).pathname;
const n = require(ADDON);

const LO = 0x7f000001;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd, ...args) => execFileSync(cmd, args, { encoding: 'utf8' });
const errInfo = (e) => ({ name: e.name, code: e.code, syscall: e.syscall, errno: e.errno, message: e.message });

async function until(pred, ms = 3000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

function attempt(fn) {
  try {
    return { ok: fn() };
  } catch (e) {
    return { err: errInfo(e) };
  }
}

// Pattern payload: byte j of datagram i is (i*7 + j) & 255.
function fillPattern(buf, off, len, i) {
  for (let j = 0; j < len; j++) buf[off + j] = (i * 7 + j) & 255;
}
function checkPattern(buf, off, len, i) {
  for (let j = 0; j < len; j++) if (buf[off + j] !== ((i * 7 + j) & 255)) return false;
  return true;
}
const untouched = (buf, from, to, byte) => buf.subarray(from, to).every((b) => b === byte);

// ---------------------------------------------------------------------------------------
// Ethernet / ARP / IPv4 / ICMP helpers (test-only)

const mac = (s) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
const ip4 = (s) => Buffer.from(s.split('.').map(Number));

function csum(buf, off, len) {
  let s = 0;
  for (let i = 0; i < len - 1; i += 2) s += buf.readUInt16BE(off + i);
  if (len & 1) s += buf[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function arpReply(req, peerMac, peerIp) {
  const f = Buffer.alloc(42);
  req.copy(f, 0, 6, 12); // to the requester
  peerMac.copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16); // IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(2, 20); // reply
  peerMac.copy(f, 22);
  peerIp.copy(f, 28);
  req.copy(f, 32, 22, 32); // target = requester's sha + spa
  return f;
}

function icmpEchoReply(req, peerMac) {
  const f = Buffer.from(req);
  req.copy(f, 0, 6, 12);
  peerMac.copy(f, 6);
  req.copy(f, 26, 30, 34); // swap IPs (header checksum is unchanged by a swap)
  req.copy(f, 30, 26, 30);
  const ihl = (f[14] & 15) * 4;
  const icmp = 14 + ihl;
  const icmpLen = f.readUInt16BE(16) - ihl;
  f[icmp] = 0; // echo reply
  f.writeUInt16BE(0, icmp + 2);
  f.writeUInt16BE(csum(f, icmp, icmpLen), icmp + 2);
  return f;
}

function icmpEchoRequest(dstMac, srcMac, src, dst, id, seq) {
  const f = Buffer.alloc(14 + 20 + 8 + 16);
  dstMac.copy(f, 0);
  srcMac.copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(20 + 8 + 16, 16);
  f.writeUInt16BE(seq, 18);
  f[22] = 64;
  f[23] = 1;
  src.copy(f, 26);
  dst.copy(f, 30);
  f.writeUInt16BE(csum(f, 14, 20), 24);
  f[34] = 8;
  f.writeUInt16BE(id, 38);
  f.writeUInt16BE(seq, 40);
  f.fill(0x5a, 42);
  f.writeUInt16BE(csum(f, 34, 24), 36);
  return f;
}

// ---------------------------------------------------------------------------------------
// Scenarios

const scenarios = {
  // TAP: kernel -> readFrames (ARP, ICMP, UDP), writeFrames -> kernel (ARP/ICMP replies),
  // batching, skip-on-error, vnet header.
  async tap() {
    const out = {};
    sh('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    sh('ip', 'link', 'set', 'lo', 'up');
    const t = n.tapOpen('tmt%d', false);
    out.tap = t;
    out.busy = attempt(() => n.tapOpen(t.name, false));
    const tapMac = mac(readFileSync(`/sys/class/net/${t.name}/address`, 'utf8').trim());
    const peerMac = mac('02:00:00:00:00:02');
    const [tapIp, peerIp] = [ip4('10.77.0.1'), ip4('10.77.0.2')];
    sh('ip', 'addr', 'add', '10.77.0.1/24', 'dev', t.name);
    sh('ip', 'link', 'set', t.name, 'up');

    const SLOT = 2048, HEAD = 64, MAX = 32;
    const slab = Buffer.alloc(SLOT * MAX, 0xaa);
    const lens = new Int32Array(MAX);
    const outBuf = Buffer.alloc(SLOT * MAX);
    const offs = new Int32Array(MAX), olens = new Int32Array(MAX);

    // 1. Responder: answer the kernel's ARP requests and echo requests for 10.77.0.2.
    out.responder = { arp: [], icmp: 0, wakeups: 0, headroomIntact: true, written: 0 };
    const r = out.responder;
    const h = n.pollReadable(t.fd, () => {
      r.wakeups++;
      const c = n.readFrames(t.fd, slab, SLOT, HEAD, MAX, lens);
      let k = 0, at = 0;
      for (let i = 0; i < c; i++) {
        const base = i * SLOT;
        if (!untouched(slab, base, base + HEAD, 0xaa)) r.headroomIntact = false;
        const f = slab.subarray(base + HEAD, base + HEAD + lens[i]);
        let reply = null;
        if (f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 1 && f.subarray(38, 42).equals(peerIp)) {
          r.arp.push({ len: lens[i], broadcast: f.subarray(0, 6).equals(mac('ff:ff:ff:ff:ff:ff')),
            srcIsTap: f.subarray(6, 12).equals(tapMac), spa: [...f.subarray(28, 32)].join('.') });
          reply = arpReply(f, peerMac, peerIp);
        } else if (f.readUInt16BE(12) === 0x0800 && f[23] === 1 && f[14 + (f[14] & 15) * 4] === 8) {
          r.icmp++;
          reply = icmpEchoReply(f, peerMac);
        }
        if (reply) {
          reply.copy(outBuf, at);
          offs[k] = at;
          olens[k++] = reply.length;
          at += reply.length;
        }
      }
      if (k > 0) r.written += n.writeFrames(t.fd, outBuf, offs, olens, 0, k);
    });
    const ping = spawn('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '10.77.0.2'], { stdio: 'ignore' });
    out.pingExit = await new Promise((res) => ping.on('exit', (code) => res(code)));
    out.neigh = sh('ip', 'neigh', 'show', '10.77.0.2', 'dev', t.name).trim();
    h.close();

    // 2. Batch read: 5 UDP datagrams routed to the TAP arrive as 5 frames, in order.
    const u = n.udpOpen(0, 0, 0, 0);
    const sizes = [1, 100, 500, 1000, 1472];
    const ub = Buffer.alloc(8192);
    const uo = new Int32Array(5), ul = new Int32Array(5);
    const ua = new Uint32Array(5).fill(0x0a4d0002), up = new Uint16Array(5).fill(9999);
    let at = 0;
    sizes.forEach((s, i) => { fillPattern(ub, at, s, i); uo[i] = at; ul[i] = s; at += s; });
    out.udpSent = n.udpSend(u.fd, ub, uo, ul, ua, up, 0, 5);
    await sleep(100);
    slab.fill(0xaa);
    const first = n.readFrames(t.fd, slab, SLOT, HEAD, 3, lens);
    const firstLens = Array.from(lens.subarray(0, first));
    const firstOk = sizes.slice(0, first).map((s, i) => checkPattern(slab, i * SLOT + HEAD + 42, s, i));
    const headOk = [0, 1, 2].every((i) => untouched(slab, i * SLOT, i * SLOT + HEAD, 0xaa));
    const rest = n.readFrames(t.fd, slab, SLOT, HEAD, MAX, lens);
    const restLens = Array.from(lens.subarray(0, rest));
    const restOk = sizes.slice(3).map((s, i) => checkPattern(slab, i * SLOT + HEAD + 42, s, i + 3));
    out.batchRead = { first, firstLens, firstOk, headOk, rest, restLens, restOk, empty: n.readFrames(t.fd, slab, SLOT, HEAD, MAX, lens) };
    n.close(u.fd);

    // 3. writeFrames: [echo req seq 1, empty frame (EINVAL), echo req seq 2] -> the kernel
    // answers the two valid ones; the bad one is skipped and reported in lens.
    const e1 = icmpEchoRequest(tapMac, peerMac, peerIp, tapIp, 0x1234, 1);
    const e2 = icmpEchoRequest(tapMac, peerMac, peerIp, tapIp, 0x1234, 2);
    const wb = Buffer.concat([e1, e2]);
    const wo = new Int32Array([0, 0, e1.length]), wl = new Int32Array([e1.length, 0, e2.length]);
    out.write = { ret: n.writeFrames(t.fd, wb, wo, wl, 0, 3), lens: Array.from(wl) };
    await sleep(100);
    const c = n.readFrames(t.fd, slab, SLOT, HEAD, MAX, lens);
    out.write.replies = [];
    for (let i = 0; i < c; i++) {
      const f = slab.subarray(i * SLOT + HEAD, i * SLOT + HEAD + lens[i]);
      if (f.readUInt16BE(12) === 0x0800 && f[23] === 1 && f[34] === 0)
        out.write.replies.push({ id: f.readUInt16BE(38), seq: f.readUInt16BE(40), toPeer: f.subarray(0, 6).equals(peerMac) });
    }

    // 4. Interface down: the kernel refuses injected frames (frame skipped, errno in lens).
    sh('ip', 'link', 'set', t.name, 'down');
    const dl = new Int32Array([e1.length]);
    out.writeDown = { ret: n.writeFrames(t.fd, e1, new Int32Array([0]), dl, 0, 1), lens: Array.from(dl) };
    n.close(t.fd);

    // 5. vnet header mode: every frame is prefixed with a virtio_net_hdr.
    const v = n.tapOpen('tmv0', true);
    n.tapSetVnetHdrSize(v.fd, 12);
    n.tapSetOffload(v.fd, 0x01 /* TUN_F_CSUM */);
    out.badOffload = attempt(() => n.tapSetOffload(v.fd, 0x8000));
    sh('ip', 'addr', 'add', '10.79.0.1/24', 'dev', 'tmv0');
    sh('ip', 'link', 'set', 'tmv0', 'up');
    sh('ip', 'neigh', 'add', '10.79.0.2', 'lladdr', '02:00:00:00:00:03', 'dev', 'tmv0');
    const u2 = n.udpOpen(0, 0, 0, 0);
    n.udpSend(u2.fd, ub, new Int32Array([0]), new Int32Array([100]), new Uint32Array([0x0a4f0002]), new Uint16Array([9]), 0, 1);
    await sleep(100);
    const vc = n.readFrames(v.fd, slab, SLOT, HEAD, MAX, lens);
    out.vnet = { count: vc, len: lens[0], flags: slab[HEAD], ethertype: slab.readUInt16BE(HEAD + 12 + 12) };
    n.close(u2.fd);
    n.close(v.fd);
    return out;
  },

  // UDP batches over loopback: addresses, ports, lengths, truncation, skip-on-error,
  // >1024 chunking, error codes.
  async udp() {
    sh('ip', 'link', 'set', 'lo', 'up');
    const out = {};
    const a = n.udpOpen(LO, 0, 1 << 20, 1 << 20);
    const b = n.udpOpen(LO, 0, 8 << 20, 0);
    out.a = a;
    out.b = b;
    const SLOT = 256, HEAD = 16, MAX = 8;
    const slab = Buffer.alloc(SLOT * MAX, 0xaa);
    const lens = new Int32Array(MAX), addrs = new Uint32Array(MAX), ports = new Uint16Array(MAX);
    out.emptyRecv = n.udpRecv(b.fd, slab, SLOT, HEAD, MAX, lens, addrs, ports);

    const sizes = [10, 100, 240, 241, 1000];
    const buf = Buffer.alloc(4096);
    const offs = new Int32Array(8), ls = new Int32Array(8), ad = new Uint32Array(8).fill(LO), po = new Uint16Array(8).fill(b.port);
    let at = 0;
    sizes.forEach((s, i) => { fillPattern(buf, at, s, i); offs[i] = at; ls[i] = s; at += s; });
    out.sent = n.udpSend(a.fd, buf, offs, ls, ad, po, 0, 5);
    const got = n.udpRecv(b.fd, slab, SLOT, HEAD, MAX, lens, addrs, ports);
    out.recv = {
      got, lens: Array.from(lens.subarray(0, got)), addrs: Array.from(addrs.subarray(0, got)),
      ports: Array.from(ports.subarray(0, got)),
      data: sizes.slice(0, got).map((s, i) => checkPattern(slab, i * SLOT + HEAD, Math.min(s, SLOT - HEAD), i)),
      headroom: sizes.slice(0, got).every((_, i) => untouched(slab, i * SLOT, i * SLOT + HEAD, 0xaa)),
    };

    // max is honoured, the rest stays queued.
    out.sent2 = n.udpSend(a.fd, buf, offs, ls, ad, po, 0, 3);
    out.maxOne = n.udpRecv(b.fd, slab, SLOT, HEAD, 1, lens, addrs, ports);
    out.maxRest = n.udpRecv(b.fd, slab, SLOT, HEAD, MAX, lens, addrs, ports);

    // A datagram to port 0 fails (EINVAL): skipped and reported in lens, the others go out.
    po[1] = 0;
    ls.set([20, 20, 30]);
    out.skip = { ret: n.udpSend(a.fd, buf, offs, ls, ad, po, 0, 3), lens: Array.from(ls.subarray(0, 3)) };
    const g = n.udpRecv(b.fd, slab, SLOT, HEAD, MAX, lens, addrs, ports);
    out.skip.received = Array.from(lens.subarray(0, g));

    // One call, 1500 datagrams: more than UIO_MAXIOV (1024) both ways.
    const N = 1500;
    const big = Buffer.alloc(N * 4);
    const bo = new Int32Array(N), bl = new Int32Array(N).fill(4), ba = new Uint32Array(N).fill(LO), bp = new Uint16Array(N).fill(b.port);
    for (let i = 0; i < N; i++) { big.writeUInt32BE(i, i * 4); bo[i] = i * 4; }
    out.bigSent = n.udpSend(a.fd, big, bo, bl, ba, bp, 0, N);
    const bslab = Buffer.alloc(N * 64);
    const bL = new Int32Array(N), bA = new Uint32Array(N), bP = new Uint16Array(N);
    const bg = n.udpRecv(b.fd, bslab, 64, 0, N, bL, bA, bP);
    let inOrder = true;
    for (let i = 0; i < bg; i++) if (bslab.readUInt32BE(i * 64) !== i || bL[i] !== 4) inOrder = false;
    out.big = { got: bg, inOrder };

    // Errors carry code/syscall/errno.
    const d = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise((res) => d.bind(0, '127.0.0.1', res));
    out.inUse = attempt(() => n.udpOpen(LO, d.address().port, 0, 0));
    d.close();
    out.notAvail = attempt(() => n.udpOpen(0x0a010203, 0, 0, 0));
    out.fixedPort = attempt(() => { const s = n.udpOpen(LO, 40123, 0, 0); n.close(s.fd); return s.port; });
    n.close(a.fd);
    n.close(b.fd);
    out.closedRecv = attempt(() => n.udpRecv(b.fd, slab, SLOT, HEAD, MAX, lens, addrs, ports));
    out.closedSend = attempt(() => n.udpSend(b.fd, buf, offs, ls, ad, po, 0, 1));
    return out;
  },

  // pollReadable: wakeups, callback scope (microtasks, async id), close() inside the
  // callback, exceptions, EEXIST, handle churn + GC.
  async poll() {
    sh('ip', 'link', 'set', 'lo', 'up');
    const out = {};
    const a = n.udpOpen(LO, 0, 0, 0), b = n.udpOpen(LO, 0, 0, 0);
    const slab = Buffer.alloc(8 * 2048);
    const lens = new Int32Array(8), addrs = new Uint32Array(8), ports = new Uint16Array(8);
    const one = Buffer.from('x');
    const send = (port) => n.udpSend(a.fd, one, new Int32Array([0]), new Int32Array([1]), new Uint32Array([LO]), new Uint16Array([port]), 0, 1);
    const drain = (fd) => n.udpRecv(fd, slab, 2048, 0, 8, lens, addrs, ports);

    let calls = 0, micro = false;
    out.asyncIds = [];
    const h = n.pollReadable(b.fd, () => {
      calls++;
      drain(b.fd);
      out.asyncIds.push(executionAsyncId());
      if (calls === 1) {
        queueMicrotask(() => { micro = true; });
        setImmediate(() => { out.microtaskBeforeImmediate = micro; });
      }
      if (calls === 2) {
        h.close();
        h.close(); // idempotent, still inside the callback
      }
    });
    send(b.port);
    await until(() => calls === 1);
    send(b.port);
    await until(() => calls === 2);
    send(b.port);
    await sleep(150);
    out.callsAfterClose = calls;
    h.close();

    // Level-triggered: a callback that leaves data queued is called again.
    let partial = 0;
    const h2 = n.pollReadable(b.fd, () => {
      partial++;
      n.udpRecv(b.fd, slab, 2048, 0, 1, lens, addrs, ports);
    });
    drain(b.fd);
    for (let i = 0; i < 3; i++) send(b.port);
    await until(() => partial >= 3);
    await sleep(50);
    out.levelTriggeredCalls = partial;
    h2.close();

    // A throwing callback surfaces as 'uncaughtException' on this thread.
    const caught = new Promise((res) => process.once('uncaughtException', (e) => res(e.message)));
    const h3 = n.pollReadable(b.fd, () => { drain(b.fd); throw new Error('boom from poll cb'); });
    send(b.port);
    out.uncaught = await Promise.race([caught, sleep(2000).then(() => 'timeout')]);
    h3.close();

    // One poll per fd and loop (libuv).
    const h4 = n.pollReadable(b.fd, () => drain(b.fd));
    out.twice = attempt(() => n.pollReadable(b.fd, () => {}));
    h4.close();

    // Churn: many handles opened/closed, then GC collects their close() functions.
    for (let i = 0; i < 2000; i++) n.pollReadable(i & 1 ? a.fd : b.fd, () => {}).close();
    await sleep(20);
    globalThis.gc?.();
    await sleep(20);
    globalThis.gc?.();
    // Polling keeps working afterwards.
    let after = 0;
    const h5 = n.pollReadable(b.fd, () => { after++; drain(b.fd); });
    send(b.port);
    await until(() => after > 0);
    out.afterChurn = after;
    h5.close();
    n.close(a.fd);
    n.close(b.fd);
    return out;
  },

  // worker_threads: the addon in several threads at once, and teardown of a worker that
  // still has an active poll (terminate() and process.exit() inside the worker).
  async worker() {
    sh('ip', 'link', 'set', 'lo', 'up');
    const run = (mode) => new Promise((resolve) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { mode } });
      const msgs = [];
      w.on('message', (m) => {
        msgs.push(m);
        if (m === 'ready' && mode.startsWith('terminate')) w.terminate();
      });
      w.on('error', (e) => msgs.push({ error: e.message }));
      w.on('exit', (code) => resolve({ code, msgs }));
    });
    const [w1, w2, w3] = await Promise.all([run('echo'), run('echo'), run('echo')]);
    const term = await run('terminate');
    const exit = await run('exit');
    // terminate() while a raw poll callback fires on every loop turn: the call into JS fails
    // mid-teardown and must be dropped, not turned into a throw (which aborts the process).
    const termBusy = [];
    for (let i = 0; i < 5; i++) termBusy.push(await run('terminate-busy'));
    // The main thread still works after all that.
    const main = await workerEcho();
    return { w1, w2, w3, term, exit, termBusy, main };
  },

  // GSO / GRO over loopback, plus GSO through a TAP without checksum offload.
  async gso() {
    sh('ip', 'link', 'set', 'lo', 'up');
    const out = {};
    const a = n.udpOpen(LO, 0, 4 << 20, 4 << 20);
    const plain = n.udpOpen(LO, 0, 8 << 20, 0);
    const gro = n.udpOpen(LO, 0, 8 << 20, 0);
    n.udpSetGro(gro.fd, true);
    const buf = Buffer.alloc(70000);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 13) & 255;
    const SLOT = 65536 + 64, HEAD = 64, MAX = 16;
    const slab = Buffer.alloc(SLOT * MAX);
    const lens = new Int32Array(MAX), addrs = new Uint32Array(MAX), ports = new Uint16Array(MAX), segs = new Uint16Array(MAX);
    const recv = (fd, slot = SLOT, head = HEAD) => {
      const c = n.udpRecv(fd, slab, slot, head, MAX, lens, addrs, ports, segs);
      return { c, lens: Array.from(lens.subarray(0, c)), segs: Array.from(segs.subarray(0, c)) };
    };

    // 9500 bytes, 1000-byte segments: a plain socket sees 10 datagrams, a GRO socket one.
    out.sendPlain = n.udpSendGso(a.fd, buf, 0, 9500, LO, plain.port, 1000);
    out.plain = recv(plain.fd);
    out.plain.dataOk = out.plain.lens.every((l, i) => slab.subarray(i * SLOT + HEAD, i * SLOT + HEAD + l).equals(buf.subarray(i * 1000, i * 1000 + l)));
    out.plain.from = [addrs[0], ports[0]];
    out.sendGro = n.udpSendGso(a.fd, buf, 0, 9500, LO, gro.port, 1000);
    out.gro = recv(gro.fd);
    out.gro.dataOk = slab.subarray(HEAD, HEAD + 9500).equals(buf.subarray(0, 9500));
    // segs stays 0 for ordinary datagrams on a GRO socket.
    n.udpSend(a.fd, buf, new Int32Array([0]), new Int32Array([700]), new Uint32Array([LO]), new Uint16Array([gro.port]), 0, 1);
    out.groSingle = recv(gro.fd);
    // A coalesced datagram larger than the slot is reported truncated.
    n.udpSendGso(a.fd, buf, 0, 9500, LO, gro.port, 1000);
    out.groSmallSlot = recv(gro.fd, 4096, 0);

    // Batch: [4000/1000 -> plain, 3000 no GSO -> plain, 600/100 -> gro, 2000/500 -> port 0].
    const bo = new Int32Array([0, 5000, 9000, 0]), bl = new Int32Array([4000, 3000, 600, 2000]);
    const bs = new Uint16Array([1000, 0, 100, 500]);
    const ba = new Uint32Array(4).fill(LO), bp = new Uint16Array([plain.port, plain.port, gro.port, 0]);
    out.batch = { ret: n.udpSendGsoBatch(a.fd, buf, bo, bl, ba, bp, bs, 0, 4), lens: Array.from(bl) };
    out.batch.plain = recv(plain.fd);
    out.batch.gro = recv(gro.fd);

    // Kernel limits surface as errors with codes.
    out.tooManySegs = attempt(() => n.udpSendGso(a.fd, buf, 0, 200 * 300, LO, plain.port, 300));
    out.tooBig = attempt(() => n.udpSendGso(a.fd, buf, 0, 65508, LO, plain.port, 1400));
    while (recv(plain.fd).c > 0);

    // GSO out of a device without checksum offload (a fresh TAP): older kernels say EIO,
    // newer ones (6.11+) checksum in software and segment.
    const t = n.tapOpen('tmg0', false);
    sh('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    sh('ip', 'addr', 'add', '10.78.0.1/24', 'dev', 'tmg0');
    sh('ip', 'link', 'set', 'tmg0', 'up');
    sh('ip', 'neigh', 'add', '10.78.0.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'tmg0');
    const u = n.udpOpen(0, 0, 0, 0);
    out.viaTap = attempt(() => n.udpSendGso(u.fd, buf, 0, 4000, 0x0a4e0002, 9999, 1000));
    await sleep(50);
    const tl = new Int32Array(16);
    const tc = n.readFrames(t.fd, slab, 2048, 0, 16, tl);
    out.viaTapFrames = Array.from(tl.subarray(0, tc));
    sh('ip', 'link', 'set', 'tmg0', 'mtu', '1200');
    out.segOverMtu = attempt(() => n.udpSendGso(u.fd, buf, 0, 4000, 0x0a4e0002, 9999, 1400));
    for (const s of [a, plain, gro, u]) n.close(s.fd);
    n.close(t.fd);
    return out;
  },
};

// UDP echo through pollReadable; used by workers and by the main thread.
async function workerEcho() {
  const a = n.udpOpen(LO, 0, 0, 0), b = n.udpOpen(LO, 0, 0, 0);
  const N = 10;
  const buf = Buffer.alloc(N * 100);
  const offs = new Int32Array(N), lens = new Int32Array(N), addrs = new Uint32Array(N).fill(LO), ports = new Uint16Array(N).fill(b.port);
  for (let i = 0; i < N; i++) { offs[i] = i * 100; lens[i] = 50 + i; fillPattern(buf, i * 100, 50 + i, i); }
  const slab = Buffer.alloc(N * 256);
  const rl = new Int32Array(N), ra = new Uint32Array(N), rp = new Uint16Array(N);
  let got = 0, ok = true;
  const h = n.pollReadable(b.fd, () => {
    const c = n.udpRecv(b.fd, slab, 256, 0, N, rl, ra, rp);
    for (let i = 0; i < c; i++) {
      const k = got + i;
      if (rl[i] !== 50 + k || rp[i] !== a.port || !checkPattern(slab, i * 256, rl[i], k)) ok = false;
    }
    got += c;
  });
  const sent = n.udpSend(a.fd, buf, offs, lens, addrs, ports, 0, N);
  await until(() => got >= N);
  h.close();
  n.close(a.fd);
  n.close(b.fd);
  return { sent, got, ok };
}

async function workerMain({ mode }) {
  if (mode === 'echo') {
    parentPort.postMessage(await workerEcho());
    return;
  }
  // Leave a poll active, then die: the addon's cleanup hook must close it.
  const s = n.udpOpen(LO, 0, 0, 0);
  if (mode === 'terminate-busy') {
    // A datagram never read keeps the fd readable: the callback runs on every loop turn.
    n.udpSend(s.fd, Buffer.alloc(8), new Int32Array([0]), new Int32Array([8]), new Uint32Array([LO]), new Uint16Array([s.port]), 0, 1);
    n.pollReadable(s.fd, () => {}, true);
  } else n.pollReadable(s.fd, () => {});
  if (mode === 'exit') setTimeout(() => process.exit(0), 20);
  parentPort.postMessage('ready');
}

if (!isMainThread) {
  await workerMain(workerData);
} else {
  const name = process.argv[2];
  try {
    const result = await scenarios[name]();
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  } catch (e) {
    process.stdout.write(JSON.stringify({ crash: errInfo(e), stack: e.stack }) + '\n');
    process.exit(1);
  }
}
