// Byte order of names, as the kernel and iptables-save sort them.

/** strcmp order, as iptables-save sorts user chains. */
export function compareBytewise(a: string, b: string): number {
  // Chain names are almost always ASCII, where UTF-16 order is byte order.
  if (/^[\x00-\x7f]*$/.test(a + b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
