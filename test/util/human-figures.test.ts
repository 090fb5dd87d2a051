import { describe, expect, it } from 'vitest';
import { formatBytes, formatMegabytes } from '../../src/util/byte-size.js';
import { formatDuration, formatMs } from '../../src/util/duration.js';
import { localDate, localTimestamp, localTimestampMs } from '../../src/util/local-time.js';

const MiB = 1024 * 1024;

describe('durations: one format wherever the agent prints one', () => {
  it.each([
    [42, 'whole', '42s'],
    [0.4, 'whole', '0s'],
    [185, 'whole', '3m 05s'],
    [3725, 'whole', '1h 02m'],
    [3 * 3600 + 60 * 7, 'whole', '3h 07m'],
    [2 * 86400 + 4 * 3600, 'whole', '2d 4h'],
    [0.4, 'fine', '400ms'],
    [0.9996, 'fine', '1.0s'],
    [3.25, 'fine', '3.3s'],
    [42, 'fine', '42s'],
    [125, 'fine', '2m 05s'],
    [undefined, 'whole', '?'],
    [Number.POSITIVE_INFINITY, 'fine', '?'],
  ] as const)('%s seconds at %s precision → %s', (seconds, precision, text) => {
    expect(formatDuration(seconds, precision)).toBe(text);
  });

  it('takes milliseconds at fine precision', () => {
    expect(formatMs(20)).toBe('20ms');
    expect(formatMs(1500)).toBe('1.5s');
  });
});

describe('byte sizes', () => {
  it.each([
    [0, '0 B'],
    [512.6, '513 B'],
    [1536, '1.5 KiB'],
    [1024 * MiB, '1.0 GiB'],
    [-5, '0 B'],
  ])('%s → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it.each([
    [MiB, '1.0 MB'],
    [2.5 * MiB, '2.5 MB'],
    [10 * MiB, '10 MB'],
    [10240 * MiB, '10240 MB'],
  ])('%s beside an _mb key → %s', (bytes, text) => {
    expect(formatMegabytes(bytes)).toBe(text);
  });
});

describe('local timestamps', () => {
  const date = new Date(2024, 9, 9, 22, 54, 7, 45);
  it('stamps the agent log, scripts.log, the deployments log and rotated file names in local time', () => {
    expect(localTimestamp(date)).toBe('2024-10-09T22:54:07');
    expect(localTimestamp(date, ' ')).toBe('2024-10-09 22:54:07');
    expect(localTimestampMs(date)).toBe('2024-10-09 22:54:07.045');
    expect(localDate(date, '')).toBe('20241009');
  });
});
