// Why a file named on the command line could not be read, in words a message
// that already names the file can end with.

/**
 * What kept a file from being read: Node's own message repeats the path and
 * speaks in errno names (`ENOENT: no such file or directory, open '…'`).
 * Any other failure keeps Node's message, which is all there is to say.
 */
export function fileProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'there is no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'you may not read it';
  if (code === 'EISDIR') return 'it is a directory, not a file';
  return (error as Error).message;
}
