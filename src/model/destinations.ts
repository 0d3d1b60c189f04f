// A rule's destination: one element or a comma-separated list (Cloud Controller with
// enable_comma_delimited_destinations and enable_ipv6 on), split later by family.
import { type AddressBlock, parseDestinationElement } from './address.js';

export const MAX_DESTINATIONS_PER_RULE = 6000;
const MAX_REPORTED_ERRORS = 10;

export interface ParsedDestinations {
  readonly blocks: AddressBlock[];
  readonly errors: string[];
}

export function parseDestinations(text: string): ParsedDestinations {
  if (text === '') return { blocks: [], errors: ['destination must not be empty'] };
  if (/\s/.test(text)) return { blocks: [], errors: ['destination must not contain whitespace'] };
  const elements = text.split(',');
  if (elements.length > MAX_DESTINATIONS_PER_RULE) {
    return {
      blocks: [],
      errors: [`maximum destinations per rule exceeded - must be under ${MAX_DESTINATIONS_PER_RULE} (has ${elements.length})`],
    };
  }
  const blocks: AddressBlock[] = [];
  const errors: string[] = [];
  let unreported = 0;
  for (const element of elements) {
    const error = element === '' ? 'empty destination specified in comma-delimited list' : undefined;
    const parsed = error === undefined ? parseDestinationElement(element) : undefined;
    if (parsed?.ok) {
      blocks.push(parsed.value);
      continue;
    }
    const message = error ?? (parsed && !parsed.ok ? parsed.error : '');
    if (errors.length < MAX_REPORTED_ERRORS) errors.push(message);
    else unreported++;
  }
  if (unreported > 0) errors.push(`... and ${unreported} more invalid destinations`);
  // An array that grew by push keeps room for 17 or more: this one lives as long as its rule.
  return { blocks: blocks.slice(), errors };
}
