import { describe, expect, it } from 'vitest';
import { LOG_TAIL_LIMIT, LogTail, stripAnsi, tailOf } from '../../src/hooks/log-tail.js';
import { registerSecret } from '../../src/log/redact.js';

/** AWS's trimming (a 2048-character budget, off by one entry), applied after every push as `ScriptLog#append_to_log` does. */
function awsAgentTail(entries: string[]): string {
  let log: string[] = [];
  for (const entry of entries) {
    log.push(entry);
    let i = log.length;
    let rem = 2048;
    while (i > 0 && rem - log[i - 1].length > 0) {
      i -= 1;
      // Ruby's log[i - 1] with i = 0 is the last element.
      rem -= log.at(i - 1)!.length;
    }
    if (i > 0) log = log.slice(i);
  }
  return log.join('');
}

const sized = (length: number, fill = 'a') => `${fill.repeat(length - 1)}\n`;

describe('tailOf (diagnostics tail, without AWS\'s off-by-one)', () => {
  it('30 entries of 100 characters: both keep 20 (2000 characters)', () => {
    const entries = Array.from({ length: 30 }, (_, index) => sized(100, String.fromCharCode(65 + (index % 26))));
    expect(awsAgentTail(entries)).toBe(entries.slice(10).join(''));
    expect(tailOf(entries)).toBe(entries.slice(10).join(''));
  });

  it('a newest entry of 2048+ characters: AWS\'s agent empties the tail, we keep its last 2048 characters', () => {
    const long = `${'x'.repeat(3000)}END\n`;
    const entries = ['[stdout]before\n', long];
    expect(awsAgentTail(entries)).toBe('');
    expect(tailOf(entries)).toBe(long.slice(-2048));
    expect(tailOf(entries)).toHaveLength(LOG_TAIL_LIMIT);
    expect(tailOf([sized(2048)])).toBe(sized(2048));
  });

  it('[1500, 10]: AWS\'s agent keeps only [10], we keep both (they fit)', () => {
    const entries = [sized(1500, 'a'), sized(10, 'b')];
    expect(awsAgentTail(entries)).toBe(entries[1]);
    expect(tailOf(entries)).toBe(entries.join(''));
  });

  it('[10, 2047]: AWS\'s agent keeps both (2057 > 2048), we keep [2047]', () => {
    const entries = [sized(10, 'a'), sized(2047, 'b')];
    expect(awsAgentTail(entries)).toHaveLength(2057);
    expect(tailOf(entries)).toBe(entries[1]);
  });

  it('keeps only a contiguous run of the newest entries, never more than the limit', () => {
    const entries = [sized(5, 'a'), sized(2000, 'b'), sized(40, 'c'), sized(8, 'd')];
    expect(tailOf(entries)).toBe(entries.slice(1).join(''));
    expect(tailOf([sized(5, 'a'), sized(2040, 'b'), sized(10, 'c')])).toBe(sized(10, 'c'));
    expect(tailOf([])).toBe('');
    expect(tailOf(['abc\n'], 0)).toBe('');
  });

  it('does not cut a surrogate pair in half', () => {
    const emoji = '😀'.repeat(1500);
    const tail = tailOf([emoji]);
    expect(tail.length).toBeLessThanOrEqual(2048);
    expect(tail.charCodeAt(0)).toBeGreaterThanOrEqual(0xd800);
    expect(tail.charCodeAt(0)).toBeLessThan(0xdc00);
  });
});

describe('stripAnsi', () => {
  it('removes colours, cursor moves, OSC titles and links', () => {
    expect(stripAnsi('\u001b[1;31merror\u001b[0m: x')).toBe('error: x');
    expect(stripAnsi('\u001b[2K\u001b[1Gprogress')).toBe('progress');
    expect(stripAnsi('\u001b]0;title\u0007text')).toBe('text');
    expect(stripAnsi('\u001b]8;;http://x\u001b\\link\u001b]8;;\u001b\\')).toBe('link');
    expect(stripAnsi('plain [stdout] text')).toBe('plain [stdout] text');
  });
});

describe('LogTail', () => {
  it('gives the same tail as tailOf over everything pushed, in bounded memory', () => {
    const tail = new LogTail();
    const all: string[] = [];
    for (let index = 0; index < 20000; index += 1) {
      const message = `[stdout]line ${index} ${'z'.repeat(index % 97)}`;
      all.push(`${message}\n`);
      tail.pushMessages([message]);
    }
    expect(tail.text()).toBe(tailOf(all));
    expect((tail as unknown as { entries: string[] }).entries.length).toBeLessThan(2048);
  });

  it('pushMessages keeps what a message-by-message push keeps', () => {
    const messages = Array.from({ length: 500 }, (_, index) => `[stdout]${index}`);
    const batched = new LogTail();
    batched.pushMessages(messages);
    const single = new LogTail();
    for (const message of messages) single.push(`${message}\n`);
    expect(batched.text()).toBe(single.text());
  });

  it('strips ANSI escapes and redacts known secrets', () => {
    registerSecret('very-secret-value-123');
    const tail = new LogTail();
    tail.pushMessages(['[stdout]\u001b[32mok\u001b[0m', '[stderr]token very-secret-value-123 leaked']);
    expect(tail.text()).toBe('[stdout]ok\n[stderr]token [REDACTED] leaked\n');
  });
});
