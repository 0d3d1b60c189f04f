// The ipset edge: `ipset save`, `ipset restore` and `ipset destroy`, optionally inside a
// network namespace (sets, like tables, belong to one), through the same Runner as iptables.
import { inNamespace } from '../exec/namespace.js';
import { DataplaneError } from '../exec/dataplane-error.js';
import { defaultRunner, type ProcessResult, type Runner } from '../exec/process.js';
import { checkLock, type SharedLock, underLock } from '../exec/flock.js';

export interface SetDataplane {
  /** Every set with its members, as `ipset save` prints them. */
  save(): Promise<string>;
  restore(script: string): Promise<void>;
  /** Destroy a set; 'in use' when a rule (anyone's) still references it, which the kernel refuses. */
  destroy(name: string): Promise<'destroyed' | 'in use' | 'absent'>;
}

export class IpsetCommand implements SetDataplane {
  private readonly run: Runner;

  constructor(
    private readonly namespace?: string,
    run?: Runner,
    /** A lock file every change holds (shared with the CNI and garden). */
    private readonly lock?: SharedLock,
  ) {
    this.run = run ?? defaultRunner;
  }

  private async ipset(args: readonly string[], input?: string, change = true) {
    const argv = underLock(change ? this.lock : undefined, inNamespace(this.namespace, ['ipset', ...args]));
    let result: ProcessResult & { readonly argv: readonly string[] };
    try {
      result = { argv, ...(await this.run(argv, input)) };
    } catch (error) {
      throw new DataplaneError(`${argv.join(' ')} cannot run (is ipset installed?): ${(error as Error).message}`);
    }
    if (change) checkLock(this.lock, result);
    return result;
  }

  async save(): Promise<string> {
    const result = await this.ipset(['save'], undefined, false);
    if (result.code !== 0) throw new DataplaneError(`${result.argv.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    return result.stdout;
  }

  async restore(script: string): Promise<void> {
    const result = await this.ipset(['restore'], script);
    if (result.code !== 0) throw new DataplaneError(`ipset restore failed: ${result.stderr.trim()}`);
  }

  async destroy(name: string): Promise<'destroyed' | 'in use' | 'absent'> {
    const result = await this.ipset(['destroy', name]);
    if (result.code === 0) return 'destroyed';
    if (/in use by a kernel component/.test(result.stderr)) return 'in use';
    if (/does not exist/.test(result.stderr)) return 'absent';
    throw new DataplaneError(`${result.argv.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  }
}
