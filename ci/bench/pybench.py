"""pybench: the procpipe benchmark scenarios with Python's multiprocessing.Pipe.

usage: python3 pybench.py rtt|small|bulk|big duplex|oneway count [size]

duplex uses Pipe(True) (a socketpair); oneway uses two Pipe(False) (pipes),
one for the data and one for the replies. Children are forked. It prints one
line in the format of Go's benchmarks.
"""
import multiprocessing as mp
import struct
import sys
import time


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def child(mode, rx, tx, theirs):
    # A forked child holds copies of the parent's ends too: close them, or
    # it never sees the end of the stream.
    for c in theirs:
        c.close()
    if mode == "rtt":
        buf = bytearray(64 << 10)
        try:
            while True:
                n = rx.recv_bytes_into(buf)
                tx.send_bytes(buf, 0, n)
        except EOFError:
            return
    if mode == "big":
        msg = rx.recv_bytes()
        tx.send_bytes(struct.pack(">QQ", len(msg), peak_rss()))
        del msg
        try:
            rx.recv_bytes()
        except EOFError:
            pass
        return
    buf = bytearray(1 << 20)
    msgs = nbytes = 0
    try:
        while True:
            n = rx.recv_bytes_into(buf)
            if n:
                msgs += 1
                nbytes += n
                continue
            tx.send_bytes(struct.pack(">QQ", msgs, nbytes))
            msgs = nbytes = 0
    except EOFError:
        return


def ack(tx, rx):
    tx.send_bytes(b"")
    return struct.unpack(">QQ", rx.recv_bytes())


def main():
    mode, ends, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ctx = mp.get_context("fork")
    if ends == "duplex":
        a, b = ctx.Pipe(True)
        p_rx = p_tx = a
        c_rx = c_tx = b
        theirs, ours = [b], [a]
    else:
        c_rx, p_tx = ctx.Pipe(False)
        p_rx, c_tx = ctx.Pipe(False)
        theirs, ours = [c_rx, c_tx], [p_tx, p_rx]
    proc = ctx.Process(target=child, args=(mode, c_rx, c_tx, ours))
    proc.start()
    for c in theirs:
        c.close()
    if mode == "rtt":
        msg = bytes(64)
        buf = bytearray(64)
        for _ in range(1000):
            p_tx.send_bytes(msg)
            p_rx.recv_bytes_into(buf)
        times = []
        clock = time.perf_counter
        # One clock read per round trip, as in the Go and C benchmarks:
        # each time runs from the end of the last one.
        start = last = clock()
        for _ in range(count):
            p_tx.send_bytes(msg)
            p_rx.recv_bytes_into(buf)
            end = clock()
            times.append(end - last)
            last = end
        total = last - start
        times.sort()
        print("BenchmarkRTT/%s\t%d\t%.1f ns/op\t%.3f us-mean\t%.3f us-p50\t%.3f us-p99" % (
            ends, count, total / count * 1e9, sum(times) / count * 1e6,
            times[count // 2] * 1e6, times[count * 99 // 100] * 1e6))
    elif mode == "small":
        msg = bytes(16)
        for _ in range(1000):
            p_tx.send_bytes(msg)
        ack(p_tx, p_rx)
        send = p_tx.send_bytes
        t0 = time.perf_counter()
        for _ in range(count):
            send(msg)
        msgs, _ = ack(p_tx, p_rx)
        d = time.perf_counter() - t0
        assert msgs == count, msgs
        print("BenchmarkSmall/%s\t%d\t%.1f ns/op\t%.0f msgs/s" % (ends, count, d / count * 1e9, count / d))
    elif mode == "bulk":
        msg = bytes(i * 7 & 0xFF for i in range(size))
        for _ in range(10):
            p_tx.send_bytes(msg)
        ack(p_tx, p_rx)
        t0 = time.perf_counter()
        for _ in range(count):
            p_tx.send_bytes(msg)
        msgs, nbytes = ack(p_tx, p_rx)
        d = time.perf_counter() - t0
        assert msgs == count and nbytes == count * size
        print("BenchmarkBulk/%dKiB/%s\t%d\t%.1f ns/op\t%.3f GB/s" % (
            size >> 10, ends, count, d / count * 1e9, nbytes / d / 1e9))
    elif mode == "big":
        size = 256 << 20
        msg = b"\x5a" * size
        t0 = time.perf_counter()
        p_tx.send_bytes(msg)
        n, peak = struct.unpack(">QQ", p_rx.recv_bytes())
        d = time.perf_counter() - t0
        assert n == size
        print("BenchmarkBig/%s\t1\t%.0f ns/op\t%.2f MiB-peak-RSS\t%.4f peak/size" % (
            ends, d * 1e9, peak / 1048576, peak / size))
    else:
        sys.exit("unknown mode " + mode)
    p_tx.close()
    p_rx.close()
    proc.join()
    sys.exit(proc.exitcode)


if __name__ == "__main__":
    main()
