// asgc agent: the sidecar. Every setting is a key of the --config file and a flag.
import { type Command, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { Agent } from '../agent/agent.js';
import { JsonLogger, type Level } from '../agent/logger.js';
import { agentSettings, type AgentSettings, type RawAgentSettings } from '../agent/settings.js';
import { formatInputError } from '../ingest/input-error.js';
import { parseJson } from '../ingest/json.js';
import type { Family } from '../model/address.js';
import { type CommandContext, EXIT, parseBackend, parseFamily } from './common.js';

export interface AgentFlags {
  config?: string;
  scenarioDir?: string;
  policyServerUrl?: string;
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
  timeout?: string;
  maxResponseMb?: string;
  pageLimit?: string;
  idsPerRequest?: string;
  backoff?: string;
  containers?: string;
  endpoints?: string;
  asgcConfig?: string;
  interval?: string;
  resyncInterval?: string;
  canaryInterval?: string;
  jitter?: string;
  family?: Family;
  netns?: string;
  backend?: 'nft' | 'legacy';
  listen?: string;
  lockWait?: string;
  logLevel?: Level;
  once?: boolean;
}

/** Flags -> the settings file's keys (so both are checked by one schema). */
export function toRaw(flags: AgentFlags): RawAgentSettings {
  const raw: RawAgentSettings = {};
  const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  if (flags.scenarioDir !== undefined) raw.scenario_dir = flags.scenarioDir;
  const server = {
    ...(flags.policyServerUrl !== undefined && { url: flags.policyServerUrl }),
    ...(flags.ca !== undefined && { ca_file: flags.ca }),
    ...(flags.cert !== undefined && { cert_file: flags.cert }),
    ...(flags.key !== undefined && { key_file: flags.key }),
    ...(flags.serverName !== undefined && { server_name: flags.serverName }),
    ...(flags.timeout !== undefined && { timeout_seconds: number(flags.timeout) as number }),
    ...(flags.maxResponseMb !== undefined && { max_response_mb: number(flags.maxResponseMb) as number }),
    ...(flags.pageLimit !== undefined && { page_limit: number(flags.pageLimit) as number }),
    ...(flags.idsPerRequest !== undefined && { ids_per_request: number(flags.idsPerRequest) as number }),
  };
  if (Object.keys(server).length > 0) raw.policy_server = server;
  const simple: [keyof RawAgentSettings, unknown][] = [
    ['containers_file', flags.containers],
    ['endpoints_file', flags.endpoints],
    ['asgc_config_file', flags.asgcConfig],
    ['interval_seconds', number(flags.interval)],
    ['resync_interval_seconds', number(flags.resyncInterval)],
    ['canary_interval_seconds', number(flags.canaryInterval)],
    ['jitter', number(flags.jitter)],
    ['backoff_seconds', number(flags.backoff)],
    ['families', flags.family === undefined ? undefined : [flags.family]],
    ['netns', flags.netns],
    ['backend', flags.backend],
    ['listen', flags.listen],
    ['lock_wait_seconds', number(flags.lockWait)],
    ['log_level', flags.logLevel],
  ];
  for (const [key, value] of simple) if (value !== undefined) (raw as Record<string, unknown>)[key] = value;
  return raw;
}

async function loadSettings(flags: AgentFlags): Promise<{ settings?: AgentSettings; errors: string[] }> {
  let document: unknown;
  if (flags.config !== undefined) {
    let text: string;
    try {
      text = await readFile(flags.config, 'utf8');
    } catch (error) {
      return { errors: [`${flags.config}: cannot be read: ${(error as Error).message}`] };
    }
    const parsed = parseJson(text, flags.config);
    if (!parsed.ok) return { errors: [formatInputError(parsed.error)] };
    document = parsed.value;
  }
  const result = agentSettings(document, toRaw(flags), flags.config ?? 'command line');
  return result.ok ? { settings: result.value, errors: [] } : { errors: result.error.map(formatInputError) };
}

export function addAgentCommand(program: Command, { io, setExit }: CommandContext): void {
  program
    .command('agent')
    .description("keep this cell's iptables and ip6tables in sync with the policy, on a loop (a sidecar)")
    .option('--config <file>', 'settings file (JSON); every key can also be given as a flag, and flags win')
    .option('--scenario-dir <dir>', 'source: a scenario directory, re-read every cycle')
    .option(
      '--policy-server-url <url>',
      'source: the policy server internal API, e.g. https://policy-server.service.cf.internal:4003',
    )
    .option('--ca <file>', "CA that signed the policy server's certificate")
    .option('--cert <file>', 'client certificate (mutual TLS)')
    .option('--key <file>', 'client key')
    .option('--server-name <name>', "name the policy server's certificate must carry")
    .option('--timeout <seconds>', 'timeout of each policy-server request (default 10)')
    .option('--max-response-mb <n>', 'largest policy-server response accepted, in MiB (default 64)')
    .option('--page-limit <n>', 'security groups per page asked of the policy server (default 5000)')
    .option('--ids-per-request <n>', 'app and space GUIDs per policies request (default 100)')
    .option('--containers <file>', 'container metadata (silk datastore), re-read every cycle')
    .option('--endpoints <file>', 'IPv6 addresses of each app (IPv6 c2c), re-read every cycle')
    .option('--asgc-config <file>', 'asgc configuration (config.json format), re-read every cycle')
    .option('--interval <seconds>', 'time between cycles (default 60)')
    .option('--resync-interval <seconds>', 'longest time without reading the tables back (default 600)')
    .option(
      '--canary-interval <seconds>',
      'how often an idle cycle checks the hook chains (default: every cycle on nf_tables, 30 on legacy)',
    )
    .option('--jitter <fraction>', 'random spread of the interval, 0 to 0.5 (default 0.1)')
    .option('--backoff <seconds>', 'first retry delay after a failed cycle, doubling up to the interval (default 1)')
    .addOption(new Option('--family <4|6>', 'only this family (default: both)').argParser(parseFamily))
    .option('--netns <name>', 'the network namespace whose tables to manage')
    .addOption(new Option('--backend <nft|legacy>', 'iptables backend (default: where the rules live)').argParser(parseBackend))
    .option('--listen <host:port>', 'local HTTP endpoint, "" for none (default 127.0.0.1:9180)')
    .option('--lock-wait <seconds>', 'how long iptables-restore waits for the xtables lock (default 10)')
    .addOption(new Option('--log-level <level>', 'debug, info, warn or error').choices(['debug', 'info', 'warn', 'error']))
    .option('--once', 'run one cycle, print its report and exit (0 in sync, 4 otherwise)')
    .action(async (flags: AgentFlags) => {
      // A sidecar's memory is taken from the apps: let V8's heap grow 20% over what is live
      // before collecting, not the default 50% or more (measured: 236 MB instead of 300 to 400
      // MB at 1,000 containers, no slower). The young generation's size is fixed at start-up:
      // NODE_OPTIONS=--max-semi-space-size=2, set where the agent is started, takes another
      // 30 MB off.
      setFlagsFromString('--heap-growing-percent=20');
      const loaded = await loadSettings(flags);
      if (loaded.settings === undefined) {
        io.stderr(loaded.errors.map((line) => `${line}\n`).join(''));
        return setExit(EXIT.invalid);
      }
      const log = new JsonLogger((line) => io.stdout(line), loaded.settings.logLevel);
      // One cycle needs no HTTP endpoint.
      const { listen: _unused, ...withoutEndpoint } = loaded.settings;
      const settings: AgentSettings = flags.once ? withoutEndpoint : loaded.settings;
      const agent = await Agent.start(settings, { log }, { loop: !flags.once });
      if (flags.once) {
        const report = await agent.syncer.runCycle(true);
        await agent.close();
        io.stderr(
          `${JSON.stringify({ status: report.status, families: report.families, problems: report.problems, held: report.held })}\n`,
        );
        return setExit(report.status === 'failed' ? EXIT.dataplane : EXIT.ok);
      }
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.log('info', 'agent.stopping', { signal });
          process.off('SIGHUP', reload);
          agent.close().then(resolve, resolve);
        };
        const reload = () => {
          loadSettings(flags).then(
            async (next) => {
              if (next.settings === undefined) return log.log('error', 'agent.reload_failed', { errors: next.errors });
              await agent.reconfigure(next.settings);
              log.log('info', 'agent.reloaded', {});
            },
            (error: unknown) => log.log('error', 'agent.reload_failed', { errors: [(error as Error).message] }),
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        process.on('SIGHUP', reload);
      });
      log.log('info', 'agent.stopped', {});
      setExit(EXIT.ok);
    });
}
