// Desired table vs live table (both as text) -> the minimal restore plan, for the chains asgc
// owns (its prefix) and its hook rules in built-in chains. Nothing else is ever touched.
import type { Family } from '../model/address.js';
import { isBuiltinChain } from '../ir/ruleset.js';
import type { TextChain, TextTable } from '../ir/text-table.js';
import { canonicalSpec } from '../iptables/rule-parse.js';
import { tokenizeRestoreLine } from '../iptables/tokenize.js';
import { shortestEdit } from './edit-script.js';

/** One line of a restore script for one chain, in the order restore applies them. */
export type ChainEdit =
  | { readonly op: 'delete'; readonly index: number }
  | { readonly op: 'insert'; readonly index: number; readonly rule: string }
  | { readonly op: 'append'; readonly rule: string };

export type ChainChange =
  /** A chain that does not exist yet: declared, then filled. */
  | { readonly kind: 'create'; readonly chain: string; readonly rules: readonly string[] }
  /** Most of the chain differs: declared again (which flushes it), then filled. */
  | { readonly kind: 'rewrite'; readonly chain: string; readonly before: readonly string[]; readonly rules: readonly string[] }
  /** A few rules differ: deleted and inserted by index, as computed on a simulated copy. */
  | {
      readonly kind: 'edit';
      readonly chain: string;
      readonly before: readonly string[];
      readonly rules: readonly string[];
      readonly edits: readonly ChainEdit[];
    }
  /** No longer wanted: flushed and deleted last, after everything referring to it is gone. */
  | { readonly kind: 'delete'; readonly chain: string; readonly before: readonly string[] };

/** asgc's rules in one built-in chain: they must be its first rules, in order. */
export interface HookChange {
  readonly chain: string;
  /** Live hook rules to delete, by full spec as iptables-save printed them. */
  readonly remove: readonly string[];
  /** Hook rules to insert at the top, in order. */
  readonly insert: readonly string[];
}

export interface Plan {
  readonly family: Family;
  readonly table: string;
  readonly chains: readonly ChainChange[];
  readonly hooks: readonly HookChange[];
  /** Owned chains that a foreign chain still jumps to: left alone rather than broken. */
  readonly kept: readonly { readonly chain: string; readonly referencedBy: string }[];
}

export function isEmptyPlan(plan: Plan): boolean {
  return plan.chains.length === 0 && plan.hooks.length === 0;
}

/** Beyond this many rule edits, a chain is rewritten whatever the counts say (bounds the diff's cost). */
const MAX_EDITS = 2000;

export interface Ownership {
  /** Every chain asgc owns starts with this. */
  readonly prefix: string;
}

export interface PlanOptions {
  /**
   * Which chains may be edited by rule index (default: all). The others, when changed, are
   * rewritten whole: for chains known from memory rather than just read, an index computed on
   * a chain someone else has since changed would hit the wrong rule, a rewrite cannot.
   */
  readonly ruleEdits?: boolean | ((chain: string) => boolean);
}

/** The rule texts of the live chain, normalised only where they differ from what is wanted. */
function liveRules(
  live: readonly string[],
  desired: readonly string[],
  family: Family,
  isUserChain: (name: string) => boolean,
): string[] {
  return live.map((spec, index) => (spec === desired[index] ? spec : canonicalSpec(spec, family, isUserChain)));
}

/** Rule-level edits turning `before` into `after`, or undefined when a rewrite is no longer. */
function chainEdits(before: readonly string[], after: readonly string[]): ChainEdit[] | undefined {
  const rewriteCost = after.length + 1;
  const script = shortestEdit(before, after, Math.min(rewriteCost, MAX_EDITS));
  if (script === undefined || script.deletions.length + script.insertions.length >= rewriteCost) return undefined;
  // Simulate in restore's order: deletions from the last (indexes below stay valid), then
  // insertions in ascending final position (everything before each is then in place).
  const edits: ChainEdit[] = [];
  const simulated = [...before];
  for (const index of [...script.deletions].reverse()) {
    edits.push({ op: 'delete', index: index + 1 });
    simulated.splice(index, 1);
  }
  for (const index of script.insertions) {
    const rule = after[index] as string;
    edits.push(index === simulated.length ? { op: 'append', rule } : { op: 'insert', index: index + 1, rule });
    simulated.splice(index, 0, rule);
  }
  if (simulated.length !== after.length || simulated.some((rule, i) => rule !== after[i])) {
    throw new Error('internal error: chain edits do not reproduce the desired chain');
  }
  return edits;
}

const JUMPS = new Set(['-j', '--jump', '-g', '--goto']);

/** The chain or target a rule jumps or goes to, read as iptables-restore reads it. */
function jumpTarget(spec: string): string | undefined {
  const words = tokenizeRestoreLine(spec);
  const at = words.findIndex((word) => JUMPS.has(word));
  return at >= 0 ? words[at + 1] : undefined;
}

export function planChanges(
  family: Family,
  desired: TextTable,
  live: TextTable | undefined,
  ownership: Ownership,
  options: PlanOptions = {},
): Plan {
  const tableName = desired.name;
  const owns = (chain: string) => chain.startsWith(ownership.prefix);
  const builtin = (chain: string) => isBuiltinChain(tableName, chain);
  const liveChains: ReadonlyMap<string, TextChain> = live?.chains ?? new Map();
  const isUserChain = (name: string) => owns(name) || (liveChains.has(name) && !builtin(name));
  const { ruleEdits = true } = options;
  const editable = typeof ruleEdits === 'function' ? ruleEdits : () => ruleEdits;

  const desiredOwned = new Map<string, readonly string[]>();
  const desiredHooks = new Map<string, readonly string[]>();
  for (const chain of desired.chains.values()) {
    if (builtin(chain.name)) desiredHooks.set(chain.name, chain.specs);
    else if (owns(chain.name)) desiredOwned.set(chain.name, chain.specs);
    else throw new Error(`internal error: compiled chain ${chain.name} does not carry the prefix ${ownership.prefix}`);
  }

  const chains: ChainChange[] = [];
  for (const [chain, rules] of desiredOwned) {
    const existing = liveChains.get(chain);
    if (existing === undefined) {
      chains.push({ kind: 'create', chain, rules });
      continue;
    }
    if (existing.specs === rules) continue;
    const before = liveRules(existing.specs, rules, family, isUserChain);
    if (before.length === rules.length && before.every((rule, i) => rule === rules[i])) continue;
    const edits = editable(chain) ? chainEdits(before, rules) : undefined;
    chains.push(edits === undefined ? { kind: 'rewrite', chain, before, rules } : { kind: 'edit', chain, before, rules, edits });
  }

  // An unwanted chain that a foreign chain jumps to is left alone (deleting it would fail,
  // flushing it would change what the foreign chain does), and so is everything it jumps to.
  const unwanted = new Set([...liveChains.keys()].filter((chain) => owns(chain) && !desiredOwned.has(chain)));
  const kept = new Map<string, string>();
  let holders = [...liveChains.values()].filter((chain) => !owns(chain.name) && !builtin(chain.name));
  while (holders.length > 0) {
    const next: TextChain[] = [];
    for (const holder of holders) {
      for (const spec of holder.specs) {
        const target = jumpTarget(spec);
        if (target === undefined || !unwanted.has(target) || kept.has(target)) continue;
        kept.set(target, holder.name);
        const chain = liveChains.get(target);
        if (chain) next.push(chain);
      }
    }
    holders = next;
  }
  for (const chain of unwanted) {
    if (!kept.has(chain)) chains.push({ kind: 'delete', chain, before: liveChains.get(chain)?.specs ?? [] });
  }

  const hooks: HookChange[] = [];
  for (const name of liveChains.keys()) {
    if (builtin(name) && !desiredHooks.has(name)) desiredHooks.set(name, []);
  }
  for (const [hookChain, wanted] of desiredHooks) {
    const specs = liveChains.get(hookChain)?.specs ?? [];
    const ours = specs.filter((spec) => {
      const target = jumpTarget(spec);
      return target !== undefined && owns(target);
    });
    const top = specs
      .slice(0, wanted.length)
      .map((spec, i) => (spec === wanted[i] ? spec : canonicalSpec(spec, family, isUserChain)));
    const inPlace = ours.length === wanted.length && top.every((spec, i) => spec === wanted[i]);
    if (!inPlace) hooks.push({ chain: hookChain, remove: ours, insert: wanted });
  }

  return { family, table: tableName, chains, hooks, kept: [...kept].map(([chain, referencedBy]) => ({ chain, referencedBy })) };
}
