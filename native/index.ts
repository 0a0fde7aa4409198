// Thin typed wrapper over the N-API addon (build/Release/tapmesh_native.node).
// The addon only does syscalls Node lacks; every protocol decision lives in TypeScript.
//
// Conventions shared by every batched call:
// - A "slab" is one preallocated Buffer cut into fixed slots of `slotSize` bytes. Frame i is
//   read to slab[i*slotSize + headroom ..]; the headroom is left free for encapsulation
//   headers written in place later.
// - IPv4 addresses are unsigned 32-bit numbers in host order (10.0.0.1 = 0x0a000001).
// - Per-frame results go into caller-owned typed arrays; nothing is allocated per frame.
// - Errors throw an Error whose `code` is the errno name (e.g. 'EPERM') and `syscall` the call.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PollHandle {
  /** Stop watching and release the libuv handle. Idempotent. */
  close(): void;
}

export interface TapInfo {
  fd: number;
  /** Interface name the kernel gave (may differ from the requested pattern, e.g. "tap%d"). */
  name: string;
}

export interface UdpInfo {
  fd: number;
  /** Bound local port (useful when 0 was requested). */
  port: number;
}

export interface NativeAddon {
  /** open /dev/net/tun, TUNSETIFF with IFF_TAP|IFF_NO_PI (|IFF_VNET_HDR when vnetHdr), O_NONBLOCK. */
  tapOpen(name: string, vnetHdr: boolean): TapInfo;
  /** TUNSETOFFLOAD with TUN_F_* flags (only meaningful with vnetHdr). */
  tapSetOffload(fd: number, flags: number): void;
  /** TUNSETVNETHDRSZ. */
  tapSetVnetHdrSize(fd: number, size: number): void;
  /**
   * read() frames until EAGAIN or `max` frames. Frame i lands at i*slotSize+headroom, its
   * length in lens[i]. Returns the number of frames read (0 when nothing was pending).
   */
  readFrames(fd: number, slab: Buffer, slotSize: number, headroom: number, max: number, lens: Int32Array): number;
  /**
   * write() frames buf[offs[i] .. offs[i]+lens[i]) for i in [start, start+count). Stops at EAGAIN;
   * a frame failing with any other errno is skipped. Returns how many frames the kernel accepted.
   */
  writeFrames(fd: number, buf: Buffer, offs: Int32Array, lens: Int32Array, start: number, count: number): number;
  /** socket(AF_INET, SOCK_DGRAM), SO_REUSEADDR, buffers, IP_PMTUDISC_DONT, bind(addr, port), O_NONBLOCK. */
  udpOpen(addr: number, port: number, rcvbuf: number, sndbuf: number): UdpInfo;
  /**
   * recvmmsg up to `max` datagrams into slots like readFrames. lens[i] = length, or -1 when the
   * datagram was truncated (MSG_TRUNC); addrs[i]/ports[i] = sender. Returns the count (0 on EAGAIN).
   */
  udpRecv(fd: number, slab: Buffer, slotSize: number, headroom: number, max: number,
    lens: Int32Array, addrs: Uint32Array, ports: Uint16Array): number;
  /**
   * sendmmsg datagrams buf[offs[i]..+lens[i]) to (addrs[i], ports[i]) for i in [start, start+count).
   * Stops at EAGAIN; skips a datagram failing with another errno. Returns how many were sent.
   */
  udpSend(fd: number, buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array,
    start: number, count: number): number;
  /** uv_poll the fd for readability on the calling thread's loop; cb runs once per wakeup. */
  pollReadable(fd: number, cb: () => void): PollHandle;
  close(fd: number): void;
}

const require = createRequire(import.meta.url);

function locate(): string {
  // Works from the TypeScript sources (native/) and from the build (dist/native/).
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.resolve(here, '../build/Release/tapmesh_native.node'),
    path.resolve(here, '../../build/Release/tapmesh_native.node'),
  ];
  for (const c of candidates) {
    try {
      require.resolve(c);
      return c;
    } catch {
      /* try next */
    }
  }
  throw new Error('tapmesh native addon not built: run `npm ci` (it runs node-gyp rebuild)');
}

let cached: NativeAddon | undefined;
export function native(): NativeAddon {
  if (!cached) cached = require(locate()) as NativeAddon;
  return cached;
}

/** Dotted quad to host-order u32. Control path only. */
export function ipv4ToNum(s: string): number {
  const p = s.split('.');
  if (p.length !== 4) throw new Error(`invalid IPv4 address: ${s}`);
  let n = 0;
  for (const x of p) {
    if (!/^\d{1,3}$/.test(x)) throw new Error(`invalid IPv4 address: ${s}`);
    const v = Number(x);
    if (v > 255) throw new Error(`invalid IPv4 address: ${s}`);
    n = n * 256 + v;
  }
  return n >>> 0;
}

export function numToIpv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
