// An argv as one line a person can read back unambiguously: each argument
// quoted as a POSIX shell would need it, so that `printf 'a b'` and
// `printf a b` never read the same. (Invisible characters are for whoever
// shows the line to spell out: the console and the CLI do.)

/** `argv` joined by spaces, each argument that is not plain quoted for a POSIX shell. */
export function commandLine(argv: readonly unknown[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(String(a)) ? String(a) : `'${String(a).replaceAll("'", `'\\''`)}'`)).join(' ');
}
