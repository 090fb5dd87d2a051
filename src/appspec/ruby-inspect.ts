/**
 * A value printed as Ruby 2.7's `inspect` prints the equivalent object, for AWS's agent's messages that
 * embed one (`["UnknownHook"]`, `{"name"=>"unconfined_u"}`).
 */
export function rubyInspect(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(rubyInspect).join(', ')}]`;
  if (value instanceof Map) return `{${[...value].map(([key, item]) => `${rubyInspect(key)}=>${rubyInspect(item)}`).join(', ')}}`;
  if (typeof value === 'object') {
    return `{${Object.entries(value).map(([key, item]) => `${rubyInspect(key)}=>${rubyInspect(item)}`).join(', ')}}`;
  }
  return String(value);
}
