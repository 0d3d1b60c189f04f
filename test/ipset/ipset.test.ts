// ipsets: lists as the fewest CIDRs, lookups, the restore script and what `ipset save` prints,
// and the plan that creates, swaps and retires asgc's sets without touching anyone else's.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blocksAsCidrs, SetRegistry } from '../../src/compile/ipsets.js';
import { coalesceBlocks } from '../../src/compile/optimise.js';
import { type IpSet, setContains } from '../../src/ir/ipset.js';
import { planSets } from '../../src/diff/sets.js';
import { ipSetOfSaved, parseSetSave, renderSetScript, type SavedSet } from '../../src/ipset/script.js';
import {
  type AddressBlock,
  blockContains,
  blockFirst,
  blockLast,
  type Family,
  formatAddress,
  parseDestinationElement,
} from '../../src/model/address.js';

function blocks(...texts: string[]): AddressBlock[] {
  return texts.map((text) => {
    const parsed = parseDestinationElement(text);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  });
}

function setOf(family: Family, ...texts: string[]): IpSet {
  const registry = new SetRegistry('asgc-', family, 1, []);
  const set = registry.setFor(coalesceBlocks(family, blocks(...texts)));
  if (set === undefined) throw new Error('no set');
  return set;
}

function saved(script: string): Map<string, SavedSet> {
  const parsed = parseSetSave(script);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const bits = (family: Family) => (family === 4 ? 32 : 128);
const addressOf = (family: Family) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits(family))) - 1n });

describe('destination lists as CIDRs', () => {
  it('a range becomes the fewest aligned CIDRs covering exactly it', () => {
    const cidrs = blocksAsCidrs(4, blocks('198.51.100.1-198.51.100.14'));
    expect(cidrs.map((block) => block.text)).toEqual([
      '198.51.100.1/32',
      '198.51.100.2/31',
      '198.51.100.4/30',
      '198.51.100.8/30',
      '198.51.100.12/31',
      '198.51.100.14/32',
    ]);
    expect(blocksAsCidrs(6, blocks('2001:db8::-2001:db8::ffff')).map((block) => block.text)).toEqual(['2001:db8::/112']);
  });

  for (const family of [4, 6] as const) {
    it(`IPv${family}: the CIDRs hold exactly the addresses of the blocks, in order and disjoint (property)`, () => {
      const element = fc.oneof(
        fc
          .tuple(addressOf(family), addressOf(family))
          .map(
            ([a, b]) =>
              blocks(
                `${a <= b ? formatAddress(family, a) : formatAddress(family, b)}-${a <= b ? formatAddress(family, b) : formatAddress(family, a)}`,
              )[0] as AddressBlock,
          ),
        fc
          .tuple(addressOf(family), fc.integer({ min: 1, max: bits(family) }))
          .map(([a, length]) => blocks(`${formatAddress(family, a)}/${length}`)[0] as AddressBlock),
      );
      fc.assert(
        fc.property(
          fc.array(element, { minLength: 1, maxLength: 8 }),
          fc.array(addressOf(family), { maxLength: 30 }),
          (input, probes) => {
            const merged = coalesceBlocks(family, input);
            const cidrs = blocksAsCidrs(family, merged);
            for (let i = 1; i < cidrs.length; i++)
              expect(blockFirst(cidrs[i] as AddressBlock) > blockLast(cidrs[i - 1] as AddressBlock)).toBe(true);
            const set: IpSet = { name: 'x', family, members: cidrs };
            // Probe the edges of every block, and random addresses.
            const edges = input.flatMap((block) => [
              blockFirst(block),
              blockLast(block),
              blockFirst(block) - 1n,
              blockLast(block) + 1n,
            ]);
            for (const value of [...edges, ...probes]) {
              if (value < 0n || value >= 1n << BigInt(bits(family))) continue;
              const expected = input.some((block) => blockContains(block, family, value));
              expect(setContains(set, family, value)).toBe(expected);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it('a set is named after its content and family, and never holds a /0', () => {
    const a = setOf(4, '192.0.2.1', '192.0.2.3');
    expect(a.name).toMatch(/^asgc-s4-[a-z2-7]{12}$/);
    expect(setOf(4, '192.0.2.3', '192.0.2.1').name).toBe(a.name);
    expect(setOf(4, '192.0.2.1', '192.0.2.5').name).not.toBe(a.name);
    expect(setOf(6, '2001:db8::1', '2001:db8::3').name).toMatch(/^asgc-s6-/);
    expect(new SetRegistry('asgc-', 4, 1, []).setFor(blocks('0.0.0.0/0'))).toBeUndefined();
    expect(SetRegistry.owns('asgc-', a.name)).toBe(true);
    expect(SetRegistry.owns('asgc-', `${a.name}-n`)).toBe(true);
    expect(SetRegistry.owns('asgc-', 'asgc-s4-shapes')).toBe(false);
    expect(SetRegistry.owns('other-', a.name)).toBe(false);
  });
});

describe('ipset restore text and ipset save output', () => {
  it('renders create and add lines that read back as the same members', () => {
    const set = setOf(4, '203.0.113.0/30', '203.0.113.9', '198.51.100.5-198.51.100.6');
    const script = renderSetScript([set]);
    expect(script).toBe(
      [
        `create ${set.name} hash:net family inet maxelem 65536`,
        `add ${set.name} 198.51.100.5`,
        `add ${set.name} 198.51.100.6`,
        `add ${set.name} 203.0.113.0/30`,
        `add ${set.name} 203.0.113.9`,
        '',
      ].join('\n'),
    );
    const read = saved(script).get(set.name);
    expect(read && ipSetOfSaved(read)).toEqual({
      ok: true,
      value: { ...set, members: blocksAsCidrs(4, coalesceBlocks(4, set.members)) },
    });
  });

  it('reads what the kernel prints (initval, counters) and refuses lines it does not know', () => {
    const text = [
      'create x hash:net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x69e15179',
      'add x 2001:db8::/64',
      'add x 2001:db8:1::1',
      'create y hash:ip family inet hashsize 1024 maxelem 65536',
      'add y 192.0.2.1',
      '',
    ].join('\n');
    const sets = saved(text);
    expect(sets.get('x')).toEqual({
      name: 'x',
      type: 'hash:net',
      family: 6,
      members: new Set(['2001:db8::/64', '2001:db8:1::1']),
    });
    expect(ipSetOfSaved(sets.get('y') as SavedSet).ok).toBe(false);
    expect(parseSetSave('flush x\n').ok).toBe(false);
    expect(parseSetSave('add nowhere 192.0.2.1\n').ok).toBe(false);
  });

  it('merges overlapping members of a saved set before looking addresses up', () => {
    const sets = saved('create z hash:net family inet\nadd z 10.0.0.0/8\nadd z 10.1.0.0/16\nadd z 10.200.0.1\n');
    const set = ipSetOfSaved(sets.get('z') as SavedSet);
    if (!set.ok) throw new Error(set.error);
    expect(set.value.members.map((block) => block.text)).toEqual(['10.0.0.0/8']);
  });
});

describe('the set plan', () => {
  const wanted = setOf(4, '192.0.2.1', '192.0.2.3');
  const other = setOf(4, '198.51.100.7', '198.51.100.9');
  const sixes = setOf(6, '2001:db8::1', '2001:db8::3');

  it('creates a missing set whole, and leaves an equal one alone', () => {
    const plan = planSets(4, 'asgc-', [wanted], new Map());
    expect(plan.created).toEqual([wanted.name]);
    expect(plan.script).toBe(renderSetScript([wanted]));
    const again = planSets(4, 'asgc-', [wanted], saved(renderSetScript([wanted])));
    expect(again).toEqual({ script: '', created: [], replaced: [], unwanted: [], problems: [] });
  });

  it('rebuilds a drifted set under a scratch name and swaps it in, clearing a scratch left behind', () => {
    const live = saved(
      `${renderSetScript([wanted])}create ${wanted.name}-n hash:net family inet\n`.replace(/add \S+ 192\.0\.2\.3\n/, ''),
    );
    const plan = planSets(4, 'asgc-', [wanted], live);
    expect(plan.replaced).toEqual([wanted.name]);
    const scratch = `${wanted.name}-n`;
    expect(plan.script.split('\n')).toEqual([
      `destroy ${scratch}`,
      `create ${scratch} hash:net family inet maxelem 65536`,
      `add ${scratch} 192.0.2.1`,
      `add ${scratch} 192.0.2.3`,
      `swap ${scratch} ${wanted.name}`,
      `destroy ${scratch}`,
      '',
    ]);
    expect(plan.unwanted).toEqual([]);
  });

  it("retires only asgc's own sets of this family, and refuses a set of the wrong type", () => {
    const live = saved(
      `${renderSetScript([wanted, other, sixes])}create blocked hash:net family inet\ncreate asgc-s4-shapes hash:net family inet\n`,
    );
    const plan = planSets(4, 'asgc-', [wanted], live);
    expect(plan.unwanted).toEqual([other.name]);
    expect(planSets(6, 'asgc-', [], live).unwanted).toEqual([sixes.name]);
    const wrongType = planSets(4, 'asgc-', [wanted], saved(`create ${wanted.name} hash:ip family inet\n`));
    expect(wrongType.problems).toHaveLength(1);
    expect(wrongType.problems[0]).toContain('hash:ip');
  });
});
