#!/usr/bin/env bash
# ci/bench.sh: procpipe side by side with C (ci/bench/cbench.c, the kernel's
# cost) and Python's multiprocessing.Pipe (ci/bench/pybench.py), free and
# pinned to one CPU (taskset -c 0 for both processes), REPS times each
# (default 3). Duplex ends are compared with C on a socketpair, one-way ends
# with C on pipes. It writes ci/out/raw.txt (every run), ci/out/bench.md
# (medians and ratios) and ci/out/bench.svg (chart). Run by hand, not by CI:
#
#	ci/bench.sh            # about 5 minutes on 2 cores
#	REPS=5 ci/bench.sh
set -uo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
OUT=ci/out
mkdir -p "$OUT"
go test -c -o "$OUT/procpipe.test" . || exit 1
gcc -O2 -Wall -o "$OUT/cbench" ci/bench/cbench.c || exit 1
PY=${PYTHON:-python3}
RAW=$OUT/raw.txt
: >"$RAW"

# scenario: Go benchmark pattern, count, cbench/pybench mode and size,
# Python's count ("-" to skip).
SCENARIOS=(
	"RTT|^BenchmarkRTT\$|20000|rtt||20000"
	"Small|^BenchmarkSmall\$|300000|small||100000"
	"Batched|^BenchmarkBatched\$|5000000|batched||-"
	"Bulk64K|^BenchmarkBulk\$/^64KiB\$|20000|bulk|65536|20000"
	"Bulk1M|^BenchmarkBulk\$/^1024KiB\$|2000|bulk|1048576|2000"
	"Big|^BenchmarkBig\$|1|big||1"
)

record() { # impl cpu command...: keep the benchmark lines, tagged
	local impl=$1 cpu=$2
	shift 2
	local pre=()
	[ "$cpu" = pinned ] && pre=(taskset -c 0)
	if ! timeout 120 ${pre[@]+"${pre[@]}"} "$@" >"$OUT/last.txt" 2>&1; then
		echo "FAILED: $impl $cpu $*" >&2
		cat "$OUT/last.txt" >&2
		return
	fi
	grep '^Benchmark' "$OUT/last.txt" || echo "NO RESULT: $impl $cpu $*" >&2
	grep '^Benchmark' "$OUT/last.txt" | sed -E "s/^(Benchmark[^ \t]*)-[0-9]+/\1/; s/^/$impl $cpu /" >>"$RAW"
}

start=$(date +%s)
for rep in $(seq "$REPS"); do
	for cpu in free pinned; do
		for s in "${SCENARIOS[@]}"; do
			IFS='|' read -r name pat count mode size pycount <<<"$s"
			for ends in duplex oneway; do
				echo "rep $rep/$REPS $cpu $name $ends" >&2
				# Repetition r starts each cell with procpipe, C or Python
				# in turn (procpipe again where Python has no run), so
				# that no program always runs first, straight after the
				# cell before. The order within a cell stays a cycle.
				for k in 0 1 2; do
					case $(((rep + k) % 3)) in
					1) record procpipe "$cpu" "$OUT/procpipe.test" -test.run '^$' -test.benchmem \
						-test.bench "$pat/^$ends\$" -test.benchtime "${count}x" ;;
					2) record C "$cpu" "$OUT/cbench" "$mode" "$ends" "$count" $size ;;
					0) if [ "$pycount" != - ]; then
						record Python "$cpu" "$PY" ci/bench/pybench.py "$mode" "$ends" "$pycount" $size
					fi ;;
					esac
				done
			done
		done
	done
done

machine="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r), $(go version | cut -d' ' -f3), gcc $(gcc -dumpversion), $($PY -V 2>&1)"
go run ci/bench/chart.go -raw "$RAW" -md "$OUT/bench.md" -svg "$OUT/bench.svg" \
	-machine "$machine" -cmd "REPS=$REPS ci/bench.sh" -reps "$REPS"
cat "$OUT/bench.md"
echo "took $(($(date +%s) - start))s" >&2
