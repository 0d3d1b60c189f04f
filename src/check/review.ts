// What a policy change means: for each container, family and direction, the exact packets newly
// allowed and newly denied, from the rules' meaning (header space), never from their text.
import type { ChainRule, Ruleset } from '../ir/ruleset.js';
import { renderRuleSpec } from '../render/save-text.js';
import type { Family } from '../model/address.js';
import { FAMILIES } from '../model/address.js';
import type { CellPolicy, Container } from '../model/cell.js';
import { CellLinks, interfaceMatchesPattern } from './cell-links.js';
import type { RulePlace } from './evaluate.js';
import { type PolicySource, policyOf } from './explain.js';
import type { SpaceView } from './match-space.js';
import { type Box, boxesOverlap, FIELD, type Interval, packetUniverse, sameBox, subtract } from './space.js';
import { type Piece, SpaceWalker } from './space-walk.js';

/**
 * egress: the container's traffic to anything but the cell's containers (theirs is c2c, seen
 * from the receiving side); ingress: traffic to the container, from outside or from the cell's
 * other containers (c2c); host: the container's traffic to the cell itself.
 */
export type Direction = 'egress' | 'ingress' | 'host';
export const DIRECTIONS: readonly Direction[] = ['egress', 'ingress', 'host'];

/** One side of a review: a family's rules (with the ipsets they name, when known), and the cell. */
export interface ReviewSide {
  readonly rulesets: Readonly<Record<Family, Ruleset>>;
  readonly cell: Pick<CellPolicy, 'containers' | 'config'>;
}

/** Packets with one access, and the policy behind it (the rule that allowed them). */
export interface Access {
  readonly box: Box;
  readonly policy?: PolicySource;
  readonly rule?: RulePlace;
}

export interface ContextReview {
  readonly container: Container;
  readonly family: Family;
  readonly direction: Direction;
  readonly gained: readonly Access[];
  readonly lost: readonly Access[];
  /** Set when a rule whose outcome cannot be known decides some of its packets, on either side. */
  readonly unknown?: string;
}

interface Context {
  readonly view: SpaceView;
  readonly hook: 'FORWARD' | 'INPUT';
  readonly space: Box[];
}

function addressOf(container: Container, family: Family): bigint | undefined {
  return family === 4 ? container.ipv4 : container.ipv6;
}

/** The in-interface patterns a ruleset's rules name: containers whose interfaces match the same ones are alike to it. */
function interfacePatterns(ruleset: Ruleset): string[] {
  const patterns = new Set<string>();
  for (const table of ruleset.tables)
    for (const chain of table.chains)
      for (const rule of chain.rules)
        if (rule.kind === 'rule' && rule.inInterface !== undefined) patterns.add(rule.inInterface.name);
  return [...patterns];
}

/** What every context of one side and family shares, worked out once. */
interface SideFacts {
  readonly links: CellLinks;
  readonly context: SpaceView['context'];
  readonly local: ReadonlySet<bigint>;
  /** Runs of consecutive container addresses the rules cannot tell apart by interface. */
  readonly runs: readonly Interval[];
  readonly interfaceAt: ReadonlyMap<bigint, string | undefined>;
}

const FACTS = new WeakMap<Ruleset, WeakMap<ReviewSide['cell'], SideFacts>>();

function sideFacts(side: ReviewSide, family: Family): SideFacts {
  const ruleset = side.rulesets[family];
  const byCell = FACTS.get(ruleset) ?? new WeakMap<ReviewSide['cell'], SideFacts>();
  FACTS.set(ruleset, byCell);
  const known = byCell.get(side.cell);
  if (known !== undefined) return known;
  const links = new CellLinks(side.cell.containers, side.cell.config);
  const patterns = interfacePatterns(ruleset);
  const interfaceAt = new Map<bigint, string | undefined>();
  const byClass = new Map<string, bigint[]>();
  for (const container of side.cell.containers) {
    const address = addressOf(container, family);
    if (address === undefined) continue;
    const iface = links.interfaceOf(container);
    interfaceAt.set(address, iface);
    const key = patterns.map((pattern) => (iface !== undefined && interfaceMatchesPattern(iface, pattern) ? '1' : '0')).join('');
    byClass.set(key, [...(byClass.get(key) ?? []), address]);
  }
  const runs: Interval[] = [];
  for (const addresses of byClass.values()) {
    addresses.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let start = 0;
    for (let index = 1; index <= addresses.length; index++) {
      if (index < addresses.length && addresses[index] === (addresses[index - 1] as bigint) + 1n) continue;
      runs.push([addresses[start] as bigint, addresses[index - 1] as bigint]);
      start = index;
    }
  }
  const facts: SideFacts = {
    links,
    context: { sets: new Map((ruleset.sets ?? []).map((set) => [set.name, set])), reversePath: links.reversePath },
    local: new Set(interfaceAt.keys()),
    runs,
    interfaceAt,
  };
  byCell.set(side.cell, facts);
  return facts;
}

/**
 * The cell's other containers as sources: runs of consecutive addresses whose interfaces the
 * rules cannot tell apart, each run one box coming in by its first container's interface (each
 * container really sends by its own; the rules see them alike).
 */
function neighbourBoxes(facts: SideFacts, own: bigint, family: Family): Box[] {
  const boxes: Box[] = [];
  for (const [low, high] of facts.runs) {
    const pieces: Interval[] =
      own < low || own > high
        ? [[low, high]]
        : [
            [low, own - 1n],
            [own + 1n, high],
          ];
    for (const [first, last] of pieces) {
      if (first > last) continue;
      for (const box of packetUniverse(family, facts.interfaceAt.get(first))) {
        const intervals = [...box.intervals];
        intervals[FIELD.remote] = [first, last];
        boxes.push({ ...box, intervals, representative: first });
      }
    }
  }
  return boxes;
}

/** The review's packets of one container, family and direction, as the evaluator would build them. */
export function reviewContext(side: ReviewSide, container: Container, family: Family, direction: Direction): Context | undefined {
  const own = addressOf(container, family);
  if (own === undefined) return undefined;
  const facts = sideFacts(side, family);
  const { links, context, local } = facts;
  const iface = links.interfaceOf(container);
  if (direction === 'ingress') {
    // From outside (by the uplink), and from each other container (by its own interface).
    const outside = packetUniverse(family, links.outsideInterface).map((box) => ({ ...box, excluded: local }));
    return {
      view: { family, own: { address: own, end: 'destination' }, ...(iface !== undefined && { outInterface: iface }), context },
      hook: 'FORWARD',
      space: [...outside, ...neighbourBoxes(facts, own, family)],
    };
  }
  const outInterface = direction === 'egress' ? links.hostInterface : undefined;
  return {
    view: {
      family,
      own: { address: own, end: 'source' },
      ...(iface !== undefined && { inInterface: iface }),
      ...(outInterface !== undefined && { outInterface }),
      context,
    },
    hook: direction === 'host' ? 'INPUT' : 'FORWARD',
    space: packetUniverse(family).map((box) => (direction === 'egress' ? { ...box, excluded: local } : box)),
  };
}

/** Every packet of the context with its outcome. */
export function decideContext(side: ReviewSide, container: Container, family: Family, direction: Direction): Piece[] | undefined {
  const context = reviewContext(side, container, family, direction);
  if (context === undefined) return undefined;
  return new SpaceWalker(side.rulesets[family], context.view).decide(context.space, context.hook);
}

function policyOfPiece(piece: Piece): PolicySource | undefined {
  if (piece.decidedBy === undefined) return undefined;
  return policyOf({ verdict: piece.verdict, decidedBy: piece.decidedBy, via: piece.via, reason: '', trace: [], mark: 0 });
}

/** A piece's packets with the policy behind its outcome. */
export function accessOf(piece: Piece): Access {
  const policy = policyOfPiece(piece);
  return {
    box: piece.box,
    ...(policy !== undefined && { policy }),
    ...(piece.decidedBy !== undefined && { rule: piece.decidedBy }),
  };
}

/** What `pieces` allow that `others` do not. */
function allowedOnlyBy(pieces: readonly Piece[], others: readonly Box[]): Access[] {
  const access: Access[] = [];
  for (const piece of pieces) {
    if (piece.verdict !== 'ACCEPT') continue;
    const overlapping = others.filter((box) => boxesOverlap(piece.box, box));
    const entry = accessOf(piece);
    for (const box of subtract([piece.box], overlapping)) access.push({ ...entry, box });
  }
  return access;
}

function unknownReason(pieces: readonly Piece[]): string | undefined {
  const unknown = pieces.find((piece) => piece.verdict === 'unknown');
  if (unknown === undefined) return undefined;
  const place = unknown.decidedBy;
  return place === undefined
    ? 'a rule cannot be evaluated'
    : `${place.table} ${place.chain} rule ${place.index} cannot be evaluated`;
}

/** A rule's text as a number, for signatures (rules never change once built); one function per family. */
const TEXT_DIGESTS = new WeakMap<ChainRule, number>();

function textDigestOf(family: Family): (rule: ChainRule) => number {
  return (rule) => {
    let digest = TEXT_DIGESTS.get(rule);
    if (digest === undefined) {
      const text = renderRuleSpec(rule, family);
      digest = 2166136261;
      for (let index = 0; index < text.length; index++) digest = Math.imul(digest ^ text.charCodeAt(index), 16777619) >>> 0;
      TEXT_DIGESTS.set(rule, digest);
    }
    return digest;
  };
}

const TEXT_DIGEST: Readonly<Record<Family, (rule: ChainRule) => number>> = { 4: textDigestOf(4), 6: textDigestOf(6) };

/** Whether two sides' contexts hold the same packets: the same view, and boxes alike but for what they exclude. */
function sameContext(a: Context, b: Context): boolean {
  const [x, y] = [a.view, b.view];
  return (
    a.hook === b.hook &&
    x.own.end === y.own.end &&
    x.own.address === y.own.address &&
    x.inInterface === y.inInterface &&
    x.outInterface === y.outInterface &&
    a.space.length === b.space.length &&
    a.space.every((box, index) => sameBox(box, b.space[index] as Box))
  );
}

/** The change of one container's access in one family and direction (undefined: it has no address there). */
export function reviewChange(
  before: ReviewSide,
  after: ReviewSide,
  container: Container,
  family: Family,
  direction: Direction,
): ContextReview | undefined {
  const now = reviewContext(after, container, family, direction);
  if (now === undefined) return undefined;
  // A container new in the change had no access before: all it may reach now is gained.
  const existing = before.cell.containers.find((candidate) => candidate.handle === container.handle);
  const then = existing === undefined ? undefined : reviewContext(before, existing, family, direction);
  const unchanged = { container, family, direction, gained: [], lost: [] };
  // The same packets through the same rules: nothing to walk. (A box's excluded addresses are
  // the cell's containers, whose traffic each side reviews from their own side.)
  if (then !== undefined && sameContext(then, now)) {
    const textOf = TEXT_DIGEST[family];
    const was = new SpaceWalker(before.rulesets[family], then.view).signature(then.space, then.hook, textOf);
    const is = new SpaceWalker(after.rulesets[family], now.view).signature(now.space, now.hook, textOf);
    if (was !== undefined && was === is) return unchanged;
  }
  const old = then === undefined ? [] : new SpaceWalker(before.rulesets[family], then.view).decide(then.space, then.hook);
  const pieces = new SpaceWalker(after.rulesets[family], now.view).decide(now.space, now.hook);
  const unknown = unknownReason(pieces) ?? unknownReason(old);
  if (unknown !== undefined) return { ...unchanged, unknown };
  const allowed = (list: readonly Piece[]) => list.filter((piece) => piece.verdict === 'ACCEPT').map((piece) => piece.box);
  return { ...unchanged, gained: allowedOnlyBy(pieces, allowed(old)), lost: allowedOnlyBy(old, allowed(pieces)) };
}

/** Every container of the after side, every family and direction (a container the change removes has no access left to review). */
export function reviewCells(before: ReviewSide, after: ReviewSide): ContextReview[] {
  const reviews: ContextReview[] = [];
  for (const container of after.cell.containers)
    for (const family of FAMILIES)
      for (const direction of DIRECTIONS) {
        const review = reviewChange(before, after, container, family, direction);
        if (review !== undefined && (review.unknown !== undefined || review.gained.length + review.lost.length > 0))
          reviews.push(review);
      }
  return reviews;
}
