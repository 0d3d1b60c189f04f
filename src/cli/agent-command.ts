// asgc agent: the sidecar. Every setting is a key of the --config file and a flag.
import { type Command, Option } from 'commander';
import { setFlagsFromString } from 'node:v8';
import { Agent } from '../agent/agent.js';
import { JsonLogger, type Level } from '../agent/logger.js';
import { agentSettings, type AgentSettings, type RawAgentSettings } from '../agent/settings.js';
import { type VpaSettings, vpaSettings } from '../agent/vpa-config.js';
import { interfaceAddresses } from '../exec/interfaces.js';
import { readTextFile } from '../exec/text-file.js';
import { existsSync } from 'node:fs';
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
  asgInterval?: string;
  resyncInterval?: string;
  canaryInterval?: string;
  jitter?: string;
  family?: Family;
  netns?: string;
  backend?: 'nft' | 'legacy';
  listen?: string;
  lockWait?: string;
  lockFile?: string;
  logLevel?: Level;
  vpaConfig?: string;
  cniConfig?: string;
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
    ['asg_interval_seconds', number(flags.asgInterval)],
    ['resync_interval_seconds', number(flags.resyncInterval)],
    ['canary_interval_seconds', number(flags.canaryInterval)],
    ['jitter', number(flags.jitter)],
    ['backoff_seconds', number(flags.backoff)],
    ['families', flags.family === undefined ? undefined : [flags.family]],
    ['netns', flags.netns],
    ['backend', flags.backend],
    ['listen', flags.listen],
    ['lock_wait_seconds', number(flags.lockWait)],
    ['lock_file', flags.lockFile],
    ['log_level', flags.logLevel],
    ['vpa_config_file', flags.vpaConfig],
    ['cni_config_file', flags.cniConfig],
  ];
  for (const [key, value] of simple) if (value !== undefined) (raw as Record<string, unknown>)[key] = value;
  return raw;
}

/** silk-cni's conflist where the BOSH job renders it: read in VPA mode when it exists. */
const CNI_CONFLIST = '/var/vcap/jobs/silk-cni/config/cni/cni-wrapper-plugin.conflist';

async function readJson(file: string): Promise<{ document?: unknown; error?: string }> {
  const text = await readTextFile(file);
  if (!text.ok) return { error: formatInputError({ file, pointer: '', message: text.error.message }) };
  const parsed = parseJson(text.value, file);
  return parsed.ok ? { document: parsed.value } : { error: formatInputError(parsed.error) };
}

/** VPA's file (and the CNI's conflist) as settings: the files read, certificates and interfaces looked up here. */
async function loadVpa(
  file: string,
  cniFile: string | undefined,
  netns: string | undefined,
): Promise<{ vpa?: VpaSettings; errors: string[] }> {
  const vpa = await readJson(file);
  if (vpa.error !== undefined) return { errors: [vpa.error] };
  const conflistFile = cniFile ?? (existsSync(CNI_CONFLIST) ? CNI_CONFLIST : undefined);
  const conflist = conflistFile === undefined ? undefined : await readJson(conflistFile);
  if (conflist?.error !== undefined) return { errors: [conflist.error] };
  const named = vpa.document as Record<string, unknown> | undefined;
  const certificates = ['ca_cert_file', 'client_cert_file', 'client_key_file'].flatMap((key) =>
    typeof named?.[key] === 'string' ? [named[key] as string] : [],
  );
  const missingFiles = new Set(certificates.filter((path) => !existsSync(path)));
  let interfaceOf: Map<string, string>;
  try {
    interfaceOf = await interfaceAddresses(netns);
  } catch (error) {
    return { errors: [`${file}: /underlay_ips: cannot look up the cell's interfaces: ${(error as Error).message}`] };
  }
  const result = vpaSettings(
    vpa.document,
    file,
    { missingFiles, interfaceOf },
    conflistFile === undefined ? undefined : { document: conflist?.document, file: conflistFile },
  );
  return result.ok ? { vpa: result.value, errors: [] } : { errors: result.error.map(formatInputError) };
}

/** The agent's settings from its files and flags, as `asgc agent` starts with them. */
export async function loadSettings(flags: AgentFlags): Promise<{ settings?: AgentSettings; notes: string[]; errors: string[] }> {
  let document: Record<string, unknown> | undefined;
  if (flags.config !== undefined) {
    const read = await readJson(flags.config);
    if (read.error !== undefined) return { notes: [], errors: [read.error] };
    document = read.document as Record<string, unknown>;
  }
  const raw = toRaw(flags);
  const fromFile = (key: keyof RawAgentSettings) => (typeof document?.[key] === 'string' ? (document[key] as string) : undefined);
  const vpaFile = raw.vpa_config_file ?? fromFile('vpa_config_file');
  let vpa: VpaSettings | undefined;
  if (vpaFile !== undefined) {
    const loaded = await loadVpa(vpaFile, raw.cni_config_file ?? fromFile('cni_config_file'), raw.netns ?? fromFile('netns'));
    if (loaded.vpa === undefined) return { notes: [], errors: loaded.errors };
    vpa = loaded.vpa;
  }
  // VPA's file first, asgc's settings file over it, the flags over both.
  const base =
    vpa === undefined
      ? document
      : { ...vpa.raw, ...document, policy_server: { ...vpa.raw.policy_server, ...(document?.policy_server as object) } };
  const result = agentSettings(base, raw, flags.config ?? vpaFile ?? 'command line', vpa?.mode);
  return result.ok
    ? { settings: result.value, notes: vpa?.notes.slice() ?? [], errors: [] }
    : { notes: [], errors: result.error.map(formatInputError) };
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
    .option('--asg-interval <seconds>', 'time between checks of the security groups (default: every cycle)')
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
    .option('--lock-wait <seconds>', 'how long a restore waits for the xtables lock and the --lock-file (default 10)')
    .option('--lock-file <file>', 'hold this flock around every restore and ipset change (shared with the CNI and garden)')
    .option('--vpa-config <file>', 'run in place of vxlan-policy-agent, configured by its vxlan-policy-agent.json')
    .option(
      '--cni-config <file>',
      "with --vpa-config: silk-cni's cni-wrapper-plugin.conflist (DNS servers, host services, ingress tag; default: the job's path when it exists)",
    )
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
      const source = loaded.settings.vpa?.logSource;
      const log = new JsonLogger(
        (line) => io.stdout(line),
        loaded.settings.logLevel,
        undefined,
        source === undefined ? {} : { source: `${source}.asgc` },
      );
      for (const note of loaded.notes) log.log('warn', 'agent.settings_note', { message: note });
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
