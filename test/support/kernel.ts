// Kernel-backed tests run inside network namespaces they create and delete themselves.
// Without root or iptables they skip, loudly; under CI=true they never skip.
import { execFileSync } from 'node:child_process';
import { runProcess, type ProcessResult } from '../../src/exec/process.js';
import { type Backend, tools } from '../../src/iptables/backend.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { defaultRunner, type Runner } from '../../src/exec/process.js';
import type { Family } from '../../src/model/address.js';
import { parseSetSave, type SavedSet } from '../../src/ipset/script.js';

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function probe(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const tool of [
    'ip',
    'iptables-nft-restore',
    'iptables-legacy-restore',
    'ip6tables-nft-restore',
    'ip6tables-legacy-restore',
    'python3',
    'ipset',
  ]) {
    if (!commandExists(tool)) return `${tool} is not installed (apt-get install -y iptables iproute2 python3 ipset)`;
  }
  return undefined;
}

const unavailable = probe();

/** True when kernel tests can run. Under CI=true a missing kernel is an error, not a skip. */
export function kernelTestsEnabled(suite: string): boolean {
  if (unavailable === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`kernel tests cannot run in CI: ${unavailable}`);
  process.stderr.write(`\n*** SKIPPING KERNEL TESTS (${suite}): ${unavailable} ***\n\n`);
  return false;
}

let counter = 0;

export async function withNamespace<T>(body: (namespace: string) => Promise<T>): Promise<T> {
  const namespace = `asgc-t${process.pid}-${++counter}`;
  await mustRun(['ip', 'netns', 'add', namespace]);
  try {
    return await body(namespace);
  } finally {
    await mustRun(['ip', 'netns', 'del', namespace]);
  }
}

export async function mustRun(argv: readonly string[], input?: string): Promise<ProcessResult> {
  const result = await runProcess(argv, input === undefined ? {} : { input });
  if (result.code !== 0) throw new Error(`${argv.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result;
}

export async function restore(
  namespace: string,
  backend: Backend,
  family: Family,
  text: string,
  flags: string[] = [],
): Promise<ProcessResult> {
  return runProcess(inNamespace(namespace, [tools(backend, family).restore, ...flags]), { input: text });
}

/** iptables-save output with comment lines dropped and chain counters zeroed, for comparison. */
export async function save(namespace: string, backend: Backend, family: Family): Promise<string> {
  const result = await mustRun(inNamespace(namespace, [tools(backend, family).save]));
  return result.stdout
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]'))
    .join('\n');
}

/** A Runner that records every command it runs (to assert, say, that no restore ran). */
export function recordingRunner(): { run: Runner; commands: string[][] } {
  const commands: string[][] = [];
  return {
    commands,
    run: (argv, input) => {
      commands.push([...argv]);
      return defaultRunner(argv, input);
    },
  };
}

/** The namespace's ipsets as `ipset save` prints them: name -> members. */
export async function savedSets(namespace: string): Promise<Map<string, SavedSet>> {
  const parsed = parseSetSave((await mustRun(inNamespace(namespace, ['ipset', 'save']))).stdout);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}
