import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { decodeValue, encodeValue } from '../gossip/value.js';
import { asEndpointEntry, asNetworkEntry, endpointValue, networkValue, type EndpointEntry, type NetworkEntry } from './tables.js';

const strMap = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 });
const networkArb: fc.Arbitrary<NetworkEntry> = fc.record(
  {
    name: fc.string(), created: fc.string(), subnet: fc.string(), gateway: fc.string(), ipRange: fc.string(),
    vni: fc.nat(0xffffff), mtu: fc.nat(9000), attachable: fc.boolean(), options: strMap, labels: strMap,
  },
  { requiredKeys: ['name', 'created', 'subnet', 'gateway', 'vni', 'mtu', 'attachable', 'options', 'labels'] },
);
const endpointArb: fc.Arbitrary<EndpointEntry> = fc.record({
  network: fc.string(), name: fc.string(), mac: fc.string(), ip: fc.string(), host: fc.string(), vtep: fc.string(), aliases: fc.array(fc.string()),
});

describe('agent tables', () => {
  test('what an agent writes is what another agent reads back, through the gossip value codec', () => {
    fc.assert(fc.property(networkArb, (n) => {
      expect(asNetworkEntry(decodeValue(encodeValue(networkValue(n))))).toEqual(n);
    }));
    fc.assert(fc.property(endpointArb, (e) => {
      expect(asEndpointEntry(decodeValue(encodeValue(endpointValue(e))))).toEqual(e);
    }));
  });

  test('entries of the wrong shape are refused, not half-read', () => {
    const ep = { network: 'n', name: 'a', mac: '02:42:0a:00:09:02', ip: '10.0.9.2', host: 'h', vtep: '192.0.2.1', aliases: [] };
    expect(asEndpointEntry(ep)).toEqual(ep);
    for (const bad of [null, 'x', [], { ...ep, ip: 7 }, { ...ep, aliases: [1] }, { ...ep, aliases: 'a' }, { network: 'n' }]) {
      expect(asEndpointEntry(bad)).toBeUndefined();
    }
    const net = { name: 'o', created: 't', subnet: '10.0.9.0/24', gateway: '10.0.9.1', vni: 4096, mtu: 1450, attachable: false, options: {}, labels: {} };
    expect(asNetworkEntry(net)).toEqual(net);
    for (const bad of [undefined, { ...net, vni: '4096' }, { ...net, options: { a: 1 } }, { ...net, ipRange: 5 }, { ...net, attachable: 'no' }]) {
      expect(asNetworkEntry(bad)).toBeUndefined();
    }
  });
});
