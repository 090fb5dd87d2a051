import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import type { AppSpecProblem, SourcePosition } from '../report/errors.js';
import { rubyInspect } from './ruby-inspect.js';

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
   * not set itself. A repeated key is a warning and the last one wins, as with AWS's agent (Ruby's Psych).
   * A merge of a mapping into itself (`&a { <<: *a }`, directly or through others) is an error.
   */
  entries(map: YAMLMap, merging: ReadonlySet<YAMLMap> = new Set()): Map<string, MapEntry> {
    const result = new Map<string, MapEntry>();
    const merged: YAMLMap[] = [];
    const inside = new Set(merging).add(map);
    for (const pair of map.items) {
      const keyNode = isNode(pair.key) ? pair.key : map;
      if (isMergeKey(pair.key)) {
        for (const source of this.mergeSources(pair.value)) {
          if (inside.has(source)) {
            this.error(isNode(pair.value) ? pair.value : keyNode, 'this merge key (<<) merges a mapping into itself',
              'merge only mappings defined before and outside this one');
          } else {
            merged.push(source);
          }
        }
        continue;
      }
      const key = this.keyText(pair.key);
      if (result.has(key)) this.warn(keyNode, `${key} appears more than once in the same mapping; the last one is used`, `remove one of the ${key} entries`);
      const value = this.resolve(pair.value);
      result.set(key, { key, keyNode, value, at: value && isNode(pair.value) ? pair.value : keyNode });
    }
    for (const source of merged) {
      for (const [key, entry] of this.entries(source, inside)) if (!result.has(key)) result.set(key, entry);
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
    return this.inspect(node);
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

  /**
   * A value as Ruby's `inspect` prints it, for messages that embed one (`["UnknownHook"]`,
   * `{"name"=>"unconfined_u"}`). Walks the nodes rather than converting the document: an alias bomb
   * stops at the length limit, a collection that contains itself prints as `[...]` or `{...}` as in
   * Ruby, and an alias to an undefined YAML anchor is nil.
   */
  inspect(node: Node | undefined, limit = 200): string {
    // Characters still to write; every text added counts, so a bomb stops after `limit` of them.
    let budget = limit;
    const leaf = (text: string): string => {
      budget -= text.length;
      return text;
    };
    const walk = (current: Node | undefined, ancestors: readonly Node[]): string => {
      if (budget <= 0) return '…';
      const resolved = this.resolve(current);
      if (resolved === undefined) return leaf('nil');
      if (ancestors.includes(resolved)) return leaf(isMap(resolved) ? '{...}' : '[...]');
      if (isScalar(resolved)) return leaf(rubyInspect(resolved.value));
      if (!isMap(resolved) && !isSeq(resolved)) return leaf('nil');
      const inner = [...ancestors, resolved];
      const parts: string[] = [];
      for (const item of resolved.items as unknown[]) {
        if (budget <= 0) {
          parts.push('…');
          break;
        }
        budget -= 2;
        const pair = item as { key?: unknown; value?: unknown };
        const child = (value: unknown) => walk(isNode(value) ? value : undefined, inner);
        parts.push(isMap(resolved) ? `${child(pair.key)}=>${child(pair.value)}` : child(item));
      }
      return isMap(resolved) ? `{${parts.join(', ')}}` : `[${parts.join(', ')}]`;
    };
    const text = walk(node, []);
    return text.length > limit ? `${text.slice(0, limit)}…` : text;
  }

  private keyText(key: unknown): string {
    const node = this.resolve(key);
    return node === undefined ? '' : this.text(node);
  }

  private mergeSources(value: unknown): YAMLMap[] {
    const node = this.resolve(value);
    if (isMap(node)) return [node];
    if (isSeq(node)) return node.items.map((item) => this.resolve(item)).filter((item): item is YAMLMap => isMap(item));
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
