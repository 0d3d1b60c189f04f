// Where a cycle's documents come from: a scenario directory (re-read every cycle) or the
// policy server, plus the container metadata file, which other processes rewrite.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceText } from '../ingest/cell.js';
import { parseJson } from '../ingest/json.js';
import { FileReader } from './file-reader.js';
import { type PolicyServerClient, FetchError } from './policy-server.js';

/** The policy documents of one cycle. */
export interface PolicyDocuments {
  readonly securityGroups?: SourceText;
  readonly policies?: SourceText;
}

export interface PolicyQuery {
  /** Space GUIDs of the cell's containers (security groups are fetched for these). */
  readonly spaceGuids: readonly string[];
  /** App and space GUIDs of the cell's containers (policies naming any of them). */
  readonly ids: readonly string[];
}

export interface PolicySource {
  readonly description: string;
  /** `force` skips any "nothing changed" shortcut. */
  fetch(query: PolicyQuery, force: boolean): Promise<PolicyDocuments>;
}

export class MetadataError extends Error {
  override readonly name = 'MetadataError';
}

/** A scenario directory's security_groups.json and policies.json, read afresh every cycle. */
export class FileSource implements PolicySource {
  private readonly files = new FileReader();

  constructor(private readonly directory: string) {}

  get description(): string {
    return `files in ${this.directory}`;
  }

  async fetch(): Promise<PolicyDocuments> {
    const securityGroups = await this.readOptional('security_groups.json');
    const policies = await this.readOptional('policies.json');
    return { ...(securityGroups && { securityGroups }), ...(policies && { policies }) };
  }

  private async readOptional(name: string): Promise<SourceText | undefined> {
    const file = join(this.directory, name);
    try {
      const text = await this.files.read(file);
      return text === undefined ? undefined : { file, text };
    } catch (error) {
      throw new FetchError(`${file}: ${(error as Error).message}`);
    }
  }
}

/**
 * The policy server, on two schedules as VPA polls it: c2c policies every cycle, security
 * groups only every `asgIntervalMs` (or when the cell's spaces change, or when forced). Each
 * document is fetched again only when its *_last_updated stamp moved or the cell's spaces/apps
 * changed; without the stamp endpoints, every due check fetches.
 */
export class PolicyServerSource implements PolicySource {
  /** Each document as last fetched, with its stamp and what it was asked for (no key: no stamp to compare). */
  private cache: {
    securityGroups?: { key: string | undefined; text: SourceText };
    policies?: { key: string | undefined; text: SourceText };
  } = {};
  /** When security groups were last checked, and for which spaces. */
  private groupsChecked: { readonly at: number; readonly spaces: string } | undefined;

  constructor(
    private readonly client: PolicyServerClient,
    private readonly url: string,
    private readonly asgIntervalMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  get description(): string {
    return `the policy server at ${this.url}`;
  }

  async fetch(query: PolicyQuery, force: boolean): Promise<PolicyDocuments> {
    const spaces = [...new Set(query.spaceGuids)].sort().join(',');
    const ids = [...new Set(query.ids)].sort().join(',');
    const now = this.now();
    const cachedGroups = this.cache.securityGroups;
    const groupsDue =
      force ||
      cachedGroups === undefined ||
      this.groupsChecked?.spaces !== spaces ||
      now - this.groupsChecked.at >= this.asgIntervalMs;
    const [securityGroups, policies] = await Promise.all([
      groupsDue || cachedGroups === undefined ? this.fetchGroups(spaces, force, now) : cachedGroups.text,
      this.fetchPolicies(ids, force),
    ]);
    return { securityGroups, policies };
  }

  /** Security groups for the cell's spaces, fetched again when their stamp moved (or there is none). */
  private async fetchGroups(spaces: string, force: boolean, now: number): Promise<SourceText> {
    const stamp = await this.client.lastUpdated('security_groups');
    const key = stamp === undefined ? undefined : `${stamp}\u0000${spaces}`;
    const cached = this.cache.securityGroups;
    const text =
      !force && key !== undefined && cached?.key === key
        ? cached.text
        : await this.client.securityGroups(spaces === '' ? [] : spaces.split(','));
    // Remember only what arrived whole: a failed fetch leaves the cache as it was.
    this.cache = { ...this.cache, securityGroups: { key, text } };
    this.groupsChecked = { at: now, spaces };
    return text;
  }

  /** The c2c policies naming the cell's apps and spaces, fetched again when their stamp moved. */
  private async fetchPolicies(ids: string, force: boolean): Promise<SourceText> {
    const stamp = await this.client.lastUpdated('policies');
    const key = stamp === undefined ? undefined : `${stamp}\u0000${ids}`;
    const cached = this.cache.policies;
    const text =
      !force && key !== undefined && cached?.key === key
        ? cached.text
        : await this.client.policies(ids === '' ? [] : ids.split(','));
    this.cache = { ...this.cache, policies: { key, text } };
    return text;
  }
}

/**
 * The container metadata file, which the CNI rewrites: read it whole and parse it. A file
 * that changed while it was read, or that is torn or half-written, is an error for this cycle,
 * never an empty cell.
 */
export async function readMetadata(path: string, files = new FileReader()): Promise<SourceText & { readonly value: unknown }> {
  for (let attempt = 1; ; attempt++) {
    let before;
    let text: string | undefined;
    try {
      before = await stat(path);
      text = await files.read(path);
      if (text === undefined) throw new Error('no such file');
    } catch (error) {
      throw new MetadataError(`container metadata ${path} cannot be read: ${(error as Error).message}`);
    }
    const after = await stat(path).catch(() => undefined);
    const textBytes = Buffer.byteLength(text);
    const changed =
      after === undefined ||
      after.mtimeMs !== before.mtimeMs ||
      after.size !== before.size ||
      // The text lacks the 3 bytes of a leading BOM, when the file has one.
      (textBytes !== after.size && textBytes + 3 !== after.size);
    if (changed) {
      if (attempt < 3) continue;
      throw new MetadataError(`container metadata ${path} kept changing while it was read`);
    }
    const parsed = parseJson(text, path);
    if (!parsed.ok) throw new MetadataError(`container metadata ${parsed.error.message} (torn or half-written?)`);
    return { file: path, text, value: parsed.value };
  }
}
