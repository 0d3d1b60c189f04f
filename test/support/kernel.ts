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

/** The order nf_tables prints tables in, whatever order they were made in. */
const TABLE_ORDER = ['mangle', 'security', 'raw', 'filter', 'nat'];

/**
 * iptables-save output with comment lines dropped, chain counters zeroed and tables in
 * nf_tables' order, for comparison: legacy prints tables in the reverse of the order they were
 * first used in, so two equal states compare equal table by table only.
 */
export async function save(namespace: string, backend: Backend, family: Family): Promise<string> {
  const result = await mustRun(inNamespace(namespace, [tools(backend, family).save]));
  const lines = result.stdout
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]'));
  const blocks: string[][] = [];
  for (const line of lines) {
    if (line.startsWith('*') || blocks.length === 0) blocks.push([]);
    (blocks[blocks.length - 1] as string[]).push(line);
  }
  const rank = (block: string[]) => TABLE_ORDER.indexOf(block[0]?.slice(1) ?? '');
  return blocks
    .sort((a, b) => rank(a) - rank(b))
    .map((block) => `${block.join('\n')}\n`)
    .join('');
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

/** Each rule of a table with the packets it has counted, from `iptables-save -c`. */
export async function ruleCounters(
  namespace: string,
  backend: Backend,
  family: Family,
  table: string,
): Promise<{ readonly rule: string; readonly packets: number }[]> {
  const saved = await mustRun(inNamespace(namespace, [tools(backend, family).save, '-c', '-t', table]));
  return saved.stdout.split('\n').flatMap((line) => {
    const counted = /^\[(\d+):\d+\] (-A .*)$/.exec(line);
    return counted === null ? [] : [{ rule: counted[2] as string, packets: Number(counted[1]) }];
  });
}

/** The packets counted by the rules of a table that `select` picks, summed. */
export async function countedBy(
  namespace: string,
  backend: Backend,
  family: Family,
  table: string,
  select: (rule: string) => boolean,
): Promise<number> {
  const counters = await ruleCounters(namespace, backend, family, table);
  return counters.filter(({ rule }) => select(rule)).reduce((sum, { packets }) => sum + packets, 0);
}

/** Someone else's raw table: no connection tracking for VXLAN, in a chain of its own hooked into PREROUTING. */
export const FOREIGN_RAW_TABLE: readonly string[] = [
  '*raw',
  ':PREROUTING ACCEPT [0:0]',
  ':OUTPUT ACCEPT [0:0]',
  ':VXLAN-NOTRACK - [0:0]',
  '-A PREROUTING -j VXLAN-NOTRACK',
  '-A VXLAN-NOTRACK -p udp -m udp --dport 4789 -j NOTRACK',
  'COMMIT',
];
