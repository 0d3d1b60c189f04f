import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { asgc } from '../support/cli.js';

const SCENARIO = 'rules/dual-stack-cell';
const RUNNER = '8c5b0a4d-2c52-4c1f-6f7a-1a2b';
const IPSET_SCENARIO = 'rules/partner-list-ipsets';

describe('asgc check', () => {
  it('says allowed, with the deciding rule and the ASG rule behind it, and exits 0', async () => {
    const result = await asgc('check', SCENARIO, '--container', RUNNER, '--to', '198.51.100.20', '--port', '443');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ALLOWED {2}tcp 10\.255\.7\.11 -> 198\.51\.100\.20:443 \(IPv4, container 8c5b0a4d/);
    expect(result.stdout).toContain('--dports 443,8443 -m comment --comment "web-egress#0 partner APIs" -j ACCEPT');
    expect(result.stdout).toContain('policy: ASG "web-egress" (7b2e4c6a-1d9f-4e3b-a5c7-8d0f2e4a6c04) rule #0');
    expect(result.stdout).toMatch(/path: FORWARD 1 -> asgc-forward \d+ -> asgc-o-\S+ \d+ -> asgc-r-\S+ \d+/);
  });

  it('says denied by the default deny, and exits 5', async () => {
    const result = await asgc('check', SCENARIO, '--container', RUNNER, '--to', '198.51.100.20', '--port', '22');
    expect(result.code).toBe(5);
    expect(result.stdout).toMatch(/^DENIED {2}tcp/);
    expect(result.stdout).toContain("policy: the container's default deny: no ASG rule allows this");
  });

  it('answers IPv6 and ICMPv6 questions, and ingress ones with --from', async () => {
    const icmpv6 = (type: string) =>
      asgc('check', SCENARIO, '--container', RUNNER, '--to', '2001:db8::9', '--proto', 'icmpv6', '--icmp-type', type);
    const echo = await icmpv6('128/3');
    expect(echo.code).toBe(0);
    expect(echo.stdout).toContain('ASG "icmpv6-essentials"');
    const unreachable = await icmpv6('1/3');
    expect(unreachable.code).toBe(5);
    const outside = await asgc('check', SCENARIO, '--container', RUNNER, '--from', '2001:db8:9999::1', '--port', '8080');
    expect(outside.code).toBe(5);
    expect(outside.stdout).toContain("the container's ingress default deny");
  });

  it("answers from a container's link-local address and from a forged one as the kernel does", async () => {
    // Host access goes by the container's interface (silk's s-<IPv4>), whatever the source.
    const linkLocal = await asgc(
      'check',
      SCENARIO,
      '--container',
      RUNNER,
      '--to',
      'fe80::1',
      '--to-host',
      '--source',
      'fe80::11',
      '--port',
      '22',
    );
    expect(linkLocal.code).toBe(5);
    expect(linkLocal.stdout).toMatch(/^DENIED {2}tcp fe80::11 -> \[fe80::1\]:22 \(IPv6, container \S+, in by s-010255007011,/);
    expect(linkLocal.stdout).toContain('path: INPUT 1 -> asgc-input 1 -> asgc-host');
    expect(linkLocal.stdout).toContain('policy: the default deny of host access');
    // Another container's address from this one: dropped in the raw table before any policy.
    const forged = await asgc(
      'check',
      SCENARIO,
      '--container',
      RUNNER,
      '--to',
      '2001:db8::9',
      '--source',
      '2001:db8:3000:1::a2',
      '--proto',
      'icmpv6',
    );
    expect(forged.code).toBe(5);
    expect(forged.stdout).toMatch(/^DENIED \(dropped\) {2}icmpv6 2001:db8:3000:1::a2 -> 2001:db8::9/);
    expect(forged.stdout).toContain('decided by raw asgc-antispoof rule 1: -i s-+ -m rpfilter --invert -j DROP');
    expect(forged.stdout).toContain('path: raw PREROUTING 1 -> raw asgc-antispoof 1');
    // The same from outside the cell, by the uplink (eth0 here: no host interface is configured).
    const fromOutside = await asgc(
      'check',
      SCENARIO,
      '--container',
      RUNNER,
      '--from',
      '2001:db8:3000:1::a2',
      '--port',
      '8080',
      '--in-interface',
      'eth0',
    );
    expect(fromOutside.stdout).toContain('decided by raw asgc-antispoof rule 3: -s 2001:db8:3000:1::a2/128 -j DROP');
  });

  it('checks a saved iptables-save dump, by address, as JSON with the trace', async () => {
    const result = await asgc(
      'check',
      '--saved',
      'golden/dual-stack-cell/iptables.rules',
      '--container',
      '10.255.7.11',
      '--to',
      '192.0.2.53',
      '--proto',
      'udp',
      '--port',
      '53',
      '--json',
      '--trace',
    );
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      verdict: string;
      policy: unknown;
      trace: { result: string }[];
      decidedBy: { chain: string };
    };
    expect(report.verdict).toBe('ACCEPT');
    // From a dump the policy is known by the rule's comment.
    expect(report.policy).toEqual({
      kind: 'asg',
      groupName: 'dns-dual-stack',
      ruleIndex: 0,
      description: 'cell resolvers, both families',
    });
    expect(report.trace.at(-1)?.result).toBe('match');
    expect(report.trace.length).toBeGreaterThan(3);
  });

  it('says unknown, never guesses, when the dump holds a rule it cannot evaluate', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'asgc-check-'));
    try {
      const file = join(directory, 'saved.rules');
      await writeFile(file, '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m addrtype --dst-type LOCAL -j DROP\nCOMMIT\n');
      const result = await asgc('check', '--saved', file, '--container', '10.255.0.2', '--to', '192.0.2.1', '--port', '80');
      expect(result.code).toBe(6);
      expect(result.stdout).toMatch(/^UNKNOWN/);
      expect(result.stdout).toContain('FORWARD rule 1 uses what asgc does not model');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('answers through ipsets: compiled, or from a dump with the `ipset save` output beside it', async () => {
    const question = ['--container', '10.255.1.5', '--to', '203.0.113.8', '--port', '8443'];
    const compiled = await asgc('check', IPSET_SCENARIO, ...question);
    expect(compiled.code).toBe(0);
    expect(compiled.stdout).toMatch(
      /decided by asgc-r-\S+ rule \d+: -p tcp -m set --match-set asgc-s4-\S+ dst -m multiport --dports 443,8443,9443/,
    );
    expect(compiled.stdout).toContain(
      'policy: ASG "partner-hosts" (a1b2c3d4-0001-4e5f-8a9b-partnerlist01) rule #0: partner APIs\n',
    );
    const outside = await asgc('check', IPSET_SCENARIO, '--container', '10.255.1.5', '--to', '203.0.113.9', '--port', '8443');
    expect(outside.code).toBe(5);

    const saved = ['--saved', 'golden/partner-list-ipsets/iptables.rules', ...question];
    const withoutSets = await asgc('check', ...saved);
    expect(withoutSets.code).toBe(6);
    expect(withoutSets.stdout).toMatch(/why unknown: asgc-r-\S+ rule \d+ names ipset asgc-s4-\S+, whose members are not known/);
    const withSets = await asgc('check', ...saved, '--saved-sets', 'golden/partner-list-ipsets/ipsets.rules');
    expect(withSets.code).toBe(0);
    expect(withSets.stdout).toContain('policy: ASG "partner-hosts" rule #0: partner APIs');
  });

  it('notes an address that is no container of the cell, and still answers', async () => {
    const result = await asgc('check', SCENARIO, '--container', '10.255.99.99', '--to', '198.51.100.20', '--port', '443');
    expect(result.stderr).toBe('asgc check: note: 10.255.99.99 is not a container of this cell; checking the packet as given\n');
    expect(result.stdout).toMatch(/^ALLOWED {2}tcp 10\.255\.99\.99 -> /);
  });

  it('refuses questions that do not make sense, with exit 2', async () => {
    const cases = [
      ['--container', RUNNER, '--to', '198.51.100.1'],
      ['--container', RUNNER, '--to', '198.51.100.1', '--from', '198.51.100.2', '--port', '1'],
      ['--container', RUNNER, '--to', '198.51.100.1', '--proto', 'icmpv6'],
      ['--container', 'nobody', '--to', '198.51.100.1', '--port', '1'],
    ];
    for (const argv of cases) {
      const result = await asgc('check', SCENARIO, ...argv);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^asgc check: /);
    }
  });

  it('shows the plain form with --no-optimize, with the same verdict', async () => {
    const plain = await asgc('check', SCENARIO, '--no-optimize', '--container', RUNNER, '--to', '198.51.100.20', '--port', '443');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('-p tcp -m tcp --dport 443 -m comment --comment "web-egress#0 partner APIs" -j ACCEPT');
  });
});
