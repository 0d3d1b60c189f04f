// A family's ipsets as asgc last knew them in the kernel. The sets the rules name are made
// (or repaired) before the rules are applied, and the sets no longer wanted are destroyed
// after the rules stopped naming them. `ipset save` runs only when the wanted sets differ
// from those last made, after a failure, or when a full read-back of the rules is due; a host
// whose rules never name a set never runs ipset at all.
import { DataplaneError } from '../exec/dataplane-error.js';
import { planSets, type SetPlan } from '../diff/sets.js';
import type { IpSet } from '../ir/ipset.js';
import type { SetDataplane } from '../ipset/dataplane.js';
import { parseSetSave, type SavedSet } from '../ipset/script.js';
import type { Family } from '../model/address.js';
import { LiveStateError } from './errors.js';

/** What happened to asgc's ipsets of the family. */
export interface SetOutcome {
  readonly created: readonly string[];
  readonly replaced: readonly string[];
  readonly destroyed: readonly string[];
  /** Unwanted sets the kernel would not destroy: someone else's rule still names them. */
  readonly inUse: readonly string[];
}

export class LiveSets {
  /** Names of the sets made and not since found changed; undefined: read before trusting. */
  private known: ReadonlySet<string> | undefined;
  /** Sets left because a rule outside asgc's chains names them: tried again at the next read. */
  private kept = new Set<string>();

  constructor(
    private readonly family: Family,
    private readonly prefix: string,
    private readonly dataplane: SetDataplane | undefined,
  ) {}

  /** After a failure: read before trusting what was made. */
  invalidate(): void {
    this.known = undefined;
  }

  /**
   * Make the sets `wanted` names before the rules are applied. `read` asks for a look at the
   * kernel's sets whatever is known (a full read-back of the rules is under way, or the rules
   * found there name asgc's sets). Returns the plan (undefined when ipset was not asked), and
   * whether the kernel's sets had drifted from what was last made.
   */
  async prepare(wanted: readonly IpSet[], read: boolean): Promise<{ plan?: SetPlan; drifted: boolean }> {
    const known = this.known;
    const asKnown =
      known === undefined ? wanted.length === 0 : known.size === wanted.length && wanted.every((set) => known.has(set.name));
    if (!read && this.kept.size === 0 && asKnown) return { drifted: false };
    const live = await this.readLive();
    const plan = planSets(this.family, this.prefix, wanted, live);
    if (plan.problems.length > 0) throw new DataplaneError(plan.problems.join('; '));
    try {
      if (plan.script !== '') await this.sets().restore(plan.script);
    } catch (error) {
      this.known = undefined;
      throw error;
    }
    this.known = new Set(wanted.map((set) => set.name));
    const drifted = known !== undefined && asKnown && plan.created.length + plan.replaced.length > 0;
    return { plan, drifted };
  }

  /** Destroy the sets `plan` found unwanted, now that the rules no longer name them. */
  async retire(plan: SetPlan | undefined): Promise<SetOutcome | undefined> {
    if (plan === undefined) return undefined;
    const { destroyed, inUse } = await this.destroy(plan.unwanted);
    this.kept = new Set(inUse);
    return { created: plan.created, replaced: plan.replaced, destroyed, inUse };
  }

  private sets(): SetDataplane {
    if (this.dataplane === undefined) throw new DataplaneError('the rules use ipsets, and this dataplane cannot manage them');
    return this.dataplane;
  }

  private async readLive(): Promise<ReadonlyMap<string, SavedSet>> {
    const parsed = parseSetSave(await this.sets().save());
    if (!parsed.ok) throw new LiveStateError(parsed.error);
    return parsed.value;
  }

  /**
   * Destroy sets in one `ipset restore`; when the kernel refuses one (a rule still names it),
   * that run stops there, and the sets are then destroyed one by one to find which stay.
   */
  private async destroy(names: readonly string[]): Promise<{ destroyed: string[]; inUse: string[] }> {
    if (names.length === 0) return { destroyed: [], inUse: [] };
    const sets = this.sets();
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
