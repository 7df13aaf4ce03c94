import { describe, expect, it } from 'vitest';
import { extractToken } from '../../src/auth/token-source.ts';

const opts = { queryParam: 'access_token', subprotocolPrefix: 'bearer.', subprotocolMarker: 'wsguard.auth' };

describe('extractToken', () => {
  it('prefers Authorization, then the subprotocol, then the query, and strips all of them', () => {
    const t = extractToken('Bearer AAA', 'chat, bearer.BBB', 'a=1&access_token=CCC&b=2', opts);
    expect(t).toEqual({ token: 'AAA', protocols: ['chat'], query: '?a=1&b=2', tokenInSubprotocol: true, markerOffered: false });
    expect(extractToken('', 'bearer.BBB,chat', 'access_token=CCC', opts)).toEqual({
      token: 'BBB',
      protocols: ['chat'],
      query: '',
      tokenInSubprotocol: true,
      markerOffered: false,
    });
    expect(extractToken('', '', 'x=%20y&access_token=C%2BC', opts)).toEqual({
      token: 'C+C',
      protocols: [],
      query: '?x=%20y',
      tokenInSubprotocol: false,
      markerOffered: false,
    });
  });

  it('relays the rest of the query byte for byte, including odd encodings', () => {
    expect(extractToken('', '', 'q=a+b&z=%zz&access_token=T&flag', opts).query).toBe('?q=a+b&z=%zz&flag');
  });

  it('finds no token in a Basic header or an empty parameter', () => {
    expect(extractToken('Basic dXNlcjpwYXNz', '', 'access_token=', opts).token).toBeNull();
  });

  it('takes the marker out of what is offered upstream and says it was offered', () => {
    const t = extractToken('', 'wsguard.auth, bearer.TTT', '', opts);
    expect(t).toEqual({ token: 'TTT', protocols: [], query: '', tokenInSubprotocol: true, markerOffered: true });
    expect(extractToken('', 'chat,wsguard.auth', '', opts)).toMatchObject({
      protocols: ['chat'],
      markerOffered: true,
      tokenInSubprotocol: false,
    });
  });
});
