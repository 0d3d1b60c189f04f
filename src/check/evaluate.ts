// A packet through a ruleset with iptables' first-match semantics: the tables of its path in the
// kernel's order (raw PREROUTING, then filter INPUT or FORWARD), in each rules in order, jumps and
// gotos, RETURN, the built-in chain's policy at its end, MARK setting the mark for what follows,
// LOG passing on. Every match is decided by its extension module (src/extensions). A rule whose
// outcome cannot be known (a foreign module, an interface the packet does not name) makes the
// verdict "unknown": the evaluator never guesses.
import type { MatchContext } from '../extensions/extension.js';
import { testMatch } from '../extensions/registry.js';
import type { IpSet } from '../ir/ipset.js';
import type { Chain, ChainRule, InterfaceMatch, Rule, Ruleset } from '../ir/ruleset.js';
import { type AddressBlock, blockContains } from '../model/address.js';
import { type Packet, protocolNumber } from '../ir/packet.js';
import { type DispatchRun, dispatchRuns } from './dispatch-runs.js';

export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT' | 'unknown';

/** Where a rule sits: its table, its chain and its 1-based number there, as `iptables -L --line-numbers` counts. */
export interface RulePlace {
  readonly table: string;
  readonly chain: string;
  readonly index: number;
  readonly rule: ChainRule;
}

export interface TraceStep extends RulePlace {
  readonly result: 'no match' | 'match' | 'unknown';
}

export interface Decision {
  readonly verdict: Verdict;
  /** REJECT's --reject-with. */
  readonly rejectWith?: string;
  /** The rule that decided; absent when a built-in chain's policy did (or the verdict is unknown). */
  readonly decidedBy?: RulePlace;
  /** The rules that jumped (or went) to the deciding rule's chain, outermost first. */
  readonly via: readonly RulePlace[];
  /** Why, in words: the policy that decided, or what could not be evaluated. */
  readonly reason: string;
  /** Every rule visited, in order (empty unless asked for). */
  readonly trace: readonly TraceStep[];
  /** The packet's mark at the end (MARK targets change it). */
  readonly mark: number;
}

export interface EvaluateOptions {
  /** The filter chain the packet enters: FORWARD for container traffic, INPUT for the cell itself. */
  readonly hook: string;
  /** Record every rule visited (costs time at cell scale). */
  readonly trace?: boolean;
}

/** A bound against chains that loop (the kernel refuses them; a parsed file might not). */
const MAX_DEPTH = 64;

type Outcome = boolean | undefined;

/** Three-valued AND: false wins, then unknown. */
function and(a: Outcome, b: () => Outcome): Outcome {
  if (a === false) return false;
  const other = b();
  if (other === false) return false;
  return a === undefined || other === undefined ? undefined : true;
}

function addressMatches(
  condition: { block: AddressBlock; negated: boolean } | undefined,
  packet: Packet,
  value: bigint,
): boolean {
  return condition === undefined || blockContains(condition.block, packet.family, value) !== condition.negated;
}

function interfaceMatches(condition: InterfaceMatch | undefined, name: string | undefined): Outcome {
  if (condition === undefined) return true;
  const wildcard = condition.name.endsWith('+');
  const stem = wildcard ? condition.name.slice(0, -1) : condition.name;
  if (wildcard && stem === '') return !condition.negated;
  if (name === undefined) return undefined;
  return (wildcard ? name.startsWith(stem) : name === stem) !== condition.negated;
}

function protocolMatches(rule: Rule, packet: Packet): Outcome {
  if (rule.protocol === undefined) return true;
  const number = protocolNumber(rule.protocol.name);
  if (number === undefined) return undefined;
  return (number === 0 || number === packet.protocol) !== rule.protocol.negated;
}

/** Whether a rule's conditions all hold for the packet. */
export function ruleMatches(rule: ChainRule, packet: Packet, context: MatchContext = NO_SETS): Outcome {
  if (rule.kind === 'opaque') return undefined;
  if (!addressMatches(rule.source, packet, packet.source) || !addressMatches(rule.destination, packet, packet.destination))
    return false;
  let outcome: Outcome = protocolMatches(rule, packet);
  outcome = and(outcome, () => interfaceMatches(rule.inInterface, packet.inInterface));
  outcome = and(outcome, () => interfaceMatches(rule.outInterface, packet.outInterface));
  for (const match of rule.matches) {
    if (outcome === false) return false;
    outcome = and(outcome, () => testMatch(match, packet, context));
  }
  return outcome;
}

/** Why a rule's outcome is unknown, in words. */
function whyUnknown(rule: ChainRule, packet: Packet, context: MatchContext): string {
  if (rule.kind === 'opaque') return 'uses what asgc does not model, so it cannot be evaluated';
  const set = rule.matches.find((match) => match.kind === 'set' && !context.sets.has(match.name));
  if (set?.kind === 'set') return `names ipset ${set.name}, whose members are not known (with --saved, give --saved-sets)`;
  if (
    (rule.inInterface !== undefined && packet.inInterface === undefined) ||
    (rule.outInterface !== undefined && packet.outInterface === undefined)
  )
    return 'matches on an interface the packet does not name (give --in-interface / --out-interface)';
  if (rule.matches.some((match) => match.kind === 'rpfilter'))
    return "checks the source against the host's routes (-m rpfilter), known only for a packet from a container's interface";
  return 'cannot be evaluated for this packet';
}

interface Frame {
  readonly chain: Chain;
  next: number;
  /** The rule that jumped here (undefined for the hook). */
  readonly caller: RulePlace | undefined;
}

const NO_SETS: MatchContext = { sets: new Map() };

export interface EvaluatorOptions {
  /** The ipsets rules may name; default: the ruleset's own (compiled rulesets carry theirs). */
  readonly sets?: readonly IpSet[];
  /** The host's reverse path, for `-m rpfilter` (unknown without it). */
  readonly reversePath?: MatchContext['reversePath'];
}

/** The tables and chains a packet meets on its way to a filter hook, in order. */
function pathTo(hook: string): readonly (readonly [table: string, chain: string])[] {
  const raw = hook === 'OUTPUT' ? 'OUTPUT' : 'PREROUTING';
  return [
    ['raw', raw],
    ['filter', hook],
  ];
}

/** How one table's walk ended: done with a verdict, or (ACCEPT) on to the next table of the path. */
interface Walked {
  readonly done: boolean;
  readonly decision: Decision;
}

export class Evaluator {
  private readonly tables: ReadonlyMap<string, ReadonlyMap<string, Chain>>;
  private readonly context: MatchContext;
  private readonly runs = new Map<Chain, (DispatchRun | undefined)[] | undefined>();

  constructor(
    private readonly ruleset: Ruleset,
    { sets = ruleset.sets ?? [], reversePath }: EvaluatorOptions = {},
  ) {
    this.tables = new Map(ruleset.tables.map((table) => [table.name, new Map(table.chains.map((chain) => [chain.name, chain]))]));
    this.context = { sets: new Map(sets.map((set) => [set.name, set])), ...(reversePath && { reversePath }) };
  }

  /** The chain's dispatch runs, found the first time a packet enters it. */
  private runsOf(chain: Chain): (DispatchRun | undefined)[] | undefined {
    if (!this.runs.has(chain)) this.runs.set(chain, dispatchRuns(chain, this.ruleset.family));
    return this.runs.get(chain);
  }

  /** The next position at or after `from` whose rule may match: runs skipped to the packet's own rule. */
  private nextCandidate(chain: Chain, from: number, packet: Packet): number {
    const run = this.runsOf(chain)?.[from];
    if (run === undefined) return from;
    const positions = run.positions.get(packet.family === this.ruleset.family ? packet[run.field] : -1n);
    const next = positions?.find((position) => position >= from);
    return next ?? run.end;
  }

  evaluate(packet: Packet, options: EvaluateOptions): Decision {
    const trace: TraceStep[] = [];
    const state = { packet: packet.mark >>> 0 === packet.mark ? packet : { ...packet, mark: packet.mark >>> 0 } };
    let last: Decision | undefined;
    for (const [table, chain] of pathTo(options.hook)) {
      const chains = this.tables.get(table);
      if (chains === undefined && table !== 'filter') continue;
      const walked = this.walk(table, chains ?? new Map(), chain, state, trace, options.trace === true);
      if (walked.done) return walked.decision;
      last = walked.decision;
    }
    return last as Decision;
  }

  /** One table's walk from its built-in chain; an ACCEPT goes on to the next table of the path. */
  private walk(
    table: string,
    chains: ReadonlyMap<string, Chain>,
    hookName: string,
    state: { packet: Packet },
    trace: TraceStep[],
    tracing: boolean,
  ): Walked {
    const finish = (
      verdict: Verdict,
      reason: string,
      stack: readonly Frame[],
      decidedBy?: RulePlace,
      rejectWith?: string,
    ): Walked => ({
      done: verdict !== 'ACCEPT',
      decision: {
        verdict,
        ...(rejectWith !== undefined && { rejectWith }),
        ...(decidedBy !== undefined && { decidedBy }),
        via: stack.flatMap((frame) => (frame.caller ? [frame.caller] : [])),
        reason,
        trace,
        mark: state.packet.mark,
      },
    });
    const named = table === 'filter' ? hookName : `${table} ${hookName}`;
    const hook = chains.get(hookName);
    if (hook === undefined) return finish('ACCEPT', `chain ${named} is empty: its policy is ACCEPT`, []);
    const stack: Frame[] = [{ chain: hook, next: 0, caller: undefined }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as Frame;
      // A trace lists every rule visited, so it walks them all.
      if (!tracing) frame.next = this.nextCandidate(frame.chain, frame.next, state.packet);
      const rule = frame.chain.rules[frame.next];
      if (rule === undefined) {
        stack.pop();
        if (stack.length === 0) {
          const policy = frame.chain.policy ?? 'ACCEPT';
          return finish(policy, `the policy of ${named} (${policy})`, []);
        }
        continue;
      }
      frame.next++;
      const place: RulePlace = { table, chain: frame.chain.name, index: frame.next, rule };
      const where = table === 'filter' ? place.chain : `${table} ${place.chain}`;
      const outcome = ruleMatches(rule, state.packet, this.context);
      if (tracing) trace.push({ ...place, result: outcome === undefined ? 'unknown' : outcome ? 'match' : 'no match' });
      if (outcome === undefined)
        return finish('unknown', `${where} rule ${place.index} ${whyUnknown(rule, state.packet, this.context)}`, stack, place);
      if (!outcome || rule.kind === 'opaque') continue;
      const target = rule.target;
      if (target === undefined) continue;
      switch (target.kind) {
        case 'verdict':
          if (target.verdict === 'RETURN') {
            stack.pop();
            if (stack.length === 0) {
              const policy = frame.chain.policy ?? 'ACCEPT';
              return finish(policy, `RETURN from ${named}: its policy (${policy})`, [], place);
            }
            continue;
          }
          return finish(target.verdict, target.verdict, stack, place);
        case 'REJECT':
          return finish('REJECT', 'REJECT', stack, place, target.with);
        case 'jump':
        case 'goto': {
          const next = chains.get(target.chain);
          if (next === undefined)
            return finish(
              'unknown',
              `${where} rule ${place.index} jumps to ${target.chain}, which is not in the ruleset`,
              stack,
              place,
            );
          if (stack.length >= MAX_DEPTH) return finish('unknown', `chains nest deeper than ${MAX_DEPTH} (a loop?)`, stack, place);
          // A goto replaces this chain: RETURN from the target goes back to our caller.
          if (target.kind === 'goto') stack.pop();
          stack.push({ chain: next, next: 0, caller: place });
          continue;
        }
        case 'MARK':
          state.packet = { ...state.packet, mark: ((state.packet.mark & ~target.mask) ^ target.value) >>> 0 };
          continue;
        case 'LOG':
          continue;
      }
    }
    return finish('unknown', 'internal error: the walk ended without a verdict', []);
  }
}
