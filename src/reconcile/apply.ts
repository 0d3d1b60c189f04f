// One-shot reconciling for the command line (asgc apply / diff): nothing remembered, the live
// state read whole first, and what is written read back before returning.
import type { Ownership, Plan } from '../diff/plan.js';
import { planSets, type SetPlan } from '../diff/sets.js';
import type { Family } from '../model/address.js';
import type { Ruleset } from '../ir/ruleset.js';
import { modelledSets, parseSetSave } from '../ipset/script.js';
import type { IpSet } from '../ir/ipset.js';
import { rulesetFromSaveText } from '../iptables/saved-ruleset.js';
import { type Backend } from '../iptables/backend.js';
import { IptablesCommand, type IptablesCommandOptions } from '../iptables/dataplane.js';
import { IpsetCommand } from '../ipset/dataplane.js';
import { textRuleset } from '../render/save-text.js';
import { LiveStateError } from './errors.js';
import { FamilyReconciler, type FamilyOutcome, type HostDataplane, type ReconcilePolicy } from './family.js';

/** Read the live state first and back after writing, in the same call. */
const ONE_SHOT: ReconcilePolicy = { resyncIntervalMs: 0, canaryIntervalMs: 0, verify: 'now', postWriteDelayMs: 0 };

/** The host's iptables and ipsets for one backend, optionally inside a network namespace. */
export function hostDataplane(backend: Backend, options: IptablesCommandOptions = {}): HostDataplane {
  return {
    tables: new IptablesCommand(backend, options),
    sets: new IpsetCommand(options.namespace, options.run, options.lock),
  };
}

/** Make the live tables of `desired`'s family match it; verified by reading back. */
export function applyFamily(host: HostDataplane, desired: Ruleset, ownership: Ownership): Promise<FamilyOutcome> {
  return new FamilyReconciler(desired.family, host, ownership, ONE_SHOT).sync(textRuleset(desired));
}

/** What applyFamily would change in each table, from a fresh read. */
export function planFamily(host: HostDataplane, desired: Ruleset, ownership: Ownership): Promise<Plan[]> {
  return new FamilyReconciler(desired.family, host, ownership, ONE_SHOT).plan(textRuleset(desired));
}

/** What would be done to the family's sets before its rules are applied (undefined: it uses none). */
export async function planFamilySets(host: HostDataplane, desired: Ruleset, ownership: Ownership): Promise<SetPlan | undefined> {
  const wanted = desired.sets ?? [];
  if (wanted.length === 0 || host.sets === undefined) return undefined;
  const parsed = parseSetSave(await host.sets.save());
  if (!parsed.ok) throw new LiveStateError(parsed.error);
  return planSets(desired.family, ownership.prefix, wanted, parsed.value);
}

/** What asgc would leave of a family: no table, no set (uninstall's desired state). */
function nothing(family: Family): Ruleset {
  return { family, tables: [], sets: [] };
}

/** asgc's ipsets of the family, found by prefix. */
async function ownedSets(host: HostDataplane, family: Family, ownership: Ownership): Promise<readonly string[]> {
  if (host.sets === undefined) return [];
  const parsed = parseSetSave(await host.sets.save());
  if (!parsed.ok) throw new LiveStateError(parsed.error);
  return planSets(family, ownership.prefix, [], parsed.value).unwanted;
}

export interface UninstallPlan {
  readonly plans: readonly Plan[];
  readonly sets: readonly string[];
}

/** What uninstallFamily would remove. */
export async function planUninstall(host: HostDataplane, family: Family, ownership: Ownership): Promise<UninstallPlan> {
  return { plans: await planFamily(host, nothing(family), ownership), sets: await ownedSets(host, family, ownership) };
}

/**
 * Remove every chain, hook and ipset of the family carrying asgc's prefix, one transaction per
 * table, read back; foreign rules and sets stay. A set some foreign rule still names is left,
 * and reported as in use.
 */
export async function uninstallFamily(
  host: HostDataplane,
  family: Family,
  ownership: Ownership,
): Promise<{ rules: FamilyOutcome; destroyed: readonly string[]; inUse: readonly string[] }> {
  const rules = await applyFamily(host, nothing(family), ownership);
  const destroyed = [...(rules.sets?.destroyed ?? [])];
  const inUse: string[] = [];
  for (const name of await ownedSets(host, family, ownership)) {
    const outcome = await (host.sets as NonNullable<HostDataplane['sets']>).destroy(name);
    if (outcome === 'destroyed') destroyed.push(name);
    else if (outcome === 'in use') inUse.push(name);
  }
  return { rules, destroyed, inUse };
}

/**
 * What the kernel holds now for a family, as rules to ask questions of (asgc review's live
 * side): the tables asgc owns (raw and filter), and the ipsets, whose members the rules match.
 */
export async function liveRuleset(host: HostDataplane, family: Family): Promise<Ruleset> {
  let text = '';
  for (const table of ['raw', 'filter'])
    if (await host.tables.hasTable(family, table)) text += await host.tables.save(family, table);
  const read = rulesetFromSaveText(text, family, `the live IPv${family} tables`);
  if (!read.ok) throw new LiveStateError(read.error.join('; '));
  let sets: IpSet[] = [];
  if (host.sets !== undefined) {
    const modelled = modelledSets(await host.sets.save());
    if (!modelled.ok) throw new LiveStateError(modelled.error);
    sets = modelled.value.sets.filter((set) => set.family === family);
  }
  return { ...read.value, sets };
}
