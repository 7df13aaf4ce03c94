import { describe, expect, it } from 'vitest';
import {
  buildTrustList,
  clientKey,
  normalizeIp,
  parseForwardedHop,
  parseProxyRange,
  resolveClientIp,
} from '../../src/admission/client-ip.ts';

describe('normalizeIp', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['0000:0000:0000:0000:0000:ffff:7f00:0001', '127.0.0.1'],
    ['[2001:DB8::1]', '2001:db8:0:0:0:0:0:1'],
    ['::1', '0:0:0:0:0:0:0:1'],
    ['fe80::1%eth0', 'fe80:0:0:0:0:0:0:1'],
  ])('%s → %s', (input, expected) => expect(normalizeIp(input)).toBe(expected));

  it.each(['', 'localhost', '1.2.3', '2001:db8::1::2', 'g::1', '1:2:3:4:5:6:7:8:9'])('rejects %j', (input) =>
    expect(normalizeIp(input)).toBeNull(),
  );
});

describe('clientKey', () => {
  it('keys IPv4 by address and IPv6 by its prefix', () => {
    expect(clientKey('203.0.113.9', 64)).toBe('203.0.113.9');
    expect(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64)).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 56)).toBe('2001:db8:1:0:0:0:0:0/56');
    expect(clientKey('2001:db8:1:2ff:1:1:1:1', 56)).toBe('2001:db8:1:200:0:0:0:0/56');
    // Two hosts of one /64 share a budget; another /64 does not.
    expect(clientKey('2001:db8:1:2::1', 64)).toBe(clientKey('2001:db8:1:2::ffff', 64));
    expect(clientKey('2001:db8:1:3::1', 64)).not.toBe(clientKey('2001:db8:1:2::1', 64));
  });
});

describe('resolveClientIp', () => {
  const trusted = buildTrustList(['10.0.0.0/8', '2001:db8:ffff::/48', '192.0.2.1']);

  it('ignores X-Forwarded-For from an untrusted peer', () => {
    expect(resolveClientIp('198.51.100.1', '1.2.3.4', trusted)).toBe('198.51.100.1');
  });

  it('walks right to left past trusted hops to the first untrusted address', () => {
    expect(resolveClientIp('10.0.0.5', '6.6.6.6, 203.0.113.9, 10.1.1.1', trusted)).toBe('203.0.113.9');
    expect(resolveClientIp('192.0.2.1', '203.0.113.9', trusted)).toBe('203.0.113.9');
    expect(resolveClientIp('2001:db8:ffff::1', '2001:db8:1::5', trusted)).toBe('2001:db8:1:0:0:0:0:5');
  });

  it('stops at a malformed hop and keeps the last trusted view', () => {
    expect(resolveClientIp('10.0.0.5', '203.0.113.9, garbage', trusted)).toBe('10.0.0.5');
    expect(resolveClientIp('10.0.0.5', '10.0.0.7', trusted)).toBe('10.0.0.7');
  });

  it('refuses a bad CIDR naming the option', () => {
    expect(() => buildTrustList(['10.0.0.0/8', 'nonsense'])).toThrow(/server\.trustedProxies: nonsense/);
    // BlockList.addSubnet used to throw a bare RangeError for these.
    expect(() => buildTrustList(['10.0.0.0/33'])).toThrow(/server\.trustedProxies: 10\.0\.0\.0\/33: the prefix length must be 0 to 32/);
    expect(() => buildTrustList(['fd00::/129'])).toThrow(/server\.trustedProxies: fd00::\/129/);
  });

  it('strips a port a proxy wrote after the address, so clients keep their own keys', () => {
    expect(resolveClientIp('10.0.0.5', '203.0.113.9:5678', trusted)).toBe('203.0.113.9');
    expect(resolveClientIp('10.0.0.5', '[2001:db8:1::5]:443', trusted)).toBe('2001:db8:1:0:0:0:0:5');
    expect(resolveClientIp('10.0.0.5', '6.6.6.6, 203.0.113.9:1, 10.1.1.1:80', trusted)).toBe('203.0.113.9');
    expect(resolveClientIp('10.0.0.5', '[2001:db8:1::5]', trusted)).toBe('2001:db8:1:0:0:0:0:5');
  });
});

describe('parseForwardedHop', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    [' 1.2.3.4:5678 ', '1.2.3.4'],
    ['[2001:db8::1]:443', '2001:db8:0:0:0:0:0:1'],
    ['[2001:db8::1]', '2001:db8:0:0:0:0:0:1'],
    // A bare IPv6 address: its last group is never taken for a port.
    ['2001:db8::1:443', '2001:db8:0:0:0:0:1:443'],
    ['[::ffff:1.2.3.4]:80', '1.2.3.4'],
  ])('%j → %j', (hop, ip) => {
    expect(parseForwardedHop(hop)).toBe(ip);
  });

  it.each(['1.2.3.4:', '1.2.3.4:123456', '300.1.1.1:80', '[1.2.3.4', '[zz::1]:80', 'unknown', '_hidden'])('%j is not an address', (hop) => {
    expect(parseForwardedHop(hop)).toBeNull();
  });
});

describe('parseProxyRange', () => {
  it('reads addresses and CIDRs of both families, an IPv4-mapped range as IPv4', () => {
    expect(parseProxyRange('10.0.0.0/8')).toEqual({ ip: '10.0.0.0', family: 'ipv4', prefix: 8 });
    expect(parseProxyRange('fd00::/8')).toEqual({ ip: 'fd00:0:0:0:0:0:0:0', family: 'ipv6', prefix: 8 });
    expect(parseProxyRange('192.0.2.1')).toEqual({ ip: '192.0.2.1', family: 'ipv4', prefix: undefined });
    expect(parseProxyRange('::ffff:10.0.0.0/104')).toEqual({ ip: '10.0.0.0', family: 'ipv4', prefix: 8 });
  });

  it.each(['10.0.0.0/33', '300.1.1.1', 'fd00::/129', '10.0.0.0/', '10.0.0.0/x', '1/2/3', '::ffff:10.0.0.0/90'])(
    '%j is refused with a reason',
    (entry) => {
      expect(typeof parseProxyRange(entry)).toBe('string');
    },
  );
});
