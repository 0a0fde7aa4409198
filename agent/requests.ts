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
  /** No egress (Docker's --internal). */
  internal?: boolean;
}

export interface ConnectRequest {
  container: string;
  ip?: string;
  aliases?: string[];
}

export interface PeerRequest {
  vtep: string;
  mac?: string;
  ip?: string;
}
