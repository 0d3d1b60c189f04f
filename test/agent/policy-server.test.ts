// The policy-server client against a real HTTPS server with mutual TLS on loopback.
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FetchError, PolicyServerClient } from '../../src/agent/policy-server.js';
import { PolicyServerSource } from '../../src/agent/sources.js';
import { makeCertificates, SERVER_NAME, type TestCertificates } from '../support/certs.js';
import { FakePolicyServer } from '../support/policy-server.js';

let certificates: TestCertificates;
let server: FakePolicyServer;

const group = (n: number, spaces: string[] = []) => ({
  guid: `g${n}`,
  name: `group-${n}`,
  rules: '[]',
  running_default: spaces.length === 0,
  staging_default: false,
  running_space_guids: spaces,
  staging_space_guids: [],
});

async function client(
  overrides: { cert?: string; key?: string; timeoutMs?: number; maxResponseBytes?: number; serverName?: string } = {},
) {
  return new PolicyServerClient({
    url: server.url,
    ca: certificates.ca,
    cert: await readFile(overrides.cert ?? certificates.clientCertFile),
    key: await readFile(overrides.key ?? certificates.clientKeyFile),
    serverName: overrides.serverName ?? SERVER_NAME,
    timeoutMs: overrides.timeoutMs ?? 2000,
    maxResponseBytes: overrides.maxResponseBytes ?? 1 << 20,
    pageLimit: 2,
    idsPerRequest: 2,
  });
}

beforeAll(async () => {
  certificates = await makeCertificates();
  server = new FakePolicyServer(certificates);
  await server.start();
}, 30_000);
afterAll(() => server.stop());
afterEach(() => {
  server.fault = undefined;
  server.stamp = 1;
  server.requests.length = 0;
});

describe('policy server client (mutual TLS)', () => {
  it('follows next/from through every page, sending limit and the spaces', async () => {
    server.setDocuments([group(1), group(2, ['s1']), group(3, ['s2']), group(4, ['s1']), group(5, ['other'])]);
    const c = await client();
    const document = await c.securityGroups(['s1', 's2']);
    c.close();
    const pages = JSON.parse(document.text) as { next: number; security_groups: { guid: string }[] }[];
    expect(pages.map((page) => page.next)).toEqual([3, 0]);
    expect(pages.flatMap((page) => page.security_groups.map((g) => g.guid))).toEqual(['g1', 'g2', 'g3', 'g4']);
    expect(server.requests).toEqual([
      '/networking/v1/internal/security_groups?limit=2&space_guids=s1%2Cs2',
      '/networking/v1/internal/security_groups?limit=2&space_guids=s1%2Cs2&from=3',
    ]);
  });

  it('asks for policies in batches of ids and merges them', async () => {
    const policy = (source: string, destination: string) => ({
      source: { id: source, tag: '0001' },
      destination: { id: destination, tag: '0002', protocol: 'tcp', ports: { start: 1, end: 2 } },
    });
    server.setDocuments([], [policy('a', 'b'), policy('c', 'd'), policy('e', 'f')]);
    const c = await client();
    const document = JSON.parse((await c.policies(['a', 'b', 'c'])).text) as { total_policies: number };
    expect(document.total_policies).toBe(2);
    expect(server.requests.filter((request) => request.includes('/policies?'))).toHaveLength(2);
    expect(JSON.parse((await c.policies([])).text)).toEqual({ total_policies: 0, policies: [] });
    c.close();
  });

  it('refuses a client certificate from another CA', async () => {
    const c = await client({ cert: certificates.rogueCertFile, key: certificates.rogueKeyFile });
    await expect(c.securityGroups([])).rejects.toBeInstanceOf(FetchError);
    c.close();
  });

  it('refuses a server whose certificate does not carry the expected name', async () => {
    const c = await client({ serverName: 'someone-else.test' });
    await expect(c.securityGroups([])).rejects.toThrow(/altnames|Hostname|certificate/i);
    c.close();
  });

  it.each([
    [{ kind: 'status', status: 500 } as const, /HTTP 500/],
    [{ kind: 'slow', ms: 1500 } as const, /no answer within 300 ms|timed out/],
    [{ kind: 'truncated' } as const, /not valid JSON/],
    [{ kind: 'hang-up' } as const, /socket hang up|ECONNRESET/],
  ])('fails clearly on %j', async (fault, message) => {
    server.setDocuments([group(1), group(2), group(3)]);
    server.fault = fault;
    const c = await client({ timeoutMs: 300 });
    await expect(c.securityGroups([])).rejects.toThrow(message);
    c.close();
  });

  it('fails when a page disappears in the middle of paging', async () => {
    server.setDocuments([group(1), group(2), group(3)]);
    server.fault = { kind: 'missing-page' };
    const c = await client();
    await expect(c.securityGroups([])).rejects.toThrow(/HTTP 404/);
    c.close();
  });

  it('bounds the size of a response', async () => {
    server.setDocuments(Array.from({ length: 2 }, (_, n) => ({ ...group(n), name: 'x'.repeat(5000) })));
    const c = await client({ maxResponseBytes: 4096 });
    await expect(c.securityGroups([])).rejects.toThrow(/larger than 4096 bytes/);
    c.close();
  });

  it('fetches again only when a last_updated stamp moves or the cell changes', async () => {
    server.setDocuments([group(1)]);
    const c = await client();
    const source = new PolicyServerSource(c, server.url);
    const query = { spaceGuids: ['s1'], ids: ['app'] };
    await source.fetch(query, false);
    const count = () => server.requests.filter((request) => !request.includes('last_updated')).length;
    const first = count();
    await source.fetch(query, false);
    expect(count()).toBe(first);
    await source.fetch({ ...query, spaceGuids: ['s1', 's2'] }, false);
    expect(count()).toBeGreaterThan(first);
    const second = count();
    server.setDocuments([group(1), group(2)]);
    await source.fetch({ ...query, spaceGuids: ['s1', 's2'] }, false);
    expect(count()).toBeGreaterThan(second);
    // Without the stamp endpoints, every cycle fetches.
    server.stamp = undefined;
    const third = count();
    await source.fetch({ ...query, spaceGuids: ['s1', 's2'] }, false);
    expect(count()).toBeGreaterThan(third);
    c.close();
  });
});
