// Public surface of the gossip layer (see docs/gossip.md).
export { GossipNode, type GossipNodeOptions, type RequestHandler, type MemberInfo, type MemberEventInfo, type NodeStats } from './node.js';
export { PROFILES, PROFILE_NAMES, isProfileName, resolveConfig, type GossipConfig, type ProfileName } from './config.js';
export { Keyring, formatJoinToken, parseJoinToken, parseSecretFile, loadSecretFile, newSecretFileText, generateKey, keyId } from './security.js';
export { Tables, type TableEvent, type TableDef, type ChangeKind, type ChangeCause, type EntryInfo } from './tables.js';
export { Ipam, IpamError, attachIpam, type IpamErrorCode, type AllocateOptions } from './ipam.js';
export { Layout, DEFAULT_BLOCK_SIZE, type IpPool } from './ipam-layout.js';
export { UdpTransport, type UdpTransportOptions } from './udp-transport.js';
export { SimNetwork, SimTransport, type SimOptions } from './sim.js';
export { SimCluster, type SimClusterOptions } from './sim-cluster.js';
export type { Transport, Clock, Random, TransportHandlers } from './transport.js';
export type { MemberState, MemberEventKind } from './membership.js';
export type { GossipStats, DropCounters } from './wire.js';
export type { JsonValue } from './value.js';
