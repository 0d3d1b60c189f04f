// The iptables edge: read a table of one family with *-save or one chain with -S, write with
// *-restore, on one backend, optionally inside a network namespace. Everything runs as an
// argument vector, never through a shell, and every command goes through one Runner (which
// tests can record or fault).
import type { Family } from '../model/address.js';
import { DataplaneError } from '../exec/dataplane-error.js';
import { inNamespace } from '../exec/namespace.js';
import { defaultRunner, type Runner } from '../exec/process.js';
import { checkLock, type SharedLock, underLock } from '../exec/flock.js';
import { type Backend, tools } from './backend.js';

export interface Dataplane {
  readonly backend: Backend;
  /** One table as iptables-save prints it. */
  save(family: Family, table: string): Promise<string>;
  /** Run one restore script with --noflush; throws RestoreError when it fails. */
  restore(family: Family, script: string): Promise<void>;
  /**
   * One chain: its rules' text after `-A <chain> `, or undefined when the chain does not
   * exist. On nf_tables this reads only that chain; on legacy it costs a whole-table read.
   */
  listChain(family: Family, table: string, chain: string): Promise<readonly string[] | undefined>;
  /**
   * Whether the table exists, asked without creating it (reading a legacy table that does not
   * exist would load its module and make it).
   */
  hasTable(family: Family, table: string): Promise<boolean>;
}

/** A failed iptables-restore, with the failing line of the script and the lines around it. */
export class RestoreError extends DataplaneError {
  constructor(
    readonly family: Family,
    readonly stderr: string,
    readonly line: number | undefined,
    readonly context: readonly string[],
  ) {
    super(
      `ip${family === 6 ? '6' : ''}tables-restore failed${line === undefined ? '' : ` at line ${line}`}: ${stderr.trim()}${context.length > 0 ? `\n${context.join('\n')}` : ''}`,
    );
  }

  /** The legacy backend's xtables lock stayed taken by another process for the whole wait. */
  get lockBusy(): boolean {
    return /xtables lock|Resource temporarily unavailable/.test(this.stderr);
  }

  /** nf_tables refusing to delete a chain that was still referenced when the transaction began. */
  get chainBusy(): boolean {
    return /CHAIN_DEL failed \(Device or resource busy\)/.test(this.stderr);
  }
}

/** The script line restore blamed ("line N failed", "Error occurred at line: N", "line N: ..."). */
export function failingLine(stderr: string): number | undefined {
  const match = /Error occurred at line: (\d+)|line (\d+)(?: failed|:)/.exec(stderr);
  const text = match?.[1] ?? match?.[2];
  return text === undefined ? undefined : Number(text);
}

export function scriptContext(script: string, line: number | undefined, around = 3): string[] {
  if (line === undefined) return [];
  const lines = script.split('\n');
  const from = Math.max(1, line - around);
  const to = Math.min(lines.length, line + around);
  const context: string[] = [];
  for (let number = from; number <= to; number++)
    context.push(`${number === line ? '>' : ' '} ${String(number).padStart(5)}  ${lines[number - 1]}`);
  return context;
}

export interface IptablesCommandOptions {
  readonly namespace?: string;
  readonly run?: Runner;
  /** Seconds iptables waits for the xtables lock (legacy backend; nft takes no lock). */
  readonly waitSeconds?: number;
  /** A lock file every restore holds (shared with the CNI and garden). */
  readonly lock?: SharedLock;
}

export class IptablesCommand implements Dataplane {
  private readonly run: Runner;

  constructor(
    readonly backend: Backend,
    private readonly options: IptablesCommandOptions = {},
  ) {
    this.run = options.run ?? defaultRunner;
  }

  async save(family: Family, table: string): Promise<string> {
    const argv = inNamespace(this.options.namespace, [tools(this.backend, family).save, '-t', table]);
    const result = await this.run(argv);
    if (result.code !== 0) throw new DataplaneError(`${argv.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  async listChain(family: Family, table: string, chain: string): Promise<readonly string[] | undefined> {
    const argv = inNamespace(this.options.namespace, [
      tools(this.backend, family).command,
      '-w',
      String(this.options.waitSeconds ?? 10),
      '-t',
      table,
      '-S',
      chain,
    ]);
    const result = await this.run(argv);
    // legacy: "No chain/target/match by that name"; nft says a missing chain "is incompatible"
    // or "does not exist".
    if (result.code === 1 && /No chain\/target\/match by that name|is incompatible|does not exist/.test(result.stderr))
      return undefined;
    if (result.code !== 0) throw new DataplaneError(`${argv.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    const rulePrefix = `-A ${chain}`;
    const specs: string[] = [];
    for (const line of result.stdout.split('\n')) {
      if (line === rulePrefix) specs.push('');
      else if (line.startsWith(`${rulePrefix} `)) specs.push(line.slice(rulePrefix.length + 1));
    }
    return specs;
  }

  async hasTable(family: Family, table: string): Promise<boolean> {
    // On nf_tables reading a table never makes it: reading is as cheap as asking.
    if (this.backend === 'nft') return true;
    return (await legacyTables(this.options.namespace, family, this.run)).includes(table);
  }

  async restore(family: Family, script: string): Promise<void> {
    const argv = underLock(
      this.options.lock,
      inNamespace(this.options.namespace, [
        tools(this.backend, family).restore,
        '--noflush',
        '-w',
        String(this.options.waitSeconds ?? 10),
      ]),
    );
    const result = await this.run(argv, script);
    if (result.code === 0) return;
    checkLock(this.options.lock, result);
    const line = failingLine(result.stderr);
    throw new RestoreError(family, result.stderr, line, scriptContext(script, line));
  }
}

/** The legacy tables that exist in the namespace (the kernel lists them in /proc). */
async function legacyTables(namespace: string | undefined, family: Family, run: Runner): Promise<string[]> {
  const names = await run(inNamespace(namespace, ['cat', `/proc/net/ip${family === 6 ? '6' : ''}_tables_names`]));
  return names.code === 0 ? names.stdout.split('\n').filter((name) => name !== '') : [];
}

function countRules(saveText: string): number {
  let count = 0;
  for (const line of saveText.split('\n')) if (line.startsWith('-A ')) count++;
  return count;
}

/**
 * The backend the host's rules live in: the one with more rules (either family), nf_tables
 * when neither has any. Legacy is only asked when its kernel tables exist, so the probe
 * never loads the legacy modules itself.
 */
export async function detectBackend(namespace: string | undefined, run: Runner = defaultRunner): Promise<Backend> {
  const counts: Record<Backend, number> = { nft: 0, legacy: 0 };
  for (const backend of ['nft', 'legacy'] as const) {
    for (const family of [4, 6] as const) {
      if (backend === 'legacy' && (await legacyTables(namespace, family, run)).length === 0) continue;
      const saved = await run(inNamespace(namespace, [tools(backend, family).save]));
      if (saved.code === 0) counts[backend] += countRules(saved.stdout);
    }
  }
  return counts.legacy > counts.nft ? 'legacy' : 'nft';
}
