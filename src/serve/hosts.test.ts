/** The Host-header policy's pure parts: which listen addresses are loopback, and which names each policy serves. */
import { describe, expect, it } from 'vitest';
import { hostAllowed, hostPolicy, isLoopbackAddress } from './hosts.js';

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.9.8.7', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST'])('%s is', (h) => {
    expect(isLoopbackAddress(h)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'fe80::1', 'defragd.example.com', 'localhost.example.com'])(
    '%s is not',
    (h) => {
      expect(isLoopbackAddress(h)).toBe(false);
    },
  );
});

describe('hostPolicy', () => {
  it('localhost on loopback; with allowedHosts, those too on any address; any name beyond loopback without them', () => {
    expect(hostPolicy('127.0.0.1', null)).toEqual({ any: false, names: ['localhost'] });
    expect(hostPolicy('0.0.0.0', ['a.example', 'localhost'])).toEqual({ any: false, names: ['localhost', 'a.example'] });
    expect(hostPolicy('::', null)).toEqual({ any: true });
    expect(hostAllowed(hostPolicy('::', null), undefined, '1.1')).toBe(true);
  });
});
