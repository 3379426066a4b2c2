/*
 * forge-sandbox: the container runtime of the embedded backend (crates/local).
 *
 * One small program, started by the backend once per sandbox start:
 *
 *   forge-sandbox start --root DIR --uid U --gid G --hostname H --workdir W
 *                       [--mount KIND:ARGS]... [--cgroup FILE]... [--forward PORT]...
 *                       [--net ARG]... [--ctl-fd N]
 *
 * The process the backend starts is the sandbox's *monitor* (like podman's conmon): it clones
 * the sandbox's *init* into new user, mount, pid, network, ipc, uts and cgroup namespaces,
 * maps the init's user to uid/gid 1000 inside (U/G outside), puts it into the sandbox's
 * cgroups, attaches the network (slirp4netns or pasta, argv given with --net, `{pid}` and
 * `{exitfd}` / `{readyfd}` replaced), relays the host ports the sandbox may reach
 * (--forward), and then waits for the init. It prints `pid <init pid> <start time>` and then
 * `ready` (or `error <text>`) on stdout, one line each, and exits when the init exits.
 * It runs in its own session, so a terminal's Ctrl-C does not reach it: a sandbox outlives the
 * backend that started it.
 *
 * The init builds the sandbox's file system (the sandbox's root folder as `/`, the machine's
 * toolchain read-only, its own /proc, /dev, /tmp), drops every capability, becomes uid 1000
 * and then serves the backend on the control socket it inherited (--ctl-fd, a listening unix
 * socket whose path is in the backend's private folder, not in the sandbox): it starts
 * commands, signals them, hands out sockets made inside the sandbox's network namespace
 * (connections to the sandbox's own ports for previews, a sock_diag socket to list them), and
 * pseudo-terminals made in the sandbox's own devpts (for the toolbox's PTY sessions).
 *
 * Each command has a monitor of its own (a fork of the init, inside the sandbox): it starts
 * the command in its own process group (or, for a terminal, its own session with the pty as
 * its controlling terminal), is the subreaper of everything the command starts,
 * reports the exit code on an events pipe (and into an exit file, read again by a backend
 * started later), and, for session commands, writes the command's output into the log file
 * in the daemon's marked format (`\1\1\1` stdout line, `\2\2\2` stderr line), keeping at most
 * a bound of it by punching out the oldest part.
 *
 * Nothing here trusts the sandbox: the init and the monitors are not dumpable (no ptrace, no
 * /proc/<pid>/fd by the sandbox's own user), the init is pid 1 (signals from inside are
 * ignored), no directory of the host is ever passed in, and no_new_privs is set.
 *
 * Control protocol (stream socket, one request per connection): a frame is a u32 length
 * (little endian) followed by that many bytes; the first byte of a request is its op; file
 * descriptors travel with the first byte (SCM_RIGHTS). An answer is a frame: i32 errno (0 ok),
 * i32 value, then a message; descriptors attached.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_KEEP_SIZE 0x01
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define MAX_ITEMS 64
#define INNER_ID 1000
#define MAX_FRAME (64u * 1024 * 1024)
#define MAX_FDS 8

/* ---------------------------------------------------------------- small helpers */

static void die(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  dprintf(1, "error %s\n", buf);
  _exit(125);
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int read_all(int fd, void *data, size_t len) {
  char *p = data;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = write_all(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return r;
}

/* Process start time (clock ticks since boot, field 22 of /proc/<pid>/stat): with the pid it
 * names one process for good, so a backend started later never mistakes a reused pid. */
static unsigned long long start_time(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  p += 2; /* state */
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p ? strtoull(p, NULL, 10) : 0;
}

/* Sends `len` bytes with up to MAX_FDS descriptors attached. */
static int send_with_fds(int sock, const void *data, size_t len, const int *fds, int nfds) {
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds > 0) {
    memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  if ((size_t)n < len) return write_all(sock, (const char *)data + n, len - (size_t)n);
  return 0;
}

/* Receives up to `len` bytes (at least 1) and the descriptors that came with them. */
static ssize_t recv_with_fds(int sock, void *data, size_t len, int *fds, int *nfds) {
  struct iovec iov = {.iov_base = data, .iov_len = len};
  char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = sizeof control};
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  *nfds = 0;
  if (n <= 0) return n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      int *got = (int *)CMSG_DATA(c);
      for (int i = 0; i < count; i++) {
        if (*nfds < MAX_FDS) fds[(*nfds)++] = got[i];
        else close(got[i]);
      }
    }
  }
  return n;
}

/* ---------------------------------------------------------------- options */

struct options {
  const char *root, *hostname, *workdir;
  uid_t uid;
  gid_t gid;
  int ctl_fd;
  int namespaces; /* 0: an unconfined sandbox (host mode), see run_host_init */
  int network;    /* 0: start without the network tool (SIGRTMIN with 1 starts it, 0 stops it) */
  const char *mounts[MAX_ITEMS];
  int n_mounts;
  const char *cgroups[MAX_ITEMS];
  int n_cgroups;
  int forwards[MAX_ITEMS];
  int n_forwards;
  const char *net[MAX_ITEMS];
  int n_net;
};

static void parse(int argc, char **argv, struct options *o) {
  memset(o, 0, sizeof *o);
  o->ctl_fd = -1;
  o->namespaces = 1;
  o->network = 1;
  o->workdir = "/home/daytona";
  o->hostname = "sandbox";
  for (int i = 2; i < argc; i++) {
    const char *k = argv[i];
    if (i + 1 >= argc) die("option %s needs a value", k);
    const char *v = argv[++i];
    if (!strcmp(k, "--root")) o->root = v;
    else if (!strcmp(k, "--uid")) o->uid = (uid_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--gid")) o->gid = (gid_t)strtoul(v, NULL, 10);
    else if (!strcmp(k, "--hostname")) o->hostname = v;
    else if (!strcmp(k, "--workdir")) o->workdir = v;
    else if (!strcmp(k, "--ctl-fd")) o->ctl_fd = atoi(v);
    else if (!strcmp(k, "--namespaces")) o->namespaces = atoi(v);
    else if (!strcmp(k, "--network")) o->network = atoi(v);
    else if (!strcmp(k, "--mount") && o->n_mounts < MAX_ITEMS) o->mounts[o->n_mounts++] = v;
    else if (!strcmp(k, "--cgroup") && o->n_cgroups < MAX_ITEMS) o->cgroups[o->n_cgroups++] = v;
    else if (!strcmp(k, "--forward") && o->n_forwards < MAX_ITEMS) o->forwards[o->n_forwards++] = atoi(v);
    else if (!strcmp(k, "--net") && o->n_net < MAX_ITEMS - 1) o->net[o->n_net++] = v;
    else die("unknown option %s", k);
  }
  if (!o->root || o->root[0] != '/') die("--root must be an absolute path");
  if (o->ctl_fd < 0) die("--ctl-fd is required");
}

/* ---------------------------------------------------------------- the init: file system */

/* `root` + `dst` (dst absolute inside the sandbox). */
static void target_of(const struct options *o, const char *dst, char *out, size_t len) {
  snprintf(out, len, "%s%s", o->root, dst);
}

/* Read-only again after a bind, keeping the flags the kernel locks for a user namespace. */
static int remount_ro(const char *target, unsigned long extra) {
  struct statvfs st;
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | extra;
  if (statvfs(target, &st) == 0) {
    if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  return mount(NULL, target, NULL, flags, NULL);
}

static int bind_ro(const char *src, const char *target) {
  if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
  return remount_ro(target, MS_NOSUID);
}

/* A file to bind a device node onto. */
static int touch(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

/* A minimal /dev: the usual character devices bound from the host, a devpts of its own (PTYs),
 * a tmpfs /dev/shm, and the usual links. */
static void make_dev(const char *dev) {
  char q[PATH_MAX];
  /* The tmpfs belongs to the sandbox's user; its files are made from inside it (relative
   * names), as that user: the init may still be a user this namespace does not map (root
   * outside), whose files a tmpfs of this namespace refuses, and the way here may be a
   * folder only the backend's user can pass. */
  if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m,uid=1000,gid=1000") < 0)
    die("mount /dev: %s", strerror(errno));
  /* In a child: its file-system uid cannot be set back (root outside is not mapped here). */
  pid_t child = fork();
  if (child < 0) die("fork: %s", strerror(errno));
  if (child > 0) {
    int status;
    if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(125);
    remount_ro(dev, MS_NOSUID | MS_NOEXEC);
    return;
  }
  if (chdir(dev) < 0) die("chdir /dev: %s", strerror(errno));
  setfsgid(INNER_ID);
  setfsuid(INNER_ID);
  static const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
    snprintf(q, sizeof q, "/dev/%s", nodes[i]);
    if (touch(nodes[i]) < 0 || mount(q, nodes[i], NULL, MS_BIND, NULL) < 0)
      die("bind /dev/%s: %s", nodes[i], strerror(errno));
  }
  static const char *links[][2] = {{"/proc/self/fd", "fd"},
                                   {"/proc/self/fd/0", "stdin"},
                                   {"/proc/self/fd/1", "stdout"},
                                   {"/proc/self/fd/2", "stderr"},
                                   {"pts/ptmx", "ptmx"}};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
    if (symlink(links[i][0], links[i][1]) < 0) die("link /dev/%s: %s", links[i][1], strerror(errno));
  }
  if (mkdir("pts", 0755) < 0 ||
      mount("devpts", "pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
    die("mount /dev/pts: %s", strerror(errno));
  if (mkdir("shm", 01777) < 0 ||
      mount("tmpfs", "shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m") < 0)
    die("mount /dev/shm: %s", strerror(errno));
  _exit(0);
}

/* A mount point must be a real folder of the sandbox's root: never a link, which the
 * mount would follow out of the sandbox. */
static void check_dir(const char *target) {
  struct stat st;
  if (lstat(target, &st) < 0 || !S_ISDIR(st.st_mode))
    die("mount point %s is not a folder", target);
}

/* `rel` under the folder `base`, opened as an O_PATH descriptor without following any link
 * and never leaving `base` (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS). A mount made on
 * the descriptor (through /proc/self/fd/N) binds exactly the folder that was checked, so a
 * sandbox sharing a volume cannot swap a folder for a link between the check and the mount. */
static int open_beneath(const char *base, const char *rel) {
  int b = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (b < 0) return -1;
  while (*rel == '/') rel++;
  if (!*rel) return b;
  struct open_how how = {
      .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  int fd = (int)syscall(SYS_openat2, b, rel, &how, sizeof how);
  int saved = errno;
  close(b);
  errno = saved;
  return fd;
}

/* A volume: BASE/SUB (SUB may be empty; it is the sandbox's to shape) bound read-write at
 * DST, both sides opened with open_beneath. */
static void mount_volume(const struct options *o, const char *spec) {
  char base[PATH_MAX], sub[PATH_MAX];
  const char *c1 = strchr(spec, ':');
  const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  if (!c1 || !c2) die("bad mount %s", spec);
  snprintf(base, sizeof base, "%.*s", (int)(c1 - spec), spec);
  snprintf(sub, sizeof sub, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
  const char *dst = c2 + 1;
  int from = open_beneath(base, sub);
  if (from < 0) die("volume %s/%s: %s (a symbolic link?)", base, sub, strerror(errno));
  int to = open_beneath(o->root, dst);
  if (to < 0) die("mount point %s: %s (a symbolic link?)", dst, strerror(errno));
  char a[64], t[64];
  snprintf(a, sizeof a, "/proc/self/fd/%d", from);
  snprintf(t, sizeof t, "/proc/self/fd/%d", to);
  if (mount(a, t, NULL, MS_BIND | MS_REC | MS_NOSUID, NULL) < 0)
    die("bind volume %s/%s: %s", base, sub, strerror(errno));
  close(from);
  close(to);
}

/* One entry of the mount table (see `container/layout.rs`, which writes them):
 *   ro:SRC:DST        SRC (host) bound read-only at DST
 *   rw:SRC:DST        SRC bound read-write at DST
 *   vol:BASE:SUB:DST  a volume (see mount_volume)
 *   overlay:DST:LOWER a read-only overlay of LOWER (`a:b`, first wins) at DST; when the kernel
 *                     refuses overlays here, the last layer is bound read-only and the files of
 *                     the first bound over it one by one
 *   proc:DST  sysfs:DST  dev:DST  tmpfs:DST */
static void apply_mount(const struct options *o, const char *spec) {
  char kind[16], a[PATH_MAX], b[PATH_MAX], t[PATH_MAX];
  const char *c1 = strchr(spec, ':');
  if (!c1 || (size_t)(c1 - spec) >= sizeof kind) die("bad mount %s", spec);
  memcpy(kind, spec, (size_t)(c1 - spec));
  kind[c1 - spec] = 0;
  const char *rest = c1 + 1;
  if (!strcmp(kind, "vol")) {
    mount_volume(o, rest);
  } else if (!strcmp(kind, "ro") || !strcmp(kind, "rw")) {
    const char *c2 = strchr(rest, ':');
    if (!c2) die("bad mount %s", spec);
    snprintf(a, sizeof a, "%.*s", (int)(c2 - rest), rest);
    target_of(o, c2 + 1, t, sizeof t);
    check_dir(t);
    if (!strcmp(kind, "ro")) {
      if (bind_ro(a, t) < 0) die("bind %s: %s", a, strerror(errno));
    } else if (mount(a, t, NULL, MS_BIND | MS_REC | MS_NOSUID, NULL) < 0) {
      die("bind %s: %s", a, strerror(errno));
    }
  } else if (!strcmp(kind, "overlay")) {
    const char *c2 = strchr(rest, ':');
    if (!c2) die("bad mount %s", spec);
    snprintf(b, sizeof b, "%.*s", (int)(c2 - rest), rest);
    target_of(o, b, t, sizeof t);
    check_dir(t);
    const char *lower = c2 + 1;
    char data[2 * PATH_MAX + 16];
    snprintf(data, sizeof data, "lowerdir=%s", lower);
    if (mount("overlay", t, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, data) == 0) return;
    /* No overlay here: the last layer read-only, the first one's files bound over it. */
    const char *last = strrchr(lower, ':');
    const char *first_end = strchr(lower, ':');
    if (!last || !first_end) die("overlay %s: %s", b, strerror(errno));
    snprintf(a, sizeof a, "%s", last + 1);
    if (bind_ro(a, t) < 0) die("bind %s: %s", a, strerror(errno));
    char top[PATH_MAX];
    snprintf(top, sizeof top, "%.*s", (int)(first_end - lower), lower);
    DIR *d = opendir(top);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char from[PATH_MAX], to[PATH_MAX];
      struct stat st;
      snprintf(from, sizeof from, "%s/%s", top, e->d_name);
      snprintf(to, sizeof to, "%s/%s", t, e->d_name);
      /* Only over a regular file that is there (a link would be followed out of the view). */
      if (lstat(to, &st) == 0 && S_ISREG(st.st_mode)) {
        if (mount(from, to, NULL, MS_BIND, NULL) == 0) remount_ro(to, MS_NOSUID);
      }
    }
    closedir(d);
  } else if (!strcmp(kind, "proc")) {
    target_of(o, rest, t, sizeof t);
    check_dir(t);
    if (mount("proc", t, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
      die("mount proc: %s", strerror(errno));
  } else if (!strcmp(kind, "sysfs")) {
    target_of(o, rest, t, sizeof t);
    check_dir(t);
    /* Not every machine lets a user namespace mount sysfs; the sandbox works without it. */
    mount("sysfs", t, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  } else if (!strcmp(kind, "dev")) {
    target_of(o, rest, t, sizeof t);
    check_dir(t);
    make_dev(t);
  } else if (!strcmp(kind, "tmpfs")) {
    target_of(o, rest, t, sizeof t);
    check_dir(t);
    if (mount("tmpfs", t, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
      die("mount tmpfs %s: %s", rest, strerror(errno));
  } else {
    die("unknown mount kind %s", kind);
  }
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("lo: %s", strerror(errno));
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("lo up: %s", strerror(errno));
  close(s);
}

/* Drops every capability for good (bounding and ambient sets too) and keeps it so. */
static void drop_privileges(void) {
  if (setgroups(0, NULL) < 0 && errno != EPERM) die("setgroups: %s", strerror(errno));
  if (setresgid(INNER_ID, INNER_ID, INNER_ID) < 0) die("setresgid: %s", strerror(errno));
  if (setresuid(INNER_ID, INNER_ID, INNER_ID) < 0) die("setresuid: %s", strerror(errno));
  for (int cap = 0; cap <= 63; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL) break;
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capset, &h, d) < 0) die("capset: %s", strerror(errno));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs: %s", strerror(errno));
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Listeners inside the sandbox for the host ports it may reach (127.0.0.1 and ::1). */
static int forward_listeners(const struct options *o, int *out) {
  int n = 0;
  for (int i = 0; i < o->n_forwards && n + 2 <= MAX_FDS; i++) {
    int port = o->forwards[i];
    int s4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s4 >= 0 && bind(s4, (struct sockaddr *)&a4, sizeof a4) == 0 && listen(s4, 128) == 0)
      out[n++] = s4;
    else if (s4 >= 0)
      close(s4);
    int s6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    a6.sin6_addr = in6addr_loopback;
    int one = 1;
    if (s6 >= 0) setsockopt(s6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (s6 >= 0 && bind(s6, (struct sockaddr *)&a6, sizeof a6) == 0 && listen(s6, 128) == 0)
      out[n++] = s6;
    else if (s6 >= 0)
      close(s6);
  }
  return n;
}

/* ---------------------------------------------------------------- the init: serving */

static void reply(int sock, int err, int value, const char *message, const int *fds, int nfds) {
  size_t mlen = message ? strlen(message) : 0;
  uint32_t len = (uint32_t)(8 + mlen);
  char buf[4 + 8 + 512];
  if (mlen > 500) mlen = 500, len = 8 + 500;
  memcpy(buf, &len, 4);
  int32_t e = err, v = value;
  memcpy(buf + 4, &e, 4);
  memcpy(buf + 8, &v, 4);
  if (mlen) memcpy(buf + 12, message, mlen);
  send_with_fds(sock, buf, 12 + mlen, fds, nfds);
}

/* The init's own descriptors, which a command's monitor closes. */
static int g_ctl = -1, g_sfd = -1;

/* Live command monitors (pid), so a kill names only a command that is still there. */
static pid_t monitors[4096];
static int n_monitors;

static void forget_monitor(pid_t pid) {
  for (int i = 0; i < n_monitors; i++) {
    if (monitors[i] == pid) {
      monitors[i] = monitors[--n_monitors];
      return;
    }
  }
}

static int is_monitor(pid_t pid) {
  for (int i = 0; i < n_monitors; i++)
    if (monitors[i] == pid) return 1;
  return 0;
}

/* -- a command's monitor */

#define MARK_LEN 3
#define MAX_LINE (64 * 1024)

struct logstate {
  int fd;           /* the log file (O_APPEND), -1 when output is not logged */
  int events;       /* the events pipe to the backend (non-blocking), -1 when gone */
  long long limit;  /* bytes kept at most (older ones are punched out) */
  long long punched;
  long long total;
};

static void tick(struct logstate *ls) {
  if (ls->events < 0) return;
  if (write(ls->events, "t", 1) < 0 && errno == EPIPE) {
    close(ls->events);
    ls->events = -1;
  }
}

static void log_write(struct logstate *ls, const char *data, size_t len) {
  if (write_all(ls->fd, data, len) < 0) return;
  ls->total += (long long)len;
  /* Whole blocks up to the first byte of the newest `limit` ones (rounded up, so no more
   * than `limit` is kept), once a block's worth is over. */
  if (ls->limit > 0 && ls->total - ls->punched > ls->limit + 4096) {
    long long upto = (ls->total - ls->limit + 4095) & ~4095LL;
    if (upto > ls->punched &&
        fallocate(ls->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, upto) == 0)
      ls->punched = upto;
  }
}

struct stream {
  int fd;
  char marker;
  char buf[MAX_LINE];
  size_t len;
};

/* Writes the complete lines of the stream's buffer (and, at EOF or when a line is longer than
 * MAX_LINE, the rest as one line), each behind its marker, in one write: a reader never sees a
 * marker without its line. */
static void flush_lines(struct logstate *ls, struct stream *s, int all) {
  static char out[2 * MAX_LINE + 4096];
  size_t n = 0, start = 0;
  for (;;) {
    char *nl = memchr(s->buf + start, '\n', s->len - start);
    if (!nl) break;
    size_t end = (size_t)(nl - s->buf) + 1;
    if (n + MARK_LEN + (end - start) > sizeof out) {
      log_write(ls, out, n);
      n = 0;
    }
    memset(out + n, s->marker, MARK_LEN);
    memcpy(out + n + MARK_LEN, s->buf + start, end - start);
    n += MARK_LEN + (end - start);
    start = end;
  }
  if (start < s->len && (all || s->len - start >= MAX_LINE)) {
    size_t len = s->len - start;
    if (n + MARK_LEN + len + 1 > sizeof out) {
      log_write(ls, out, n);
      n = 0;
    }
    memset(out + n, s->marker, MARK_LEN);
    memcpy(out + n + MARK_LEN, s->buf + start, len);
    out[n + MARK_LEN + len] = '\n';
    n += MARK_LEN + len + 1;
    start = s->len;
  }
  if (n) log_write(ls, out, n);
  memmove(s->buf, s->buf + start, s->len - start);
  s->len -= start;
}

static void pump(struct logstate *ls, struct stream *s) {
  ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    flush_lines(ls, s, 1);
    close(s->fd);
    s->fd = -1;
  } else {
    s->len += (size_t)n;
    flush_lines(ls, s, 0);
  }
  tick(ls);
}

static int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

/* Finds `name` on the PATH of `envp` and execs it (execvpe with the command's own PATH). */
static void exec_on_path(char **argv, char **envp) {
  if (strchr(argv[0], '/')) {
    execve(argv[0], argv, envp);
    return;
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char **e = envp; *e; e++)
    if (!strncmp(*e, "PATH=", 5)) path = *e + 5;
  int saved = ENOENT;
  char full[PATH_MAX];
  while (*path) {
    const char *end = strchr(path, ':');
    size_t dlen = end ? (size_t)(end - path) : strlen(path);
    if (dlen == 0) snprintf(full, sizeof full, "%s", argv[0]);
    else snprintf(full, sizeof full, "%.*s/%s", (int)dlen, path, argv[0]);
    execve(full, argv, envp);
    if (errno != ENOENT && errno != ENOTDIR) saved = errno;
    if (!end) break;
    path = end + 1;
  }
  errno = saved;
}

/* F_LOG: output into the log file. F_TTY: fds 0-2 are a pty's slave, which becomes the
 * command's controlling terminal (the command leads a session of its own, as a login shell on
 * a terminal does: job control, ^C to its foreground job, SIGWINCH on resize, SIGHUP when the
 * terminal goes away). */
enum { F_LOG = 1, F_TTY = 2 };

/* The monitor of one command. fds: 0 stdin, 1 stdout, 2 stderr (ignored with F_LOG; the pty's
 * slave with F_TTY), 3 events, 4 exit file (or -1), 5 log file (F_LOG), 6 extra (the command's
 * fd 3, or -1). */
static void run_monitor(uint32_t flags, long long limit, const char *cwd, char **argv, char **envp,
                        int *fds) {
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  sigset_t all;
  sigemptyset(&all);
  sigaddset(&all, SIGCHLD);
  int sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  int out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2];
  if (flags & F_LOG) {
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) _exit(126);
  }
  if (pipe2(ep, O_CLOEXEC) < 0) _exit(126);
  pid_t child = fork();
  if (child == 0) {
    /* The command: its own process group, its fds, its cwd, its program. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < 32; s++) signal(s, SIG_DFL);
    if (flags & F_TTY) setsid();
    else setpgid(0, 0);
    int in = fds[0], o1 = (flags & F_LOG) ? out[1] : fds[1], o2 = (flags & F_LOG) ? err[1] : fds[2];
    int extra = fds[6];
    /* Above every fd we may dup from, then into place. */
    int hi[4] = {fcntl(in, F_DUPFD_CLOEXEC, 10), fcntl(o1, F_DUPFD_CLOEXEC, 10),
                 fcntl(o2, F_DUPFD_CLOEXEC, 10), extra >= 0 ? fcntl(extra, F_DUPFD_CLOEXEC, 10) : -1};
    if (hi[0] < 0 || hi[1] < 0 || hi[2] < 0) goto fail_dup;
    if (dup2(hi[0], 0) < 0 || dup2(hi[1], 1) < 0 || dup2(hi[2], 2) < 0) goto fail_dup;
    if (hi[3] >= 0 && dup2(hi[3], 3) < 0) goto fail_dup;
    syscall(SYS_close_range, hi[3] >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC);
    /* Only a terminal of the sandbox's own devpts gets here (see serve_pty): never one of
     * this machine. */
    if ((flags & F_TTY) && ioctl(0, TIOCSCTTY, 0) < 0) {
      dprintf(ep[1], "tty %d", errno);
      _exit(127);
    }
    if (chdir(cwd) < 0) {
      dprintf(ep[1], "chdir %d", errno);
      _exit(127);
    }
    exec_on_path(argv, envp);
    dprintf(ep[1], "exec %d", errno);
    _exit(127);
  fail_dup:
    dprintf(ep[1], "dup %d", errno);
    _exit(127);
  }
  close(ep[1]);
  if (flags & F_LOG) {
    close(out[1]);
    close(err[1]);
  }
  int events = fds[3];
  int exitfile = fds[4];
  if (child < 0) {
    dprintf(events, "F fork %d\n", errno);
    _exit(126);
  }
  char why[64] = {0};
  ssize_t wn = read(ep[0], why, sizeof why - 1);
  close(ep[0]);
  if (wn > 0) {
    /* The command never ran: say why (stage and errno). */
    waitpid(child, NULL, 0);
    dprintf(events, "F %s\n", why);
    if (exitfile >= 0) pwrite(exitfile, "-1\n", 3, 0);
    _exit(0);
  }
  dprintf(events, "P %d\n", (int)child);
  /* The events pipe is ours alone from here: ticks must never block the output. */
  fcntl(events, F_SETFL, fcntl(events, F_GETFL) | O_NONBLOCK);
  for (int i = 0; i < 3; i++) close(fds[i]);
  if (fds[6] >= 0) close(fds[6]);
  struct logstate ls = {.fd = fds[5], .events = events, .limit = limit};
  if (ls.fd >= 0) ls.total = lseek(ls.fd, 0, SEEK_END);
  static struct stream so, se;
  so.fd = out[0], so.marker = 1, so.len = 0;
  se.fd = err[0], se.marker = 2, se.len = 0;
  /* The monitor stays until the command *and everything it started* are gone (it is their
   * subreaper): a `setsid`, `nohup … &` or double-forked child whose output went elsewhere is
   * still in the monitor's tree, so killing the command (its tree) ends it too. `D` on the
   * events pipe says the command exited and its output is drained, before that. */
  int code = -1, exited = 0, drained = 0, children = 1;
  for (;;) {
    struct pollfd p[3] = {{.fd = sfd, .events = POLLIN}, {.fd = so.fd, .events = POLLIN},
                          {.fd = se.fd, .events = POLLIN}};
    if (exited && so.fd < 0 && se.fd < 0 && !drained) {
      drained = 1;
      if (ls.events >= 0) {
        fcntl(ls.events, F_SETFL, fcntl(ls.events, F_GETFL) & ~O_NONBLOCK);
        dprintf(ls.events, "D\n");
        fcntl(ls.events, F_SETFL, fcntl(ls.events, F_GETFL) | O_NONBLOCK);
      }
    }
    if (drained && !children) break;
    if (poll(p, 3, -1) < 0 && errno != EINTR) break;
    if (p[1].revents) pump(&ls, &so);
    if (p[2].revents) pump(&ls, &se);
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
      int status;
      pid_t w;
      while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
        if (w == child) {
          exited = 1;
          code = exit_code(status);
          char line[32];
          int n = snprintf(line, sizeof line, "%d\n", code);
          if (exitfile >= 0) pwrite(exitfile, line, (size_t)n, 0);
          if (ls.events >= 0) {
            /* The final word is written blocking: it must not be lost to a full pipe. */
            fcntl(ls.events, F_SETFL, fcntl(ls.events, F_GETFL) & ~O_NONBLOCK);
            dprintf(ls.events, "E %d\n", code);
            fcntl(ls.events, F_SETFL, fcntl(ls.events, F_GETFL) | O_NONBLOCK);
          }
        }
      }
      if (w < 0 && errno == ECHILD) children = 0;
    }
  }
  _exit(0);
}

static void serve_spawn(int sock, char *payload, size_t len, int *fds, int nfds) {
  /* payload: u32 flags, u64 limit, u32 argc, u32 envc, then cwd, argv, env (NUL-terminated). */
  if (len < 20 || nfds < 7) {
    reply(sock, EINVAL, 0, "bad spawn request", NULL, 0);
    return;
  }
  uint32_t flags, argc, envc;
  uint64_t limit;
  memcpy(&flags, payload, 4);
  memcpy(&limit, payload + 4, 8);
  memcpy(&argc, payload + 12, 4);
  memcpy(&envc, payload + 16, 4);
  if (argc == 0 || argc > 100000 || envc > 100000) {
    reply(sock, EINVAL, 0, "bad spawn request", NULL, 0);
    return;
  }
  char **argv = calloc(argc + 1, sizeof *argv), **envp = calloc(envc + 1, sizeof *envp);
  char *p = payload + 20, *end = payload + len;
  const char *cwd = p;
  int ok = argv && envp;
  p = memchr(p, 0, (size_t)(end - p));
  for (uint32_t i = 0; ok && p && i < argc + envc; i++) {
    p++;
    if (p >= end) {
      ok = 0;
      break;
    }
    if (i < argc) argv[i] = p;
    else envp[i - argc] = p;
    p = memchr(p, 0, (size_t)(end - p));
  }
  if (!ok || !p) {
    free(argv);
    free(envp);
    reply(sock, EINVAL, 0, "bad spawn request", NULL, 0);
    return;
  }
  /* Seven descriptors always travel; those the backend did not give are /dev/null (fine as
   * stdin/stdout/stderr), and bits 8-14 of `flags` say which are real. */
  int use[7];
  for (int i = 0; i < 7; i++) use[i] = (i < 4 || (flags & (1u << (8 + i)))) ? fds[i] : -1;
  pid_t m = fork();
  if (m == 0) {
    close(sock);
    close(g_ctl);
    close(g_sfd);
    run_monitor(flags, (long long)limit, cwd, argv, envp, use);
  }
  int saved = errno;
  free(argv);
  free(envp);
  if (m < 0) {
    reply(sock, saved, 0, "fork failed", NULL, 0);
    return;
  }
  if (n_monitors < (int)(sizeof monitors / sizeof *monitors)) monitors[n_monitors++] = m;
  reply(sock, 0, (int)m, NULL, NULL, 0);
}

/* A pseudo-terminal of the sandbox: opened through the sandbox's own /dev/ptmx (its devpts
 * instance, mounted by make_dev; /dev is read-only, so the name cannot be swapped), so the
 * terminal belongs to the sandbox and nothing of this machine's devpts is used. Payload:
 * u16 cols, u16 rows (the initial window size). Answers the pty's number with the master and
 * the slave attached: the backend keeps the master (input, output, resizes) and gives the
 * slave back with a SPAWN of F_TTY, whose command makes it its controlling terminal. */
static void serve_pty(int sock, const char *payload, size_t len) {
  uint16_t size[2] = {80, 24};
  if (len >= 4) memcpy(size, payload, 4);
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) {
    reply(sock, errno, 0, "ptmx", NULL, 0);
    return;
  }
  int unlock = 0, ptn = -1;
  struct winsize ws = {.ws_col = size[0], .ws_row = size[1]};
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &ptn) < 0 ||
      ioctl(master, TIOCSWINSZ, &ws) < 0) {
    int err = errno;
    close(master);
    reply(sock, err, 0, "pty setup", NULL, 0);
    return;
  }
  /* The slave through the master itself: no path lookup in /dev/pts, no race on its name. */
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0 && (errno == EINVAL || errno == ENOTTY)) {
    char name[64];
    snprintf(name, sizeof name, "/dev/pts/%d", ptn);
    slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
  }
  struct stat st;
  if (slave < 0 || fstat(slave, &st) < 0 || !S_ISCHR(st.st_mode)) {
    int err = slave < 0 ? errno : ENOTTY;
    if (slave >= 0) close(slave);
    close(master);
    reply(sock, err, 0, "pty slave", NULL, 0);
    return;
  }
  int both[2] = {master, slave};
  reply(sock, 0, ptn, NULL, both, 2);
  close(master);
  close(slave);
}

/* Signals everything in the tree of monitor `m` (the command and whatever it started, which
 * the monitor reaps as subreaper), found by walking /proc's parent links. */
static int kill_tree(pid_t m, int sig) {
  enum { N = 32768 };
  static pid_t pids[N], parents[N];
  int n = 0;
  DIR *d = opendir("/proc");
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)) && n < N) {
    pid_t pid = (pid_t)atoi(e->d_name);
    if (pid <= 1) continue;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (r <= 0) continue;
    buf[r] = 0;
    char *q = strrchr(buf, ')');
    if (!q) continue;
    pids[n] = pid;
    parents[n] = (pid_t)atoi(q + 4);
    n++;
  }
  closedir(d);
  /* Mark the subtree: repeat until no new member is found. */
  static char in[N];
  memset(in, 0, (size_t)n);
  int changed = 1, killed = 0;
  while (changed) {
    changed = 0;
    for (int i = 0; i < n; i++) {
      if (in[i]) continue;
      int member = parents[i] == m;
      for (int j = 0; !member && j < n; j++) member = in[j] && pids[j] == parents[i];
      if (member) in[i] = 1, changed = 1;
    }
  }
  for (int i = 0; i < n; i++) {
    if (in[i]) {
      kill(pids[i], sig);
      killed++;
    }
  }
  return killed;
}

static void serve(int sock) {
  struct timeval tv = {.tv_sec = 10};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  char head[5];
  int fds[MAX_FDS], nfds = 0;
  ssize_t n = recv_with_fds(sock, head, sizeof head, fds, &nfds);
  if (n <= 0) goto out;
  if (n < 5 && read_all(sock, head + n, 5 - (size_t)n) < 0) goto out;
  uint32_t len;
  memcpy(&len, head, 4);
  if (len < 1 || len > MAX_FRAME) goto out;
  char op = head[4];
  size_t plen = len - 1;
  char *payload = malloc(plen + 1);
  if (!payload) goto out;
  if (plen && read_all(sock, payload, plen) < 0) {
    free(payload);
    goto out;
  }
  payload[plen] = 0;
  switch (op) {
  case 'S':
    serve_spawn(sock, payload, plen, fds, nfds);
    break;
  case 'K': { /* kill: i32 monitor pid, i32 signal */
    int32_t m = 0, sig = 0;
    if (plen >= 8) memcpy(&m, payload, 4), memcpy(&sig, payload + 4, 4);
    if (m <= 1 || !is_monitor(m)) reply(sock, ESRCH, 0, "no such command", NULL, 0);
    else reply(sock, 0, kill_tree(m, sig), NULL, NULL, 0);
    break;
  }
  case 'A': { /* signal every process of the sandbox but the init; answers how many */
    int32_t sig = SIGTERM;
    if (plen >= 4) memcpy(&sig, payload, 4);
    reply(sock, 0, kill_tree(getpid(), sig), NULL, NULL, 0);
    break;
  }
  case 'C': { /* a connection to one of the sandbox's own ports: u16 port */
    uint16_t port = 0;
    if (plen >= 2) memcpy(&port, payload, 2);
    int err = ECONNREFUSED;
    /* 127.0.0.1, then ::1 (a server bound to "localhost" may have either). Blocking, so a
     * refusal is known here; bounded, so a full accept queue of the sandbox's own server
     * holds up only its own previews, for 2 s at most. */
    for (int fam = 0; fam < 2; fam++) {
      int s = socket(fam ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (s < 0) {
        err = errno;
        continue;
      }
      struct timeval limit = {.tv_sec = 2};
      setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
      int r;
      if (fam == 0) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        r = connect(s, (struct sockaddr *)&a, sizeof a);
      } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        a.sin6_addr = in6addr_loopback;
        r = connect(s, (struct sockaddr *)&a, sizeof a);
      }
      if (r == 0) {
        struct timeval none = {0};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
        reply(sock, 0, 1, NULL, &s, 1);
        close(s);
        err = 0;
        break;
      }
      err = errno;
      close(s);
    }
    if (err) reply(sock, err, 0, "nothing listens", NULL, 0);
    break;
  }
  case 'N': { /* a sock_diag socket of the sandbox's network namespace */
    int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s < 0) reply(sock, errno, 0, "netlink", NULL, 0);
    else {
      reply(sock, 0, 0, NULL, &s, 1);
      close(s);
    }
    break;
  }
  case 'T': /* a pseudo-terminal of the sandbox: u16 cols, u16 rows */
    serve_pty(sock, payload, plen);
    break;
  case 'P': /* ping */
    reply(sock, 0, (int)getpid(), NULL, NULL, 0);
    break;
  default:
    reply(sock, EINVAL, 0, "unknown op", NULL, 0);
  }
  free(payload);
out:
  for (int i = 0; i < nfds; i++) close(fds[i]);
}

static void init_loop(int ctl) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  g_ctl = ctl;
  g_sfd = sfd;
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    struct pollfd p[2] = {{.fd = ctl, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if (p[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
      pid_t w;
      int status;
      while ((w = waitpid(-1, &status, WNOHANG)) > 0) forget_monitor(w);
    }
    if (p[0].revents) {
      int c = accept4(ctl, NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) {
        serve(c);
        close(c);
      }
    }
  }
}

/* ---------------------------------------------------------------- the monitor (outside) */

/* The init: builds the file system, drops privileges, reports `ok` on `ready`, serves. */
static void run_init(const struct options *o, int go, int ready, int fwd) {
  char c;
  if (read(go, &c, 1) != 1) _exit(1);
  close(go);
  /* From here errors go to the ready pipe (the monitor prints them). */
  dup2(ready, 1);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("private /: %s", strerror(errno));
  if (mount(o->root, o->root, NULL, MS_BIND | MS_REC | MS_NOSUID, NULL) < 0)
    die("bind root: %s", strerror(errno));
  for (int i = 0; i < o->n_mounts; i++) apply_mount(o, o->mounts[i]);
  if (sethostname(o->hostname, strlen(o->hostname)) < 0) die("hostname: %s", strerror(errno));
  loopback_up();
  int lfds[MAX_FDS];
  int nl = forward_listeners(o, lfds);
  /* No user namespaces inside: the kernel's attack surface they open stays closed. */
  {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/proc/sys/user/max_user_namespaces", o->root);
    write_file(p, "0");
  }
  if (chdir(o->root) < 0) die("chdir root: %s", strerror(errno));
  if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) < 0) die("umount old root: %s", strerror(errno));
  if (chdir("/") < 0) die("chdir /: %s", strerror(errno));
  umask(022);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  drop_privileges();
  if (chdir(o->workdir) < 0) chdir("/");
  /* The forward listeners go to the monitor, which accepts on them from outside. */
  char one = 'f';
  if (send_with_fds(fwd, &one, 1, lfds, nl) < 0) die("forward: %s", strerror(errno));
  for (int i = 0; i < nl; i++) close(lfds[i]);
  close(fwd);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 2);
  }
  if (write_all(ready, "ok", 2) < 0) _exit(1);
  dup2(null, 1);
  close(ready);
  init_loop(o->ctl_fd);
}

/* An unconfined sandbox (no namespaces here): the init runs as the backend's user in the
 * sandbox's home on this machine, and is the subreaper of everything the sandbox starts, so
 * that stopping the sandbox finds all of it. */
static void run_host_init(const struct options *o, int go, int ready) {
  char c;
  if (read(go, &c, 1) != 1) _exit(1);
  close(go);
  dup2(ready, 1);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  char home[PATH_MAX];
  snprintf(home, sizeof home, "%s%s", o->root, o->workdir);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  umask(022);
  if (chdir(home) < 0) die("chdir %s: %s", home, strerror(errno));
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 2);
  }
  if (write_all(ready, "ok", 2) < 0) _exit(1);
  dup2(null, 1);
  close(ready);
  init_loop(o->ctl_fd);
}

/* Copies both ways between two sockets until both directions are done. */
static void relay(int a, int b) {
  char buf[65536];
  int open_ab = 1, open_ba = 1;
  while (open_ab || open_ba) {
    struct pollfd p[2] = {{.fd = open_ab ? a : -1, .events = POLLIN},
                          {.fd = open_ba ? b : -1, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (!p[i].revents) continue;
      int from = i ? b : a, to = i ? a : b;
      ssize_t n = read(from, buf, sizeof buf);
      if (n <= 0 || write_all(to, buf, (size_t)n) < 0) {
        shutdown(to, SHUT_WR);
        if (i) open_ba = 0;
        else open_ab = 0;
      }
    }
  }
  _exit(0);
}

/* One connection a sandbox made to a host port it may reach: connect on the host, relay. */
static void forward_one(int listener) {
  int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  struct sockaddr_storage local;
  socklen_t ll = sizeof local;
  getsockname(listener, (struct sockaddr *)&local, &ll);
  pid_t pid = fork();
  if (pid != 0) {
    close(c);
    return;
  }
  int s = socket(local.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&local, ll) < 0) _exit(0);
  relay(c, s);
}

/* Starts the network tool (argv with `{pid}`, `{exitfd}`, `{readyfd}` replaced); returns its
 * pid, and the fd it reports readiness on (or -1). */
static pid_t start_net(const struct options *o, pid_t init, int exit_r, int *ready_r) {
  if (o->n_net == 0) return 0;
  int rp[2];
  if (pipe2(rp, O_CLOEXEC) < 0) return -1;
  char *argv[MAX_ITEMS + 1];
  static char bufs[MAX_ITEMS][PATH_MAX];
  int uses_ready = 0;
  for (int i = 0; i < o->n_net; i++) {
    const char *a = o->net[i];
    const char *hole = strchr(a, '{');
    if (hole && !strncmp(hole, "{pid}", 5))
      snprintf(bufs[i], PATH_MAX, "%.*s%d%s", (int)(hole - a), a, (int)init, hole + 5);
    else if (hole && !strncmp(hole, "{exitfd}", 8))
      snprintf(bufs[i], PATH_MAX, "%.*s%d%s", (int)(hole - a), a, exit_r, hole + 8);
    else if (hole && !strncmp(hole, "{readyfd}", 9)) {
      snprintf(bufs[i], PATH_MAX, "%.*s%d%s", (int)(hole - a), a, rp[1], hole + 9);
      uses_ready = 1;
    } else
      snprintf(bufs[i], PATH_MAX, "%s", a);
    argv[i] = bufs[i];
  }
  argv[o->n_net] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (exit_r >= 0) fcntl(exit_r, F_SETFD, 0);
    fcntl(rp[1], F_SETFD, 0);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(rp[1]);
  if (uses_ready) *ready_r = rp[0];
  else {
    close(rp[0]);
    *ready_r = -1;
  }
  return pid;
}

static int cmd_start(int argc, char **argv) {
  struct options o;
  parse(argc, argv, &o);
  /* Out of the way of stdin/stdout/stderr, which the init points at /dev/null. */
  o.ctl_fd = fcntl(o.ctl_fd, F_DUPFD_CLOEXEC, 10);
  if (o.ctl_fd < 0) die("--ctl-fd: %s", strerror(errno));
  {
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) dup2(null, 0), close(null);
  }
  setsid();
  signal(SIGPIPE, SIG_IGN);
  int go[2], ready[2], fwd[2], exitp[2];
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0 || pipe2(exitp, O_CLOEXEC) < 0 ||
      socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fwd) < 0)
    die("pipe: %s", strerror(errno));
  int root = geteuid() == 0;
  unsigned long flags = o.namespaces ? CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                                           CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
                                     : 0;
  pid_t init = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (init < 0) die("clone: %s", strerror(errno));
  if (init == 0) {
    close(go[1]);
    close(ready[0]);
    close(exitp[0]);
    if (!o.namespaces) {
      close(fwd[1]);
      run_host_init(&o, go[0], ready[1]);
    }
    run_init(&o, go[0], ready[1], fwd[1]);
    _exit(0);
  }
  close(go[0]);
  close(ready[1]);
  close(fwd[1]);
  close(exitp[1]);
  close(o.ctl_fd);
  /* The backend's go-ahead (SIGUSR1, once it has read the pid line below): blocked here, in
   * the monitor only (the init's commands must not inherit a blocked signal). */
  sigset_t ack;
  sigemptyset(&ack);
  sigaddset(&ack, SIGUSR1);
  sigprocmask(SIG_BLOCK, &ack, NULL);
  char path[64], map[64];
  if (!o.namespaces) goto mapped;
  /* uid/gid 1000 inside is U/G outside. Root keeps setgroups so the init can drop the
   * supplementary groups it inherited; others must deny it to write a gid map at all. */
  snprintf(path, sizeof path, "/proc/%d/setgroups", (int)init);
  if (!root && write_file(path, "deny") < 0) die("setgroups: %s", strerror(errno));
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)init);
  snprintf(map, sizeof map, "%d %u 1\n", INNER_ID, (unsigned)o.uid);
  if (write_file(path, map) < 0) die("uid_map: %s", strerror(errno));
  snprintf(path, sizeof path, "/proc/%d/gid_map", (int)init);
  snprintf(map, sizeof map, "%d %u 1\n", INNER_ID, (unsigned)o.gid);
  if (write_file(path, map) < 0) die("gid_map: %s", strerror(errno));
mapped:;
  char pidtext[16];
  snprintf(pidtext, sizeof pidtext, "%d", (int)init);
  for (int i = 0; i < o.n_cgroups; i++) {
    if (write_file(o.cgroups[i], pidtext) < 0) {
      kill(init, SIGKILL);
      die("cgroup %s: %s", o.cgroups[i], strerror(errno));
    }
  }
  int net_ready = -1;
  pid_t net = o.network ? start_net(&o, init, exitp[0], &net_ready) : 0;
  if (net < 0) {
    kill(init, SIGKILL);
    die("network: %s", strerror(errno));
  }
  /* Nobody reads the start any more (the backend's start was cancelled, or the backend went):
   * a sandbox nobody will know of is not started. SIGPIPE is ignored, so a closed reader is
   * EPIPE here; the same holds for `ready` below. */
  if (dprintf(1, "pid %d %llu\n", (int)init, start_time(init)) < 0) {
    kill(init, SIGKILL);
    if (net > 0) kill(net, SIGKILL);
    _exit(125);
  }
  /* The init runs nothing until the backend says it has read its pid (and so can end the
   * sandbox if it gives the start up): a start abandoned before that (the backend's task
   * dropped, the backend gone: the pipe's reader closes) or not answered in a minute ends
   * here, and no sandbox runs that no backend knows of. */
  int ackfd = signalfd(-1, &ack, SFD_CLOEXEC);
  int acked = 0;
  for (;;) {
    struct pollfd w[2] = {{.fd = ackfd, .events = POLLIN}, {.fd = 1, .events = 0}};
    int r = poll(w, 2, 60000);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (w[0].revents & POLLIN) {
      acked = 1;
      break;
    }
    if (w[1].revents & (POLLERR | POLLHUP)) break;
  }
  close(ackfd);
  if (!acked) {
    kill(init, SIGKILL);
    if (net > 0) kill(net, SIGKILL);
    _exit(125);
  }
  if (write_all(go[1], "g", 1) < 0) die("init died");
  close(go[1]);
  /* The init's answer: `ok`, or the text of its failure. */
  char msg[600];
  ssize_t n = read(ready[0], msg, sizeof msg - 1);
  close(ready[0]);
  if (n <= 0 || strncmp(msg, "ok", 2) != 0) {
    kill(init, SIGKILL);
    if (net > 0) kill(net, SIGKILL);
    msg[n > 0 ? n : 0] = 0;
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    if (n > 0 && !strncmp(msg, "error ", 6)) dprintf(1, "%s\n", msg);
    else dprintf(1, "error the sandbox's init failed to start\n");
    _exit(125);
  }
  if (net_ready >= 0) {
    /* The network tool says when the sandbox's interface is configured. */
    struct pollfd p = {.fd = net_ready, .events = POLLIN};
    poll(&p, 1, 10000);
    char b;
    if (!(p.revents & POLLIN) || read(net_ready, &b, 1) != 1) {
      kill(init, SIGKILL);
      kill(net, SIGKILL);
      die("the network tool did not start");
    }
    close(net_ready);
  }
  char one;
  int lfds[MAX_FDS], nl = 0;
  if (o.namespaces) recv_with_fds(fwd[0], &one, 1, lfds, &nl);
  close(fwd[0]);
  /* The backend sets the network with SIGRTMIN carrying 1 (attach) or 0 (detach): a
     real-time signal is queued in order, so a detach and an attach sent in a row are seen in
     that order (two standard signals pending together are read lowest number first). Blocked
     before `ready`, so that none sent right after it takes its default action. */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (dprintf(1, "ready\n") < 0) {
    kill(init, SIGKILL);
    if (net > 0) kill(net, SIGKILL);
    _exit(125);
  }
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  dup2(null, 0);
  dup2(null, 1);
  dup2(null, 2);
  /* Wait for the init, relaying forwarded connections meanwhile. */
  int code = 0;
  /* Blocked (networkBlockAll): relayed host ports are refused too, not only the internet. */
  int blocked = !o.network;
  for (;;) {
    struct pollfd p[MAX_FDS + 1];
    p[0].fd = sfd, p[0].events = POLLIN;
    for (int i = 0; i < nl; i++) p[i + 1].fd = lfds[i], p[i + 1].events = POLLIN;
    if (poll(p, (nfds_t)nl + 1, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < nl; i++) {
      if (!p[i + 1].revents) continue;
      if (!blocked) {
        forward_one(lfds[i]);
        continue;
      }
      int c = accept4(lfds[i], NULL, NULL, SOCK_CLOEXEC);
      if (c >= 0) close(c);
    }
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
        /* The backend attaches (1) or detaches (0) the sandbox's network. */
        if ((int)si.ssi_signo == SIGRTMIN) blocked = si.ssi_int == 0;
        if ((int)si.ssi_signo == SIGRTMIN && si.ssi_int == 1 && net <= 0 && o.n_net > 0) {
          int r = -1;
          net = start_net(&o, init, exitp[0], &r);
          if (r >= 0) close(r);
        } else if ((int)si.ssi_signo == SIGRTMIN && si.ssi_int == 0 && net > 0) {
          kill(net, SIGKILL);
          /* Reaped now: an attach right behind this detach starts a new tool instead of
             finding the old one still counted. */
          waitpid(net, NULL, 0);
          net = 0;
        }
      }
      pid_t w;
      int status;
      int done = 0;
      while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
        if (w == init) {
          code = exit_code(status);
          done = 1;
        }
        if (w == net) net = 0;
      }
      if (done) break;
    }
  }
  /* The sandbox is gone: so is its network (pasta does not notice on its own). */
  if (net > 0) kill(net, SIGTERM);
  return code;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "start")) return cmd_start(argc, argv);
  fprintf(stderr, "usage: forge-sandbox start --root DIR --ctl-fd N [options]\n");
  return 2;
}
