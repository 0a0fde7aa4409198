// What users type for services: --publish in both of Docker's forms, --publish-rm,
// --task-weight, names, schedulers. Every refusal is a one-line UserError.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { checkEndpointMode, checkPort, checkScheduler, checkServiceName, checkWeight, parsePublish, parsePublishRm, parseTaskWeight } from './input.js';
import { UserError } from './requests.js';

const refused = (fn: () => unknown, msg: RegExp) => {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toMatch(msg);
  expect((err as Error).message).not.toContain('\n');
};

describe('--publish', () => {
  test('short form PUBLISHED:TARGET[/proto]', () => {
    expect(parsePublish('8080:80')).toEqual({ published: 8080, target: 80, protocol: 'tcp', proxyProtocol: null });
    expect(parsePublish('53:5353/udp')).toEqual({ published: 53, target: 5353, protocol: 'udp', proxyProtocol: null });
    expect(parsePublish('1:65535/tcp')).toEqual({ published: 1, target: 65535, protocol: 'tcp', proxyProtocol: null });
  });

  test('long form with proxy-protocol', () => {
    expect(parsePublish('published=8443,target=443,protocol=tcp,proxy-protocol=v2')).toEqual({ published: 8443, target: 443, protocol: 'tcp', proxyProtocol: 'v2' });
    expect(parsePublish('target=80,published=9000,mode=ingress')).toEqual({ published: 9000, target: 80, protocol: 'tcp', proxyProtocol: null });
  });

  test('bad values are refused with one line naming the problem', () => {
    refused(() => parsePublish('0:80'), /invalid published port "0"/);
    refused(() => parsePublish('8080:65536'), /invalid target port "65536"/);
    refused(() => parsePublish('8080:80/sctp'), /invalid protocol "sctp"/);
    refused(() => parsePublish('8080'), /expected PUBLISHED:TARGET/);
    refused(() => parsePublish('a:b:c'), /expected PUBLISHED:TARGET/);
    refused(() => parsePublish('published=80'), /target is required/);
    refused(() => parsePublish('target=80'), /published is required/);
    refused(() => parsePublish('published=1,target=2,mode=host'), /only mode=ingress/);
    refused(() => parsePublish('published=1,target=2,color=red'), /unknown field "color"/);
    refused(() => parsePublish('published=1,published=2,target=2'), /each once/);
    refused(() => parsePublish('published=53,target=53,protocol=udp,proxy-protocol=v2'), /tcp ports only/);
    refused(() => parsePublish('published=1,target=2,proxy-protocol=v1'), /only v2/);
  });

  test('any text either parses to ports in range or is refused with a UserError', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
      try {
        const p = parsePublish(s);
        expect(p.published).toBeGreaterThanOrEqual(1);
        expect(p.target).toBeLessThanOrEqual(65535);
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
      }
    }));
  });

  test('API port objects are checked the same way', () => {
    expect(checkPort({ published: 80, target: 8080 })).toEqual({ published: 80, target: 8080, protocol: 'tcp', proxyProtocol: null });
    refused(() => checkPort({ published: 80.5, target: 1 }), /invalid published port/);
    refused(() => checkPort([1, 2]), /must be an object/);
  });
});

describe('other service flags', () => {
  test('--publish-rm takes a port, a port/proto or a publish spec', () => {
    expect(parsePublishRm('8080')).toEqual({ published: 8080 });
    expect(parsePublishRm('53/udp')).toEqual({ published: 53, protocol: 'udp' });
    expect(parsePublishRm('8080:80')).toEqual({ published: 8080, protocol: 'tcp' });
    refused(() => parsePublishRm('x'), /invalid published port/);
  });

  test('--task-weight CONTAINER=N, 0..65535', () => {
    expect(parseTaskWeight('web1=3')).toEqual({ task: 'web1', weight: 3 });
    expect(parseTaskWeight('a=b=0')).toEqual({ task: 'a=b', weight: 0 });
    refused(() => parseTaskWeight('web1'), /CONTAINER=WEIGHT/);
    refused(() => parseTaskWeight('web1=65536'), /expected 0-65535/);
    refused(() => parseTaskWeight('web1=-1'), /expected 0-65535/);
    expect(checkWeight(65535)).toBe(65535);
    refused(() => checkWeight(1.5), /expected 0-65535/);
  });

  test('names, endpoint modes and schedulers', () => {
    expect(checkServiceName('web_1-a')).toBe('web_1-a');
    refused(() => checkServiceName(''), /--name is required/);
    refused(() => checkServiceName('-web'), /invalid service name/);
    refused(() => checkServiceName('web.1'), /invalid service name/);
    refused(() => checkServiceName('a'.repeat(64)), /invalid service name/);
    expect(checkEndpointMode(undefined)).toBe('vip');
    refused(() => checkEndpointMode('dns'), /vip or dnsrr/);
    expect(checkScheduler('mh')).toBe('mh');
    expect(checkScheduler(undefined)).toBe('rr');
    refused(() => checkScheduler('random'), /one of rr, wrr, lc, wlc, sh, mh/);
  });
});
