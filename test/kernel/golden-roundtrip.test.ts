// The kernel is the judge: each golden ruleset loads with iptables-restore and comes back
// from iptables-save exactly as compiled, on nf_tables and legacy, IPv4 and IPv6.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/iptables/backend.js';
import { FAMILIES } from '../../src/model/address.js';
import { listScenarios } from '../../src/scenario/golden.js';
import { IPSETS_FILE, RULES_FILE } from '../../src/scenario/pipeline.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { parseSetSave } from '../../src/ipset/script.js';
import { kernelTestsEnabled, mustRun, restore, save, savedSets, withNamespace } from '../support/kernel.js';

const enabled = kernelTestsEnabled('golden round trip');
const scenarios = await listScenarios('rules');
const cases = scenarios.flatMap((scenario) =>
  BACKENDS.flatMap((backend) => FAMILIES.map((family) => ({ scenario, backend, family }))),
);

describe.skipIf(!enabled)('golden rulesets round-trip through the kernel', () => {
  it.each(cases)(
    '$scenario, $backend, IPv$family',
    async ({ scenario, backend, family }) => {
      const compiled = await readFile(join('golden', scenario, RULES_FILE[family]), 'utf8');
      const sets = await readFile(join('golden', scenario, IPSETS_FILE), 'utf8').catch(() => undefined);
      await withNamespace(async (namespace) => {
        // The sets the rules name must exist before the rules load, exactly as written.
        if (sets !== undefined) {
          await mustRun(inNamespace(namespace, ['ipset', 'restore']), sets);
          const written = parseSetSave(sets);
          if (!written.ok) throw new Error(written.error);
          const expected = [...written.value.values()].map(({ name, type, family, members }) => ({
            name,
            type,
            family,
            members: [...members].sort(),
          }));
          const kernel = [...(await savedSets(namespace)).values()].map(({ name, type, family, members }) => ({
            name,
            type,
            family,
            members: [...members].sort(),
          }));
          expect(kernel).toEqual(expected);
        }
        const loaded = await restore(namespace, backend, family, compiled);
        expect(loaded.stderr).toBe('');
        expect(loaded.code).toBe(0);
        expect(await save(namespace, backend, family)).toBe(compiled);
      });
    },
    30_000,
  );
});
