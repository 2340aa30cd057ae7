// A contained command's standard input is a pipe of the runner's, never a descriptor of the caller's.
// The caller's own descriptor 0 may be open for writing too (a terminal, a socket, a file opened
// read-write): handed to the sandbox, it would be a way out past the output limit and the audit's
// output digest, and a terminal's ioctls with it. Reopening it read-only is not enough: inside,
// /proc/self/fd/0 reopens the same terminal read-write. So what the caller's input gives is copied.
import { fstatSync, readFileSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { Readable, Writable } from 'node:stream';

/** How long a copy that may not read its terminal yet (a job in the background) waits before it asks again. */
const FOREGROUND_POLL_MS = 200;

/**
 * Copies `source` into `pipe` (a sandbox's standard input) only as fast as the command reads it:
 * the source is paused while the pipe is full. The pipe is ended when the source ends, fails or
 * is destroyed (also when it had before), and the copy stops when the pipe closes (the sandbox is gone,
 * or its command closed its input). `mayRead`, when given, is asked before each (re)start of the
 * source; while it says no, the copy asks again later.
 *
 * The returned stop() (for when the run is over) detaches from the source and leaves it paused:
 * never ended, destroyed or changed otherwise, so the caller's input stays open and in its mode,
 * what the run did not take stays there for its next reader, and a paused process.stdin no
 * longer holds this process open.
 */
export function copyInput(source: Readable, pipe: Writable, mayRead?: () => boolean): () => void {
  if (source.readableEnded || source.destroyed) {
    pipe.end();
    return () => undefined;
  }
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const flow = () => {
    if (stopped || retry !== undefined) return;
    if (mayRead && !mayRead()) {
      // Unreferenced: the run's own sandbox keeps this process alive while the run lasts.
      retry = setTimeout(() => {
        retry = undefined;
        flow();
      }, FOREGROUND_POLL_MS).unref();
      return;
    }
    source.resume();
  };
  const onData = (chunk: Buffer | string) => {
    if (!pipe.write(chunk)) source.pause();
  };
  const onEnd = () => {
    stop();
    pipe.end();
  };
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(retry);
    source.off('data', onData).off('end', onEnd).off('error', onEnd).off('close', onEnd);
    pipe.off('drain', flow).off('close', stop);
    source.pause();
  };
  // Paused first: adding a 'data' listener would otherwise start the flow before mayRead is asked.
  source.pause();
  // A source destroyed without an end ('close' alone) ends the command's input all the same.
  source.on('data', onData).once('end', onEnd).once('error', onEnd).once('close', onEnd);
  pipe.on('drain', flow).once('close', stop);
  flow();
  return stop;
}

/** Whether a run is copying this process's standard input now. */
let callerInputTaken = false;

/**
 * Copies this process's standard input into `pipe`, as copyInput does. A terminal is read only
 * while this process is in its foreground: read from the background (`corral run … &`), it would
 * stop this whole process (SIGTTIN) at the first line typed at the shell, where a command that
 * never reads its input should run on. The terminal's mode is never changed. One run at a time
 * copies it: a run given it while another's copy is under way reads its end at once (two copies
 * would each be given every chunk, and the first to stop would pause the other's for good).
 */
export function copyCallerInput(pipe: Writable): () => void {
  if (callerInputTaken) {
    pipe.end();
    return () => undefined;
  }
  callerInputTaken = true;
  const stop = copyInput(process.stdin, pipe, isatty(0) ? inForeground : undefined);
  let released = false;
  return () => {
    stop();
    if (!released) callerInputTaken = false;
    released = true;
  };
}

/**
 * False while descriptor 0 is this process's controlling terminal and this process is not in the
 * terminal's foreground process group; true otherwise, and when that cannot be told. From
 * /proc/self/stat: pgrp, tty_nr and tpgid (proc(5)), after the command name, which may hold anything but ')'.
 */
function inForeground(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    const [, , pgrp, , ttyNr, tpgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return ttyNr === 0 || ttyNr !== fstatSync(0).rdev || tpgid === pgrp;
  } catch {
    return true;
  }
}
