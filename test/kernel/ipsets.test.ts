// asgc's ipsets on the real kernel, both backends and both families: created before the rules
// that name them, left alone when unchanged, rebuilt and swapped when someone changed them,
// replaced by a new set when the list changes, and destroyed only when nothing names them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyFamily, hostDataplane } from '../../src/reconcile/apply.js';
import type { FamilyOutcome, HostDataplane } from '../../src/reconcile/family.js';
import { BACKENDS } from '../../src/iptables/backend.js';
import { inNamespace } from '../../src/exec/namespace.js';
import type { IpSet } from '../../src/ir/ipset.js';
import { formatSetMember } from '../../src/ir/ipset.js';
import { FAMILIES, type Family } from '../../src/model/address.js';
import type { CompiledScenario } from '../../src/scenario/pipeline.js';
import { compileScenario, RULES_FILE } from '../../src/scenario/pipeline.js';
import { readScenario } from '../../src/scenario/files.js';
import type { ScenarioTexts } from '../../src/ingest/cell.js';
import { kernelTestsEnabled, mustRun, recordingRunner, save, savedSets, withNamespace } from '../support/kernel.js';

const enabled = kernelTestsEnabled('ipsets');
const SCENARIO = 'partner-list-ipsets';

async function scenarioTexts(): Promise<ScenarioTexts> {
  const texts = await readScenario({ directory: join('rules', SCENARIO), required: ['containers'] });
  if (!texts.ok) throw new Error(JSON.stringify(texts.error));
  return texts.value;
}

function compiled(texts: ScenarioTexts): CompiledScenario {
  const result = compileScenario(texts);
  if (!result.ok) throw new Error(JSON.stringify(result.error));
  return result.value;
}

/** The scenario with the first destination of the partner list dropped (a changed list). */
function withShorterList(texts: ScenarioTexts): ScenarioTexts {
  const document = JSON.parse(texts.securityGroups?.text ?? '{}');
  const rules = JSON.parse(document.security_groups[0].rules);
  rules[0].destination = rules[0].destination.split(',').slice(1).join(',');
  document.security_groups[0].rules = JSON.stringify(rules);
  return { ...texts, securityGroups: { file: 'security_groups.json', text: JSON.stringify(document) } };
}

const withoutIpsets = (texts: ScenarioTexts): ScenarioTexts => ({ ...texts, config: { file: 'config.json', text: '{}' } });

async function applyBoth(dataplane: HostDataplane, scenario: CompiledScenario): Promise<Record<Family, FamilyOutcome>> {
  const [four, six] = await Promise.all(
    FAMILIES.map((family) => applyFamily(dataplane, scenario.cell[family], { prefix: 'asgc-' })),
  );
  return { 4: four as FamilyOutcome, 6: six as FamilyOutcome };
}

/** The namespace's sets whose names asgc gave, with members sorted. */
async function ownSets(namespace: string): Promise<Record<string, string[]>> {
  const sets = await savedSets(namespace);
  return Object.fromEntries(
    [...sets.values()].filter((set) => set.name.startsWith('asgc-')).map((set) => [set.name, [...set.members].sort()]),
  );
}

function expectedSets(scenario: CompiledScenario): Record<string, string[]> {
  const all: IpSet[] = FAMILIES.flatMap((family) => scenario.cell[family].sets ?? []);
  return Object.fromEntries(all.map((set) => [set.name, set.members.map(formatSetMember).sort()]));
}

const names = (scenario: CompiledScenario, family: Family) => (scenario.cell[family].sets ?? []).map((set) => set.name);
const ipsetVerbs = (commands: string[][]) =>
  commands.flatMap((argv) => (argv.includes('ipset') ? [argv[argv.indexOf('ipset') + 1]] : []));

describe.skipIf(!enabled).each(BACKENDS)('ipsets on the kernel (%s)', (backend) => {
  it('creates the sets first, then leaves them alone, repairs drift by a swap, replaces a changed list and retires what is unwanted', async () => {
    const texts = await scenarioTexts();
    const first = compiled(texts);
    expect(names(first, 4).length).toBeGreaterThan(0);
    expect(names(first, 6).length).toBeGreaterThan(0);
    await withNamespace(async (namespace) => {
      const { run, commands } = recordingRunner();
      const dataplane = hostDataplane(backend, { namespace, run });

      // 1. Empty namespace: every set created before the rules, which load as the golden files say.
      const created = await applyBoth(dataplane, first);
      for (const family of FAMILIES) {
        expect(created[family].sets?.created).toEqual(names(first, family));
        expect(await save(namespace, backend, family)).toBe(await readFile(join('golden', SCENARIO, RULES_FILE[family]), 'utf8'));
      }
      expect(await ownSets(namespace)).toEqual(expectedSets(first));

      // 2. Nothing changed: no restore of either kind, only reads.
      commands.length = 0;
      const unchanged = await applyBoth(dataplane, first);
      for (const family of FAMILIES) {
        expect(unchanged[family].scripts).toEqual([]);
        expect(unchanged[family].sets).toEqual({ created: [], replaced: [], destroyed: [], inUse: [] });
      }
      expect(ipsetVerbs(commands).sort()).toEqual(['save', 'save']);

      // 3. Someone deletes a member and adds another: the set is rebuilt and swapped, the rules untouched.
      const [victim] = names(first, 4) as [string];
      const members = (await ownSets(namespace))[victim] as string[];
      await mustRun(inNamespace(namespace, ['ipset', 'del', victim, members[0] as string]));
      await mustRun(inNamespace(namespace, ['ipset', 'add', victim, '192.0.2.250']));
      const repaired = await applyBoth(dataplane, first);
      expect(repaired[4].sets?.replaced).toEqual([victim]);
      expect(repaired[4].scripts).toEqual([]);
      expect(await ownSets(namespace)).toEqual(expectedSets(first));

      // 4. The partner list changes: a new set, the rules moved to it, the old set destroyed.
      const second = compiled(withShorterList(texts));
      const [added] = names(second, 4).filter((name) => !names(first, 4).includes(name));
      const [retired] = names(first, 4).filter((name) => !names(second, 4).includes(name));
      expect(added).toBeDefined();
      const changed = await applyBoth(dataplane, second);
      expect(changed[4].sets?.created).toEqual([added]);
      expect(changed[4].sets?.destroyed).toEqual([retired]);
      expect(changed[6].sets?.destroyed).toEqual([]);
      expect(await ownSets(namespace)).toEqual(expectedSets(second));

      // 5. Someone else's rule names one of asgc's sets; ipsets are then turned off: the rules go
      // plain, the named set stays (the kernel refuses, asgc says so), the others are destroyed.
      const [borrowed] = names(second, 4) as [string];
      await mustRun(inNamespace(namespace, [backend === 'nft' ? 'iptables-nft' : 'iptables-legacy', '-N', 'FOREIGN']));
      await mustRun(
        inNamespace(namespace, [
          backend === 'nft' ? 'iptables-nft' : 'iptables-legacy',
          '-A',
          'FOREIGN',
          '-m',
          'set',
          '--match-set',
          borrowed,
          'dst',
          '-j',
          'ACCEPT',
        ]),
      );
      const plain = compiled(withoutIpsets(texts));
      const off = await applyBoth(dataplane, plain);
      expect(off[4].sets?.inUse).toEqual([borrowed]);
      expect(off[4].sets?.destroyed).toEqual(names(second, 4).filter((name) => name !== borrowed));
      expect(off[6].sets?.destroyed).toEqual(names(second, 6));
      expect(Object.keys(await ownSets(namespace))).toEqual([borrowed]);
      const live = await save(namespace, backend, 4);
      expect(live).toContain(`-A FOREIGN -m set --match-set ${borrowed} dst -j ACCEPT`);
      expect(live.split('\n').filter((line) => line.startsWith('-A asgc-') && line.includes('--match-set'))).toEqual([]);

      // 6. With no sets wanted or named by asgc's rules any more, ipset is not run at all.
      commands.length = 0;
      await mustRun(inNamespace(namespace, [backend === 'nft' ? 'iptables-nft' : 'iptables-legacy', '-F', 'FOREIGN']));
      await applyBoth(dataplane, plain);
      expect(ipsetVerbs(commands)).toEqual([]);
    });
  }, 60_000);
});
