// Worker-thread entry: owns the datapath, its sockets and the TAP fds handed over by the agent.
import { parentPort, workerData } from 'node:worker_threads';
import { Datapath } from './datapath.js';
import { applyCommand, type DatapathConfig, type DpCommand } from './engine.js';
import { TapPort, UdpPort } from './native-ports.js';
import { native } from '../native/index.js';

const cfg = workerData as DatapathConfig;
const port = parentPort!;

function start(): Datapath {
  const rx = new UdpPort(cfg.bindAddr, cfg.vxlanPort, false, cfg.offload);
  const tx: UdpPort[] = [];
  for (let i = 0; i < cfg.txSockets; i++) tx.push(new UdpPort(cfg.srcAddr, 0, cfg.offload, false));
  const n = native();
  return new Datapath(rx, tx, {
    vxlanPort: cfg.vxlanPort, busyPollUs: cfg.busyPollUs, keepAwake: (us) => n.keepAwake(us),
    conntrack: cfg.udpIdleMs === undefined ? {} : { udpIdleMs: cfg.udpIdleMs },
  });
}

const dp = start();
port.on('message', (m: { id: number; cmd: DpCommand }) => {
  applyCommand(dp, m.cmd, (fd, vnet) => new TapPort(fd, vnet)).then(
    (result) => port.postMessage({ id: m.id, result }),
    (e: Error & { code?: string }) => port.postMessage({ id: m.id, error: e.message, code: e.code }),
  );
});
port.postMessage({ ready: true });
