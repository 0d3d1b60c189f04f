// Read the live state, plan, apply in one transaction per family, and verify by reading back.
// A cycle with nothing to change runs no iptables-restore at all.
import type { Family } from '../model/address.js';
import type { Ruleset } from '../ir/ruleset.js';
import { isEmptyPlan, type Ownership, type Plan, planChanges, savedTableOf } from '../diff/plan.js';
import { renderPlanScripts } from '../diff/script.js';
import { type Dataplane, DataplaneError, RestoreError } from './dataplane.js';
import { ownedStateMatches } from './live-check.js';
import { parseSaveText, type SavedTable, savedTables } from './save-file.js';
import type { SetDataplane } from '../ipset/dataplane.js';
import { planSets, type SetPlan } from '../ipset/plan.js';
import { parseSetSave, type SavedSet } from '../ipset/script.js';

/** The live state could not be read as iptables-save output. */
export class LiveStateError extends DataplaneError {}

/** After applying, the live state still differs from what was wanted: reported, never retried in a loop. */
export class NonConvergenceError extends DataplaneError {
  constructor(
    readonly family: Family,
    readonly remaining: Plan,
  ) {
    super(
      `IPv${family} did not converge: after applying, ${remaining.chains.length} chains and ${remaining.hooks.length} hook sets still differ`,
    );
  }
}

function parseLiveFilter(text: string, family: Family): SavedTable | undefined {
  const parsed = parseSaveText(text);
  if (!parsed.ok) {
    const detail = parsed.error.map((error) => `line ${error.line}: ${error.message}`).join('; ');
    throw new LiveStateError(`ip${family === 6 ? '6' : ''}tables-save output cannot be read: ${detail}`);
  }
  return savedTables(parsed.value).get('filter');
}

export async function readLiveFilter(dataplane: Dataplane, family: Family): Promise<SavedTable | undefined> {
  return parseLiveFilter(await dataplane.save(family), family);
}

const emptyPlan = (family: Family): Plan => ({ family, table: 'filter', chains: [], hooks: [], kept: [] });

/** The plan from a saved state to `desired`; the full diff runs only when the state is not already it. */
export function planFromSaveText(text: string, desired: Ruleset, ownership: Ownership): Plan {
  if (ownedStateMatches(text, desired, ownership)) return emptyPlan(desired.family);
  return planChanges(desired, parseLiveFilter(text, desired.family), ownership);
}

export async function planFamily(dataplane: Dataplane, desired: Ruleset, ownership: Ownership): Promise<Plan> {
  return planFromSaveText(await dataplane.save(desired.family), desired, ownership);
}

/** Where the time of one apply went, in milliseconds. */
export interface ApplyTimings {
  /** iptables-save and parsing its output. */
  readMs: number;
  /** Diffing and rendering the restore script. */
  planMs: number;
  restoreMs: number;
  /** Reading back and checking that nothing is left to change. */
  verifyMs: number;
}

/** What happened to asgc's ipsets of the family. */
export interface SetOutcome {
  readonly created: readonly string[];
  readonly replaced: readonly string[];
  readonly destroyed: readonly string[];
  /** Unwanted sets the kernel would not destroy: someone else's rule still names them. */
  readonly inUse: readonly string[];
}

export interface FamilyOutcome {
  readonly family: Family;
  readonly plan: Plan;
  /** Present when the family uses ipsets, or used them before. */
  readonly sets?: SetOutcome;
  /** The restore scripts that ran (none when nothing changed). */
  readonly scripts: readonly string[];
  /** How many times the live state was read (iptables-save). */
  readonly reads: number;
  readonly timings: ApplyTimings;
}

export interface ApplyOptions {
  /**
   * What asgc last applied and verified. The plan is made against it instead of a fresh read
   * (whole-chain rewrites only, so someone else's change to a chain since cannot misplace an
   * edit), and the read-back afterwards verifies; what differs then is repaired in place.
   */
  readonly assumedLive?: Ruleset;
}

async function runPlan(dataplane: Dataplane, plan: Plan): Promise<string[]> {
  const scripts = renderPlanScripts(plan);
  try {
    await dataplane.restore(plan.family, scripts[0] as string);
    return scripts;
  } catch (error) {
    // Older nf_tables backends refuse to delete a chain that was referenced when the
    // transaction began; then the deletions go in a second transaction.
    if (!(error instanceof RestoreError && error.chainBusy && dataplane.backend === 'nft')) throw error;
    const separate = renderPlanScripts(plan, { separateDeletions: true });
    for (const script of separate) await dataplane.restore(plan.family, script);
    return separate;
  }
}

function setDataplaneOf(dataplane: Dataplane): SetDataplane {
  if (dataplane.sets === undefined) throw new DataplaneError('the rules use ipsets, and this dataplane cannot manage them');
  return dataplane.sets;
}

async function savedSets(sets: SetDataplane): Promise<ReadonlyMap<string, SavedSet>> {
  const parsed = parseSetSave(await sets.save());
  if (!parsed.ok) throw new LiveStateError(parsed.error);
  return parsed.value;
}

/** What would be done to the family's sets before its rules are applied (undefined: it uses none). */
export async function planFamilySets(dataplane: Dataplane, desired: Ruleset, ownership: Ownership): Promise<SetPlan | undefined> {
  const wanted = desired.sets ?? [];
  if (wanted.length === 0) return undefined;
  return planSets(desired.family, ownership.prefix, wanted, await savedSets(setDataplaneOf(dataplane)));
}

/** One line on what happened to the sets, or undefined when nothing did. */
export function describeSetOutcome(family: Family, sets: SetOutcome | undefined): string | undefined {
  if (sets === undefined) return undefined;
  const parts = [
    sets.created.length > 0 && `created ${sets.created.join(' ')}`,
    sets.replaced.length > 0 && `rebuilt and swapped ${sets.replaced.join(' ')}`,
    sets.destroyed.length > 0 && `destroyed ${sets.destroyed.join(' ')}`,
    sets.inUse.length > 0 && `kept ${sets.inUse.join(' ')} (unwanted, but a rule outside asgc's chains still names it)`,
  ].filter((part): part is string => typeof part === 'string');
  return parts.length === 0 ? undefined : `IPv${family} ipsets: ${parts.join('; ')}`;
}

/**
 * The rules, with their ipsets: the sets they name are made (or repaired) first, and the sets
 * no longer wanted are destroyed after the rules stopped naming them. Without sets on either
 * side, ipset is never run.
 */
export async function applyFamily(
  dataplane: Dataplane,
  desired: Ruleset,
  ownership: Ownership,
  options: ApplyOptions = {},
): Promise<FamilyOutcome> {
  const wanted = desired.sets ?? [];
  let prepared: SetPlan | undefined;
  if (wanted.length > 0) {
    const sets = setDataplaneOf(dataplane);
    prepared = planSets(desired.family, ownership.prefix, wanted, await savedSets(sets));
    if (prepared.problems.length > 0) throw new DataplaneError(prepared.problems.join('; '));
    if (prepared.script !== '') await sets.restore(prepared.script);
  }
  const mentionedSets = { seen: (options.assumedLive?.sets?.length ?? 0) > 0 };
  const outcome = await applyRules(dataplane, desired, ownership, options, mentionedSets);
  if (prepared === undefined && !mentionedSets.seen) return outcome;
  const sets = setDataplaneOf(dataplane);
  // The plan made before the rules already knows what is unwanted; without sets wanted, ask now.
  const unwanted = (prepared ?? planSets(desired.family, ownership.prefix, [], await savedSets(sets))).unwanted;
  const { destroyed, inUse } = await destroySets(sets, unwanted);
  return { ...outcome, sets: { created: prepared?.created ?? [], replaced: prepared?.replaced ?? [], destroyed, inUse } };
}

/**
 * Destroy sets in one `ipset restore`; when the kernel refuses one (a rule still names it),
 * that run stops there, and the sets are then destroyed one by one to find which stay.
 */
async function destroySets(sets: SetDataplane, names: readonly string[]): Promise<{ destroyed: string[]; inUse: string[] }> {
  if (names.length === 0) return { destroyed: [], inUse: [] };
  try {
    await sets.restore(names.map((name) => `destroy ${name}\n`).join(''));
    return { destroyed: [...names], inUse: [] };
  } catch (error) {
    if (!(error instanceof DataplaneError)) throw error;
  }
  const destroyed: string[] = [];
  const inUse: string[] = [];
  for (const name of names) {
    // 'absent': the batch had destroyed it before it stopped.
    if ((await sets.destroy(name)) === 'in use') inUse.push(name);
    else destroyed.push(name);
  }
  return { destroyed, inUse };
}

async function applyRules(
  dataplane: Dataplane,
  desired: Ruleset,
  ownership: Ownership,
  options: ApplyOptions,
  mentionedSets: { seen: boolean },
): Promise<FamilyOutcome> {
  const family = desired.family;
  const setReference = `--match-set ${ownership.prefix}s`;
  const timings: ApplyTimings = { readMs: 0, planMs: 0, restoreMs: 0, verifyMs: 0 };
  let reads = 0;
  let mark = performance.now();
  const lap = (key: keyof ApplyTimings) => {
    const now = performance.now();
    timings[key] += now - mark;
    mark = now;
  };
  const readPlan = async (key: 'readMs' | 'verifyMs') => {
    reads++;
    const text = await dataplane.save(family);
    // Rules of asgc's that name its sets: the sets may need destroying once they are gone.
    if (text.includes(setReference)) mentionedSets.seen = true;
    const plan = planFromSaveText(text, desired, ownership);
    lap(key);
    return plan;
  };

  let plan: Plan | undefined;
  const scripts: string[] = [];
  if (options.assumedLive !== undefined) {
    const assumed = planChanges(desired, savedTableOf(options.assumedLive), ownership, { ruleEdits: false });
    lap('planMs');
    if (isEmptyPlan(assumed)) return { family, plan: assumed, scripts, reads, timings };
    try {
      scripts.push(...(await runPlan(dataplane, assumed)));
      plan = assumed;
    } catch (error) {
      // The remembered state was wrong in a way restore noticed (a chain or hook gone; the
      // transaction changed nothing): read the live state and plan again below. A busy lock
      // is not that: it is reported as it is.
      if (!(error instanceof RestoreError) || error.lockBusy) throw error;
    }
    lap('restoreMs');
    if (plan !== undefined) {
      const drift = await readPlan('verifyMs');
      if (isEmptyPlan(drift)) return { family, plan, scripts, reads, timings };
      // Someone else changed asgc's state since it was last verified: repair it now.
      scripts.push(...(await runPlan(dataplane, drift)));
      lap('restoreMs');
    }
  }
  if (plan === undefined) {
    plan = await readPlan('readMs');
    if (isEmptyPlan(plan)) return { family, plan, scripts, reads, timings };
    scripts.push(...(await runPlan(dataplane, plan)));
    lap('restoreMs');
  }
  const remaining = await readPlan('verifyMs');
  if (!isEmptyPlan(remaining)) throw new NonConvergenceError(family, remaining);
  return { family, plan, scripts, reads, timings };
}
