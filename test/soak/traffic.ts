// The soak's load, running while the faults are injected: TCP transfers of random bytes checked
// end to end by SHA-256 (test/harness/transfer.ts), fping rounds between the long-lived
// containers, and churn (containers connecting and disconnecting on random hosts).
import { tcpTransfer } from '../harness/transfer.js';
import { sleep } from '../harness/lab.js';
import type { Ctr, Scene } from './scene.js';

export interface TrafficStats {
  transfers: { intact: number; failed: number; corrupt: number; bytesIntact: number; failures: string[]; corruptions: string[] };
  pings: { sent: number; answered: number; quietSent: number; quietAnswered: number };
  churn: { connected: number; disconnected: number; refused: number; refusals: string[] };
  /** MAC → when its container was disconnected (forwarding entries for it must go). */
  gone: Map<string, number>;
}

export function newStats(): TrafficStats {
  return {
    transfers: { intact: 0, failed: 0, corrupt: 0, bytesIntact: 0, failures: [], corruptions: [] },
    pings: { sent: 0, answered: 0, quietSent: 0, quietAnswered: 0 },
    churn: { connected: 0, disconnected: 0, refused: 0, refusals: [] },
    gone: new Map(),
  };
}

export interface TrafficOptions {
  transferWorkers: number;
  transferBytes: number;
  transferTimeoutMs: number;
  pingEveryMs: number;
  churnEveryMs: number;
  maxChurn: number;
  /** True while no fault is active: pings then count as "quiet". */
  quiet: () => boolean;
  t0: number;
}

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];
const at = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/** Run every load loop until `running()` turns false; resolves when all have stopped. */
export async function runTraffic(s: Scene, o: TrafficOptions, st: TrafficStats, running: () => boolean): Promise<void> {
  let port = 20_000;
  const transfers = async () => {
    while (running()) {
      const from = pick(s.stable());
      const to = pick(s.stable().filter((c) => c.host !== from.host));
      const p = port++;
      const what = `${from.host.name}→${to.host.name} ${o.transferBytes >> 20} MiB at ${at(o.t0)}`;
      try {
        const r = await tcpTransfer(s.lab, from.ns, to.ns, to.ip, o.transferBytes, p, o.transferTimeoutMs);
        if (r.sent.bytes === r.received.bytes && r.sent.sha256 === r.received.sha256) {
          st.transfers.intact++;
          st.transfers.bytesIntact += r.received.bytes;
        } else {
          st.transfers.corrupt++;
          st.transfers.corruptions.push(`${what}: sent ${r.sent.bytes} B ${r.sent.sha256.slice(0, 12)}, received ${r.received.bytes} B ${r.received.sha256.slice(0, 12)}`);
        }
      } catch (e) {
        st.transfers.failed++;
        st.transfers.failures.push(`${what}: ${(e as Error).message.split('\n')[0].slice(0, 160)}`);
      }
    }
  };
  const pings = async () => {
    while (running()) {
      const srcs = s.stable().filter((c) => s.isUp(c.host));
      if (srcs.length > 1) {
        const from = pick(srcs);
        const targets = s.stable().filter((c) => c !== from).map((c) => c.ip);
        const quiet = o.quiet();
        const r = await s.lab.exec(from.ns, 'fping', ['-C', '1', '-q', '-t', '1000', '-r', '1', ...targets], 15_000);
        const answered = r.stderr.split('\n').filter((l) => / : [\d.]+$/.test(l.trim())).length;
        st.pings.sent += targets.length;
        st.pings.answered += answered;
        if (quiet && o.quiet()) {
          st.pings.quietSent += targets.length;
          st.pings.quietAnswered += answered;
        }
      }
      await sleep(o.pingEveryMs);
    }
  };
  const churn = async () => {
    const mine: Ctr[] = [];
    while (running()) {
      await sleep(o.churnEveryMs);
      if (!running()) break;
      await s.exclusive(async () => {
        const leave = mine.length >= o.maxChurn || (mine.length > 0 && Math.random() < 0.4);
        if (leave) {
          const c = mine.find((x) => s.isUp(x.host));
          if (!c) return;
          try {
            await s.disconnect(c);
            mine.splice(mine.indexOf(c), 1);
            st.gone.set(c.mac, Date.now());
            st.churn.disconnected++;
          } catch (e) {
            st.churn.refusals.push(`disconnect ${c.ns} on ${c.host.name} at ${at(o.t0)}: ${(e as Error).message}`);
          }
          return;
        }
        const h = pick(s.hosts.filter((x) => s.isUp(x)));
        try {
          mine.push(await s.connect(h));
          st.churn.connected++;
        } catch (e) {
          st.churn.refused++;
          st.churn.refusals.push(`connect on ${h.name}${s.partitioned.has(h) ? ' (partitioned)' : ''} at ${at(o.t0)}: ${(e as Error).message}`);
        }
      });
    }
  };
  await Promise.all([...Array.from({ length: o.transferWorkers }, transfers), pings(), churn()]);
}
