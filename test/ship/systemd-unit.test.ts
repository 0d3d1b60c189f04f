// deploy/systemd/asgc.service as systemd reads it. systemd-analyze verify also checks that
// ExecStart's binary exists: a private mount namespace puts a stand-in at /usr/local/bin/asgc,
// seen by nothing else on the machine.
import { execFile } from 'node:child_process';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const UNIT = resolve('deploy/systemd/asgc.service');
const usable = process.getuid?.() === 0;
if (!usable) {
  if (process.env.CI === 'true') throw new Error('the systemd unit test needs root (unshare --mount) in CI');
  process.stderr.write('\n*** SKIPPING THE SYSTEMD UNIT TEST: not running as root ***\n\n');
}

function verify(unit: string): Promise<{ code: number; stderr: string }> {
  const script =
    'mount -t tmpfs asgc-verify /usr/local/bin && printf "#!/bin/sh\\n" > /usr/local/bin/asgc && chmod +x /usr/local/bin/asgc && exec systemd-analyze verify "$0"';
  return new Promise((done) =>
    execFile('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, unit], (error, _stdout, stderr) =>
      done({ code: error === null ? 0 : Number((error as { code?: number }).code), stderr }),
    ),
  );
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-unit-'));
});
afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.runIf(usable)('deploy/systemd/asgc.service', () => {
  it('passes systemd-analyze verify without a warning', async () => {
    expect(await verify(UNIT)).toEqual({ code: 0, stderr: '' });
  });

  it('starts the agent with its settings file, as README says', async () => {
    const text = await readFile(UNIT, 'utf8');
    expect(text).toMatch(/^ExecStart=\/usr\/local\/bin\/asgc agent --config \/etc\/asgc\/agent\.json$/m);
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  });

  it('would catch a mistake: a misspelt key is reported', async () => {
    const broken = join(work, 'asgc.service');
    await writeFile(broken, (await readFile(UNIT, 'utf8')).replace('Restart=always', 'Restrt=always'));
    expect((await verify(broken)).stderr).toContain("Unknown key 'Restrt'");
  });
});
