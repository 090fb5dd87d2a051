/** What a parser of one appspec value returns: the normalised value, or what is wrong and how to fix it. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

export function parsedValue<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

export function parseFailure<T = never>(message: string, hint?: string): Parsed<T> {
  return hint === undefined ? { ok: false, message } : { ok: false, message, hint };
}
