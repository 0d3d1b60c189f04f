// Quoting exactly as xtables_save_string prints strings (comments, log prefixes): bare when
// non-empty and only [A-Za-z0-9_-], else in double quotes with ", ' and \ backslash-escaped.
// iptables-restore's tokenizer reads that back to the same string.
const BARE = /^[A-Za-z0-9_-]+$/;

const ESCAPED = /["'\\]/;

export function quoteArgument(value: string): string {
  if (BARE.test(value)) return value;
  return ESCAPED.test(value) ? `"${value.replace(/["'\\]/g, '\\$&')}"` : `"${value}"`;
}
