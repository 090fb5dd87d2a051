import { parseFailure, parsedValue, type Parsed } from './parsed.js';

const RANGE_HINT = 'write s<low>[-s<high>][:<categories>], categories c<n> or c<a>.c<b> (0-1023) joined by commas, e.g. s0-s3:c0.c5,c9';
const MAX_CATEGORY = 1023;

/**
 * An SELinux MLS/MCS range as `range_info.rb` reads it, returned in canonical form with consecutive
 * categories compressed (`s3-s7:c5,c8,c9,c10,c17` → `s3-s7:c5,c8.c10,c17`).
 *
 * Messages are AWS's agent's; its short ones ("invalid sensitivity s") are kept word for word and the
 * hint says what a range looks like.
 */
export function parseSelinuxRange(range: string): Parsed<string> {
  try {
    return parsedValue(canonicalRange(range));
  } catch (error) {
    if (error instanceof RangeProblem) return parseFailure(error.message, RANGE_HINT);
    throw error;
  }
}

class RangeProblem extends Error {}

function canonicalRange(range: string): string {
  const [levels, categoryText] = splitOnce(range, ':');
  const [lowText, highText] = splitOnce(levels, '-');
  const low = sensitivity(lowText);
  const high = highText === undefined ? low : sensitivity(highText);
  if (high < low) {
    throw new RangeProblem(
      `The deployment failed because of a problem with the SELinux range specified (${range}) for the context parameter in the permissions section of the application specification file. Make corrections in the permissions section of the AppSpec file, and then try again.`,
    );
  }
  const levelText = low === high ? `s${low}` : `s${low}-s${high}`;
  return categoryText === undefined ? levelText : `${levelText}:${compressCategories(categories(categoryText))}`;
}

/** `ensure_parts`: at most one split, and neither side may be empty. */
function splitOnce(input: string, separator: string): [string, string | undefined] {
  const at = input.indexOf(separator);
  const parts: [string, string | undefined] = at < 0 ? [input, undefined] : [input.slice(0, at), input.slice(at + 1)];
  if (parts[0] === '' || parts[1] === '') throw new RangeProblem(`invalid range part ${input}`);
  return parts;
}

function sensitivity(text: string): number {
  if (!/^s\d+$/.test(text)) throw new RangeProblem(`invalid sensitivity ${text}`);
  return Number.parseInt(text.slice(1), 10);
}

function category(text: string): number {
  if (!/^c\d+$/.test(text)) throw new RangeProblem(`invalid category ${text}`);
  const level = Number.parseInt(text.slice(1), 10);
  if (level > MAX_CATEGORY) throw new RangeProblem(`invalid category ${text}`);
  return level;
}

/** Sorted category numbers; `c2.c4` expands to 2, 3, 4; a category named twice is refused. */
function categories(text: string): number[] {
  const numbers: number[] = [];
  // Ruby's String#split drops trailing empty fields, so `c1,` is accepted as `c1`.
  for (const part of text.replace(/,+$/, '').split(',')) {
    if (part.includes('.')) {
      const [lowText, highText] = splitOnce(part, '.') as [string, string];
      const low = category(lowText);
      const high = category(highText);
      if (high < low) throw new RangeProblem(`invalid category range ${lowText}.${highText}`);
      for (let level = low; level <= high; level++) numbers.push(level);
    } else {
      numbers.push(category(part));
    }
  }
  numbers.sort((a, b) => a - b);
  if (numbers.some((level, index) => index > 0 && numbers[index - 1] === level)) throw new RangeProblem('duplicate categories');
  return numbers;
}

function compressCategories(sorted: number[]): string {
  const runs: string[] = [];
  let start = 0;
  while (start < sorted.length) {
    let end = start;
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end] + 1) end++;
    runs.push(end === start ? `c${sorted[start]}` : `c${sorted[start]}.c${sorted[end]}`);
    start = end + 1;
  }
  return runs.join(',');
}
