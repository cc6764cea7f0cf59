import { describe, expect, it } from 'vitest';
import { RepeatedWarnings } from './repeated-warnings.js';

const SECOND = 1_000;
const T0 = Date.parse('2026-12-07T10:00:00Z');

function setup() {
  const clock = { t: T0, now: () => clock.t };
  const lines: { level: string; obj: object; msg: string | undefined }[] = [];
  const log = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  const logger = { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') };
  return { clock, lines, repeats: new RepeatedWarnings(logger, clock) };
}

describe('RepeatedWarnings', () => {
  it('logs the same warning once a minute, the next line saying how many were left out', () => {
    const { clock, lines, repeats } = setup();
    // Every second for 2.5 minutes.
    for (let i = 0; i <= 150; i++) {
      clock.t = T0 + i * SECOND;
      repeats.warn('observation failed', 'prod', 'connection refused');
    }
    expect(lines).toEqual([
      { level: 'warn', obj: { cluster: 'prod', err: 'connection refused' }, msg: 'observation failed' },
      { level: 'warn', obj: { cluster: 'prod', err: 'connection refused', repeated: 59 }, msg: 'observation failed' },
      { level: 'warn', obj: { cluster: 'prod', err: 'connection refused', repeated: 59 }, msg: 'observation failed' },
    ]);
  });

  it('says no repeated count when nothing was left out (an interval longer than a minute)', () => {
    const { clock, lines, repeats } = setup();
    repeats.warn('observation failed', 'prod', 'connection refused');
    clock.t += 2 * 60 * SECOND;
    repeats.warn('observation failed', 'prod', 'connection refused');
    expect(lines.map((l) => l.obj)).toEqual([
      { cluster: 'prod', err: 'connection refused' },
      { cluster: 'prod', err: 'connection refused' },
    ]);
  });

  it('logs a different error, another cluster and another message at once', () => {
    const { clock, lines, repeats } = setup();
    repeats.warn('observation failed', 'prod', 'connection refused');
    clock.t += SECOND;
    repeats.warn('observation failed', 'prod', 'connection refused');
    repeats.warn('observation failed', 'prod', 'deadline exceeded');
    repeats.warn('observation failed', 'staging', 'deadline exceeded');
    repeats.warn('noticing defragmentations by others failed', 'prod', 'deadline exceeded');
    clock.t += SECOND;
    repeats.warn('observation failed', 'prod', 'connection refused');
    expect(lines.map((l) => [l.msg, l.obj])).toEqual([
      ['observation failed', { cluster: 'prod', err: 'connection refused' }],
      ['observation failed', { cluster: 'prod', err: 'deadline exceeded' }],
      ['observation failed', { cluster: 'staging', err: 'deadline exceeded' }],
      ['noticing defragmentations by others failed', { cluster: 'prod', err: 'deadline exceeded' }],
      ['observation failed', { cluster: 'prod', err: 'connection refused' }],
    ]);
  });

  it('logs the end once at info, with how many times it failed since when; the next failure is new again', () => {
    const { clock, lines, repeats } = setup();
    repeats.ended('observation failed', 'prod', 'observation succeeded again');
    expect(lines).toEqual([]);
    for (let i = 0; i < 5; i++) {
      repeats.warn('observation failed', 'prod', 'connection refused');
      clock.t += SECOND;
    }
    repeats.ended('observation failed', 'prod', 'observation succeeded again');
    repeats.ended('observation failed', 'prod', 'observation succeeded again');
    repeats.warn('observation failed', 'prod', 'connection refused');
    expect(lines).toEqual([
      { level: 'warn', obj: { cluster: 'prod', err: 'connection refused' }, msg: 'observation failed' },
      { level: 'info', obj: { cluster: 'prod', failures: 5, since: '2026-12-07T10:00:00.000Z' }, msg: 'observation succeeded again' },
      { level: 'warn', obj: { cluster: 'prod', err: 'connection refused' }, msg: 'observation failed' },
    ]);
  });

  it('logs again when the clock went back rather than keeping quiet until it catches up', () => {
    const { clock, lines, repeats } = setup();
    repeats.warn('observation failed', 'prod', 'connection refused');
    clock.t -= 3_600 * SECOND;
    repeats.warn('observation failed', 'prod', 'connection refused');
    expect(lines).toHaveLength(2);
  });
});
