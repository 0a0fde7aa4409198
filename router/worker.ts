// Worker-thread entry: owns the datapath, its sockets and the TAP fds handed over by the agent.
import { parentPort, workerData } from 'node:worker_threads';
import { Datapath } from './datapath.js';
import { applyCommand, type DatapathConfig, type DpCommand } from './engine.js';
import { TapPort, UdpPort } from './native-ports.js';
import { native } from '../native/index.js';
import { tuneJitForDatapath } from './jit.js';

// Before any datapath code is hot (router/jit.ts).
tuneJitForDatapath();

const cfg = workerData as DatapathConfig;
const port = parentPort!;

let espError = 'no ESP port configured';

function start(): Datapath {
  const rx = new UdpPort(cfg.bindAddr, cfg.vxlanPort, false, cfg.offload);
  const tx: UdpPort[] = [];
  for (let i = 0; i < cfg.txSockets; i++) tx.push(new UdpPort(cfg.srcAddr, 0, cfg.offload, false));
  // ESP-in-UDP for encrypted networks: its own socket, so plain VXLAN on 4789 can never be
  // mistaken for it (and the reverse).
  // If the port is taken (an IKE daemon), plain networks still work; encrypted ones are refused.
  let espRx: UdpPort | undefined;
  try {
    espRx = cfg.espPort > 0 ? new UdpPort(cfg.bindAddr, cfg.espPort, false, cfg.offload) : undefined;
  } catch (e) {
    espError = `UDP ${cfg.espPort}: ${(e as Error).message}`;
  }
  const n = native();
  return new Datapath(rx, tx, {
    vxlanPort: cfg.vxlanPort, busyPollUs: cfg.busyPollUs, keepAwake: (us) => n.keepAwake(us), espRx, espPort: cfg.espPort, espError,
    conntrack: cfg.udpIdleMs === undefined ? {} : { udpIdleMs: cfg.udpIdleMs }, learning: cfg.learning,
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
