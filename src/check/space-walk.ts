// A ruleset's verdict for a whole space of packets at once: the evaluator's walk (raw PREROUTING,
// then the filter hook; first match, jumps, gotos, RETURN, policies, MARK, LOG) with a set of
// boxes in place of one packet. Each rule splits what reaches it into what it matches (which
// takes its target) and the rest (which goes on); where a rule's outcome cannot be known, those
// packets are decided "unknown", as the evaluator would answer for each of them.
import type { Chain, Ruleset } from '../ir/ruleset.js';
import { blockContains, blockFirst, blockLast } from '../model/address.js';
import type { RulePlace, Verdict } from './evaluate.js';
import { type DispatchRun, dispatchRuns } from './dispatch-runs.js';
import { type CompiledRule, compileRule, ruleSpace, type SpaceView } from './match-space.js';
import { type Box, FIELD, type Interval, subtract } from './space.js';

/** Packets with one outcome: the verdict, the rule that decided (none: a policy) and the rules that led there. */
export interface Piece {
  readonly box: Box;
  readonly verdict: Verdict;
  readonly decidedBy?: RulePlace;
  readonly via: readonly RulePlace[];
}

/** Chains nested deeper than this are refused by the kernel; a parsed file might loop. */
const MAX_DEPTH = 64;

interface ChainResult {
  readonly decided: Piece[];
  /** Packets that fell off the end of the chain or met RETURN: they go on in the caller. */
  readonly returned: Box[];
}

/** The box after MARK --set-xmark value/mask; undefined when a partial mask meets more than one mark. */
function remark(box: Box, value: number, mask: number): Box | undefined {
  const [low, high] = box.intervals[FIELD.mark] as Interval;
  let mark: bigint;
  if (mask === 0xffffffff) mark = BigInt(value >>> 0);
  else if (low === high) mark = BigInt(((Number(low) & ~mask) ^ value) >>> 0);
  else return undefined;
  const intervals = [...box.intervals];
  intervals[FIELD.mark] = [mark, mark];
  return { ...box, intervals, arrivalMark: box.arrivalMark ?? (box.intervals[FIELD.mark] as Interval) };
}

/** The box in terms of the packets as they arrived: the mark they came with, not one a MARK gave them. */
function asArrived(box: Box): Box {
  if (box.arrivalMark === undefined) return box;
  const { arrivalMark, ...rest } = box;
  const intervals = [...box.intervals];
  intervals[FIELD.mark] = arrivalMark;
  return { ...rest, intervals };
}

/** Chains by table and name, per ruleset; dispatch runs per chain: the same for every context of a review. */
const TABLES = new WeakMap<Ruleset, ReadonlyMap<string, ReadonlyMap<string, Chain>>>();
const RUNS = new WeakMap<Chain, (DispatchRun | undefined)[]>();

export class SpaceWalker {
  private readonly tables: ReadonlyMap<string, ReadonlyMap<string, Chain>>;
  private readonly compiled = new Map<Chain['rules'][number], CompiledRule>();

  constructor(
    ruleset: Ruleset,
    private readonly view: SpaceView,
  ) {
    let tables = TABLES.get(ruleset);
    if (tables === undefined) {
      tables = new Map(ruleset.tables.map((table) => [table.name, new Map(table.chains.map((chain) => [chain.name, chain]))]));
      TABLES.set(ruleset, tables);
    }
    this.tables = tables;
  }

  /** Every box of `space` decided, as the evaluator decides each of its packets entering `hook`. */
  decide(space: readonly Box[], hook: 'FORWARD' | 'INPUT'): Piece[] {
    const decided: Piece[] = [];
    let going: Box[] = [...space];
    for (const [table, chainName] of [
      ['raw', 'PREROUTING'],
      ['filter', hook],
    ] as const) {
      const chains = this.tables.get(table);
      if (chains === undefined && table !== 'filter') continue;
      const hookChain = chains?.get(chainName);
      if (hookChain === undefined) continue; // an empty chain: its policy, ACCEPT
      const walked = this.walk(table, chains as ReadonlyMap<string, Chain>, hookChain, going, [], 1);
      const policy = hookChain.policy ?? 'ACCEPT';
      const passed = walked.returned;
      going = [];
      for (const piece of walked.decided) {
        if (piece.verdict === 'ACCEPT' && table !== 'filter') going.push(piece.box);
        else decided.push(piece);
      }
      if (policy === 'ACCEPT' && table !== 'filter') going.push(...passed);
      else decided.push(...passed.map((box): Piece => ({ box, verdict: policy, via: [] })));
    }
    decided.push(...going.map((box): Piece => ({ box, verdict: 'ACCEPT', via: [] })));
    return decided.map((piece) => (piece.box.arrivalMark === undefined ? piece : { ...piece, box: asArrived(piece.box) }));
  }

  /**
   * A digest of every rule some packet of `space` may meet on its way through `hook`: two
   * rulesets with the same digest for the same context decide its packets alike. Cheap: no box
   * is split. Undefined when such a rule may be beyond evaluation (then walk to be sure).
   * `textOf` gives a rule's text digest, shared between calls.
   */
  signature(
    space: readonly Box[],
    hook: 'FORWARD' | 'INPUT',
    textOf: (rule: Chain['rules'][number]) => number,
  ): number | undefined {
    let digest = 2166136261;
    const mix = (value: number) => {
      digest = Math.imul(digest ^ value, 16777619) >>> 0;
    };
    const excludedEverywhere = (address: bigint) => space.every((box) => box.excluded?.has(address) === true);
    let unknown = false;
    /** Whether the chain decides every packet that enters it, by a rule that matches them all. */
    const decidesAll = new Map<Chain, boolean>();
    const visit = (chains: ReadonlyMap<string, Chain>, chain: Chain): boolean => {
      const known = decidesAll.get(chain);
      if (known !== undefined) return known;
      decidesAll.set(chain, false);
      mix(chain.rules.length);
      const runs = this.runsOf(chain);
      const follow = (rule: Chain['rules'][number]): boolean => {
        mix(textOf(rule));
        if (rule.kind === 'opaque') {
          unknown = true;
          return false;
        }
        for (const match of rule.matches) {
          if (match.kind !== 'set') continue;
          const set = this.view.context.sets.get(match.name);
          if (set === undefined) unknown = true;
          else mix(textOf({ kind: 'opaque', text: set.members.map((member) => member.text).join(' ') }));
        }
        const target = rule.target;
        if (target === undefined) return false;
        const everything = this.matchesEverything(rule);
        if (target.kind === 'jump' || target.kind === 'goto') {
          const next = chains.get(target.chain);
          const decided = next === undefined ? false : visit(chains, next);
          return everything && (target.kind === 'goto' || decided);
        }
        return everything && ((target.kind === 'verdict' && target.verdict !== 'RETURN') || target.kind === 'REJECT');
      };
      for (let index = 0; index < chain.rules.length; index++) {
        const run = runs[index];
        if (run !== undefined && this.view.own.end !== run.field && space.every((box) => runExcluded(run, box.excluded))) {
          index = run.end - 1;
          continue;
        }
        if (run !== undefined && this.view.own.end !== run.field && !run.jumps) {
          // A run that only decides (no jumps): the same rules decide alike, so its text is enough.
          mix(runDigest(chain, run, textOf));
          index = run.end - 1;
          continue;
        }
        if (run !== undefined && this.view.own.end === run.field) {
          // Of a dispatch run on the container's own address, only its own rules can match.
          for (const position of run.positions.get(this.view.own.address) ?? [])
            if (follow(chain.rules[position] as Chain['rules'][number])) {
              decidesAll.set(chain, true);
              return true;
            }
          index = run.end - 1;
          continue;
        }
        const rule = chain.rules[index] as Chain['rules'][number];
        const host = rule.kind === 'rule' ? this.remoteHost(rule) : undefined;
        if (host !== undefined && excludedEverywhere(host)) continue;
        if (follow(rule)) {
          decidesAll.set(chain, true);
          return true;
        }
      }
      return false;
    };
    for (const [table, chainName] of [
      ['raw', 'PREROUTING'],
      ['filter', hook],
    ] as const) {
      const chains = this.tables.get(table);
      const hookChain = chains?.get(chainName);
      mix(table === 'raw' ? 1 : 2);
      if (chains !== undefined && hookChain !== undefined) visit(chains, hookChain);
    }
    return unknown ? undefined : digest;
  }

  /** The one remote address a rule's plain address condition names, if it names one. */
  private remoteHost(rule: Extract<Chain['rules'][number], { kind: 'rule' }>): bigint | undefined {
    const end = this.view.own.end === 'source' ? 'destination' : 'source';
    const condition = rule[end];
    if (condition === undefined || condition.negated) return undefined;
    const first = blockFirst(condition.block);
    return first === blockLast(condition.block) ? first : undefined;
  }

  /** A rule whose only conditions hold for every packet of the view (its own address, or none). */
  private matchesEverything(rule: Extract<Chain['rules'][number], { kind: 'rule' }>): boolean {
    if (
      rule.matches.length > 0 ||
      rule.protocol !== undefined ||
      rule.inInterface !== undefined ||
      rule.outInterface !== undefined
    )
      return false;
    const own = this.view.own;
    for (const end of ['source', 'destination'] as const) {
      const condition = rule[end];
      if (condition === undefined) continue;
      if (end !== own.end) return false;
      if (blockContains(condition.block, this.view.family, own.address) === condition.negated) return false;
    }
    return true;
  }

  private compile(rule: Chain['rules'][number]): CompiledRule {
    let compiled = this.compiled.get(rule);
    if (compiled === undefined) {
      compiled = compileRule(rule, this.view);
      this.compiled.set(rule, compiled);
    }
    return compiled;
  }

  private walk(
    table: string,
    chains: ReadonlyMap<string, Chain>,
    chain: Chain,
    space: Box[],
    via: readonly RulePlace[],
    depth: number,
  ): ChainResult {
    const result: ChainResult = { decided: [], returned: [] };
    const runs = this.runsOf(chain);
    let live = space;
    for (let index = 0; index < chain.rules.length && live.length > 0;) {
      const run = runs[index];
      if (run === undefined) {
        live = this.applyRule(table, chains, chain, index, live, via, depth, result);
        index++;
        continue;
      }
      // A run of one-address rules: each box meets only the rules of addresses it can hold.
      const byAddress = new Map<bigint, Box[]>();
      const wide: Box[] = [];
      for (const box of live) {
        const address = this.pointOf(box, run.field);
        if (address === undefined) wide.push(box);
        else byAddress.set(address, [...(byAddress.get(address) ?? []), box]);
      }
      live = [];
      for (const [address, boxes] of byAddress) {
        let going = boxes;
        for (const position of run.positions.get(address) ?? [])
          going = this.applyRule(table, chains, chain, position, going, via, depth, result);
        live.push(...going);
      }
      // Boxes that exclude every address of the run pass it untouched.
      const passing = wide.filter((box) => runExcluded(run, box.excluded));
      let going = wide.filter((box) => !runExcluded(run, box.excluded));
      for (let position = index; position < run.end && going.length > 0; position++)
        going = this.applyRule(table, chains, chain, position, going, via, depth, result);
      live.push(...passing, ...going);
      index = run.end;
    }
    result.returned.push(...live);
    return result;
  }

  /** The one address the box's packets have in `field` (the container's own, or a one-address remote). */
  private pointOf(box: Box, field: 'source' | 'destination'): bigint | undefined {
    if (this.view.own.end === field) return this.view.own.address;
    const [low, high] = box.intervals[FIELD.remote] as Interval;
    return low === high ? low : undefined;
  }

  private runsOf(chain: Chain): (DispatchRun | undefined)[] {
    let runs = RUNS.get(chain);
    if (runs === undefined) {
      runs = dispatchRuns(chain, this.view.family) ?? [];
      RUNS.set(chain, runs);
    }
    return runs;
  }

  /** One rule applied to the boxes reaching it; returns the boxes that go on to the next rule. */
  private applyRule(
    table: string,
    chains: ReadonlyMap<string, Chain>,
    chain: Chain,
    index: number,
    live: readonly Box[],
    via: readonly RulePlace[],
    depth: number,
    result: ChainResult,
  ): Box[] {
    const rule = chain.rules[index] as Chain['rules'][number];
    const place: RulePlace = { table, chain: chain.name, index: index + 1, rule };
    const compiled = this.compile(rule);
    const decide = (box: Box, verdict: Verdict) => result.decided.push({ box, verdict, decidedBy: place, via });
    const matched: Box[] = [];
    const rest: Box[] = [];
    for (const box of live) {
      const split = ruleSpace(compiled, box);
      for (const unknown of split.unknown) decide(unknown, 'unknown');
      if (split.matched.length === 0 && split.unknown.length === 0) rest.push(box);
      else {
        matched.push(...split.matched);
        rest.push(...subtract([box], [...split.matched, ...split.unknown]));
      }
    }
    if (matched.length === 0 || rule.kind === 'opaque' || rule.target === undefined) return [...rest, ...matched];
    const target = rule.target;
    switch (target.kind) {
      case 'verdict':
        if (target.verdict === 'RETURN') result.returned.push(...matched);
        else for (const box of matched) decide(box, target.verdict);
        break;
      case 'REJECT':
        for (const box of matched) decide(box, 'REJECT');
        break;
      case 'jump':
      case 'goto': {
        const next = chains.get(target.chain);
        if (next === undefined || depth >= MAX_DEPTH) {
          for (const box of matched) decide(box, 'unknown');
          break;
        }
        const inner = this.walk(table, chains, next, matched, [...via, place], depth + 1);
        result.decided.push(...inner.decided);
        // A jump's RETURN goes on after the rule; a goto's goes back to this chain's caller.
        if (target.kind === 'jump') rest.push(...inner.returned);
        else result.returned.push(...inner.returned);
        break;
      }
      case 'MARK':
        for (const box of matched) {
          const marked = remark(box, target.value, target.mask);
          if (marked === undefined) decide(box, 'unknown');
          else rest.push(marked);
        }
        break;
      case 'LOG':
        rest.push(...matched);
        break;
    }
    return rest;
  }
}

const RUN_DIGESTS = new WeakMap<(rule: Chain['rules'][number]) => number, WeakMap<DispatchRun, number>>();

/** The digest of a run's rules' texts (cached per text digest: runs are shared). */
function runDigest(chain: Chain, run: DispatchRun, textOf: (rule: Chain['rules'][number]) => number): number {
  const digests = RUN_DIGESTS.get(textOf) ?? new WeakMap<DispatchRun, number>();
  RUN_DIGESTS.set(textOf, digests);
  let digest = digests.get(run);
  if (digest === undefined) {
    digest = 2166136261;
    for (let index = run.start; index < run.end; index++)
      digest = Math.imul(digest ^ textOf(chain.rules[index] as Chain['rules'][number]), 16777619) >>> 0;
    digests.set(run, digest);
  }
  return digest;
}

/** Whether a box that excludes `excluded` can match none of the run's rules (cached: runs and sets are shared). */
const RUN_EXCLUDED = new WeakMap<DispatchRun, WeakMap<ReadonlySet<bigint>, boolean>>();

function runExcluded(run: DispatchRun, excluded: ReadonlySet<bigint> | undefined): boolean {
  if (excluded === undefined) return false;
  const bySet = RUN_EXCLUDED.get(run) ?? new WeakMap<ReadonlySet<bigint>, boolean>();
  RUN_EXCLUDED.set(run, bySet);
  let answer = bySet.get(excluded);
  if (answer === undefined) {
    answer = [...run.positions.keys()].every((address) => excluded.has(address));
    bySet.set(excluded, answer);
  }
  return answer;
}
