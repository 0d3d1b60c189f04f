import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asgc } from '../support/cli.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { kernelTestsEnabled, mustRun, save, withNamespace } from '../support/kernel.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-live-cli-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('asgc diff --saved', () => {
  it('exits 0 when the saved state is what the scenario compiles to', async () => {
    const result = await asgc(
      'diff',
      'rules/dual-stack-cell',
      '--saved',
      'golden/dual-stack-cell/ip6tables.rules',
      '--family',
      '6',
    );
    expect(result).toEqual({ code: 0, stdout: 'IPv6: up to date\n', stderr: '' });
  });

  it('exits 3 and shows the changes grouped per chain when they differ', async () => {
    const result = await asgc(
      'diff',
      'rules/lifecycles-two-spaces',
      '--saved',
      'golden/dual-stack-cell/iptables.rules',
      '--family',
      '4',
    );
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/^IPv4 asgc-r-5351a7421f0d-5nwf5yip: rewritten \(6 -> 4 rules\)\n {2}- -d 192\.0\.2\.53\/32/m);
    expect(result.stdout).toMatch(/^IPv4 asgc-o-b6e1d0c98f7a-42ofjuxu: deleted \(4 rules\)$/m);
  });

  it('prints the exact restore input with --script', async () => {
    const result = await asgc(
      'diff',
      'rules/deny-networks',
      '--saved',
      'golden/cf-defaults-ipv4/iptables.rules',
      '--family',
      '4',
      '--script',
    );
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/^\*filter\n:asgc-i-d00000000000-sgv6xjlr - \[0:0\]\n/);
    expect(result.stdout).toMatch(/\n-X asgc-o-d2a7c4e90b1f-7zkfn3hx\nCOMMIT\n$/);
    expect(result.stdout).toContain('\n-X asgc-i-d2a7c4e90b1f-7zkfn3hx\n');
  });

  it('needs --family with --saved, and reports an unreadable saved file as bad input (exit 1, as check --saved)', async () => {
    expect((await asgc('diff', 'rules/dual-stack-cell', '--saved', 'golden/dual-stack-cell/iptables.rules')).code).toBe(2);
    const file = join(work, 'bad.rules');
    await writeFile(file, '*filter\n-A NOPE -j ACCEPT\n');
    const result = await asgc('diff', 'rules/dual-stack-cell', '--saved', file, '--family', '4');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${file}:2: rule for chain NOPE, which is not declared in *filter`);
    expect(result.stderr).toContain(`${file}:2: input ends inside *filter (line 1): COMMIT is missing`);
  });
});

const enabled = kernelTestsEnabled('live CLI');

describe.skipIf(!enabled)('asgc apply and diff on a namespace', () => {
  it.each(['nft', 'legacy'])(
    'applies, verifies, then reports nothing to do (%s)',
    async (backend) => {
      await withNamespace(async (namespace) => {
        const dryRun = await asgc('apply', 'rules/dual-stack-cell', '--netns', namespace, '--backend', backend, '--dry-run');
        expect(dryRun.code).toBe(3);
        expect(await save(namespace, backend as 'nft', 4)).not.toContain('asgc-');
        const applied = await asgc('apply', 'rules/dual-stack-cell', '--netns', namespace, '--backend', backend);
        expect(applied.code, applied.stderr).toBe(0);
        expect(applied.stdout).toMatch(
          new RegExp(`^IPv4: applied \\d+ lines in 1 transaction\\(s\\) on ${backend}, verified$`, 'm'),
        );
        // Detection finds the backend the rules now live in.
        expect(await asgc('diff', 'rules/dual-stack-cell', '--netns', namespace)).toEqual({
          code: 0,
          stdout: 'IPv4: up to date\nIPv6: up to date\n',
          stderr: '',
        });
        expect((await asgc('apply', 'rules/dual-stack-cell', '--netns', namespace)).stdout).toBe(
          'IPv4: up to date\nIPv6: up to date\n',
        );
      });
    },
    60_000,
  );

  it('makes the ipsets first, says so, and shows a drifted set as pending until apply swaps it back', async () => {
    await withNamespace(async (namespace) => {
      const scenario = 'rules/partner-list-ipsets';
      const applied = await asgc('apply', scenario, '--netns', namespace, '--backend', 'nft');
      expect(applied.code, applied.stderr).toBe(0);
      expect(applied.stdout).toMatch(/^IPv4 ipsets: created( asgc-s4-[a-z2-7]{12}){4}$/m);
      expect(applied.stdout).toMatch(/^IPv6 ipsets: created asgc-s6-[a-z2-7]{12}$/m);
      expect(await asgc('diff', scenario, '--netns', namespace)).toEqual({
        code: 0,
        stdout: 'IPv4: up to date\nIPv6: up to date\n',
        stderr: '',
      });
      const set = /created (asgc-s4-[a-z2-7]{12})/.exec(applied.stdout)?.[1] as string;
      await mustRun(inNamespace(namespace, ['ipset', 'add', set, '192.0.2.99']));
      const pending = await asgc('diff', scenario, '--netns', namespace);
      expect(pending).toEqual({
        code: 3,
        stdout: `ipsets: rebuild and swap ${set}\nIPv4: up to date\nIPv6: up to date\n`,
        stderr: '',
      });
      const script = await asgc('diff', scenario, '--netns', namespace, '--script');
      expect(script.stdout).toMatch(
        new RegExp(`^# asgc: ipset restore input, run before the rules\ncreate ${set}-n hash:net family inet maxelem 65536\n`),
      );
      expect(script.stdout).toContain(`swap ${set}-n ${set}\ndestroy ${set}-n\n`);
      expect((await asgc('apply', scenario, '--netns', namespace)).stdout).toBe(
        `IPv4 ipsets: rebuilt and swapped ${set}\nIPv4: up to date\nIPv6: up to date\n`,
      );
      expect((await asgc('diff', scenario, '--netns', namespace)).code).toBe(0);
    });
  }, 60_000);
});
