// `tapmesh network …` and `tapmesh peer …`: overlays, their containers and static VTEPs.
import { inspectAll, removeAll, request, type Ctx } from '../client.js';
import { LIST_OPTIONS, jsonLines, outputFormat, table } from '../format.js';
import { UsageError, command } from '../table.js';
import { integer, keyValues } from '../values.js';

type NetInspect = {
  Name: string; Id: string; Created: string; Driver: string; Scope: string; Labels: Record<string, string>;
};

const FILTER_KEYS = ['name', 'id', 'driver', 'scope'];

const create = command({
  name: 'network create', usage: 'NAME', summary: 'Create an overlay network',
  options: {
    driver: { type: 'string', short: 'd', value: 'overlay', help: 'Network driver (overlay, the only one)' },
    subnet: { type: 'string', value: 'CIDR', help: 'IPv4 subnet (default: the first free 10.x.y.0/24)' },
    gateway: { type: 'string', value: 'IP', help: 'Gateway address of the subnet' },
    'ip-range': { type: 'string', value: 'CIDR', help: 'Allocate container addresses from this part of the subnet' },
    opt: { type: 'string', short: 'o', multiple: true, value: 'KEY=VALUE', help: 'Driver option (see below)' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'Network label' },
    attachable: { type: 'boolean', help: 'Accepted for Docker compatibility (every network is attachable)' },
  },
  notes: `Options: com.docker.network.driver.overlay.vxlanid_list=VNI, com.docker.network.mtu=MTU (container MTU),
         com.docker.network.driver.mtu=MTU (underlay MTU; 50 bytes of VXLAN are subtracted)`,
  async run(ctx: Ctx, o, [name]) {
    const r = (await request(ctx.socket, 'POST', '/v1/networks', {
      name, driver: o.driver, subnet: o.subnet, gateway: o.gateway, ipRange: o['ip-range'],
      options: keyValues(o.opt, '--opt'), labels: keyValues(o.label, '--label'), attachable: o.attachable,
    })) as { Id: string };
    ctx.out(`${r.Id}\n`);
  },
});

const ls = command({
  name: 'network ls', aliases: ['network list'], summary: 'List networks',
  options: {
    ...LIST_OPTIONS,
    filter: { type: 'string', short: 'f', multiple: true, value: 'KEY=VALUE', help: `Filter by ${FILTER_KEYS.join(', ')}` },
    'no-trunc': { type: 'boolean', help: 'Full network IDs' },
  },
  async run(ctx: Ctx, o) {
    const format = outputFormat(o.format);
    const filters = o.filter.map((f) => {
      const eq = f.indexOf('=');
      if (eq <= 0) throw new UsageError(`bad format of filter (expected name=value): ${f}`);
      const key = f.slice(0, eq);
      if (!FILTER_KEYS.includes(key)) throw new UsageError(`invalid filter '${key}'`);
      return [key, f.slice(eq + 1)] as const;
    });
    let nets = (await request(ctx.socket, 'GET', '/v1/networks')) as NetInspect[];
    nets = nets.filter((n) => filters.every(([k, v]) =>
      k === 'name' ? n.Name.includes(v) : k === 'id' ? n.Id.startsWith(v) : k === 'driver' ? n.Driver === v : n.Scope === v));
    const id = (n: NetInspect) => (o['no-trunc'] ? n.Id : n.Id.slice(0, 12));
    if (o.quiet) return ctx.out(nets.map((n) => `${id(n)}\n`).join(''));
    if (format === 'json') {
      return ctx.out(jsonLines(nets.map((n) => ({
        CreatedAt: n.Created, Driver: n.Driver, ID: id(n), IPv6: 'false', Internal: 'false',
        Labels: Object.entries(n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','), Name: n.Name, Scope: n.Scope,
      }))));
    }
    ctx.out(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], nets.map((n) => [id(n), n.Name, n.Driver, n.Scope])));
  },
});

const inspect = command({
  name: 'network inspect', usage: 'NETWORK...', summary: 'Show networks in detail (JSON)',
  options: {
    format: { type: 'string', short: 'f', value: 'FORMAT', help: 'Accepted for Docker compatibility; the output is always JSON' },
    verbose: { type: 'boolean', short: 'v', help: 'Add peers, every endpoint cluster-wide and the forwarding table' },
  },
  async run(ctx: Ctx, o, refs) {
    await inspectAll(ctx, refs, (ref) => `/v1/networks/${encodeURIComponent(ref)}${o.verbose ? '?verbose=1' : ''}`, 'network');
  },
});

const rm = command({
  name: 'network rm', aliases: ['network remove'], usage: 'NETWORK...', summary: 'Remove networks',
  async run(ctx: Ctx, _o, refs) {
    await removeAll(ctx, refs, (ref) => `/v1/networks/${encodeURIComponent(ref)}`);
  },
});

const connect = command({
  name: 'network connect', usage: 'NETWORK CONTAINER', summary: 'Connect a container (network namespace) to a network',
  options: {
    ip: { type: 'string', value: 'IP', help: 'IPv4 address for the container (default: the next free one)' },
    alias: { type: 'string', multiple: true, value: 'NAME', help: 'Name of the container on this network' },
    service: { type: 'string', value: 'SERVICE', help: 'Attach the container as a task of this service' },
    weight: { type: 'string', value: 'N', help: 'Task weight with --service, 0-65535 (default 1; 0 drains)' },
  },
  notes: 'CONTAINER: a netns name under /run/netns, a PID, or a namespace path',
  async run(ctx: Ctx, o, [net, container]) {
    if (o.weight !== undefined && o.service === undefined) throw new UsageError('--weight needs --service');
    const weight = o.weight === undefined ? undefined : integer(o.weight, 0, 65535, `invalid --weight "${o.weight}": expected 0-65535`);
    await request(ctx.socket, 'POST', `/v1/networks/${encodeURIComponent(net)}/connect`, { container, ip: o.ip, aliases: o.alias, service: o.service, weight });
  },
});

const disconnect = command({
  name: 'network disconnect', usage: 'NETWORK CONTAINER', summary: 'Disconnect a container from a network',
  async run(ctx: Ctx, _o, [net, container]) {
    await request(ctx.socket, 'POST', `/v1/networks/${encodeURIComponent(net)}/disconnect`, { container });
  },
});

const PEER_OPTIONS = {
  vtep: { type: 'string', required: true, value: 'ADDR', help: 'IPv4 address of the static VTEP' },
  mac: { type: 'string', value: 'MAC', help: 'MAC address of an endpoint behind it' },
  ip: { type: 'string', value: 'IP', help: 'IPv4 address of an endpoint behind it' },
} as const;

const peerAdd = command({
  name: 'peer add', usage: 'NETWORK', summary: 'Add a static VXLAN peer (kernel VXLAN host, hardware VTEP)',
  options: PEER_OPTIONS,
  notes: '(--ip alone derives the MAC 02:42:<ip bytes>, as tapmesh and Docker do)',
  async run(ctx: Ctx, o, [net]) {
    await request(ctx.socket, 'POST', `/v1/networks/${encodeURIComponent(net)}/peers`, { vtep: o.vtep, mac: o.mac, ip: o.ip });
  },
});

const peerRm = command({
  name: 'peer rm', usage: 'NETWORK', summary: 'Remove a static peer, or one endpoint of it (--mac or --ip)',
  options: PEER_OPTIONS,
  async run(ctx: Ctx, o, [net]) {
    const q = new URLSearchParams({ vtep: o.vtep });
    if (o.mac) q.set('mac', o.mac);
    if (o.ip) q.set('ip', o.ip);
    await request(ctx.socket, 'DELETE', `/v1/networks/${encodeURIComponent(net)}/peers?${q.toString()}`);
  },
});

export const networkCommands = [create, ls, inspect, rm, connect, disconnect, peerAdd, peerRm];
