import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import type { AppSpecProblem, SourcePosition } from '../report/errors.js';

/** One key of a YAML mapping, with the node a problem about it should point at. */
export interface MapEntry {
  key: string;
  keyNode: Node;
  /** Undefined when the key has no value or `~`/`null`. */
  value: Node | undefined;
  /** The value when there is one, else the key: where a problem about this entry is reported. */
  at: Node;
}

/** One item of a YAML list; `value` is undefined for an empty item (`-` alone). */
export interface ListItem {
  value: Node | undefined;
  at: Node;
}

/**
 * The YAML document of one appspec, seen the way the appspec parser needs it: aliases followed,
 * `~` read as absent, scalars read as the text the user wrote, and every problem recorded with its
 * 1-based line and column.
 */
export class AppSpecReader {
  readonly problems: AppSpecProblem[] = [];
  readonly warnings: AppSpecProblem[] = [];

  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    readonly file: string,
  ) {}

  position(node: Node): SourcePosition {
    const { line, col } = this.lineCounter.linePos(node.range?.[0] ?? 0);
    return { file: this.file, line, col };
  }

  error(at: Node, message: string, hint?: string): void {
    this.problems.push(this.problem(at, message, hint));
  }

  warn(at: Node, message: string, hint?: string): void {
    const warning = this.problem(at, message, hint);
    // A mapping merged in twice (`<<: *defaults`) would otherwise repeat its warnings.
    const seen = this.warnings.some((w) => w.line === warning.line && w.col === warning.col && w.message === warning.message);
    if (!seen) this.warnings.push(warning);
  }

  /** Reports `what` as having the wrong YAML shape (a list where a value belongs, …). */
  wrongType(at: Node, what: string, expected: string, actual: Node | undefined, hint?: string): void {
    this.error(at, `${what} must be ${expected}, but it is ${describe(actual)}`, hint);
  }

  /** Follows aliases; an empty value, `~` or `null` is undefined. */
  resolve(node: unknown): Node | undefined {
    let current = node;
    // An alias can only point backwards, so the chain ends; the bound is only a guard.
    for (let hops = 0; isAlias(current) && hops < 64; hops++) current = current.resolve(this.doc);
    if (!isNode(current) || isAlias(current)) return undefined;
    if (isScalar(current) && current.value === null) return undefined;
    return current;
  }

  /**
   * The keys of a mapping in file order. Merge keys (`<<: *defaults`) add the keys the mapping does
   * not set itself. A repeated key is a warning and the last one wins, as with the anchor's Psych.
   */
  entries(map: YAMLMap): Map<string, MapEntry> {
    const result = new Map<string, MapEntry>();
    const merged: Node[] = [];
    for (const pair of map.items) {
      const keyNode = isNode(pair.key) ? pair.key : map;
      if (isMergeKey(pair.key)) {
        merged.push(...this.mergeSources(pair.value));
        continue;
      }
      const key = this.keyText(pair.key);
      if (result.has(key)) this.warn(keyNode, `${key} appears more than once in the same mapping; the last one is used`, `remove one of the ${key} entries`);
      const value = this.resolve(pair.value);
      result.set(key, { key, keyNode, value, at: value && isNode(pair.value) ? pair.value : keyNode });
    }
    for (const source of merged) {
      for (const [key, entry] of this.entries(source as YAMLMap)) if (!result.has(key)) result.set(key, entry);
    }
    return result;
  }

  items(seq: YAMLSeq): ListItem[] {
    return seq.items.map((item) => ({ value: this.resolve(item), at: isNode(item) ? item : seq }));
  }

  /** The scalar as the user wrote it: plain scalars keep their source text (`0644`, `yes`), quoted ones their value. */
  text(node: Node): string {
    if (isScalar(node)) {
      if (node.type === 'PLAIN' && typeof node.source === 'string') return node.source;
      return String(node.value);
    }
    return String(node.toJSON());
  }

  /** A scalar's text, or undefined (and a problem) when the value is a list or mapping. */
  expectText(entry: { value: Node | undefined; at: Node }, what: string, hint?: string): string | undefined {
    if (entry.value === undefined) return undefined;
    if (!isScalar(entry.value)) {
      this.wrongType(entry.at, what, 'a single value', entry.value, hint ?? 'write one value on this line, not a list or mapping');
      return undefined;
    }
    return this.text(entry.value);
  }

  toJS(node: Node | undefined): unknown {
    return node === undefined ? null : node.toJS(this.doc);
  }

  private keyText(key: unknown): string {
    const node = this.resolve(key);
    return node === undefined ? '' : this.text(node);
  }

  private mergeSources(value: unknown): Node[] {
    const node = this.resolve(value);
    if (isMap(node)) return [node];
    if (isSeq(node)) return node.items.map((item) => this.resolve(item)).filter((item): item is Node => isMap(item));
    return [];
  }

  private problem(at: Node, message: string, hint?: string): AppSpecProblem {
    return hint === undefined ? { ...this.position(at), message } : { ...this.position(at), message, hint };
  }
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && (typeof key.value === 'symbol' || (key.type === 'PLAIN' && key.source === '<<'));
}

/** How a value reads in a message: `a list`, `a mapping`, `the text "file"`, `the number 30`. */
export function describe(node: Node | undefined): string {
  if (node === undefined) return 'empty';
  if (isMap(node)) return 'a mapping (key: value lines)';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const written = node.type === 'PLAIN' && typeof node.source === 'string' ? node.source : String(node.value);
    if (typeof node.value === 'string') return `the text "${written}"`;
    if (typeof node.value === 'boolean') return `${written} (a true/false value)`;
    if (typeof node.value === 'number') return `the number ${written}`;
    return written;
  }
  return 'a value of an unknown kind';
}
