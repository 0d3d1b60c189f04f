// What must happen to the kernel's sets so that the rules about to be applied find theirs:
// a missing set is created whole; a set whose content drifted is rebuilt under a scratch name
// and swapped in (the rules using it see the old content, then the new, never an empty set);
// a set asgc owns that no rule of the family wants any more is destroyed after the rules let go.
import { formatSetMember, type IpSet, setFamilyWord } from '../ir/ipset.js';
import type { Family } from '../model/address.js';
import { SCRATCH_SUFFIX, SetRegistry } from '../compile/ipsets.js';
import { type SavedSet, setBuildLines } from '../ipset/script.js';

export interface SetPlan {
  /** The `ipset restore` input to run before the rules are applied; empty when nothing is to do. */
  readonly script: string;
  readonly created: readonly string[];
  /** Sets rebuilt and swapped in because their content differed. */
  readonly replaced: readonly string[];
  /** Owned sets of this family no longer wanted: destroy once the rules no longer name them. */
  readonly unwanted: readonly string[];
  /** Problems that stop the sets from being made (the rules must then not be applied). */
  readonly problems: readonly string[];
}

function sameContent(saved: SavedSet, wanted: IpSet): boolean {
  return (
    saved.type === 'hash:net' &&
    saved.family === wanted.family &&
    saved.members.size === wanted.members.length &&
    wanted.members.every((member) => saved.members.has(formatSetMember(member)))
  );
}

/** The family a set name of asgc's says (`<prefix>s4-...`). */
function familyOfName(prefix: string, name: string): Family {
  return name.charAt(prefix.length + 1) === '6' ? 6 : 4;
}

export function planSets(family: Family, prefix: string, wanted: readonly IpSet[], live: ReadonlyMap<string, SavedSet>): SetPlan {
  const lines: string[] = [];
  const created: string[] = [];
  const replaced: string[] = [];
  const problems: string[] = [];
  for (const set of wanted) {
    const saved = live.get(set.name);
    if (saved === undefined) {
      lines.push(...setBuildLines(set));
      created.push(set.name);
      continue;
    }
    if (sameContent(saved, set)) continue;
    if (saved.type !== 'hash:net' || saved.family !== set.family) {
      problems.push(
        `ipset ${set.name} exists as ${saved.type} family ${saved.family === undefined ? '?' : setFamilyWord(saved.family)}, not hash:net family ${setFamilyWord(set.family)}; destroy it by hand`,
      );
      continue;
    }
    const scratch = `${set.name}${SCRATCH_SUFFIX}`;
    // A scratch set left by an interrupted run is never referenced: start it afresh.
    if (live.has(scratch)) lines.push(`destroy ${scratch}`);
    lines.push(...setBuildLines(set, scratch), `swap ${scratch} ${set.name}`, `destroy ${scratch}`);
    replaced.push(set.name);
  }
  const wantedNames = new Set(wanted.map((set) => set.name));
  const unwanted = [...live.keys()].filter(
    (name) =>
      SetRegistry.owns(prefix, name) &&
      familyOfName(prefix, name) === family &&
      !wantedNames.has(name) &&
      !wantedNames.has(name.slice(0, -SCRATCH_SUFFIX.length)),
  );
  return { script: lines.map((line) => `${line}\n`).join(''), created, replaced, unwanted: unwanted.sort(), problems };
}
