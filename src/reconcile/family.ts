// Bringing one family's tables and ipsets in line with what is desired, and the one place that
// decides when and how much of the kernel to read:
//  - the whole table: when it was never read, after a failure, when the resync interval is due,
//    and for a deferred post-write check;
//  - before a change, on nf_tables: the long chains it changes, so they can be edited by rule
//    index rather than rewritten (a chain read costs a few milliseconds there);
//  - after a change: the chains it wrote and the hook chains, or the whole table where that is
//    cheaper (legacy, where any read copies the whole table), at once or, on legacy, at a
//    later sync (`verify: 'later'`), so a change costs what the kernel charges for the write;
//  - when nothing changes: a canary (the hook chains) as often as the policy says.
// Anything a read finds different is repaired in the same sync; what still differs after one
// repair is reported as non-convergence, never retried in a loop.
import { isEmptyPlan, type Ownership, type Plan } from '../diff/plan.js';
import { DataplaneError } from '../exec/dataplane-error.js';
import { isBuiltinChain } from '../ir/ruleset.js';
import type { TextRuleset, TextTable } from '../ir/text-table.js';
import type { Backend } from '../iptables/backend.js';
import { type Dataplane, RestoreError } from '../iptables/dataplane.js';
import type { SetDataplane } from '../ipset/dataplane.js';
import type { Family } from '../model/address.js';
import { NonConvergenceError } from './errors.js';
import { LiveSets, type SetOutcome } from './sets.js';
import { LiveTable, type TableActivity } from './table.js';

export interface ReconcilePolicy {
  /** Longest time between two whole-table reads. */
  readonly resyncIntervalMs: number;
  /** How often a sync that writes nothing checks the canary (0: every sync). */
  readonly canaryIntervalMs: number;
  /** 'now': what a sync wrote is read back before it returns; 'later': at a sync postWriteDelayMs on. */
  readonly verify: 'now' | 'later';
  readonly postWriteDelayMs: number;
}

/**
 * nf_tables reads one chain for a few milliseconds: verify at once, canary every sync. Legacy
 * copies the whole table for any read or write: a change cycle only writes, its check follows
 * at a later sync, and the canary (then a whole-table read) runs every 30 s.
 */
export function defaultPolicy(backend: Backend, resyncIntervalMs = 600_000): ReconcilePolicy {
  return backend === 'nft'
    ? { resyncIntervalMs, canaryIntervalMs: 0, verify: 'now', postWriteDelayMs: 0 }
    : { resyncIntervalMs, canaryIntervalMs: Math.min(30_000, resyncIntervalMs), verify: 'later', postWriteDelayMs: 2_000 };
}

/**
 * Chains longer than this are read before a change on nf_tables, to be edited rather than
 * rewritten: sending a rule costs about 30 µs there, reading a chain 5 to 15 ms.
 */
const EDIT_MIN_RULES = 256;

export interface SyncTimings {
  /** Reading before planning: whole tables, canaries, chains about to change. */
  readMs: number;
  planMs: number;
  /** ipset and iptables-restore runs. */
  restoreMs: number;
  /** Reading back what was written, and any repair. */
  verifyMs: number;
}

export interface FamilyOutcome {
  readonly family: Family;
  /** What was written, per table (a repair after the check adds a second plan). */
  readonly plans: readonly Plan[];
  readonly sets?: SetOutcome;
  /** The restore scripts that ran (none when nothing changed). */
  readonly scripts: readonly string[];
  readonly reads: { readonly full: number; readonly chains: number };
  /** 'read back': what was written was checked; 'pending': a later sync checks it; 'nothing written'. */
  readonly verification: 'read back' | 'pending' | 'nothing written';
  /** Drift found (by a canary, a resync or a check) and repaired in this sync. */
  readonly repaired: boolean;
  readonly timings: SyncTimings;
}

export interface SyncRequest {
  /** Read every table whole, whatever the policy says. */
  readonly fullRead?: boolean;
}

export interface HostDataplane {
  readonly tables: Dataplane;
  /** Absent where sets cannot be managed (rules naming sets then fail to apply). */
  readonly sets?: SetDataplane;
}

const emptyTable = (name: string): TextTable => ({ name, chains: new Map() });

/** The tables asgc may own chains in: one that is not desired is emptied of them. */
const OWNED_TABLES = ['raw', 'filter'];

/** The built-in chains holding asgc's hooks: what the canary reads. */
function hookChains(table: TextTable): string[] {
  return [...table.chains.values()]
    .filter((chain) => chain.specs.length > 0 && isBuiltinChain(table.name, chain.name))
    .map((chain) => chain.name);
}

/** The chains a plan changes, as one comparable string. */
function touched(plan: Plan): string {
  return [...plan.chains.map((change) => change.chain), ...plan.hooks.map((hook) => `hook ${hook.chain}`)].sort().join(' ');
}

export class FamilyReconciler {
  private desired: TextRuleset | undefined;
  private readonly tables = new Map<string, LiveTable>();
  private readonly sets: LiveSets;
  private canaryAt = -Infinity;
  private checkDue: number | undefined;
  /** Whether tables asgc may own but was not given have been looked for (once). */
  private lookedForTables = false;

  constructor(
    readonly family: Family,
    private readonly host: HostDataplane,
    readonly ownership: Ownership,
    private readonly policy: ReconcilePolicy,
    private readonly now: () => number = Date.now,
  ) {
    this.sets = new LiveSets(family, ownership.prefix, host.sets);
  }

  /** When a deferred post-write check is due (epoch ms), if one is. */
  get nextCheckAt(): number | undefined {
    return this.checkDue;
  }

  /** The plan from the live state (read whole) to `desired`, per table; nothing is written. */
  async plan(desired: TextRuleset): Promise<Plan[]> {
    const plans: Plan[] = [];
    // As sync does: an owned table found live but no longer wanted is planned empty.
    const wanted = new Set(desired.tables.map((table) => table.name));
    const unwanted: TextTable[] = [];
    for (const name of OWNED_TABLES)
      if (!wanted.has(name) && (await this.host.tables.hasTable(this.family, name))) unwanted.push(emptyTable(name));
    for (const table of [...desired.tables, ...unwanted]) {
      const live = this.table(table.name);
      await live.readFull(table, this.activity());
      plans.push(live.plan(table, true));
    }
    return plans;
  }

  /**
   * Bring the kernel in line with `desired` (undefined: what the last sync was given) and
   * return what was done. Throws a DataplaneError when a read or a write fails; the tables
   * concerned are then read whole before they are trusted again.
   */
  async sync(desired: TextRuleset | undefined, request: SyncRequest = {}): Promise<FamilyOutcome> {
    const target = desired ?? this.desired;
    if (target === undefined) throw new Error('internal error: nothing to reconcile yet');
    this.desired = target;
    // Tables asgc wrote before but wants nothing in now are emptied of its chains, and so are
    // those it finds at the start (written by an earlier run, with other settings).
    const wanted = new Map(target.tables.map((table) => [table.name, table]));
    try {
      if (!this.lookedForTables) {
        for (const name of OWNED_TABLES)
          if (!wanted.has(name) && (await this.host.tables.hasTable(this.family, name))) this.table(name);
        this.lookedForTables = true;
      }
      for (const name of this.tables.keys()) if (!wanted.has(name)) wanted.set(name, emptyTable(name));
      return await this.syncTables([...wanted.values()], target, request);
    } catch (error) {
      if (error instanceof DataplaneError) this.sets.invalidate();
      throw error;
    }
  }

  private async syncTables(tables: readonly TextTable[], target: TextRuleset, request: SyncRequest): Promise<FamilyOutcome> {
    const now = this.now();
    const timings: SyncTimings = { readMs: 0, planMs: 0, restoreMs: 0, verifyMs: 0 };
    let mark = performance.now();
    const lap = (key: keyof SyncTimings) => {
      const at = performance.now();
      timings[key] += at - mark;
      mark = at;
    };
    const checkDue = this.checkDue !== undefined && now >= this.checkDue;
    const canaryDue = now - this.canaryAt >= this.policy.canaryIntervalMs;
    let fullReads = 0;
    let namesSets = false;
    let repaired = false;
    const work: { live: LiveTable; desired: TextTable; plan: Plan; activity: TableActivity }[] = [];

    for (const desired of tables) {
      const live = this.table(desired.name);
      const activity = this.activity();
      const read = async () => {
        namesSets = (await live.readFull(desired, activity)).namesSets || namesSets;
        fullReads++;
      };
      try {
        const full = request.fullRead || checkDue || live.unknown || now - live.fullReadAt >= this.policy.resyncIntervalMs;
        // What the knowledge says must change; a full read that finds otherwise found drift.
        const expected = full && !live.unknown ? touched(live.plan(desired, false)) : undefined;
        if (full) await read();
        lap('readMs');
        let plan = live.plan(desired, full);
        if (expected !== undefined && touched(plan) !== expected) repaired = true;
        lap('planMs');
        if (!full && isEmptyPlan(plan) && canaryDue) {
          // Nothing to write: look at the hooks (or the whole table, where that costs less).
          const hooks = hookChains(desired);
          if (live.chainsCheaper(hooks.length)) await live.readChains(hooks, activity);
          else await read();
          plan = live.plan(desired, false);
          if (!isEmptyPlan(plan)) {
            // The canary saw something change: read it all before changing anything.
            repaired = true;
            await read();
            plan = live.plan(desired, true);
          }
          lap('readMs');
        } else if (!full && !isEmptyPlan(plan)) {
          // Long chains about to change are read first where that is cheap, and then edited.
          const long = plan.chains
            .filter((change) => change.kind === 'rewrite' && (live.knownChain(change.chain)?.specs.length ?? 0) > EDIT_MIN_RULES)
            .map((change) => change.chain);
          if (long.length > 0 && live.chainsCheaper(long.length)) {
            await live.readChains(long, activity);
            lap('readMs');
            plan = live.plan(desired, (chain) => long.includes(chain));
            lap('planMs');
          }
        }
        work.push({ live, desired, plan, activity });
      } catch (error) {
        live.invalidate();
        throw error;
      }
    }
    if (work.every(({ activity }) => activity.fullReads > 0) && !work.some(({ plan }) => !isEmptyPlan(plan)))
      this.checkDue = undefined;
    if (fullReads > 0 || work.some(({ activity }) => activity.chainReads > 0)) this.canaryAt = now;

    const { plan: setPlan, drifted } = await this.sets.prepare(
      target.sets,
      fullReads > 0 && (namesSets || target.sets.length > 0),
    );
    if (drifted) repaired = true;
    lap('restoreMs');
    const plans: Plan[] = [];
    let written = false;
    for (const entry of work) {
      const { live, desired, activity } = entry;
      if (isEmptyPlan(entry.plan)) continue;
      try {
        try {
          await live.write(entry.plan, desired, activity);
        } catch (error) {
          // The remembered state was wrong in a way restore noticed (a chain or hook gone; the
          // transaction changed nothing): read it all and plan again. A busy lock is not that.
          if (!(error instanceof RestoreError) || error.lockBusy || activity.fullReads > 0) throw error;
          lap('restoreMs');
          await live.readFull(desired, activity);
          entry.plan = live.plan(desired, true);
          lap('readMs');
          await live.write(entry.plan, desired, activity);
        }
        lap('restoreMs');
        plans.push(entry.plan);
        written = true;
        if (this.policy.verify === 'now') repaired = (await this.verify(live, desired, entry.plan, activity, plans)) || repaired;
        lap('verifyMs');
      } catch (error) {
        live.invalidate();
        throw error;
      }
    }
    if (written && this.policy.verify === 'later')
      this.checkDue = Math.min(this.checkDue ?? Infinity, now + this.policy.postWriteDelayMs);
    const sets = await this.sets.retire(setPlan);
    lap('restoreMs');
    const reads = work.reduce(
      (sum, { activity }) => ({ full: sum.full + activity.fullReads, chains: sum.chains + activity.chainReads }),
      { full: 0, chains: 0 },
    );
    return {
      family: this.family,
      plans,
      ...(sets && { sets }),
      scripts: work.flatMap(({ activity }) => activity.scripts),
      reads,
      verification: !written ? 'nothing written' : this.policy.verify === 'now' ? 'read back' : 'pending',
      repaired,
      timings,
    };
  }

  /**
   * Read back what `plan` wrote and the hook chains (or the whole table, where cheaper); repair
   * what differs once. Returns whether anything had to be repaired.
   */
  private async verify(
    live: LiveTable,
    desired: TextTable,
    plan: Plan,
    activity: TableActivity,
    plans: Plan[],
  ): Promise<boolean> {
    const chains = [
      ...new Set([...plan.chains.map((change) => change.chain), ...plan.hooks.map((hook) => hook.chain), ...hookChains(desired)]),
    ];
    const readBack = async () => {
      if (live.chainsCheaper(chains.length)) {
        await live.readChains(chains, activity);
        return live.plan(desired, (chain) => chains.includes(chain));
      }
      await live.readFull(desired, activity);
      return live.plan(desired, true);
    };
    const drift = await readBack();
    if (isEmptyPlan(drift)) return false;
    // Someone else changed what was just written (or more): repair it now, and look again.
    await live.write(drift, desired, activity);
    plans.push(drift);
    const remaining = await readBack();
    if (!isEmptyPlan(remaining)) throw new NonConvergenceError(this.family, remaining);
    return true;
  }

  private table(name: string): LiveTable {
    let table = this.tables.get(name);
    if (table === undefined) {
      table = new LiveTable(this.family, name, this.host.tables, this.ownership, this.now);
      this.tables.set(name, table);
    }
    return table;
  }

  private activity(): TableActivity {
    return { fullReads: 0, chainReads: 0, scripts: [] };
  }
}
