// Wiring the agent from its settings: source, dataplane, syncer, loop, HTTP endpoint. The
// process edge (signals, exit) stays in the CLI command.
import { readFile, stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import { defaultRunner, type Runner } from '../exec/process.js';
import type { Backend } from '../iptables/backend.js';
import { detectBackend } from '../iptables/dataplane.js';
import { hostDataplane } from '../reconcile/apply.js';
import { defaultPolicy, type HostDataplane, type ReconcilePolicy } from '../reconcile/family.js';
import { VERSION } from '../version.js';
import { startHttp } from './http.js';
import type { Logger } from './logger.js';
import { AgentLoop, type LoopOptions } from './loop.js';
import { Metrics } from './metrics.js';
import { PolicyServerClient } from './policy-server.js';
import type { AgentSettings, VpaMode } from './settings.js';
import { startDebugServer, startForceServer, VpaEndpoints } from './vpa-http.js';
import { FileSource, type PolicySource, PolicyServerSource } from './sources.js';
import { Syncer, type SyncOptions } from './sync.js';

export interface AgentEnvironment {
  readonly log: Logger;
  /** Runs iptables (tests wrap it); defaults to running it for real. */
  readonly run?: Runner;
  readonly now?: () => number;
}

async function sourceFor(settings: AgentSettings): Promise<{ source: PolicySource; close: () => void }> {
  if (settings.source.kind === 'files') return { source: new FileSource(settings.source.directory), close: () => undefined };
  const server = settings.source;
  const [ca, cert, key] = await Promise.all([readFile(server.caFile), readFile(server.certFile), readFile(server.keyFile)]);
  const client = new PolicyServerClient({ ...server, ca, cert, key });
  return { source: new PolicyServerSource(client, server.url, settings.asgIntervalMs), close: () => client.close() };
}

/** The cell's iptables and ipsets, on the backend its rules live in (unless the settings name one). */
export async function dataplaneFor(settings: AgentSettings, run: Runner): Promise<HostDataplane & { readonly backend: Backend }> {
  const backend = settings.backend === 'auto' ? await detectBackend(settings.netns, run) : settings.backend;
  const host = hostDataplane(backend, {
    ...(settings.netns !== undefined && { namespace: settings.netns }),
    run,
    waitSeconds: settings.lockWaitSeconds,
    ...(settings.lockFile !== undefined && { lock: { file: settings.lockFile, waitSeconds: settings.lockWaitSeconds } }),
  });
  return { ...host, backend };
}

/** When to read the kernel back: the backend's defaults, with the settings' intervals. */
function policyFor(settings: AgentSettings, backend: Backend): ReconcilePolicy {
  const policy = defaultPolicy(backend, settings.resyncIntervalMs);
  return settings.canaryIntervalMs === undefined ? policy : { ...policy, canaryIntervalMs: settings.canaryIntervalMs };
}

function syncOptions(
  settings: AgentSettings,
  source: PolicySource,
  dataplane: HostDataplane & { readonly backend: Backend },
  metrics: Metrics,
  environment: AgentEnvironment,
): SyncOptions {
  return {
    source,
    metadataPath: settings.containersFile,
    ...(settings.endpointsFile !== undefined && { endpointsPath: settings.endpointsFile }),
    ...(settings.asgcConfigFile !== undefined && { asgcConfigPath: settings.asgcConfigFile }),
    ...(settings.vpa && { baseConfig: { file: settings.vpa.configSource, document: settings.vpa.config } }),
    dataplane,
    families: settings.families,
    policy: policyFor(settings, dataplane.backend),
    now: environment.now ?? Date.now,
    log: environment.log,
    metrics,
  };
}

function loopOptions(settings: AgentSettings, log: Logger): LoopOptions {
  return { intervalMs: settings.intervalMs, jitter: settings.jitter, backoffMs: settings.backoffMs, log };
}

function portOf(server: Server | undefined): number | undefined {
  const address = server?.address();
  return address && typeof address === 'object' ? address.port : undefined;
}

async function startVpaServers(
  settings: AgentSettings & { readonly vpa: VpaMode },
  loop: AgentLoop,
  syncer: Syncer,
  log: Logger,
): Promise<{ readonly force?: Server; readonly debug?: Server }> {
  const { vpa } = settings;
  const metadataChangedAt = () =>
    stat(settings.containersFile).then(
      (status) => status.mtimeMs,
      () => undefined,
    );
  const endpoints = new VpaEndpoints(loop, syncer, log, vpa.enableAsgSyncing, metadataChangedAt);
  const force = vpa.forceListen && (await startForceServer(endpoints, vpa.forceListen.host, vpa.forceListen.port));
  const debug = vpa.debugListen && (await startDebugServer(endpoints, loop, vpa.debugListen.host, vpa.debugListen.port));
  return { ...(force && { force }), ...(debug && { debug }) };
}

export class Agent {
  private constructor(
    public settings: AgentSettings,
    readonly syncer: Syncer,
    readonly loop: AgentLoop,
    readonly metrics: Metrics,
    readonly dataplane: HostDataplane & { readonly backend: Backend },
    readonly server: Server | undefined,
    /** VPA's force and debug servers (--vpa-config). */
    readonly vpaServers: { readonly force?: Server; readonly debug?: Server },
    private closeSource: () => void,
    private readonly environment: AgentEnvironment,
  ) {}

  /** `loop: false` wires everything but runs no cycle by itself (asgc agent --once, tests). */
  static async start(settings: AgentSettings, environment: AgentEnvironment, { loop: runLoop = true } = {}): Promise<Agent> {
    const metrics = new Metrics(VERSION);
    const dataplane = await dataplaneFor(settings, environment.run ?? defaultRunner);
    const { source, close } = await sourceFor(settings);
    const syncer = new Syncer(syncOptions(settings, source, dataplane, metrics, environment));
    const loop = new AgentLoop(syncer, loopOptions(settings, environment.log));
    const server =
      settings.listen === undefined ? undefined : await startHttp(loop, metrics, settings.listen.host, settings.listen.port);
    const vpaServers =
      settings.vpa === undefined ? {} : await startVpaServers({ ...settings, vpa: settings.vpa }, loop, syncer, environment.log);
    const agent = new Agent(settings, syncer, loop, metrics, dataplane, server, vpaServers, close, environment);
    environment.log.log('info', 'agent.started', {
      policy: source.description,
      backend: dataplane.backend,
      families: settings.families,
      ...(settings.netns !== undefined && { netns: settings.netns }),
      ...(agent.port !== undefined && { listen: `${settings.listen?.host}:${agent.port}` }),
      ...(settings.vpa && { vpa: settings.vpa.file, vpaPorts: agent.vpaPorts }),
    });
    if (runLoop) loop.start();
    return agent;
  }

  /** The HTTP endpoint's port (useful when it was given as 0). */
  get port(): number | undefined {
    return portOf(this.server);
  }

  /** The ports VPA's force and debug servers listen on. */
  get vpaPorts(): { readonly force?: number; readonly debug?: number } {
    const [force, debug] = [portOf(this.vpaServers.force), portOf(this.vpaServers.debug)];
    return { ...(force !== undefined && { force }), ...(debug !== undefined && { debug }) };
  }

  /**
   * SIGHUP: settings read again; the source and the schedule change from the next cycle. The
   * syncer keeps what it applied and its last good documents; the HTTP endpoint and the
   * dataplane stay as started.
   */
  async reconfigure(settings: AgentSettings): Promise<void> {
    const { source, close } = await sourceFor(settings);
    this.closeSource();
    this.closeSource = close;
    this.settings = settings;
    this.syncer.reconfigure(syncOptions(settings, source, this.dataplane, this.metrics, this.environment));
    this.loop.reconfigure(loopOptions(settings, this.environment.log));
  }

  /** Stop after the running cycle, close the endpoint and the policy-server connections. */
  async close(): Promise<void> {
    await this.loop.stop();
    for (const server of [this.server, this.vpaServers.force, this.vpaServers.debug])
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    this.closeSource();
  }
}
