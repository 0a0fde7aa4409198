// Parsers of tool output (iperf3 JSON, ping, tcpdump, perf report, tapmesh stats) on fixed text.
import { describe, expect, it } from 'vitest';
import { parseIperfTcp, parseIperfUdp, parsePingTimes } from './measure.js';
import { parseTcpdump, perfBreakdown, topUserSymbols } from './profile.js';
import { flattenNumbers } from './systems/tapmesh.js';
import { macFor } from './systems/system.js';

describe('iperf3 JSON', () => {
  it('TCP: receiver totals and sender retransmits', () => {
    const j = { end: { sum_sent: { bytes: 2e9, retransmits: 7 }, sum_received: { bytes: 1.99e9, seconds: 10, bits_per_second: 1.592e9 } } };
    expect(parseIperfTcp(JSON.stringify(j))).toEqual({ gbps: 1.592, bytes: 1.99e9, seconds: 10, retransmits: 7 });
  });
  it('UDP: server-side sum_received gives received pps and loss', () => {
    const sum = { seconds: 2, bytes: 64 * 90_000, bits_per_second: 23.04e6, packets: 100_000, lost_packets: 10_000 };
    const j = { end: {}, server_output_json: { end: { sum: { ...sum, bytes: 0, bits_per_second: 0 }, sum_received: sum } } };
    const f = parseIperfUdp(JSON.stringify(j));
    expect(f.pps).toBe(45_000);
    expect(f.lossPct).toBe(10);
    expect(f.gbps).toBeCloseTo(0.02304, 10);
  });
  it('errors are reported, not turned into zeros', () => {
    expect(() => parseIperfTcp(JSON.stringify({ error: 'unable to connect to server' }))).toThrow(/unable to connect/);
    expect(() => parseIperfUdp(JSON.stringify({ end: {} }))).toThrow(/server_output_json/);
  });
});

describe('ping output', () => {
  it('per-line times, including "time<" and integer times', () => {
    const text = ['PING 10.0.9.3 (10.0.9.3) 56(84) bytes of data.', '64 bytes from 10.0.9.3: icmp_seq=1 ttl=64 time=0.045 ms',
      '64 bytes from 10.0.9.3: icmp_seq=2 ttl=64 time=12 ms', '64 bytes from 10.0.9.3: icmp_seq=3 ttl=64 time<0.001 ms',
      'rtt min/avg/max/mdev = 0.024/0.028/0.106/0.006 ms'].join('\n');
    expect(parsePingTimes(text)).toEqual([0.045, 12, 0.001]);
  });
});

describe('tcpdump', () => {
  it('matches echo request/reply by sequence, also in two-line VXLAN output', () => {
    const m = new Map<string, Record<string, number>>();
    parseTcpdump('100.000010 IP 192.0.2.1.33552 > 192.0.2.2.4789: VXLAN, flags [I] (0x08), vni 4096\n' +
      'IP 10.0.9.2 > 10.0.9.3: ICMP echo request, id 1, seq 7, length 64\n', 'u1', m);
    parseTcpdump('100.000000 IP 10.0.9.2 > 10.0.9.3: ICMP echo request, id 1, seq 7, length 64\n', 'c1', m);
    expect(m.get('request:7')).toEqual({ u1: 100.00001, c1: 100 });
  });
});

describe('perf report', () => {
  it('splits samples per thread into syscall buckets and user/kernel', () => {
    const dsos = '    40.00%    11:node     [kernel.kallsyms]   \n    10.00%    11:node     node  \n     5.00%    12:node     [JIT] tid 10 \n';
    const children = '    30.00%     0.10%    11:node     [k] ksys_write\n     5.00%     0.00%    11:node     [k] __x64_sys_sendmmsg\n';
    const b = perfBreakdown(children, dsos);
    expect(b.get(11)).toMatchObject({ total: 50, kernel: 40, user: 10 });
    expect(b.get(11)?.buckets.get('write() to TAP (incl. bridge + container stack inline)')).toBe(30);
    expect(b.get(12)).toMatchObject({ total: 5, user: 5, kernel: 0 });
  });
});

describe('top user-space symbols', () => {
  it('keeps the selected threads, user-space only, sorted, as % of the given total', () => {
    const rep = ['    20.00%    11:node     [.] JS:*wordSum file:///x.js:1:1', '    30.00%    11:node     [k] ksys_write',
      '     5.00%    12:node     [.] Builtins_LoadIC', '    10.00%    13:node     [.] other|thing'].join('\n');
    const rows = topUserSymbols(rep, (tid) => tid !== 12, 50, 5);
    expect(rows).toEqual(['| 40.0 | `JS:*wordSum file:///x.js:1:1` |', '| 20.0 | `other\\|thing` |']);
  });
});

describe('helpers', () => {
  it('flattenNumbers labels rows by network', () => {
    expect(flattenNumbers({ network: 'benchnet', counters: { tapRxFrames: 3 }, drops: { unknownVni: 1 }, up: true }, 'h1', {}))
      .toEqual({ 'h1[benchnet].counters.tapRxFrames': 3, 'h1[benchnet].drops.unknownVni': 1 });
  });
  it('macFor follows Docker', () => {
    expect(macFor('10.0.9.2')).toBe('02:42:0a:00:09:02');
  });
});
