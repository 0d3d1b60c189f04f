// A rule's conditions as header space, for one box of packets: the part of the box the rule
// matches, and the part where its outcome cannot be known. The meaning of every match is the
// one its extension module gives a single packet (src/extensions, what `asgc check` asks), said
// for a whole box at once; the review's property test holds the two to each other.
import type { MatchContext } from '../extensions/extension.js';
import { CONNTRACK_STATES, type Match, type PortCondition } from '../ir/matches.js';
import { setContains } from '../ir/ipset.js';
import { type Packet, protocolNumber } from '../ir/packet.js';
import type { AddressMatch, ChainRule, InterfaceMatch } from '../ir/ruleset.js';
import { type AddressBlock, blockContains, blockFirst, blockLast, type Family } from '../model/address.js';
import {
  type Box,
  complement,
  FIELD,
  type Field,
  fieldIn,
  fullIntervals,
  intersect,
  type Interval,
  mergeIntervals,
  negate,
  subtract,
} from './space.js';

/** What is fixed for every packet of a review: the container's address, at one end, and the interfaces. */
export interface SpaceView {
  readonly family: Family;
  /** The container's own address, and whether it is the packets' source or destination. */
  readonly own: { readonly address: bigint; readonly end: 'source' | 'destination' };
  /** The in interface of boxes that do not carry their own. */
  readonly inInterface?: string;
  readonly outInterface?: string;
  readonly context: MatchContext;
}

/** A constraint: boxes (a union), or true (no constraint), false (nothing), 'unknown'. */
type Constraint = Box[] | boolean | 'unknown';

const PORTS: Interval = [0n, 65535n];

function portIntervals(condition: PortCondition): Interval[] {
  const span: Interval = [BigInt(condition.start), BigInt(condition.end)];
  return condition.negated ? complement([span], PORTS) : [span];
}

function and(...constraints: Constraint[]): Constraint {
  let boxes: Box[] | undefined;
  let unknown = false;
  for (const constraint of constraints) {
    if (constraint === false) return false;
    if (constraint === true) continue;
    if (constraint === 'unknown') unknown = true;
    else boxes = boxes === undefined ? constraint : intersect(boxes, constraint);
  }
  if (boxes !== undefined && boxes.length === 0) return false;
  if (unknown) return 'unknown';
  return boxes ?? true;
}

function field(family: Family, name: Field, intervals: readonly Interval[], negated = false): Constraint {
  const list = mergeIntervals(intervals);
  const whole = fullIntervals(family)[FIELD[name]] as Interval;
  return fieldIn(family, name, negated ? complement(list, whole) : list);
}

/** An address condition: decided at once on the container's own end, a constraint on the remote end. */
function address(view: SpaceView, end: 'source' | 'destination', block: AddressBlock, negated: boolean): Constraint {
  if (view.own.end === end) return blockContains(block, view.family, view.own.address) !== negated;
  if (block.family !== view.family) return negated;
  return field(view.family, 'remote', [[blockFirst(block), blockLast(block)]], negated);
}

function addressMatch(view: SpaceView, end: 'source' | 'destination', condition: AddressMatch | undefined): Constraint {
  return condition === undefined ? true : address(view, end, condition.block, condition.negated);
}

/** The evaluator's interface test, for the interface the box's packets come by (or none known). */
function interfaceMatch(condition: InterfaceMatch | undefined, name: string | undefined): Constraint {
  if (condition === undefined) return true;
  const wildcard = condition.name.endsWith('+');
  const stem = wildcard ? condition.name.slice(0, -1) : condition.name;
  if (wildcard && stem === '') return !condition.negated;
  if (name === undefined) return 'unknown';
  return (wildcard ? name.startsWith(stem) : name === stem) !== condition.negated;
}

/**
 * The packet -m rpfilter asks about: its source and in interface (the reverse path depends on
 * nothing else). Undefined when the source is the remote end and the box holds more than one
 * source, unless one stands for them all.
 */
function reversePathPacket(view: SpaceView, box: Box): Packet | undefined {
  const [low, high] = box.intervals[FIELD.remote] as Interval;
  const remote = box.representative ?? (low === high ? low : undefined);
  if (view.own.end === 'destination' && remote === undefined) return undefined;
  const inInterface = box.inInterface ?? view.inInterface;
  return {
    family: view.family,
    source: view.own.end === 'source' ? view.own.address : (remote as bigint),
    destination: view.own.end === 'destination' ? view.own.address : low,
    protocol: 0,
    state: 'NEW',
    mark: 0,
    ...(inInterface !== undefined && { inInterface }),
  };
}

function icmpConstraint(family: Family, protocol: bigint, type: number, code: number | undefined, negated: boolean): Constraint {
  const protocolIs = field(family, 'protocol', [[protocol, protocol]]);
  const typed = and(
    field(family, 'icmpType', [[BigInt(type), BigInt(type)]]),
    code === undefined ? true : field(family, 'icmpCode', [[BigInt(code), BigInt(code)]]),
  );
  if (!negated) return and(protocolIs, typed);
  return and(protocolIs, typed === false ? true : negate(family, typed as Box[]));
}

function matchConstraint(match: Match, view: SpaceView, box: Box): Constraint {
  const { family } = view;
  switch (match.kind) {
    case 'comment':
    case 'limit':
      return true;
    case 'hashlimit':
      return match.over === 'upto';
    case 'tcp':
    case 'udp': {
      const protocol = match.kind === 'tcp' ? 6n : 17n;
      return and(
        field(family, 'protocol', [[protocol, protocol]]),
        match.sport === undefined ? true : field(family, 'sport', portIntervals(match.sport)),
        match.dport === undefined ? true : field(family, 'dport', portIntervals(match.dport)),
      );
    }
    case 'multiport': {
      const ports = match.ports.map(({ start, end }): Interval => [BigInt(start), BigInt(end)]);
      const source = field(family, 'sport', ports) as Box[];
      const destination = field(family, 'dport', ports) as Box[];
      const hit =
        match.direction === 'sports'
          ? source
          : match.direction === 'dports'
            ? destination
            : [...source, ...subtract(destination, source)];
      return match.negated ? negate(family, hit) : hit;
    }
    case 'icmp':
      if (match.type === 255) return match.negated ? false : field(family, 'protocol', [[1n, 1n]]);
      return icmpConstraint(family, 1n, match.type, match.code, match.negated);
    case 'icmp6':
      return icmpConstraint(family, 58n, match.type, match.code, match.negated);
    case 'iprange':
      return and(
        match.source === undefined ? true : address(view, 'source', match.source.block, match.source.negated),
        match.destination === undefined ? true : address(view, 'destination', match.destination.block, match.destination.negated),
      );
    case 'state':
    case 'conntrack': {
      const states = match.states.map((state): Interval => {
        const index = BigInt(CONNTRACK_STATES.indexOf(state));
        return [index, index];
      });
      return field(family, 'state', states, match.negated);
    }
    case 'mark': {
      if (match.mask === 0xffffffff) return field(family, 'mark', [[BigInt(match.value), BigInt(match.value)]], match.negated);
      const [low, high] = box.intervals[FIELD.mark] as Interval;
      if (low !== high) return 'unknown';
      return ((Number(low) & match.mask) >>> 0 === match.value) !== match.negated;
    }
    case 'set': {
      const set = view.context.sets.get(match.name);
      if (set === undefined || match.directions.length !== 1) return 'unknown';
      const end = match.directions[0] === 'dst' ? 'destination' : 'source';
      if (view.own.end === end) return setContains(set, family, view.own.address) !== match.negated;
      if (set.family !== family) return match.negated;
      return field(
        family,
        'remote',
        set.members.map((member): Interval => [blockFirst(member), blockLast(member)]),
        match.negated,
      );
    }
    case 'rpfilter': {
      if (match.loose || match.validmark || match.acceptLocal) return 'unknown';
      const packet = reversePathPacket(view, box);
      const valid = packet === undefined ? undefined : view.context.reversePath?.(packet);
      return valid === undefined ? 'unknown' : valid !== match.invert;
    }
  }
}

/** A rule's conditions, worked out once for a view: what holds for every box, and what each box decides. */
export interface CompiledRule {
  readonly opaque: boolean;
  /** The addresses' constraint (checked first, as the evaluator does). */
  readonly addresses: Constraint;
  /** The remote addresses the rule can match at all: most boxes are turned away by this alone. */
  readonly remote?: readonly Interval[];
  /** One-address conditions on the remote end: a box that excludes the address never matches them. */
  readonly hosts: readonly { readonly address: bigint; readonly negated: boolean }[];
  /** Every other condition that does not depend on the box (never 'unknown': see `unknown`). */
  readonly known: Box[] | boolean;
  /** Some condition's outcome cannot be known, for any box. */
  readonly unknown: boolean;
  /** Conditions on what differs between boxes: their in interface, a masked mark, the reverse path. */
  readonly perBox: readonly ((box: Box) => Constraint)[];
}

const ANY_BOX: Box = { intervals: [] };

export function compileRule(rule: ChainRule, view: SpaceView): CompiledRule {
  if (rule.kind === 'opaque') return { opaque: true, addresses: true, hosts: [], known: true, unknown: true, perBox: [] };
  const { family } = view;
  const hosts: { address: bigint; negated: boolean }[] = [];
  for (const end of ['source', 'destination'] as const) {
    const block = rule[end]?.block;
    if (view.own.end !== end && block !== undefined && block.family === family && blockFirst(block) === blockLast(block))
      hosts.push({ address: blockFirst(block), negated: rule[end]?.negated ?? false });
  }
  const addresses = and(addressMatch(view, 'source', rule.source), addressMatch(view, 'destination', rule.destination));
  const number = rule.protocol === undefined ? 0 : protocolNumber(rule.protocol.name);
  const protocol: Constraint =
    rule.protocol === undefined
      ? true
      : number === undefined
        ? 'unknown'
        : number === 0
          ? !rule.protocol.negated
          : field(family, 'protocol', [[BigInt(number), BigInt(number)]], rule.protocol.negated);
  const perBox: ((box: Box) => Constraint)[] = [];
  const constraints: Constraint[] = [protocol, interfaceMatch(rule.outInterface, view.outInterface)];
  const inInterface = rule.inInterface;
  if (inInterface !== undefined) perBox.push((box) => interfaceMatch(inInterface, box.inInterface ?? view.inInterface));
  for (const match of rule.matches) {
    if (match.kind === 'rpfilter' || (match.kind === 'mark' && match.mask !== 0xffffffff))
      perBox.push((box) => matchConstraint(match, view, box));
    else constraints.push(matchConstraint(match, view, ANY_BOX));
  }
  const known = and(...constraints.filter((constraint) => constraint !== 'unknown'));
  return {
    opaque: false,
    addresses,
    ...(Array.isArray(addresses) && { remote: addresses.map((box) => box.intervals[FIELD.remote] as Interval) }),
    hosts,
    known: known === 'unknown' ? true : known,
    unknown: constraints.includes('unknown'),
    perBox,
  };
}

const NONE = { matched: [] as Box[], unknown: [] as Box[] };

/** The part of `box` the rule matches, and the part where whether it matches cannot be known. */
export function ruleSpace(rule: CompiledRule, box: Box): { matched: Box[]; unknown: Box[] } {
  if (rule.opaque) return { matched: [], unknown: [box] };
  if (rule.addresses === false || rule.known === false) return NONE;
  if (rule.remote !== undefined) {
    const [low, high] = box.intervals[FIELD.remote] as Interval;
    if (!rule.remote.some(([from, to]) => from <= high && low <= to)) return NONE;
  }
  for (const host of rule.hosts) if (!host.negated && box.excluded?.has(host.address)) return NONE;
  let region = rule.addresses === true ? [box] : intersect([box], rule.addresses as Box[]);
  if (region.length === 0) return NONE;
  if (rule.known !== true) {
    region = intersect(region, rule.known);
    if (region.length === 0) return NONE;
  }
  let unknown = rule.unknown;
  for (const check of rule.perBox) {
    const constraint = check(box);
    if (constraint === false) return NONE;
    if (constraint === 'unknown') unknown = true;
    else if (constraint !== true) {
      region = intersect(region, constraint);
      if (region.length === 0) return NONE;
    }
  }
  return unknown ? { matched: [], unknown: region } : { matched: region, unknown: [] };
}
