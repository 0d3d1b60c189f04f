// Held chains keep what they had, including the ipsets they name.
import { describe, expect, it } from 'vitest';
import { holdChains } from '../../src/agent/hold.js';
import { setMatch } from '../../src/extensions/set.js';
import type { IpSet } from '../../src/ir/ipset.js';
import { type Chain, type Ruleset, rule } from '../../src/ir/ruleset.js';
import { ACCEPT, jump } from '../../src/ir/targets.js';
import { cidr } from '../../src/model/address.js';

const set = (name: string, last: number): IpSet => ({
  name,
  family: 4,
  members: [cidr(4, (192n << 24n) | (2n << 8n) | BigInt(last), 32)],
});
const OLD = set('asgc-s4-aaaaaaaaaaaa', 1);
const NEW = set('asgc-s4-bbbbbbbbbbbb', 2);

function ruleset(chains: Chain[], sets: IpSet[]): Ruleset {
  return {
    family: 4,
    tables: [
      {
        name: 'filter',
        chains: [{ name: 'FORWARD', policy: 'ACCEPT', rules: [rule({ target: jump('asgc-forward') })] }, ...chains],
      },
    ],
    sets,
  };
}

const usesSet = (name: string, target: IpSet): Chain => ({
  name,
  rules: [rule({ matches: [setMatch(target.name)], target: ACCEPT })],
});

describe('holdChains', () => {
  const previous = ruleset([usesSet('asgc-o-held', OLD), usesSet('asgc-o-other', OLD)], [OLD]);
  const desired = ruleset([usesSet('asgc-o-held', NEW), usesSet('asgc-o-other', NEW)], [NEW]);

  it('a held chain brings the sets it names from what was applied, and the new chains bring theirs', () => {
    const result = holdChains(desired, previous, { chains: new Set(['asgc-o-held']), egress: new Set(['asgc-o-held']) });
    expect(result.tables[0]?.chains.find((chain) => chain.name === 'asgc-o-held')).toEqual(usesSet('asgc-o-held', OLD));
    expect(result.sets).toEqual([OLD, NEW]);
  });

  it('a set no chain names any more is not wanted', () => {
    const result = holdChains(desired, previous, { chains: new Set(['asgc-o-gone']), egress: new Set() });
    expect(result.sets).toEqual([NEW]);
  });
});
