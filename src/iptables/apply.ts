// Read the live state, plan, apply in one transaction per family, and verify by reading back.
// A cycle with nothing to change runs no iptables-restore at all.
import type { Family } from '../model/address.js';
import type { Ruleset } from '../ir/ruleset.js';
import { isEmptyPlan, type Ownership, type Plan, planChanges } from '../diff/plan.js';
import { renderPlanScripts } from '../diff/script.js';
import { type Dataplane, DataplaneError, RestoreError } from './dataplane.js';
import { parseSaveText, type SavedTable, savedTables } from './save-file.js';

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

export async function readLiveFilter(dataplane: Dataplane, family: Family): Promise<SavedTable | undefined> {
  const text = await dataplane.save(family);
  const parsed = parseSaveText(text);
  if (!parsed.ok) {
    const detail = parsed.error.map((error) => `line ${error.line}: ${error.message}`).join('; ');
    throw new LiveStateError(`ip${family === 6 ? '6' : ''}tables-save output cannot be read: ${detail}`);
  }
  return savedTables(parsed.value).get('filter');
}

export async function planFamily(dataplane: Dataplane, desired: Ruleset, ownership: Ownership): Promise<Plan> {
  return planChanges(desired, await readLiveFilter(dataplane, desired.family), ownership);
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

export interface FamilyOutcome {
  readonly family: Family;
  readonly plan: Plan;
  /** The restore scripts that ran (none when nothing changed). */
  readonly scripts: readonly string[];
  readonly timings: ApplyTimings;
}

export async function applyFamily(dataplane: Dataplane, desired: Ruleset, ownership: Ownership): Promise<FamilyOutcome> {
  const family = desired.family;
  const timings: ApplyTimings = { readMs: 0, planMs: 0, restoreMs: 0, verifyMs: 0 };
  let mark = performance.now();
  const lap = (key: keyof ApplyTimings) => {
    const now = performance.now();
    timings[key] += now - mark;
    mark = now;
  };
  const live = await readLiveFilter(dataplane, family);
  lap('readMs');
  const plan = planChanges(desired, live, ownership);
  if (isEmptyPlan(plan)) {
    lap('planMs');
    return { family, plan, scripts: [], timings };
  }
  let scripts = renderPlanScripts(plan);
  lap('planMs');
  try {
    await dataplane.restore(family, scripts[0] as string);
  } catch (error) {
    // Older nf_tables backends refuse to delete a chain that was referenced when the
    // transaction began; then the deletions go in a second transaction.
    if (!(error instanceof RestoreError && error.chainBusy && dataplane.backend === 'nft')) throw error;
    scripts = renderPlanScripts(plan, { separateDeletions: true });
    for (const script of scripts) await dataplane.restore(family, script);
  }
  lap('restoreMs');
  const remaining = await planFamily(dataplane, desired, ownership);
  lap('verifyMs');
  if (!isEmptyPlan(remaining)) throw new NonConvergenceError(family, remaining);
  return { family, plan, scripts, timings };
}
