// A policy server for tests: the internal API over HTTPS with mutual TLS on loopback, serving
// security groups in pages (keyset by position, like the real one by id), policies, and
// last_updated stamps, with faults on demand.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TestCertificates } from './certs.js';

export type Fault =
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'slow'; readonly ms: number }
  | { readonly kind: 'truncated' }
  | { readonly kind: 'missing-page' }
  | { readonly kind: 'hang-up' };

export class FakePolicyServer {
  securityGroups: unknown[] = [];
  policies: unknown[] = [];
  /** Bumped whenever the documents change; undefined: the *_last_updated endpoints 404. */
  stamp: number | undefined = 1;
  pageLimit = 2;
  fault: Fault | undefined;
  readonly requests: string[] = [];
  private server: Server | undefined;

  constructor(private readonly certificates: TestCertificates) {}

  get port(): number {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : 0;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  setDocuments(securityGroups: unknown[], policies: unknown[] = this.policies): void {
    this.securityGroups = securityGroups;
    this.policies = policies;
    if (this.stamp !== undefined) this.stamp++;
  }

  /** Listen on `port` (0: any free port; the same port again after stop(), to come back). */
  async start(port = this.lastPort): Promise<void> {
    this.server = createServer(
      {
        key: this.certificates.serverKey,
        cert: this.certificates.serverCert,
        ca: this.certificates.ca,
        requestCert: true,
        rejectUnauthorized: true,
        // A cell asks for all its spaces in one URL, as VPA does: Go's server takes 1 MB of headers.
        maxHeaderSize: 1 << 20,
      },
      (request, response) => void this.handle(request, response),
    );
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
    this.lastPort = this.port;
  }

  private lastPort = 0;

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://localhost');
    this.requests.push(`${url.pathname}${url.search}`);
    const fault = this.fault;
    if (fault?.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, fault.ms));
    if (fault?.kind === 'hang-up') return void request.socket.destroy();
    if (fault?.kind === 'status') return this.reply(response, fault.status, { error: 'injected' });
    const base = '/networking/v1/internal';
    switch (url.pathname) {
      case `${base}/security_groups_last_updated`:
      case `${base}/policies_last_updated`:
        return this.stamp === undefined
          ? this.reply(response, 404, { error: 'not found' })
          : this.reply(response, 200, this.stamp);
      case `${base}/security_groups`: {
        const from = Number(url.searchParams.get('from') ?? '1');
        const limit = Number(url.searchParams.get('limit') ?? '0') || this.securityGroups.length;
        const spaces = new Set((url.searchParams.get('space_guids') ?? '').split(',').filter(Boolean));
        const wanted = this.securityGroups.filter((group) => {
          const g = group as {
            staging_default?: boolean;
            running_default?: boolean;
            staging_space_guids?: string[];
            running_space_guids?: string[];
          };
          return (
            g.staging_default ||
            g.running_default ||
            [...(g.staging_space_guids ?? []), ...(g.running_space_guids ?? [])].some((space) => spaces.has(space))
          );
        });
        if (fault?.kind === 'missing-page' && from > 1) return this.reply(response, 404, { error: 'page gone' });
        const page = wanted.slice(from - 1, from - 1 + Math.min(limit, this.pageLimit));
        const next = from - 1 + page.length < wanted.length ? from + page.length : 0;
        return this.reply(response, 200, { next, security_groups: page });
      }
      case `${base}/policies`: {
        const ids = new Set((url.searchParams.get('id') ?? '').split(',').filter(Boolean));
        const matching = this.policies.filter((policy) => {
          const p = policy as { source: { id: string }; destination: { id: string } };
          return ids.has(p.source.id) || ids.has(p.destination.id);
        });
        return this.reply(response, 200, { total_policies: matching.length, policies: matching });
      }
      default:
        return this.reply(response, 404, { error: 'not found' });
    }
  }

  private reply(response: ServerResponse, status: number, body: unknown): void {
    let text = JSON.stringify(body);
    if (this.fault?.kind === 'truncated' && status === 200 && text.length > 10) text = text.slice(0, Math.floor(text.length / 2));
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(text);
  }
}
