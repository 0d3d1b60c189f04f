// The `ipset restore` text of asgc's sets, and the reading of what `ipset save` prints back.
import { blocksAsCidrs } from '../compile/ipsets.js';
import { coalesceBlocks } from '../compile/optimise.js';
import { formatSetMember, type IpSet, setFamilyWord } from '../ir/ipset.js';
import { type CidrBlock, type Family, parseCidr } from '../model/address.js';
import { fail, ok, type Result } from '../model/result.js';

/** hash:net's default element limit; a longer list raises it. */
const DEFAULT_MAX_ELEMENTS = 65536;

/** `create` and `add` lines that build `set` under `name` (its own name unless a scratch one). */
export function setBuildLines(set: IpSet, name = set.name): string[] {
  const maxelem = Math.max(DEFAULT_MAX_ELEMENTS, set.members.length);
  return [
    `create ${name} hash:net family ${setFamilyWord(set.family)} maxelem ${maxelem}`,
    ...set.members.map((member) => `add ${name} ${formatSetMember(member)}`),
  ];
}

/** The sets of a compiled cell as one `ipset restore` script (what `asgc compile` shows). */
export function renderSetScript(sets: readonly IpSet[]): string {
  return sets
    .flatMap((set) => setBuildLines(set))
    .map((line) => `${line}\n`)
    .join('');
}

/** A set as `ipset save` printed it. */
export interface SavedSet {
  readonly name: string;
  /** e.g. hash:net */
  readonly type: string;
  readonly family: Family | undefined;
  /** Members as printed, without per-element options. */
  readonly members: ReadonlySet<string>;
}

/** `ipset save` output by set name; lines it does not know are an error, never skipped. */
export function parseSetSave(text: string): Result<Map<string, SavedSet>, string> {
  const sets = new Map<string, { name: string; type: string; family: Family | undefined; members: Set<string> }>();
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const words = line.trim().split(/\s+/);
    const [verb, name, value] = words;
    if (verb === 'create' && name !== undefined && value !== undefined) {
      const familyWord = words[words.indexOf('family') + 1];
      const family = words.includes('family') ? (familyWord === 'inet' ? 4 : familyWord === 'inet6' ? 6 : undefined) : undefined;
      sets.set(name, { name, type: value, family, members: new Set() });
    } else if (verb === 'add' && name !== undefined && value !== undefined && sets.has(name)) {
      sets.get(name)?.members.add(value);
    } else {
      return fail(`ipset save output, line ${index + 1}: cannot read ${JSON.stringify(line)}`);
    }
  }
  return ok(sets);
}

/**
 * A saved hash:net set as the evaluator's IpSet: members merged into disjoint CIDRs (the kernel
 * allows overlapping ones). Other set types are not modelled: undefined, and rules naming
 * them stay unknown.
 */
export function ipSetOfSaved(saved: SavedSet): Result<IpSet, string> {
  if (saved.type !== 'hash:net' || saved.family === undefined)
    return fail(`ipset ${saved.name} is ${saved.type}; asgc check reads hash:net sets only`);
  const blocks: CidrBlock[] = [];
  for (const member of saved.members) {
    const block = parseCidr(member);
    if (!block.ok || block.value.family !== saved.family)
      return fail(`ipset ${saved.name}: cannot read member ${JSON.stringify(member)}`);
    blocks.push(block.value);
  }
  return ok({
    name: saved.name,
    family: saved.family,
    members: blocksAsCidrs(saved.family, coalesceBlocks(saved.family, blocks)),
  });
}

/**
 * `ipset save` text as the sets the evaluator can model, and a note for each it cannot: rules
 * naming those stay unknown (never guessed).
 */
export function modelledSets(text: string): Result<{ sets: IpSet[]; notes: string[] }, string> {
  const parsed = parseSetSave(text);
  if (!parsed.ok) return parsed;
  const sets: IpSet[] = [];
  const notes: string[] = [];
  for (const saved of parsed.value.values()) {
    const set = ipSetOfSaved(saved);
    if (set.ok) sets.push(set.value);
    else notes.push(`${set.error}: rules naming it are unknown`);
  }
  return ok({ sets, notes });
}
