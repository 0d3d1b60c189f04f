// Byte order of names, as the kernel and iptables-save sort them.

/** strcmp order of the UTF-8 bytes, as iptables-save sorts user chains. */
export function compareBytewise(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Below U+0080 a code unit is its byte; past it, compare the bytes themselves.
    if (x < 0x80 && y < 0x80) return x - y;
    return Buffer.compare(Buffer.from(a.slice(i)), Buffer.from(b.slice(i)));
  }
  return a.length - b.length;
}
