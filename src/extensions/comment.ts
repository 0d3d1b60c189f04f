// -m comment. The kernel keeps at most 255 bytes and iptables-save prints control
// characters raw (a newline would split the saved line), so text from input is made safe
// here, once, before it enters the IR: then what we render is what the kernel keeps.
import type { CommentMatch } from '../ir/matches.js';
import { quoteArgument } from '../extensions/quote.js';
import { type MatchExtension, optionsByName } from './extension.js';

export const COMMENT_MAX_BYTES = 255;

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// A lone surrogate has no UTF-8 form; Buffer writes U+FFFD for it, so the IR says so too.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Whether every character is printable ASCII (one byte, nothing to replace). */
function printableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return true;
}

/** Replace control characters by spaces and cut to `maxBytes` of UTF-8 on a character boundary. */
export function safeText(text: string, maxBytes: number): string {
  // Most text is short printable ASCII, one byte a character: nothing to replace or cut.
  if (text.length <= maxBytes && printableAscii(text)) return text;
  const clean = text.replace(CONTROL, ' ').replace(LONE_SURROGATE, '\ufffd');
  if (Buffer.byteLength(clean) <= maxBytes) return clean;
  let bytes = 0;
  let end = 0;
  for (const char of clean) {
    const size = Buffer.byteLength(char);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return clean.slice(0, end);
}

export function comment(text: string): CommentMatch {
  return { kind: 'comment', text: safeText(text, COMMENT_MAX_BYTES) };
}

export const commentExtension: MatchExtension<CommentMatch> = {
  module: 'comment',
  options: { comment: 1 },
  render(match) {
    return `-m comment --comment ${quoteArgument(match.text)}`;
  },
  parse(options) {
    const text = optionsByName(options, {})?.get('comment')?.values[0];
    // Read back exactly what the kernel holds (a comment cut at 255 bytes may end mid-character).
    return text === undefined ? undefined : { kind: 'comment', text };
  },
  test: () => true,
};
