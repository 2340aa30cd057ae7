// Waiting in a test for something another process, thread or timer brings about.

/** Resolves once `done()` holds, looking every 10 ms; throws, naming `what`, past `ms` (default 10 s). */
export async function until(what: string, done: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
