// Long destination lists as ipsets: an ASG rule whose destinations (merged) are still many
// matches one hash:net set instead of a rule per destination. The kernel looks a packet up in
// the set in constant time, where a list of rules is walked one by one.
import { byName, type IpSet } from '../ir/ipset.js';
import { type AddressBlock, blockFirst, blockLast, type CidrBlock, cidr, type Family } from '../model/address.js';
import type { CompileError } from './chain-set.js';
import { shortHash } from './naming.js';

/** 60 bits of the content's hash: collisions are refused, never shared. */
const SET_HASH_LENGTH = 12;
/** The kernel's limit on a set name, counting its terminating NUL. */
export const MAX_SET_NAME_LENGTH = 31;
/** The suffix of the scratch set a changed set is built in before the swap. */
export const SCRATCH_SUFFIX = '-n';

/** The fewest CIDRs covering exactly [start, end]: the largest aligned block at each step. */
function intervalCidrs(family: Family, start: bigint, end: bigint, into: CidrBlock[]): void {
  const bits = family === 4 ? 32 : 128;
  let next = start;
  while (next <= end) {
    let size = 1n;
    let prefixLength = bits;
    // Grow while the block stays aligned at `next` and inside the interval.
    while (prefixLength > 0 && next % (size * 2n) === 0n && next + size * 2n - 1n <= end) {
      size *= 2n;
      prefixLength--;
    }
    into.push(cidr(family, next, prefixLength));
    next += size;
  }
}

/** Disjoint, ordered blocks (coalesceBlocks' output) as CIDRs, in address order. */
export function blocksAsCidrs(family: Family, blocks: readonly AddressBlock[]): CidrBlock[] {
  const cidrs: CidrBlock[] = [];
  for (const block of blocks) {
    if (block.kind === 'cidr') cidrs.push(block);
    else intervalCidrs(family, blockFirst(block), blockLast(block), cidrs);
  }
  return cidrs;
}

/** Names a family's sets after their content and remembers them for the ruleset. */
export class SetRegistry {
  private readonly byName = new Map<string, IpSet>();

  constructor(
    readonly prefix: string,
    readonly family: Family,
    /** The fewest merged destinations an ASG rule needs before it gets a set. */
    readonly minDestinations: number,
    private readonly errors: CompileError[],
  ) {}

  /** Whether sets are named for this prefix (owned names: `<prefix>s<family>-<hash>`). */
  static owns(prefix: string, name: string): boolean {
    return (
      name.startsWith(prefix) &&
      new RegExp(`^s[46]-[a-z2-7]{${SET_HASH_LENGTH}}(${SCRATCH_SUFFIX})?$`).test(name.slice(prefix.length))
    );
  }

  /** The set of exactly these blocks' addresses, or undefined when one of them is the whole space. */
  setFor(blocks: readonly AddressBlock[]): IpSet | undefined {
    const members = blocksAsCidrs(this.family, blocks);
    // hash:net cannot store a /0: such a rule matches every destination and needs no set.
    if (members.some((block) => block.prefixLength === 0)) return undefined;
    const name = `${this.prefix}s${this.family}-${shortHash(`${this.family} ${members.map((block) => block.text).join(',')}`, SET_HASH_LENGTH)}`;
    return this.add({ name, family: this.family, members });
  }

  /** Keep a set built earlier (a cached chain's); refuses a name two contents would share. */
  add(set: IpSet): IpSet {
    const existing = this.byName.get(set.name);
    if (existing === undefined) this.byName.set(set.name, set);
    else if (existing !== set && !sameMembers(existing, set))
      this.errors.push({ message: `ipset name ${set.name} would be shared by two destination lists; change chain_prefix` });
    return set;
  }

  /** Every set, in name order. */
  get sets(): IpSet[] {
    return [...this.byName.values()].sort(byName);
  }
}

function sameMembers(a: IpSet, b: IpSet): boolean {
  return a.members.length === b.members.length && a.members.every((block, index) => block.text === b.members[index]?.text);
}
