import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCell } from '../../src/compile/compile.js';
import { ChainNamer, MAX_CHAIN_NAME_LENGTH } from '../../src/compile/naming.js';
import { parseCidr } from '../../src/model/address.js';
import { cell, chainRules, compileText, container, securityGroup } from '../support/cell.js';
import { tableNamed } from '../../src/ir/ruleset.js';

const dns = securityGroup(
  'dns',
  [
    { protocol: 'udp', destination: '192.0.2.53,2001:db8:53::53', ports: '53' },
    { protocol: 'tcp', destination: '192.0.2.53', ports: '53' },
  ],
  { runningDefault: true, stagingDefault: true },
);

describe('chain layout', () => {
  it('orders a container chain as CF does: established, invalid, deny networks, ASGs, reject', () => {
    const deny = parseCidr('10.0.0.0/8');
    if (!deny.ok) throw new Error();
    const text = compileText(
      cell([dns], [container('c1', ['10.255.0.2'])], { denyNetworks: { always: [deny.value], running: [], staging: [] } }),
    );
    expect(chainRules(text[4], 'asgc-o-c1')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-p tcp -m state --state INVALID -j DROP',
      '-d 10.0.0.0/8 -j REJECT --reject-with icmp-port-unreachable',
      expect.stringMatching(/^-j asgc-r-global-[a-z2-7]{8}$/),
      '-j REJECT --reject-with icmp-port-unreachable',
    ]);
    expect(text[4]).toContain('-A FORWARD -j asgc-forward\n');
    expect(text[4]).toMatch(/-A asgc-forward -s 10\.255\.0\.2\/32 -j asgc-o-c1-[a-z2-7]{8}\n/);
  });

  it('rejects with the family own ICMP type', () => {
    const text = compileText(cell([dns], [container('c1', ['10.255.0.2', '2001:db8:3000::2'])]));
    expect(text[4]).toContain('-j REJECT --reject-with icmp-port-unreachable');
    expect(text[6]).toContain('-j REJECT --reject-with icmp6-port-unreachable');
    expect(text[4]).not.toContain('icmp6');
    expect(text[6]).not.toMatch(/icmp-port-unreachable/);
  });

  it('gives staging containers staging ASGs, app and task containers running ASGs, others none', () => {
    const staging = securityGroup('builds', [{ protocol: 'tcp', destination: '203.0.113.80', ports: '443' }], {
      stagingSpaceGuids: ['space-1'],
    });
    const running = securityGroup('db', [{ protocol: 'tcp', destination: '203.0.113.10', ports: '5432' }], {
      runningSpaceGuids: ['space-1'],
    });
    const text = compileText(
      cell(
        [staging, running],
        [
          container('app', ['10.255.0.2']),
          container('task', ['10.255.0.3'], { workload: 'task' }),
          container('stage', ['10.255.0.4'], { workload: 'staging' }),
          container('other', ['10.255.0.5'], { workload: 'sidecar' }),
          container('none', ['10.255.0.6'], { workload: undefined as unknown as string }),
        ],
      ),
    )[4];
    const jumpOf = (handle: string) => chainRules(text, `asgc-o-${handle}`).find((r) => r.startsWith('-j asgc-'));
    expect(jumpOf('app')).toMatch(/^-j asgc-r-space1-/);
    expect(jumpOf('task')).toBe(jumpOf('app'));
    expect(jumpOf('stage')).toMatch(/^-j asgc-s-space1-/);
    expect(jumpOf('other')).toBeUndefined();
    expect(jumpOf('none')).toBeUndefined();
    expect(chainRules(text, 'asgc-r-space1')).toEqual([
      '-d 203.0.113.10/32 -p tcp -m tcp --dport 5432 -m comment --comment "db#0" -j ACCEPT',
    ]);
    expect(chainRules(text, 'asgc-s-space1')).toEqual([
      '-d 203.0.113.80/32 -p tcp -m tcp --dport 443 -m comment --comment "builds#0" -j ACCEPT',
    ]);
  });

  it('shares one ASG chain per space and lifecycle; spaces without ASGs of their own share the global one', () => {
    const own = securityGroup('own', [{ protocol: 'all', destination: '198.51.100.0/24' }], { runningSpaceGuids: ['space-2'] });
    const text = compileText(
      cell(
        [dns, own],
        [
          container('a1', ['10.255.0.2'], { spaceGuid: 'space-1' }),
          container('a2', ['10.255.0.3'], { spaceGuid: 'space-3' }),
          container('b1', ['10.255.0.4'], { spaceGuid: 'space-2' }),
        ],
      ),
    )[4];
    const declared = text.split('\n').filter((line) => line.startsWith(':asgc-r-'));
    expect(declared).toHaveLength(2);
    const jumpOf = (handle: string) => chainRules(text, `asgc-o-${handle}`).find((r) => r.startsWith('-j asgc-'));
    expect(jumpOf('a1')).toBe(jumpOf('a2'));
    expect(jumpOf('b1')).toMatch(/^-j asgc-r-space2-/);
    expect(chainRules(text, 'asgc-r-space2')).toHaveLength(3);
  });

  it('emits identical rules once, keeping the first ASG as their origin', () => {
    const again = securityGroup(
      'again',
      [{ protocol: 'udp', destination: '192.0.2.53', ports: '53', description: 'same rule' }],
      { runningDefault: true },
    );
    const text = compileText(cell([dns, again], [container('c1', ['10.255.0.2'])]))[4];
    const rules = chainRules(text, 'asgc-r-global');
    expect(rules.filter((r) => r.includes('--dport 53') && r.includes('-p udp'))).toEqual([
      '-d 192.0.2.53/32 -p udp -m udp --dport 53 -m comment --comment "dns#0" -j ACCEPT',
    ]);
  });

  it('keeps a udp port list apart from the same tcp port list to the same place (optimised)', () => {
    const both = securityGroup(
      'both',
      [
        { protocol: 'tcp', destination: '192.0.2.53', ports: '53,853' },
        { protocol: 'udp', destination: '192.0.2.53', ports: '53,853' },
        { protocol: 'tcp', destination: '192.0.2.53', ports: '53-54' },
        { protocol: 'tcp', destination: '192.0.2.53', ports: '53,54' },
      ],
      { runningDefault: true },
    );
    const text = compileText(cell([both], [container('c1', ['10.255.0.2'])]), { optimise: true })[4];
    expect(chainRules(text, 'asgc-r-global')).toEqual([
      '-d 192.0.2.53/32 -p tcp -m multiport --dports 53,853 -m comment --comment "both#0" -j ACCEPT',
      '-d 192.0.2.53/32 -p udp -m multiport --dports 53,853 -m comment --comment "both#1" -j ACCEPT',
      '-d 192.0.2.53/32 -p tcp -m tcp --dport 53:54 -m comment --comment "both#2" -j ACCEPT',
    ]);
  });

  it('splits destinations by family: an IPv4-only rule adds nothing to ip6tables', () => {
    const v4only = securityGroup('v4', [{ protocol: 'all', destination: '0.0.0.0-9.255.255.255' }], { runningDefault: true });
    const text = compileText(cell([v4only], [container('c1', ['10.255.0.2', '2001:db8:3000::2'])]));
    expect(chainRules(text[4], 'asgc-r-global')).toEqual([
      '-m iprange --dst-range 0.0.0.0-9.255.255.255 -m comment --comment "v4#0" -j ACCEPT',
    ]);
    expect(text[6]).not.toContain('asgc-r-');
    expect(chainRules(text[6], 'asgc-o-c1')).toEqual([
      '-m state --state RELATED,ESTABLISHED -j ACCEPT',
      '-p tcp -m state --state INVALID -j DROP',
      '-j REJECT --reject-with icmp6-port-unreachable',
    ]);
  });

  it('leaves a family out of a container without an address in it', () => {
    const text = compileText(cell([dns], [container('v6only', ['2001:db8:3000::9'])]));
    expect(text[4]).not.toContain('v6only');
    expect(text[6]).toContain('-A asgc-forward -s 2001:db8:3000::9/128 -j asgc-o-v6only-');
  });

  it('hooks per host interface when they are configured', () => {
    const text = compileText(cell([dns], [container('c1', ['10.255.0.2'])], { hostInterfaces: ['eth0', 'bond0'] }))[4];
    expect(chainRules(text, 'asgc-forward').filter((r) => r.startsWith('-s '))).toEqual([
      expect.stringMatching(/^-s 10\.255\.0\.2\/32 -o eth0 -j asgc-o-c1-/),
      expect.stringMatching(/^-s 10\.255\.0\.2\/32 -o bond0 -j asgc-o-c1-/),
    ]);
  });

  it('applies running or staging deny networks by lifecycle, per family', () => {
    const block = (text: string) => {
      const parsed = parseCidr(text);
      if (!parsed.ok) throw new Error(parsed.error);
      return parsed.value;
    };
    const denyNetworks = {
      always: [block('169.254.0.0/16')],
      running: [block('192.168.0.0/16'), block('fd00::/8')],
      staging: [block('172.16.0.0/12')],
    };
    const text = compileText(
      cell(
        [dns],
        [container('app', ['10.255.0.2', '2001:db8::2']), container('stage', ['10.255.0.3'], { workload: 'staging' })],
        { denyNetworks },
      ),
    );
    const denies = (family: 4 | 6, handle: string) =>
      chainRules(text[family], `asgc-o-${handle}`).filter((r) => r.startsWith('-d '));
    expect(denies(4, 'app')).toEqual([
      '-d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable',
      '-d 192.168.0.0/16 -j REJECT --reject-with icmp-port-unreachable',
    ]);
    expect(denies(6, 'app')).toEqual(['-d fd00::/8 -j REJECT --reject-with icmp6-port-unreachable']);
    expect(denies(4, 'stage')).toEqual([
      '-d 169.254.0.0/16 -j REJECT --reject-with icmp-port-unreachable',
      '-d 172.16.0.0/12 -j REJECT --reject-with icmp-port-unreachable',
    ]);
  });
});

describe('ICMP "any" done right', () => {
  const icmpRules = (rules: Parameters<typeof securityGroup>[1]) =>
    compileText(cell([securityGroup('i', rules, { runningDefault: true })], [container('c1', ['10.255.0.2', '2001:db8::2'])]));

  it('type any: protocol only; code any: the type without a code', () => {
    const text = icmpRules([
      { protocol: 'icmp', destination: '198.51.100.1', type: -1, code: -1 },
      { protocol: 'icmp', destination: '198.51.100.2', type: 255, code: 255 },
      { protocol: 'icmp', destination: '198.51.100.3', type: 8, code: -1 },
      { protocol: 'icmp', destination: '198.51.100.4', type: 8, code: 255 },
      { protocol: 'icmp', destination: '198.51.100.5', type: 3, code: 4 },
      { protocol: 'icmpv6', destination: '2001:db8::1', type: -1, code: -1 },
      { protocol: 'icmpv6', destination: '2001:db8::2', type: 255, code: 255 },
      { protocol: 'icmpv6', destination: '2001:db8::3', type: 128, code: -1 },
      { protocol: 'icmpv6', destination: '2001:db8::4', type: 1, code: 4 },
    ]);
    const strip = (rules: string[]) => rules.map((r) => r.replace(/ -m comment --comment \S+/, ''));
    expect(strip(chainRules(text[4], 'asgc-r-global'))).toEqual([
      '-d 198.51.100.1/32 -p icmp -j ACCEPT',
      '-d 198.51.100.2/32 -p icmp -j ACCEPT',
      '-d 198.51.100.3/32 -p icmp -m icmp --icmp-type 8 -j ACCEPT',
      '-d 198.51.100.4/32 -p icmp -m icmp --icmp-type 8 -j ACCEPT',
      '-d 198.51.100.5/32 -p icmp -m icmp --icmp-type 3/4 -j ACCEPT',
    ]);
    expect(strip(chainRules(text[6], 'asgc-r-global'))).toEqual([
      '-d 2001:db8::1/128 -p ipv6-icmp -j ACCEPT',
      '-d 2001:db8::2/128 -p ipv6-icmp -j ACCEPT',
      '-d 2001:db8::3/128 -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT',
      '-d 2001:db8::4/128 -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j ACCEPT',
    ]);
  });

  it('never emits T/255 or 255/255 for any CF type/code (property)', () => {
    const value = fc.oneof(fc.constant(-1), fc.constant(255), fc.integer({ min: 0, max: 254 }));
    fc.assert(
      fc.property(value, value, (type, code) => {
        const text = icmpRules([
          { protocol: 'icmp', destination: '198.51.100.1', type, code },
          { protocol: 'icmpv6', destination: '2001:db8::1', type, code },
        ]);
        for (const family of [4, 6] as const) {
          expect(text[family]).not.toMatch(/-type \d+\/255\b/);
          expect(text[family]).not.toMatch(/-type 255\b/);
          expect(text[family]).not.toContain('--icmp-type any');
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('chain names', () => {
  const handle = fc.string({ minLength: 1, maxLength: 80, unit: 'grapheme-ascii' });
  const prefix = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,11}$/);

  it('fit in 28 characters, start with the prefix, use only safe characters, and are stable', () => {
    fc.assert(
      fc.property(prefix, handle, (p, h) => {
        const names = new ChainNamer(p);
        for (const name of [
          names.egress(h),
          names.log(h),
          names.asgSet('running', h),
          names.asgSet('staging', undefined),
          names.forward,
        ]) {
          expect(name.length).toBeLessThanOrEqual(MAX_CHAIN_NAME_LENGTH);
          expect(name.startsWith(p)).toBe(true);
          expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
        }
        expect(new ChainNamer(p).egress(h)).toBe(names.egress(h));
      }),
    );
  });

  it('differ for handles that share a long prefix', () => {
    const shared = '8c5b0a4d-2c52-4c1f-6f7a-1a2b';
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 30 }), (suffixes) => {
        const names = new ChainNamer('asgc-');
        const egress = new Set(suffixes.map((s) => names.egress(shared + s)));
        expect(egress.size).toBe(suffixes.length);
      }),
    );
  });

  it('a name two owners would share is an error, never a shared chain', () => {
    const clash = new (class extends ChainNamer {
      override egress(): string {
        return 'asgc-o-same';
      }
    })('asgc-');
    const result = compileCell(cell([dns], [container('c1', ['10.255.0.2']), container('c2', ['10.255.0.3'])]), { names: clash });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error[0]?.message).toContain(
      'chain name asgc-o-same would be shared by container c1 and container c2',
    );
  });
});

describe('logging', () => {
  const logged = securityGroup(
    'audited',
    [
      { protocol: 'tcp', destination: '203.0.113.0/24', ports: '443', log: true },
      { protocol: 'udp', destination: '198.51.100.9', ports: '514' },
    ],
    { runningSpaceGuids: ['space-1'] },
  );

  it('sends logged rules through the container own log chain, with CF prefixes and limits', () => {
    const text = compileText(cell([logged], [container('8c5b0a4d-2c52-4c1f-6f7a-1a2b', ['10.255.0.2'])]))[4];
    const egress = chainRules(text, 'asgc-o-8c5b0a4d2c52');
    expect(egress).toContainEqual(
      expect.stringMatching(
        /^-d 203\.0\.113\.0\/24 -p tcp -m tcp --dport 443 -m comment --comment "audited#0" -g asgc-l-8c5b0a4d2c52-[a-z2-7]{8}$/,
      ),
    );
    expect(egress).toContainEqual('-d 198.51.100.9/32 -p udp -m udp --dport 514 -m comment --comment "audited#1" -j ACCEPT');
    expect(chainRules(text, 'asgc-l-8c5b0a4d2c52')).toEqual([
      '! -p udp -m conntrack --ctstate INVALID,NEW,UNTRACKED -j LOG --log-prefix "OK_8c5b0a4d-2c52-4c1f-6f7a-1 "',
      '-p udp -m limit --limit 100/sec --limit-burst 100 -j LOG --log-prefix "OK_8c5b0a4d-2c52-4c1f-6f7a-1 "',
      '-j ACCEPT',
    ]);
  });

  it('global ASG logging logs every allow and every denied packet, rate-limited', () => {
    const text = compileText(cell([dns], [container('c1', ['10.255.0.2'])], { asgLogging: true, deniedLogsPerSec: 3 }))[4];
    const egress = chainRules(text, 'asgc-o-c1');
    expect(egress.filter((r) => r.includes('--dport 53')).every((r) => / -g asgc-l-c1-/.test(r))).toBe(true);
    expect(egress.at(-2)).toBe('-m limit --limit 3/sec --limit-burst 3 -j LOG --log-prefix "DENY_c1 "');
  });
});

describe('what the compile says it made', () => {
  it('lists, per container and family, its own chains, its ASG chain and the ipsets they name', async () => {
    const { compileDirectory } = await import('../support/scenarios.js');
    const { cell: compiled } = await compileDirectory('rules/partner-list-ipsets');
    for (const family of [4, 6] as const) {
      const ruleset = compiled[family];
      const chains = new Map((tableNamed(ruleset, 'filter')?.chains ?? []).map((chain) => [chain.name, chain]));
      const named = (chain: string) =>
        (chains.get(chain)?.rules ?? []).flatMap((rule) =>
          rule.kind === 'rule' ? rule.matches.flatMap((match) => (match.kind === 'set' ? [match.name] : [])) : [],
        );
      expect(compiled.manifest.size).toBeGreaterThan(0);
      for (const [handle, families] of compiled.manifest) {
        const entry = families[family];
        if (entry === undefined) continue;
        // Its own chains exist, start with its ingress and egress, and are named after it.
        for (const chain of entry.chains) expect(chains.has(chain), `${handle}: ${chain}`).toBe(true);
        expect(entry.chains.slice(0, 2).map((chain) => chain.slice(0, 7))).toEqual(['asgc-i-', 'asgc-o-']);
        // Its ASG chain is the one its egress chain jumps to; the sets are exactly what they name.
        const egress = chains.get(entry.chains[1] as string)?.rules ?? [];
        const jumps = egress.flatMap((rule) => (rule.kind === 'rule' && rule.target?.kind === 'jump' ? [rule.target.chain] : []));
        if (entry.asgChain !== undefined) expect(jumps).toContain(entry.asgChain);
        const expected = [...new Set([...entry.chains, ...(entry.asgChain ? [entry.asgChain] : [])].flatMap(named))].sort();
        expect(entry.sets).toEqual(expected);
      }
      // Some container's rules name a set here (the scenario's point).
      expect([...compiled.manifest.values()].some((families) => (families[family]?.sets.length ?? 0) > 0)).toBe(true);
    }
  });
});
