// ASG port grammar as Cloud Controller validates it (TransportRuleValidator.validate_port):
// one port, a comma list (a trailing comma is tolerated, as Ruby's split drops it), or one
// range a-b with a < b; ports 1-65535; whitespace around numbers allowed.
import { type Result, ok, fail } from './result.js';

export interface PortRange {
  readonly start: number;
  readonly end: number;
}

const INVALID = 'ports must be a valid single port, comma separated list of ports, or range or ports, formatted as a string';

function port(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[0-9]+$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return value >= 1 && value <= 65535 ? value : undefined;
}

// A cell's rules name few distinct port lists, each many times: each is read once, and its
// (never changed) ranges shared. Bounded: emptied when it grows past this many lists.
const known = new Map<string, Result<readonly PortRange[]>>();
const KNOWN_MAX = 4096;

export function parsePorts(text: string): Result<readonly PortRange[]> {
  let result = known.get(text);
  if (result === undefined) {
    if (known.size >= KNOWN_MAX) known.clear();
    result = readPorts(text);
    known.set(text, result);
  }
  return result;
}

function readPorts(text: string): Result<readonly PortRange[]> {
  if (/[^\d\s,-]/.test(text)) return fail(`${INVALID}: "${text}" contains characters other than digits, ',' and '-'`);
  const range = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  if (range) {
    const start = port(range[1] as string);
    const end = port(range[2] as string);
    if (start === undefined || end === undefined) return fail(`${INVALID}: "${text}" has a port outside 1-65535`);
    if (start >= end) return fail(`${INVALID}: in range "${text}" the start must be below the end`);
    return ok([{ start, end }]);
  }
  const items = text.split(',');
  while (items.length > 0 && items[items.length - 1] === '') items.pop();
  if (items.length === 0) return fail(`${INVALID}: "${text}" names no port`);
  const ranges: PortRange[] = [];
  for (const item of items) {
    if (item.includes('-')) return fail(`${INVALID}: "${text}" mixes a range into a list`);
    const value = port(item);
    if (value === undefined) {
      return fail(
        `${INVALID}: "${text}" has ${item.trim() === '' ? 'an empty entry' : `"${item.trim()}", not a port in 1-65535`}`,
      );
    }
    ranges.push({ start: value, end: value });
  }
  return ok(ranges);
}
