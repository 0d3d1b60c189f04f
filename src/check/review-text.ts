// A review in the fewest lines an operator reads: each container's changes merged into lines
// ("gains tcp 443 to 203.0.113.10, via ASG ..."), and containers with the same lines grouped by
// app, space and lifecycle.
import { CONNTRACK_STATES } from '../ir/matches.js';
import { type Family, formatAddress } from '../model/address.js';
import type { Container } from '../model/cell.js';
import { describePolicy } from './explain.js';
import type { Access, ContextReview, Direction } from './review.js';
import { FIELD, fullIntervals, type Interval, mergeIntervals } from './space.js';

/** The CIDRs that cover [low, high] exactly, fewest first-to-last. */
export function rangeToCidrs(family: Family, low: bigint, high: bigint): string[] {
  const bits = family === 4 ? 32 : 128;
  const out: string[] = [];
  let start = low;
  while (start <= high) {
    let size = 0;
    while (size < bits && (start & ((1n << BigInt(size + 1)) - 1n)) === 0n && start + (1n << BigInt(size + 1)) - 1n <= high)
      size++;
    out.push(size === 0 ? formatAddress(family, start) : `${formatAddress(family, start)}/${bits - size}`);
    start += 1n << BigInt(size);
  }
  return out;
}

const PROTOCOL_NAMES: Readonly<Record<string, string>> = { '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'icmpv6' };

/** The state set in words; undefined when it is every state. */
function statesText(intervals: readonly Interval[]): string | undefined {
  const states = new Set<string>();
  for (const [low, high] of intervals)
    for (let index = low; index <= high; index++) states.add(CONNTRACK_STATES[Number(index)] as string);
  if (states.size === CONNTRACK_STATES.length) return undefined;
  const replies = states.has('RELATED') || states.has('ESTABLISHED');
  // What a reviewer asks about: may a connection be opened (replies are another line).
  if (!replies && states.has('NEW')) return 'new connections';
  if (states.size === 2 && states.has('RELATED') && states.has('ESTABLISHED')) return 'replies (established, related)';
  return `state ${CONNTRACK_STATES.filter((state) => states.has(state)).join(',')}`;
}

/** Packets as a product of value lists, one per field, and the policy behind them. */
interface Entry {
  readonly fields: readonly (readonly Interval[])[];
  readonly policy: string;
}

/**
 * A box as an entry. Fields a protocol does not have (ports but for tcp and udp, ICMP type and
 * code but for ICMP) are held at 0 in a box; here they count as "any", so that protocols with
 * the same remaining fields merge ("any protocol").
 */
function entryOf(family: Family, access: Access): Entry {
  const whole = fullIntervals(family);
  const fields = access.box.intervals.map((interval) => [interval]);
  const [low, high] = access.box.intervals[FIELD.protocol] as Interval;
  const ported = low === high && (low === 6n || low === 17n);
  const icmp = low === high && low === (family === 4 ? 1n : 58n);
  if (!ported) for (const field of [FIELD.sport, FIELD.dport]) fields[field] = [whole[field] as Interval];
  if (!icmp) for (const field of [FIELD.icmpType, FIELD.icmpCode]) fields[field] = [whole[field] as Interval];
  return { fields, policy: access.policy === undefined ? 'a chain policy' : describePolicy(access.policy) };
}

const listKey = (list: readonly Interval[]) => list.map(([low, high]) => `${low}-${high}`).join(',');

/** Entries that differ in `field` only, as one entry with the union of their values there. */
function mergeOn(entries: readonly Entry[], field: number): Entry[] {
  const merged = new Map<string, { policy: string; fields: (readonly Interval[])[]; values: Interval[] }>();
  for (const entry of entries) {
    const key = `${entry.policy}\u0000${entry.fields.map((list, index) => (index === field ? '' : listKey(list))).join('|')}`;
    const found = merged.get(key) ?? { policy: entry.policy, fields: [...entry.fields], values: [] };
    found.values.push(...(entry.fields[field] as readonly Interval[]));
    merged.set(key, found);
  }
  return [...merged.values()].map(({ policy, fields, values }) => {
    fields[field] = mergeIntervals(values);
    return { policy, fields };
  });
}

/** The order fields are merged in: the last merged is the one lines list most values of. */
const MERGE_ORDER = [
  FIELD.state,
  FIELD.icmpCode,
  FIELD.icmpType,
  FIELD.sport,
  FIELD.dport,
  FIELD.mark,
  FIELD.protocol,
  FIELD.remote,
];

function listText(list: readonly Interval[], whole: Interval, show: (value: bigint) => string = String): string | undefined {
  if (list.length === 1 && list[0]?.[0] === whole[0] && list[0]?.[1] === whole[1]) return undefined;
  return list.map(([low, high]) => (low === high ? show(low) : `${show(low)}-${show(high)}`)).join(', ');
}

/** What an entry's packets are, but their remote address: "tcp 443", "icmp type 8", "any protocol". */
function trafficText(family: Family, entry: Entry): string {
  const whole = fullIntervals(family);
  const list = (field: number) => entry.fields[field] as readonly Interval[];
  const protocols = list(FIELD.protocol);
  const words: string[] = [];
  const protocolWords = listText(
    protocols,
    whole[FIELD.protocol] as Interval,
    (value) => PROTOCOL_NAMES[String(value)] ?? String(value),
  );
  words.push(
    protocolWords === undefined
      ? 'any protocol'
      : protocolWords.includes(', ') || /^\d/.test(protocolWords)
        ? `protocols ${protocolWords}`
        : protocolWords,
  );
  const port = listText(list(FIELD.dport), whole[FIELD.dport] as Interval);
  const sourcePort = listText(list(FIELD.sport), whole[FIELD.sport] as Interval);
  const type = listText(list(FIELD.icmpType), whole[FIELD.icmpType] as Interval);
  const code = listText(list(FIELD.icmpCode), whole[FIELD.icmpCode] as Interval);
  if (port !== undefined) words.push(port);
  if (sourcePort !== undefined) words.push(`from port ${sourcePort}`);
  if (type !== undefined) words.push(`type ${type}`);
  if (code !== undefined) words.push(`code ${code}`);
  const mark = listText(list(FIELD.mark), whole[FIELD.mark] as Interval, (value) => `0x${value.toString(16)}`);
  if (mark !== undefined) words.push(`with mark ${mark}`);
  const state = statesText(list(FIELD.state));
  if (state !== undefined) words.push(`(${state})`);
  return words.join(' ');
}

const MAX_ADDRESSES = 8;

function addressesText(family: Family, intervals: readonly Interval[], whole: Interval): string {
  if (intervals.length === 1 && intervals[0]?.[0] === whole[0] && intervals[0]?.[1] === whole[1]) return 'anywhere';
  const cidrs = intervals.flatMap(([low, high]) => rangeToCidrs(family, low, high));
  const shown = cidrs.slice(0, MAX_ADDRESSES).join(', ');
  return cidrs.length > MAX_ADDRESSES ? `${shown} and ${cidrs.length - MAX_ADDRESSES} more` : shown;
}

const PREPOSITION: Record<Direction, string> = { egress: 'to', ingress: 'from', host: 'to the cell at' };

/** The words of a line: what happened to the access, and how its policy is introduced. */
export interface Verbs {
  readonly gained: readonly [verb: string, link: string];
  readonly lost: readonly [verb: string, link: string];
}

export const REVIEW_VERBS: Verbs = { gained: ['gains', 'via'], lost: ['loses', 'was'] };
/** `asgc explain` lists what is allowed, in `gained`. */
export const EXPLAIN_VERBS: Verbs = { gained: ['allows', 'by'], lost: ['denies', 'by'] };

/** One context's access changes as the fewest lines: boxes merged field by field into value lists. */
export function contextLines(review: ContextReview, verbs: Verbs = REVIEW_VERBS): string[] {
  const { family, direction } = review;
  const whole = fullIntervals(family);
  const lines: string[] = [];
  for (const [[verb, link], accesses] of [
    [verbs.gained, review.gained],
    [verbs.lost, review.lost],
  ] as const) {
    let entries = accesses.map((access) => entryOf(family, access));
    for (const field of MERGE_ORDER) entries = mergeOn(entries, field);
    for (const entry of entries) {
      const addresses = addressesText(family, entry.fields[FIELD.remote] as readonly Interval[], whole[FIELD.remote] as Interval);
      lines.push(
        `IPv${family} ${direction} ${verb} ${trafficText(family, entry)} ${PREPOSITION[direction]} ${addresses}, ${link} ${entry.policy}`,
      );
    }
  }
  return lines;
}

export interface ReviewGroup {
  readonly app?: string;
  readonly space?: string;
  readonly workload?: string;
  readonly containers: readonly string[];
  readonly lines: readonly string[];
}

export interface UnknownContext {
  readonly container: string;
  readonly family: Family;
  readonly direction: Direction;
  readonly reason: string;
}

/** Containers with the same changes, of one app, space and lifecycle, as one group. */
export function groupReviews(
  reviews: readonly ContextReview[],
  verbs: Verbs = REVIEW_VERBS,
): { groups: ReviewGroup[]; unknown: UnknownContext[] } {
  const linesOf = new Map<string, { container: Container; lines: string[] }>();
  const unknown: UnknownContext[] = [];
  for (const review of reviews) {
    const handle = review.container.handle;
    if (review.unknown !== undefined) {
      unknown.push({ container: handle, family: review.family, direction: review.direction, reason: review.unknown });
      continue;
    }
    const entry = linesOf.get(handle) ?? { container: review.container, lines: [] };
    entry.lines.push(...contextLines(review, verbs));
    linesOf.set(handle, entry);
  }
  const groups = new Map<string, ReviewGroup & { containers: string[] }>();
  for (const { container, lines } of linesOf.values()) {
    const key = JSON.stringify([container.appGuid, container.spaceGuid, container.workload, lines]);
    const group = groups.get(key) ?? {
      ...(container.appGuid !== undefined && { app: container.appGuid }),
      ...(container.spaceGuid !== undefined && { space: container.spaceGuid }),
      ...(container.workload !== undefined && { workload: container.workload }),
      containers: [],
      lines,
    };
    group.containers.push(container.handle);
    groups.set(key, group);
  }
  return { groups: [...groups.values()], unknown };
}

const LIFECYCLE: Readonly<Record<string, string>> = { app: 'running', task: 'running (task)', staging: 'staging' };

export function groupTitle(group: ReviewGroup): string {
  const count = group.containers.length;
  const containers = count === 1 ? `container ${group.containers[0]}` : `${count} containers`;
  const where = [
    group.space && `space ${group.space}`,
    group.workload && (LIFECYCLE[group.workload] ?? group.workload),
    containers,
  ]
    .filter(Boolean)
    .join(', ');
  return group.app === undefined ? `containers without an app (${where})` : `app ${group.app} (${where})`;
}

/** Plain text (markdown: a PR comment). */
export function renderReview(
  result: { groups: readonly ReviewGroup[]; unknown: readonly UnknownContext[] },
  markdown: boolean,
): string {
  if (result.groups.length === 0 && result.unknown.length === 0)
    return markdown ? '**asgc review:** no access change.\n' : 'no access change\n';
  const out: string[] = [];
  if (markdown)
    out.push(
      `**asgc review:** ${result.groups.reduce((sum, group) => sum + group.containers.length, 0)} container(s) change access.`,
      '',
    );
  for (const group of result.groups) {
    out.push(markdown ? `**${groupTitle(group)}**` : groupTitle(group));
    out.push(...group.lines.map((line) => (markdown ? `- ${line}` : `  ${line}`)));
    if (markdown) out.push('');
  }
  if (result.unknown.length > 0) {
    out.push(
      markdown
        ? '**Unknown** (a rule asgc cannot evaluate decides some packets):'
        : 'unknown (a rule asgc cannot evaluate decides some packets):',
    );
    out.push(
      ...result.unknown.map(
        (entry) => `${markdown ? '- ' : '  '}container ${entry.container} IPv${entry.family} ${entry.direction}: ${entry.reason}`,
      ),
    );
  }
  return `${out.join('\n').trimEnd()}\n`;
}
