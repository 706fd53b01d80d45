// cbench: the kernel's cost of the procpipe benchmark scenarios, in plain C.
//
// A parent and a forked child talk over a socketpair (duplex) or two pipes
// (oneway: one carries the data, one the replies), with procpipe's frame: a
// 4-byte big-endian length, then the payload. The sender makes one write per
// message (writev for header and payload); the receiver reads through a
// 64 KiB buffer and reads large payloads straight into their destination.
// Buffer sizes are the kernel's defaults.
//
// usage: cbench rtt|small|batched|bulk|big duplex|oneway count [size]
// It prints one line in the format of Go's benchmarks.
//
// Two environment variables, when set (to anything), make C pay what an
// interface to the kernel like procpipe's costs, to measure that apart from
// procpipe (README, Performance): CBENCH_NOWAIT makes the small stream's writes carry their own
// non-blocking flag (pwritev2 with RWF_NOWAIT on a pipe, send with
// MSG_DONTWAIT on a socket; a full pipe or socket is waited on with poll);
// CBENCH_EPOLL registers the receiver's descriptor with an epoll instance
// as Go's runtime poller does (edge-triggered, for reading and writing),
// which no thread waits on. (Before Linux 6.4 pipes refuse RWF_NOWAIT, and
// CBENCH_NOWAIT on one-way ends fails.)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(1);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void writeall(int fd, struct iovec *iov, int n) {
	while (n > 0) {
		ssize_t m = writev(fd, iov, n);
		if (m < 0) {
			if (errno == EINTR)
				continue;
			die("writev");
		}
		while (n > 0 && (size_t)m >= iov->iov_len) {
			m -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + m;
			iov->iov_len -= m;
		}
	}
}

static void sendmsg1(int fd, const void *p, uint32_t n) {
	uint8_t h[4] = {n >> 24, n >> 16, n >> 8, n};
	struct iovec iov[2] = {{h, 4}, {(void *)p, n}};
	writeall(fd, iov, n ? 2 : 1);
}

// A buffered frame reader.
static uint8_t rbuf[64 << 10];
static size_t rr, rw;

static int fill(int fd) {
	if (rr == rw)
		rr = rw = 0;
	else if (rw == sizeof rbuf) {
		memmove(rbuf, rbuf + rr, rw - rr);
		rw -= rr;
		rr = 0;
	}
	for (;;) {
		ssize_t m = read(fd, rbuf + rw, sizeof rbuf - rw);
		if (m < 0 && errno == EINTR)
			continue;
		if (m < 0)
			die("read");
		rw += m;
		return m > 0;
	}
}

// recvmsg1 reads one frame into dst (or into a malloc'd buffer if dst is
// NULL, returned in *out) and returns its length, or -1 at the end.
static long recvmsg1(int fd, uint8_t *dst, size_t cap, uint8_t **out) {
	while (rw - rr < 4)
		if (!fill(fd)) {
			if (rw == rr)
				return -1;
			fprintf(stderr, "truncated header\n");
			exit(1);
		}
	uint32_t n = (uint32_t)rbuf[rr] << 24 | rbuf[rr + 1] << 16 | rbuf[rr + 2] << 8 | rbuf[rr + 3];
	rr += 4;
	if (!dst) {
		dst = malloc(n ? n : 1);
		cap = n;
		*out = dst;
	}
	if (n > cap) {
		fprintf(stderr, "message of %u bytes too long\n", n);
		exit(1);
	}
	size_t got = 0;
	while (got < n) {
		if (rr < rw) {
			size_t m = rw - rr < n - got ? rw - rr : n - got;
			memcpy(dst + got, rbuf + rr, m);
			rr += m;
			got += m;
		} else if (n - got >= sizeof rbuf) {
			ssize_t m = read(fd, dst + got, n - got);
			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0)
				die("read payload");
			got += m;
		} else if (!fill(fd)) {
			fprintf(stderr, "truncated payload\n");
			exit(1);
		}
	}
	return n;
}

static uint64_t peakrss(void) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb << 10;
}

static void put64(uint8_t *b, uint64_t v) {
	for (int i = 0; i < 8; i++)
		b[i] = v >> (56 - 8 * i);
}

static uint64_t get64(const uint8_t *b) {
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void child(const char *mode, int in, int out) {
	if (getenv("CBENCH_EPOLL")) {
		int ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev) < 0)
			die("epoll");
	}
	if (!strcmp(mode, "rtt")) {
		static uint8_t buf[64 << 10];
		long n;
		while ((n = recvmsg1(in, buf, sizeof buf, NULL)) >= 0)
			sendmsg1(out, buf, n);
	} else if (!strcmp(mode, "big")) {
		uint8_t *msg;
		long n = recvmsg1(in, NULL, 0, &msg);
		uint8_t ack[16];
		put64(ack, n);
		put64(ack + 8, peakrss());
		sendmsg1(out, ack, 16);
		free(msg);
		recvmsg1(in, NULL, 0, &msg);
	} else {
		uint8_t *buf = malloc(1 << 20);
		uint64_t msgs = 0, bytes = 0;
		long n;
		while ((n = recvmsg1(in, buf, 1 << 20, NULL)) >= 0) {
			if (n > 0) {
				msgs++;
				bytes += n;
				continue;
			}
			uint8_t ack[16];
			put64(ack, msgs);
			put64(ack + 8, bytes);
			sendmsg1(out, ack, 16);
			msgs = bytes = 0;
		}
	}
	exit(0);
}

// smallwrite writes a small stream's 20-byte frame (see CBENCH_NOWAIT).
static void smallwrite(int fd, const uint8_t *frame, int nowait, int duplex) {
	for (;;) {
		ssize_t m;
		if (!nowait)
			m = write(fd, frame, 20);
		else if (duplex)
			m = send(fd, frame, 20, MSG_DONTWAIT | MSG_NOSIGNAL);
		else {
			struct iovec v = {(void *)frame, 20};
			m = pwritev2(fd, &v, 1, -1, RWF_NOWAIT);
		}
		if (m == 20)
			return;
		if (m < 0 && errno == EAGAIN) {
			struct pollfd p = {fd, POLLOUT, 0};
			poll(&p, 1, -1);
		} else if (!(m < 0 && errno == EINTR))
			die("write");
	}
}

static void ack(int out, int in, uint64_t *msgs, uint64_t *bytes) {
	sendmsg1(out, NULL, 0);
	uint8_t a[16];
	if (recvmsg1(in, a, 16, NULL) != 16) {
		fprintf(stderr, "bad ack\n");
		exit(1);
	}
	*msgs = get64(a);
	*bytes = get64(a + 8);
}

static int cmpd(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: cbench rtt|small|batched|bulk|big duplex|oneway count [size]\n");
		return 2;
	}
	const char *mode = argv[1], *ends = argv[2];
	long count = atol(argv[3]);
	long size = argc > 4 ? atol(argv[4]) : 0;
	int duplex = !strcmp(ends, "duplex");
	int pin, pout, cin, cout; // parent's and child's read and write fds
	if (duplex) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			die("socketpair");
		pin = pout = sv[0];
		cin = cout = sv[1];
	} else {
		int d[2], r[2];
		if (pipe2(d, O_CLOEXEC) < 0 || pipe2(r, O_CLOEXEC) < 0)
			die("pipe");
		cin = d[0];
		pout = d[1];
		pin = r[0];
		cout = r[1];
	}
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		if (duplex)
			close(pin);
		else {
			close(pin);
			close(pout);
		}
		child(mode, cin, cout);
	}
	if (duplex)
		close(cin);
	else {
		close(cin);
		close(cout);
	}
	uint64_t msgs, bytes;
	if (!strcmp(mode, "rtt")) {
		uint8_t msg[64] = {0}, buf[64];
		double *t = malloc(count * sizeof *t), sum = 0;
		for (int i = 0; i < 1000; i++) {
			sendmsg1(pout, msg, 64);
			recvmsg1(pin, buf, 64, NULL);
		}
		// One clock read per round trip, as in the Go and Python
		// benchmarks: each time runs from the end of the last one.
		double start = now(), last = start;
		for (long i = 0; i < count; i++) {
			sendmsg1(pout, msg, 64);
			if (recvmsg1(pin, buf, 64, NULL) != 64) {
				fprintf(stderr, "bad echo\n");
				return 1;
			}
			double end = now();
			t[i] = end - last;
			last = end;
			sum += t[i];
		}
		double total = last - start;
		qsort(t, count, sizeof *t, cmpd);
		printf("BenchmarkRTT/%s\t%ld\t%.1f ns/op\t%.3f us-mean\t%.3f us-p50\t%.3f us-p99\n", ends, count,
		       total / count * 1e9, sum / count * 1e6, t[count / 2] * 1e6, t[count * 99 / 100] * 1e6);
	} else if (!strcmp(mode, "small")) {
		uint8_t frame[20] = {0, 0, 0, 16};
		int nowait = getenv("CBENCH_NOWAIT") != NULL;
		for (int i = 0; i < 1000; i++)
			smallwrite(pout, frame, nowait, duplex);
		ack(pout, pin, &msgs, &bytes);
		double t0 = now();
		for (long i = 0; i < count; i++)
			smallwrite(pout, frame, nowait, duplex);
		ack(pout, pin, &msgs, &bytes);
		double d = now() - t0;
		if ((long)msgs != count) {
			fprintf(stderr, "child counted %lu\n", msgs);
			return 1;
		}
		printf("BenchmarkSmall/%s\t%ld\t%.1f ns/op\t%.0f msgs/s\n", ends, count, d / count * 1e9, count / d);
	} else if (!strcmp(mode, "batched")) {
		static uint8_t batch[64 << 10];
		size_t n = 0;
		double t0 = now();
		for (long i = 0; i < count; i++) {
			if (n + 20 > sizeof batch) {
				struct iovec v = {batch, n};
				writeall(pout, &v, 1);
				n = 0;
			}
			memset(batch + n, 0, 20);
			batch[n + 3] = 16;
			n += 20;
		}
		struct iovec v = {batch, n};
		writeall(pout, &v, 1);
		ack(pout, pin, &msgs, &bytes);
		double d = now() - t0;
		if ((long)msgs != count) {
			fprintf(stderr, "child counted %lu\n", msgs);
			return 1;
		}
		printf("BenchmarkBatched/%s\t%ld\t%.1f ns/op\t%.0f msgs/s\n", ends, count, d / count * 1e9, count / d);
	} else if (!strcmp(mode, "bulk")) {
		uint8_t *msg = malloc(size);
		for (long i = 0; i < size; i++)
			msg[i] = i * 7;
		for (int i = 0; i < 10; i++)
			sendmsg1(pout, msg, size);
		ack(pout, pin, &msgs, &bytes);
		double t0 = now();
		for (long i = 0; i < count; i++)
			sendmsg1(pout, msg, size);
		ack(pout, pin, &msgs, &bytes);
		double d = now() - t0;
		if ((long)msgs != count || (long)bytes != count * size) {
			fprintf(stderr, "child counted %lu\n", msgs);
			return 1;
		}
		printf("BenchmarkBulk/%ldKiB/%s\t%ld\t%.1f ns/op\t%.3f GB/s\n", size >> 10, ends, count, d / count * 1e9,
		       bytes / d / 1e9);
	} else if (!strcmp(mode, "big")) {
		size = 256 << 20;
		uint8_t *msg = malloc(size);
		memset(msg, 0x5a, size);
		double t0 = now();
		sendmsg1(pout, msg, size);
		uint8_t a[16];
		if (recvmsg1(pin, a, 16, NULL) != 16 || (long)get64(a) != size) {
			fprintf(stderr, "bad ack\n");
			return 1;
		}
		double d = now() - t0;
		uint64_t peak = get64(a + 8);
		printf("BenchmarkBig/%s\t1\t%.0f ns/op\t%.2f MiB-peak-RSS\t%.4f peak/size\n", ends, d * 1e9,
		       peak / 1048576.0, (double)peak / size);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	close(pout);
	if (!duplex)
		close(pin);
	int st;
	waitpid(pid, &st, 0);
	return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
