// Chain names: the configured prefix, a kind letter, a readable piece of the id, and a hash
// of the whole id, at most 28 characters. Stable across runs (a function of the id only);
// two ids that share their readable piece still differ in the hash, and compile() refuses
// any name two ids would share rather than let them share a chain.
import { createHash } from 'node:crypto';
import { GenerationalCache } from '../memo/generational.js';
import type { Lifecycle } from '../model/cell.js';

export const MAX_CHAIN_NAME_LENGTH = 28;
const HASH_LENGTH = 8;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** The first 5 x `length` bits of SHA-256 (40 by default), in lower-case base32. */
export function shortHash(key: string, length = HASH_LENGTH): string {
  const digest = createHash('sha256').update(key).digest();
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length === length) break;
  }
  return out;
}

/** The kinds of chain asgc writes, one letter each. */
export const CHAIN_KINDS = {
  /** A container's egress chain (CF netout--<handle> + asg-<handle>). */
  egress: 'o',
  /** Traffic to a container (CF overlay--<handle>, and IPv6 ingress protection). */
  ingress: 'i',
  /** A container's accepted-traffic log chain (CF netout--<handle>--log). */
  log: 'l',
  /** A container's outbound rate-limit log-and-reject chain (CF netout--<handle>--rl-log). */
  rateLimitLog: 'q',
  /** ASG rules shared by every container of one space and lifecycle. */
  running: 'r',
  staging: 's',
  /** IPv6 c2c: the addresses of one app's containers, as sources (-s) and as destinations (-d). */
  fromApp: 'f',
  toApp: 't',
} as const;

export class ChainNamer {
  /**
   * Names made, per kind, by the id they were made from (the same string objects compile after
   * compile: no key to build), kept while compiles keep asking for them. Hashing is most of
   * naming's cost.
   */
  private readonly made = new Map<string, GenerationalCache<string, string>>();

  constructor(readonly prefix: string) {}

  /** After each compile: forget the names it did not ask for. */
  endRound(): void {
    for (const names of this.made.values()) names.endRound();
  }

  /** The chain FORWARD jumps to, which sends each container's traffic to its own chains. */
  get forward(): string {
    return `${this.prefix}forward`;
  }

  /** The chain INPUT jumps to, which sends containers' traffic to the cell to the host chain. */
  get input(): string {
    return `${this.prefix}input`;
  }

  /** What containers may reach on the cell itself (the same for every container). */
  get hostAccess(): string {
    return `${this.prefix}host`;
  }

  /** The raw table's chain that drops spoofed packets before any policy sees them. */
  get antiSpoofing(): string {
    return `${this.prefix}antispoof`;
  }

  egress(handle: string): string {
    return this.name(CHAIN_KINDS.egress, handle, () => handle);
  }

  ingress(handle: string): string {
    return this.name(CHAIN_KINDS.ingress, handle, () => handle);
  }

  log(handle: string): string {
    return this.name(CHAIN_KINDS.log, handle, () => handle);
  }

  rateLimitLog(handle: string): string {
    return this.name(CHAIN_KINDS.rateLimitLog, handle, () => handle);
  }

  fromApp(appGuid: string): string {
    return this.name(CHAIN_KINDS.fromApp, appGuid, () => `app\u0000${appGuid}`);
  }

  toApp(appGuid: string): string {
    return this.name(CHAIN_KINDS.toApp, appGuid, () => `app\u0000${appGuid}`);
  }

  asgSet(lifecycle: Lifecycle, spaceGuid: string | undefined): string {
    // (A space's guid is never empty: '' stands for the global set.)
    return this.name(
      CHAIN_KINDS[lifecycle],
      spaceGuid ?? '',
      () => `${lifecycle}\u0000${spaceGuid ?? ''}`,
      spaceGuid ?? 'global',
    );
  }

  owns(chain: string): boolean {
    return chain.startsWith(this.prefix);
  }

  /** The name of the chain of `kind` for `source`, whose hashed id `id()` gives. */
  private name(kind: string, source: string, id: () => string, readable = source): string {
    let names = this.made.get(kind);
    if (names === undefined) {
      names = new GenerationalCache();
      this.made.set(kind, names);
    }
    return names.get(source, [], () => this.makeName(kind, readable, id()));
  }

  private makeName(kind: string, readableSource: string, id: string): string {
    const head = `${this.prefix}${kind}-`;
    const room = MAX_CHAIN_NAME_LENGTH - head.length - HASH_LENGTH - 1;
    const readable = readableSource.replace(/[^A-Za-z0-9]/g, '').slice(0, Math.max(room, 0));
    return readable === '' ? `${head}${shortHash(id)}` : `${head}${readable}-${shortHash(id)}`;
  }
}
