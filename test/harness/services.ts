// Test tasks and clients for services: tiny Python programs run inside container namespaces
// (python3 is on every test host; no image, no dependency).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { waitFor, type Host, type Lab } from './lab.js';

/**
 * HTTP/1.0 server answering "NAME PEER_IP\n" (PEER_IP = the address the task sees; with
 * argv[3] == "pp", the source address from a PROXY v2 header it parses first).
 */
const NAME_SERVER = String.raw`
import socket, struct, sys, threading
name, port, pp = sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == 'pp'
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(512)
def recvn(c, n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d: raise EOFError()
        b += d
    return b
def serve(c, a):
    try:
        peer = a[0]
        if pp:
            h = recvn(c, 16)
            if h[:12] != b'\r\n\r\n\x00\r\nQUIT\n': peer = 'no-proxy-header'
            else:
                body = recvn(c, struct.unpack('!H', h[14:16])[0])
                peer = socket.inet_ntoa(body[0:4]) if h[13] == 0x11 else 'proxy-family-%d' % h[13]
        req = b''
        while b'\r\n\r\n' not in req:
            d = c.recv(4096)
            if not d: break
            req += d
        msg = ('%s %s\n' % (name, peer)).encode()
        c.sendall(b'HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' % len(msg) + msg)
    except Exception: pass
    finally: c.close()
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
`;

/**
 * Line server: each line gets "NAME:LINE"; on EOF from the client it still answers "NAME:bye"
 * before closing (a half-close must deliver that).
 */
const LINE_SERVER = String.raw`
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(64)
def serve(c):
    f = c.makefile('rb')
    for line in f: c.sendall(b'%s:%s' % (name.encode(), line))
    c.sendall(b'%s:bye\n' % name.encode()); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/**
 * A scripted line client: argv = host port then steps; "send:TEXT" sends a line and prints the
 * answer, "sleep:S" idles, "shut" half-closes and prints everything until EOF. Exit 0 if all went.
 */
export const LINE_CLIENT = String.raw`
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
f = c.makefile('rb')
for step in sys.argv[3:]:
    k, _, v = step.partition(':')
    if k == 'send':
        c.sendall(v.encode() + b'\n'); print(f.readline().decode().strip(), flush=True)
    elif k == 'sleep': time.sleep(float(v))
    elif k == 'shut':
        c.shutdown(socket.SHUT_WR); print(f.read().decode().strip(), flush=True)
`;

/** UDP server: each datagram gets "NAME:DATA" back. */
const UDP_NAME_SERVER = String.raw`
import socket, sys
name, port = sys.argv[1].encode(), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
while True:
    d, a = s.recvfrom(2048); s.sendto(name + b':' + d, a)
`;

export function startUdpNameServer(lab: Lab, ns: string, name: string, port: number): void {
  lab.spawnIn(ns, 'python3', ['-c', UDP_NAME_SERVER, name, String(port)], `${name}-udp-${port}.log`);
}

/**
 * n UDP flows from ns (a fresh socket, so a fresh source port, each) to host:port, one datagram
 * each (up to 3 tries, 1 s apart); returns each answer ('' when none came).
 */
export async function udpAskMany(lab: Lab, ns: string, host: string, port: number, n: number): Promise<string[]> {
  const py = String.raw`
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0); got = ''
    for _ in range(3):
        s.sendto(b'ping%d' % i, (host, port))
        try: got = s.recv(2048).decode(); break
        except socket.timeout: pass
    print(got or 'NONE', flush=True); s.close()
`;
  const out = await lab.mustExec(ns, 'python3', ['-c', py, host, String(port), String(n)], 120_000);
  return out.trim().split('\n').map((l) => (l === 'NONE' ? '' : l));
}

/**
 * A SYN flood from ns: `count` raw TCP SYNs to host:port from spoofed sources 192.0.2.200-249
 * (addresses no namespace holds, so the SYN-ACKs go unanswered and every SYN leaves a half-open
 * connection at the target), random source ports. Resolves when all are sent.
 */
export async function synFlood(lab: Lab, ns: string, host: string, port: number, count: number): Promise<void> {
  const py = String.raw`
import random, socket, struct, sys
dst, dport, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
def csum(b):
    if len(b) % 2: b += b'\x00'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
d = socket.inet_aton(dst)
for i in range(n):
    src = socket.inet_aton('192.0.2.%d' % (200 + i % 50)); sport = random.randint(1024, 65535)
    tcp = struct.pack('!HHIIBBHHH', sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack('!H', csum(src + d + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 40, i & 0xffff, 0, 64, 6, 0, src, d)
    s.sendto(ip + tcp, (dst, 0))
`;
  await lab.mustExec(ns, 'python3', ['-c', py, host, String(port), String(count)], 120_000);
}

export function startNameServer(lab: Lab, ns: string, name: string, port = 80, proxyV2 = false): void {
  lab.spawnIn(ns, 'python3', ['-c', NAME_SERVER, name, String(port), ...(proxyV2 ? ['pp'] : [])], `${name}-${port}.log`);
}

export function startLineServer(lab: Lab, ns: string, name: string, port: number): void {
  lab.spawnIn(ns, 'python3', ['-c', LINE_SERVER, name, String(port)], `${name}-line-${port}.log`);
}

/** Runs the line client in ns; resolves with its output lines (throws on failure). */
export async function lineClient(lab: Lab, ns: string, host: string, port: number, steps: string[], timeoutMs = 60_000): Promise<string[]> {
  const out = await lab.mustExec(ns, 'python3', ['-c', LINE_CLIENT, host, String(port), ...steps], timeoutMs);
  return out.trim().split('\n');
}

/** `curl` n times from ns; returns each answer body ('' for a failed request). */
export async function curlMany(lab: Lab, ns: string, url: string, n: number): Promise<string[]> {
  const r = await lab.exec(ns, 'sh', ['-c', `for i in $(seq ${n}); do curl -s -m 5 ${url} || echo FAIL; done`], 120_000);
  return r.stdout.trim().split('\n').map((l) => (l === 'FAIL' ? '' : l));
}

/**
 * Frames to the VIP MAC (06:7e + VNI) from ns's eth0: a valid IPv4 header (bridges with
 * br_netfilter validate it) carrying a TCP header cut to 8 bytes.
 */
export async function sendMalformed(lab: Lab, ns: string, vni: number, vip: string, n: number): Promise<void> {
  const py = String.raw`
import socket, struct, sys
vni, vip, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0))
src = s.getsockname()[4]
dst = bytes([0x06, 0x7e, 0, (vni >> 16) & 255, (vni >> 8) & 255, vni & 255])
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 1, 0x4000, 64, 6, 0, socket.inet_aton('10.0.30.250'), socket.inet_aton(vip))
hdr = hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:]
for _ in range(n): s.send(dst + src + b'\x08\x00' + hdr + struct.pack('!HHI', 40000, 80, 1) + b'\x00' * 18)
`;
  await lab.mustExec(ns, 'python3', ['-c', py, String(vni), vip, String(n)]);
}

/**
 * A gossip cluster over `hosts` (h1 first, the others join it with the token; h2 started with
 * `ip netns exec`, the rest with nsenter, as users do both), all Ready, and an overlay `svcnet`
 * on `subnet` listed on every host. The agents are pushed onto `agents` as they start.
 */
export async function startServiceCluster(lab: Lab, hosts: Host[], agentArgs: string[], subnet: string, agents: ChildProcess[]): Promise<void> {
  const lines = (s: string) => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  agents.push(await lab.startAgent(hosts[0], ['--node-name', hosts[0].name, ...agentArgs]));
  const secret = path.join(lab.dir, 'join.token');
  writeFileSync(secret, await lab.mustCli(hosts[0], ['join-token', '-q']), { mode: 0o600 });
  for (const h of hosts.slice(1)) {
    agents.push(await lab.startAgent(h, ['--node-name', h.name, '--join', hosts[0].addr, '--secret-file', secret, ...agentArgs], h.name === 'h2' ? 'ip-netns-exec' : 'nsenter'));
  }
  for (const h of hosts) {
    await waitFor(`${hosts.length} Ready on ${h.name}`, async () => lines(await lab.mustCli(h, ['node', 'ls', '--format', 'json'])).filter((n: { Status: string }) => n.Status === 'Ready').length === hosts.length, 15_000);
  }
  await lab.mustCli(hosts[0], ['network', 'create', '-d', 'overlay', '--subnet', subnet, 'svcnet']);
  for (const h of hosts) await waitFor(`svcnet on ${h.name}`, async () => (await lab.mustCli(h, ['network', 'ls'])).includes('svcnet'), 10_000);
}
