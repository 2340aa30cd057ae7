// A Runner in a process of its own, for tests that kill that process (SIGKILL) and look for what
// its sandboxes left. Arguments: WORK CGROUPS WARM HOLD (each of the last three 'yes' or 'no').
// It runs `sleep 1000` in a sandbox of a policy that reads WORK (so that every process of the
// sandbox names WORK: bubblewrap in --chdir, the command in its arguments), warm when WARM says so
// (a warm sandbox is kept, the run takes it, and its replacement is started), and writes 'go' to
// standard output just before. With HOLD it then keeps its thread busy watching for the sandbox's
// first process, between turns of its event loop (which hands bubblewrap what it reads first), and
// the moment bubblewrap has made it, before this process has read that and moved it into its
// cgroups, writes 'held' and stops (SIGSTOP).
import { readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { hostCapabilities } from './linux/host.ts';
import { validatePolicy } from './policy/load.ts';
import { planSandbox } from './policy/plan.ts';
import { Runner } from './runner.ts';

const [work = '', cgroups, warm, hold] = process.argv.slice(2);

/** Every process below `pid`, from each one's list of children. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const walk = (parent: number) => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      return; // Gone.
    }
    for (const task of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${parent}/task/${task}/children`, 'latin1');
      } catch {
        continue;
      }
      for (const child of children.split(' ').filter(Boolean).map(Number)) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

/** Whether a process below this one is in a PID namespace of its own: the sandbox's first process, made by bubblewrap. */
function sandboxMade(): boolean {
  const own = readlinkSync('/proc/self/ns/pid');
  return descendants(process.pid).some((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`) !== own;
    } catch {
      return false;
    }
  });
}

const caps = hostCapabilities();
// Held, the sandbox is one bubblewrap made before it was moved into its cgroups: as on cgroup v2 (one that joins them itself is never outside).
const moved = hold === 'yes' ? { cgroupJoin: { available: false, detail: 'moved in once bubblewrap holds it' } } : {};
const runner = new Runner({ capabilities: cgroups === 'yes' ? { ...caps, ...moved } : { ...caps, cgroups: { ...caps.cgroups, controllers: {} } } });
const plan = planSandbox({ policy: validatePolicy({ runtime: ['shell'], workingDirectory: '.', filesystem: { readonly: ['.'] } }), source: 'test', baseDir: work });
const run = () => runner.spawn(plan, ['/bin/sh', '-c', 'sleep 1000; exit', work]);
writeSync(1, 'go\n');
if (warm === 'yes') void runner.keepWarm(plan, 1).then(run);
else run();
const watch = () => {
  const until = performance.now() + 100;
  while (performance.now() < until) {
    if (!sandboxMade()) continue;
    writeSync(1, 'held\n');
    process.kill(process.pid, 'SIGSTOP');
  }
  setImmediate(watch);
};
if (hold === 'yes') setImmediate(watch);
