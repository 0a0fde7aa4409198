// Resetting a flow whose task vanished (its host died, it was removed, its service deleted):
// one RST to each end, with the sequence number that end expects, so the client's socket fails
// at once instead of hanging on a blackholed connection. Sequence numbers come from the last
// ACK each end sent through the table (its RCV.NXT): an RST with exactly that seq is accepted
// (RFC 5961 §3.2); if data was in flight the end answers with a challenge ACK, which then
// misses the table and gets the reactive RST (writeTcpRstReply, seq = SEG.ACK).
import { writeTcpRst } from '../router/wire/reject.js';
import { CtProto, type ConnTable } from './conntrack.js';

/**
 * RST toward the client of TCP entry e, as if from the VIP. Returns the frame length written at
 * out[off], or 0 (not TCP, or no room). vipMac: the network's VIP MAC; clientMac: the client.
 */
export function writeResetToClient(ct: ConnTable, e: number, vipMac: number, clientMac: number, out: Uint8Array, off: number): number {
  if (ct.proto[e] !== CtProto.Tcp) return 0;
  return writeTcpRst(out, off, clientMac, vipMac, ct.vip[e] >>> 0, ct.clientIp[e] >>> 0, ct.vipPort[e], ct.clientPort[e],
    ct.clientAck[e], 0, false);
}

/**
 * RST toward the backend of TCP entry e, from the address the backend knows as its peer (the
 * client, or VIP:port for a hairpin flow). srcMac: the client's MAC, or the VIP MAC for hairpin.
 */
export function writeResetToBackend(ct: ConnTable, e: number, srcMac: number, out: Uint8Array, off: number): number {
  if (ct.proto[e] !== CtProto.Tcp) return 0;
  const backendMac = (ct.backendMacHi[e] & 0xffff) * 0x100000000 + (ct.backendMacLo[e] >>> 0);
  return writeTcpRst(out, off, backendMac, srcMac, ct.replyIp[e] >>> 0, ct.backendIp[e] >>> 0, ct.replyPort[e],
    ct.backendPort[e], ct.backendAck[e], 0, false);
}
