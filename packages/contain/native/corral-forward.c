/*
 * corral-forward: the first program of a contained command whose policy grants
 * network access. It opens the sandbox's side of Corral's network plumbing,
 * detaches a relay process, and then becomes the command itself:
 *
 *   corral-forward [-e PORT:SOCKET]... [-i SOCKET:PORT]... -- COMMAND [ARG]...
 *   corral-forward [-e PORT:SOCKET]... [-i SOCKET:PORT]... -s FD --
 *
 *   -e PORT:SOCKET  listen on 127.0.0.1:PORT inside the sandbox and relay each
 *                   connection to the unix SOCKET (Corral's egress proxy, bound
 *                   in from the host);
 *   -i SOCKET:PORT  listen on the unix SOCKET (reached from the host's published
 *                   port) and relay each connection to 127.0.0.1:PORT inside;
 *   -s FD           read COMMAND and its arguments from FD instead: each one
 *                   ended by a NUL byte, until end of file (having first
 *                   written one byte to FD to say it is ready). A sandbox started
 *                   ahead of its run (Runner.keepWarm) waits here, set up and
 *                   ready, until Corral writes the command it is to become.
 *                   The environment and working directory are the sandbox's
 *                   own: both belong to the plan the sandbox was made for.
 *
 * Every listener exists before COMMAND starts, so COMMAND may connect at once.
 * The relay is a child of the sandbox's init, so COMMAND never waits for it.
 * It enforces nothing: the policy is enforced by the proxy outside the sandbox.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LISTENERS 64
#define BUFFER_SIZE 65536
/* The kernel's own bound on a command line (ARG_MAX on Linux is at most this). */
#define MAX_SPEC_BYTES (2 * 1024 * 1024)
#define MAX_SPEC_ARGS 65536

struct listener {
  int fd;
  int to_unix;              /* 1: relay to the unix socket `path`; 0: to 127.0.0.1:`port` */
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  int port;
};

static struct listener listeners[MAX_LISTENERS];
static int count;

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "corral-forward: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(errno));
  _exit(125);
}

static int parse_port(const char *text) {
  char *end;
  long port = strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || port < 1 || port > 65535) {
    errno = EINVAL;
    fail("bad port", text);
  }
  return (int)port;
}

static void copy_path(char *dest, const char *text) {
  if (strlen(text) >= sizeof(listeners[0].path)) {
    errno = ENAMETOOLONG;
    fail("socket path too long", text);
  }
  strcpy(dest, text);
}

static int tcp_socket(int port, int do_listen) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (do_listen) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 128) < 0) return close(fd), -1;
  } else if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    return close(fd), -1;
  }
  return fd;
}

static int unix_socket(const char *path, int do_listen) {
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, path);
  if (do_listen) {
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(path, 0600) < 0 || listen(fd, 128) < 0) return close(fd), -1;
  } else if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    return close(fd), -1;
  }
  return fd;
}

/*
 * One direction of a relayed connection: what was read from `from` and is not
 * yet written to `to`. Bytes go through a pipe with splice(2), so they never
 * pass through this process, else (a descriptor splice cannot take) through
 * `buf`. Nothing more is read until what was read is written: a slow reader
 * holds its writer back, and never the other direction.
 */
struct flow {
  int from, to;
  int pipe[2];    /* -1, -1 once splice cannot be used */
  size_t pending; /* bytes read and not yet written: in the pipe, or at buf + off */
  size_t off;
  int eof;        /* `from` has ended */
  int done;       /* and all of it was written: `to` is shut down for writing */
  char buf[BUFFER_SIZE];
};

/* Reads what `from` has ready (pending is 0). 0 on progress, at end of input or when nothing was ready; -1 on an error. */
static int fill(struct flow *f) {
  if (f->pipe[0] >= 0) {
    ssize_t n = splice(f->from, NULL, f->pipe[1], NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n < 0 && errno == EINVAL) {
      close(f->pipe[0]);
      close(f->pipe[1]);
      f->pipe[0] = f->pipe[1] = -1;
      return fill(f);
    }
    if (n < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0) f->eof = 1;
    f->pending = (size_t)n;
    return 0;
  }
  ssize_t n = read(f->from, f->buf, sizeof f->buf);
  if (n < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
  if (n == 0) f->eof = 1;
  f->pending = (size_t)n;
  f->off = 0;
  return 0;
}

/* Writes what `to` takes now of what is pending. 0 on progress or when `to` is full (wait for POLLOUT); -1 on an error. */
static int drain(struct flow *f) {
  while (f->pending > 0) {
    ssize_t m = f->pipe[0] >= 0 ? splice(f->pipe[0], NULL, f->to, NULL, f->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                                : write(f->to, f->buf + f->off, f->pending);
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && errno == EAGAIN) return 0;
    if (m <= 0) return -1;
    f->pending -= (size_t)m;
    f->off += (size_t)m;
  }
  return 0;
}

/*
 * Copies both ways until both sides have finished; half-closes pass through.
 * Both descriptors are made non-blocking: a direction whose reader is slow
 * waits in poll() for room, while the other direction goes on (a blocking
 * write would stall both, and deadlock a full-duplex protocol).
 */
static void relay(int a, int b) {
  static struct flow flows[2];
  flows[0] = (struct flow){.from = a, .to = b};
  flows[1] = (struct flow){.from = b, .to = a};
  if (fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK) < 0 || fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK) < 0) return;
  for (int i = 0; i < 2; i++) {
    if (pipe2(flows[i].pipe, O_CLOEXEC) < 0) flows[i].pipe[0] = flows[i].pipe[1] = -1;
    else fcntl(flows[i].pipe[1], F_SETPIPE_SZ, 1 << 20);
  }
  while (!flows[0].done || !flows[1].done) {
    struct pollfd fds[2];
    for (int i = 0; i < 2; i++) {
      struct flow *f = &flows[i];
      /* Pending bytes wait for room in `to`; otherwise more is read from `from`. */
      fds[i] = f->done ? (struct pollfd){.fd = -1} : f->pending > 0 ? (struct pollfd){.fd = f->to, .events = POLLOUT} : (struct pollfd){.fd = f->from, .events = POLLIN};
    }
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; i++) {
      struct flow *f = &flows[i];
      if (f->done || !(fds[i].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) continue;
      if (f->pending == 0 && fill(f) < 0) return;
      if (drain(f) < 0) return;
      if (f->eof && f->pending == 0) {
        shutdown(f->to, SHUT_WR);
        f->done = 1;
      }
    }
  }
}

/* Serves the listeners until the command (process `command`) has exited. */
static void serve(pid_t command) {
  struct pollfd fds[MAX_LISTENERS + 1];
  for (int i = 0; i < count; i++) fds[i] = (struct pollfd){.fd = listeners[i].fd, .events = POLLIN};
  /* A pidfd turns readable when the command exits; without one (kernel < 5.3) the sandbox's end stops the relay. */
  int pidfd = (int)syscall(SYS_pidfd_open, command, 0);
  nfds_t watched = (nfds_t)count;
  if (pidfd >= 0) fds[watched++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
  /* The relay prints nothing and must not hold the command's output open. */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
  }
  signal(SIGCHLD, SIG_IGN); /* per-connection relays are reaped by the kernel */
  for (;;) {
    if (poll(fds, watched, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(125);
    }
    if (pidfd >= 0 && (fds[count].revents & POLLIN)) _exit(0);
    for (int i = 0; i < count; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      int client = accept4(listeners[i].fd, NULL, NULL, SOCK_CLOEXEC);
      if (client < 0) continue;
      pid_t pid = fork();
      if (pid == 0) {
        for (int j = 0; j < count; j++) close(listeners[j].fd);
        int upstream = listeners[i].to_unix ? unix_socket(listeners[i].path, 0) : tcp_socket(listeners[i].port, 0);
        if (upstream >= 0) relay(client, upstream);
        _exit(0);
      }
      close(client);
    }
  }
}

/*
 * Says "ready" on fd (one byte; Corral passes a socket), then reads the
 * NUL-ended words of a command line from it until end of file and closes it.
 * Ready means bubblewrap has finished: every mount, the seccomp filter and the
 * parent-death signal are in place, so the sandbox is whole from here on.
 */
static char **read_command(int fd) {
  while (write(fd, "r", 1) < 0 && errno == EINTR) {
  }
  char *spec = malloc(MAX_SPEC_BYTES);
  if (spec == NULL) fail("out of memory", NULL);
  size_t len = 0;
  for (;;) {
    if (len == MAX_SPEC_BYTES) {
      errno = E2BIG;
      fail("command line too long", NULL);
    }
    ssize_t n = read(fd, spec + len, MAX_SPEC_BYTES - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read the command from fd", NULL);
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  if (len == 0 || spec[len - 1] != '\0' || spec[0] == '\0') {
    errno = EINVAL;
    fail("no command received", NULL);
  }
  size_t words = 0;
  for (size_t i = 0; i < len; i++) words += spec[i] == '\0';
  if (words > MAX_SPEC_ARGS) {
    errno = E2BIG;
    fail("too many arguments", NULL);
  }
  char **out = calloc(words + 1, sizeof *out);
  if (out == NULL) fail("out of memory", NULL);
  size_t w = 0;
  for (size_t i = 0; i < len; i += strlen(spec + i) + 1) out[w++] = spec + i;
  return out;
}

int main(int argc, char **argv) {
  int spec_fd = -1;
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (i + 1 < argc && strcmp(argv[i], "-s") == 0 && spec_fd < 0) {
      char *end;
      long fd = strtol(argv[++i], &end, 10);
      if (*argv[i] == '\0' || *end != '\0' || fd < 3 || fd > 1023) {
        errno = EINVAL;
        fail("bad command fd", argv[i]);
      }
      spec_fd = (int)fd;
      continue;
    }
    if (count == MAX_LISTENERS || i + 1 >= argc || (strcmp(argv[i], "-e") != 0 && strcmp(argv[i], "-i") != 0)) {
      fprintf(stderr, "usage: corral-forward [-e PORT:SOCKET]... [-i SOCKET:PORT]... {-s FD -- | -- COMMAND [ARG]...}\n");
      return 125;
    }
    int egress = argv[i][1] == 'e';
    char *spec = argv[++i];
    char *colon = egress ? strchr(spec, ':') : strrchr(spec, ':');
    if (colon == NULL) {
      errno = EINVAL;
      fail("bad listener", spec);
    }
    *colon = '\0';
    struct listener *l = &listeners[count++];
    if (egress) {
      l->to_unix = 1;
      copy_path(l->path, colon + 1);
      l->fd = tcp_socket(parse_port(spec), 1);
      if (l->fd < 0) fail("cannot listen on 127.0.0.1 port", spec);
    } else {
      l->to_unix = 0;
      l->port = parse_port(colon + 1);
      l->fd = unix_socket(spec, 1);
      if (l->fd < 0) fail("cannot listen on", spec);
    }
  }
  if (spec_fd < 0 ? i + 1 >= argc : i + 1 != argc) {
    fprintf(stderr, spec_fd < 0 ? "corral-forward: no command after --\n" : "corral-forward: -s FD takes the command from FD, not after --\n");
    return 125;
  }
  if (count > 0) {
    pid_t command = getpid();
    /* The relay is made a sibling of the command (a child of the sandbox's init, which reaps it),
       so the command never waits for it and starts without waiting for it either. */
    pid_t relay_pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (relay_pid == 0) serve(command);
    if (relay_pid < 0) {
      /* CLONE_PARENT is refused to a namespace's init: fork twice and let the middle process exit. */
      pid_t child = fork();
      if (child < 0) fail("fork", NULL);
      if (child == 0) {
        if (fork() == 0) serve(command);
        _exit(0);
      }
      while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
      }
    }
  }
  char **command = spec_fd < 0 ? &argv[i + 1] : read_command(spec_fd);
  execvp(command[0], command);
  fprintf(stderr, "corral-forward: execvp %s: %s\n", command[0], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
