// The control side's handle on the datapath. The datapath runs in a worker thread by default so
// that a saturated datapath never delays the control plane (API, gossip acks) and vice versa;
// `inline` runs it on the caller's thread (tests, debugging). Both speak the same commands.
import { Worker } from 'node:worker_threads';
import { macParts } from './wire/addr.js';
import type { ServiceSpec } from '../balancer/service.js';
import type { Datapath } from './datapath.js';
import type { FramePort } from './ports.js';
import type { SaLifetimes } from '../crypto/sa.js';
import type { LearningConfig } from './learned.js';
import type { SaRow } from '../crypto/sa-store.js';

export type DpCommand =
  | { op: 'addNetwork'; vni: number; mtu: number; tapFd: number; vnet: boolean; encrypted?: boolean }
  | { op: 'removeNetwork'; vni: number }
  | { op: 'setLocal'; vni: number; mac: string; ip: number }
  | { op: 'deleteLocal'; vni: number; mac: string }
  | { op: 'setRemote'; vni: number; mac: string; ip: number; vtep: number; static: boolean }
  | { op: 'deleteRemote'; vni: number; mac: string }
  | { op: 'addStaticVtep'; vni: number; vtep: number }
  | { op: 'deleteStaticVtep'; vni: number; vtep: number }
  | { op: 'forwarding'; vni: number }
  /**
   * The whole VIP service table of a network, replacing the previous one: plain data in the
   * input shape of balancer/service.ts (ServiceTable.upsert), computed by agent/services.ts
   * from the replicated tables. dnsrr services have no VIP and are not sent.
   */
  | { op: 'setServices'; vni: number; services: ServiceSpec[] }
  | { op: 'stats' }
  // Encryption (crypto/): SAs are per peer host (VTEP), shared by every encrypted network. Keys
  // cross the thread boundary as bytes; the worker creates its own AEAD handles.
  | { op: 'installInboundSa'; peerVtep: number; spi: number; key: Uint8Array; salt: Uint8Array; graceMs: number }
  | { op: 'setOutboundSa'; peerVtep: number; spi: number; key: Uint8Array; salt: Uint8Array; lifetimes: SaLifetimes }
  | { op: 'removePeerSas'; peerVtep: number }
  | { op: 'saList' };

export type { ServiceSpec };

export type DpStats = ReturnType<Datapath['stats']>;
export type DpOp = DpCommand['op'];

/** What each command resolves to. */
export interface DpResults {
  addNetwork: undefined;
  removeNetwork: undefined;
  setLocal: undefined;
  deleteLocal: undefined;
  setRemote: undefined;
  deleteRemote: undefined;
  addStaticVtep: undefined;
  deleteStaticVtep: undefined;
  forwarding: ReturnType<Datapath['forwarding']>;
  setServices: undefined;
  stats: DpStats;
  installInboundSa: undefined;
  setOutboundSa: undefined;
  removePeerSas: undefined;
  /** Every SA (inbound ones past their grace are expired first). */
  saList: SaRow[];
}

/** The command of one op. */
export type DpCommandOf<O extends DpOp> = Extract<DpCommand, { op: O }>;

export interface DatapathConfig {
  /** Address the VXLAN receive socket binds to (host-order u32; 0 = any, as the kernel driver does). */
  bindAddr: number;
  /** Data-path address the send sockets bind to: the outer source address peers check. */
  srcAddr: number;
  vxlanPort: number;
  /** Send sockets; their distinct source ports spread flows (RFC 7348 entropy). */
  txSockets: number;
  /** UDP GSO on send and GRO on receive (TAP offloads are chosen per network by the agent). */
  offload: boolean;
  /** Busy-poll window after traffic, in microseconds (0 = sleep at once). */
  busyPollUs: number;
  /** UDP port of ESP-in-UDP (encrypted networks), received on and sent to; 0 = no ESP socket. */
  espPort: number;
  /** Idle expiry of UDP flows through a VIP, ms (absent: balancer/conntrack.ts default, 120 s). */
  udpIdleMs?: number;
  /** Cap and ageing of MACs learned from static VTEPs (absent: router/learned.ts defaults). */
  learning?: Partial<LearningConfig>;
}

/** Apply one command to a datapath. `openTap` turns an fd into a FramePort. */
export async function applyCommand(dp: Datapath, cmd: DpCommand, openTap: (fd: number, vnet: boolean) => FramePort): Promise<DpResults[DpOp]> {
  switch (cmd.op) {
    case 'addNetwork':
      dp.addNetwork(cmd.vni, cmd.mtu, openTap(cmd.tapFd, cmd.vnet), cmd.encrypted ?? false);
      return undefined;
    case 'removeNetwork':
      dp.removeNetwork(cmd.vni);
      return undefined;
    case 'setLocal': {
      const [hi, lo] = macParts(cmd.mac);
      dp.setLocal(cmd.vni, hi, lo, cmd.ip);
      return undefined;
    }
    case 'deleteLocal': {
      const [hi, lo] = macParts(cmd.mac);
      dp.deleteLocal(cmd.vni, hi, lo);
      return undefined;
    }
    case 'setRemote': {
      const [hi, lo] = macParts(cmd.mac);
      dp.setRemote(cmd.vni, hi, lo, cmd.ip, cmd.vtep, cmd.static);
      return undefined;
    }
    case 'deleteRemote': {
      const [hi, lo] = macParts(cmd.mac);
      dp.deleteRemote(cmd.vni, hi, lo);
      return undefined;
    }
    case 'addStaticVtep':
      dp.addStaticVtep(cmd.vni, cmd.vtep);
      return undefined;
    case 'deleteStaticVtep':
      dp.deleteStaticVtep(cmd.vni, cmd.vtep);
      return undefined;
    case 'forwarding':
      return dp.forwarding(cmd.vni);
    case 'setServices':
      dp.setServices(cmd.vni, cmd.services);
      return undefined;
    case 'stats':
      return dp.stats();
    case 'installInboundSa':
      dp.sas.installInbound(cmd.peerVtep, { spi: cmd.spi, key: cmd.key, salt: cmd.salt }, cmd.graceMs);
      return undefined;
    case 'setOutboundSa':
      dp.sas.setOutbound(cmd.peerVtep, { spi: cmd.spi, key: cmd.key, salt: cmd.salt }, cmd.lifetimes);
      return undefined;
    case 'removePeerSas':
      dp.sas.removePeer(cmd.peerVtep);
      return undefined;
    case 'saList':
      dp.sas.expire();
      return dp.sas.list();
  }
}

export interface DatapathEngine {
  /** Run one command on the datapath; resolves to that command's result. */
  call<O extends DpOp>(cmd: DpCommandOf<O>): Promise<DpResults[O]>;
  stats(): Promise<DpStats>;
  close(): Promise<void>;
}

/** Datapath on its own thread. */
export class WorkerEngine implements DatapathEngine {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly ready: Promise<void>;
  private dead: Error | undefined;

  constructor(cfg: DatapathConfig, onFatal: (e: Error) => void) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: cfg });
    let ok: () => void;
    let fail: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      ok = res;
      fail = rej;
    });
    this.worker.on('message', (m: { ready?: true; id?: number; result?: unknown; error?: string; code?: string }) => {
      if (m.ready) return ok();
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(Object.assign(new Error(m.error), { code: m.code }));
      else p.resolve(m.result);
    });
    const die = (e: Error) => {
      this.dead = e;
      fail(e);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      onFatal(e);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => {
      if (!this.closing) die(new Error(`datapath worker exited with code ${code}`));
    });
  }

  private closing = false;

  start(): Promise<void> {
    return this.ready;
  }

  async call<O extends DpOp>(cmd: DpCommandOf<O>): Promise<DpResults[O]> {
    await this.ready;
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // The worker answers id with applyCommand's result for this very command.
      this.pending.set(id, { resolve: (v) => resolve(v as DpResults[O]), reject });
      this.worker.postMessage({ id, cmd });
    });
  }

  async stats(): Promise<DpStats> {
    return this.call({ op: 'stats' });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}
