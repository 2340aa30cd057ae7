import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RUNTIME_PRESETS } from './defaults.ts';

export type RuntimePreset = (typeof RUNTIME_PRESETS)[number];

/** What a preset contributes: read-only host paths, top-level symlinks to mirror, and PATH entries. */
export interface PresetGrant {
  readonly: string[];
  symlinks: { target: string; path: string }[];
  path: string[];
}

// The dynamic loader and shared libraries every dynamically linked program needs.
// System libraries only: no /etc beyond the loader's own files, no home folders.
const LIBRARY_PATHS = ['/usr/lib', '/usr/lib64', '/usr/lib32', '/usr/libexec', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d'];
const MERGED_TOP_LEVEL = ['/bin', '/sbin', '/lib', '/lib64', '/lib32'];
const SYSTEM_BIN_DIRS = ['/usr/local/bin', '/usr/bin'];

/**
 * Resolves the presets a policy names into host paths. The read-only paths
 * are not looked up: planSandbox resolves each (through its symlinks) and
 * leaves out those not on this host. Never grants '/' or /etc.
 *
 * @param nodeBinary the Node executable the `node` preset grants (the running one by default).
 */
export function presetGrant(presets: readonly RuntimePreset[], nodeBinary = process.execPath): PresetGrant {
  const grant: PresetGrant = { readonly: [], symlinks: [], path: [] };
  if (presets.length === 0) return grant;
  addLibraries(grant);
  for (const preset of new Set(presets)) {
    if (preset === 'shell') {
      grant.readonly.push('/usr/bin', '/etc/alternatives');
      grant.path.push('/usr/bin');
    } else if (preset === 'node') {
      const node = realpathSync(nodeBinary);
      grant.readonly.push(node);
      grant.path.push(dirname(node));
    } else {
      addPython(grant);
    }
  }
  grant.readonly = [...new Set(grant.readonly)];
  grant.path = [...new Set(grant.path)];
  return grant;
}

/** The shared-library paths alone: what any dynamically linked helper needs. */
export function libraryGrant(): PresetGrant {
  const grant: PresetGrant = { readonly: [], symlinks: [], path: [] };
  addLibraries(grant);
  grant.readonly = grant.readonly.filter((p) => existsSync(p));
  return grant;
}

function addLibraries(grant: PresetGrant): void {
  grant.readonly.push(...LIBRARY_PATHS);
  // On merged-/usr systems /bin, /lib… are symlinks into /usr: mirror them rather than binding.
  for (const top of MERGED_TOP_LEVEL) {
    if (!existsSync(top)) continue;
    if (lstatSync(top).isSymbolicLink()) grant.symlinks.push({ path: top, target: readlinkSync(top) });
    else grant.readonly.push(top);
  }
}

function addPython(grant: PresetGrant): void {
  // The system's Python (not a per-user shim): the interpreter and its standard library.
  for (const dir of SYSTEM_BIN_DIRS) {
    const candidate = join(dir, 'python3');
    if (!existsSync(candidate)) continue;
    const binary = realpathSync(candidate);
    grant.readonly.push(binary, candidate);
    grant.path.push(dir);
    const version = /python(3\.\d+)$/.exec(binary)?.[1];
    const prefix = dirname(dirname(binary));
    for (const lib of [join(prefix, 'lib'), '/usr/local/lib']) {
      if (!existsSync(lib)) continue;
      for (const entry of readdirSync(lib)) {
        if (entry === 'python3' || (version && entry === `python${version}`)) grant.readonly.push(join(lib, entry));
      }
    }
    return;
  }
}
