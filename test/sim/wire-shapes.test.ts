import { describe, expect, it } from 'vitest';
import { formatGoDuration, formatProtoDuration, formatRfc3339 } from '../../src/sim/index.js';

describe('wire formats of durations and instants', () => {
  it.each([
    [0, '0s'],
    [20, '20ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [17_124, '17.124s'],
    [360_000, '6m0s'],
    [61_050, '1m1.05s'],
    [3_723_500, '1h2m3.5s'],
    [12.2, '13ms'],
  ])('formats %d ms as the Go duration %s', (ms, text) => {
    expect(formatGoDuration(ms)).toBe(text);
  });

  it.each([
    [46_000, '46s'],
    [1500, '1.5s'],
    [20, '0.02s'],
    [0, '0s'],
  ])('formats %d ms as the protobuf duration %s', (ms, text) => {
    expect(formatProtoDuration(ms)).toBe(text);
  });

  it('formats instants as RFC 3339 UTC, rounded up to the millisecond', () => {
    expect(formatRfc3339(1_700_000_000_000.2)).toBe('2023-11-14T22:13:20.001Z');
  });
});
