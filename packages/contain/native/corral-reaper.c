/*
 * corral-reaper: the parent Corral gives a sandbox's bubblewrap on the host. It
 * ends the whole sandbox when Corral ends, however Corral ends (SIGKILL too), at
 * any point of the sandbox's start or run:
 *
 *   corral-reaper FD [--join TASKS]... -- PROGRAM [ARG]...
 *
 * FD is the lifeline: a descriptor whose other end only Corral holds. Anything
 * on it (Corral closed its end to kill the sandbox, or Corral's process ended
 * and the kernel closed it) ends every process below this one.
 *
 * Why it is needed: bubblewrap's --die-with-parent gives the sandbox's first
 * process (the init of its PID namespace, whose end ends every process inside)
 * its parent-death signal only once bubblewrap has set the sandbox up. Killed
 * with Corral before then, bubblewrap leaves that process behind, reparented:
 * waiting for good for a word bubblewrap never wrote, or going on to run the
 * command on its own, in no cgroup, once the descriptor that held it reads
 * end of file. This process is a child subreaper, so such a process is
 * reparented here instead, and killed.
 *
 * PROGRAM (bubblewrap, or prlimit that execs it; a full path) gets a parent-death
 * signal before it is exec'd, so it never outlives this process, even before
 * bubblewrap sets its own. This process exits as PROGRAM did (its code, or the
 * signal that ended it) once nothing is left below it; ended by its lifeline,
 * it ends by SIGKILL. Its own failures are told on standard error as
 * "corral-reaper: ..." with exit code 1, as bubblewrap tells its own.
 *
 * Each --join names a cgroup v1 `tasks` file: PROGRAM moves itself there
 * before it is exec'd, so the whole sandbox, bubblewrap with it, starts inside
 * its groups; one it cannot join, it is never run. Writing 0 there moves the
 * writer's own thread, which the kernel does without the lock it takes to
 * move another process (waiting out a grace period: about 10 ms, against
 * 20 µs here).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what) {
  fprintf(stderr, "corral-reaper: %s: %s\n", what, strerror(errno));
  _exit(1);
}

/* Sends SIGKILL to every child of this process, from each process's /proc/PID/stat (its parent follows the command name's closing parenthesis). */
static void kill_children(pid_t self) {
  DIR *proc = opendir("/proc");
  if (proc == NULL) fail("cannot list /proc");
  struct dirent *entry;
  while ((entry = readdir(proc)) != NULL) {
    if (!isdigit((unsigned char)entry->d_name[0])) continue;
    char path[sizeof entry->d_name + 16], stat[512];
    snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
    FILE *f = fopen(path, "re");
    if (f == NULL) continue; /* Gone since it was listed. */
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    char *end = strrchr(stat, ')');
    int ppid;
    if (end != NULL && sscanf(end + 1, " %*c %d", &ppid) == 1 && ppid == self) kill((pid_t)atoi(entry->d_name), SIGKILL);
  }
  closedir(proc);
}

int main(int argc, char **argv) {
  char *end;
  long lifeline = argc > 1 ? strtol(argv[1], &end, 10) : -1;
  /* The --join options, argv[2] up to the "--" before PROGRAM. */
  int first_join = 2, command = 2;
  while (command + 1 < argc && strcmp(argv[command], "--join") == 0) command += 2;
  if (command + 1 >= argc || *argv[1] == '\0' || *end != '\0' || lifeline < 3 || lifeline > 65535 || strcmp(argv[command], "--") != 0) {
    fprintf(stderr, "corral-reaper: usage: corral-reaper FD [--join TASKS]... -- PROGRAM [ARG]...\n");
    return 1;
  }
  command += 1;
  pid_t self = getpid();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail("cannot become a child subreaper");
  /* SIGCHLD is read from a signalfd; blocked from here, so none is lost before it exists. */
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, &old) < 0) fail("sigprocmask");
  pid_t program = fork();
  if (program < 0) fail("fork");
  if (program == 0) {
    /* Set, then checked: a parent that ended before it was set would never send it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != self) _exit(1);
    close((int)lifeline);
    for (int i = first_join + 1; i < command - 1; i += 2) {
      int tasks = open(argv[i], O_WRONLY | O_CLOEXEC);
      if (tasks < 0 || write(tasks, "0", 1) != 1) {
        fprintf(stderr, "corral-reaper: cannot join the cgroup %s: %s\n", argv[i], strerror(errno));
        _exit(1);
      }
      close(tasks);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    execv(argv[command], &argv[command]);
    fprintf(stderr, "corral-reaper: cannot run %s: %s\n", argv[command], strerror(errno));
    _exit(1);
  }
  int signals = signalfd(-1, &chld, SFD_CLOEXEC);
  if (signals < 0) fail("signalfd");
  int status = 0, ended = 0, cut = 0;
  while (!ended && !cut) {
    struct pollfd fds[2] = {{.fd = (int)lifeline, .events = POLLIN}, {.fd = signals, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    if (fds[0].revents != 0) cut = 1;
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo info;
      if (read(signals, &info, sizeof info) < 0 && errno != EAGAIN) fail("read signalfd");
      int st;
      pid_t pid;
      while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == program) status = st, ended = 1;
      }
    }
  }
  if (cut && !ended) kill(program, SIGKILL);
  /*
   * Whatever is left below: everything (cut), or what PROGRAM left, reparented
   * here. Each end may reparent more. Listing /proc takes milliseconds (most of
   * a sandbox's run of `true`), so it is read only while a child is left.
   */
  for (;;) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break; /* No child left. */
    if (pid == 0) {
      kill_children(self);
      pid = waitpid(-1, &st, 0);
      if (pid < 0) continue;
    }
    if (pid == program && !ended) status = st, ended = 1;
  }
  if (cut || !ended || WIFSIGNALED(status)) {
    int sig = cut || !ended ? SIGKILL : WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    raise(sig);
    return 128 + sig;
  }
  return WEXITSTATUS(status);
}
