// The one script file a run's code comes from, as its node bound it by
// content: what lets an approver allow such a run always. A run of code
// from a file that may change is otherwise allowed once only (runs-code.ts,
// store.ts): a grant for `python3 build.py` would cover whatever build.py
// holds at each later run. Once the node has bound build.py by its sha256,
// that sha256 is part of the action's digest (canonical.ts actionDigest), so
// a grant for the digest covers build.py only while it holds that content:
// rewritten, the run is another action, asked for anew.
//
// Only the file is bound, not what it reads besides (a module it imports, a
// file it sources): the approver is shown the one file.
import { canonicalRun, type CanonicalRun, type FileOperand } from '../exec/canonical.ts';
import { runsCode } from './runs-code.ts';

/**
 * A node's mutableFileOperand (systemRunPlan's), copied, when it binds word
 * `argvIndex` of the run: `{argvIndex, path, sha256}`, the path absolute and
 * the sha256 64 lowercase hex digits. Anything else (null, another word,
 * malformed) is undefined: nothing the run could be bound to.
 */
export function boundOperand(given: unknown, argvIndex: number): FileOperand | undefined {
  if (given === null || typeof given !== 'object' || Array.isArray(given)) return undefined;
  const { argvIndex: index, path, sha256 } = given as Record<string, unknown>;
  if (index !== argvIndex) return undefined;
  if (typeof path !== 'string' || !path.startsWith('/') || path.length > 4096 || path.includes('\0') || !path.isWellFormed()) return undefined;
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
  return { argvIndex, path, sha256 };
}

/**
 * The script an approval's action (a run as the gateway stores it: argv,
 * cwd, env, mutableFileOperand) is bound to, when that file is the
 * only code of the run its argv does not show: the run itself runs one script
 * file (runsCode's numeric operand: `python3 build.py`, `./deploy.sh`), its
 * node bound that word (mutableFileOperand at that index), no other command
 * of the run runs code from elsewhere, and nothing of it is opaque (an
 * LD_PRELOAD or the like in its environment loads code from another file).
 * Undefined for anything else: inline code (`python3 -c`), a build tool's
 * recipes (`make`, `npm test`), several scripts in one chain, a run its node
 * did not bind. Pure; never throws.
 */
export function scriptBoundByContent(action: Record<string, unknown>): FileOperand | undefined {
  const { argv, cwd, env } = action;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) return undefined;
  const argvIndex = runsCode(argv)?.operand;
  if (typeof argvIndex !== 'number') return undefined;
  const operand = boundOperand(action.mutableFileOperand, argvIndex);
  if (operand === undefined) return undefined;
  let run: CanonicalRun;
  try {
    run = canonicalRun({ command: argv, cwd: typeof cwd === 'string' ? cwd : null, env: env !== null && typeof env === 'object' && !Array.isArray(env) ? (env as Record<string, string>) : {} });
  } catch {
    return undefined;
  }
  // The run's own argv is its one command that runs code from a file: no wrapper looked through to others.
  const flagged = run.commands.filter((command) => runsCode(command) !== null);
  if (run.opaque || flagged.length !== 1 || JSON.stringify(flagged[0]) !== JSON.stringify(argv)) return undefined;
  return operand;
}
