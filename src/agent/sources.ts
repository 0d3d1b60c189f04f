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
 * The policy server. Each document is fetched again only when its *_last_updated stamp moved
 * or the cell's spaces/apps changed; without the stamp endpoints, every cycle fetches.
 */
export class PolicyServerSource implements PolicySource {
  private cache: { securityGroups?: { key: string; text: SourceText }; policies?: { key: string; text: SourceText } } = {};

  constructor(
    private readonly client: PolicyServerClient,
    private readonly url: string,
  ) {}

  get description(): string {
    return `the policy server at ${this.url}`;
  }

  async fetch(query: PolicyQuery, force: boolean): Promise<PolicyDocuments> {
    const [sgStamp, policyStamp] = await Promise.all([
      this.client.lastUpdated('security_groups'),
      this.client.lastUpdated('policies'),
    ]);
    const spaces = [...new Set(query.spaceGuids)].sort();
    const ids = [...new Set(query.ids)].sort();
    const sgKey = sgStamp === undefined ? undefined : `${sgStamp}\u0000${spaces.join(',')}`;
    const policyKey = policyStamp === undefined ? undefined : `${policyStamp}\u0000${ids.join(',')}`;
    const cachedSg =
      !force && sgKey !== undefined && this.cache.securityGroups?.key === sgKey ? this.cache.securityGroups.text : undefined;
    const cachedPolicies =
      !force && policyKey !== undefined && this.cache.policies?.key === policyKey ? this.cache.policies.text : undefined;
    const securityGroups = cachedSg ?? (await this.client.securityGroups(spaces));
    const policies = cachedPolicies ?? (await this.client.policies(ids));
    // Remember only what arrived whole: a failed fetch above leaves the cache as it was.
    this.cache = {
      ...(sgKey !== undefined && { securityGroups: { key: sgKey, text: securityGroups } }),
      ...(policyKey !== undefined && { policies: { key: policyKey, text: policies } }),
    };
    return { securityGroups, policies };
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
    const changed =
      after === undefined ||
      after.mtimeMs !== before.mtimeMs ||
      after.size !== before.size ||
      Buffer.byteLength(text) !== after.size;
    if (changed) {
      if (attempt < 3) continue;
      throw new MetadataError(`container metadata ${path} kept changing while it was read`);
    }
    const parsed = parseJson(text, path);
    if (!parsed.ok) throw new MetadataError(`container metadata ${parsed.error.message} (torn or half-written?)`);
    return { file: path, text, value: parsed.value };
  }
}
