/** parseLongDuration: parseDuration's grammar plus days, bounded by ten years instead of Node's timers. */
import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, parseDuration, parseLongDuration } from './units.js';

describe('parseLongDuration', () => {
  it.each([
    ['90d', 90 * 86_400_000],
    ['1d12h', 36 * 3_600_000],
    ['6h', 6 * 3_600_000],
    ['600h', 600 * 3_600_000],
    ['1m30s', 90_000],
    ['0', 0],
  ])('%s', (text, ms) => {
    expect(parseLongDuration(text, 'x')).toBe(ms);
  });

  it.each([
    ['90', 'x: "90" has no unit; write 90s (units: ms, s, m, h, d)'],
    ['2w', 'x: invalid duration "2w" (examples: 5s, 500ms, 1m30s, 90d)'],
    ['3651d', 'x: 3651d is more than the maximum of 87600h'],
  ])('refuses %s', (text, message) => {
    expect(() => parseLongDuration(text, 'x')).toThrow(message);
  });

  it('leaves parseDuration as it was: no days, capped by the timer limit', () => {
    expect(() => parseDuration('1d', 'x')).toThrow('x: invalid duration "1d" (examples: 5s, 500ms, 1m30s)');
    expect(() => parseDuration('600h', 'x')).toThrow('is more than the maximum');
    expect(parseDuration('500ms', 'x')).toBe(500);
    expect(MAX_TIMER_MS).toBe(2 ** 31 - 1);
  });
});
