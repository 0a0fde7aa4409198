// router/wire: per-protocol codecs over (buffer, offset, length).
//
// Each protocol module offers two layers:
// - hot-path views: plain functions reading/writing fields in place (no allocation, no bounds
//   checks) guarded by checkX(buf, off, len), which returns 0 or a WireError reason code;
// - checked representation: parseX -> plain object (throws only WireParseError), emitX(repr,
//   buf, off) -> bytes written (throws RangeError on a bad repr or too small a buffer).
export * from './error.js';
export * from './checksum.js';
export * from './bytes.js';
export * from './addr.js';
export * from './ethernet.js';
export * from './arp.js';
export * from './ipv4.js';
export * from './udp.js';
export * from './vxlan.js';
export * from './esp.js';
export * from './icmp.js';
export * from './tcp.js';
export * from './flow.js';
export * from './partial.js';
export * from './virtio.js';
