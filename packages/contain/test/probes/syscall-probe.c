/*
 * Corral's syscall probe, for the seccomp tests.
 *
 *   syscall-probe ATTEMPT [FOLDER]
 *
 * Performs the one system call ATTEMPT names and prints one line:
 * "<attempt> ok" when it succeeded, "<attempt> errno=<NAME>" when it failed.
 * The probe only reports; the test decides what was expected. Exit status:
 * 0 when the attempt ran, 2 for an unknown attempt (or one this architecture
 * does not have), 3 when preparing the attempt failed.
 *
 * Arguments are chosen so that the probe is harmless even when run as root
 * outside any sandbox: state-changing calls get a path that does not exist,
 * an invalid value or a bad descriptor, which the kernel rejects with an
 * error other than EPERM. So, inside the sandbox, an EPERM for those can only
 * come from Corral's seccomp filter. Calls that only touch the probe itself
 * (namespaces, sockets, its own memory, keyring or terminal) are made for real.
 *
 * The file-mode attempts (mode-*) need FOLDER, one the probe may write: each
 * makes an empty file there, sets the mode the attempt names on it or creates
 * it with that mode, and removes it again before it prints.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/ptrace.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <linux/perf_event.h>
#include <linux/personality.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>

#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#define HIGH_WORD (1UL << 32)
#define MISSING "/nonexistent/corral-probe"

static const char *errno_name(int e) {
  switch (e) {
#define N(x) case x: return #x;
    N(EPERM) N(ENOENT) N(ESRCH) N(EINTR) N(EIO) N(ENXIO) N(E2BIG) N(ENOEXEC)
    N(EBADF) N(ECHILD) N(EAGAIN) N(ENOMEM) N(EACCES) N(EFAULT) N(ENOTBLK)
    N(EBUSY) N(EEXIST) N(EXDEV) N(ENODEV) N(ENOTDIR) N(EISDIR) N(EINVAL)
    N(ENFILE) N(EMFILE) N(ENOTTY) N(ENOSPC) N(EROFS) N(ERANGE) N(ENOSYS)
    N(ENOKEY) N(EKEYREJECTED) N(EDQUOT) N(ESTALE) N(EOPNOTSUPP) N(EAFNOSUPPORT)
    N(EPROTONOSUPPORT) N(ESOCKTNOSUPPORT) N(EPFNOSUPPORT) N(ENOPKG) N(EUSERS)
#undef N
  }
  return NULL;
}

static int report(const char *attempt, long rc) {
  if (rc >= 0) {
    printf("%s ok\n", attempt);
  } else {
    const char *name = errno_name(errno);
    if (name) printf("%s errno=%s\n", attempt, name);
    else printf("%s errno=%d\n", attempt, errno);
  }
  return 0;
}

static int setup_failed(const char *attempt, const char *what) {
  fprintf(stderr, "%s: setup failed: %s: %s\n", attempt, what, strerror(errno));
  return 3;
}

/* fork-like clone with the given flags: the child exits at once, the parent reaps it. */
static long clone_and_reap(unsigned long flags) {
  fflush(stdout);
  long pid = syscall(SYS_clone, flags | SIGCHLD, 0UL, 0UL, 0UL, 0UL);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return pid;
}

static long do_clone3(unsigned long long flags) {
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  fflush(stdout);
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid((pid_t)pid, NULL, 0);
  return pid;
}

static long do_ptrace_attach(void) {
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    for (;;) pause();
  }
  long rc = syscall(SYS_ptrace, PTRACE_ATTACH, (long)child, 0L, 0L);
  int saved = errno;
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  errno = saved;
  return rc;
}

static long do_process_vm(int write) {
  char mine[16] = "corral", other[16] = {0};
  struct iovec local = { write ? mine : other, sizeof mine };
  struct iovec remote = { write ? other : mine, sizeof mine };
  return syscall(write ? SYS_process_vm_writev : SYS_process_vm_readv, (long)getpid(), &local, 1UL, &remote, 1UL, 0UL);
}

static long do_socket(unsigned long family, int type, int protocol) {
  long fd = syscall(SYS_socket, family, (long)type, (long)protocol);
  if (fd >= 0) close((int)fd);
  return fd;
}

static long do_socketpair(int family, int type) {
  int fds[2];
  long rc = syscall(SYS_socketpair, (long)family, (long)type, 0L, fds);
  if (rc == 0) { close(fds[0]); close(fds[1]); }
  return rc;
}

/*
 * Terminal injection: in a child that starts a new session, open a fresh
 * pseudo-terminal as its controlling terminal, then issue `request` on it.
 * The child prints the report; returns the exit status to use.
 */
static int tty_ioctl(const char *attempt, unsigned long request, void *arg) {
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) return setup_failed(attempt, "fork");
  if (child == 0) {
    if (setsid() < 0) exit(setup_failed(attempt, "setsid"));
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) exit(setup_failed(attempt, "posix_openpt"));
    if (grantpt(master) < 0 || unlockpt(master) < 0) exit(setup_failed(attempt, "unlockpt"));
    const char *name = ptsname(master);
    int slave = name ? open(name, O_RDWR) : -1;
    if (slave < 0) exit(setup_failed(attempt, "open pts"));
    report(attempt, syscall(SYS_ioctl, (long)slave, request, arg));
    fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

/*
 * The file-mode attempts: `how` names the call, `mode` what it asks for. The
 * file is FOLDER/corral-probe-<attempt>; a call that does not create it finds
 * it made, empty, beforehand. It is removed again whatever happened, so even
 * run as root outside any sandbox the probe leaves nothing behind.
 */
static int file_mode(const char *attempt, const char *folder, const char *how, mode_t mode) {
  if (folder == NULL) {
    fprintf(stderr, "%s: needs a FOLDER the probe may write\n", attempt);
    return 2;
  }
  char path[4096];
  if (snprintf(path, sizeof path, "%s/corral-probe-%s", folder, attempt) >= (int)sizeof path) return setup_failed(attempt, "path too long");
  const long create = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  int made_first = strcmp(how, "chmod") == 0 || strcmp(how, "fchmod") == 0 || strcmp(how, "fchmodat") == 0 ||
                   strcmp(how, "fchmodat2") == 0 || strcmp(how, "open-existing") == 0;
  unlink(path);
  if (made_first) {
    int fd = open(path, (int)create, 0600);
    if (fd < 0) return setup_failed(attempt, "create the file");
    close(fd);
  }
  long rc = -1;
  errno = ENOSYS;
  if (strcmp(how, "fchmod") == 0) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) rc = syscall(SYS_fchmod, (long)fd, (long)mode);
    if (fd >= 0) close(fd);
  }
  if (strcmp(how, "fchmodat") == 0) rc = syscall(SYS_fchmodat, (long)AT_FDCWD, path, (long)mode);
  if (strcmp(how, "fchmodat2") == 0) rc = syscall(__NR_fchmodat2, (long)AT_FDCWD, path, (long)mode, 0L);
  if (strcmp(how, "mknodat") == 0) rc = syscall(SYS_mknodat, (long)AT_FDCWD, path, (long)(S_IFREG | mode), 0L);
  if (strcmp(how, "openat") == 0) rc = syscall(SYS_openat, (long)AT_FDCWD, path, create, (long)mode);
  /* An unnamed file in FOLDER, which linkat could then give a name. */
  if (strcmp(how, "openat-tmpfile") == 0) rc = syscall(SYS_openat, (long)AT_FDCWD, folder, (long)(O_WRONLY | O_TMPFILE | O_CLOEXEC), (long)mode);
  /* No O_CREAT: the kernel ignores the mode, so the filter must not refuse it. */
  if (strcmp(how, "open-existing") == 0) rc = syscall(SYS_openat, (long)AT_FDCWD, path, (long)(O_RDONLY | O_CLOEXEC), (long)mode);
  if (strcmp(how, "openat2") == 0 || strcmp(how, "openat2-written") == 0) {
    struct open_how oh;
    memset(&oh, 0, sizeof oh);
    oh.flags = (unsigned long long)create;
    oh.mode = mode;
    rc = syscall(SYS_openat2, (long)AT_FDCWD, path, &oh, (long)sizeof oh);
    /* Given content, as a program would be: the kernel drops S_ISUID/S_ISGID at the write unless
       the writer has CAP_FSETID. Still set after it is a failure (EPERM stands for "kept"). */
    if (rc >= 0 && strcmp(how, "openat2-written") == 0) {
      struct stat st;
      if (write((int)rc, "#!/bin/sh\n", 10) != 10 || fstat((int)rc, &st) != 0) return setup_failed(attempt, "write and stat the file");
      if (st.st_mode & 06000) {
        close((int)rc);
        rc = -1;
        errno = EPERM;
        fprintf(stderr, "%s: the file kept mode %o after the write\n", attempt, (unsigned)(st.st_mode & 07777));
      }
    }
  }
#if defined(__x86_64__)
  if (strcmp(how, "chmod") == 0) rc = syscall(SYS_chmod, path, (long)mode);
  if (strcmp(how, "mknod") == 0) rc = syscall(SYS_mknod, path, (long)(S_IFREG | mode), 0L);
  if (strcmp(how, "creat") == 0) rc = syscall(SYS_creat, path, (long)mode);
  if (strcmp(how, "open") == 0) rc = syscall(SYS_open, path, create, (long)mode);
#endif
  int saved = errno;
  /* open, openat, openat2 and creat return a descriptor. */
  if (rc >= 0 && (strncmp(how, "open", 4) == 0 || strcmp(how, "creat") == 0)) close((int)rc);
  unlink(path);
  errno = saved;
  return report(attempt, rc);
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: syscall-probe ATTEMPT [FOLDER]\n");
    return 2;
  }
  const char *a = argv[1];
  const char *folder = argc == 3 ? argv[2] : NULL;
#define IS(name) (strcmp(a, name) == 0)

  /* A baseline that any filter must allow. */
  if (IS("getpid")) return report(a, syscall(SYS_getpid));

  /* Other processes. */
  if (IS("ptrace")) return report(a, do_ptrace_attach());
  if (IS("process_vm_readv")) return report(a, do_process_vm(0));
  if (IS("process_vm_writev")) return report(a, do_process_vm(1));
  if (IS("pidfd_getfd")) {
    long pidfd = syscall(SYS_pidfd_open, (long)getpid(), 0L);
    if (pidfd < 0) return setup_failed(a, "pidfd_open");
    return report(a, syscall(SYS_pidfd_getfd, pidfd, 0L, 0L));
  }

  /* Mounts. */
  if (IS("mount")) return report(a, syscall(SYS_mount, "none", MISSING, "tmpfs", 0UL, NULL));
  if (IS("umount2")) return report(a, syscall(SYS_umount2, MISSING, 0L));
  if (IS("pivot_root")) return report(a, syscall(SYS_pivot_root, MISSING, MISSING));
  if (IS("chroot")) return report(a, syscall(SYS_chroot, "/"));
  if (IS("fsopen")) return report(a, syscall(SYS_fsopen, "tmpfs", 0L));
  if (IS("fsconfig")) return report(a, syscall(SYS_fsconfig, -1L, 0L, NULL, NULL, 0L));
  if (IS("fsmount")) return report(a, syscall(SYS_fsmount, -1L, 0L, 0L));
  if (IS("fspick")) return report(a, syscall(SYS_fspick, (long)AT_FDCWD, MISSING, 0L));
  if (IS("move_mount")) return report(a, syscall(SYS_move_mount, -1L, "", -1L, "", 0L));
  if (IS("open_tree")) return report(a, syscall(SYS_open_tree, (long)AT_FDCWD, "/", 0L));
  if (IS("open_tree_attr")) return report(a, syscall(__NR_open_tree_attr, (long)AT_FDCWD, "/", 0L, NULL, 0L));
  if (IS("mount_setattr")) return report(a, syscall(SYS_mount_setattr, -1L, "", 0xffffffffUL, NULL, 0L));

  /* Namespaces. */
  if (IS("unshare-user")) return report(a, syscall(SYS_unshare, (long)CLONE_NEWUSER));
  if (IS("unshare-net")) return report(a, syscall(SYS_unshare, (long)CLONE_NEWNET));
  if (IS("unshare-mount")) return report(a, syscall(SYS_unshare, (long)CLONE_NEWNS));
  if (IS("setns")) {
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return setup_failed(a, "open /proc/self/ns/net");
    return report(a, syscall(SYS_setns, (long)fd, (long)CLONE_NEWNET));
  }
  if (IS("clone-fork")) return report(a, clone_and_reap(0));
  if (IS("clone-thread-flags")) return report(a, clone_and_reap(CLONE_FS | CLONE_FILES));
  if (IS("clone-newuser")) return report(a, clone_and_reap(CLONE_NEWUSER));
  if (IS("clone-newns")) return report(a, clone_and_reap(CLONE_NEWNS));
  if (IS("clone-newnet")) return report(a, clone_and_reap(CLONE_NEWNET));
  if (IS("clone-newpid")) return report(a, clone_and_reap(CLONE_NEWPID));
  if (IS("clone-newipc")) return report(a, clone_and_reap(CLONE_NEWIPC));
  if (IS("clone-newuts")) return report(a, clone_and_reap(CLONE_NEWUTS));
  if (IS("clone-newcgroup")) return report(a, clone_and_reap(CLONE_NEWCGROUP));
  if (IS("clone3")) return report(a, do_clone3(0));
  if (IS("clone3-newuser")) return report(a, do_clone3(CLONE_NEWUSER));

  /* Kernel keyrings (the probe's own process keyring: gone when it exits). */
  if (IS("keyctl")) return report(a, syscall(SYS_keyctl, 0L /* KEYCTL_GET_KEYRING_ID */, -2L /* KEY_SPEC_PROCESS_KEYRING */, 1L));
  if (IS("add_key")) return report(a, syscall(SYS_add_key, "user", "corral-probe", "x", 1L, -2L));
  if (IS("request_key")) return report(a, syscall(SYS_request_key, "user", "corral-probe-absent", NULL, -2L));

  /* Kernel attack surface. */
  if (IS("bpf")) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return report(a, syscall(SYS_bpf, (long)BPF_MAP_CREATE, &attr, (long)sizeof attr));
  }
  if (IS("perf_event_open")) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return report(a, syscall(SYS_perf_event_open, &attr, 0L, -1L, -1L, 0L));
  }
  if (IS("userfaultfd")) return report(a, syscall(SYS_userfaultfd, (long)(O_CLOEXEC | UFFD_USER_MODE_ONLY)));
  if (IS("lookup_dcookie")) return report(a, syscall(SYS_lookup_dcookie, 0L, NULL, 0L));
  if (IS("io_uring_setup")) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    return report(a, syscall(SYS_io_uring_setup, 1L, &params));
  }
  if (IS("io_uring_enter")) return report(a, syscall(SYS_io_uring_enter, -1L, 0L, 0L, 0L, NULL, 0L));
  if (IS("io_uring_register")) return report(a, syscall(SYS_io_uring_register, -1L, 0L, NULL, 0L));

  /* Kernel code. kexec_load with too many segments, reboot with a bad magic. */
  if (IS("kexec_load")) return report(a, syscall(SYS_kexec_load, 0L, 1000L, NULL, 0L));
  if (IS("kexec_file_load")) return report(a, syscall(SYS_kexec_file_load, -1L, -1L, 0L, NULL, 0x80000000UL));
  if (IS("init_module")) return report(a, syscall(SYS_init_module, NULL, 0L, ""));
  if (IS("finit_module")) return report(a, syscall(SYS_finit_module, -1L, "", 0L));
  if (IS("delete_module")) return report(a, syscall(SYS_delete_module, "corral_probe_absent", (long)O_NONBLOCK));
  if (IS("reboot")) return report(a, syscall(SYS_reboot, 0L, 0L, 0L, NULL));

  /* Files by handle. */
  if (IS("name_to_handle_at")) {
    struct { struct file_handle fh; unsigned char bytes[128]; } h;
    int mount_id;
    h.fh.handle_bytes = sizeof h.bytes;
    return report(a, syscall(SYS_name_to_handle_at, (long)AT_FDCWD, "/", &h.fh, &mount_id, 0L));
  }
  if (IS("open_by_handle_at")) {
    struct { struct file_handle fh; unsigned char bytes[8]; } h;
    memset(&h, 0, sizeof h);
    h.fh.handle_bytes = sizeof h.bytes;
    h.fh.handle_type = 1;
    int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return setup_failed(a, "open /");
    return report(a, syscall(SYS_open_by_handle_at, (long)root, &h.fh, (long)O_RDONLY));
  }

  /* Host administration. */
  if (IS("swapon")) return report(a, syscall(SYS_swapon, MISSING, 0L));
  if (IS("swapoff")) return report(a, syscall(SYS_swapoff, MISSING));
  if (IS("acct")) return report(a, syscall(SYS_acct, MISSING));
  if (IS("quotactl")) {
    char buf[256];
    unsigned long cmd = (0x800005UL /* Q_GETINFO */ << 8) | 0 /* USRQUOTA */;
    return report(a, syscall(SYS_quotactl, cmd, MISSING, 0L, buf));
  }
  if (IS("quotactl_fd")) return report(a, syscall(SYS_quotactl_fd, -1L, 0L, 0L, NULL));
  if (IS("syslog")) return report(a, syscall(SYS_syslog, 10L /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0L));
  if (IS("nfsservctl")) return report(a, syscall(SYS_nfsservctl, 0L, NULL, NULL));

  /* Clocks: invalid values to set, mode 0 (read only) to adjust. */
  if (IS("settimeofday")) {
    struct timeval tv = { 0, 2000000 };
    return report(a, syscall(SYS_settimeofday, &tv, NULL));
  }
  if (IS("clock_settime")) {
    struct timespec ts = { 0, 0 };
    return report(a, syscall(SYS_clock_settime, (long)CLOCK_MONOTONIC, &ts));
  }
  if (IS("adjtimex")) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    return report(a, syscall(SYS_adjtimex, &tx));
  }
  if (IS("clock_adjtime")) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    return report(a, syscall(SYS_clock_adjtime, (long)CLOCK_REALTIME, &tx));
  }

  /* personality: the truncating kernel reads only the low 32 bits. */
  if (IS("personality-query")) return report(a, syscall(SYS_personality, 0xffffffffUL));
  if (IS("personality-linux")) return report(a, syscall(SYS_personality, (unsigned long)PER_LINUX));
  if (IS("personality-linux32")) return report(a, syscall(SYS_personality, (unsigned long)PER_LINUX32));
  if (IS("personality-addr-no-randomize")) return report(a, syscall(SYS_personality, (unsigned long)(PER_LINUX | ADDR_NO_RANDOMIZE)));
  if (IS("personality-read-implies-exec")) return report(a, syscall(SYS_personality, (unsigned long)(PER_LINUX | READ_IMPLIES_EXEC)));
  if (IS("personality-high-bits")) return report(a, syscall(SYS_personality, HIGH_WORD | ADDR_NO_RANDOMIZE));

  /* Sockets. */
  if (IS("socket-unix")) return report(a, do_socket(AF_UNIX, SOCK_STREAM, 0));
  if (IS("socket-inet-stream")) return report(a, do_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (IS("socket-inet6-dgram")) return report(a, do_socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0));
  if (IS("socket-netlink")) return report(a, do_socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */));
  if (IS("socket-netlink-high-bits")) return report(a, do_socket(HIGH_WORD | AF_NETLINK, SOCK_RAW, 0));
  if (IS("socket-packet")) return report(a, do_socket(AF_PACKET, SOCK_RAW, 0));
  if (IS("socket-inet-packet")) return report(a, do_socket(AF_INET, SOCK_PACKET, 0)); /* the kernel makes it an AF_PACKET socket */
  if (IS("socket-vsock")) return report(a, do_socket(40 /* AF_VSOCK */, SOCK_STREAM, 0));
  if (IS("socket-raw-inet")) return report(a, do_socket(AF_INET, SOCK_RAW, 1 /* IPPROTO_ICMP */));
  if (IS("socket-raw-inet6-flags")) return report(a, do_socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 58 /* IPPROTO_ICMPV6 */));
  if (IS("socketpair-unix")) return report(a, do_socketpair(AF_UNIX, SOCK_STREAM));
  if (IS("socketpair-netlink")) return report(a, do_socketpair(AF_NETLINK, SOCK_RAW));

  /* Terminal input injection. */
  if (IS("tiocsti")) { char c = 'x'; return tty_ioctl(a, TIOCSTI, &c); }
  if (IS("tiocsti-high-bits")) { char c = 'x'; return tty_ioctl(a, HIGH_WORD | TIOCSTI, &c); }
  if (IS("tioclinux")) { char sub = 6 /* TIOCL_GETSHIFTSTATE */; return tty_ioctl(a, TIOCLINUX, &sub); }
  if (IS("ioctl-winsize")) { struct winsize ws; return tty_ioctl(a, TIOCGWINSZ, &ws); }

  /* Set-user-ID and set-group-ID files, and the ordinary modes that must still work. */
  if (IS("mode-fchmod-setuid")) return file_mode(a, folder, "fchmod", 04755);
  if (IS("mode-fchmod-755")) return file_mode(a, folder, "fchmod", 0755);
  if (IS("mode-fchmodat-setgid")) return file_mode(a, folder, "fchmodat", 02755);
  if (IS("mode-fchmodat-sticky-644")) return file_mode(a, folder, "fchmodat", 01644);
  if (IS("mode-fchmodat2-setuid")) return file_mode(a, folder, "fchmodat2", 04755);
  if (IS("mode-mknodat-setuid")) return file_mode(a, folder, "mknodat", 04755);
  if (IS("mode-mknodat-644")) return file_mode(a, folder, "mknodat", 0644);
  if (IS("mode-openat-setuid")) return file_mode(a, folder, "openat", 04755);
  if (IS("mode-openat-755")) return file_mode(a, folder, "openat", 0755);
  if (IS("mode-openat-tmpfile-setgid")) return file_mode(a, folder, "openat-tmpfile", 02755);
  if (IS("mode-openat-existing-setuid")) return file_mode(a, folder, "open-existing", 04755);
  if (IS("mode-openat2-644")) return file_mode(a, folder, "openat2", 0644);
  if (IS("mode-openat2-setuid-written")) return file_mode(a, folder, "openat2-written", 04755);
#if defined(__x86_64__)
  if (IS("mode-chmod-setuid")) return file_mode(a, folder, "chmod", 06755);
  if (IS("mode-chmod-644")) return file_mode(a, folder, "chmod", 0644);
  if (IS("mode-mknod-setgid")) return file_mode(a, folder, "mknod", 02755);
  if (IS("mode-creat-setuid")) return file_mode(a, folder, "creat", 04755);
  if (IS("mode-open-setuid")) return file_mode(a, folder, "open", 04755);
#endif

#if defined(__x86_64__)
  if (IS("iopl")) return report(a, syscall(SYS_iopl, 0L)); /* level 0: a no-op */
  if (IS("ioperm")) return report(a, syscall(SYS_ioperm, 0x80L, 1L, 0L)); /* turning access off */
  if (IS("modify_ldt")) { char buf[16]; return report(a, syscall(SYS_modify_ldt, 0L, buf, (long)sizeof buf)); } /* read */
  if (IS("uselib")) return report(a, syscall(SYS_uselib, MISSING));
  /* The x32 ABI: getpid with the x32 bit set. */
  if (IS("x32-getpid")) return report(a, syscall(0x40000000L | SYS_getpid));
  /* The i386 ABI from a 64-bit process: getpid is 20 there. */
  if (IS("int80-getpid")) {
    long rc;
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
    if (rc < 0) { errno = (int)-rc; rc = -1; }
    return report(a, rc);
  }
#endif

  fprintf(stderr, "syscall-probe: unknown attempt '%s' on this architecture\n", a);
  return 2;
}
