// IP addresses, CIDRs and ranges as exact integers, parsed as strictly as Cloud Controller
// does and printed exactly as iptables-save prints them.
import { type Result, ok, fail } from './result.js';

export type Family = 4 | 6;
export const FAMILIES: readonly Family[] = [4, 6];

export const ADDRESS_BITS: Record<Family, number> = { 4: 32, 6: 128 };
const ALL_ONES: Record<Family, bigint> = { 4: (1n << 32n) - 1n, 6: (1n << 128n) - 1n };

/** A network: address has no host bits set. */
export interface CidrBlock {
  readonly kind: 'cidr';
  readonly family: Family;
  readonly address: bigint;
  readonly prefixLength: number;
  /** `a/len`, printed as iptables-save prints -s/-d (made once: it is printed many times). */
  readonly text: string;
}

/** An inclusive address range, start <= end. */
export interface RangeBlock {
  readonly kind: 'range';
  readonly family: Family;
  readonly start: bigint;
  readonly end: bigint;
  /** `a-b`, printed as iptables-save prints --src-range/--dst-range. */
  readonly text: string;
}

export type AddressBlock = CidrBlock | RangeBlock;

export interface ParsedAddress {
  readonly family: Family;
  readonly value: bigint;
}

export function hostMask(family: Family, prefixLength: number): bigint {
  return ALL_ONES[family] >> BigInt(prefixLength);
}

export function cidr(family: Family, address: bigint, prefixLength: number): CidrBlock {
  const network = prefixLength === ADDRESS_BITS[family] ? address : address & ~hostMask(family, prefixLength) & ALL_ONES[family];
  return { kind: 'cidr', family, address: network, prefixLength, text: `${formatAddress(family, network)}/${prefixLength}` };
}

export function range(family: Family, start: bigint, end: bigint): RangeBlock {
  return { kind: 'range', family, start, end, text: `${formatAddress(family, start)}-${formatAddress(family, end)}` };
}

export function hostCidr(address: ParsedAddress): CidrBlock {
  return cidr(address.family, address.value, ADDRESS_BITS[address.family]);
}

export function blockFirst(block: AddressBlock): bigint {
  return block.kind === 'cidr' ? block.address : block.start;
}

export function blockLast(block: AddressBlock): bigint {
  return block.kind === 'cidr' ? block.address | hostMask(block.family, block.prefixLength) : block.end;
}

export function blockContains(block: AddressBlock, family: Family, value: bigint): boolean {
  return block.family === family && value >= blockFirst(block) && value <= blockLast(block);
}

// ---- parsing ---------------------------------------------------------------------------

const LEADING_ZEROS = 'destination octets cannot contain leading zeros';

// Hand-written, single-pass parsers: a cell's ASGs hold hundreds of thousands of addresses,
// and these are an order of magnitude faster than regular expressions and splitting.
// test/model/address.test.ts checks them against ipaddr.js.

/** Four decimal octets as a number, or an error message. No leading zeros (iptables reads them as octal). */
function ipv4Number(text: string, from: number): number | string {
  let value = 0;
  let octets = 0;
  let i = from;
  while (true) {
    const start = i;
    let octet = 0;
    while (i < text.length && i - start < 4) {
      const digit = text.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      octet = octet * 10 + digit;
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3) return `"${text}" is not an IPv4 address`;
    if (digits > 1 && text.charCodeAt(start) === 48) return `${LEADING_ZEROS}: "${text}"`;
    if (octet > 255) return `"${text}" is not an IPv4 address (octet ${octet} is over 255)`;
    value = value * 256 + octet;
    octets++;
    if (octets === 4) break;
    if (text.charCodeAt(i) !== 46) return `"${text}" is not an IPv4 address (it needs four decimal octets)`;
    i++;
  }
  return i === text.length ? value : `"${text}" is not an IPv4 address`;
}

export function parseIPv4(text: string): Result<bigint> {
  const value = ipv4Number(text, 0);
  return typeof value === 'number' ? ok(BigInt(value)) : fail(value);
}

function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

/** RFC 4291 text forms: 8 groups of 1-4 hex digits, one "::", an IPv4 tail; no zone. */
export function parseIPv6(text: string): Result<bigint> {
  const words = ipv6Words(text);
  return typeof words === 'string' ? fail(words) : ok(wordsValue(words));
}

/** The eight 16-bit groups of an IPv6 address, or an error message. */
function ipv6Words(text: string): number[] | string {
  const invalid = () => `"${text}" is not an IPv6 address`;
  if (text.includes('%')) return `"${text}" carries a zone identifier, which an iptables rule cannot express`;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (text.startsWith('::')) {
    gap = 0;
    i = 2;
  }
  while (i < text.length) {
    const start = i;
    let group = 0;
    while (i < text.length && i - start < 5) {
      const digit = hexDigit(text.charCodeAt(i));
      if (digit < 0) break;
      group = group * 16 + digit;
      i++;
    }
    if (text.charCodeAt(i) === 46) {
      const v4 = ipv4Number(text, start);
      if (typeof v4 === 'string') return `"${text}": ${v4}`;
      groups.push(Math.floor(v4 / 65536), v4 % 65536);
      i = text.length;
      break;
    }
    if (i === start || i - start > 4) return invalid();
    groups.push(group);
    if (i === text.length) break;
    if (text.charCodeAt(i) !== 58) return invalid();
    i++;
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return invalid();
      gap = groups.length;
      i++;
    } else if (i === text.length) {
      return invalid();
    }
  }
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return invalid();
  if (gap < 0) return groups;
  const words = [0, 0, 0, 0, 0, 0, 0, 0];
  const tail = groups.length - gap;
  for (let at = 0; at < gap; at++) words[at] = groups[at] as number;
  for (let at = 0; at < tail; at++) words[8 - tail + at] = groups[gap + at] as number;
  return words;
}

/** Eight 16-bit groups as one number: four 32-bit words make four BigInts, per-group shifting would make sixteen. */
function wordsValue(groups: readonly number[]): bigint {
  const word = (at: number) => (groups[at] as number) * 65536 + (groups[at + 1] as number);
  return (BigInt(word(0)) << 96n) | (BigInt(word(2)) << 64n) | (BigInt(word(4)) << 32n) | BigInt(word(6));
}

/** IPv4 if it has no colon, IPv6 otherwise. */
export function parseAddress(text: string): Result<ParsedAddress> {
  if (text.includes(':')) {
    const v6 = parseIPv6(text);
    return v6.ok ? ok({ family: 6, value: v6.value }) : v6;
  }
  const v4 = parseIPv4(text);
  return v4.ok ? ok({ family: 4, value: v4.value }) : v4;
}

/**
 * `a.b.c.d`, `a.b.c.d/n`, IPv6 likewise. Host bits are allowed and mean the network. (The
 * network and its text are worked out from the parsed octets or groups, as plain numbers: a
 * cell's ASGs hold hundreds of thousands of addresses, and BigInt arithmetic allocates.)
 */
export function parseCidr(text: string): Result<CidrBlock> {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const family: Family = addressText.includes(':') ? 6 : 4;
  const parsed = family === 4 ? ipv4Number(addressText, 0) : ipv6Words(addressText);
  if (typeof parsed === 'string') return fail(parsed);
  const bits = ADDRESS_BITS[family];
  let prefixLength = bits;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!isPrefixLengthText(prefixText)) {
      return fail(`"${text}" has an invalid prefix length "${prefixText}" (a number from 0 to ${bits})`);
    }
    prefixLength = Number(prefixText);
    if (prefixLength > bits) return fail(`"${text}" has prefix length ${prefixLength}, over ${bits} for IPv${family}`);
  }
  if (typeof parsed === 'number') {
    const network = prefixLength === 32 ? parsed : prefixLength === 0 ? 0 : (parsed & (0xffffffff << (32 - prefixLength))) >>> 0;
    return ok({ kind: 'cidr', family, address: BigInt(network), prefixLength, text: flat(ipv4Text(network), prefixLength) });
  }
  const network = prefixLength === 128 ? parsed : parsed.map((group, at) => maskGroup(group, prefixLength - 16 * at));
  return ok({ kind: 'cidr', family, address: wordsValue(network), prefixLength, text: flat(ipv6Text(network), prefixLength) });
}

/**
 * `address/length` as one flat string: concatenation makes a tree of string pieces, which
 * would stay on the heap (as several objects) for as long as the block does.
 */
function flat(address: string, prefixLength: number): string {
  return [address, prefixLength].join('/');
}

/** One to three decimal digits. */
function isPrefixLengthText(text: string): boolean {
  if (text.length === 0 || text.length > 3) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
}

/** A 16-bit group with only its first `keep` bits (0 to 16 and beyond) left. */
function maskGroup(group: number, keep: number): number {
  return keep >= 16 ? group : keep <= 0 ? 0 : group & (0xffff << (16 - keep)) & 0xffff;
}

export const RANGE_INVALID = 'destination IP address range is invalid';
export const RANGE_INVERTED =
  'beginning of IP address range is numerically greater than the end of its range (range endpoints are inverted)';

/** One destination element: an IP, a CIDR or a range `a-b` of plain addresses of one family. */
export function parseDestinationElement(text: string): Result<AddressBlock> {
  const dash = text.indexOf('-');
  if (dash < 0) return parseCidr(text);
  if (text.indexOf('-', dash + 1) >= 0) return fail(`"${text}" is not a valid CIDR, IP address or IP address range`);
  const startText = text.slice(0, dash);
  const endText = text.slice(dash + 1);
  if (startText.includes('/') || endText.includes('/')) {
    return fail(`${RANGE_INVALID}: "${text}" (range ends must be plain addresses, not CIDRs)`);
  }
  const start = parseAddress(startText);
  if (!start.ok) return fail(start.error.startsWith(LEADING_ZEROS) ? start.error : `${RANGE_INVALID}: ${start.error}`);
  const end = parseAddress(endText);
  if (!end.ok) return fail(end.error.startsWith(LEADING_ZEROS) ? end.error : `${RANGE_INVALID}: ${end.error}`);
  if (start.value.family !== end.value.family) {
    return fail(`${RANGE_INVALID}: "${text}" mixes IPv${start.value.family} and IPv${end.value.family}`);
  }
  if (start.value.value > end.value.value) return fail(`${RANGE_INVERTED}: "${text}"`);
  return ok(range(start.value.family, start.value.value, end.value.value));
}

// ---- printing (as iptables-save prints) ------------------------------------------------

export function formatIPv4(value: bigint): string {
  return ipv4Text(Number(value));
}

function ipv4Text(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** glibc inet_ntop: longest zero run of 2+ fields compressed (first on a tie), embedded IPv4 for ::a.b.c.d and ::ffff:a.b.c.d. */
export function formatIPv6(value: bigint): string {
  const words: number[] = [];
  for (const shift of [96n, 64n, 32n, 0n]) {
    const word = Number((value >> shift) & 0xffffffffn);
    words.push(word >>> 16, word & 0xffff);
  }
  return ipv6Text(words);
}

function ipv6Text(words: readonly number[]): string {
  let bestBase = -1;
  let bestLength = 0;
  let runBase = -1;
  for (let i = 0; i <= 8; i++) {
    if (i < 8 && words[i] === 0) {
      if (runBase < 0) runBase = i;
    } else if (runBase >= 0) {
      if (i - runBase > bestLength) {
        bestBase = runBase;
        bestLength = i - runBase;
      }
      runBase = -1;
    }
  }
  if (bestLength < 2) bestBase = -1;
  // Pieces joined once (a flat string), the compressed run as an empty piece between colons.
  const pieces: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLength) {
      if (i === bestBase) pieces.push(i === 0 ? ':' : '');
      continue;
    }
    if (i === 6 && bestBase === 0 && (bestLength === 6 || (bestLength === 5 && words[5] === 0xffff))) {
      pieces.push(ipv4Text((words[6] as number) * 65536 + (words[7] as number)));
      return pieces.join(':');
    }
    pieces.push((words[i] as number).toString(16));
  }
  if (bestBase >= 0 && bestBase + bestLength === 8) pieces.push('');
  return pieces.join(':');
}

export function formatAddress(family: Family, value: bigint): string {
  return family === 4 ? formatIPv4(value) : formatIPv6(value);
}

/** As iptables-save prints it: `a/len` for -s/-d, `a-b` for --src-range/--dst-range. */
export function formatBlock(block: AddressBlock): string {
  return block.text;
}
