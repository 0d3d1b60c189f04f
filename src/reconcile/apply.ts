// One-shot reconciling for the command line (asgc apply / diff): nothing remembered, the live
// state read whole first, and what is written read back before returning.
import type { Ownership, Plan } from '../diff/plan.js';
import { planSets, type SetPlan } from '../diff/sets.js';
import type { Ruleset } from '../ir/ruleset.js';
import { parseSetSave } from '../ipset/script.js';
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
