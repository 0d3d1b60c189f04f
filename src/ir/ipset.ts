// An ipset asgc owns: a kernel hash:net set of one family's CIDRs, referenced by `-m set`
// matches. Named after its content, so an unchanged list keeps its set and a changed one gets a
// new set while the old one still serves the rules that reference it.
import { type CidrBlock, type Family, formatAddress } from '../model/address.js';

export interface IpSet {
  readonly name: string;
  readonly family: Family;
  /** Disjoint CIDRs in address order (hash:net cannot hold /0). */
  readonly members: readonly CidrBlock[];
}

/** A member as `ipset save` prints it: a host without its /32 or /128. */
export function formatSetMember(block: CidrBlock): string {
  const address = formatAddress(block.family, block.address);
  return block.prefixLength === (block.family === 4 ? 32 : 128) ? address : `${address}/${block.prefixLength}`;
}

/** The kernel's `family` word for a set of this family. */
export function setFamilyWord(family: Family): 'inet' | 'inet6' {
  return family === 4 ? 'inet' : 'inet6';
}

/** Whether the set holds the address (its members are disjoint and in order: a binary search). */
export function setContains(set: IpSet, family: Family, value: bigint): boolean {
  if (family !== set.family) return false;
  let low = 0;
  let high = set.members.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const block = set.members[middle] as CidrBlock;
    const size = 1n << BigInt((family === 4 ? 32 : 128) - block.prefixLength);
    if (value < block.address) high = middle - 1;
    else if (value >= block.address + size) low = middle + 1;
    else return true;
  }
  return false;
}

/** Sets in name order (the order scripts and rulesets list them in). */
export function byName(a: IpSet, b: IpSet): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
