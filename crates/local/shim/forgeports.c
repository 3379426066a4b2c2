/*
 * libforgeports: per-sandbox TCP port namespaces without network namespaces.
 *
 * The embedded backend runs sandbox processes directly on this machine, so two sandboxes whose
 * dev servers both want port 3000 would collide. This library is LD_PRELOADed into every
 * sandbox process (with FORGE_PORTS_DIR set to a backend-private folder of that sandbox) and
 * gives each sandbox its own view of TCP ports:
 *
 *  - bind(P): a TCP socket asking for port P != 0 is bound to loopback port 0 instead (the
 *    kernel picks a free real port A) and `$FORGE_PORTS_DIR/P` is published atomically with
 *    "A FAMILY INODE" (FAMILY: 4 = AF_INET at 127.0.0.1, 6 = AF_INET6 at ::1, m = AF_INET6 at
 *    ::ffff:127.0.0.1; INODE: the socket's inode, so that readers can tell a live listener on
 *    A from a stale file). If P is already mapped in this sandbox to a live listener, the bind
 *    fails with EADDRINUSE, as it would natively (Vite and Next then try the next port).
 *  - getsockname(): reports P instead of A (and the address asked for on the bound socket), so
 *    `server.address().port` and "Local: http://localhost:P" stay right.
 *  - connect() to a loopback address and port P: goes to A when P is mapped to a live
 *    listener, so `curl localhost:P` inside the sandbox reaches its own server.
 *
 * Without FORGE_PORTS_DIR everything passes through untouched. Nothing here may crash the host
 * program: every input is checked, errno is preserved on success paths, and failures to publish
 * only lose the mapping (the server still runs).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*getsockname_fn)(int, struct sockaddr *, socklen_t *);

static bind_fn real_bind_p;
static connect_fn real_connect_p;
static getsockname_fn real_getsockname_p;

/* The ports folder, copied once at load time (getenv later could race with setenv). */
static char ports_dir[1024];
static int ports_on;

__attribute__((constructor)) static void forgeports_init(void) {
    const char *d = getenv("FORGE_PORTS_DIR");
    if (d && d[0] == '/' && strlen(d) < sizeof(ports_dir) - 16) {
        strcpy(ports_dir, d);
        ports_on = 1;
    }
}

static void *next_sym(const char *name) { return dlsym(RTLD_NEXT, name); }

/* The next definition of a wrapped call (libc's), looked up once; races only repeat dlsym. */
#define NEXT(type, var, name)                                                                      \
    static type name##_next(void) {                                                               \
        type f = __atomic_load_n(&var, __ATOMIC_ACQUIRE);                                          \
        if (!f) {                                                                                  \
            f = (type)next_sym(#name);                                                             \
            __atomic_store_n(&var, f, __ATOMIC_RELEASE);                                           \
        }                                                                                          \
        return f;                                                                                  \
    }
NEXT(bind_fn, real_bind_p, bind)
NEXT(connect_fn, real_connect_p, connect)
NEXT(getsockname_fn, real_getsockname_p, getsockname)

/* ---- the per-process table of (real port A -> asked port P, asked address) ---------------- */

#define SLOTS 128

struct slot {
    uint32_t key; /* (A << 16) | P, 0 = free; written last (release) */
    int fd;       /* the bound socket, and its inode: the slot holds while fd is that socket */
    unsigned long inode;
    int family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } asked;
};

static struct slot table[SLOTS];

static void remember(uint16_t real, uint16_t asked, const struct sockaddr *addr, int fd,
                     unsigned long inode) {
    uint32_t key = ((uint32_t)real << 16) | asked;
    for (int i = 0; i < SLOTS; i++) {
        uint32_t cur = __atomic_load_n(&table[i].key, __ATOMIC_ACQUIRE);
        int mine = (cur >> 16) == real;
        if (!mine) {
            uint32_t expected = 0;
            /* Claim a free slot; 1 marks it taken while it is filled in. */
            if (cur != 0 || !__atomic_compare_exchange_n(&table[i].key, &expected, 1, 0,
                                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                continue;
        }
        table[i].fd = fd;
        table[i].inode = inode;
        table[i].family = addr->sa_family;
        if (addr->sa_family == AF_INET)
            table[i].asked.v4 = ((const struct sockaddr_in *)addr)->sin_addr;
        else
            table[i].asked.v6 = ((const struct sockaddr_in6 *)addr)->sin6_addr;
        __atomic_store_n(&table[i].key, key, __ATOMIC_RELEASE);
        return;
    }
    /* Table full: getsockname will report the real port. */
}

static unsigned long inode_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* The slot of real port A whose socket is still open (a closed listener's port may since
 * have been given to an unrelated socket of this process). */
static struct slot *lookup(uint16_t real) {
    for (int i = 0; i < SLOTS; i++) {
        uint32_t cur = __atomic_load_n(&table[i].key, __ATOMIC_ACQUIRE);
        if (cur > 1 && (cur >> 16) == real && table[i].inode != 0 &&
            inode_of(table[i].fd) == table[i].inode)
            return &table[i];
    }
    return NULL;
}


/* ---- helpers ------------------------------------------------------------------------------ */

static int is_stream(int fd) {
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return 0;
    return type == SOCK_STREAM;
}

static int sockopt_on(int fd, int level, int name) {
    int v = 0;
    socklen_t len = sizeof(v);
    return getsockopt(fd, level, name, &v, &len) == 0 && v != 0;
}

/* The port of an AF_INET/AF_INET6 address of sufficient length, else -1. */
static int port_of(const struct sockaddr *a, socklen_t len) {
    if (!a)
        return -1;
    if (a->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return -1;
}

static int v4_loopback(const struct in_addr *a) {
    uint32_t h = ntohl(a->s_addr);
    return (h >> 24) == 127 || h == 0;
}

static int v6_loopback(const struct in6_addr *a) {
    if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a))
        return 1;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        struct in_addr v4;
        memcpy(&v4, &a->s6_addr[12], 4);
        return v4_loopback(&v4);
    }
    return 0;
}

/* ::ffff:127.0.0.1, the v4-mapped loopback address. */
static void mapped_loopback(struct in6_addr *a) {
    memset(a, 0, sizeof(*a));
    a->s6_addr[10] = 0xff;
    a->s6_addr[11] = 0xff;
    a->s6_addr[12] = 127;
    a->s6_addr[15] = 1;
}

struct mapping {
    unsigned port;      /* the real port A */
    char family;        /* '4', '6' or 'm' */
    unsigned long inode; /* 0 when unknown */
};

static void path_of(char *buf, size_t size, unsigned port) {
    snprintf(buf, size, "%s/%u", ports_dir, port);
}

/* Reads `$FORGE_PORTS_DIR/P`; 1 when it holds a well-formed mapping. */
static int read_mapping(unsigned asked, struct mapping *m) {
    char path[1100], buf[96];
    path_of(path, sizeof(path), asked);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned port = 0;
    char fam = 0;
    unsigned long inode = 0;
    if (sscanf(buf, "%u %c %lu", &port, &fam, &inode) < 2)
        return 0;
    if (port == 0 || port > 65535 || (fam != '4' && fam != '6' && fam != 'm'))
        return 0;
    m->port = port;
    m->family = fam;
    m->inode = inode;
    return 1;
}

/* Whether a line of /proc/net/tcp{,6} is a LISTEN socket on `port` (with `inode` if known). */
static int line_matches(const char *line, unsigned port, unsigned long inode) {
    /* "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode" */
    char local[80], remote[80], st[8];
    unsigned long ino = 0;
    unsigned sl;
    if (sscanf(line, " %u: %79s %79s %7s %*s %*s %*s %*s %*s %lu", &sl, local, remote, st, &ino) <
        4)
        return 0;
    if (strcmp(st, "0A") != 0)
        return 0;
    char *colon = strrchr(local, ':');
    if (!colon)
        return 0;
    unsigned p = (unsigned)strtoul(colon + 1, NULL, 16);
    return p == port && (inode == 0 || ino == inode);
}

/* Whether a LISTEN socket of `family` on `port` (with `inode` when known) exists, asked of the
 * kernel over NETLINK_SOCK_DIAG with a LISTEN-only state filter (which skips the established
 * hash: reading /proc/net/tcp walks all of it and takes milliseconds on large machines).
 * 1 found, 0 not found, -1 no answer (then /proc is read). */
static int live_diag(int family, unsigned port, unsigned long inode) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = (uint8_t)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << 10; /* TCP_LISTEN */
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        close(fd);
        return -1;
    }
    long buf[8192 / sizeof(long)];
    int result = -1;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                if (result < 0)
                    result = 0;
                goto done;
            }
            if (h->nlmsg_type == NLMSG_ERROR)
                goto done;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                continue;
            struct inet_diag_msg *d = NLMSG_DATA(h);
            if (ntohs(d->id.idiag_sport) == port && (inode == 0 || d->idiag_inode == inode)) {
                result = 1;
                goto done;
            }
        }
    }
done:
    close(fd);
    return result;
}

/* Whether the mapped real port still has its listener: sock_diag, else /proc/net/tcp{,6}. */
static int live(const struct mapping *m) {
    int diag = live_diag(m->family == '4' ? AF_INET : AF_INET6, m->port, m->inode);
    if (diag >= 0)
        return diag;
    const char *table_path = m->family == '4' ? "/proc/net/tcp" : "/proc/net/tcp6";
    int fd = open(table_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1; /* cannot tell: trust the file */
    char buf[16384];
    size_t have = 0;
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = 0;
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n')) != NULL) {
            *nl = 0;
            if (line_matches(start, m->port, m->inode)) {
                found = 1;
                break;
            }
            start = nl + 1;
        }
        if (found)
            break;
        have = (size_t)(buf + have - start);
        memmove(buf, start, have);
        if (have >= sizeof(buf) - 1)
            have = 0; /* a line longer than the buffer: drop it */
    }
    close(fd);
    return found;
}

/* Publishes `P -> A` as a temp file renamed into place. */
static void publish(unsigned asked, unsigned real, char family, unsigned long inode) {
    char path[1100], tmp[1200], line[96];
    path_of(path, sizeof(path), asked);
    snprintf(tmp, sizeof(tmp), "%s/.%u.%ld.%ld.tmp", ports_dir, asked, (long)getpid(),
             (long)syscall(SYS_gettid));
    int len = snprintf(line, sizeof(line), "%u %c %lu\n", real, family, inode);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        mkdir(ports_dir, 0700);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)len);
    close(fd);
    if (w != len || rename(tmp, path) != 0)
        unlink(tmp);
}

/* For a listening socket this process did not bind (inherited across exec, or passed over a
 * Unix socket): the published port whose file names this real port and socket inode. */
static int published_for(int fd, unsigned real) {
    unsigned long inode = inode_of(fd);
    if (inode == 0 || !sockopt_on(fd, SOL_SOCKET, SO_ACCEPTCONN))
        return -1;
    DIR *d = opendir(ports_dir);
    if (!d)
        return -1;
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d)) != NULL) {
        char *end;
        unsigned long asked = strtoul(e->d_name, &end, 10);
        struct mapping m;
        if (*end == 0 && asked > 0 && asked < 65536 && read_mapping((unsigned)asked, &m) &&
            m.port == real && m.inode == inode)
            found = (int)asked;
    }
    closedir(d);
    return found;
}

/* ---- the wrapped calls ---------------------------------------------------------------------- */

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    bind_fn next = bind_next();
    if (!next) {
        errno = ENOSYS;
        return -1;
    }
    int asked = port_of(addr, len);
    if (!ports_on || asked <= 0 || !is_stream(fd))
        return next(fd, addr, len);
    int saved = errno;

    struct mapping m;
    if (read_mapping((unsigned)asked, &m) && live(&m)) {
        /* SO_REUSEPORT servers share a port on purpose: join the mapped real port. */
        if (sockopt_on(fd, SOL_SOCKET, SO_REUSEPORT)) {
            struct sockaddr_storage same;
            memset(&same, 0, sizeof(same));
            socklen_t slen;
            if (addr->sa_family == AF_INET && m.family == '4') {
                struct sockaddr_in *s = (struct sockaddr_in *)&same;
                s->sin_family = AF_INET;
                s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                s->sin_port = htons((uint16_t)m.port);
                slen = sizeof(*s);
            } else if (addr->sa_family == AF_INET6 && m.family != '4') {
                struct sockaddr_in6 *s = (struct sockaddr_in6 *)&same;
                s->sin6_family = AF_INET6;
                if (m.family == 'm')
                    mapped_loopback(&s->sin6_addr);
                else
                    s->sin6_addr = in6addr_loopback;
                s->sin6_port = htons((uint16_t)m.port);
                slen = sizeof(*s);
            } else {
                errno = EADDRINUSE;
                return -1;
            }
            int r = next(fd, (struct sockaddr *)&same, slen);
            if (r == 0) {
                remember((uint16_t)m.port, (uint16_t)asked, addr, fd, inode_of(fd));
                errno = saved;
            }
            return r;
        }
        errno = EADDRINUSE;
        return -1;
    }

    struct sockaddr_storage lo;
    memset(&lo, 0, sizeof(lo));
    socklen_t lolen;
    char family;
    if (addr->sa_family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&lo;
        s->sin_family = AF_INET;
        s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lolen = sizeof(*s);
        family = '4';
    } else {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&lo;
        s->sin6_family = AF_INET6;
        /* A dual-stack wildcard or a v4-mapped address: v4-mapped loopback, which v4 clients
         * reach as 127.0.0.1 and v6 clients of the sandbox reach through connect() below. */
        int dual = IN6_IS_ADDR_UNSPECIFIED(a) && !sockopt_on(fd, IPPROTO_IPV6, IPV6_V6ONLY);
        if (dual || IN6_IS_ADDR_V4MAPPED(a)) {
            mapped_loopback(&s->sin6_addr);
            family = 'm';
        } else {
            s->sin6_addr = in6addr_loopback;
            family = '6';
        }
        lolen = sizeof(*s);
    }
    int r = next(fd, (struct sockaddr *)&lo, lolen);
    if (r != 0)
        return r;

    getsockname_fn gsn = getsockname_next();
    struct sockaddr_storage got;
    socklen_t glen = sizeof(got);
    int real = -1;
    if (gsn && gsn(fd, (struct sockaddr *)&got, &glen) == 0)
        real = port_of((struct sockaddr *)&got, glen);
    if (real > 0) {
        unsigned long inode = inode_of(fd);
        publish((unsigned)asked, (unsigned)real, family, inode);
        remember((uint16_t)real, (uint16_t)asked, addr, fd, inode);
    }
    errno = saved;
    return 0;
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
    getsockname_fn next = getsockname_next();
    if (!next) {
        errno = ENOSYS;
        return -1;
    }
    socklen_t given = len ? *len : 0;
    int r = next(fd, addr, len);
    if (r != 0 || !ports_on || !addr || !len)
        return r;
    int port = port_of(addr, given < *len ? given : *len);
    if (port <= 0)
        return r;
    int saved = errno;
    struct slot *s = lookup((uint16_t)port);
    uint32_t key = s ? __atomic_load_n(&s->key, __ATOMIC_ACQUIRE) : 0;
    int asked_port = s && (key >> 16) == (uint32_t)port ? (int)(key & 0xffff)
                                                         : published_for(fd, (unsigned)port);
    errno = saved;
    if (asked_port <= 0)
        return r;
    uint16_t asked = (uint16_t)asked_port;
    /* Without a slot (an inherited socket) the asked address is unknown: the real one stays. */
    int family = s ? s->family : AF_UNSPEC;
    /* The bound (listening) socket reports the address asked for; accepted connections keep
     * their real local address. */
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int unconnected = getpeername(fd, (struct sockaddr *)&peer, &plen) != 0;
    errno = saved;
    if (addr->sa_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)addr;
        a->sin_port = htons(asked);
        if (unconnected && family == AF_INET)
            a->sin_addr = s->asked.v4;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        a->sin6_port = htons(asked);
        if (unconnected && family == AF_INET6)
            a->sin6_addr = s->asked.v6;
    }
    return r;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    connect_fn next = connect_next();
    if (!next) {
        errno = ENOSYS;
        return -1;
    }
    int port = port_of(addr, len);
    if (!ports_on || port <= 0)
        return next(fd, addr, len);
    int loop = addr->sa_family == AF_INET
                   ? v4_loopback(&((const struct sockaddr_in *)addr)->sin_addr)
                   : v6_loopback(&((const struct sockaddr_in6 *)addr)->sin6_addr);
    if (!loop)
        return next(fd, addr, len);
    int saved = errno;
    struct mapping m;
    if (!read_mapping((unsigned)port, &m) || !is_stream(fd) || !live(&m)) {
        errno = saved;
        return next(fd, addr, len);
    }
    errno = saved;
    if (addr->sa_family == AF_INET) {
        if (m.family == '6')
            return next(fd, addr, len); /* a ::1-only server: not reachable over v4, as natively */
        struct sockaddr_in to;
        memcpy(&to, addr, sizeof(to));
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to.sin_port = htons((uint16_t)m.port);
        return next(fd, (const struct sockaddr *)&to, sizeof(to));
    }
    struct sockaddr_in6 to;
    memcpy(&to, addr, sizeof(to));
    if (m.family == '6')
        to.sin6_addr = in6addr_loopback;
    else
        mapped_loopback(&to.sin6_addr);
    to.sin6_port = htons((uint16_t)m.port);
    return next(fd, (const struct sockaddr *)&to, sizeof(to));
}
