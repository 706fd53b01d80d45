/*
 * waits.c: what the way a reader waits costs a one-CPU round trip, in C.
 *
 *   gcc -O2 -o waits ci/bench/waits.c
 *   for m in block yield ppoll ppoll-timeout; do taskset -c 0 ./waits $m 20000; done
 *
 * Parent and forked child echo a 68-byte message (64 B plus the 4-byte
 * header) over two pipes, as ci/bench/cbench.c's rtt does. Only the wait
 * differs:
 *   block          blocking read (cbench's way, and the kernel's best case)
 *   yield          non-blocking: sched_yield, then read; yield again on EAGAIN
 *                  (procpipe's way on one CPU, see unix/wait_linux.go)
 *   ppoll          non-blocking read; on EAGAIN ppoll without a timeout
 *   ppoll-timeout  the same with a 1 ms timeout (arms a timer each wait)
 * Run the modes alternately, several rounds: the machine drifts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK, YIELD, PPOLL, PPOLL_TIMEOUT };
static int mode;

static double now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static void wait_readable(int fd) {
	struct pollfd p = {fd, POLLIN, 0};
	struct timespec ms = {0, 1000000};
	ppoll(&p, 1, mode == PPOLL_TIMEOUT ? &ms : NULL, NULL);
}

static void get(int fd, char *b, int n) {
	if (mode == YIELD)
		sched_yield(); /* the peer has not run since this side wrote */
	for (int got = 0; got < n;) {
		int r = read(fd, b + got, n - got);
		if (r < 0 && errno == EAGAIN) {
			if (mode == YIELD)
				sched_yield();
			else
				wait_readable(fd);
			continue;
		}
		if (r <= 0)
			exit(1);
		got += r;
	}
}

int main(int argc, char **argv) {
	const char *names[] = {"block", "yield", "ppoll", "ppoll-timeout"};
	if (argc != 3) {
		fprintf(stderr, "usage: waits block|yield|ppoll|ppoll-timeout round-trips\n");
		return 2;
	}
	mode = -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(argv[1], names[i]) == 0)
			mode = i;
	int n = atoi(argv[2]);
	if (mode < 0 || n <= 0) {
		fprintf(stderr, "waits: bad arguments\n");
		return 2;
	}
	int a[2], b[2];
	if (pipe(a) || pipe(b)) {
		perror("pipe");
		return 1;
	}
	if (mode != BLOCK) {
		fcntl(a[0], F_SETFL, O_NONBLOCK);
		fcntl(b[0], F_SETFL, O_NONBLOCK);
	}
	char buf[68] = {0};
	if (fork() == 0) {
		for (int i = 0; i < n; i++) {
			get(a[0], buf, sizeof buf);
			if (write(b[1], buf, sizeof buf) != sizeof buf)
				exit(1);
		}
		exit(0);
	}
	double t = now_ns();
	for (int i = 0; i < n; i++) {
		if (write(a[1], buf, sizeof buf) != sizeof buf)
			return 1;
		get(b[0], buf, sizeof buf);
	}
	printf("%s: %.2f us/rtt\n", names[mode], (now_ns() - t) / n / 1000);
	wait(NULL);
	return 0;
}
