// `tapmesh stats`: packet, byte and drop counters of the datapath and the gossip layer.
import { DaemonError, request, type Ctx } from '../client.js';
import { FORMAT_OPTION, humanBytes, jsonLines, outputFormat, table } from '../format.js';
import { command } from '../table.js';

type StatsReply = {
  gossip: { members: Record<string, number>; dropped: Record<string, number>; suspectEvents: number; health: number };
  drops: Record<string, number>;
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
      if (ref === undefined) lines.push({ Network: '', ID: '', VNI: 0, Drops: s.drops, Gossip: s.gossip, Mesh: s.mesh ?? {} });
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
    if (ref === undefined) {
      const g = s.gossip;
      const dropped = Object.entries(g.dropped).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
      ctx.out(`\ngossip: ${g.members.alive ?? 0} ready, ${g.members.suspect ?? 0} suspect, ${g.members.dead ?? 0} down; health ${g.health}; suspect events ${g.suspectEvents}; dropped: ${dropped}\n`);
    }
  },
});

export const statsCommands = [stats];
