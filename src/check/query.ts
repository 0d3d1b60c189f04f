// An operator's question ("can this container reach X?", "can X reach this container?") as the
// packet the kernel would see, and the built-in chain it enters.
import type { Container } from '../model/cell.js';
import { type Family, formatAddress, parseAddress } from '../model/address.js';
import { type Result, fail, ok } from '../model/result.js';
import type { Packet } from '../ir/packet.js';
import type { CellLinks } from './cell-links.js';

export type CheckProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6';

export interface CheckQuestion {
  /** A container handle (known from the metadata) or an address. */
  readonly container: string;
  /** The container's traffic to this address... */
  readonly to?: string;
  /** ...or this address's traffic to the container. */
  readonly from?: string;
  /** `to` is the cell itself (the INPUT chain), not a host behind it. */
  readonly toHost?: boolean;
  /** With `to`: the source address the container sends from, when not its own (link-local, forged). */
  readonly source?: string;
  readonly protocol: CheckProtocol;
  readonly port?: number;
  readonly sourcePort?: number;
  readonly icmp?: { readonly type: number; readonly code: number };
  /** The mark the packet arrives with (c2c traffic from other cells carries its source app's tag). */
  readonly mark?: number;
  readonly inInterface?: string;
  readonly outInterface?: string;
}

export interface CheckPacket {
  readonly packet: Packet;
  readonly hook: 'FORWARD' | 'INPUT';
  /** The container the question is about, when it is in the metadata. */
  readonly container?: Container;
  /** The question in words: "tcp 10.255.0.2 -> 192.0.2.10:443". */
  readonly summary: string;
}

function address(text: string, what: string): Result<{ family: Family; value: bigint }, string> {
  const parsed = parseAddress(text);
  return parsed.ok ? ok(parsed.value) : fail(`${what} ${JSON.stringify(text)} is not an IP address: ${parsed.error}`);
}

/** The question as a packet, given the cell's containers and the interfaces they and the outside use. */
export function packetFor(
  question: CheckQuestion,
  containers: readonly Container[],
  links: CellLinks,
): Result<CheckPacket, string> {
  if ((question.to === undefined) === (question.from === undefined))
    return fail('give exactly one of --to (from the container) and --from (to the container)');
  if (question.source !== undefined && question.to === undefined)
    return fail('--source goes with --to: the address the container sends from');
  const peerText = (question.to ?? question.from) as string;
  const peer = address(peerText, question.to !== undefined ? '--to' : '--from');
  if (!peer.ok) return peer;
  const family = peer.value.family;
  const ownAddress = (candidate: Container) => (family === 4 ? candidate.ipv4 : candidate.ipv6);
  const byHandle = containers.find((candidate) => candidate.handle === question.container);
  let own: bigint | undefined;
  let container = byHandle;
  if (byHandle !== undefined) {
    own = ownAddress(byHandle);
    if (own === undefined && question.source === undefined)
      return fail(`container ${byHandle.handle} has no IPv${family} address, and ${peerText} is IPv${family}`);
  } else {
    const literal = address(question.container, '--container');
    if (!literal.ok)
      return fail(
        `--container ${JSON.stringify(question.container)} is neither a container handle in the metadata nor an IP address`,
      );
    if (literal.value.family !== family)
      return fail(`--container ${question.container} and ${peerText} are of different families`);
    own = literal.value.value;
    container = containers.find((candidate) => ownAddress(candidate) === own);
  }
  if (question.source !== undefined) {
    const source = address(question.source, '--source');
    if (!source.ok) return source;
    if (source.value.family !== family) return fail(`--source ${question.source} and ${peerText} are of different families`);
    own = source.value.value;
  }
  const isIcmp = question.protocol === 'icmp' || question.protocol === 'icmpv6';
  if (question.protocol === 'icmp' && family !== 4) return fail('icmp is IPv4: use icmpv6 for an IPv6 address');
  if (question.protocol === 'icmpv6' && family !== 6) return fail('icmpv6 is IPv6: use icmp for an IPv4 address');
  if (!isIcmp && question.port === undefined) return fail(`--port is needed for ${question.protocol}`);
  if (isIcmp && question.port !== undefined) return fail(`--port does not apply to ${question.protocol} (use --icmp-type)`);

  const outbound = question.to !== undefined;
  const source = outbound ? (own as bigint) : peer.value.value;
  const destination = outbound ? peer.value.value : (own as bigint);
  // Traffic to another container of the cell does not leave by a host interface.
  const toLocalContainer = containers.some((candidate) => ownAddress(candidate) === destination);
  const outInterface =
    question.outInterface ?? (outbound && !question.toHost && !toLocalContainer ? links.hostInterface : undefined);
  // It comes in by the sending container's own interface, or from outside the cell.
  const sender = outbound ? container : containers.find((candidate) => ownAddress(candidate) === source);
  const inInterface =
    question.inInterface ?? (sender !== undefined ? links.interfaceOf(sender) : outbound ? undefined : links.outsideInterface);
  const icmp = question.icmp ?? { type: family === 4 ? 8 : 128, code: 0 };
  const packet: Packet = {
    family,
    source,
    destination,
    state: 'NEW',
    mark: question.mark ?? 0,
    ...(isIcmp
      ? { protocol: family === 4 ? 1 : 58, icmpType: icmp.type, icmpCode: icmp.code }
      : {
          protocol: question.protocol === 'tcp' ? 6 : 17,
          sourcePort: question.sourcePort ?? 40000,
          destinationPort: question.port as number,
        }),
    ...(inInterface !== undefined && { inInterface }),
    ...(outInterface !== undefined && { outInterface }),
  };
  const target = isIcmp
    ? `${formatAddress(family, destination)} (type ${icmp.type}/${icmp.code})`
    : `${family === 6 ? `[${formatAddress(family, destination)}]` : formatAddress(family, destination)}:${question.port}`;
  return ok({
    packet,
    hook: outbound && question.toHost ? 'INPUT' : 'FORWARD',
    ...(container !== undefined && { container }),
    summary: `${question.protocol} ${formatAddress(family, source)} -> ${target}`,
  });
}
