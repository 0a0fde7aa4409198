// The resolver's one config type, its counters, and the upstream list from resolv.conf.
import { readFileSync } from 'node:fs';
import net from 'node:net';

export interface Upstream {
  host: string;
  port: number;
}

export interface DnsConfig {
  /**
   * TTL of local answers, seconds. 5 s: a removed task or a dead host leaves the tables within
   * the gossip detection time (a few seconds with SWIM+Lifeguard at 1 s probes), so a cached
   * answer outlives the truth by at most this much more; the cost is one local query per name
   * per 5 s per client, which the resolver answers in microseconds. Docker's fixed 600 s keeps
   * dead tasks in caches for ten minutes.
   */
  ttl: number;
  /** Upstream resolvers for every other name, tried in order (at most 3 are used). */
  upstreams: Upstream[];
  /**
   * Time to wait for one upstream, ms, before trying the next. 2 s: glibc's stub waits 5 s
   * per attempt, so two upstreams can fail and the third still answer in time.
   */
  upstreamTimeoutMs: number;
  /** Forwarded queries in flight at once, across all containers; beyond it: REFUSED. */
  maxInFlight: number;
  /** EDNS0 UDP payload size advertised in local answers, bytes (1232: the DNS flag day value). */
  ednsSize: number;
  /** A TCP client connection idle this long is closed, ms (RFC 7766 suggests seconds). */
  tcpIdleMs: number;
  /** TCP connections open at once per container listener; more are closed at accept. */
  maxTcpConnections: number;
}

export const DEFAULT_DNS_CONFIG: DnsConfig = {
  ttl: 5,
  upstreams: [],
  upstreamTimeoutMs: 2000,
  maxInFlight: 1024,
  ednsSize: 1232,
  tcpIdleMs: 10_000,
  maxTcpConnections: 128,
};

/** What the resolver counted since start (shared by every container it serves). */
export interface DnsCounters {
  queries: number;
  /** Answered from the records (including empty NOERROR for a known name). */
  local: number;
  forwarded: number;
  /** One upstream timed out, refused the connection, or sent garbage (each counts). */
  upstreamFailures: number;
  /** All upstreams failed (or none configured): SERVFAIL sent. */
  servfail: number;
  /** NXDOMAIN sent, local or relayed from upstream. */
  nxdomain: number;
  /** UDP answers cut to fit, TC set. */
  truncated: number;
  /** REFUSED because maxInFlight forwards were pending. */
  refused: number;
  /**
   * REFUSED without forwarding: the asking container is only on --internal networks, which
   * have no external DNS (Docker 25.0.4+, CVE-2024-29018: forwards leave from the host).
   */
  internal: number;
  /** Messages dropped without an answer: undecodable, a response, too short. */
  malformed: number;
  /** Decodable but unanswerable queries answered FORMERR/NOTIMP. */
  formerr: number;
}

export function newCounters(): DnsCounters {
  return { queries: 0, local: 0, forwarded: 0, upstreamFailures: 0, servfail: 0, nxdomain: 0, truncated: 0, refused: 0, internal: 0, malformed: 0, formerr: 0 };
}

/** Parses `--dns-upstream ADDR[:PORT]` / `[v6]:PORT` forms. */
export function parseUpstream(s: string): Upstream {
  const m6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (m6) return checked(m6[1], m6[2] ? Number(m6[2]) : 53);
  if (net.isIP(s)) return checked(s, 53);
  const i = s.lastIndexOf(':');
  if (i > 0) return checked(s.slice(0, i), Number(s.slice(i + 1)));
  throw new Error(`invalid DNS upstream: ${s}`);
}

function checked(host: string, port: number): Upstream {
  if (!net.isIP(host) || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid DNS upstream: ${host}:${port}`);
  return { host, port };
}

/**
 * The nameservers of a resolv.conf text, at most 3 (glibc's MAXNS). 127.0.0.11 is skipped:
 * a host running inside a container must not forward to itself.
 */
export function upstreamsFromResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const host = m[1].replace(/%.*$/, '');
    if (!net.isIP(host) || host === '127.0.0.11') continue;
    out.push({ host, port: 53 });
    if (out.length === 3) break;
  }
  return out;
}

export function hostUpstreams(path = '/etc/resolv.conf'): Upstream[] {
  try {
    return upstreamsFromResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}
