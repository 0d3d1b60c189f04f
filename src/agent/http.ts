// The agent's local HTTP endpoint (loopback): /healthz, /livez, /metrics, POST /force-sync.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AgentLoop } from './loop.js';
import type { Metrics } from './metrics.js';

function send(response: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** A cycle running this long is stuck (a hung command): the process is not alive. */
export const STUCK_MS = 5 * 60_000;

/** Liveness, for monit and the like: the loop runs, healthy or degraded (a policy server down is no reason to restart). */
export function liveness(loop: AgentLoop): { status: number; body: Record<string, unknown> } {
  return loop.alive(STUCK_MS)
    ? { status: 200, body: { status: 'alive' } }
    : { status: 503, body: { status: 'stuck or stopped' } };
}

export function health(loop: AgentLoop): { status: number; body: Record<string, unknown> } {
  const report = loop.lastReport;
  const lastSuccess = loop.lastSuccessAt === undefined ? null : new Date(loop.lastSuccessAt).toISOString();
  if (report === undefined) return { status: 503, body: { status: 'starting', last_success: lastSuccess } };
  const reasons = report.problems.map(
    (problem) => `${problem.kind}${problem.family ? ` (IPv${problem.family})` : ''}: ${problem.message}`,
  );
  const ok = report.status !== 'failed' && reasons.length === 0;
  return {
    status: ok ? 200 : 503,
    body: { status: ok ? 'ok' : 'degraded', reasons, last_success: lastSuccess, last_cycle: report.status },
  };
}

async function forceSync(loop: AgentLoop, url: URL, response: ServerResponse): Promise<void> {
  const report = await loop.requestSync();
  const container = url.searchParams.get('container');
  const body = { status: report.status, families: report.families, problems: report.problems, held: report.held, ms: report.ms };
  if (container !== null) {
    if (!report.containers.includes(container))
      return send(response, 404, { ...body, error: `container ${container} is not in the metadata` });
    if (report.held.includes(container))
      return send(response, 503, {
        ...body,
        error: `container ${container} is held on default-deny or its last rules: its ASGs do not compile`,
      });
    const applied = report.problems.every((problem) => problem.kind === 'input');
    return send(response, applied ? 200 : 503, body);
  }
  send(response, report.status === 'failed' ? 503 : 200, body);
}

export function startHttp(loop: AgentLoop, metrics: Metrics, host: string, port: number): Promise<Server> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const route = `${request.method} ${url.pathname}`;
    if (route === 'GET /healthz') {
      const { status, body } = health(loop);
      return send(response, status, body);
    }
    if (route === 'GET /livez') {
      const { status, body } = liveness(loop);
      return send(response, status, body);
    }
    if (route === 'GET /metrics') {
      metrics.render().then(
        (text) => send(response, 200, text, metrics.contentType),
        (error: unknown) => send(response, 500, { error: (error as Error).message }),
      );
      return;
    }
    if (route === 'POST /force-sync') {
      forceSync(loop, url, response).catch((error: unknown) => send(response, 500, { error: (error as Error).message }));
      return;
    }
    const known = ['/healthz', '/livez', '/metrics', '/force-sync'].includes(url.pathname);
    send(response, known ? 405 : 404, { error: known ? `${request.method} is not allowed here` : 'not found' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
