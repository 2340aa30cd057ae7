// The seccomp filter Corral installs in every Linux sandbox, built as a
// classic-BPF program for bubblewrap's `--seccomp FD` without libseccomp or a
// native addon.
//
// The filter is a deny-list on top of bubblewrap's namespaces and dropped
// capabilities: it refuses the system calls that reach kernel attack surface
// or undo the containment (new namespaces, mounts, debugging other processes,
// kernel keyrings, eBPF, io_uring, set-user-ID files left on the host, …) and
// allows everything else, so ordinary programs (shells, compilers, Node,
// Python) run unchanged.
//
// References: Documentation/userspace-api/seccomp_filter.rst and
// include/uapi/linux/{seccomp,filter,audit}.h of the Linux kernel; syscall
// numbers from arch/x86/entry/syscalls/syscall_64.tbl (x86_64) and
// include/uapi/asm-generic/unistd.h (aarch64).
import { endianness } from 'node:os';
import { ContainError } from '../errors.ts';

// ---------------------------------------------------------------------------
// Kernel constants (include/uapi/linux/{filter,bpf_common,seccomp,audit}.h)
// ---------------------------------------------------------------------------

/** Classic-BPF opcodes used here: class | size | mode, or class | op | source. */
const BPF = {
  LD_W_ABS: 0x20, // BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data
  ALU_AND_K: 0x54, // BPF_ALU | BPF_AND | BPF_K: A &= k
  JA: 0x05, // BPF_JMP | BPF_JA: pc += k
  JEQ_K: 0x15, // BPF_JMP | BPF_JEQ | BPF_K: A == k ? jt : jf
  JSET_K: 0x45, // BPF_JMP | BPF_JSET | BPF_K: (A & k) != 0 ? jt : jf
  RET_K: 0x06, // BPF_RET | BPF_K: return k
} as const;

/** The kernel's limit on a classic-BPF program (BPF_MAXINSNS). */
export const BPF_MAX_INSTRUCTIONS = 4096;

/** Byte offsets in `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`. */
const SECCOMP_DATA_NR = 0;
const SECCOMP_DATA_ARCH = 4;
const SECCOMP_DATA_SIZE = 64;
/**
 * The low 32 bits of syscall argument `i`. Both supported architectures are
 * little-endian, so the low word comes first. The arguments checked here are
 * `int`, `unsigned int` or `umode_t` (16 bits) in the kernel (or, for clone,
 * cut to their lower 32 bits), so the kernel ignores the high word: comparing
 * only the low word is exact, and garbage in the high word cannot slip past
 * the filter. (The mode bits tested lie in a umode_t's 16, so what the kernel
 * drops of a mode's low word the filter ignores too.)
 */
function argLow(i: number): number {
  return 16 + 8 * i;
}

const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;

/** errno values, identical on x86_64 and aarch64 (include/uapi/asm-generic/errno*.h). */
const ERRNO = { EPERM: 1, ENOSYS: 38, EAFNOSUPPORT: 97 } as const;

/** AUDIT_ARCH_* = EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
const AUDIT_ARCH = { x64: 0xc000003e, arm64: 0xc00000b7 } as const;
/** Syscall numbers with this bit set use the x32 ABI on x86_64. */
const X32_SYSCALL_BIT = 0x40000000;

/** Every CLONE_NEW* flag that clone(2) accepts (CLONE_NEWTIME is only valid in clone3/unshare; in clone's flags 0x80 is part of the exit signal). */
const CLONE_NEW_ANY = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
const PER_LINUX = 0x0000;
const PER_LINUX32 = 0x0008;
/** personality(0xffffffff) reads the current persona without changing it. */
const PER_QUERY = 0xffffffff;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_RAW = 3;
/** Obsolete; for AF_INET the kernel makes it an AF_PACKET socket (net/socket.c, __sock_create). */
const SOCK_PACKET = 10;
/** The kernel takes the socket type from these bits (SOCK_TYPE_MASK); the rest are SOCK_NONBLOCK/SOCK_CLOEXEC. */
const SOCK_TYPE_MASK = 0xf;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
/** S_ISUID | S_ISGID (include/uapi/linux/stat.h). */
const S_ISUID_ISGID = 0o6000;
/**
 * The open flags that make the kernel create a file and so take its mode (WILL_CREATE in
 * fs/open.c): O_CREAT and O_TMPFILE's own bit __O_TMPFILE, the same on x86_64 and aarch64
 * (include/uapi/asm-generic/fcntl.h). Without them the kernel ignores the mode argument.
 */
const O_CREAT = 0o100;
const O_TMPFILE_BIT = 0o20000000;

// ---------------------------------------------------------------------------
// Syscall numbers
// ---------------------------------------------------------------------------

/** An architecture the filter is built for (Node's `process.arch` names). */
export type SeccompArch = 'x64' | 'arm64';
const ARCHES: readonly SeccompArch[] = ['x64', 'arm64'];

/**
 * `[x86_64, aarch64]` numbers of every syscall the filter names; `null` where
 * the architecture has no such call. Checked against the kernel headers by
 * the tests when the host has them. open_tree_attr (Linux 6.15) and fchmodat2
 * (6.6) are newer than some distributions' headers; numbers from 424 on are
 * shared by all architectures.
 */
export const SYSCALL_NUMBERS: Readonly<Record<string, readonly [x64: number | null, arm64: number | null]>> = Object.freeze({
  ptrace: [101, 117],
  process_vm_readv: [310, 270],
  process_vm_writev: [311, 271],
  pidfd_getfd: [438, 438],
  mount: [165, 40],
  umount2: [166, 39],
  pivot_root: [155, 41],
  chroot: [161, 51],
  fsopen: [430, 430],
  fsconfig: [431, 431],
  fsmount: [432, 432],
  fspick: [433, 433],
  move_mount: [429, 429],
  open_tree: [428, 428],
  open_tree_attr: [467, 467],
  mount_setattr: [442, 442],
  unshare: [272, 97],
  setns: [308, 268],
  keyctl: [250, 219],
  add_key: [248, 217],
  request_key: [249, 218],
  bpf: [321, 280],
  perf_event_open: [298, 241],
  userfaultfd: [323, 282],
  io_uring_setup: [425, 425],
  io_uring_enter: [426, 426],
  io_uring_register: [427, 427],
  lookup_dcookie: [212, 18],
  kexec_load: [246, 104],
  kexec_file_load: [320, 294],
  init_module: [175, 105],
  finit_module: [313, 273],
  delete_module: [176, 106],
  reboot: [169, 142],
  open_by_handle_at: [304, 265],
  name_to_handle_at: [303, 264],
  swapon: [167, 224],
  swapoff: [168, 225],
  acct: [163, 89],
  quotactl: [179, 60],
  quotactl_fd: [443, 443],
  syslog: [103, 116],
  vhangup: [153, 58],
  uselib: [134, null],
  nfsservctl: [180, 42],
  settimeofday: [164, 170],
  clock_settime: [227, 112],
  clock_adjtime: [305, 266],
  adjtimex: [159, 171],
  iopl: [172, null],
  ioperm: [173, null],
  modify_ldt: [154, null],
  personality: [135, 92],
  clone: [56, 220],
  clone3: [435, 435],
  socket: [41, 198],
  socketpair: [53, 199],
  ioctl: [16, 29],
  chmod: [90, null],
  fchmod: [91, 52],
  fchmodat: [268, 53],
  fchmodat2: [452, 452],
  mknod: [133, null],
  mknodat: [259, 33],
  open: [2, null],
  creat: [85, null],
  openat: [257, 56],
});

function nr(name: string, arch: SeccompArch): number | null {
  const entry = SYSCALL_NUMBERS[name];
  if (entry === undefined) throw new ContainError('CONTAIN_SECCOMP_INVALID', `no syscall number for ${name}`);
  return entry[arch === 'x64' ? 0 : 1];
}

// ---------------------------------------------------------------------------
// The rules, as data for docs and `corral doctor`
// ---------------------------------------------------------------------------

/** What a process gets back from a syscall the filter refuses. */
export type SeccompResult = 'EPERM' | 'ENOSYS' | 'EAFNOSUPPORT' | 'kill-process';

/** One rule of the filter, described for people. */
export interface SeccompRule {
  /** Short stable name, e.g. `namespaces` or `socket-family`. */
  readonly id: string;
  /** The syscalls the rule looks at (those absent on an architecture are skipped there). */
  readonly syscalls: readonly string[];
  /** When the rule refuses: `always`, or the condition on the arguments. */
  readonly when: string;
  /** What the caller gets. */
  readonly result: SeccompResult;
  /** Why, in one line. */
  readonly description: string;
}

/** Syscalls refused with EPERM whatever their arguments, grouped by reason. */
const REFUSED_GROUPS: readonly { id: string; syscalls: readonly string[]; description: string }[] = [
  { id: 'process-access', syscalls: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd'], description: 'reading, writing or stealing from another process (debuggers, memory and descriptor theft)' },
  { id: 'mounts', syscalls: ['mount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'open_tree_attr', 'mount_setattr'], description: 'changing the filesystem view the sandbox was given' },
  { id: 'namespaces', syscalls: ['unshare', 'setns'], description: 'creating or entering namespaces (a new user namespace hands out capabilities and kernel attack surface)' },
  { id: 'keyrings', syscalls: ['keyctl', 'add_key', 'request_key'], description: 'the kernel keyrings, which are not namespaced and may hold the host\'s secrets' },
  { id: 'kernel-surface', syscalls: ['bpf', 'perf_event_open', 'userfaultfd', 'lookup_dcookie'], description: 'eBPF, perf events and userfaultfd: large kernel attack surface, exploit helpers' },
  { id: 'io-uring', syscalls: ['io_uring_setup', 'io_uring_enter', 'io_uring_register'], description: 'io_uring performs operations seccomp never sees' },
  { id: 'kernel-code', syscalls: ['kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot'], description: 'loading kernel code, modules, or rebooting' },
  { id: 'file-handles', syscalls: ['open_by_handle_at', 'name_to_handle_at'], description: 'opening files by handle, which walks around the mount view' },
  { id: 'host-admin', syscalls: ['swapon', 'swapoff', 'acct', 'quotactl', 'quotactl_fd', 'syslog', 'vhangup', 'uselib', 'nfsservctl'], description: 'host administration, the kernel log, obsolete calls' },
  { id: 'clocks', syscalls: ['settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex'], description: 'setting or tuning the system clock (also refused read-only: adjtimex/clock_adjtime with no modes)' },
  { id: 'hardware', syscalls: ['iopl', 'ioperm', 'modify_ldt'], description: 'x86 port I/O and local descriptor tables (x86_64 only)' },
];

/**
 * The syscalls the filter refuses with EPERM whatever their arguments, on the
 * architectures that have them (uselib, iopl, ioperm and modify_ldt exist on
 * x86_64 only). Argument-dependent refusals are in {@link SECCOMP_RULES}.
 */
export const REFUSED_SYSCALLS: readonly string[] = Object.freeze(REFUSED_GROUPS.flatMap((g) => g.syscalls));

/** Every rule of the filter, in the order the program applies them. */
export const SECCOMP_RULES: readonly SeccompRule[] = Object.freeze([
  { id: 'arch', syscalls: [], when: 'the calling ABI is not the native one (e.g. i386 `int 0x80` on x86_64, AArch32 on arm64)', result: 'kill-process', description: 'a foreign ABI has other syscall numbers and would walk around every rule below' },
  { id: 'x32', syscalls: [], when: 'on x86_64, the syscall number has the x32 bit (0x40000000) set', result: 'kill-process', description: 'the x32 ABI is treated as a foreign architecture' },
  ...REFUSED_GROUPS.map((g) => ({ id: g.id, syscalls: g.syscalls, when: 'always', result: 'EPERM' as const, description: g.description })),
  { id: 'clone-namespaces', syscalls: ['clone'], when: 'flags include any CLONE_NEW* (user, mount, pid, net, ipc, uts, cgroup)', result: 'EPERM', description: 'no new namespaces through clone either; threads and fork are allowed' },
  { id: 'clone3', syscalls: ['clone3'], when: 'always', result: 'ENOSYS', description: 'its flags are in memory seccomp cannot read; libc then falls back to clone, which is checked' },
  { id: 'personality', syscalls: ['personality'], when: 'the persona is anything but PER_LINUX, PER_LINUX32 or the 0xffffffff query', result: 'EPERM', description: 'no ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, MMAP_PAGE_ZERO and the like (PER_LINUX32 only changes what uname reports)' },
  { id: 'socket-family', syscalls: ['socket', 'socketpair'], when: 'the family is not AF_UNIX, AF_INET or AF_INET6', result: 'EAFNOSUPPORT', description: 'no netlink, packet, vsock, bluetooth or other kernel socket families' },
  { id: 'socket-raw', syscalls: ['socket'], when: 'the type is SOCK_RAW or SOCK_PACKET (with or without SOCK_NONBLOCK/SOCK_CLOEXEC)', result: 'EPERM', description: 'no raw sockets, even for IPv4/IPv6, nor the packet socket AF_INET with SOCK_PACKET makes: packets cannot be forged or sniffed' },
  { id: 'terminal-injection', syscalls: ['ioctl'], when: 'the request is TIOCSTI or TIOCLINUX', result: 'EPERM', description: 'no typing into a terminal\'s input queue (escape through the user\'s shell)' },
  { id: 'setuid-mode', syscalls: ['chmod', 'fchmod', 'fchmodat', 'fchmodat2', 'mknod', 'mknodat', 'creat', 'open', 'openat'], when: 'the mode sets S_ISUID or S_ISGID (04000, 02000); for open and openat only when the flags create a file (O_CREAT or O_TMPFILE), since the kernel ignores the mode otherwise', result: 'EPERM', description: 'no set-user-ID or set-group-ID files: one made in a read-write grant stays on the host, a program that runs as its owner (root, when Corral runs as root) for whoever starts it there. Setgid folders are refused too (chmod g+s on a folder). openat2 is allowed (OpenClaw\'s safe file access needs it, and refuses to run without it), though its mode is in memory seccomp cannot read: a file it creates with these bits is empty, and the kernel drops them at the first write, truncate or allocation by a process without CAP_FSETID, which no sandboxed process has, so it never becomes a program that keeps them' },
] satisfies SeccompRule[]);

// ---------------------------------------------------------------------------
// A small classic-BPF assembler
// ---------------------------------------------------------------------------

/** One `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`. */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Where a conditional jump goes: a label, or on to the next instruction. */
export const NEXT = Symbol('next');
type Target = string | typeof NEXT;

type Item =
  | { kind: 'label'; name: string }
  | { kind: 'stmt'; code: number; k: number }
  | { kind: 'ja'; target: string }
  | { kind: 'jump'; code: number; k: number; jt: Target; jf: Target; longT: boolean; longF: boolean };

/**
 * A classic-BPF assembler with named labels. Jumps only go forward (the
 * kernel refuses anything else); a conditional jump whose target is more
 * than 255 instructions away is rewritten to jump to an unconditional `ja`
 * (32-bit offset) placed right after it.
 *
 * `assemble()` throws ContainError `CONTAIN_SECCOMP_INVALID` for an
 * undefined, duplicate or backward label, a load outside seccomp_data, an
 * empty or over-long program, or one whose last instruction is not a return.
 */
export class BpfAssembler {
  readonly #items: Item[] = [];

  /** A = the 32-bit word at `offset` in seccomp_data (4-byte aligned, inside the struct). */
  load(offset: number): this {
    if (!Number.isInteger(offset) || offset < 0 || offset >= SECCOMP_DATA_SIZE || offset % 4 !== 0) {
      throw new ContainError('CONTAIN_SECCOMP_INVALID', `seccomp_data has no aligned word at offset ${offset}`);
    }
    return this.#stmt(BPF.LD_W_ABS, offset);
  }

  /** A &= k. */
  and(k: number): this {
    return this.#stmt(BPF.ALU_AND_K, k);
  }

  /** Return `k` (a SECCOMP_RET_* action). */
  ret(k: number): this {
    return this.#stmt(BPF.RET_K, k);
  }

  /** If A == k go to `jt`, else to `jf`. */
  jeq(k: number, jt: Target, jf: Target = NEXT): this {
    return this.#jump(BPF.JEQ_K, k, jt, jf);
  }

  /** If A & k is not zero go to `jt`, else to `jf`. */
  jset(k: number, jt: Target, jf: Target = NEXT): this {
    return this.#jump(BPF.JSET_K, k, jt, jf);
  }

  /** Go to `target` unconditionally. */
  ja(target: string): this {
    this.#items.push({ kind: 'ja', target });
    return this;
  }

  /** Names the position of the next instruction. */
  label(name: string): this {
    this.#items.push({ kind: 'label', name });
    return this;
  }

  /** Resolves labels to offsets and returns the instructions. */
  assemble(): SockFilter[] {
    const items = this.#items.map((item) => (item.kind === 'jump' ? { ...item, longT: false, longF: false } : item));
    // Lay out, widen the conditional jumps that do not reach, lay out again.
    // Widening only ever adds instructions, so this stops.
    for (;;) {
      const { pcs, labels, length } = layout(items);
      let widened = false;
      items.forEach((item, i) => {
        if (item.kind !== 'jump') return;
        const end = pcs[i]! + 1 + Number(item.longT) + Number(item.longF);
        for (const side of ['T', 'F'] as const) {
          const target = side === 'T' ? item.jt : item.jf;
          const isLong = side === 'T' ? item.longT : item.longF;
          if (isLong || target === NEXT) continue;
          const to = resolve(labels, target, length);
          if (to < end) throw new ContainError('CONTAIN_SECCOMP_INVALID', `jump to label ${target} goes backwards`);
          if (to - (pcs[i]! + 1) > 255) {
            if (side === 'T') item.longT = true;
            else item.longF = true;
            widened = true;
          }
        }
      });
      if (!widened) return emit(items, pcs, labels, length);
    }
  }

  #stmt(code: number, k: number): this {
    this.#items.push({ kind: 'stmt', code, k: u32(k) });
    return this;
  }

  #jump(code: number, k: number, jt: Target, jf: Target): this {
    this.#items.push({ kind: 'jump', code, k: u32(k), jt, jf, longT: false, longF: false });
    return this;
  }
}

function u32(k: number): number {
  if (!Number.isInteger(k) || k < 0 || k > 0xffffffff) {
    throw new ContainError('CONTAIN_SECCOMP_INVALID', `BPF operand ${k} is not a 32-bit unsigned integer`);
  }
  return k;
}

function layout(items: readonly Item[]): { pcs: number[]; labels: Map<string, number>; length: number } {
  const pcs: number[] = [];
  const labels = new Map<string, number>();
  let pc = 0;
  for (const item of items) {
    pcs.push(pc);
    if (item.kind === 'label') {
      if (labels.has(item.name)) throw new ContainError('CONTAIN_SECCOMP_INVALID', `label ${item.name} is defined twice`);
      labels.set(item.name, pc);
    } else if (item.kind === 'jump') {
      pc += 1 + Number(item.longT) + Number(item.longF);
    } else {
      pc += 1;
    }
  }
  return { pcs, labels, length: pc };
}

function resolve(labels: ReadonlyMap<string, number>, name: string, length: number): number {
  const pc = labels.get(name);
  if (pc === undefined) throw new ContainError('CONTAIN_SECCOMP_INVALID', `label ${name} is not defined`);
  if (pc >= length) throw new ContainError('CONTAIN_SECCOMP_INVALID', `label ${name} is past the last instruction`);
  return pc;
}

function emit(items: readonly Item[], pcs: readonly number[], labels: ReadonlyMap<string, number>, length: number): SockFilter[] {
  if (length === 0) throw new ContainError('CONTAIN_SECCOMP_INVALID', 'the BPF program is empty');
  if (length > BPF_MAX_INSTRUCTIONS) {
    throw new ContainError('CONTAIN_SECCOMP_INVALID', `the BPF program has ${length} instructions; the kernel accepts at most ${BPF_MAX_INSTRUCTIONS}`);
  }
  const out: SockFilter[] = [];
  items.forEach((item, i) => {
    const pc = pcs[i]!;
    if (item.kind === 'label') return;
    if (item.kind === 'stmt') {
      out.push({ code: item.code, jt: 0, jf: 0, k: item.k });
    } else if (item.kind === 'ja') {
      const to = resolve(labels, item.target, length);
      if (to <= pc) throw new ContainError('CONTAIN_SECCOMP_INVALID', `jump to label ${item.target} goes backwards`);
      out.push({ code: BPF.JA, jt: 0, jf: 0, k: to - (pc + 1) });
    } else {
      const end = pc + 1 + Number(item.longT) + Number(item.longF);
      // A widened side jumps to its own `ja`: the true side's sits at pc+1, the false side's after it.
      const offsetTo = (target: Target, isLong: boolean, tramp: number): number =>
        isLong ? tramp : (target === NEXT ? end : resolve(labels, target, length)) - (pc + 1);
      const jt = offsetTo(item.jt, item.longT, 0);
      const jf = offsetTo(item.jf, item.longF, Number(item.longT));
      out.push({ code: item.code, jt, jf, k: item.k });
      if (item.longT) out.push(farJump(item.jt, labels, length, pc + 1));
      if (item.longF) out.push(farJump(item.jf, labels, length, pc + 1 + Number(item.longT)));
    }
  });
  if (out.length !== length) throw new ContainError('CONTAIN_SECCOMP_INVALID', 'BPF layout changed while emitting');
  if (out[length - 1]!.code !== BPF.RET_K) {
    throw new ContainError('CONTAIN_SECCOMP_INVALID', 'the BPF program can run past its last instruction (it must end with a return)');
  }
  return out;
}

function farJump(target: Target, labels: ReadonlyMap<string, number>, length: number, pc: number): SockFilter {
  // Only labelled targets are ever widened: NEXT is at most two instructions away.
  const to = resolve(labels, target as string, length);
  return { code: BPF.JA, jt: 0, jf: 0, k: to - (pc + 1) };
}

/** Serialises instructions as the `struct sock_filter` array bubblewrap reads, in this host's byte order. */
export function encodeProgram(program: readonly SockFilter[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  const le = endianness() === 'LE';
  program.forEach(({ code, jt, jf, k }, i) => {
    const at = i * 8;
    if (le) buf.writeUInt16LE(code, at);
    else buf.writeUInt16BE(code, at);
    buf.writeUInt8(jt, at + 2);
    buf.writeUInt8(jf, at + 3);
    if (le) buf.writeUInt32LE(k, at + 4);
    else buf.writeUInt32BE(k, at + 4);
  });
  return buf;
}

// ---------------------------------------------------------------------------
// Corral's filter
// ---------------------------------------------------------------------------

const errno = (e: number): number => SECCOMP_RET_ERRNO | e;

/** Builds the filter's instructions for `arch` (see {@link SECCOMP_RULES} for what it does). */
export function buildSeccompFilter(arch: SeccompArch): SockFilter[] {
  const a = new BpfAssembler();
  const on = (name: string, target: string): void => {
    const n = nr(name, arch);
    if (n !== null) a.jeq(n, target);
  };

  // 1. The ABI. A foreign one has other numbers for everything below.
  a.load(SECCOMP_DATA_ARCH).jeq(AUDIT_ARCH[arch], NEXT, 'kill');
  a.load(SECCOMP_DATA_NR);
  if (arch === 'x64') a.jset(X32_SYSCALL_BIT, 'kill');

  // 2. Dispatch on the number. Only the syscall number and arch are read until
  //    a syscall with argument rules matches, so the kernel's per-syscall
  //    action cache (Linux 5.11+) lets every other syscall skip the filter.
  //    openat (and open on x86_64) is among the calls programs make most and has
  //    argument rules, so the kernel runs the filter for every one: it is
  //    dispatched first, to stay a handful of instructions.
  on('openat', 'openat');
  on('open', 'open');
  for (const name of REFUSED_SYSCALLS) on(name, 'eperm');
  on('clone', 'clone');
  on('clone3', 'enosys');
  on('personality', 'personality');
  on('socket', 'socket');
  on('socketpair', 'socketpair');
  on('ioctl', 'ioctl');
  for (const name of ['chmod', 'fchmod', 'mknod', 'creat']) on(name, 'mode-arg1');
  for (const name of ['fchmodat', 'fchmodat2', 'mknodat']) on(name, 'mode-arg2');
  a.ret(SECCOMP_RET_ALLOW);

  // 3. Rules on arguments (low 32 bits only: see argLow).
  a.label('clone').load(argLow(0)).jset(CLONE_NEW_ANY, 'eperm', 'allow');

  a.label('personality').load(argLow(0))
    .jeq(PER_LINUX, 'allow')
    .jeq(PER_LINUX32, 'allow')
    .jeq(PER_QUERY, 'allow', 'eperm');

  a.label('socket').load(argLow(0))
    .jeq(AF_UNIX, 'socket-type')
    .jeq(AF_INET, 'socket-type')
    .jeq(AF_INET6, 'socket-type', 'eafnosupport');
  a.label('socket-type').load(argLow(1)).and(SOCK_TYPE_MASK)
    .jeq(SOCK_RAW, 'eperm')
    .jeq(SOCK_PACKET, 'eperm', 'allow');

  a.label('socketpair').load(argLow(0))
    .jeq(AF_UNIX, 'allow')
    .jeq(AF_INET, 'allow')
    .jeq(AF_INET6, 'allow', 'eafnosupport');

  a.label('ioctl').load(argLow(1))
    .jeq(TIOCSTI, 'eperm')
    .jeq(TIOCLINUX, 'eperm', 'allow');

  // A file made setuid or setgid in a read-write grant outlives the sandbox: on the host it runs
  // as its owner, the user Corral runs as (root, when Corral does), for whoever starts it. Any
  // owner may set these bits without a capability, and the sandbox's nosuid mounts stay behind.
  a.label('open').load(argLow(1)).jset(O_CREAT | O_TMPFILE_BIT, 'mode-arg2', 'allow');
  a.label('openat').load(argLow(2)).jset(O_CREAT | O_TMPFILE_BIT, 'mode-arg3', 'allow');
  a.label('mode-arg1').load(argLow(1)).jset(S_ISUID_ISGID, 'eperm', 'allow');
  a.label('mode-arg2').load(argLow(2)).jset(S_ISUID_ISGID, 'eperm', 'allow');
  a.label('mode-arg3').load(argLow(3)).jset(S_ISUID_ISGID, 'eperm', 'allow');

  // 4. Verdicts.
  a.label('allow').ret(SECCOMP_RET_ALLOW);
  a.label('eperm').ret(errno(ERRNO.EPERM));
  a.label('enosys').ret(errno(ERRNO.ENOSYS));
  a.label('eafnosupport').ret(errno(ERRNO.EAFNOSUPPORT));
  a.label('kill').ret(SECCOMP_RET_KILL_PROCESS);
  return a.assemble();
}

const cache = new Map<SeccompArch, Buffer>();

function isSeccompArch(arch: string): arch is SeccompArch {
  return (ARCHES as readonly string[]).includes(arch);
}

/**
 * Corral's seccomp filter as the `struct sock_filter` array bubblewrap reads
 * from `--seccomp FD` (native byte order, 8 bytes per instruction). Built
 * once per architecture; each call returns a fresh copy.
 *
 * @param arch Node's name for the architecture: `x64` (AUDIT_ARCH_X86_64) or
 *   `arm64` (AUDIT_ARCH_AARCH64). Defaults to this process's.
 * @throws ContainError `CONTAIN_UNENFORCEABLE` for any other architecture.
 */
export function seccompProgram(arch: string = process.arch): Buffer {
  if (!isSeccompArch(arch)) {
    throw new ContainError('CONTAIN_UNENFORCEABLE', `Corral has no seccomp filter for the ${arch} architecture (only x64 and arm64)`);
  }
  let program = cache.get(arch);
  if (program === undefined) {
    program = encodeProgram(buildSeccompFilter(arch));
    cache.set(arch, program);
  }
  return Buffer.from(program);
}
