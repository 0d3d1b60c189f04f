// The policy server's internal API over HTTPS with mutual TLS: security groups (paged by
// `next`/`from`), c2c policies, and the *_last_updated stamps that let a cycle skip fetching.
// Every request has a timeout and a bounded response size.
import { Agent, request } from 'node:https';
import type { SourceText } from '../ingest/cell.js';

export interface PolicyServerOptions {
  /** e.g. https://policy-server.service.cf.internal:4003 */
  readonly url: string;
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The name the server's certificate must carry (SNI and verification), if not the URL's host. */
  readonly serverName?: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  /** Security groups per page (the server's `limit`). */
  readonly pageLimit: number;
  /** At most this many GUIDs per policies request, so URLs stay short. */
  readonly idsPerRequest: number;
}

export class FetchError extends Error {
  override readonly name = 'FetchError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const BASE = '/networking/v1/internal';

export class PolicyServerClient {
  private readonly agent: Agent;

  constructor(private readonly options: PolicyServerOptions) {
    this.agent = new Agent({ ca: options.ca, cert: options.cert, key: options.key, keepAlive: true, maxSockets: 4 });
  }

  close(): void {
    this.agent.destroy();
  }

  /** GET a path; resolves to the body of a 200, throws FetchError otherwise. */
  get(path: string): Promise<string> {
    const url = new URL(path, this.options.url);
    return new Promise((resolve, reject) => {
      const fail = (message: string, status?: number) =>
        reject(new FetchError(`GET ${url.pathname}${url.search}: ${message}`, status));
      const req = request(
        url,
        {
          agent: this.agent,
          method: 'GET',
          headers: { accept: 'application/json' },
          ...(this.options.serverName !== undefined && { servername: this.options.serverName }),
          timeout: this.options.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.options.maxResponseBytes) {
              req.destroy();
              fail(`response larger than ${this.options.maxResponseBytes} bytes`);
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200) resolve(body);
            else fail(`HTTP ${res.statusCode}: ${body.slice(0, 200).trim()}`, res.statusCode);
          });
          res.on('error', (error) => fail(error.message));
        },
      );
      // A deadline for the whole exchange, not only for idle sockets.
      const deadline = setTimeout(() => {
        req.destroy();
        fail(`no answer within ${this.options.timeoutMs} ms`);
      }, this.options.timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => {
        req.destroy();
        fail(`timed out after ${this.options.timeoutMs} ms`);
      });
      req.on('error', (error) => fail(error.message));
      req.end();
    });
  }

  /** A *_last_updated stamp, or undefined when the server does not offer the endpoint. */
  async lastUpdated(what: 'policies' | 'security_groups'): Promise<string | undefined> {
    try {
      const body = (await this.get(`${BASE}/${what}_last_updated`)).trim();
      if (!/^"?[0-9A-Za-z:.+-]+"?$/.test(body))
        throw new FetchError(`${what}_last_updated: not a timestamp: ${body.slice(0, 60)}`);
      return body;
    } catch (error) {
      if (error instanceof FetchError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** Every page of the security groups for these spaces (and the global ones), as one document. */
  async securityGroups(spaceGuids: readonly string[]): Promise<SourceText> {
    const pages: string[] = [];
    let from: number | undefined;
    for (;;) {
      const query = new URLSearchParams({ limit: String(this.options.pageLimit) });
      if (spaceGuids.length > 0) query.set('space_guids', spaceGuids.join(','));
      if (from !== undefined) query.set('from', String(from));
      const body = await this.get(`${BASE}/security_groups?${query.toString()}`);
      let page: unknown;
      try {
        page = JSON.parse(body);
      } catch (error) {
        throw new FetchError(`security groups page ${pages.length + 1} is not valid JSON: ${(error as Error).message}`);
      }
      const next = (page as { next?: unknown } | null)?.next;
      if (typeof next !== 'number' || !Number.isInteger(next) || next < 0)
        throw new FetchError(`security groups page ${pages.length + 1} has no valid "next"`);
      pages.push(body);
      if (next === 0) break;
      // Keyset pagination moves forward; anything else would loop.
      if (from !== undefined && next <= from)
        throw new FetchError(`security groups pagination does not advance (next ${next} after from ${from})`);
      if (pages.length >= 10_000) throw new FetchError('security groups: more than 10000 pages');
      from = next;
    }
    return { file: 'policy-server security_groups', text: `[${pages.join(',')}]` };
  }

  /** The policies naming any of these GUIDs (apps and spaces), merged across requests. */
  async policies(ids: readonly string[]): Promise<SourceText> {
    const seen = new Set<string>();
    const policies: unknown[] = [];
    // Without ids the server answers every policy of the foundation: never ask that.
    const sorted = [...new Set(ids)].sort();
    for (let at = 0; at < sorted.length; at += this.options.idsPerRequest) {
      const batch = sorted.slice(at, at + this.options.idsPerRequest);
      const body = await this.get(`${BASE}/policies?${new URLSearchParams({ id: batch.join(',') }).toString()}`);
      let document: { total_policies?: unknown; policies?: unknown };
      try {
        document = JSON.parse(body) as typeof document;
      } catch (error) {
        throw new FetchError(`policies response is not valid JSON: ${(error as Error).message}`);
      }
      if (!Array.isArray(document.policies)) throw new FetchError('policies response has no "policies" list');
      if (typeof document.total_policies === 'number' && document.total_policies !== document.policies.length) {
        throw new FetchError(
          `policies response is incomplete: total_policies ${document.total_policies}, ${document.policies.length} listed`,
        );
      }
      for (const policy of document.policies) {
        const key = JSON.stringify(policy);
        if (seen.has(key)) continue;
        seen.add(key);
        policies.push(policy);
      }
    }
    return { file: 'policy-server policies', text: JSON.stringify({ total_policies: policies.length, policies }) };
  }
}
