// Canonical JSON: object keys sorted, selectors normalised, so that equal specs have equal
// keys (and therefore one shared set) whatever order the user wrote them in.
import type { LabelSelector } from '../model/index.js';

export function canonicalSelector(s: LabelSelector): LabelSelector {
  const out: { matchLabels?: Record<string, string>; matchExpressions?: LabelSelector['matchExpressions'] } =
    {};
  const labels = Object.entries(s.matchLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (labels.length > 0) out.matchLabels = Object.fromEntries(labels);
  const exprs = (s.matchExpressions ?? []).map((e) => ({
    key: e.key,
    operator: e.operator,
    ...(e.values && e.values.length > 0 ? { values: [...new Set(e.values)].sort() } : {}),
  }));
  if (exprs.length > 0) {
    out.matchExpressions = exprs.sort((a, b) => {
      const x = JSON.stringify(a);
      const y = JSON.stringify(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }
  return out;
}

/** JSON with object keys in sorted order at every level. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
