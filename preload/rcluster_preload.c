/*
 * rcluster_preload.c -- the LD_PRELOAD library behind rcluster's round-robin cluster mode.
 *
 * WHAT IT IS
 *   A small shared object (libc + libdl only) loaded into UNMODIFIED servers (python -m http.server,
 *   Node's http.createServer().listen(port), gunicorn and its forked workers, any epoll server). When
 *   the program binds a managed TCP port, the library puts the instance's end of a Unix SOCK_SEQPACKET
 *   "channel" on the program's fd instead. The rcluster daemon owns the real listening socket, accepts
 *   every connection and sends it down the channel of the next ready instance; the program's accept()
 *   reads one message and returns the fd it carries. The channel is readable exactly when a connection
 *   is waiting, so poll/epoll/select loops work unchanged. Design and pitfalls:
 *   shared/design/SOCKET-PASSING.md (sections 3 and 4).
 *
 * ABI (fixed; the daemon side is src/abi.rs, keep both in step)
 *   Environment:
 *     RCLUSTER_CHANNELS=PORT=FD[,PORT=FD...]  bind() of a SOCK_STREAM AF_INET/AF_INET6 socket to PORT
 *         (any address) is redirected to the channel at FD (inherited without CLOEXEC). The channel's
 *         inode is recorded at start-up.
 *     RCLUSTER_RENDEZVOUS_FD=N  (optional) port discovery: a TCP bind to a non-zero port that is neither
 *         in RCLUSTER_CHANNELS nor in RCLUSTER_PRIVATE_PORTS sends a BIND request on fd N with a fresh
 *         reply socket, and waits for BOUND (a channel fd: the port becomes managed), REFUSE (bind fails
 *         with the errno given) or PASS (real bind). No usable fd N, or EOF/error: real bind.
 *     RCLUSTER_RENDEZVOUS_NAME=NAME  (optional) the same rendezvous, reached by connecting a SEQPACKET
 *         socket to the abstract address "\0NAME" when fd N is not inherited (npm's Node marks
 *         inherited fds close-on-exec; other wrappers close them). Connected once per image, lazily.
 *     RCLUSTER_PRIVATE_PORTS=P1,P2  (optional) ports never shared.
 *     RCLUSTER_ACTIVATION_FD=N  (optional; shared and reuseport mode, no channels) the first touch of a
 *         LISTEN_FDS socket that listens sends READY on fd N (a socket of the rendezvous kind).
 *     RCLUSTER_LISTEN_PID_FIX=1  (optional) with LISTEN_FDS set: LISTEN_PID := this process's pid
 *         at load (wrapper chains that fork, e.g. `npm start`, still hand the program its own pid).
 *     RCLUSTER_PRELOAD_DEBUG=1  (optional) one line on stderr per redirect/READY/UNREADY/adopt/EOF.
 *   Channel names: the daemon binds each channel's instance end to an abstract Unix address,
 *     "\0rcluster-channel" + [len: 16|28] + the daemon's listening sockaddr + 8 unique bytes. A channel
 *     fd this library was not told of (passed to a worker that is a new program: uvicorn --workers,
 *     multiprocessing "spawn") is known by that name; it gives the port and the address.
 *   Messages (native endian, fixed sizes):
 *     CONN    daemon -> instance, channel, 32 bytes: [0]=1 [1]=fdflags (bit0: the passed description
 *             has O_NONBLOCK) [2]=peer sockaddr length (<=28) [3]=0 [4..32]=peer sockaddr, zero padded;
 *             SCM_RIGHTS carries exactly one fd (the accepted TCP connection).
 *     READY   instance -> daemon, channel, 8 bytes: [0]=2 [1..4]=0 [4..8]=pid (u32). First listen() on
 *             the channel in this process. Also on the activation fd, for a LISTEN_FDS socket.
 *     UNREADY instance -> daemon, channel, 8 bytes: [0]=3, pid as above. The pid that sent READY
 *             closed (or shut down) its last copy of the listener.
 *     BIND    instance -> daemon, rendezvous fd, 32 bytes: [0]=4 [1]=flags (bit0: the program's IPv6
 *             socket is IPV6_V6ONLY) [2]=sockaddr length (16 or 28)
 *             [3]=0 [4..32]=the sockaddr the program asked for (normalised: sin_zero/sin6_flowinfo
 *             zeroed, IPv6 always 28 bytes); SCM_RIGHTS carries the reply socket.
 *     reply   daemon -> instance, reply socket, 8 bytes: [0]=5 BOUND (SCM_RIGHTS: channel fd) |
 *             6 REFUSE ([4..8] = errno, u32) | 7 PASS | 8 ADOPT (SCM_RIGHTS: a real listening TCP
 *             socket the daemon holds for this address; fork mode). The program's fd becomes that
 *             socket and is left alone from then on, but for READY on the rendezvous at its listen().
 *
 * WHY EACH HOOK EXISTS
 *   bind         redirect a managed port: dup3 the channel onto the program's fd, keeping the program's
 *                CLOEXEC (per fd) and O_NONBLOCK (per description); remember the requested address.
 *                ADOPT: dup3 the daemon's listening socket the same way, carrying over the options the
 *                program set before bind; the kernel does the rest (accept, getsockname...).
 *   listen       return 0 on the channel (a Unix socketpair cannot listen) and send READY once per pid;
 *                on an adopted socket, the real listen (a new backlog) and READY on the rendezvous;
 *                on a LISTEN_FDS socket, READY on the activation fd (as every hook below that calls
 *                activation_touch).
 *   accept(4)    receive one CONN message; honour SOCK_CLOEXEC (MSG_CMSG_CLOEXEC) and SOCK_NONBLOCK
 *                (one fcntl, only when it differs from fdflags); re-apply TCP options the program set on
 *                the listener (the kernel would have copied them); fill the address in the listener's
 *                family (v4-mapped for an AF_INET6 program), truncated, full length reported.
 *   getsockname  on the channel: the requested address with the managed port (HTTPServer unpacks it,
 *                Node's server.address() reads it); on dealt fds: translated to the listener's family.
 *   getpeername  on the channel: ENOTCONN; on dealt fds: translated (Node's remoteAddress uses it).
 *   getsockopt   on the channel: look like a TCP listener (SO_TYPE, SO_DOMAIN, SO_PROTOCOL,
 *                SO_ACCEPTCONN, recorded options, neutral defaults).
 *   setsockopt   on the channel: record options, pass SO_RCVTIMEO/SO_SNDTIMEO through, accept and
 *                ignore the rest (a Unix socket would reject TCP options and programs treat it as fatal).
 *   close, syscall(SYS_close), close_range
 *                forget the fd (numbers are reused) and send UNREADY when the rule applies. libuv
 *                (Node) closes every fd with syscall(SYS_close), so hooking close() alone misses Node.
 *   dup, dup2, dup3, fcntl, fcntl64 (F_DUPFD, F_DUPFD_CLOEXEC)
 *                copy the listener state to the new fd; forget a listener fd that dup2/dup3 overwrites.
 *                Programs built against glibc >= 2.28 (Node among them) import fcntl64.
 *   shutdown     on the channel: never forwarded (it would cut off every process of the instance);
 *                means "stop accepting": UNREADY.
 *   constructor  parse the environment, record channel inodes. The soft NOFILE limit is raised once a
 *                channel is known (a passed fd that cannot be installed is lost, unlike a connection
 *                left in a listen queue); a fork-mode program, which is passed no connections, keeps
 *                its own.
 *   Fallback: an unknown fd that behaves like a channel (accept/listen EINVAL, getsockname AF_UNIX,
 *   getsockopt SEQPACKET/AF_UNIX) and whose inode matches a channel, or whose name is a channel's, is
 *   adopted (copies made behind the library's back, or passed to a process that was never told of
 *   the channel). When the channel reads EOF (daemon gone) the process gets SIGTERM once.
 *
 * RULES FOR THIS FILE
 *   No allocation on hot paths (fixed tables, stack buffers), never crash the host program (a missing
 *   real symbol fails the call with ENOSYS), thread safe (one small mutex for table changes; nothing
 *   blocks while holding it), fork safe (pthread_atfork), and inert when no channel is configured.
 *   Internal calls always use the real functions, never the hooks. Bookkeeping done around a
 *   successful call (bind, listen, close, dup) leaves errno as it was.
 */
#define _GNU_SOURCE
#undef _FILE_OFFSET_BITS
#undef _TIME_BITS

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* glibc declares the socket calls with transparent unions under _GNU_SOURCE; definitions must match. */
#if defined(__GLIBC__) && !defined(__SOCKADDR_ARG) && !defined(__cplusplus)
typedef __SOCKADDR_ARG rcl_sa_arg;
typedef __CONST_SOCKADDR_ARG rcl_csa_arg;
#define SA_PTR(u) ((u).__sockaddr__)
#else
typedef struct sockaddr *rcl_sa_arg;
typedef const struct sockaddr *rcl_csa_arg;
#define SA_PTR(u) (u)
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SO_PROTOCOL
#define SO_PROTOCOL 38
#endif
#ifndef SO_DOMAIN
#define SO_DOMAIN 39
#endif

/* ---- ABI ------------------------------------------------------------------------------------- */
enum {
    KIND_CONN = 1,
    KIND_READY = 2,
    KIND_UNREADY = 3,
    KIND_BIND = 4,
    KIND_BOUND = 5,
    KIND_REFUSE = 6,
    KIND_PASS = 7,
    KIND_ADOPT = 8,
};
#define BIND_V6ONLY 0x01
#define CONN_MSG_LEN 32
#define STATE_MSG_LEN 8
#define BIND_MSG_LEN 32
#define REPLY_MSG_LEN 8
#define FDFLAG_NONBLOCK 0x01
#define MAX_SA_LEN 28

/* ---- limits ---------------------------------------------------------------------------------- */
#define FDTAB_SIZE (1 << 20) /* fds tracked; also the cap for the NOFILE raise. 1 MiB of lazy BSS. */
#define MAX_CHANNELS 64
#define MAX_LISTENERS 200 /* fdtab values 1..MAX_LISTENERS name a listener record */
#define FD_MAPPED_V6 0xFE /* dealt fd: kernel says AF_INET, program (AF_INET6) sees ::ffff:a.b.c.d */
#define FD_UNMAPPED_V4 0xFD /* dealt fd: kernel says ::ffff:a.b.c.d, program (AF_INET) sees a.b.c.d */
#define FD_HELD 0xFC /* a real listening socket adopted from the daemon (fork mode): READY at listen */
#define MAX_PRIVATE 64
#define MAX_OPTS 16
#define CMSG_FDS 8

typedef union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} rcl_addr;

/* ---- real functions, resolved once with dlsym(RTLD_NEXT) -------------------------------------- */
static struct {
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*shutdown)(int, int);
    int (*close)(int);
    int (*close_range)(unsigned int, unsigned int, int);
    long (*syscall)(long, ...);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
} R;
static int resolved;

#define LOAD(p) __atomic_load_n(&(p), __ATOMIC_RELAXED)
#define REAL(name) LOAD(R.name)
#define RESOLVE(name)                                                                              \
    __atomic_store_n(&R.name, (__typeof__(R.name))dlsym(RTLD_NEXT, #name), __ATOMIC_RELAXED)
#define NEED(name, fail)                                                                           \
    do {                                                                                           \
        if (UNLIKELY(!REAL(name))) {                                                               \
            errno = ENOSYS;                                                                        \
            return fail;                                                                           \
        }                                                                                          \
    } while (0)

static void resolve_all(void)
{
    int saved = errno;
    RESOLVE(close);
    RESOLVE(syscall);
    RESOLVE(fcntl);
    RESOLVE(fcntl64);
    if (!REAL(fcntl64)) /* glibc < 2.28 */
        __atomic_store_n(&R.fcntl64, REAL(fcntl), __ATOMIC_RELAXED);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(bind);
    RESOLVE(listen);
    RESOLVE(accept);
    RESOLVE(accept4);
    RESOLVE(getsockname);
    RESOLVE(getpeername);
    RESOLVE(getsockopt);
    RESOLVE(setsockopt);
    RESOLVE(shutdown);
    RESOLVE(close_range);
    __atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
    errno = saved;
}

static inline void ensure(void)
{
    if (UNLIKELY(!__atomic_load_n(&resolved, __ATOMIC_ACQUIRE)))
        resolve_all();
}

/* ---- state ----------------------------------------------------------------------------------- */
struct channel {
    unsigned short port;
    int fd; /* the inherited (or BOUND) channel fd; made CLOEXEC once the program has its copy */
    dev_t dev;
    ino_t ino;
    pid_t ready_pid; /* pid that sent READY (0: none or UNREADY sent) */
    int nrefs;       /* program fds of this process mapped to this channel */
    int cloexec_done;
};

struct opt {
    int level, name, value;
};

struct listener {
    int used;
    int chan;
    int refs; /* fds sharing this record (dups of one description) */
    int family;
    int listening;
    int shut;
    rcl_addr addr; /* what the program asked for, port included */
    socklen_t addrlen;
    int nopts;
    struct opt opts[MAX_OPTS];
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t rdv_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char fdtab[FDTAB_SIZE];
static int fd_hiwater = -1;
static struct channel chans[MAX_CHANNELS];
static int nchan; /* append-only; entries [0, nchan) are published */
static struct listener lsn[MAX_LISTENERS];
static unsigned short private_ports[MAX_PRIVATE];
static int nprivate;
static int rdv_fd = -1;
static dev_t rdv_dev;
static ino_t rdv_ino;
/* The rendezvous by name: the abstract address, and this image's connection to it (rdv_lock). */
static struct sockaddr_un rdv_name;
static socklen_t rdv_name_len;
static int rdv_conn = -1;
static dev_t rdv_conn_dev;
static ino_t rdv_conn_ino;
static pid_t held_ready_pid; /* the process that said READY for an adopted socket */
/* shared / reuseport: the report socket on which the LISTEN_FDS sockets' first use is announced. */
static int act_fd = -1;
static dev_t act_dev;
static ino_t act_ino;
static int configured_flag; /* a channel or a rendezvous fd is usable */
static pid_t state_pid; /* the process whose copy of this memory this is */
static int term_raised;
static int debug_on;

#define configured __atomic_load_n(&configured_flag, __ATOMIC_RELAXED)

static void raise_nofile(void);

static inline void lk(void) { pthread_mutex_lock(&table_lock); }
static inline void ulk(void) { pthread_mutex_unlock(&table_lock); }

static inline unsigned ent(int fd)
{
    if (fd < 0 || fd >= FDTAB_SIZE)
        return 0;
    return __atomic_load_n(&fdtab[fd], __ATOMIC_ACQUIRE);
}

static inline int is_listener(unsigned e) { return e >= 1 && e <= MAX_LISTENERS; }
static inline int is_dealt(unsigned e) { return e == FD_MAPPED_V6 || e == FD_UNMAPPED_V4; }
static inline int rdv_known(void) { return rdv_fd >= 0 || rdv_name_len > 0; }

static void set_ent(int fd, unsigned e)
{
    if (fd < 0 || fd >= FDTAB_SIZE)
        return;
    __atomic_store_n(&fdtab[fd], (unsigned char)e, __ATOMIC_RELEASE);
    if (e) {
        int hi = __atomic_load_n(&fd_hiwater, __ATOMIC_RELAXED);
        while (fd > hi &&
               !__atomic_compare_exchange_n(&fd_hiwater, &hi, fd, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
    }
}

/* False in a vfork()/posix_spawn child, which shares the parent's memory: never mutate state there. */
static int own_memory(void) { return getpid() == __atomic_load_n(&state_pid, __ATOMIC_RELAXED); }

/* ---- small helpers --------------------------------------------------------------------------- */
static void dbg(const char *what, long a, long b)
{
    if (!debug_on)
        return;
    char buf[160];
    size_t n = 0;
    const char *p = "rcluster-preload[";
    long vals[3] = {(long)getpid(), a, b};
    while (*p && n < sizeof buf)
        buf[n++] = *p++;
    for (int i = 0; i < 3; i++) {
        char d[24];
        int k = 0;
        long v = vals[i];
        unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
        if (i == 0) {
            /* pid, then the label */
        } else if (n < sizeof buf) {
            buf[n++] = ' ';
        }
        do {
            d[k++] = (char)('0' + u % 10);
            u /= 10;
        } while (u && k < (int)sizeof d);
        if (v < 0 && n < sizeof buf)
            buf[n++] = '-';
        while (k > 0 && n < sizeof buf)
            buf[n++] = d[--k];
        if (i == 0) {
            const char *q = "] ";
            while (*q && n < sizeof buf)
                buf[n++] = *q++;
            while (*what && n < sizeof buf)
                buf[n++] = *what++;
        }
    }
    if (n < sizeof buf)
        buf[n++] = '\n';
    ssize_t w = write(2, buf, n);
    (void)w;
}

static int parse_uint(const char **s, unsigned long max, unsigned long *out)
{
    const char *p = *s;
    unsigned long v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > max)
            return -1;
        p++;
    }
    *s = p;
    *out = v;
    return 0;
}

static int sock_int_opt(int fd, int level, int name, int *out)
{
    socklen_t l = sizeof(int);
    int v = 0;
    if (!REAL(getsockopt) || REAL(getsockopt)(fd, level, name, &v, &l) < 0 || l != sizeof(int))
        return -1;
    *out = v;
    return 0;
}

/* Is fd a Unix SOCK_SEQPACKET socket? On success fills dev/ino. */
static int is_seqpacket(int fd, dev_t *dev, ino_t *ino)
{
    struct stat st;
    int type, dom;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    if (sock_int_opt(fd, SOL_SOCKET, SO_TYPE, &type) < 0 || type != SOCK_SEQPACKET)
        return 0;
    if (sock_int_opt(fd, SOL_SOCKET, SO_DOMAIN, &dom) == 0 && dom != AF_UNIX)
        return 0;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 1;
}

static int same_inode(int fd, dev_t dev, ino_t ino)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev && st.st_ino == ino;
}

static int find_chan(unsigned short port)
{
    int n = __atomic_load_n(&nchan, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (chans[i].port == port)
            return i;
    return -1;
}

/* Caller holds table_lock (or is the constructor). */
static int add_chan(unsigned short port, int fd, dev_t dev, ino_t ino)
{
    int n = __atomic_load_n(&nchan, __ATOMIC_RELAXED);
    for (int i = 0; i < n; i++)
        if (chans[i].port == port)
            return i;
    if (n >= MAX_CHANNELS)
        return -1;
    chans[n].port = port;
    chans[n].fd = fd;
    chans[n].dev = dev;
    chans[n].ino = ino;
    chans[n].ready_pid = 0;
    chans[n].nrefs = 0;
    chans[n].cloexec_done = 0;
    __atomic_store_n(&nchan, n + 1, __ATOMIC_RELEASE);
    if (n == 0)
        raise_nofile(); /* connections will be passed: see the constructor's note */
    return n;
}

static int is_private(unsigned short port)
{
    for (int i = 0; i < nprivate; i++)
        if (private_ports[i] == port)
            return 1;
    return 0;
}

static void send_state(int fd, int kind)
{
    unsigned char m[STATE_MSG_LEN] = {0};
    uint32_t pid = (uint32_t)getpid();
    m[0] = (unsigned char)kind;
    memcpy(m + 4, &pid, sizeof pid);
    ssize_t r;
    do {
        r = send(fd, m, sizeof m, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    dbg(kind == KIND_READY ? "READY sent on fd" : "UNREADY sent on fd", fd, (long)r);
}

/* Copy out an address the way the kernel does: truncate to the caller's buffer, report full length. */
static void put_addr(struct sockaddr *dst, socklen_t *dlen, const void *src, socklen_t slen)
{
    if (!dst || !dlen)
        return;
    socklen_t n = *dlen < slen ? *dlen : slen;
    memcpy(dst, src, n);
    *dlen = slen;
}

/* Translate src (slen bytes) to family `want` where possible (v4 <-> v4-mapped v6). */
static socklen_t translate(const void *src, socklen_t slen, int want, rcl_addr *out)
{
    sa_family_t f = AF_UNSPEC;
    memset(out, 0, sizeof *out);
    if (slen > sizeof *out)
        slen = sizeof *out;
    if (slen >= sizeof(sa_family_t))
        memcpy(&f, src, sizeof f);
    if (want == AF_INET6 && f == AF_INET && slen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, src, sizeof in);
        out->in6.sin6_family = AF_INET6;
        out->in6.sin6_port = in.sin_port;
        out->in6.sin6_addr.s6_addr[10] = 0xff;
        out->in6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&out->in6.sin6_addr.s6_addr[12], &in.sin_addr, 4);
        return sizeof(struct sockaddr_in6);
    }
    if (want == AF_INET && f == AF_INET6 && slen >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
        struct sockaddr_in6 in6;
        memset(&in6, 0, sizeof in6);
        memcpy(&in6, src, slen < sizeof in6 ? slen : sizeof in6);
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            out->in.sin_family = AF_INET;
            out->in.sin_port = in6.sin6_port;
            memcpy(&out->in.sin_addr, &in6.sin6_addr.s6_addr[12], 4);
            return sizeof(struct sockaddr_in);
        }
    }
    memcpy(out, src, slen);
    return slen;
}

/* ---- listener options ------------------------------------------------------------------------ */
/* Options the kernel copies from a listener to accepted sockets: re-applied on every dealt fd. */
static int opt_reapply(int level, int name)
{
    if (level == SOL_SOCKET)
        return name == SO_KEEPALIVE || name == SO_RCVBUF || name == SO_SNDBUF;
    if (level == IPPROTO_TCP)
        return name == TCP_NODELAY || name == TCP_KEEPIDLE || name == TCP_KEEPINTVL ||
               name == TCP_KEEPCNT || name == TCP_USER_TIMEOUT;
    return 0;
}

static int opt_default(int level, int name)
{
    if (level == IPPROTO_TCP) {
        if (name == TCP_KEEPIDLE)
            return 7200;
        if (name == TCP_KEEPINTVL)
            return 75;
        if (name == TCP_KEEPCNT)
            return 9;
        if (name == TCP_MAXSEG)
            return 536;
    }
    return 0;
}

static void opt_record(struct listener *l, int level, int name, int value)
{
    for (int i = 0; i < l->nopts; i++) {
        if (l->opts[i].level == level && l->opts[i].name == name) {
            l->opts[i].value = value;
            return;
        }
    }
    if (l->nopts < MAX_OPTS) {
        l->opts[l->nopts].level = level;
        l->opts[l->nopts].name = name;
        l->opts[l->nopts].value = value;
        l->nopts++;
    }
}

static int opt_lookup(const struct listener *l, int level, int name, int *value)
{
    for (int i = 0; i < l->nopts; i++) {
        if (l->opts[i].level == level && l->opts[i].name == name) {
            *value = l->opts[i].value;
            return 1;
        }
    }
    return 0;
}

static int is_timeout_opt(int name)
{
    if (name == SO_RCVTIMEO || name == SO_SNDTIMEO)
        return 1;
#ifdef SO_RCVTIMEO_NEW
    if (name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW)
        return 1;
#endif
#ifdef SO_RCVTIMEO_OLD
    if (name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD)
        return 1;
#endif
    return 0;
}

/* ---- table changes --------------------------------------------------------------------------- */
static int alloc_listener(void)
{
    for (int i = 0; i < MAX_LISTENERS; i++) {
        if (!lsn[i].used) {
            memset(&lsn[i], 0, sizeof lsn[i]);
            lsn[i].used = 1;
            return i;
        }
    }
    return -1;
}

/* fd is being closed or overwritten: drop its entry, send UNREADY if it was this pid's last copy. */
static void forget(int fd, unsigned e)
{
    if (is_dealt(e) || e == FD_HELD) {
        set_ent(fd, 0);
        return;
    }
    if (!is_listener(e) || !own_memory())
        return;
    int saved = errno;
    lk();
    e = ent(fd);
    if (is_listener(e)) {
        struct listener *l = &lsn[e - 1];
        struct channel *c = &chans[l->chan];
        set_ent(fd, 0);
        if (c->nrefs > 0)
            c->nrefs--;
        if (c->nrefs == 0 && c->ready_pid != 0 && c->ready_pid == getpid()) {
            send_state(fd, KIND_UNREADY); /* fd is still the channel: it is closed after us */
            c->ready_pid = 0;
        }
        if (--l->refs <= 0)
            l->used = 0;
    }
    ulk();
    errno = saved;
}

static void forget_range(unsigned int first, unsigned int last, int flags)
{
    if ((flags & CLOSE_RANGE_CLOEXEC) || first > last)
        return;
    int hi = __atomic_load_n(&fd_hiwater, __ATOMIC_RELAXED);
    if (hi < 0 || first > (unsigned int)hi)
        return;
    unsigned int end = last < (unsigned int)hi ? last : (unsigned int)hi;
    for (unsigned int fd = first; fd <= end; fd++) {
        unsigned e = ent((int)fd);
        if (e)
            forget((int)fd, e);
    }
}

/*
 * `fd` was just created (dup, accept): an entry it still has belongs to an fd that was closed
 * behind our back (raw syscall, io_uring). Release it; if that was this pid's last copy of a
 * READY listener, send UNREADY through the channel fd we keep. Caller holds table_lock.
 */
static void drop_stale_locked(int fd)
{
    unsigned e = ent(fd);
    if (!e)
        return;
    set_ent(fd, 0);
    if (!is_listener(e))
        return;
    struct listener *l = &lsn[e - 1];
    struct channel *c = &chans[l->chan];
    if (c->nrefs > 0)
        c->nrefs--;
    if (c->nrefs == 0 && c->ready_pid != 0 && c->ready_pid == getpid() &&
        same_inode(c->fd, c->dev, c->ino)) {
        send_state(c->fd, KIND_UNREADY);
        c->ready_pid = 0;
    }
    if (--l->refs <= 0)
        l->used = 0;
}

/* Give the new fd `fd` the entry `e` (0: none), releasing a stale entry first. */
static void claim_fd(int fd, unsigned e)
{
    unsigned old = ent(fd);
    if (LIKELY(!is_listener(old))) {
        if (old != e)
            set_ent(fd, e);
        return;
    }
    if (!own_memory())
        return;
    int saved = errno;
    lk();
    drop_stale_locked(fd);
    set_ent(fd, e);
    ulk();
    errno = saved;
}

/* `to` is a new copy of `from` (dup family): share the listener record or the dealt marker. */
static void copy_ent(int from, int to)
{
    if (to < 0 || to >= FDTAB_SIZE)
        return;
    unsigned e = ent(from);
    if (is_listener(e)) {
        if (!own_memory())
            return;
        int saved = errno;
        lk();
        drop_stale_locked(to);
        e = ent(from);
        if (is_listener(e)) {
            lsn[e - 1].refs++;
            chans[lsn[e - 1].chan].nrefs++;
            set_ent(to, e);
        }
        ulk();
        errno = saved;
    } else {
        claim_fd(to, e);
    }
}

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

/* From now on the hooks look at every call: a channel is known (once per process). */
static void become_configured(void)
{
    static int done;
    if (__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
        return;
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    __atomic_store_n(&configured_flag, 1, __ATOMIC_RELEASE);
}

#define CHANNEL_NAME_PREFIX "rcluster-channel"
#define CHANNEL_NAME_PREFIX_LEN (sizeof CHANNEL_NAME_PREFIX - 1)

/* Is fd bound to a channel's name? Then *addr is the daemon's listening address. Returns its length, or 0. */
static socklen_t channel_named(int fd, rcl_addr *addr)
{
    struct sockaddr_un un;
    socklen_t len = sizeof un;
    if (!REAL(getsockname) || REAL(getsockname)(fd, (struct sockaddr *)&un, &len) < 0 || un.sun_family != AF_UNIX)
        return 0;
    size_t have = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    const char *p = un.sun_path;
    if (have < 2 + CHANNEL_NAME_PREFIX_LEN || p[0] != '\0' || memcmp(p + 1, CHANNEL_NAME_PREFIX, CHANNEL_NAME_PREFIX_LEN))
        return 0;
    socklen_t alen = (unsigned char)p[1 + CHANNEL_NAME_PREFIX_LEN];
    if ((alen != sizeof(struct sockaddr_in) && alen != sizeof(struct sockaddr_in6)) ||
        have < 2 + CHANNEL_NAME_PREFIX_LEN + alen)
        return 0;
    memset(addr, 0, sizeof *addr);
    memcpy(addr, p + 2 + CHANNEL_NAME_PREFIX_LEN, alen);
    int family = addr->sa.sa_family;
    if ((family == AF_INET && alen == sizeof(struct sockaddr_in)) ||
        (family == AF_INET6 && alen == sizeof(struct sockaddr_in6)))
        return alen;
    return 0;
}

/*
 * A channel this process was not told of, known by its name: record it, with a copy of the fd of
 * our own (the program may close its copy). Caller holds table_lock. Returns its index, or -1.
 */
static int add_named_chan_locked(int fd, const struct stat *st, const rcl_addr *addr)
{
    unsigned short port = ntohs(addr->sa.sa_family == AF_INET ? addr->in.sin_port : addr->in6.sin6_port);
    if (port == 0 || find_chan(port) >= 0)
        return -1;
    int copy = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0)
        return -1;
    int c = add_chan(port, copy, st->st_dev, st->st_ino);
    if (c < 0) {
        REAL(close)(copy);
        return -1;
    }
    chans[c].cloexec_done = 1;
    return c;
}

/*
 * Fallback identification: fd has no entry but behaves like a channel. If its inode is one of our
 * channels, or its name is a channel's, give it a listener record (copying the address and options
 * of another copy if this process has one). Returns the fdtab entry, or 0.
 */
static unsigned adopt(int fd)
{
    struct stat st;
    if (fd < 0 || fd >= FDTAB_SIZE || !own_memory())
        return 0;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    rcl_addr named;
    socklen_t namedlen = 0;
    unsigned e = 0;
    lk();
    int n = __atomic_load_n(&nchan, __ATOMIC_ACQUIRE);
    int c = -1;
    for (int i = 0; i < n; i++)
        if (chans[i].dev == st.st_dev && chans[i].ino == st.st_ino)
            c = i;
    if (c < 0 && (namedlen = channel_named(fd, &named)) > 0) {
        c = add_named_chan_locked(fd, &st, &named);
        if (c >= 0)
            dbg("channel known by its name, port", chans[c].port, fd);
    }
    if (c >= 0) {
        e = ent(fd);
        if (!is_listener(e)) {
            int li = alloc_listener();
            if (li >= 0) {
                struct listener *l = &lsn[li];
                int model = -1;
                for (int i = 0; i < MAX_LISTENERS; i++)
                    if (i != li && lsn[i].used && lsn[i].chan == c)
                        model = i;
                if (model >= 0) {
                    *l = lsn[model];
                } else if (namedlen > 0) {
                    l->family = named.sa.sa_family;
                    l->addr = named;
                    l->addrlen = namedlen;
                    l->listening = 1; /* someone else listened on it */
                } else {
                    l->family = AF_INET;
                    l->addr.in.sin_family = AF_INET;
                    l->addr.in.sin_port = htons(chans[c].port);
                    l->addr.in.sin_addr.s_addr = htonl(INADDR_ANY);
                    l->addrlen = sizeof(struct sockaddr_in);
                    l->listening = 1; /* someone else listened on it */
                }
                l->used = 1;
                l->chan = c;
                l->refs = 1;
                l->shut = 0;
                chans[c].nrefs++;
                e = (unsigned)li + 1;
                set_ent(fd, e);
                dbg("adopted channel copy fd port", fd, chans[c].port);
            } else {
                e = 0;
            }
        }
    }
    ulk();
    if (namedlen > 0 && is_listener(e))
        become_configured();
    return e;
}

/* ---- rendezvous (port discovery) ------------------------------------------------------------- */
/*
 * The socket to talk to the daemon on, or -1: the inherited fd while it is still the one we were
 * told of, else this image's connection to the rendezvous by name (made here, once). Caller holds
 * rdv_lock.
 */
static int rdv_socket(void)
{
    if (rdv_fd >= 0 && same_inode(rdv_fd, rdv_dev, rdv_ino))
        return rdv_fd;
    if (rdv_name_len == 0)
        return -1;
    if (rdv_conn >= 0 && same_inode(rdv_conn, rdv_conn_dev, rdv_conn_ino))
        return rdv_conn;
    rdv_conn = -1;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    int r;
    do {
        r = connect(s, (const struct sockaddr *)&rdv_name, rdv_name_len);
    } while (r < 0 && errno == EINTR);
    struct stat st;
    if (r < 0 || fstat(s, &st) < 0) {
        dbg("rendezvous by name: cannot connect; errno", errno, 0);
        REAL(close)(s);
        return -1;
    }
    rdv_conn_dev = st.st_dev;
    rdv_conn_ino = st.st_ino;
    rdv_conn = s;
    dbg("rendezvous by name: connected fd", s, 0);
    return s;
}

#define RDV_REAL (-1)
#define RDV_REFUSED (-2)
#define RDV_ADOPT (-3)

/*
 * Ask the daemon about a bind. Returns a channel index, RDV_REAL for "do the real bind",
 * RDV_REFUSED (*err set), or RDV_ADOPT (*adopted: the listening socket to take).
 */
static int rendezvous(const rcl_addr *norm, socklen_t normlen, unsigned short port, int flags,
                      int *err, int *adopted)
{
    int result = RDV_REAL;
    int sv[2] = {-1, -1};
    pthread_mutex_lock(&rdv_lock);
    int c = find_chan(port); /* another thread may have asked for the same port meanwhile */
    if (c >= 0) {
        result = c;
        goto out;
    }
    int rdv = rdv_socket();
    if (rdv < 0)
        goto out;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        goto out;

    unsigned char m[BIND_MSG_LEN] = {0};
    m[0] = KIND_BIND;
    m[1] = (unsigned char)flags;
    m[2] = (unsigned char)normlen;
    memcpy(m + 4, norm, normlen);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * CMSG_FDS)];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = m, .iov_len = sizeof m};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int));
    struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
    ch->cmsg_level = SOL_SOCKET;
    ch->cmsg_type = SCM_RIGHTS;
    ch->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(ch), &sv[0], sizeof(int));
    ssize_t n;
    for (int attempt = 0;; attempt++) {
        do {
            n = sendmsg(rdv, &mh, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        /* A connection by name outlives the daemon image that accepted it (`rcluster update`):
         * connect again, once. */
        if (n >= 0 || attempt > 0 || rdv != rdv_conn)
            break;
        REAL(close)(rdv_conn);
        rdv_conn = -1;
        rdv = rdv_socket();
        if (rdv < 0)
            break;
    }
    REAL(close)(sv[0]);
    sv[0] = -1;
    if (n != (ssize_t)sizeof m)
        goto out;

    unsigned char r[REPLY_MSG_LEN];
    memset(&cm, 0, sizeof cm);
    iov.iov_base = r;
    iov.iov_len = sizeof r;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof cm.buf;
    do {
        n = recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    int got = -1;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); n >= 0 && h; h = CMSG_NXTHDR(&mh, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int f;
            memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof f);
            if (got < 0)
                got = f;
            else
                REAL(close)(f);
        }
    }
    if (n == REPLY_MSG_LEN && !(mh.msg_flags & MSG_TRUNC) && r[0] == KIND_BOUND && got >= 0) {
        dev_t dev;
        ino_t ino;
        if (is_seqpacket(got, &dev, &ino)) {
            lk();
            result = add_chan(port, got, dev, ino);
            if (result >= 0)
                chans[result].cloexec_done = 1; /* received with MSG_CMSG_CLOEXEC */
            ulk();
            if (result >= 0)
                got = -1;
            dbg("rendezvous BOUND port", port, result);
        }
    } else if (n == REPLY_MSG_LEN && !(mh.msg_flags & MSG_TRUNC) && r[0] == KIND_ADOPT && got >= 0) {
        int type;
        if (sock_int_opt(got, SOL_SOCKET, SO_TYPE, &type) == 0 && type == SOCK_STREAM) {
            *adopted = got;
            got = -1;
            result = RDV_ADOPT;
            dbg("rendezvous ADOPT port fd", port, *adopted);
        }
    } else if (n == REPLY_MSG_LEN && !(mh.msg_flags & MSG_TRUNC) && r[0] == KIND_REFUSE) {
        uint32_t e;
        memcpy(&e, r + 4, sizeof e);
        *err = (e > 0 && e < 4096) ? (int)e : EADDRINUSE;
        result = RDV_REFUSED;
        dbg("rendezvous REFUSE port errno", port, *err);
    } else {
        dbg("rendezvous PASS (or no answer) port", port, (long)n);
    }
    if (got >= 0)
        REAL(close)(got);
out:
    if (sv[0] >= 0)
        REAL(close)(sv[0]);
    if (sv[1] >= 0)
        REAL(close)(sv[1]);
    pthread_mutex_unlock(&rdv_lock);
    return result;
}

/* ---- bind ------------------------------------------------------------------------------------ */
/* Carry an integer option the program set on its own socket over to the adopted one. */
static void carry_opt(int from, int to, int level, int name)
{
    int v;
    if (sock_int_opt(from, level, name, &v) == 0 && v && REAL(setsockopt))
        REAL(setsockopt)(to, level, name, &v, sizeof v);
}

/* ADOPT: the program's fd becomes the daemon's listening socket `got` (consumed). 0, or -1 with errno. */
static int adopt_held(int fd, int got)
{
    int fdfl = REAL(fcntl)(fd, F_GETFD);
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fdfl < 0 || fl < 0) {
        int e = errno;
        REAL(close)(got);
        errno = e;
        return -1;
    }
    /* Options set before bind live on the socket being replaced; accepted sockets inherit these. */
    carry_opt(fd, got, IPPROTO_TCP, TCP_NODELAY);
    carry_opt(fd, got, SOL_SOCKET, SO_KEEPALIVE);
    carry_opt(fd, got, IPPROTO_TCP, TCP_USER_TIMEOUT);
    carry_opt(fd, got, IPPROTO_TCP, TCP_DEFER_ACCEPT);
    if (REAL(dup3)(got, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        int e = errno;
        REAL(close)(got);
        errno = e;
        return -1;
    }
    REAL(close)(got);
    int cur = REAL(fcntl)(fd, F_GETFL);
    if (cur >= 0 && (cur & O_NONBLOCK) != (fl & O_NONBLOCK))
        REAL(fcntl)(fd, F_SETFL, (cur & ~O_NONBLOCK) | (fl & O_NONBLOCK));
    claim_fd(fd, FD_HELD);
    dbg("bind adopted the daemon's socket on fd", fd, 0);
    return 0;
}

/* The program listens on an adopted socket: READY on the rendezvous, once per process. */
static void held_listening(void)
{
    pid_t me = getpid();
    if (__atomic_load_n(&held_ready_pid, __ATOMIC_RELAXED) == me || !own_memory())
        return;
    int saved = errno;
    pthread_mutex_lock(&rdv_lock);
    int rdv = rdv_socket();
    if (rdv >= 0 && held_ready_pid != me) {
        send_state(rdv, KIND_READY);
        __atomic_store_n(&held_ready_pid, me, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&rdv_lock);
    errno = saved;
}

/* Put channel c on the program's fd. Returns 0, or -1 with errno, or 1 for "do the real bind". */
static int redirect(int fd, int c, const rcl_addr *norm, socklen_t normlen, int family)
{
    int ret = 1;
    lk();
    struct channel *ch = &chans[c];
    if (!same_inode(ch->fd, ch->dev, ch->ino)) {
        dbg("channel fd no longer valid, real bind for port", ch->port, ch->fd);
        goto out;
    }
    int fdfl = REAL(fcntl)(fd, F_GETFD);
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fdfl < 0 || fl < 0)
        goto out;
    int li = alloc_listener();
    if (li < 0)
        goto out;
    struct listener *l = &lsn[li];
    /* Options set before bind live on the TCP socket that dup3 is about to replace: keep them. */
    int v;
    if (sock_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, &v) == 0 && v)
        opt_record(l, IPPROTO_TCP, TCP_NODELAY, v);
    if (sock_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, &v) == 0 && v)
        opt_record(l, SOL_SOCKET, SO_KEEPALIVE, v);
    if (sock_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v) == 0 && v)
        opt_record(l, IPPROTO_TCP, TCP_USER_TIMEOUT, v);
    if (sock_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, &v) == 0 && v)
        opt_record(l, SOL_SOCKET, SO_REUSEADDR, v);
    if (sock_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, &v) == 0 && v)
        opt_record(l, SOL_SOCKET, SO_REUSEPORT, v);
    if (family == AF_INET6 && sock_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v) == 0)
        opt_record(l, IPPROTO_IPV6, IPV6_V6ONLY, v);
    if (REAL(dup3)(ch->fd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        l->used = 0;
        ret = -1;
        goto out;
    }
    int cur = REAL(fcntl)(fd, F_GETFL);
    if (cur >= 0 && (cur & O_NONBLOCK) != (fl & O_NONBLOCK))
        REAL(fcntl)(fd, F_SETFL, (cur & ~O_NONBLOCK) | (fl & O_NONBLOCK));
    if (!ch->cloexec_done) {
        /* forked workers share the program's fd; exec'd children must not inherit the original */
        int f = REAL(fcntl)(ch->fd, F_GETFD);
        if (f >= 0)
            REAL(fcntl)(ch->fd, F_SETFD, f | FD_CLOEXEC);
        ch->cloexec_done = 1;
    }
    l->chan = c;
    l->refs = 1;
    l->family = family;
    l->addr = *norm;
    l->addrlen = normlen;
    ch->nrefs++;
    set_ent(fd, (unsigned)li + 1);
    dbg("bind redirected fd port", fd, ch->port);
    ret = 0;
out:
    ulk();
    return ret;
}

EXPORT int bind(int fd, rcl_csa_arg addr_arg, socklen_t len)
{
    const struct sockaddr *sa = SA_PTR(addr_arg);
    ensure();
    NEED(bind, -1);
    if (LIKELY(!configured) || !sa || fd < 0 || fd >= FDTAB_SIZE || len < sizeof(sa_family_t))
        return REAL(bind)(fd, sa, len);
    int saved = errno;
    sa_family_t fam;
    memcpy(&fam, sa, sizeof fam);
    rcl_addr norm;
    socklen_t normlen;
    memset(&norm, 0, sizeof norm);
    if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
        memcpy(&norm.in, sa, sizeof(struct sockaddr_in));
        memset(norm.in.sin_zero, 0, sizeof norm.in.sin_zero);
        normlen = sizeof(struct sockaddr_in);
    } else if (fam == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
        memcpy(&norm.in6, sa, len < sizeof(struct sockaddr_in6) ? len : sizeof(struct sockaddr_in6));
        norm.in6.sin6_flowinfo = 0;
        normlen = sizeof(struct sockaddr_in6);
    } else {
        return REAL(bind)(fd, sa, len);
    }
    unsigned short port = ntohs(fam == AF_INET ? norm.in.sin_port : norm.in6.sin6_port);
    if (port == 0)
        return REAL(bind)(fd, sa, len);
    int type, dom, proto;
    if (sock_int_opt(fd, SOL_SOCKET, SO_TYPE, &type) < 0 || type != SOCK_STREAM)
        goto real;
    if (sock_int_opt(fd, SOL_SOCKET, SO_DOMAIN, &dom) == 0 && dom != fam)
        goto real;
    if (sock_int_opt(fd, SOL_SOCKET, SO_PROTOCOL, &proto) == 0 && proto == IPPROTO_SCTP)
        goto real;
    /* A channel copy fails the SO_TYPE check above (the kernel then says EINVAL, as for a second
     * bind); an entry on a real TCP socket is stale: the fd was closed behind our back. */
    if (UNLIKELY(ent(fd)))
        claim_fd(fd, 0);
    int c = find_chan(port);
    if (c < 0) {
        if (is_private(port) || !rdv_known())
            goto real;
        int err = 0, adopted = -1, flags = 0, v6only = 0;
        if (fam == AF_INET6 && sock_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only) == 0 && v6only)
            flags |= BIND_V6ONLY;
        c = rendezvous(&norm, normlen, port, flags, &err, &adopted);
        if (c == RDV_REFUSED) {
            errno = err;
            return -1;
        }
        if (c == RDV_ADOPT) {
            if (adopt_held(fd, adopted) < 0)
                return -1;
            errno = saved;
            return 0;
        }
        if (c < 0)
            goto real;
    }
    int r = redirect(fd, c, &norm, normlen, fam);
    if (r == 0) {
        errno = saved;
        return 0;
    }
    if (r < 0)
        return -1;
real:
    errno = saved;
    return REAL(bind)(fd, sa, len);
}

/* ---- listen ---------------------------------------------------------------------------------- */
static int listen_managed(int fd, unsigned e)
{
    int saved = errno;
    lk();
    e = ent(fd);
    if (is_listener(e)) {
        struct listener *l = &lsn[e - 1];
        struct channel *c = &chans[l->chan];
        l->listening = 1;
        l->shut = 0;
        pid_t me = getpid();
        if (c->ready_pid != me && own_memory()) {
            send_state(fd, KIND_READY);
            c->ready_pid = me;
        }
    }
    ulk();
    errno = saved;
    return 0;
}

/*
 * Socket activation (sd_listen_fds(3)): a program that takes its sockets from LISTEN_FDS
 * (gunicorn with no --bind, Python socket.socket(fileno=3), Node listen({fd: 3})) never binds
 * or listens: the sockets it inherits are listening already. The first time this process (the
 * one LISTEN_PID names) touches one of fds 3..3+LISTEN_FDS-1 that is a channel — a dup, a
 * getsockname/getsockopt, an accept — it counts as listening and READY goes out. A program
 * that binds its own socket never touches those fds (its socket gets the channel by dup3).
 * In shared and reuseport mode those fds are the kernel's own listening sockets: the first touch
 * of one that listens sends READY on the activation fd instead (RCLUSTER_ACTIVATION_FD).
 */
static int activation_lo = -1, activation_hi = -1;
/* The pid that has announced each fd of the range (READY is once per process). */
static pid_t activation_done[64];

static void activation_touch(int fd)
{
    if (LIKELY(fd < activation_lo || fd >= activation_hi) || !own_memory())
        return;
    pid_t me = getpid();
    if (__atomic_load_n(&activation_done[fd - activation_lo], __ATOMIC_RELAXED) == me)
        return;
    unsigned e = ent(fd);
    if (!is_listener(e))
        e = adopt(fd);
    if (is_listener(e)) {
        listen_managed(fd, e);
        __atomic_store_n(&activation_done[fd - activation_lo], me, __ATOMIC_RELAXED);
        return;
    }
    int accepting = 0;
    if (act_fd >= 0 && sock_int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting) == 0 && accepting &&
        same_inode(act_fd, act_dev, act_ino)) {
        int saved = errno;
        send_state(act_fd, KIND_READY);
        errno = saved;
        __atomic_store_n(&activation_done[fd - activation_lo], me, __ATOMIC_RELAXED);
    }
}

EXPORT int listen(int fd, int backlog)
{
    ensure();
    NEED(listen, -1);
    activation_touch(fd);
    unsigned e = ent(fd);
    if (is_listener(e))
        return listen_managed(fd, e);
    int r = REAL(listen)(fd, backlog);
    if (UNLIKELY(e == FD_HELD) && r == 0)
        held_listening();
    if (UNLIKELY(r < 0 && errno == EINVAL)) {
        e = adopt(fd);
        if (is_listener(e))
            return listen_managed(fd, e);
        errno = EINVAL;
    }
    return r;
}

/* ---- accept ---------------------------------------------------------------------------------- */
static int daemon_gone(int fd)
{
    int first = !__atomic_exchange_n(&term_raised, 1, __ATOMIC_ACQ_REL);
    if (first) {
        dbg("channel EOF (daemon gone), raising SIGTERM; fd", fd, 0);
        kill(getpid(), SIGTERM);
    }
    int fl = REAL(fcntl) ? REAL(fcntl)(fd, F_GETFL) : -1;
    if (fl >= 0 && (fl & O_NONBLOCK)) {
        errno = EAGAIN;
        return -1;
    }
    /* Blocking accept: the first call returns EINTR (as if interrupted by our SIGTERM) so that the
     * program can look at its flags; later ones block like an idle listener until a signal comes. */
    if (!first)
        poll(NULL, 0, -1);
    errno = EINTR;
    return -1;
}

static int accept_managed(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
        errno = EINVAL;
        return -1;
    }
    if (addr && !alen) {
        errno = EFAULT;
        return -1;
    }
    if (addr && (int)*alen < 0) {
        errno = EINVAL;
        return -1;
    }
    /* snapshot the listener under the lock; never block while holding it */
    int family = AF_INET, ok = 0, nre = 0;
    struct opt re[MAX_OPTS];
    lk();
    unsigned e = ent(fd);
    if (is_listener(e)) {
        struct listener *l = &lsn[e - 1];
        ok = l->listening && !l->shut;
        family = l->family;
        for (int i = 0; i < l->nopts; i++)
            if (opt_reapply(l->opts[i].level, l->opts[i].name))
                re[nre++] = l->opts[i];
    }
    ulk();
    if (!ok) {
        errno = EINVAL; /* not listening (or shut down), as the kernel says */
        return -1;
    }

    unsigned char m[CONN_MSG_LEN];
    int conn = -1;
    for (;;) {
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * CMSG_FDS)];
        } cm;
        struct iovec iov = {.iov_base = m, .iov_len = sizeof m};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = cm.buf;
        mh.msg_controllen = sizeof cm.buf;
        ssize_t n = recvmsg(fd, &mh, (flags & SOCK_CLOEXEC) ? MSG_CMSG_CLOEXEC : 0);
        if (n < 0)
            return -1; /* EAGAIN on an empty non-blocking channel, EINTR, ... as accept would */
        if (n == 0 && mh.msg_controllen == 0)
            return daemon_gone(fd);
        conn = -1;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
            if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
                continue;
            size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int f;
                memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof f);
                if (conn < 0)
                    conn = f;
                else
                    REAL(close)(f);
            }
        }
        if (conn < 0) {
            if (mh.msg_flags & MSG_CTRUNC) {
                /* The kernel could not install the fd (EMFILE): that connection is lost. Say so
                 * rather than draining the queue. */
                errno = EMFILE;
                return -1;
            }
            continue; /* no fd: skip (never sent by the daemon) */
        }
        if (n != CONN_MSG_LEN || (mh.msg_flags & MSG_TRUNC) || m[0] != KIND_CONN) {
            REAL(close)(conn);
            continue;
        }
        break;
    }

    int have_nb = (m[1] & FDFLAG_NONBLOCK) != 0;
    int want_nb = (flags & SOCK_NONBLOCK) != 0;
    if (have_nb != want_nb)
        REAL(fcntl)(conn, F_SETFL, want_nb ? O_NONBLOCK : 0);
    for (int i = 0; i < nre; i++)
        REAL(setsockopt)(conn, re[i].level, re[i].name, &re[i].value, sizeof(int));

    socklen_t plen = m[2] <= MAX_SA_LEN ? m[2] : MAX_SA_LEN;
    rcl_addr peer;
    socklen_t outlen = translate(m + 4, plen, family, &peer);
    sa_family_t pf = AF_UNSPEC;
    if (plen >= sizeof pf)
        memcpy(&pf, m + 4, sizeof pf);
    unsigned marker = 0;
    if (family == AF_INET6 && pf == AF_INET)
        marker = FD_MAPPED_V6;
    else if (family == AF_INET && pf == AF_INET6 && peer.sa.sa_family == AF_INET)
        marker = FD_UNMAPPED_V4;
    if (UNLIKELY(marker || ent(conn)))
        claim_fd(conn, marker);
    if (addr)
        put_addr(addr, alen, &peer, outlen);
    return conn;
}

static int accept_common(int fd, struct sockaddr *addr, socklen_t *alen, int flags, int plain)
{
    unsigned e = ent(fd);
    if (is_listener(e))
        return accept_managed(fd, addr, alen, flags);
    socklen_t orig = alen ? *alen : 0;
    int r = plain ? REAL(accept)(fd, addr, alen) : REAL(accept4)(fd, addr, alen, flags);
    if (r >= 0) {
        if (UNLIKELY(ent(r)))
            claim_fd(r, 0); /* stale entry of an fd closed behind our back */
        return r;
    }
    if (UNLIKELY(errno == EINVAL)) {
        e = adopt(fd);
        if (is_listener(e)) {
            if (alen)
                *alen = orig;
            return accept_managed(fd, addr, alen, flags);
        }
        errno = EINVAL;
    }
    return r;
}

EXPORT int accept(int fd, rcl_sa_arg addr, socklen_t *alen)
{
    ensure();
    NEED(accept, -1);
    activation_touch(fd);
    return accept_common(fd, SA_PTR(addr), alen, 0, 1);
}

EXPORT int accept4(int fd, rcl_sa_arg addr, socklen_t *alen, int flags)
{
    ensure();
    NEED(accept4, -1);
    activation_touch(fd);
    return accept_common(fd, SA_PTR(addr), alen, flags, 0);
}

/* ---- getsockname / getpeername ---------------------------------------------------------------- */
static int fake_sockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (!addr || !len) {
        errno = EFAULT;
        return -1;
    }
    if ((int)*len < 0) {
        errno = EINVAL;
        return -1;
    }
    rcl_addr a;
    socklen_t alen = 0;
    lk();
    unsigned e = ent(fd);
    if (is_listener(e)) {
        a = lsn[e - 1].addr;
        alen = lsn[e - 1].addrlen;
    }
    ulk();
    if (!alen) {
        errno = EBADF;
        return -1;
    }
    put_addr(addr, len, &a, alen);
    return 0;
}

static int translated_name(int (*f)(int, struct sockaddr *, socklen_t *), int fd, unsigned e,
                           struct sockaddr *addr, socklen_t *len)
{
    if (!addr || !len)
        return f(fd, addr, len);
    rcl_addr raw, out;
    socklen_t rl = sizeof raw;
    if (f(fd, &raw.sa, &rl) < 0)
        return -1;
    socklen_t ol = translate(&raw, rl, e == FD_MAPPED_V6 ? AF_INET6 : AF_INET, &out);
    put_addr(addr, len, &out, ol);
    return 0;
}

EXPORT int getsockname(int fd, rcl_sa_arg addr_arg, socklen_t *len)
{
    struct sockaddr *addr = SA_PTR(addr_arg);
    ensure();
    activation_touch(fd);
    NEED(getsockname, -1);
    unsigned e = ent(fd);
    if (is_listener(e))
        return fake_sockname(fd, addr, len);
    if (is_dealt(e))
        return translated_name(REAL(getsockname), fd, e, addr, len);
    socklen_t orig = len ? *len : 0;
    int r = REAL(getsockname)(fd, addr, len);
    if (UNLIKELY(r == 0 && addr && orig >= sizeof(sa_family_t) && addr->sa_family == AF_UNIX)) {
        e = adopt(fd);
        if (is_listener(e)) {
            *len = orig; /* the real call overwrote the caller's buffer size */
            return fake_sockname(fd, addr, len);
        }
    }
    return r;
}

EXPORT int getpeername(int fd, rcl_sa_arg addr_arg, socklen_t *len)
{
    struct sockaddr *addr = SA_PTR(addr_arg);
    ensure();
    NEED(getpeername, -1);
    unsigned e = ent(fd);
    if (is_listener(e)) {
        errno = ENOTCONN;
        return -1;
    }
    if (is_dealt(e))
        return translated_name(REAL(getpeername), fd, e, addr, len);
    return REAL(getpeername)(fd, addr, len);
}

/* ---- getsockopt / setsockopt ------------------------------------------------------------------ */
static int put_int_opt(void *optval, socklen_t *optlen, int v)
{
    if (!optval || !optlen) {
        errno = EFAULT;
        return -1;
    }
    if ((int)*optlen < 0) {
        errno = EINVAL;
        return -1;
    }
    socklen_t n = *optlen < sizeof(int) ? *optlen : sizeof(int);
    memcpy(optval, &v, n);
    *optlen = n;
    return 0;
}

static int getsockopt_managed(int fd, int level, int name, void *optval, socklen_t *optlen)
{
    int family = AF_INET, listening = 0, have = 0, v = 0;
    lk();
    unsigned e = ent(fd);
    if (is_listener(e)) {
        struct listener *l = &lsn[e - 1];
        family = l->family;
        listening = l->listening && !l->shut;
        have = opt_lookup(l, level, name, &v);
    }
    ulk();
    if (level == SOL_SOCKET) {
        if (name == SO_TYPE)
            return put_int_opt(optval, optlen, SOCK_STREAM);
        if (name == SO_DOMAIN)
            return put_int_opt(optval, optlen, family);
        if (name == SO_PROTOCOL)
            return put_int_opt(optval, optlen, IPPROTO_TCP);
        if (name == SO_ACCEPTCONN)
            return put_int_opt(optval, optlen, listening);
        if (have)
            return put_int_opt(optval, optlen, v);
        if (name == SO_KEEPALIVE || name == SO_REUSEADDR || name == SO_REUSEPORT)
            return put_int_opt(optval, optlen, 0);
        return REAL(getsockopt)(fd, level, name, optval, optlen);
    }
    if (level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6)
        return put_int_opt(optval, optlen, have ? v : opt_default(level, name));
    return REAL(getsockopt)(fd, level, name, optval, optlen);
}

EXPORT int getsockopt(int fd, int level, int name, void *optval, socklen_t *optlen)
{
    ensure();
    NEED(getsockopt, -1);
    activation_touch(fd);
    unsigned e = ent(fd);
    if (is_listener(e))
        return getsockopt_managed(fd, level, name, optval, optlen);
    int r = REAL(getsockopt)(fd, level, name, optval, optlen);
    if (UNLIKELY(r == 0 && level == SOL_SOCKET && (name == SO_TYPE || name == SO_DOMAIN) &&
                 optval && optlen && *optlen == sizeof(int))) {
        int v;
        memcpy(&v, optval, sizeof v);
        if ((name == SO_TYPE && v == SOCK_SEQPACKET) || (name == SO_DOMAIN && v == AF_UNIX)) {
            *optlen = sizeof(int);
            e = adopt(fd);
            if (is_listener(e))
                return getsockopt_managed(fd, level, name, optval, optlen);
        }
    }
    return r;
}

EXPORT int setsockopt(int fd, int level, int name, const void *optval, socklen_t optlen)
{
    ensure();
    NEED(setsockopt, -1);
    unsigned e = ent(fd);
    if (LIKELY(!is_listener(e)))
        return REAL(setsockopt)(fd, level, name, optval, optlen);
    if (level == SOL_SOCKET && is_timeout_opt(name))
        return REAL(setsockopt)(fd, level, name, optval, optlen); /* governs the blocking recvmsg */
    if (optlen == sizeof(int) && optval &&
        (level == SOL_SOCKET || level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6)) {
        int v;
        memcpy(&v, optval, sizeof v);
        lk();
        e = ent(fd);
        if (is_listener(e))
            opt_record(&lsn[e - 1], level, name, v);
        ulk();
    }
    return 0; /* accepted and ignored: TCP_DEFER_ACCEPT, IPV6_V6ONLY, SO_REUSEPORT, ... */
}

/* ---- shutdown -------------------------------------------------------------------------------- */
EXPORT int shutdown(int fd, int how)
{
    ensure();
    NEED(shutdown, -1);
    unsigned e = ent(fd);
    if (LIKELY(!is_listener(e)))
        return REAL(shutdown)(fd, how);
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
        errno = EINVAL;
        return -1;
    }
    if (!own_memory())
        return 0;
    int saved = errno;
    lk();
    e = ent(fd);
    if (is_listener(e)) {
        struct listener *l = &lsn[e - 1];
        struct channel *c = &chans[l->chan];
        l->shut = 1;
        if (c->ready_pid != 0 && c->ready_pid == getpid()) {
            send_state(fd, KIND_UNREADY);
            c->ready_pid = 0;
        }
    }
    ulk();
    errno = saved;
    return 0;
}

/* ---- close family ------------------------------------------------------------------------------ */
EXPORT int close(int fd)
{
    ensure();
    NEED(close, -1);
    unsigned e = ent(fd);
    if (UNLIKELY(e))
        forget(fd, e);
    return REAL(close)(fd);
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    ensure();
    forget_range(first, last, flags);
    if (REAL(close_range))
        return REAL(close_range)(first, last, flags);
#ifdef SYS_close_range
    if (REAL(syscall))
        return (int)REAL(syscall)(SYS_close_range, first, last, flags);
#endif
    errno = ENOSYS;
    return -1;
}

EXPORT long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a0 = va_arg(ap, long);
    long a1 = va_arg(ap, long);
    long a2 = va_arg(ap, long);
    long a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long);
    long a5 = va_arg(ap, long);
    va_end(ap);
    ensure();
    NEED(syscall, -1);
    if (number == SYS_close) {
        unsigned e = ent((int)a0);
        if (UNLIKELY(e))
            forget((int)a0, e);
    }
#ifdef SYS_close_range
    else if (number == SYS_close_range) {
        forget_range((unsigned int)a0, (unsigned int)a1, (int)a2);
    }
#endif
    return REAL(syscall)(number, a0, a1, a2, a3, a4, a5);
}

/* ---- dup family ------------------------------------------------------------------------------ */
EXPORT int dup(int fd)
{
    ensure();
    NEED(dup, -1);
    activation_touch(fd);
    int r = REAL(dup)(fd);
    if (r >= 0)
        copy_ent(fd, r);
    return r;
}

static void before_overwrite(int oldfd, int newfd)
{
    unsigned e = ent(newfd);
    if (UNLIKELY(e) && oldfd != newfd && REAL(fcntl) && REAL(fcntl)(oldfd, F_GETFD) >= 0)
        forget(newfd, e);
}

EXPORT int dup2(int oldfd, int newfd)
{
    ensure();
    NEED(dup2, -1);
    activation_touch(oldfd);
    before_overwrite(oldfd, newfd);
    int r = REAL(dup2)(oldfd, newfd);
    if (r >= 0 && oldfd != newfd)
        copy_ent(oldfd, r);
    return r;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    ensure();
    NEED(dup3, -1);
    activation_touch(oldfd);
    if (oldfd != newfd)
        before_overwrite(oldfd, newfd);
    int r = REAL(dup3)(oldfd, newfd, flags);
    if (r >= 0)
        copy_ent(oldfd, r);
    return r;
}

static int fcntl_common(int (*f)(int, int, ...), int fd, int cmd, void *arg)
{
    if (UNLIKELY(!f)) {
        errno = ENOSYS;
        return -1;
    }
    int r = f(fd, cmd, arg);
    if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && r >= 0)
        copy_ent(fd, r);
    return r;
}

/* The third argument is an int or a pointer depending on cmd; glibc reads it as a pointer too. */
EXPORT int fcntl(int fd, int cmd, ...)
{
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        activation_touch(fd);
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    ensure();
    return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        activation_touch(fd);
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    ensure();
    return fcntl_common(REAL(fcntl64), fd, cmd, arg);
}

/* ---- start-up -------------------------------------------------------------------------------- */
static void atfork_prepare(void) { pthread_mutex_lock(&table_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&table_lock); }
static void atfork_child(void)
{
    pthread_mutex_unlock(&table_lock);
    pthread_mutex_init(&rdv_lock, NULL); /* a thread of the parent may have held it */
    __atomic_store_n(&state_pid, getpid(), __ATOMIC_RELAXED);
    __atomic_store_n(&term_raised, 0, __ATOMIC_RELAXED);
}

static void parse_channels(const char *s)
{
    /* PORT=FD[,PORT=FD...]; a malformed entry is skipped up to the next comma */
    while (s && *s) {
        unsigned long port, fd;
        const char *p = s;
        if (parse_uint(&p, 65535, &port) == 0 && *p == '=' && (p++, parse_uint(&p, 0x7fffffff, &fd) == 0) &&
            (*p == ',' || *p == '\0') && port > 0) {
            dev_t dev;
            ino_t ino;
            if (is_seqpacket((int)fd, &dev, &ino)) {
                add_chan((unsigned short)port, (int)fd, dev, ino);
                dbg("channel port fd", (long)port, (long)fd);
            } else {
                dbg("channel fd is not a unix seqpacket socket; port fd", (long)port, (long)fd);
            }
        }
        while (*p && *p != ',')
            p++;
        s = *p == ',' ? p + 1 : p;
    }
}

static void parse_private(const char *s)
{
    while (s && *s) {
        unsigned long port;
        const char *p = s;
        if (parse_uint(&p, 65535, &port) == 0 && (*p == ',' || *p == '\0') && nprivate < MAX_PRIVATE)
            private_ports[nprivate++] = (unsigned short)port;
        while (*p && *p != ',')
            p++;
        s = *p == ',' ? p + 1 : p;
    }
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > (rlim_t)FDTAB_SIZE)
        want = (rlim_t)FDTAB_SIZE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

__attribute__((constructor)) static void rcluster_preload_init(void)
{
    int saved = errno;
    ensure();
    __atomic_store_n(&state_pid, getpid(), __ATOMIC_RELAXED);
    const char *d = getenv("RCLUSTER_PRELOAD_DEBUG");
    debug_on = d && *d && strcmp(d, "0") != 0;
    parse_channels(getenv("RCLUSTER_CHANNELS"));
    parse_private(getenv("RCLUSTER_PRIVATE_PORTS"));
    const char *r = getenv("RCLUSTER_RENDEZVOUS_FD");
    if (r && *r) {
        unsigned long fd;
        const char *p = r;
        dev_t dev;
        ino_t ino;
        if (parse_uint(&p, 0x7fffffff, &fd) == 0 && *p == '\0' && is_seqpacket((int)fd, &dev, &ino)) {
            rdv_dev = dev;
            rdv_ino = ino;
            rdv_fd = (int)fd;
            dbg("rendezvous fd", (long)fd, 0);
        }
    }
    const char *name = getenv("RCLUSTER_RENDEZVOUS_NAME");
    size_t name_len = name ? strlen(name) : 0;
    if (name_len > 0 && name_len < sizeof rdv_name.sun_path) {
        rdv_name.sun_family = AF_UNIX;
        rdv_name.sun_path[0] = '\0'; /* abstract */
        memcpy(rdv_name.sun_path + 1, name, name_len);
        rdv_name_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + name_len);
    }
    /* LISTEN_PID names the process meant to take the LISTEN_FDS sockets (sd_listen_fds(3)).
     * rcluster's trampoline sets it for the program it execs, but wrappers that fork instead of
     * exec (`npm start`, a shell running its last command as a child) leave it naming the
     * wrapper. Every rcluster-managed process this library enters claims it for itself, so the
     * program at the end of the chain sees its own pid; the wrappers never read the fds. */
    const char *fix = getenv("RCLUSTER_LISTEN_PID_FIX");
    if (fix && strcmp(fix, "1") == 0 && getenv("LISTEN_FDS")) {
        char pid_text[24];
        snprintf(pid_text, sizeof pid_text, "%ld", (long)getpid());
        setenv("LISTEN_PID", pid_text, 1);
    }
    const char *a = getenv("RCLUSTER_ACTIVATION_FD");
    if (a && *a) {
        unsigned long fd;
        const char *p = a;
        struct stat st;
        if (parse_uint(&p, 0x7fffffff, &fd) == 0 && *p == '\0' && fstat((int)fd, &st) == 0 &&
            S_ISSOCK(st.st_mode)) {
            act_dev = st.st_dev;
            act_ino = st.st_ino;
            act_fd = (int)fd;
            dbg("activation fd", (long)fd, 0);
        }
    }
    const char *listen_fds = getenv("LISTEN_FDS"), *listen_pid = getenv("LISTEN_PID");
    if (listen_fds && listen_pid && atol(listen_pid) == (long)getpid()) {
        long n = atol(listen_fds);
        if (n > 0 && n <= 64) {
            activation_lo = 3;
            activation_hi = 3 + (int)n;
        }
    }
    if (__atomic_load_n(&nchan, __ATOMIC_RELAXED) > 0 || rdv_known())
        become_configured();
    errno = saved;
}
