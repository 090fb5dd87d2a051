import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { expect } from 'vitest';

/**
 * What every fuzz file shares: one seed for the run, printed once per file with the command that
 * replays it; a time budget per property, so the fuzz suite takes a bounded time in CI however loaded
 * the machine is; and the property itself, "a valid value or the project's typed error", in one place.
 *
 * FUZZ_SEED=<n>   replay a run (default: a fixed seed, so CI is repeatable)
 * FUZZ_PATH=<p>   with FUZZ_SEED and the test's name (-t), replay only the counterexample a failure printed
 * FUZZ_SCALE=<k>  run k times as many cases for k times as long (locally, e.g. FUZZ_SCALE=50)
 * FUZZ_VERBOSE=1  print how many cases each property ran
 */

const DEFAULT_SEED = 20_240_613;

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}=${raw} is not a positive number`);
  return value;
}

export const FUZZ_SEED = Math.trunc(numberFromEnv('FUZZ_SEED', DEFAULT_SEED));
export const FUZZ_SCALE = numberFromEnv('FUZZ_SCALE', 1);
const FUZZ_PATH = process.env.FUZZ_PATH;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const announced = new Set<string>();

/** `test/fuzz/x.test.ts` for the caller's `import.meta.url`. */
function testFile(fileUrl: string): string {
  return relative(repoRoot, fileURLToPath(fileUrl));
}

function replayCommand(file: string, extra = ''): string {
  return `FUZZ_SEED=${FUZZ_SEED}${extra} npx vitest run ${file}`;
}

/** Prints the seed once for the file, with how to replay it. */
export function announceSeed(fileUrl: string): void {
  const file = testFile(fileUrl);
  if (announced.has(file)) return;
  announced.add(file);
  console.log(`[fuzz] ${file}: seed ${FUZZ_SEED}${FUZZ_SCALE !== 1 ? `, scale ${FUZZ_SCALE}` : ''}; replay with: ${replayCommand(file)}`);
}

export interface Budget {
  /** Cases at scale 1; fewer run when the time limit comes first. */
  runs: number;
  /** Wall-clock limit of the property (generation, runs and shrinking) at scale 1. */
  timeMs: number;
  /** Async properties: one case taking longer than this is a failure (a hang). Default 10 s. */
  caseTimeoutMs?: number;
}

/** The vitest timeout for a test that runs properties worth `totalMs` of budget at the current scale. */
export function testTimeout(totalMs: number): number {
  return totalMs * FUZZ_SCALE + 60_000;
}

/**
 * Runs a property with the run's seed and budget. A failure reports fast-check's counterexample and
 * the command that replays exactly that case.
 */
export async function fuzz<T>(fileUrl: string, property: fc.IRawProperty<T>, budget: Budget): Promise<void> {
  announceSeed(fileUrl);
  const plugins: fc.Plugin<T>[] = [fc.interruptAfterTimeLimit(budget.timeMs * FUZZ_SCALE)];
  if (property.isAsync()) plugins.push(fc.timeout(budget.caseTimeoutMs ?? 10_000));
  const details = await fc.check(property, {
    seed: FUZZ_SEED,
    numRuns: Math.max(1, Math.round(budget.runs * FUZZ_SCALE)),
    plugins,
    ...(FUZZ_PATH ? { path: FUZZ_PATH, endOnFailure: true } : {}),
  });
  if (process.env.FUZZ_VERBOSE) console.log(`[fuzz] ${details.numRuns} cases${details.interrupted ? ' (stopped by the time budget)' : ''}`);
  if (details.failed) {
    const file = testFile(fileUrl);
    const path = details.counterexamplePath ? ` FUZZ_PATH=${details.counterexamplePath}` : '';
    // The path belongs to this test's property only: run just this test.
    const test = expect.getState().currentTestName?.split(' > ').at(-1);
    // -t takes a regular expression.
    const only = test ? ` -t '${test.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/'/g, "'\\''")}'` : '';
    const cause = details.errorInstance instanceof Error ? `\n\nThe failure: ${details.errorInstance.stack ?? details.errorInstance.message}` : '';
    throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}${cause}\n\nReplay this case: ${replayCommand(file, path)}${only}`);
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Errors that mean a bug in our code, even when a wrapper turned them into a typed error. */
const BUG_CLASSES: ErrorClass[] = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError];

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return `a thrown ${typeof error}: ${String(error)}`;
  return `${error.constructor.name}: ${error.message}\n${error.stack ?? ''}`;
}

/** The first error in `error`'s cause chain that is a bug class (TypeError, stack overflow...), if any. */
export function bugInCauses(error: unknown): Error | undefined {
  const seen = new Set<unknown>();
  for (let current: unknown = error; current instanceof Error && !seen.has(current); current = current.cause) {
    seen.add(current);
    if (BUG_CLASSES.some((bug) => current instanceof bug)) return current as Error;
  }
  return undefined;
}

/**
 * Passes when `error` is one of `expected` with a message, and no TypeError, RangeError... hides in its
 * causes; otherwise throws, which fails the property with the offending error.
 */
export function expectTypedError(error: unknown, ...expected: ErrorClass[]): void {
  const names = expected.map((type) => type.name).join(' or ');
  if (!expected.some((type) => error instanceof type)) {
    throw new Error(`expected a result or ${names}, but got ${describeError(error)}`);
  }
  if ((error as Error).message.trim() === '') throw new Error(`${names} without a message`);
  const bug = bugInCauses(error);
  if (bug) throw new Error(`${(error as Error).constructor.name} wraps a bug: ${describeError(bug)}`);
}

/**
 * Runs a synchronous parser on one case: its value, or undefined after a typed error. Throws (failing
 * the property) on any other exception or when the case takes longer than `deadlineMs`. A synchronous
 * loop cannot be interrupted in process, so the deadline catches a slow-down before it becomes a hang.
 */
export function parseOrTypedError<T>(parse: () => T, expected: ErrorClass[], deadlineMs = 5_000): T | undefined {
  const started = performance.now();
  let value: T | undefined;
  try {
    value = parse();
  } catch (error) {
    expectTypedError(error, ...expected);
  }
  const elapsed = performance.now() - started;
  if (elapsed > deadlineMs) throw new Error(`one case took ${Math.round(elapsed)} ms (limit ${deadlineMs} ms)`);
  return value;
}

/** The asynchronous form of parseOrTypedError; fast-check's per-case timeout bounds a hang. */
export async function settleOrTypedError<T>(parse: () => Promise<T>, expected: ErrorClass[]): Promise<T | undefined> {
  try {
    return await parse();
  } catch (error) {
    expectTypedError(error, ...expected);
    return undefined;
  }
}

/**
 * Peak memory while a case runs, sampled every few milliseconds (asynchronous cases yield often enough):
 * a header that claims a 4 GiB size must not make the process allocate it.
 */
export class MemoryWatch {
  readonly #baseline = MemoryWatch.#sample();
  #peak = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs = 5) {
    this.#timer = setInterval(() => this.#record(), intervalMs);
    this.#timer.unref();
  }

  static #sample(): number {
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  }

  #record(): void {
    this.#peak = Math.max(this.#peak, MemoryWatch.#sample() - this.#baseline);
  }

  /** Stops sampling; throws when the growth went past `limitBytes`. */
  stop(limitBytes: number): void {
    this.#record();
    clearInterval(this.#timer);
    if (this.#peak > limitBytes) {
      throw new Error(`memory grew by ${Math.round(this.#peak / 1024 / 1024)} MiB during one case (limit ${Math.round(limitBytes / 1024 / 1024)} MiB)`);
    }
  }
}

/** Text that exercises parsers: any unicode, control characters, and the characters YAML and JSON care about. */
export function anyText(maxLength = 200): fc.Arbitrary<string> {
  const structural = fc.constantFrom(
    ':', '-', ' ', '\n', '\t', '\r', '#', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', '{', '}', '[', ']', ',', '?', '<<', '~', '\\', '\0', '\uFEFF', '\u2028',
  );
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: fc.oneof(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }), structural), maxLength }),
  );
}

/** Keys that name Object's own members: a parser that looks keys up in a plain object must not find these. */
export const OBJECT_MEMBER_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty'];

/** Any JSON value (as JSON.parse gives it), with `strings` among the texts and Object's member names among the keys. */
export function anyJson(strings: readonly string[] = []): fc.Arbitrary<unknown> {
  const text = strings.length > 0 ? fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...strings)) : fc.string({ maxLength: 12 });
  return fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.double(), fc.integer(), text, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 3 }),
    object: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(...OBJECT_MEMBER_KEYS)), tie('value'), { maxKeys: 3 }),
  })).value;
}

/** A field of a JSON document: usually its usual kind of value, now and then any JSON value. */
export function usuallyOr<T>(usual: fc.Arbitrary<T>, other: fc.Arbitrary<unknown> = anyJson()): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 3, arbitrary: usual }, { weight: 1, arbitrary: other });
}

/** Applies byte-level mutations to a real input: flips, overwrites, truncation, splices and insertions. */
export function mutatedBytes(original: Uint8Array, maxMutations = 4): fc.Arbitrary<Buffer> {
  const length = original.length;
  const position = fc.nat({ max: Math.max(0, length - 1) });
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
    fc.record({ kind: fc.constant('set' as const), at: position, value: fc.constantFrom(0, 0xff, 0x7f, 0x80, 0x30, 0x37, 0x20, 0x2f, 0x2e) }),
    fc.record({ kind: fc.constant('truncate' as const), at: position }),
    fc.record({ kind: fc.constant('splice' as const), from: position, to: position, size: fc.integer({ min: 1, max: 1024 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  );
  return fc.array(mutation, { minLength: 1, maxLength: maxMutations }).map((mutations) => {
    let bytes = Buffer.from(original);
    for (const m of mutations) {
      if (bytes.length === 0) break;
      switch (m.kind) {
        case 'flip':
          if (m.at < bytes.length) bytes[m.at] ^= 1 << m.bit;
          break;
        case 'set':
          if (m.at < bytes.length) bytes[m.at] = m.value;
          break;
        case 'truncate':
          bytes = bytes.subarray(0, m.at);
          break;
        case 'splice': {
          // Copies a run of the input over another place: a header where content belongs, and so on.
          const chunk = Buffer.from(bytes.subarray(m.from, m.from + m.size));
          chunk.copy(bytes, Math.min(m.to, bytes.length));
          break;
        }
        case 'insert':
          bytes = Buffer.concat([bytes.subarray(0, m.at), Buffer.from(m.bytes), bytes.subarray(m.at)]);
          break;
      }
    }
    // A counterexample prints as its mutations, not as thousands of byte values.
    const shown = `mutated(${original.length} bytes, ${JSON.stringify(mutations, (_key, value: unknown) => (value instanceof Uint8Array ? [...value] : value))})`;
    return Object.defineProperty(bytes, fc.toStringMethod, { value: () => shown });
  });
}
