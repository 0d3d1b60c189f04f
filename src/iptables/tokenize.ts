// Split one iptables-restore line into arguments exactly as iptables-restore does
// (xshared.c add_param_to_argv): whitespace separates; a double quote opens a quoted part in
// which a backslash escapes the next character; a closing quote ends the argument; "" is an
// empty argument; single quotes and backslashes outside quotes are ordinary characters.
export function tokenizeRestoreLine(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let quoteOpen = false;
  let escaped = false;
  let quoted = false;
  const finish = () => {
    args.push(current);
    current = '';
    quoted = false;
  };
  for (const char of line) {
    if (quoteOpen) {
      if (escaped) {
        current += char;
        escaped = false;
      } else if (char === '\\') {
        escaped = true;
      } else if (char === '"') {
        quoteOpen = false;
        finish();
      } else {
        current += char;
      }
      continue;
    }
    if (char === '"') {
      quoteOpen = true;
      quoted = true;
    } else if (char === ' ' || char === '\t' || char === '\n') {
      if (current !== '' || quoted) finish();
    } else {
      current += char;
    }
  }
  if (current !== '') args.push(current);
  return args;
}
