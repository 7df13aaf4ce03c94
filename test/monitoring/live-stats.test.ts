import { describe, expect, it } from 'vitest';
import { LiveStats, isoSeconds } from '../../src/monitoring/live-stats.ts';

function setup(startIso: string, timeZone = 'UTC', windowSec = 60) {
  let now = Date.parse(startIso);
  const totals = { received: 0, sent: 0 };
  let active = 0;
  const stats = new LiveStats({
    timeZone,
    messagesPerMinuteWindowSec: windowSec,
    topOffendersCapacity: 5,
    now: () => now,
    totals: () => totals,
    activeConnections: () => active,
  });
  return {
    stats,
    totals,
    setActive: (n: number) => (active = n),
    advance: (ms: number) => (now += ms),
    /** advances second by second, sampling like the real 1 s timer */
    run: (seconds: number, perSecond: (i: number) => void = () => {}) => {
      for (let i = 0; i < seconds; i++) {
        now += 1000;
        perSecond(i);
        stats.tick();
      }
    },
  };
}

describe('monitoring live stats', () => {
  it("produces exactly the reference guide's fields", () => {
    const { stats } = setup('2025-11-10T12:00:00Z');
    expect(Object.keys(stats.snapshot()).sort()).toEqual(
      [
        'active_connections',
        'avg_connection_duration',
        'connections_today',
        'messages_per_minute',
        'messages_received',
        'messages_sent',
        'timestamp',
      ].sort(),
    );
    expect(stats.snapshot().timestamp).toBe('2025-11-10T12:00:00Z');
  });

  it('counts today from UTC midnight and resets at the next one', () => {
    const s = setup('2025-11-10T23:59:00Z');
    s.setActive(2);
    s.stats.connectionOpened();
    s.stats.connectionOpened();
    s.stats.connectionClosed(10_000);
    s.stats.connectionClosed(20_000);
    s.totals.received = 10;
    s.totals.sent = 4;
    expect(s.stats.snapshot()).toMatchObject({
      active_connections: 2,
      connections_today: 2,
      messages_received: 10,
      messages_sent: 4,
      avg_connection_duration: 15,
    });
    s.advance(61_000); // 00:00:01 next day
    s.stats.connectionOpened();
    s.totals.received = 13;
    expect(s.stats.snapshot()).toMatchObject({
      connections_today: 1,
      messages_received: 3,
      messages_sent: 0,
      avg_connection_duration: 0,
      timestamp: '2025-11-11T00:00:01Z',
    });
  });

  it('uses the configured time zone for "today"', () => {
    // Asia/Tokyo is UTC+9: its midnight is 15:00 UTC.
    const s = setup('2025-11-10T14:59:30Z', 'Asia/Tokyo');
    s.stats.connectionOpened();
    s.advance(20_000); // 14:59:50Z, still the same Tokyo day
    s.stats.connectionOpened();
    expect(s.stats.snapshot().connections_today).toBe(2);
    s.advance(20_000); // 15:00:10Z = 00:00:10 in Tokyo
    expect(s.stats.snapshot().connections_today).toBe(0);
  });

  it('reports messages_per_minute over the trailing window, both directions', () => {
    const s = setup('2025-11-10T12:00:00Z');
    // 10 messages per second for 90 s (6 received + 4 sent).
    s.run(90, () => {
      s.totals.received += 6;
      s.totals.sent += 4;
    });
    expect(s.stats.messagesPerMinute()).toBe(600);
    // Then silence: after 30 s the window holds half of it, after 60 s nothing.
    s.run(30);
    expect(s.stats.messagesPerMinute()).toBe(300);
    s.run(30);
    expect(s.stats.snapshot().messages_per_minute).toBe(0);
  });

  it('scales a shorter window to one minute', () => {
    const s = setup('2025-11-10T12:00:00Z', 'UTC', 10);
    s.run(20, () => (s.totals.received += 2));
    expect(s.stats.messagesPerMinute()).toBe(120);
  });

  it('rounds avg_connection_duration to two decimals of seconds', () => {
    const s = setup('2025-11-10T12:00:00Z');
    s.stats.connectionClosed(1000);
    s.stats.connectionClosed(1000);
    s.stats.connectionClosed(1001);
    expect(s.stats.snapshot().avg_connection_duration).toBe(1);
    s.stats.connectionClosed(45_320 * 4 - 3001);
    expect(s.stats.snapshot().avg_connection_duration).toBe(45.32);
  });

  it('keeps rejections by reason and top offenders', () => {
    const s = setup('2025-11-10T12:00:00Z');
    for (let i = 0; i < 5; i++) s.stats.rejected('conn_limit', 'enforced', '198.51.100.1');
    s.stats.rejected('auth', 'dry_run', '198.51.100.2');
    expect(s.stats.rejections(1)).toEqual({
      since: '2025-11-10T12:00:00Z',
      total: 6,
      by_reason: { auth: { enforced: 0, dry_run: 1 }, conn_limit: { enforced: 5, dry_run: 0 } },
      top_offenders: [{ client: '198.51.100.1', count: 5, error: 0 }],
    });
  });

  it('formats timestamps as ISO-8601 with Z and whole seconds', () => {
    expect(isoSeconds(Date.parse('2025-11-10T12:00:00.999Z'))).toBe('2025-11-10T12:00:00Z');
  });
});
