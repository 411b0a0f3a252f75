/*
 * harness.c -- the preload library's own decoding under the fuzzer (target preload_c, built only
 * with clang: fuzz/build.rs, docs/fuzzing.md).
 *
 * The library (preload/rcluster_preload.c) is compiled into the fuzz target itself, its exported
 * libc hooks renamed (below) so that they do not replace the fuzzer's own calls. One input is one
 * of:
 *   op 0  RCLUSTER_CHANNELS / RCLUSTER_PRIVATE_PORTS text, parsed as at the library's start
 *   op 1  a message on an instance's channel, with 0-3 fds, taken by the program's accept4 (the
 *         program's listener is IPv4 or IPv6), then getsockname/getpeername with buffers of the
 *         input's size: the CONN decoding, the address translation, put_addr's truncation
 *   op 2  an abstract socket name, read back as a channel's name (channel_named), in a network
 *         namespace of the fuzzer's own so that no other process's names are touched
 * Every buffer the library writes into is allocated at exactly the size the call is given, so
 * AddressSanitizer sees any write past it; the checks below abort on a broken promise.
 */
#define bind rcl_hook_bind
#define listen rcl_hook_listen
#define accept rcl_hook_accept
#define accept4 rcl_hook_accept4
#define getsockname rcl_hook_getsockname
#define getpeername rcl_hook_getpeername
#define getsockopt rcl_hook_getsockopt
#define setsockopt rcl_hook_setsockopt
#define shutdown rcl_hook_shutdown
#define close rcl_hook_close
#define close_range rcl_hook_close_range
#define syscall rcl_hook_syscall
#define dup rcl_hook_dup
#define dup2 rcl_hook_dup2
#define dup3 rcl_hook_dup3
#define fcntl rcl_hook_fcntl
#define fcntl64 rcl_hook_fcntl64
#include "../../preload/rcluster_preload.c"

#include <sched.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "preload harness: %s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int set_up;
static int daemon_end[2] = {-1, -1}; /* our ends of the channels of ports 8000 (v4) and 8001 (v6) */
static int program_fd[2] = {-1, -1}; /* the program's listeners, redirected to the channels */
static int spare = -1;               /* an fd to pass along with a message */
static int base_nchan;
static int own_netns;

static void drain(int fd)
{
    unsigned char buf[64];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
}

static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    REAL(close)(fd);
    return fd;
}

static void setup(void)
{
    ensure();
    own_netns = unshare(CLONE_NEWNET) == 0;
    for (int i = 0; i < 2; i++) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        struct stat st;
        CHECK(fstat(sv[1], &st) == 0);
        CHECK(add_chan((unsigned short)(8000 + i), sv[1], st.st_dev, st.st_ino) == i);
        daemon_end[i] = sv[0];
    }
    become_configured();
    /* The program: non-blocking listeners (so that accept never waits), v4 and v6. */
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(8000)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(8001)};
    program_fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    program_fd[1] = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(program_fd[0] >= 0 && program_fd[1] >= 0);
    CHECK(rcl_hook_bind(program_fd[0], (struct sockaddr *)&v4, sizeof v4) == 0);
    CHECK(rcl_hook_bind(program_fd[1], (struct sockaddr *)&v6, sizeof v6) == 0);
    CHECK(rcl_hook_listen(program_fd[0], 16) == 0 && rcl_hook_listen(program_fd[1], 16) == 0);
    drain(daemon_end[0]); /* READY */
    drain(daemon_end[1]);
    spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(spare >= 0);
    base_nchan = nchan;
    set_up = 1;
}

/* op 0: the environment's lists, then the tables put back as they were. */
static void environment(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    int private_before = nprivate;
    parse_private(text);
    parse_channels(text);
    CHECK(nprivate <= MAX_PRIVATE && nchan <= MAX_CHANNELS);
    for (int i = base_nchan; i < nchan; i++) {
        CHECK(chans[i].port != 0);
        for (int j = 0; j < i; j++)
            CHECK(chans[j].port != chans[i].port);
    }
    memset(&chans[base_nchan], 0, sizeof chans[0] * (size_t)(nchan - base_nchan));
    nchan = base_nchan;
    nprivate = private_before;
    free(text);
}

/* op 1: one message down a channel, as many accept4 calls as the program would make. */
static void message(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    uint8_t how = data[0], buflen = data[1];
    data += 2;
    size -= 2;
    int v6 = how & 1, nfds = (how >> 1) & 3, use_addr = !(how & 8);
    int flags = ((how & 16) ? SOCK_NONBLOCK : 0) | ((how & 32) ? SOCK_CLOEXEC : 0);
    int lowest = lowest_free_fd();

    int fds[3] = {spare, spare, spare};
    struct iovec iov = {.iov_base = (void *)data, .iov_len = size};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof fds)];
    } cm;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        mh.msg_control = cm.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)nfds);
    }
    /* An empty message with no fd reads as end of file on SOCK_SEQPACKET (the library then takes
     * the daemon for gone and raises SIGTERM): the daemon never sends one. */
    if (size == 0 && nfds == 0)
        return;
    /* The daemon's promise: byte 1 says whether the passed description has O_NONBLOCK (the
     * library trusts it and saves a call). Keep it, as the daemon does. */
    int nonblock = size >= 2 && (data[1] & FDFLAG_NONBLOCK);
    CHECK(REAL(fcntl)(spare, F_SETFL, nonblock ? O_NONBLOCK : 0) == 0);
    if (sendmsg(daemon_end[v6], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return;
    int valid = size == CONN_MSG_LEN && data[0] == KIND_CONN && nfds > 0;

    int taken = 0;
    for (int round = 0; round < 4; round++) {
        socklen_t len = buflen;
        struct sockaddr *addr = use_addr ? malloc(buflen ? buflen : 1) : NULL;
        int conn = rcl_hook_accept4(program_fd[v6], addr, use_addr ? &len : NULL, flags);
        if (conn < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EMFILE || (!use_addr && errno == EFAULT));
            free(addr);
            break;
        }
        taken++;
        int fl = fcntl(conn, F_GETFL), fdfl = fcntl(conn, F_GETFD);
        CHECK(fl >= 0 && fdfl >= 0);
        CHECK(!!(fl & O_NONBLOCK) == !!(flags & SOCK_NONBLOCK));
        CHECK(!!(fdfl & FD_CLOEXEC) == !!(flags & SOCK_CLOEXEC));
        if (addr)
            CHECK(len <= sizeof(rcl_addr));
        free(addr);
        socklen_t plen = buflen;
        struct sockaddr *peer = malloc(buflen ? buflen : 1);
        (void)rcl_hook_getpeername(conn, peer, &plen);
        free(peer);
        CHECK(rcl_hook_close(conn) == 0);
    }
    CHECK(taken == valid);

    socklen_t slen = buflen;
    struct sockaddr *name = malloc(buflen ? buflen : 1);
    CHECK(rcl_hook_getsockname(program_fd[v6], name, &slen) == 0);
    CHECK(slen == (v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)));
    free(name);
    drain(daemon_end[v6]);
    CHECK(lowest_free_fd() == lowest); /* every fd that came with the message is closed */
}

/* op 2: an abstract name read back as a channel's. */
static void channel_name(const uint8_t *data, size_t size)
{
    if (!own_netns || size == 0 || size > sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
        return;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    memcpy(un.sun_path + 1, data, size);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + size);
    if (REAL(bind)(fd, (struct sockaddr *)&un, len) == 0) {
        rcl_addr addr;
        socklen_t alen = channel_named(fd, &addr);
        CHECK(alen == 0 || alen == sizeof(struct sockaddr_in) || alen == sizeof(struct sockaddr_in6));
        if (alen)
            CHECK(addr.sa.sa_family == (alen == sizeof(struct sockaddr_in) ? AF_INET : AF_INET6));
    }
    REAL(close)(fd);
}

int rcl_fuzz_preload(const uint8_t *data, size_t size)
{
    if (!set_up)
        setup();
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0:
        environment(data + 1, size - 1);
        break;
    case 1:
        message(data + 1, size - 1);
        break;
    default:
        channel_name(data + 1, size - 1);
        break;
    }
    return 0;
}
