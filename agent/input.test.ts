// --opt encrypted and the MTU it implies, as `network create` checks them.
import { describe, expect, it } from 'vitest';
import { duration } from '../cli/values.js';
import { encryptedOption, networkMtu } from './input.js';
import { UserError } from './requests.js';

const KEYS = { mtu: 'com.docker.network.mtu', driverMtu: 'com.docker.network.driver.mtu' };

describe('encryptedOption', () => {
  it('accepts Docker\'s --opt encrypted and encrypted=true, normalized to "" as Docker shows it', () => {
    for (const v of ['', 'true', 'TRUE']) {
      const o: Record<string, string> = { encrypted: v };
      expect(encryptedOption(o)).toBe(true);
      expect(o.encrypted).toBe('');
    }
    expect(encryptedOption({})).toBe(false);
  });

  it('refuses any other value rather than guessing (never a quietly cleartext "encrypted" network)', () => {
    for (const v of ['false', '0', 'yes please']) expect(() => encryptedOption({ encrypted: v })).toThrow(UserError);
  });
});

describe('networkMtu', () => {
  it('is 1408 for an encrypted network by default (1450 minus 42 bytes of ESP-in-UDP, multiple of 4)', () => {
    expect(networkMtu({}, true, KEYS)).toBe(1408);
    expect(networkMtu({}, false, KEYS)).toBe(1450);
  });

  it('follows the underlay MTU (driver MTU) and lets com.docker.network.mtu override', () => {
    expect(networkMtu({ [KEYS.driverMtu]: '9000' }, true, KEYS)).toBe((8950 - 42) & ~3);
    expect(networkMtu({ [KEYS.mtu]: '1300' }, true, KEYS)).toBe(1300);
    expect(() => networkMtu({ [KEYS.mtu]: '100' }, true, KEYS)).toThrow(UserError);
  });
});

describe('duration (--rekey-interval)', () => {
  it('reads ms, s, m, h and refuses the rest', () => {
    expect([duration('5s', 'x'), duration('500ms', 'x'), duration('2m', 'x'), duration('1.5s', 'x')]).toEqual([5000, 500, 120_000, 1500]);
    for (const v of ['5', 's', '-1s', '5 sec']) expect(() => duration(v, '--rekey-interval')).toThrow(/--rekey-interval/);
  });
});
