// asgc review with the live tables as the "before" side: what apply would change on this cell,
// in words, and the same from the cell's saved state (iptables-save output). Both backends.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNamespace } from '../../src/exec/namespace.js';
import { BACKENDS, tools } from '../../src/iptables/backend.js';
import { asgc } from '../support/cli.js';
import { kernelTestsEnabled, mustRun, withNamespace } from '../support/kernel.js';

const enabled = kernelTestsEnabled('review of the live tables');
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-review-live-'));
  // rules/dual-stack-cell with one more partner API rule: tcp 443 to 203.0.113.10.
  await cp('rules/dual-stack-cell', join(work, 'after'), { recursive: true });
  const file = join(work, 'after', 'security_groups.json');
  const document = JSON.parse(await readFile(file, 'utf8'));
  const group = document.security_groups.find((candidate: { name: string }) => candidate.name === 'web-egress');
  group.rules = JSON.stringify([...JSON.parse(group.rules), { protocol: 'tcp', destination: '203.0.113.10', ports: '443' }]);
  await writeFile(file, JSON.stringify(document));
});
afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!enabled)('asgc review --netns and --saved', () => {
  it.each(BACKENDS)(
    'the live tables before, the scenario after: what apply would change (%s)',
    async (backend) => {
      await withNamespace(async (namespace) => {
        expect((await asgc('apply', 'rules/dual-stack-cell', '--netns', namespace, '--backend', backend)).code).toBe(0);
        const same = await asgc('review', '--netns', namespace, '--backend', backend, 'rules/dual-stack-cell');
        expect(same).toEqual({ code: 0, stdout: 'no access change\n', stderr: '' });
        const changed = await asgc('review', '--netns', namespace, '--backend', backend, join(work, 'after'));
        expect(changed.code).toBe(3);
        expect(changed.stdout).toMatch(/IPv4 egress gains tcp 443 \(new connections\) to 203\.0\.113\.10, via ASG "web-egress"/);
        // The same from the cell's saved state.
        const saved = join(work, `saved-${backend}`);
        await cp('rules/dual-stack-cell', saved, { recursive: true });
        for (const [family, file] of [
          [4, 'iptables.rules'],
          [6, 'ip6tables.rules'],
        ] as const)
          await writeFile(join(saved, file), (await mustRun(inNamespace(namespace, [tools(backend, family).save]))).stdout);
        const fromSaved = await asgc('review', '--saved', saved, join(work, 'after'));
        expect(fromSaved.stdout).toBe(changed.stdout);
        // Once applied, nothing is left to review.
        expect((await asgc('apply', join(work, 'after'), '--netns', namespace, '--backend', backend)).code).toBe(0);
        expect((await asgc('review', '--netns', namespace, '--backend', backend, join(work, 'after'))).code).toBe(0);
      });
    },
    60_000,
  );
});
