// The reconcile layer against the real kernel, both backends, both families, with each
// backend's own read-back policy: drift made by someone else is repaired at once where the
// canary sees it, and by the resync at the latest; a write that someone else changes between
// the restore and the read-back is caught by the post-write check (at once on nf_tables, at
// the deferred check on legacy).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inNamespace } from '../../src/exec/namespace.js';
import type { Backend } from '../../src/iptables/backend.js';
import { formatSetMember } from '../../src/ir/ipset.js';
import type { Family } from '../../src/model/address.js';
import { hostDataplane } from '../../src/reconcile/apply.js';
import { defaultPolicy, FamilyReconciler, type FamilyOutcome } from '../../src/reconcile/family.js';
import { textRuleset } from '../../src/render/save-text.js';
import { RULES_FILE } from '../../src/scenario/pipeline.js';
import { withRestore } from '../support/dataplanes.js';
import { kernelTestsEnabled, mustRun, save, savedSets, withNamespace } from '../support/kernel.js';
import { compileDirectory } from '../support/scenarios.js';

const enabled = kernelTestsEnabled('reconcile');
const SCENARIO = 'partner-list-ipsets';
const RESYNC_MS = 600_000;

const combos = (['nft', 'legacy'] as const).flatMap((backend) => ([4, 6] as const).map((family) => ({ backend, family })));

/** A reconciler of one family in a namespace, on a clock the test moves. */
async function cell(namespace: string, backend: Backend, family: Family) {
  const compiled = await compileDirectory(join('rules', SCENARIO));
  const desired = textRuleset(compiled.cell[family]);
  const golden = await readFile(join('golden', SCENARIO, RULES_FILE[family]), 'utf8');
  let clock = 1_000_000;
  const host = hostDataplane(backend, { namespace });
  const policy = defaultPolicy(backend, RESYNC_MS);
  const reconciler = new FamilyReconciler(family, host, { prefix: 'asgc-' }, policy, () => clock);
  const iptables = (...args: string[]) =>
    mustRun(inNamespace(namespace, [`${family === 4 ? 'iptables' : 'ip6tables'}-${backend}`, '-w', ...args]));
  const sets = async () =>
    Object.fromEntries(
      [...(await savedSets(namespace)).values()]
        .filter((set) => set.name.startsWith(`asgc-s${family}`))
        .map((set) => [set.name, [...set.members].sort()]),
    );
  const wantedSets = Object.fromEntries(desired.sets.map((set) => [set.name, set.members.map(formatSetMember).sort()]));
  const inLine = async () =>
    (await save(namespace, backend, family)) === golden && JSON.stringify(await sets()) === JSON.stringify(wantedSets);
  return {
    desired,
    reconciler,
    iptables,
    inLine,
    /** A sync `ms` after the last one. */
    sync: (ms: number): Promise<FamilyOutcome> => {
      clock += ms;
      return reconciler.sync(undefined);
    },
    /** Converge, and let any deferred check of what was written run. */
    settle: async () => {
      await reconciler.sync(desired);
      clock += policy.postWriteDelayMs + 1;
      await reconciler.sync(undefined);
    },
    /** The first chain of the golden ruleset whose name starts with `prefix`. */
    chain: (prefix: string) => new RegExp(`^:(${prefix}\\S+)`, 'm').exec(golden)?.[1] as string,
    policy,
  };
}

describe.skipIf(!enabled)('drift made by someone else, repaired', () => {
  it.each(combos)(
    '$backend, IPv$family: a flushed table and a moved hook at once (canary); a deleted chain, a foreign rule, a deleted rule and an edited ipset by the resync',
    async ({ backend, family }) => {
      await withNamespace(async (namespace) => {
        const c = await cell(namespace, backend, family);
        await c.settle();
        expect(await c.inLine()).toBe(true);
        // The canary's drift: seen by the first sync whose canary is due (every sync on
        // nf_tables, every 30 s on legacy).
        const canary = c.policy.canaryIntervalMs + 1;
        await c.iptables('-F');
        expect((await c.sync(canary)).repaired).toBe(true);
        if (backend === 'legacy') await c.sync(c.policy.postWriteDelayMs + 1);
        expect(await c.inLine()).toBe(true);
        // A foreign rule inserted above asgc's hook: the hook goes back on top, the rule stays below.
        await c.iptables('-I', 'FORWARD', '1', '-p', 'tcp', '-j', 'ACCEPT');
        expect((await c.sync(canary)).repaired).toBe(true);
        if (backend === 'legacy') await c.sync(c.policy.postWriteDelayMs + 1);
        expect((await save(namespace, backend, family)).split('\n').filter((line) => line.startsWith('-A FORWARD '))).toEqual([
          '-A FORWARD -j asgc-forward',
          '-A FORWARD -p tcp -j ACCEPT',
        ]);
        await c.iptables('-D', 'FORWARD', '-p', 'tcp', '-j', 'ACCEPT');
        expect(await c.inLine()).toBe(true);
        if (family === 6) {
          // The raw table (anti-spoofing) flushed: its hook is gone, which the canary sees too.
          await c.iptables('-t', 'raw', '-F');
          expect((await c.sync(canary)).repaired).toBe(true);
          if (backend === 'legacy') await c.sync(c.policy.postWriteDelayMs + 1);
          expect(await c.inLine()).toBe(true);
        }
        // Drift the hooks do not show: the resync repairs it.
        const ingress = c.chain('asgc-i-');
        const egress = c.chain('asgc-o-');
        const set = c.desired.sets[0]?.name as string;
        const drifts: [string, () => Promise<unknown>][] = [
          [
            'a deleted owned chain',
            async () => {
              const dispatch = (await save(namespace, backend, family))
                .split('\n')
                .find((line) => line.startsWith('-A asgc-forward ') && line.endsWith(`-j ${ingress}`)) as string;
              await c.iptables('-D', ...dispatch.slice(3).split(' '));
              await c.iptables('-F', ingress);
              await c.iptables('-X', ingress);
            },
          ],
          ['a foreign rule in an owned chain', () => c.iptables('-I', egress, '1', '-j', 'ACCEPT')],
          ['a rule deleted from a chain no change touches', () => c.iptables('-D', egress, '2')],
          ...(family === 6
            ? [
                ['a rule deleted from the anti-spoofing chain', () => c.iptables('-t', 'raw', '-D', 'asgc-antispoof', '3')] as [
                  string,
                  () => Promise<unknown>,
                ],
              ]
            : []),
          [
            'an edited ipset',
            () => mustRun(inNamespace(namespace, ['ipset', 'add', set, family === 4 ? '192.0.2.99' : '2001:db8:99::99'])),
          ],
        ];
        for (const [what, drift] of drifts) {
          await drift();
          const idle = await c.sync(1_000);
          expect(idle.repaired, `${what}: no idle cycle sees it`).toBe(false);
          expect(await c.inLine(), what).toBe(false);
          const resync = await c.sync(RESYNC_MS);
          expect(resync.repaired, what).toBe(true);
          if (backend === 'legacy') await c.sync(c.policy.postWriteDelayMs + 1);
          expect(await c.inLine(), what).toBe(true);
        }
      });
    },
    60_000,
  );
});

describe.skipIf(!enabled)('the post-write check', () => {
  it.each(combos)(
    '$backend, IPv$family: a restore that succeeded but was changed before the read-back is repaired',
    async ({ backend, family }) => {
      await withNamespace(async (namespace) => {
        const compiled = await compileDirectory(join('rules', SCENARIO));
        const desired = textRuleset(compiled.cell[family]);
        const real = hostDataplane(backend, { namespace });
        // Another writer deletes the first rule of the first chain each of asgc's restores
        // writes, right after that restore.
        let raced = 0;
        const racing = withRestore(real.tables, async (f, script, base) => {
          await base.restore(f, script);
          const table = /^\*(\S+)/m.exec(script)?.[1];
          const chain = /^:(asgc-\S+)/m.exec(script)?.[1];
          if (chain !== undefined && raced === 0) {
            raced++;
            await base.restore(f, `*${table}\n-D ${chain} 1\nCOMMIT\n`);
          }
        });
        let clock = 1_000_000;
        const policy = defaultPolicy(backend, RESYNC_MS);
        const reconciler = new FamilyReconciler(family, { ...real, tables: racing }, { prefix: 'asgc-' }, policy, () => clock);
        const golden = await readFile(join('golden', SCENARIO, RULES_FILE[family]), 'utf8');
        const first = await reconciler.sync(desired);
        expect(raced).toBe(1);
        if (backend === 'nft') {
          // Read back at once, repaired in the same sync.
          expect(first.verification).toBe('read back');
          expect(first.repaired).toBe(true);
          // A plan per table, and the repair.
          expect(first.plans).toHaveLength(desired.tables.length + 1);
        } else {
          // Read back at the deferred check, a later sync, and repaired there.
          expect(first.verification).toBe('pending');
          expect(await save(namespace, backend, family)).not.toBe(golden);
          expect(reconciler.nextCheckAt).toBe(clock + policy.postWriteDelayMs);
          clock += policy.postWriteDelayMs;
          const check = await reconciler.sync(undefined);
          expect(check.reads.full).toBe(desired.tables.length);
          expect(check.repaired).toBe(true);
        }
        expect(await save(namespace, backend, family)).toBe(golden);
      });
    },
    60_000,
  );
});
