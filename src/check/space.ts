// Header space: sets of packets as unions of disjoint boxes, one interval per header field. What
// `asgc review` computes with: a rule's match is a set of boxes, first-match semantics is
// subtraction down the chain, and a change of access is the difference of two allowed sets.
import { CONNTRACK_STATES } from '../ir/matches.js';
import type { Family } from '../model/address.js';

/**
 * The fields a box constrains. `remote` is the address at the far end (the destination of a
 * container's traffic, the source of traffic to it); the container's own address is fixed by
 * the review's context, not a field. `state` indexes CONNTRACK_STATES.
 */
export const FIELDS = ['remote', 'protocol', 'sport', 'dport', 'icmpType', 'icmpCode', 'state', 'mark'] as const;
export type Field = (typeof FIELDS)[number];
export const FIELD: { readonly [F in Field]: number } = Object.fromEntries(FIELDS.map((name, index) => [name, index])) as never;

/** Inclusive [low, high]. */
export type Interval = readonly [bigint, bigint];

export interface Box {
  readonly intervals: readonly Interval[];
  /** The interface the box's packets come in by (it depends on where they come from). */
  readonly inInterface?: string;
  /**
   * Remote addresses the box does not hold though its interval spans them: the cell's own
   * containers, whose traffic is reviewed from their side (a rule for one of them alone never
   * matches the box).
   */
  readonly excluded?: ReadonlySet<bigint>;
  /**
   * The box's sources are the cell's containers, each sending by its own interface, and alike
   * to the rules: this one (whose interface is `inInterface`) stands for them all.
   */
  readonly representative?: bigint;
  /**
   * The mark the box's packets arrived with, once a MARK target changed their mark (the `mark`
   * field is then the mark rules see now); what a review reports is always the arrival.
   */
  readonly arrivalMark?: Interval;
}

export type Space = readonly Box[];

export function fullIntervals(family: Family): Interval[] {
  return [
    [0n, family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n],
    [0n, 255n],
    [0n, 65535n],
    [0n, 65535n],
    [0n, 255n],
    [0n, 255n],
    [0n, BigInt(CONNTRACK_STATES.length - 1)],
    [0n, 0xffffffffn],
  ];
}

/**
 * Every packet of the family, with fields that do not exist for a protocol held at 0: ports only
 * for tcp and udp, ICMP type and code only for the family's ICMP. Two packets that differ only in
 * a field their protocol lacks are the same packet.
 */
export function packetUniverse(family: Family, inInterface?: string): Box[] {
  const icmp = family === 4 ? 1n : 58n;
  const base = fullIntervals(family);
  const withFields = (protocols: Interval[], ports: boolean, icmpFields: boolean): Box[] =>
    protocols.map((protocol) => {
      const intervals = [...base];
      intervals[FIELD.protocol] = protocol;
      if (!ports) intervals[FIELD.sport] = intervals[FIELD.dport] = [0n, 0n];
      if (!icmpFields) intervals[FIELD.icmpType] = intervals[FIELD.icmpCode] = [0n, 0n];
      return { intervals, ...(inInterface !== undefined && { inInterface }) };
    });
  const others = complement(
    [
      [6n, 6n],
      [17n, 17n],
      [icmp, icmp],
    ],
    [0n, 255n],
  );
  return [
    ...withFields(
      [
        [6n, 6n],
        [17n, 17n],
      ],
      true,
      false,
    ),
    ...withFields([[icmp, icmp]], false, true),
    ...withFields(others, false, false),
  ];
}

/** Sorted, disjoint intervals covering the same values. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [low, high] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && low <= last[1] + 1n) last[1] = high > last[1] ? high : last[1];
    else out.push([low, high]);
  }
  return out;
}

/** The parts of `whole` outside the sorted, disjoint `intervals`. */
export function complement(intervals: readonly Interval[], whole: Interval): Interval[] {
  const gaps: Interval[] = [];
  let next = whole[0];
  for (const [low, high] of [...intervals].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (high < next) continue;
    if (low > next) gaps.push([next, low - 1n < whole[1] ? low - 1n : whole[1]]);
    next = high + 1n;
    if (next > whole[1]) return gaps;
  }
  if (next <= whole[1]) gaps.push([next, whole[1]]);
  return gaps;
}

/** Whether two boxes share a packet (no box is made). */
export function boxesOverlap(a: Box, b: Box): boolean {
  for (let index = 0; index < a.intervals.length; index++) {
    const [aLow, aHigh] = a.intervals[index] as Interval;
    const [bLow, bHigh] = b.intervals[index] as Interval;
    if (aLow > bHigh || bLow > aHigh) return false;
  }
  return true;
}

/** Whether two boxes hold the same packets, by the same interface and representative. */
export function sameBox(a: Box, b: Box): boolean {
  if (a.inInterface !== b.inInterface || a.representative !== b.representative) return false;
  return a.intervals.every(([low, high], index) => {
    const other = b.intervals[index] as Interval;
    return low === other[0] && high === other[1];
  });
}

export function boxIntersection(a: Box, b: Box): Box | undefined {
  const intervals: Interval[] = [];
  for (let index = 0; index < a.intervals.length; index++) {
    const [aLow, aHigh] = a.intervals[index] as Interval;
    const [bLow, bHigh] = b.intervals[index] as Interval;
    const low = aLow > bLow ? aLow : bLow;
    const high = aHigh < bHigh ? aHigh : bHigh;
    if (low > high) return undefined;
    intervals.push([low, high]);
  }
  return { ...a, intervals };
}

/** `a` minus `b`, as disjoint boxes: peel off, field by field, what lies outside `b`. */
export function boxDifference(a: Box, b: Box): Box[] {
  const cut = boxIntersection(a, b);
  if (cut === undefined) return [a];
  const pieces: Box[] = [];
  const remaining = [...a.intervals];
  for (let index = 0; index < remaining.length; index++) {
    const [low, high] = remaining[index] as Interval;
    const [cutLow, cutHigh] = cut.intervals[index] as Interval;
    const piece = (interval: Interval) => {
      const intervals = [...remaining];
      intervals[index] = interval;
      pieces.push({ ...a, intervals });
    };
    if (low < cutLow) piece([low, cutLow - 1n]);
    if (cutHigh < high) piece([cutHigh + 1n, high]);
    remaining[index] = [cutLow, cutHigh];
  }
  return pieces;
}

export function intersect(space: Space, other: Space): Box[] {
  const result: Box[] = [];
  for (const box of space)
    for (const piece of other) {
      const cut = boxIntersection(box, piece);
      if (cut !== undefined) result.push(cut);
    }
  return result;
}

export function subtract(space: Space, other: Space): Box[] {
  let result: Box[] = [...space];
  for (const piece of other) result = result.flatMap((box) => boxDifference(box, piece));
  return result;
}

/** A constraint on one field: every packet whose field lies in one of `intervals` (sorted, disjoint). */
export function fieldIn(family: Family, field: Field, intervals: readonly Interval[]): Box[] {
  return intervals.map((interval) => {
    const all = fullIntervals(family);
    all[FIELD[field]] = interval;
    return { intervals: all };
  });
}

/** The constraint negated (within the family's full space). */
export function negate(family: Family, constraint: Space): Box[] {
  return subtract([{ intervals: fullIntervals(family) }], constraint);
}

/** Whether a point (one value per field) lies in the space. */
export function contains(space: Space, point: readonly bigint[], inInterface?: string): boolean {
  return space.some(
    (box) =>
      (box.inInterface === undefined || inInterface === undefined || box.inInterface === inInterface) &&
      box.intervals.every(([low, high], index) => (point[index] as bigint) >= low && (point[index] as bigint) <= high),
  );
}
