import { createHash } from 'node:crypto';
import { readdirSync, statSync, type Dirent } from 'node:fs';
import { PolicyError, type PolicyIssue } from './errors.ts';
import { cedar, describeCedarError, lineAt, lineIndex, type DetailedError, type PolicyJson } from './lib/cedar.ts';
import { closeHeldDir, entryPath, openHeldDir, readRegularFile, stillHeld, utf8Text, type HeldDir } from './lib/files.ts';
import { corralSchema, type CorralSchema } from './schema.ts';

/** One Cedar policy as loaded: where it came from, what it says, how Corral reads its annotations. */
export interface LoadedPolicy {
  /** `@id("…")` when given, else `file:line`. Unique in its set. */
  readonly id: string;
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly effect: 'permit' | 'forbid';
  /** `@approval("required")`: a satisfied permit asks a human instead of allowing. */
  readonly approval: boolean;
  /** `@quorum("N")`: distinct approvers needed (1 unless given). */
  readonly quorum: number;
  /** `@reason("…")`: the sentence a decision made by this policy shows. */
  readonly reason?: string;
  readonly json: PolicyJson;
}

/** A validated, immutable set of policies. */
export interface PolicySet {
  readonly policies: readonly LoadedPolicy[];
  /** SHA-256 over ids, files and texts: changes whenever any policy does. */
  readonly fingerprint: string;
}

/** A policy source: a file's name (relative, for messages) and its text. */
export interface PolicySource {
  file: string;
  text: string;
}

/** At most this much policy text is read from a directory: the gateway's limit for a whole set. */
const MAX_DIR_BYTES = 1024 * 1024;

/** At most this many levels of subdirectories are read below a policy directory. */
const MAX_DIR_DEPTH = 32;

/**
 * Reads every `*.cedar` file under `dir` (recursively, sorted) and loads them
 * as one set. Throws as readPolicyDir, or POLICY_SET_INVALID with every issue.
 */
export function loadPolicyDir(dir: string, schema: CorralSchema = corralSchema()): PolicySet {
  return loadPolicies(readPolicyDir(dir), schema);
}

/**
 * The files under `dir` (recursively, sorted by their `/`-separated path
 * relative to it) whose names end with one of `suffixes`, read as one version
 * of the directory. `dir` is opened once (a link to it, as Corral's activation
 * swaps, is followed then and only then) and everything inside is opened
 * through that handle, one name at a time, never following a link: a link
 * swapped in for `dir`, for a directory above it or for a subdirectory while
 * it is read cannot mix files of two versions or bring in files from outside.
 * Throws POLICY_UNREADABLE naming the path — also for a symbolic link with
 * such a name or to a directory, such a file that is not a regular file, a
 * subdirectory replaced while it is read, subdirectories nested more than
 * 32 deep, or more than 1 MiB in all — and
 * POLICY_SET_INVALID naming the line and column of each file's first byte
 * that is not UTF-8.
 */
export function readPolicyDir(dir: string, suffixes: readonly string[] = ['.cedar']): PolicySource[] {
  const top = openHeldDir({ path: dir }, dir);
  const read: { file: string; bytes: Buffer }[] = [];
  try {
    readTree(top, '', suffixes, read, { left: MAX_DIR_BYTES });
  } finally {
    closeHeldDir(top);
  }
  const sources: PolicySource[] = [];
  const issues: PolicyIssue[] = [];
  for (const { file, bytes } of read.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    const decoded = utf8Text(bytes);
    if ('text' in decoded) {
      sources.push({ file, text: decoded.text });
      continue;
    }
    const { line, column } = lineAt(bytes.toString('utf8'), decoded.badByte);
    issues.push({ file, line, column, message: `byte ${decoded.badByte} is not UTF-8; save the file as UTF-8 text` });
  }
  if (issues.length > 0) throw new PolicyError('POLICY_SET_INVALID', `the policy set is invalid (${issues.length} file${issues.length === 1 ? ' is' : 's are'} not UTF-8)`, { issues });
  return sources;
}

/**
 * Reads the files named with one of `suffixes` in the held directory `dir`
 * (called `sub` relative to the top, `/`-separated) and below, into `read`.
 * A symbolic link is followed nowhere: one to a directory could lead out of
 * it or loop, one with such a name could name anything; both are refused
 * rather than skipped, since a skipped file may hold the forbid that mattered.
 * A subdirectory is held open only while it is read.
 */
function readTree(dir: HeldDir, sub: string, suffixes: readonly string[], read: { file: string; bytes: Buffer }[], budget: { left: number }): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(entryPath(dir, '.'), { withFileTypes: true });
  } catch (error) {
    throw new PolicyError('POLICY_UNREADABLE', `cannot list the directory ${dir.name}`, { cause: error });
  }
  for (const entry of entries) {
    const file = sub === '' ? entry.name : `${sub}/${entry.name}`;
    const named = suffixes.some((s) => entry.name.endsWith(s));
    if (entry.isDirectory()) {
      // Each level is a frame of this recursion and a descriptor held: thousands overflowed the stack.
      if (file.split('/').length > MAX_DIR_DEPTH) throw new PolicyError('POLICY_UNREADABLE', `${file} is nested more than ${MAX_DIR_DEPTH} directories deep in the policy directory`);
      const inner = openHeldDir({ parent: dir, entry: entry.name }, file);
      try {
        readTree(inner, file, suffixes, read, budget);
      } finally {
        closeHeldDir(inner);
      }
    } else if (entry.isSymbolicLink() && (named || linksToDirectory(dir, entry.name, file))) {
      throw new PolicyError('POLICY_UNREADABLE', `${file} is a symbolic link; policies are read only from files inside the policy directory`);
    } else if (named) {
      const bytes = readRegularFile(entryPath(dir, entry.name), file, budget.left, { noFollow: true });
      budget.left -= bytes.length;
      read.push({ file, bytes });
    }
  }
  stillHeld(dir);
}

/**
 * Whether the symbolic link `entry` of `dir` (called `file`) leads to a
 * directory; false when it leads nowhere. Throws POLICY_UNREADABLE naming
 * `file` when where it leads cannot be told (a loop of links, a target
 * that cannot be searched): it might be a directory of policies.
 */
function linksToDirectory(dir: HeldDir, entry: string, file: string): boolean {
  try {
    return statSync(entryPath(dir, entry), { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ELOOP' ? 'that leads round in a loop' : 'that cannot be followed';
    throw new PolicyError('POLICY_UNREADABLE', `${file} is a symbolic link ${why}; policies are read only from files inside the policy directory`, { cause: error });
  }
}

const ANNOTATIONS = new Set(['id', 'approval', 'quorum', 'reason']);
/** What an @id may not hold: quotes and backslashes, controls, line and paragraph separators, invisible formatting (bidirectional overrides, zero-width characters). */
const UNFIT_ID = /["\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const MAX_QUORUM = 10;

/**
 * Parses, checks annotations of, and validates (Cedar strict mode, against
 * `schema`) the given sources as one policy set. Nothing is returned unless
 * everything is valid: throws POLICY_SET_INVALID listing every issue with
 * file and line.
 */
export function loadPolicies(sources: readonly PolicySource[], schema: CorralSchema = corralSchema()): PolicySet {
  return assemble(sources, schema, true);
}

/**
 * Parses without schema validation. Not exported from the package: the
 * differential tests use it to hand ill-typed policies to both evaluators.
 */
export function parseUnvalidated(sources: readonly PolicySource[]): PolicySet {
  return assemble(sources, corralSchema(), false);
}

function assemble(sources: readonly PolicySource[], schema: CorralSchema, validate: boolean): PolicySet {
  const issues: PolicyIssue[] = [];
  const policies: LoadedPolicy[] = [];
  const ids = new Map<string, LoadedPolicy>();
  const offsets = new Map<string, { text: string; offset: number; source: PolicySource }>();

  const indexes = new Map<PolicySource, ReturnType<typeof lineIndex>>();
  const lineAt = (source: PolicySource, byteOffset: number) => {
    let index = indexes.get(source);
    if (!index) indexes.set(source, (index = lineIndex(source.text)));
    return index(byteOffset);
  };
  for (const source of sources) {
    const unfit = notCedarText(source.text);
    if (unfit) {
      const { line, column } = lineAt(source, Buffer.byteLength(source.text.slice(0, unfit.at), 'utf8'));
      issues.push({ file: source.file, line, column, message: unfit.message });
      continue;
    }
    const deep = tooDeepAt(source.text);
    if (deep >= 0) {
      const { line, column } = lineAt(source, Buffer.byteLength(source.text.slice(0, deep), 'utf8'));
      issues.push({ file: source.file, line, column, message: `nested too deeply (more than ${MAX_DEPTH} operators and brackets on one path); split the condition or use a set` });
      continue;
    }
    const split = cedar.policySetTextToParts(source.text);
    if (split.type !== 'success') {
      const check = cedar.checkParsePolicySet({ staticPolicies: source.text });
      const errors = check.type === 'failure' ? check.errors : split.errors;
      for (const e of errors) issues.push(located(source, 0, e, lineAt));
      continue;
    }
    if (split.policy_templates.length > 0) {
      issues.push({ file: source.file, message: 'policy templates are not supported; write static policies' });
    }
    let cursor = 0;
    let byteCursor = 0;
    for (const text of inSourceOrder(split.policies)) {
      const found = source.text.indexOf(text, cursor);
      const offset = found >= 0 ? found : cursor;
      const byteOffset = byteCursor + Buffer.byteLength(source.text.slice(cursor, offset), 'utf8');
      byteCursor = found >= 0 ? byteOffset + Buffer.byteLength(text, 'utf8') : byteOffset;
      cursor = found >= 0 ? found + text.length : cursor;
      const { line } = lineAt(source, byteOffset);
      const parsed = cedar.policyToJson(text);
      if (parsed.type !== 'success') {
        for (const e of parsed.errors) issues.push(located(source, byteOffset, e, lineAt));
        continue;
      }
      const annotations = parsed.json.annotations ?? {};
      const problem = (message: string) => issues.push({ file: source.file, line, message });
      for (const name of Object.keys(annotations)) {
        if (!ANNOTATIONS.has(name)) problem(`unknown annotation @${name} (Corral reads @id, @approval, @quorum, @reason)`);
      }
      const id = annotations.id ?? `${source.file}:${line}`;
      if (id === '') problem('@id must not be empty');
      // Ids are quoted in decision reasons and shown in logs and the console: one must not be able to write more than itself there.
      else if (annotations.id !== undefined && UNFIT_ID.test(id)) problem('@id must not hold a quote, a backslash, a line break, a control or an invisible formatting character');
      const approvalValue = annotations.approval;
      if (approvalValue !== undefined && approvalValue !== 'required') problem(`@approval must be "required", not "${approvalValue}"`);
      const approval = approvalValue === 'required';
      let quorum = 1;
      if (annotations.quorum !== undefined) {
        if (!/^[1-9][0-9]?$/.test(annotations.quorum) || Number(annotations.quorum) > MAX_QUORUM) {
          problem(`@quorum must be a whole number from 1 to ${MAX_QUORUM}, not "${annotations.quorum}"`);
        } else if (!approval) {
          problem('@quorum needs @approval("required") on the same policy');
        } else {
          quorum = Number(annotations.quorum);
        }
      }
      if (parsed.json.effect === 'forbid' && approval) problem('@approval applies to permit policies only; a forbid always denies');
      const policy: LoadedPolicy = {
        id,
        file: source.file,
        line,
        text,
        effect: parsed.json.effect,
        approval,
        quorum,
        ...(annotations.reason !== undefined ? { reason: annotations.reason } : {}),
        json: parsed.json,
      };
      const clash = ids.get(id);
      if (clash) {
        // A default id is `file:line`: two policies starting on one line without @id share it.
        const sameLine = annotations.id === undefined && clash.file === source.file && clash.line === line;
        problem(sameLine ? `another policy starts on line ${line} too, and without @id both are "${id}"; give this one an @id("…")` : `policy id "${id}" is already used at ${clash.file}:${clash.line}`);
        continue;
      }
      ids.set(id, policy);
      offsets.set(id, { text, offset: byteOffset, source });
      policies.push(policy);
    }
  }

  if (validate && issues.length === 0 && policies.length > 0) {
    // fromEntries, not assignment: an id "__proto__" must stay an own key, not become a prototype.
    const staticPolicies = Object.fromEntries(policies.map((p) => [p.id, p.text]));
    const answer = cedar.validate({ schema: schema.text, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
    if (answer.type === 'failure') {
      for (const e of answer.errors) issues.push({ file: '<schema>', message: describeCedarError(e) });
    } else {
      for (const v of answer.validationErrors) {
        const at = offsets.get(v.policyId);
        if (!at) {
          issues.push({ file: '<inline>', policyId: v.policyId, message: describeCedarError(v.error) });
          continue;
        }
        const start = v.error.sourceLocations?.[0]?.start ?? 0;
        const { line, column } = lineAt(at.source, at.offset + start);
        issues.push({ file: at.source.file, line, column, policyId: v.policyId, message: describeCedarError(v.error) });
      }
    }
  }

  if (issues.length > 0) {
    issues.sort((a, b) => a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0));
    throw new PolicyError('POLICY_SET_INVALID', `the policy set is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'})`, { issues });
  }
  return { policies, fingerprint: fingerprint(policies) };
}

// Cedar's parser, validator and evaluator recurse once per nesting level on
// cedar-wasm's fixed stack. Past about 130 brackets, or 400 chained operators,
// it overflows, and the trap leaves cedar-wasm failing every later call in the
// process. So no path through a policy may cross more than MAX_DEPTH
// operators, a bracket counting BRACKET_COST, before cedar-wasm sees it.
const MAX_DEPTH = 200;
const BRACKET_COST = 3;
const KEYWORD_OPERATORS = new Set(['in', 'has', 'like', 'is', 'if', 'then', 'else']);
const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;
const COMMENT_END = /[\n\r]/g;

/**
 * The index in `text` where a path gets deeper than MAX_DEPTH, or -1. An
 * over-estimate: operators before a `,` or `;` are siblings and stop counting;
 * strings and comments do not count.
 */
function tooDeepAt(text: string): number {
  const levels = [0]; // operators on the current path, per open bracket
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '/' && text[i + 1] === '/') {
      // Cedar ends a comment at a carriage return as well as a line feed.
      COMMENT_END.lastIndex = i;
      if (!COMMENT_END.test(text)) return -1;
      i = COMMENT_END.lastIndex - 1;
    } else if (c === '(' || c === '[' || c === '{') {
      levels.push(0);
      depth += BRACKET_COST;
    } else if (c === ')' || c === ']' || c === '}') {
      if (levels.length > 1) depth -= BRACKET_COST + levels.pop()!;
    } else if (c === ',' || c === ';') {
      depth -= levels[levels.length - 1]!;
      levels[levels.length - 1] = 0;
    } else if ('&|=!<>+-*.'.includes(c)) {
      if ((c === '&' || c === '|') && text[i + 1] === c) i++;
      else if ('=!<>'.includes(c) && text[i + 1] === '=') i++;
      levels[levels.length - 1]!++;
      depth++;
    } else if (/[A-Za-z_]/.test(c)) {
      WORD.lastIndex = i;
      const word = WORD.exec(text)![0];
      i += word.length - 1;
      if (KEYWORD_OPERATORS.has(word)) {
        levels[levels.length - 1]!++;
        depth++;
      }
    }
    if (depth > MAX_DEPTH) return i;
  }
  return -1;
}

/**
 * cedar-wasm names a file's policies policy0, policy1, … in the order they
 * are written, and returns them sorted by that name: policy10 before policy2.
 * Their offsets are found in order, so they are put back in written order.
 */
function inSourceOrder(texts: readonly string[]): string[] {
  const names = texts.map((_, i) => `policy${i}`).sort();
  const ordered: string[] = [];
  names.forEach((name, at) => (ordered[Number(name.slice('policy'.length))] = texts[at]!));
  return ordered;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why `text` cannot go to Cedar as it stands, or undefined. cedar-wasm
 * would take a lone surrogate as U+FFFD, so a policy would name other than
 * what it says; a byte-order mark it reports only as "invalid token".
 */
function notCedarText(text: string): { at: number; message: string } | undefined {
  if (text.startsWith('\uFEFF')) return { at: 0, message: 'the file starts with a byte-order mark; save it as UTF-8 without one' };
  if (text.isWellFormed()) return undefined;
  return { at: LONE_SURROGATE.exec(text)!.index, message: 'the text holds a lone UTF-16 surrogate, which is not a character' };
}

function located(source: PolicySource, baseByteOffset: number, e: DetailedError, lineAt: (s: PolicySource, o: number) => { line: number; column: number }): PolicyIssue {
  const start = e.sourceLocations?.[0]?.start;
  if (start === undefined) return { file: source.file, message: describeCedarError(e) };
  const { line, column } = lineAt(source, baseByteOffset + start);
  return { file: source.file, line, column, message: describeCedarError(e) };
}

function fingerprint(policies: readonly LoadedPolicy[]): string {
  const h = createHash('sha256');
  for (const p of policies) h.update(`${p.id}\u0000${p.file}\u0000${p.text}\u0001`);
  return h.digest('hex');
}
