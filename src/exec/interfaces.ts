// The interface each of a namespace's addresses is on (`ip -j addr`): how VPA's underlay_ips
// become the interfaces ASGs hold for.
import { DataplaneError } from './dataplane-error.js';
import { inNamespace } from './namespace.js';
import { defaultRunner, type Runner } from './process.js';

interface IpAddrEntry {
  readonly ifname?: string;
  readonly addr_info?: readonly { readonly local?: string }[];
}

export async function interfaceAddresses(
  namespace: string | undefined,
  run: Runner = defaultRunner,
): Promise<Map<string, string>> {
  const argv = inNamespace(namespace, ['ip', '-j', 'addr', 'show']);
  const result = await run(argv);
  if (result.code !== 0) throw new DataplaneError(`${argv.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  let entries: IpAddrEntry[];
  try {
    entries = JSON.parse(result.stdout) as IpAddrEntry[];
  } catch (error) {
    throw new DataplaneError(`${argv.join(' ')} printed what is not JSON: ${(error as Error).message}`);
  }
  const byAddress = new Map<string, string>();
  for (const entry of entries)
    for (const info of entry.addr_info ?? [])
      if (entry.ifname !== undefined && info.local !== undefined) byAddress.set(info.local, entry.ifname);
  return byAddress;
}
