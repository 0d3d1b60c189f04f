// asgc uninstall on the kernel: after a cell with raw and filter chains, hooks and ipsets, every
// line and set of someone else's is as it was, byte for byte, and nothing of asgc's is left.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inNamespace } from '../../src/exec/namespace.js';
import { BACKENDS } from '../../src/iptables/backend.js';
import { type Family, FAMILIES } from '../../src/model/address.js';
import { asgc } from '../support/cli.js';
import { FOREIGN_RAW_TABLE, kernelTestsEnabled, mustRun, restore, save, withNamespace } from '../support/kernel.js';

const enabled = kernelTestsEnabled('uninstall');

/** Someone else's chains, hooks and an ipset their rule names, in every table asgc owns. */
function foreignState(family: Family): string {
  return [
    ...FOREIGN_RAW_TABLE,
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD DROP [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':DOCKER-USER - [0:0]',
    '-A INPUT -i lo -j ACCEPT',
    `-A FORWARD -m set --match-set foreign-block${family} src -j DROP`,
    '-A FORWARD -j DOCKER-USER',
    '-A DOCKER-USER -j RETURN',
    'COMMIT',
    '',
  ].join('\n');
}

describe.skipIf(!enabled)('asgc uninstall against the kernel', () => {
  it.each(BACKENDS)(
    'removes every chain, hook and ipset of asgc, one transaction per table, and leaves the rest as it was (%s)',
    async (backend) => {
      await withNamespace(async (namespace) => {
        const ipset = (...args: string[]) => mustRun(inNamespace(namespace, ['ipset', ...args]));
        await ipset('create', 'foreign-block4', 'hash:net', 'family', 'inet');
        await ipset('add', 'foreign-block4', '198.51.100.0/24');
        await ipset('create', 'foreign-block6', 'hash:net', 'family', 'inet6');
        for (const family of FAMILIES) expect((await restore(namespace, backend, family, foreignState(family))).code).toBe(0);
        const before = await Promise.all(FAMILIES.map((family) => save(namespace, backend, family)));
        const setsBefore = (await ipset('save')).stdout;

        // Partner lists as ipsets, and anti-spoofing in both families: raw and filter in each.
        const config = join(await mkdtemp(join(tmpdir(), 'asgc-uninstall-')), 'config.json');
        await writeFile(config, JSON.stringify({ ipset_min_destinations: 16, anti_spoofing: { ipv4: true, ipv6: true } }));
        const applied = await asgc(
          'apply',
          'rules/partner-list-ipsets',
          '--config',
          config,
          '--netns',
          namespace,
          '--backend',
          backend,
        );
        expect(applied.code).toBe(0);
        await rm(dirname(config), { recursive: true });
        const live = await Promise.all(FAMILIES.map((family) => save(namespace, backend, family)));
        expect(live.join('\n')).toContain('-j asgc-antispoof');
        expect((await ipset('list', '-n')).stdout).toMatch(/^asgc-/m);

        const preview = await asgc('uninstall', '--netns', namespace, '--backend', backend, '--dry-run');
        expect(preview.code).toBe(3);
        expect(preview.stdout).toMatch(/^ipsets: destroy asgc-/m);
        expect(preview.stdout).toContain("IPv6 raw PREROUTING: asgc's hook rules");
        // The preview changed nothing.
        expect(await Promise.all(FAMILIES.map((family) => save(namespace, backend, family)))).toEqual(live);

        const removed = await asgc('uninstall', '--netns', namespace, '--backend', backend);
        expect(removed.stderr).toBe('');
        expect(removed.code).toBe(0);
        // raw, then filter: two transactions in each family.
        expect(removed.stdout).toContain(`IPv4: removed in 2 transaction(s) on ${backend}, verified`);
        expect(removed.stdout).toContain(`IPv6: removed in 2 transaction(s) on ${backend}, verified`);
        expect(await Promise.all(FAMILIES.map((family) => save(namespace, backend, family)))).toEqual(before);
        expect((await ipset('save')).stdout).toBe(setsBefore);

        const again = await asgc('uninstall', '--netns', namespace, '--backend', backend);
        expect(again).toEqual({ code: 0, stdout: "IPv4: nothing of asgc's\nIPv6: nothing of asgc's\n", stderr: '' });
        expect((await asgc('uninstall', '--netns', namespace, '--backend', backend, '--dry-run')).code).toBe(0);
      });
    },
    60_000,
  );
});
