/*
 * c-echo: a plain C epoll echo server with no JS, the yardstick of the "CPU × C" column of
 * `npm run bench`. The harness compiles it at bench time (`cc -O2`, into target/bench-peers/).
 *
 *   c-echo [--tcp-fd N] [--udp-fd N] [--ignore-stdin]
 *
 * It takes its sockets the way the Rust `echo-server` does: inherited from the parent, fd 3 a
 * listening TCP socket, fd 4 a UDP socket (checked, made non-blocking and close-on-exec). It stops
 * when stdin reaches EOF (the parent closes the pipe, or dies) or on SIGTERM/SIGINT (a signalfd).
 *
 * TCP: edge-triggered epoll; accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) until EAGAIN; every connection
 * is read until EAGAIN and each read written straight back (TCP_NODELAY, as the other servers).
 * What the peer does not take yet is kept per connection and nothing more is read from it until
 * that has gone out (EPOLLOUT), so memory stays bounded by one read buffer per slow peer.
 * UDP: up to 64 datagrams per recvmmsg, sent back to their senders with one sendmmsg; echoes that
 * would block are kept and nothing is read until they are sent. A budget of batches per turn keeps
 * one busy socket from starving the others (it is resumed after the next epoll_wait).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_LEN (64 * 1024)
#define BATCH 64
#define SLOT 65536
#define UDP_BUDGET 8
#define MAX_EVENTS 1024

enum kind { K_LISTENER, K_UDP, K_STDIN, K_SIGNAL, K_CONN };

struct source {
	enum kind kind;
	int fd;
	/* K_CONN: echo bytes the peer has not taken yet. */
	char *pend;
	size_t plen, ppos, pcap;
};

static char scratch[BUF_LEN];

/* The UDP batch: datagram k is udp_buf[k * SLOT..][..udp_hdrs[k].msg_len] from udp_names[k]. */
static char *udp_buf;
static struct iovec udp_iovs[BATCH];
static struct sockaddr_storage udp_names[BATCH];
static struct mmsghdr udp_hdrs[BATCH];
static int udp_len, udp_sent;

static int epfd;
static int udp_deferred;

static void die(const char *what)
{
	fprintf(stderr, "c-echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int add(struct source *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

/* Checks that inherited `fd` is a socket of `type`; makes it non-blocking and close-on-exec. */
static void adopt(int fd, int type, int listening)
{
	struct stat st;
	int got = 0, acc = 0;
	socklen_t len = sizeof got;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "c-echo: fd %d is not an open socket\n", fd);
		exit(2);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &got, &len) < 0 || got != type) {
		fprintf(stderr, "c-echo: fd %d is not a %s socket\n", fd, type == SOCK_STREAM ? "TCP" : "UDP");
		exit(2);
	}
	len = sizeof acc;
	if (listening && (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc)) {
		fprintf(stderr, "c-echo: fd %d is not listening\n", fd);
		exit(2);
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		die("fcntl");
}

static void conn_close(struct source *c)
{
	close(c->fd); /* no duplicate exists: closing removes it from the epoll set */
	free(c->pend);
	free(c);
}

/* Keeps scratch[from..n] to send when the peer is writable again. */
static void keep(struct source *c, size_t from, size_t n)
{
	size_t need = n - from;
	if (c->pcap < need) {
		char *p = realloc(c->pend, need);
		if (!p)
			die("realloc");
		c->pend = p;
		c->pcap = need;
	}
	memcpy(c->pend, scratch + from, need);
	c->plen = need;
	c->ppos = 0;
}

/* Returns 0 to keep the connection, -1 to close it. */
static int conn_pump(struct source *c)
{
	/* Flush what the peer has not taken before reading more: the bound on memory. */
	while (c->ppos < c->plen) {
		ssize_t w = send(c->fd, c->pend + c->ppos, c->plen - c->ppos, MSG_NOSIGNAL);
		if (w >= 0)
			c->ppos += (size_t)w;
		else if (errno == EAGAIN)
			return 0;
		else if (errno != EINTR)
			return -1;
	}
	c->plen = c->ppos = 0;
	for (;;) {
		ssize_t n = read(c->fd, scratch, sizeof scratch);
		if (n == 0)
			return -1; /* peer closed and everything is echoed: our close sends the FIN */
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		size_t pos = 0;
		while (pos < (size_t)n) {
			ssize_t w = send(c->fd, scratch + pos, (size_t)n - pos, MSG_NOSIGNAL);
			if (w >= 0)
				pos += (size_t)w;
			else if (errno == EAGAIN)
				break;
			else if (errno != EINTR)
				return -1;
		}
		if (pos < (size_t)n) {
			/* The peer is slow: keep the rest and read nothing more until EPOLLOUT. */
			keep(c, pos, (size_t)n);
			return 0;
		}
	}
}

static void accept_all(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN)
				return;
			if (errno == ECONNABORTED || errno == EINTR)
				continue;
			/* EMFILE and the like: retry on the next connection instead of spinning. */
			fprintf(stderr, "c-echo: accept: %s\n", strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct source *c = calloc(1, sizeof *c);
		if (!c)
			die("calloc");
		c->kind = K_CONN;
		c->fd = fd;
		/* Data already waiting is reported by the registration itself (edge on add). */
		if (add(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) {
			fprintf(stderr, "c-echo: epoll_ctl: %s\n", strerror(errno));
			conn_close(c);
		}
	}
}

/* Sends the batch's remaining echoes back; 1 when all went out, 0 when the socket is full. */
static int udp_send_back(int fd)
{
	while (udp_sent < udp_len) {
		int r = sendmmsg(fd, udp_hdrs + udp_sent, (unsigned)(udp_len - udp_sent), MSG_DONTWAIT);
		if (r > 0) {
			udp_sent += r;
		} else if (r < 0 && errno == EAGAIN) {
			return 0;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			/* An unsendable datagram (e.g. its sender vanished): drop it and go on. */
			if (r < 0)
				fprintf(stderr, "c-echo: sendmmsg: %s\n", strerror(errno));
			udp_sent++;
		}
	}
	return 1;
}

static void udp_echo(int fd)
{
	udp_deferred = 0;
	for (int turn = 0; turn < UDP_BUDGET; turn++) {
		if (!udp_send_back(fd))
			return; /* wait for EPOLLOUT */
		for (int k = 0; k < BATCH; k++) {
			udp_iovs[k].iov_len = SLOT;
			udp_hdrs[k].msg_hdr.msg_namelen = sizeof udp_names[k];
		}
		int r = recvmmsg(fd, udp_hdrs, BATCH, MSG_DONTWAIT, NULL);
		if (r < 0) {
			if (errno == EINTR) {
				turn--;
				continue;
			}
			if (errno != EAGAIN)
				fprintf(stderr, "c-echo: recvmmsg: %s\n", strerror(errno));
			udp_len = udp_sent = 0;
			return;
		}
		/* Each echo goes back to its sender with the length it came with. */
		for (int k = 0; k < r; k++)
			udp_iovs[k].iov_len = udp_hdrs[k].msg_len;
		udp_len = r;
		udp_sent = 0;
	}
	if (!udp_send_back(fd))
		return;
	udp_len = udp_sent = 0;
	udp_deferred = 1; /* budget used with work likely left: resume after the others */
}

static void usage(void)
{
	fprintf(stderr, "usage: c-echo [--tcp-fd N] [--udp-fd N] [--ignore-stdin]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int tcp_fd = -1, udp_fd = -1, watch_stdin = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tcp-fd") && i + 1 < argc)
			tcp_fd = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--udp-fd") && i + 1 < argc)
			udp_fd = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ignore-stdin"))
			watch_stdin = 0;
		else
			usage();
	}
	if (tcp_fd < 0 && udp_fd < 0)
		usage();

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");

	static struct source listener = { .kind = K_LISTENER }, udp = { .kind = K_UDP };
	static struct source in = { .kind = K_STDIN, .fd = 0 }, sig = { .kind = K_SIGNAL };
	if (tcp_fd >= 0) {
		adopt(tcp_fd, SOCK_STREAM, 1);
		listener.fd = tcp_fd;
		if (add(&listener, EPOLLIN | EPOLLET) < 0)
			die("epoll_ctl listener");
	}
	if (udp_fd >= 0) {
		adopt(udp_fd, SOCK_DGRAM, 0);
		udp.fd = udp_fd;
		udp_buf = malloc((size_t)SLOT * BATCH);
		if (!udp_buf)
			die("malloc");
		for (int k = 0; k < BATCH; k++) {
			udp_iovs[k].iov_base = udp_buf + (size_t)k * SLOT;
			udp_hdrs[k].msg_hdr.msg_iov = &udp_iovs[k];
			udp_hdrs[k].msg_hdr.msg_iovlen = 1;
			udp_hdrs[k].msg_hdr.msg_name = &udp_names[k];
		}
		if (add(&udp, EPOLLIN | EPOLLOUT | EPOLLET) < 0)
			die("epoll_ctl udp");
	}
	/* SIGTERM/SIGINT become events of the loop, so the server exits normally (status 0). */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		die("sigprocmask");
	sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig.fd < 0 || add(&sig, EPOLLIN) < 0)
		die("signalfd");
	/* Only stdin's hang-up matters; epoll refuses regular files and /dev/null (EPERM). */
	if (watch_stdin && add(&in, EPOLLIN) < 0)
		fprintf(stderr, "c-echo: cannot watch stdin (%s); stop me with SIGTERM\n", strerror(errno));

	static struct epoll_event events[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(epfd, events, MAX_EVENTS, udp_deferred ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		int resume_udp = udp_deferred;
		for (int i = 0; i < n; i++) {
			struct source *s = events[i].data.ptr;
			switch (s->kind) {
			case K_LISTENER:
				accept_all(s->fd);
				break;
			case K_UDP:
				resume_udp = 0;
				udp_echo(s->fd);
				break;
			case K_SIGNAL:
				return 0;
			case K_STDIN:
				/* EOF (or a dead parent) stops; anything written is read and ignored. */
				if (events[i].events & (EPOLLHUP | EPOLLERR) || read(0, scratch, sizeof scratch) <= 0)
					return 0;
				break;
			case K_CONN:
				/* Writable with nothing kept back: nothing to do (every read went to EAGAIN,
				 * so unread data would have come with its own EPOLLIN edge). */
				if (!(events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && s->plen == 0)
					break;
				if (conn_pump(s) < 0)
					conn_close(s);
				break;
			}
		}
		if (resume_udp)
			udp_echo(udp.fd);
	}
}
