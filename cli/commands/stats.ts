// `tapmesh stats`: packet, byte and drop counters of the datapath and the gossip layer.
import { DaemonError, request, type Ctx } from '../client.js';
import { FORMAT_OPTION, humanBytes, jsonLines, outputFormat, table } from '../format.js';
import { command } from '../table.js';

type StatsReply = {
  gossip: { members: Record<string, number>; dropped: Record<string, number>; suspectEvents: number; health: number };
  drops: Record<string, number>;
  dns?: Record<string, number>;
  esp?: { counters: Record<string, number>; sas: { SPI: string; Direction: string; Peer: string; PeerName: string; AgeSeconds: number; Packets: number; Current: boolean }[] };
  /** Routing-mesh counters per service id (balancer/mesh-config.ts ServiceCounters). */
  mesh?: Record<string, unknown>;
  networks: { Name: string; Id: string; VNI: number; counters: Record<string, number>; drops: Record<string, number> }[];
};

const stats = command({
  name: 'stats', usage: '[NETWORK]', summary: 'Packet, byte and drop counters',
  options: { format: FORMAT_OPTION },
  async run(ctx: Ctx, o, [ref]) {
    const format = outputFormat(o.format);
    const s = (await request(ctx.socket, 'GET', '/v1/stats')) as StatsReply;
    let nets = s.networks;
    if (ref !== undefined) {
      nets = nets.filter((n) => n.Name === ref || n.Id.startsWith(ref));
      if (nets.length === 0) throw new DaemonError(`network ${ref} not found`, 404);
    }
    const sum = (d: Record<string, number>) => Object.values(d).reduce((a, b) => a + b, 0);
    if (format === 'json') {
      const lines: unknown[] = nets.map((n) => ({ Network: n.Name, ID: n.Id, VNI: n.VNI, ...n.counters, Drops: n.drops, ...('vips' in n ? { Vips: n.vips } : {}) }));
      if (ref === undefined) lines.push({ Network: '', ID: '', VNI: 0, Drops: s.drops, Gossip: s.gossip, Esp: s.esp, Mesh: s.mesh ?? {}, ...(s.dns ? { DNS: s.dns } : {}) });
      return ctx.out(jsonLines(lines));
    }
    ctx.out(table(['NETWORK', 'VNI', 'TX PKTS', 'TX BYTES', 'RX PKTS', 'RX BYTES', 'ARP REPLIED', 'DROPS'], nets.map((n) => [
      n.Name, String(n.VNI), String(n.counters.vxlanTxPackets ?? 0), humanBytes(n.counters.vxlanTxBytes ?? 0),
      String(n.counters.vxlanRxPackets ?? 0), humanBytes(n.counters.vxlanRxBytes ?? 0), String(n.counters.arpReplied ?? 0), String(sum(n.drops)),
    ])));
    const reasons: string[][] = [];
    for (const n of nets) for (const [k, v] of Object.entries(n.drops)) if (v > 0) reasons.push([n.Name, k, String(v)]);
    if (ref === undefined) for (const [k, v] of Object.entries(s.drops)) if (v > 0) reasons.push(['(before network lookup)', k, String(v)]);
    if (reasons.length) ctx.out(`\n${table(['NETWORK', 'DROP REASON', 'COUNT'], reasons)}`);
    if (ref === undefined && s.esp && (s.esp.sas.length > 0 || Object.values(s.esp.counters).some((v) => v > 0))) {
      ctx.out(`\nesp: ${Object.entries(s.esp.counters).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
      const rows = s.esp.sas.map((a) => [a.PeerName || a.Peer, a.Peer, a.Direction, a.SPI, `${a.AgeSeconds}s`, String(a.Packets), a.Current ? 'current' : 'retiring']);
      if (rows.length) ctx.out(`\n${table(['PEER', 'VTEP', 'DIR', 'SPI', 'AGE', 'PACKETS', 'STATE'], rows)}`);
    }
    if (ref === undefined) {
      const g = s.gossip;
      const dropped = Object.entries(g.dropped).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
      if (s.dns) ctx.out(`\n${dnsLine(s.dns)}`);
      ctx.out(`\ngossip: ${g.members.alive ?? 0} ready, ${g.members.suspect ?? 0} suspect, ${g.members.dead ?? 0} down; health ${g.health}; suspect events ${g.suspectEvents}; dropped: ${dropped}\n`);
    }
  },
});

/** The embedded DNS counters in one line (names as in dns/config.ts DnsCounters). */
export function dnsLine(d: Record<string, number>): string {
  const n = (k: string) => d[k] ?? 0;
  return `dns: ${n('queries')} queries, ${n('local')} local answers, ${n('forwarded')} forwarded, ${n('upstreamFailures')} upstream failures, ` +
    `${n('servfail')} SERVFAIL, ${n('nxdomain')} NXDOMAIN, ${n('truncated')} truncated, ${n('refused')} refused, ${n('internal')} refused (internal), ${n('malformed')} malformed dropped\n`;
}

export const statsCommands = [stats];
