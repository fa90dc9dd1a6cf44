/* SPDX-License-Identifier: MIT */
/*
 * tools/rook-resp (RESP on rook_serve + streams) as redis-benchmark and
 * redis-cli use it: run as a process with 2 workers, spoken to over
 * loopback with plain sockets. Pipelined commands in one write, the same
 * commands one byte per write, a missing key, an unknown command and an
 * inline PING each get their exact reply, in order.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CMDS                                                                                       \
	"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"              \
	"*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nWHAT\r\n"                \
	"PING\r\n"
#define REPLIES "+OK\r\n$5\r\nhello\r\n$-1\r\n+PONG\r\n-ERR unknown command\r\n+PONG\r\n"

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A port that was free a moment ago. */
static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Connect once the server listens (it starts asynchronously): 10 s bound. */
static int connect_when_up(uint16_t port)
{
	struct sockaddr_in a = loopback(port);
	for (int i = 0; i < 1000; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1; /* one byte per segment, without Nagle's wait */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		close(fd);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void expect_replies(int fd)
{
	char got[sizeof(REPLIES)] = "";
	size_t n = 0, want = sizeof(REPLIES) - 1;
	while (n < want) {
		ssize_t r = read(fd, got + n, want - n);
		cr_assert_gt(r, 0, "read: %zd (%s) after %zu bytes", r, strerror(errno), n);
		n += (size_t)r;
	}
	cr_assert_str_eq(got, REPLIES);
}

Test(resp, pipelined_and_byte_by_byte_commands_get_their_replies, .timeout = 60)
{
	uint16_t port = free_port();
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("tools/rook-resp", "rook-resp", "--port", ps, "--workers", "2", (char *)NULL);
		_exit(127);
	}
	int fd = connect_when_up(port);
	cr_assert(fd >= 0, "rook-resp did not listen on %u", port);
	cr_assert_eq(write(fd, CMDS, sizeof(CMDS) - 1), (ssize_t)sizeof(CMDS) - 1);
	expect_replies(fd);
	for (size_t i = 0; i < sizeof(CMDS) - 1; i++)
		cr_assert_eq(write(fd, CMDS + i, 1), 1);
	expect_replies(fd);
	close(fd);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
}
