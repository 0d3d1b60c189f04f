import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import {
  type AddressBlock,
  ADDRESS_BITS,
  blockContains,
  blockFirst,
  blockLast,
  cidr as cidrBlock,
  range as rangeBlock,
  type Family,
  formatAddress,
  formatBlock,
  formatIPv6,
  parseCidr,
  parseDestinationElement,
  parseIPv4,
  parseIPv6,
} from '../../src/model/address.js';
import { parseDestinations } from '../../src/model/destinations.js';
import { familyShare, validateAsgRule } from '../../src/model/asg.js';

const v6 = (text: string) => {
  const parsed = parseIPv6(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};

describe('IPv6 printing follows glibc inet_ntop, as iptables-save prints', () => {
  // Cases from the canonical-forms reference (a6-*): input -> what iptables-save printed.
  it.each([
    ['2001:DB8:0:0::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8:1:0:0:0:0:0', '2001:db8:1::'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['::ffff:a00:1', '::ffff:10.0.0.1'],
    ['::10.0.0.1', '::10.0.0.1'],
    ['::1', '::1'],
    ['::', '::'],
    ['fe80::1', 'fe80::1'],
  ])('%s -> %s', (input, printed) => {
    expect(formatIPv6(v6(input))).toBe(printed);
  });
});

describe('strict address parsing (Cloud Controller rules)', () => {
  it('rejects IPv4 leading zeros, which iptables would read as octal', () => {
    for (const text of ['010.0.0.53', '10.000.0.53', '10.0.0.053']) {
      const parsed = parseIPv4(text);
      expect(parsed.ok).toBe(false);
      expect(!parsed.ok && parsed.error).toContain('leading zeros');
    }
    expect(parseIPv4('10.0.0.0').ok).toBe(true);
  });

  it('rejects short and over-range IPv4 forms', () => {
    for (const text of ['10.1', '1010', '999.999.999.999', '0.257.0.0', '1.2.3.4.5', '']) expect(parseIPv4(text).ok).toBe(false);
  });

  it('accepts zero-padded IPv6 hextets but not zones or octal embedded IPv4', () => {
    expect(parseIPv6('2001:db8:0000:0000::01').ok).toBe(true);
    const zone = parseIPv6('fe80::1%eth0');
    expect(!zone.ok && zone.error).toContain('zone');
    expect(parseIPv6('::ffff:010.0.0.1').ok).toBe(false);
  });

  it('masks host bits of a CIDR: it means the network', () => {
    const parsed = parseCidr('192.168.10.2/24');
    expect(parsed.ok && formatBlock(parsed.value)).toBe('192.168.10.0/24');
    const v6cidr = parseCidr('2001:db8:1:2:3:4:5:6/48');
    expect(v6cidr.ok && formatBlock(v6cidr.value)).toBe('2001:db8:1::/48');
  });

  it('rejects prefixes beyond the family width', () => {
    expect(parseCidr('10.0.0.1/33').ok).toBe(false);
    expect(parseCidr('2001:db8::/129').ok).toBe(false);
    expect(parseCidr('10.0.0.0/-1').ok).toBe(false);
    expect(parseCidr('10.0.0.0/255.255.255.0').ok).toBe(false);
  });

  it('ranges: same family, start <= end, plain ends', () => {
    expect(parseDestinationElement('10.0.0.5-10.0.0.5').ok).toBe(true);
    const mixed = parseDestinationElement('10.0.0.1-2001:db8::1');
    expect(!mixed.ok && mixed.error).toContain('mixes IPv4 and IPv6');
    const inverted = parseDestinationElement('9.9.9.9-0.0.0.0');
    expect(!inverted.ok && inverted.error).toContain('inverted');
    expect(parseDestinationElement('1.1.1.1-2.2.2.2/30').ok).toBe(false);
    expect(parseDestinationElement('1.1.1.1-2.2.2.2-3.3.3.3').ok).toBe(false);
  });
});

// ---- property: the family split is a partition of the destination's addresses ----------

const v4Value = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n });
const v6Value = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  // IPv4-mapped and low addresses exercise the embedded-IPv4 printing.
  fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }).map((v) => (0xffffn << 32n) | v),
  fc.bigInt({ min: 0n, max: 1n << 20n }),
);

function blockArbitrary(family: Family): fc.Arbitrary<{ text: string; block: AddressBlock }> {
  const value = family === 4 ? v4Value : v6Value;
  const bits = ADDRESS_BITS[family];
  const cidr = fc.tuple(value, fc.integer({ min: 0, max: bits })).map(([address, prefix]) => {
    const text = `${formatAddress(family, address)}/${prefix}`;
    const parsed = parseCidr(text);
    if (!parsed.ok) throw new Error(parsed.error);
    return { text, block: parsed.value };
  });
  const single = value.map((address) => ({
    text: formatAddress(family, address),
    block: cidrBlock(family, address, bits) as AddressBlock,
  }));
  const range = fc.tuple(value, value).map(([a, b]) => {
    const [start, end] = a <= b ? [a, b] : [b, a];
    return {
      text: `${formatAddress(family, start)}-${formatAddress(family, end)}`,
      block: rangeBlock(family, start, end) as AddressBlock,
    };
  });
  return fc.oneof(cidr, single, range);
}

const anyBlock = fc.oneof(blockArbitrary(4), blockArbitrary(6));

function inFamilySet(blocks: readonly AddressBlock[], family: Family, value: bigint): boolean {
  return blocks.some((block) => blockContains(block, family, value));
}

describe('family split (property)', () => {
  it('parses every printed element back to the same block', () => {
    fc.assert(
      fc.property(anyBlock, ({ text, block }) => {
        const parsed = parseDestinationElement(text);
        expect(parsed.ok).toBe(true);
        if (parsed.ok) {
          expect(blockFirst(parsed.value)).toBe(blockFirst(block));
          expect(blockLast(parsed.value)).toBe(blockLast(block));
          expect(parsed.value.family).toBe(block.family);
        }
      }),
    );
  });

  it('every address of a list lands in exactly its own family, and nothing outside the list does', () => {
    fc.assert(
      fc.property(
        fc.array(anyBlock, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.constantFrom<Family>(4, 6), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n })), { maxLength: 20 }),
        (elements, probes) => {
          const text = elements.map((element) => element.text).join(',');
          const rule = validateAsgRule({ protocol: 'all', destination: text }, { groupGuid: 'g', groupName: 'n', ruleIndex: 0 });
          expect(rule.errors).toEqual([]);
          if (!rule.rule) return;
          const shares = { 4: familyShare(rule.rule, 4), 6: familyShare(rule.rule, 6) };
          // Probe: both ends of each element, one address past each end, and random addresses.
          const points: [Family, bigint][] = probes.map(([family, value]) => [
            family,
            value & ((1n << BigInt(ADDRESS_BITS[family])) - 1n),
          ]);
          for (const { block } of elements) {
            points.push([block.family, blockFirst(block)], [block.family, blockLast(block)]);
            if (blockFirst(block) > 0n) points.push([block.family, blockFirst(block) - 1n]);
            if (blockLast(block) < (1n << BigInt(ADDRESS_BITS[block.family])) - 1n)
              points.push([block.family, blockLast(block) + 1n]);
          }
          for (const [family, value] of points) {
            const inInput = elements.some(({ block }) => blockContains(block, family, value));
            const other: Family = family === 4 ? 6 : 4;
            expect(inFamilySet(shares[family]?.destinations ?? [], family, value)).toBe(inInput);
            expect(inFamilySet(shares[other]?.destinations ?? [], family, value)).toBe(false);
          }
          for (const family of [4, 6] as const) {
            for (const block of shares[family]?.destinations ?? []) expect(block.family).toBe(family);
            const expectedCount = elements.filter(({ block }) => block.family === family).length;
            expect(shares[family]?.destinations.length ?? 0).toBe(expectedCount);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a list of more than 6000 destinations is refused, 6000 is not', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `10.${i >> 8}.${i & 255}.1`).join(',');
    expect(parseDestinations(many(6000)).errors).toEqual([]);
    expect(parseDestinations(many(6001)).errors[0]).toContain('maximum destinations per rule exceeded');
  });
});

describe('the hand-written parsers agree with ipaddr.js (property)', () => {
  const hexGroup = fc.stringMatching(/^[0-9a-fA-F]{0,5}$/);
  const v4Text = fc
    .tuple(fc.nat(300), fc.nat(300), fc.nat(300), fc.nat(300), fc.boolean())
    .map(([a, b, c, d, zero]) => `${zero ? '0' : ''}${a}.${b}.${c}.${d}`);
  const v6Text = fc
    .tuple(fc.array(hexGroup, { maxLength: 9 }), fc.option(fc.nat(9)), fc.option(v4Text), fc.constantFrom('', ':', '::'))
    .map(([groups, gapAt, tail, edge]) => {
      const parts = [...groups];
      if (gapAt !== null) parts.splice(Math.min(gapAt, parts.length), 0, '');
      let text = parts.join(':');
      if (tail !== null) text += `:${tail}`;
      return edge + text;
    });
  const tricky = [
    '::',
    '::1',
    '1::',
    '1:2:3:4:5:6:7::',
    '::2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:9',
    ':1::',
    '1:::2',
    '1::2::3',
    '::ffff:1.2.3.4',
    '::1.2.3.4',
    '1:2:3:4:5:6:1.2.3.4',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::ffff:1.2.3',
    'g::1',
    '12345::',
    '',
    ':',
    ':::',
  ];

  it('IPv6: same verdict, same value', () => {
    const check = (text: string) => {
      const ours = parseIPv6(text);
      const dottedTail = /\.(\d+)$/.test(text) ? text.slice(text.lastIndexOf(':') + 1) : undefined;
      const octal = dottedTail?.split('.').some((octet) => octet.length > 1 && octet.startsWith('0')) ?? false;
      const theirs = ipaddr.IPv6.isValid(text) && !octal;
      expect(ours.ok, text).toBe(theirs);
      if (ours.ok && theirs) {
        const bytes = ipaddr.IPv6.parse(text).toByteArray();
        const expected = bytes.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
        // ipaddr.js turns the deprecated ::a.b.c.d into ::ffff:a.b.c.d; nothing else differs.
        if (/^::[\d.]+$/.test(text)) expect(ours.value).toBe(expected & ((1n << 32n) - 1n));
        else expect(ours.value, text).toBe(expected);
      }
    };
    tricky.forEach(check);
    fc.assert(fc.property(v6Text, check), { numRuns: 3000 });
  });

  it('IPv4: valid exactly when ipaddr.js reads four decimal parts without leading zeros', () => {
    fc.assert(
      fc.property(fc.oneof(v4Text, fc.stringMatching(/^[0-9.]{0,16}$/)), (text) => {
        const ours = parseIPv4(text);
        expect(ours.ok, text).toBe(ipaddr.IPv4.isValidFourPartDecimal(text));
        if (ours.ok)
          expect(Number(ours.value)).toBe(
            ipaddr.IPv4.parse(text)
              .toByteArray()
              .reduce((v, b) => v * 256 + b, 0),
          );
      }),
      { numRuns: 3000 },
    );
  });
});
