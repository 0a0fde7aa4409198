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
  /** Stop watching and release the libuv handle. Idempotent; safe to call from inside the callback. */
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
  /** Effective SO_RCVBUF / SO_SNDBUF as reported by the kernel (twice the requested size on Linux). */
  rcvbuf: number;
  sndbuf: number;
}

/** TUN_F_* flags for tapSetOffload (linux/if_tun.h). */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08, UFO: 0x10, USO4: 0x20, USO6: 0x40 } as const;

/**
 * Batch semantics shared by writeFrames, udpSend and udpSendGsoBatch ("send batches"):
 * - The return value n is how many entries of [start, start+count) were consumed: sent, or
 *   skipped because the kernel refused that one entry. n < count only when the kernel said
 *   EAGAIN at entry start+n (nothing after it was attempted): resume there when writable.
 * - A skipped entry i gets lens[i] overwritten with -errno (e.g. -22 EINVAL, -5 EIO,
 *   -90 EMSGSIZE); scan lens[start..start+n) for negatives to count drops / detect EIO.
 * - Errors about the descriptor itself (EBADF, ENOTSOCK, EFAULT) throw instead.
 * - Batches larger than 1024 (UIO_MAXIOV) are split into several syscalls internally.
 *
 * Receive calls (readFrames, udpRecv) return 0 on EAGAIN; they throw an errno error only when
 * nothing was received yet (a persistent error shows up again on the next call).
 *
 * Thread-safety: every call is synchronous and uses per-thread scratch memory; the addon can
 * be loaded in any number of worker_threads. A descriptor may be used from several threads,
 * but the caller owns the ordering.
 */
export interface NativeAddon {
  /**
   * open /dev/net/tun (O_RDWR|O_NONBLOCK|O_CLOEXEC), TUNSETIFF with IFF_TAP|IFF_NO_PI
   * (|IFF_VNET_HDR when vnetHdr). name: at most 15 bytes, "" or a "%d" pattern lets the kernel
   * pick. Attaching a second fd to a TAP that is already open fails with EBUSY (no multiqueue).
   * The interface is created down; configure it with ip(8)/netlink.
   */
  tapOpen(name: string, vnetHdr: boolean): TapInfo;
  /** TUNSETOFFLOAD with TUN_F_* flags (only meaningful with vnetHdr). Unknown flags: EINVAL. */
  tapSetOffload(fd: number, flags: number): void;
  /** TUNSETVNETHDRSZ (10, or 12 for virtio_net_hdr_mrg_rxbuf). The default is 10. */
  tapSetVnetHdrSize(fd: number, size: number): void;
  /**
   * read() frames until EAGAIN or `max` frames. Frame i lands at i*slotSize+headroom, its
   * length in lens[i]. Returns the number of frames read (0 when nothing was pending).
   * Requires headroom < slotSize, slotSize*max <= slab.length, lens.length >= max.
   * A TAP truncates silently a frame longer than slotSize-headroom (the rest is lost), so keep
   * slotSize-headroom > the largest frame (MTU + 14 + 4 VLAN + vnet header): a length equal to
   * slotSize-headroom then means "truncated". With vnetHdr the frame starts with the
   * virtio_net_hdr.
   */
  readFrames(fd: number, slab: Buffer, slotSize: number, headroom: number, max: number, lens: Int32Array): number;
  /**
   * write() frames buf[offs[i] .. offs[i]+lens[i]) for i in [start, start+count) ("send batch"
   * semantics above). A TAP never says EAGAIN in practice; while the link is down every frame
   * fails with EIO (lens[i] = -5); an empty or runt frame fails with EINVAL.
   */
  writeFrames(fd: number, buf: Buffer, offs: Int32Array, lens: Int32Array, start: number, count: number): number;
  /**
   * socket(AF_INET, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC), SO_REUSEADDR, buffers
   * (SO_RCVBUFFORCE/SO_SNDBUFFORCE, falling back to SO_RCVBUF/SO_SNDBUF; 0 = kernel default),
   * IP_MTU_DISCOVER=IP_PMTUDISC_DONT (never DF: oversize datagrams are fragmented),
   * bind(addr, port) with addr 0 = INADDR_ANY and port 0 = ephemeral.
   */
  udpOpen(addr: number, port: number, rcvbuf: number, sndbuf: number): UdpInfo;
  /** setsockopt(SOL_UDP, UDP_GRO): receive runs of equal-size datagrams coalesced (see udpRecv segs). */
  udpSetGro(fd: number, on: boolean): void;
  /**
   * recvmmsg(MSG_DONTWAIT) up to `max` datagrams into slots like readFrames. lens[i] = length, or
   * -1 when the datagram did not fit in slotSize-headroom (MSG_TRUNC; its data is lost);
   * addrs[i]/ports[i] = sender. Returns the count (0 on EAGAIN).
   * segs (optional, length >= max): segs[i] = the UDP_GRO segment size when slot i holds several
   * coalesced datagrams (only on a udpSetGro socket), else 0. Slot i then holds
   * ceil(lens[i]/segs[i]) datagrams of segs[i] bytes each, the last possibly shorter, all from
   * addrs[i]:ports[i]. A coalesced datagram can be up to 65535 bytes, so GRO sockets need
   * slotSize >= 65535 + headroom or they see lens[i] = -1.
   */
  udpRecv(fd: number, slab: Buffer, slotSize: number, headroom: number, max: number,
    lens: Int32Array, addrs: Uint32Array, ports: Uint16Array, segs?: Uint16Array): number;
  /**
   * sendmmsg datagrams buf[offs[i]..+lens[i]) to (addrs[i], ports[i]) for i in [start, start+count)
   * ("send batch" semantics above; e.g. port 0 is EINVAL for that datagram only).
   */
  udpSend(fd: number, buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array,
    start: number, count: number): number;
  /**
   * One sendmsg with a UDP_SEGMENT cmsg: buf[off..off+len) holds back-to-back datagrams of segSize
   * bytes (the last may be shorter), all to addr:port; the kernel (or NIC) splits them.
   * segSize 0 = plain sendmsg. Returns bytes sent, or -1 on EAGAIN. Throws (code):
   * EINVAL more than UDP_MAX_SEGMENTS segments (128 on 6.18, 64 on older kernels);
   * EMSGSIZE len > 65507 or segSize + 28 > egress MTU;
   * EIO no checksum offload on the egress device (kernels < 6.11) or an IPsec route: fall back
   * to plain udpSend for that destination.
   */
  udpSendGso(fd: number, buf: Buffer, off: number, len: number, addr: number, port: number, segSize: number): number;
  /**
   * sendmmsg where message i carries a UDP_SEGMENT cmsg of segs[i] (0 = plain datagram): the batched
   * udpSendGso, with "send batch" semantics — per-message GSO failures are not thrown but reported
   * as lens[i] = -errno (-5 EIO -> fall back to plain sends for that destination).
   */
  udpSendGsoBatch(fd: number, buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array,
    ports: Uint16Array, segs: Uint16Array, start: number, count: number): number;
  /**
   * uv_poll the fd for readability on the calling thread's loop; cb runs once per loop iteration
   * while the fd is readable (level-triggered: drain until EAGAIN or expect another call). cb
   * runs in a proper callback scope (async_hooks, microtasks and nextTicks drain after it); an
   * exception thrown by cb goes to 'uncaughtException' of that thread. An active poll keeps the
   * loop alive until close() (worker/thread teardown closes it automatically). One poll per fd
   * per thread (EEXIST otherwise). close() the poll before closing the fd.
   */
  /**
   * raw: call cb plainly (no async context, no microtask/nextTick checkpoint after it): a few
   * microseconds less per wake-up, for callbacks that start no promises (the datapath).
   */
  pollReadable(fd: number, cb: () => void, raw?: boolean): PollHandle;
  /** close(2). EINTR counts as closed. */
  /**
   * Busy polling: keep the calling thread's event loop from sleeping for at least `usec` more
   * microseconds (0 stops). While awake, libuv polls with timeout 0, so readiness is noticed
   * without waking a sleeping thread. Never keeps the loop alive by itself.
   */
  keepAwake(usec: number): void;
  /**
   * A socket created inside the network namespace at nsPath (/run/netns/NAME, /proc/PID/ns/net):
   * opens the file, setns(CLONE_NEWNET) on the calling thread, socket(AF_INET|AF_INET6,
   * SOCK_DGRAM|SOCK_STREAM, SOCK_NONBLOCK|SOCK_CLOEXEC), setns back to the thread's own namespace
   * (if that last step failed the process aborts: carrying on in the wrong namespace would leak
   * across networks). The socket stays in that namespace for life; bind, connect and IO work from
   * any thread. Throws (code): ENOENT no such file, EINVAL not a netns file, EPERM not root.
   */
  socketInNetns(nsPath: string, family: 4 | 6, type: 'udp' | 'tcp'): number;
  /**
   * `count` (1..256) sockets as socketInNetns makes them, for one setns into the namespace and
   * one back (a pool of connection sockets). All or none: on failure none stays open.
   */
  socketsInNetns(nsPath: string, family: 4 | 6, type: 'udp' | 'tcp', count: number): Int32Array;
  /**
   * bind(fd, addr:port) for a socket from socketInNetns; addr is numeric and of the socket's
   * family. TCP sockets get SO_REUSEADDR first (rebind over TIME_WAIT); UDP ones do not.
   * Returns the bound port (the kernel's pick when port is 0). Throws EADDRINUSE, EADDRNOTAVAIL...
   */
  socketBind(fd: number, addr: string, port: number): number;
  close(fd: number): void;

  // ---- the routing mesh's TCP relay (native/relay.cc) ----
  //
  // Listeners and spliced connections on one epoll set: watch relayFd with pollReadable and call
  // relayRun when it is readable. Which task, retries and counters are the caller's.

  relayCreate(): RelayHandle;
  relayFd(relay: RelayHandle): number;
  /**
   * A TCP listener (SO_REUSEADDR, TCP_NODELAY for what it accepts; IPv6 ones IPv6-only). `addrs`:
   * ACCEPT events carry the client's addresses (one syscall more each). Returns its id. Throws
   * EADDRINUSE...
   */
  relayListen(relay: RelayHandle, addr: string, port: number, backlog: number, addrs: boolean): number;
  /** Closes a listener; connections it accepted live on. */
  relayUnlisten(relay: RelayHandle, id: number): void;
  /**
   * Connects accepted connection `id` to addr:port on `fd` (a TCP socket made in the right
   * namespace; -1: a new one in this namespace), writing `header` to it first. The relay owns fd
   * from here. False if the connection is gone (fd closed). Failure arrives as CONNECT_FAILED.
   */
  relayConnect(relay: RelayHandle, id: number, fd: number, addr: string, port: number, timeoutMs: number, header?: Uint8Array): boolean;
  /** RST to both ends of connection `id`; [bytes client → backend, backend → client], or null if unknown. No CLOSED event follows. */
  relayReset(relay: RelayHandle, id: number): [number, number] | null;
  /** Does what is ready (accepts, connects, bytes) and returns what the caller must hear about. */
  relayRun(relay: RelayHandle): RelayEvent[];
  /** Connections held (accepted, not yet closed). */
  relayCount(relay: RelayHandle): number;
  /** Closes every listener and connection. */
  relayDestroy(relay: RelayHandle): void;

  // ---- batched AES-GCM (native/aead.cc), over the OpenSSL Node carries ----
  //
  // Record layout, one per packet, in place at buf[offs[i] .. offs[i]+lens[i]) (lens[i] >= 32):
  //   [0, 8) AAD in clear (ESP: SPI || seq) | [8, 16) explicit IV in clear |
  //   [16, len-16) plaintext <-> ciphertext (may be empty) | [len-16, len) 16-byte tag.
  // Nonce = the SA's 4-byte salt || the 8 IV bytes (RFC 4106 §4); the caller must never repeat an
  // IV under one key. `sa` is either one handle for the whole batch or an Int32Array of
  // per-packet handles indexed like offs/lens (a batch may mix peers). Handles belong to the
  // thread (worker) that created them. Nothing is allocated per packet.

  /**
   * New SA: key 16 bytes (AES-128-GCM) or 32 (AES-256-GCM), salt 4 bytes. One EVP context per
   * direction, key schedule set once. Returns a positive int32 handle. RangeError on bad sizes.
   */
  aeadCreate(key: Uint8Array, salt: Uint8Array): number;
  /** Frees the SA's contexts (key material cleansed). False when the handle was not live. */
  aeadDestroy(handle: number): boolean;
  /** Live SAs on this thread (leak checks). */
  aeadCount(): number;
  /**
   * Seals records [start, start+count) in place: encrypts [16, len-16) and writes the tag in
   * [len-16, len). All handles and lengths are checked first; a bad one throws (TypeError for an
   * unknown handle, RangeError for a record under 32 bytes or outside buf) and nothing is sealed.
   * Returns count.
   */
  aeadSeal(buf: Uint8Array, offs: Int32Array, lens: Int32Array, sa: number | Int32Array, start: number, count: number): number;
  /**
   * Opens records [start, start+count) in place and verifies each tag; never throws for a packet.
   * status[i] = AEAD_OPEN.OK (plaintext now at [16, len-16)), AUTH_FAIL (tag mismatch: that
   * region is zeroed, drop the packet), MALFORMED (len < 32) or NO_SA (handle not live); records
   * not OK other than AUTH_FAIL are left untouched.
   * status.length >= start+count. Returns how many opened OK.
   */
  aeadOpen(buf: Uint8Array, offs: Int32Array, lens: Int32Array, sa: number | Int32Array, start: number, count: number,
    status: Uint8Array): number;
  /** The runtime OpenSSL (`openssl`), the headers compiled against, and whether the self-check passed. */
  aeadInfo(): { openssl: string; headers: string; ok: boolean; error?: string };

  // ---- internet checksums (native/checksum.cc), RFC 1071 ----

  /**
   * Folded one's-complement sum (0..0xffff) of buf[off, off+len) as big-endian 16-bit words
   * (an odd last byte zero-padded) plus seed (an integer in [0, 2^53)): router/wire/checksum.ts's
   * onesSum, 32 bytes per iteration. RangeError if the range is outside buf.
   */
  csumSum(buf: Uint8Array, off: number, len: number, seed: number): number;
  /**
   * Many sums in one crossing: for i < count, s = sum(buf[offs[i], +lens[i])) + seeds[i].
   * fieldAt >= 0: the 16-bit field at offs[i]+fieldAt is zeroed, then ~s stored there big-endian
   * (fill a TCP checksum: fieldAt 16, seed the pseudo-header sum). fieldAt <= -2: the same at
   * -2-fieldAt, storing 0xffff for 0 (UDP). fieldAt -1: seeds[i] = s (verify: 0xffff is correct).
   * Every range is checked first (RangeError, nothing touched). Returns count.
   */
  csumBatch(buf: Uint8Array, offs: Int32Array, lens: Int32Array, seeds: Uint32Array, count: number, fieldAt: number): number;

  // ---- batched copies (native/copy.cc) ----

  /**
   * For i < count, in order: buf[dst[i], +lens[i]) = buf[src[i], +lens[i]) (memmove). Every
   * range is checked first (RangeError, nothing moved). Returns count.
   */
  copyBatch(buf: Uint8Array, src: Int32Array, dst: Int32Array, lens: Int32Array, count: number): number;
}

/** An opaque relay (native/relay.cc); freed with its descriptors on relayDestroy or collection. */
export type RelayHandle = { readonly __relay: unique symbol };

/** relayRun's events, by kind (the first element). */
export const RELAY = { ACCEPT: 1, CONNECTED: 2, CONNECT_FAILED: 3, CLOSED: 4 } as const;
export type RelayEvent =
  /** The addresses only from listeners made with `addrs`. */
  | [kind: 1, id: number, listener: number, remoteAddr?: string, remotePort?: number, localAddr?: string, localPort?: number]
  | [kind: 2, id: number]
  /** errno (positive): ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT (past timeoutMs)... */
  | [kind: 3, id: number, errno: number]
  /** Both ends closed: bytes client → backend, backend → client, and whether it ended in a reset. */
  | [kind: 4, id: number, up: number, down: number, reset: boolean];

/** Per-packet status codes of aeadOpen. */
export const AEAD_OPEN = { OK: 0, AUTH_FAIL: 1, MALFORMED: 2, NO_SA: 3 } as const;
/** Record layout constants of aeadSeal/aeadOpen (see NativeAddon). */
export const AEAD_AAD_LEN = 8;
export const AEAD_IV_LEN = 8;
export const AEAD_TAG_LEN = 16;
export const AEAD_SALT_LEN = 4;
export const AEAD_MIN_RECORD = AEAD_AAD_LEN + AEAD_IV_LEN + AEAD_TAG_LEN;

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
