// The plain datapath (no TAP virtio headers, no UDP GSO/GRO) still carries everything: it is
// what `--no-offload` and kernels without those features get. These agents also use another
// VXLAN port (`--vxlan-port 8472`, the Linux kernel's historical default).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, requireRoot } from './harness/lab.js';
import { buildOverlay, type Overlay } from './harness/overlay.js';
import { tcpTransfer } from './harness/transfer.js';

const root = requireRoot('no-offload integration');

describe.skipIf(!root)('overlay with --no-offload', () => {
  const lab = new Lab();
  let ov: Overlay;
  beforeAll(async () => {
    try {
      ov = await buildOverlay(lab, { hosts: 2, containersPerHost: 1, agentArgs: ['--no-offload', '--vxlan-port', '8472'], vni: 5000, subnet: '10.0.40.0/24' });
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  });
  afterAll(() => lab.cleanup());

  it('pings and moves 20 MB intact, one frame per datagram', async () => {
    const [a, b] = ov.containers;
    expect((await lab.exec(a.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', b.ip])).code).toBe(0);
    const r = await tcpTransfer(lab, a.ns, b.ns, b.ip, 20 * 1024 * 1024);
    expect(r.received.sha256).toBe(r.sent.sha256);
    const stats = (await lab.mustCli(a.host, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l));
    const net = stats.find((s) => s.VNI === 5000);
    expect(net.vxlanTxPackets).toBeGreaterThan(14000); // 20 MB in ≤1.4 KB datagrams
    expect(net.tsoFrames).toBe(0);
    // The VXLAN socket listens on the configured port, and the overlay traffic crossed on it.
    const listening = await lab.mustExec(a.host.ns, 'ss', ['-Hunl']);
    expect(listening).toMatch(/:8472\b/);
    expect(listening).not.toMatch(/:4789\b/);
  });
});
