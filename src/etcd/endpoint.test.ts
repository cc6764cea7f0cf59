import { describe, expect, it } from 'vitest';
import { parseEndpoint, parseEndpoints } from './endpoint.js';
import { toDecimalId, toHexId } from './ids.js';

describe('parseEndpoint', () => {
  it.each([
    ['127.0.0.1:2379', false, 'http://127.0.0.1:2379', '127.0.0.1:2379', false],
    ['127.0.0.1:2379', true, 'https://127.0.0.1:2379', '127.0.0.1:2379', true],
    ['http://10.0.0.1:2379', true, 'http://10.0.0.1:2379', '10.0.0.1:2379', false],
    ['https://etcd-0.etcd:2379', false, 'https://etcd-0.etcd:2379', 'etcd-0.etcd:2379', true],
    ['  localhost:12379 ', false, 'http://localhost:12379', 'localhost:12379', false],
    ['[::1]:2379', false, 'http://[::1]:2379', '[::1]:2379', false],
  ])('%s (tls by default: %s)', (raw, tls, url, target, secure) => {
    const e = parseEndpoint(raw, tls);
    expect(e.url).toBe(url);
    expect(e.target).toBe(target);
    expect(e.secure).toBe(secure);
  });

  it.each([
    ['', /empty endpoint/],
    ['127.0.0.1', /malformed endpoint/],
    ['http://127.0.0.1', /no port/],
    ['unix:///tmp/etcd.sock', /scheme unix is not supported/],
    ['http://127.0.0.1:2379/v3', /has no path/],
    ['http://127.0.0.1:99999', /malformed endpoint/],
    ['foo:bar:baz', /malformed endpoint/],
  ])('rejects %j', (raw, message) => {
    expect(() => parseEndpoint(raw)).toThrow(message);
  });

  it('splits comma lists and drops duplicates', () => {
    expect(parseEndpoints('127.0.0.1:2379, http://127.0.0.1:2379,127.0.0.1:22379').map((e) => e.url)).toEqual([
      'http://127.0.0.1:2379',
      'http://127.0.0.1:22379',
    ]);
    expect(() => parseEndpoints(' , ')).toThrow(/no endpoints/);
  });
});

describe('member IDs', () => {
  it('round-trips IDs above 2^53 without losing a bit', () => {
    const dec = '18446744073709551615';
    expect(toHexId(dec)).toBe('ffffffffffffffff');
    expect(toDecimalId('ffffffffffffffff')).toBe(dec);
    const big = '10276657743932975437';
    expect(toDecimalId(toHexId(big))).toBe(big);
    expect(Number(big).toString()).not.toBe(big);
  });
  it('refuses what is not a hex ID', () => {
    expect(() => toDecimalId('xyz')).toThrow(/not a hex member ID/);
  });
});
