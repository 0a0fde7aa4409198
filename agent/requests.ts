// What API callers ask the agent for, and the error that answers a bad request. Bottom of agent/:
// the agent, its input checks and the API all import this; it imports nothing of theirs.

/** A request the caller got wrong: the API answers with one line and this 4xx status. */
export class UserError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

export interface CreateNetworkRequest {
  name: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  options?: Record<string, string>;
  labels?: Record<string, string>;
  attachable?: boolean;
}

export interface ConnectRequest {
  container: string;
  ip?: string;
  aliases?: string[];
  /** Attach as a task of this service (name or id; it must be on the network). */
  service?: string;
  /** Task weight 0..65535 (default 1; 0 drains). Only with `service`. */
  weight?: number;
}

/** A port as the API takes it (agent/input.ts checks it into a ServicePort). */
export interface PortRequest {
  published: number;
  target: number;
  protocol?: 'tcp' | 'udp';
  proxyProtocol?: 'v2' | null;
}

export interface CreateServiceRequest {
  name: string;
  network: string;
  ports?: PortRequest[];
  endpointMode?: string;
  scheduler?: string;
}

export interface UpdateServiceRequest {
  publishAdd?: PortRequest[];
  /** Published ports to remove (protocol: both when absent). */
  publishRm?: { published: number; protocol?: 'tcp' | 'udp' }[];
  /** Task (container name or endpoint id) -> new weight. */
  taskWeights?: { task: string; weight: number }[];
}

export interface PeerRequest {
  vtep: string;
  mac?: string;
  ip?: string;
}
