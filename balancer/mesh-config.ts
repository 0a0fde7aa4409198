// The routing mesh's configuration, its view of a published port, and its counters.
import type { MeshTask } from './mesh-pick.js';

/** One published port and its tasks (agent/service-view.ts MeshTarget has this shape). */
export interface MeshPort {
  service: string;
  name: string;
  /** Network id: connections start in its sandbox. */
  network: string;
  published: number;
  protocol: 'tcp' | 'udp';
  target: number;
  proxyProtocol: 'v2' | null;
  tasks: MeshTask[];
}

export interface MeshConfig {
  /** Host addresses to listen on; '::' is skipped when the host has no IPv6. */
  listen: string[];
  /** Listen backlog per TCP listener (connections the kernel holds before Node accepts them). */
  backlog: number;
  /** Connections still connecting to a task, all ports together; past it new ones are reset. */
  maxPendingConnects: number;
  /**
   * Connections open (connecting or spliced), all TCP ports together; past it new ones are reset
   * (`overload`). There is no idle timer, so this is what bounds a flood of completed but idle
   * connections: each holds two descriptors and two socket buffers.
   */
  maxConnections: number;
  /** Connect timeout to one task, ms; a timeout counts as a failure and tries the next task. */
  connectTimeoutMs: number;
  /** Tasks tried per connection (the first plus retries). */
  maxAttempts: number;
  /** UDP flow idle expiry, ms. */
  udpIdleMs: number;
  /** UDP flows per port; past it the oldest-idle flow is closed. */
  maxUdpFlows: number;
}

export const DEFAULT_MESH_CONFIG: Readonly<MeshConfig> = {
  listen: ['0.0.0.0', '::'],
  backlog: 511,
  maxPendingConnects: 1024,
  maxConnections: 8192,
  connectTimeoutMs: 3000,
  maxAttempts: 3,
  udpIdleMs: 120_000,
  maxUdpFlows: 4096,
};

export interface TaskCounters { active: number; total: number }

export interface ServiceCounters {
  active: number;
  total: number;
  /** Bytes client → task and task → client, of finished connections. */
  bytesIn: number;
  bytesOut: number;
  /** Connects a task refused (or that failed: unreachable, timed out). */
  refused: number;
  /** Connections moved on to another task after a refusal. */
  retries: number;
  /** Connections reset because no task took them. */
  noTask: number;
  /** Connections reset on arrival because maxPendingConnects were connecting or maxConnections open. */
  overload: number;
  /** Connections reset because their task's host went down. */
  resetHostDown: number;
  udpFlows: number;
  udpDatagrams: number;
  tasks: Record<string, TaskCounters>;
}

export const newCounters = (): ServiceCounters => ({
  active: 0, total: 0, bytesIn: 0, bytesOut: 0, refused: 0, retries: 0, noTask: 0, overload: 0, resetHostDown: 0, udpFlows: 0, udpDatagrams: 0, tasks: {},
});

