// vxlan-policy-agent's two HTTP servers, as silk's CNI and the BOSH job call them: the force
// server (the CNI's calls on container create and delete; any method, plain-text bodies and
// status codes as VPA's handlers write them) and the debug server (/log-level,
// /iptables-c2c-logging, and /livez for monit). Each call runs a cycle and answers from its
// report: the rules it speaks of are in the kernel when it says 200.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { LEVELS, type Level, type Logger } from './logger.js';
import { liveness } from './http.js';
import type { AgentLoop } from './loop.js';
import type { CycleReport, Syncer } from './sync.js';

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly type?: string;
}

const text = (status: number, body: string): Answer => ({ status, body });
const json = (status: number, body: unknown): Answer => ({ status, body: `${JSON.stringify(body)}\n`, type: 'application/json' });

/** What went wrong in a cycle, in one line (nothing when it brought every family in line). */
function failure(report: CycleReport): string | undefined {
  if (report.status !== 'failed') return undefined;
  const reasons = report.problems.filter((problem) => problem.kind !== 'input').map((problem) => problem.message);
  return reasons.length > 0 ? reasons.join('; ') : 'the cycle failed';
}

export class VpaEndpoints {
  constructor(
    private readonly loop: AgentLoop,
    private readonly syncer: Syncer,
    private readonly log: Logger,
    private readonly enableAsgSyncing: boolean,
    /** When the container metadata last changed (epoch ms), if it can be known. */
    private readonly metadataChangedAt: () => Promise<number | undefined> = async () => undefined,
  ) {}

  /**
   * The CNI asks for a container's rules right after its poll-cycle call, whose cycle read the
   * metadata that names it: when the last cycle started after the metadata last changed and
   * brought the container's rules in line, they are live, and no second cycle is run.
   */
  private async alreadyLive(handle: string): Promise<boolean> {
    const last = this.loop.lastReport;
    if (last === undefined || last.status === 'failed' || !last.containers.includes(handle) || last.held.includes(handle))
      return false;
    const changedAt = await this.metadataChangedAt();
    return changedAt !== undefined && changedAt < last.startedAt;
  }

  /** GET /force-policy-poll-cycle: a cycle (the c2c policies, and whatever else changed). */
  async pollCycle(): Promise<Answer> {
    const why = failure(await this.loop.requestSync({ force: false }));
    return why === undefined ? text(200, '') : text(500, `failed to force policy poll cycle: ${why}`);
  }

  /** GET /force-asgs-for-container?container=H: 200 once H's rules are in the kernel in every family. */
  async asgsForContainer(handle: string | null): Promise<Answer> {
    const refused = this.refuse(handle);
    if (refused !== undefined) return refused;
    if (await this.alreadyLive(handle as string)) return text(200, `updated container ${handle}`);
    const report = await this.loop.requestSync({ force: false });
    const why = failure(report);
    if (why !== undefined) return text(500, `failed to update asgs for container ${handle}: ${why}`);
    // VPA answers an unknown container with 200, having nothing to do for it.
    if (!report.containers.includes(handle as string))
      this.log.log('warn', 'vpa.unknown_container', {
        container: handle,
        message: 'not in the container metadata: nothing to do',
      });
    else if (report.held.includes(handle as string))
      return text(
        500,
        `failed to update asgs for container ${handle}: its security groups do not compile; it is held on default deny (or its last rules)`,
      );
    return text(200, `updated container ${handle}`);
  }

  /** GET /force-orphaned-asgs-cleanup?container=H: a deleted container's chains go, at once. */
  async cleanup(handle: string | null): Promise<Answer> {
    const refused = this.refuse(handle);
    if (refused !== undefined) return refused;
    const report = await this.loop.requestSync({ force: false });
    const why = failure(report);
    if (why !== undefined) return text(500, `failed to cleanup ASGs for container ${handle}: ${why}`);
    if (report.containers.includes(handle as string))
      this.log.log('warn', 'vpa.cleanup_of_live_container', {
        container: handle,
        message: 'still in the container metadata: its chains stay until it is deleted there',
      });
    return text(200, `cleaned up ASGs for container ${handle}`);
  }

  /** POST /log-level with a level as its body (lager's: debug, info, error, fatal; and warn). */
  logLevel(body: string): Answer {
    const asked = body.trim();
    const level: Level | undefined =
      asked === 'fatal' ? 'error' : (LEVELS as readonly string[]).includes(asked) ? (asked as Level) : undefined;
    if (level === undefined) return text(400, `invalid log level ${JSON.stringify(asked)}: debug, info, warn, error or fatal`);
    this.log.setLevel?.(level);
    this.log.log('info', 'vpa.log_level', { level });
    return text(200, '');
  }

  /** GET/PUT /iptables-c2c-logging: {"enabled": bool}; a PUT is applied before it answers. */
  async c2cLogging(method: string | undefined, body: string): Promise<Answer> {
    if (method === 'PUT') {
      let enabled: unknown;
      try {
        enabled = (JSON.parse(body) as { enabled?: unknown } | null)?.enabled;
      } catch {
        return text(400, '{ "error": "decoding request body as json" }');
      }
      if (typeof enabled !== 'boolean') return text(400, `{ "error": "missing required key 'enabled'" }`);
      this.syncer.setC2cLogging(enabled);
      const why = failure(await this.loop.requestSync({ force: false }));
      if (why !== undefined) return json(500, { enabled: this.syncer.c2cLogging, error: why });
    }
    return json(200, { enabled: this.syncer.c2cLogging });
  }

  private refuse(handle: string | null): Answer | undefined {
    if (!this.enableAsgSyncing) return text(405, 'ASG syncing has been disabled administratively');
    if (handle === null || handle === '') return text(400, 'no container specified');
    return undefined;
  }
}

/** Read a request body, bounded (these bodies are a word or a small JSON object). */
function readBody(request: IncomingMessage, limit = 4096): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > limit) {
        reject(new Error(`request body over ${limit} bytes`));
        request.destroy();
      }
    });
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

function serve(
  host: string,
  port: number,
  route: (request: IncomingMessage, url: URL) => Promise<Answer | undefined> | Answer | undefined,
): Promise<Server> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const send = ({ status, body, type = 'text/plain; charset=utf-8' }: Answer) => {
      response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      response.end(body);
    };
    Promise.resolve()
      .then(() => route(request, url))
      .then(
        (answer) => send(answer ?? text(404, '404 page not found\n')),
        (error: unknown) => send(text(500, (error as Error).message)),
      );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** VPA's force server: the CNI's calls, whatever their method. */
export function startForceServer(endpoints: VpaEndpoints, host: string, port: number): Promise<Server> {
  return serve(host, port, (_request, url) => {
    const container = url.searchParams.get('container');
    switch (url.pathname) {
      case '/force-policy-poll-cycle':
        return endpoints.pollCycle();
      case '/force-asgs-for-container':
        return endpoints.asgsForContainer(container);
      case '/force-orphaned-asgs-cleanup':
        return endpoints.cleanup(container);
      default:
        return undefined;
    }
  });
}

/** VPA's debug server: run-time switches, and liveness for monit and the job's post-start. */
export function startDebugServer(endpoints: VpaEndpoints, loop: AgentLoop, host: string, port: number): Promise<Server> {
  return serve(host, port, async (request, url) => {
    switch (url.pathname) {
      case '/log-level':
        return request.method === 'POST' || request.method === 'PUT'
          ? endpoints.logLevel(await readBody(request))
          : text(405, 'POST a level: debug, info, warn, error or fatal');
      case '/iptables-c2c-logging':
        return endpoints.c2cLogging(request.method, request.method === 'PUT' ? await readBody(request) : '');
      case '/livez': {
        const { status, body } = liveness(loop);
        return json(status, body);
      }
      default:
        return undefined;
    }
  });
}
