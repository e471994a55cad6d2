/**
 * What counts as text at proofpod's boundaries: no NUL and no UTF-16 surrogate without its pair.
 * Neither can be stored in a Postgres string, and the API refuses both (scheduler/api/text-input.ts).
 */
export const notText = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const notTextGlobal = new RegExp(notText.source, 'g');

/** `value` with every non-text character of its strings and keys replaced by U+FFFD, recursively. */
export function asText<T>(value: T): T {
  if (typeof value === 'string') return value.replace(notTextGlobal, '\uFFFD') as T;
  if (Array.isArray(value)) return value.map(asText) as T;
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(notTextGlobal, '\uFFFD'), asText(v)])) as T;
  return value;
}
