#!/usr/bin/env bash
# ci/matrix.sh: procpipe's cross-platform test matrix on one Linux amd64 machine.
#
# Every cell prints one line, PASS/FAIL/SKIP, and the run ends with a summary
# table (also written as markdown to ci/out/matrix.md, from which the README's
# "What is tested where" section is kept true). The script exits non-zero if
# any cell failed, and, with MATRIX_STRICT=1, if any cell was skipped: a cell
# that cannot run here says why in one line, it never passes silently.
#
# Cells:
#   tests   linux/amd64 -race, and on one CPU, linux/386 (native, or in a VM:
#           ci/vm386.sh), linux/arm64 and linux/s390x
#           (big-endian) under qemu-user via binfmt_misc, windows/amd64 under
#           Wine (ci/wine.sh, when present)
#   vet     darwin, the BSDs, solaris, illumos, aix, windows/arm64, riscv64,
#           ppc64le
#   lint    staticcheck for linux, windows and darwin (pinned, not in go.mod)
#   fuzz    every Fuzz target, for a bounded time each
#
# Usage: ci/matrix.sh [--markdown] [--list]
#   --markdown  print the markdown table of the last run (ci/out/matrix.md)
#   --list      print the cells without running them
# Environment:
#   MATRIX_CELLS=REGEX   run only the cells whose name matches (others: not listed)
#   MATRIX_FUZZTIME=300000x  executions per fuzz target (a count, not a
#                        duration: Go 1.26's fuzz coordinator can fail a clean
#                        run with "context deadline exceeded" when a -fuzztime
#                        duration ends, golang/go#75804; a count has no deadline)
#   MATRIX_STRICT=1      a skipped cell fails the run
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
out=$root/ci/out
staticcheck_version=v0.8.2 # 2026.2.2: the first release that knows Go 1.26
fuzztime=${MATRIX_FUZZTIME:-300000x}
only=${MATRIX_CELLS:-}
strict=${MATRIX_STRICT:-0}

vet_targets=(
	darwin/amd64 darwin/arm64 freebsd/amd64 openbsd/amd64 netbsd/amd64
	dragonfly/amd64 solaris/amd64 illumos/amd64 aix/ppc64 windows/arm64
	linux/riscv64 linux/ppc64le
)

case "${1:-}" in
--markdown)
	if [[ ! -f $out/matrix.md ]]; then
		echo "ci/matrix.sh: no ci/out/matrix.md yet: run ci/matrix.sh first" >&2
		exit 1
	fi
	cat "$out/matrix.md"
	exit 0
	;;
--list | "") ;;
*)
	echo "usage: ci/matrix.sh [--markdown|--list]" >&2
	exit 2
	;;
esac
list_only=0
[[ ${1:-} == --list ]] && list_only=1

mkdir -p "$out/logs" "$out/bin"

# Results, in the order the cells ran.
declare -a r_status=() r_cell=() r_what=() r_secs=() r_note=()

record() { # status cell what secs note
	r_status+=("$1") r_cell+=("$2") r_what+=("$3") r_secs+=("$4") r_note+=("$5")
	local line="$1 $2 $3"
	if [[ $1 == SKIP ]]; then
		line="SKIP $2 $3: $5"
	else
		line+=" ($4s)"
		[[ -n $5 ]] && line+=" - $5"
	fi
	echo "$line"
}

selected() { [[ -z $only || $1 =~ $only ]]; }

logname() { echo "$out/logs/$(echo "$*" | tr -c 'A-Za-z0-9.-' '_' | sed 's/_*$//').log"; }

# run_cell CELL WHAT NOTE -- command...: runs the command with its output in a
# log file; on failure prints the log's tail.
run_cell() {
	local cell=$1 what=$2 note=$3
	shift 4
	selected "$cell $what" || return 0
	if ((list_only)); then
		echo "cell $cell $what"
		return 0
	fi
	local log start secs rc=0
	log=$(logname "$cell $what")
	start=$SECONDS
	"$@" >"$log" 2>&1 || rc=$?
	secs=$((SECONDS - start))
	if ((rc == 0)); then
		record PASS "$cell" "$what" "$secs" "$note"
	else
		record FAIL "$cell" "$what" "$secs" "exit $rc, log ci/out/logs/${log##*/}"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
}

skip_cell() { # cell what reason
	selected "$1 $2" || return 0
	if ((list_only)); then
		echo "cell $1 $2"
		return 0
	fi
	record SKIP "$1" "$2" 0 "$3"
}

# --- installing what is missing ------------------------------------------

apt_updated=0
apt_install() { # packages...: installs those not installed yet
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
		echo "cannot install ${missing[*]}: not root on a Debian-like system" >&2
		return 1
	fi
	if ((!apt_updated)); then
		apt-get update -qq >&2
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# qemu_ready ARCH (aarch64, s390x): makes the kernel run ARCH binaries through
# qemu-user, which the tests that re-exec themselves need, since a child is
# started as ./pkg.test, not as qemu-ARCH ./pkg.test. Prints why not, on
# failure.
qemu_ready() {
	local arch=$1 entry=/proc/sys/fs/binfmt_misc/qemu-$1
	if [[ $(id -u) != 0 ]]; then
		echo "needs root to register qemu-$arch with binfmt_misc"
		return 1
	fi
	if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
		modprobe binfmt_misc 2>/dev/null || true
		if ! mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null; then
			echo "cannot mount binfmt_misc on /proc/sys/fs/binfmt_misc"
			return 1
		fi
	fi
	if ! apt_install qemu-user-static binfmt-support qemu-user >/dev/null 2>"$out/logs/apt-qemu.log"; then
		echo "cannot install qemu-user-static binfmt-support qemu-user (see ci/out/logs/apt-qemu.log)"
		return 1
	fi
	if [[ ! -e $entry ]]; then
		update-binfmts --import "qemu-$arch" >/dev/null 2>&1 || true
	fi
	update-binfmts --enable "qemu-$arch" >/dev/null 2>&1 || true
	if ! grep -qx enabled "$entry" 2>/dev/null; then
		echo "binfmt_misc entry qemu-$arch is missing or disabled after update-binfmts"
		return 1
	fi
}

# --- test cells -------------------------------------------------------------

# Packages with tests, as "importpath dir".
test_packages() {
	go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' ./...
}

# foreign_tests GOARCH: builds each package's test binary for GOARCH and runs
# it directly in the package's directory, as go test would; the kernel hands
# it (and every child it re-execs) to qemu.
foreign_tests() {
	local goarch=$1 pkg dir bin rc=0
	while read -r pkg dir; do
		[[ -z $pkg ]] && continue
		bin=$out/bin/$goarch/${pkg//\//_}.test
		mkdir -p "$out/bin/$goarch"
		echo "=== build $pkg for linux/$goarch"
		# set -e does not hold here (run_cell calls this in a || list).
		if ! GOOS=linux GOARCH=$goarch CGO_ENABLED=0 go test -c -o "$bin" "$pkg"; then
			rc=1
			continue
		fi
		echo "=== run $pkg"
		foreign_run "$dir" "$bin" || rc=1
	done < <(test_packages)
	return $rc
}

# foreign_run DIR BIN: runs a test binary under qemu-user, and once more if
# it timed out with a goroutine still in syscall.forkExec, that is, with a
# child stuck between fork and exec. qemu-user (Debian's 7.2) emulates
# vfork as a fork of its multi-threaded self, and now and then the child
# deadlocks on a lock another thread held (seen in a CI run: the child had the
# parent's command line and environment, two threads in futex_wait, no exec).
# Any other failure, and a second timeout, fail the cell.
foreign_run() {
	local dir=$1 bin=$2 log st
	log=$(mktemp)
	# Into a file, not a pipe: a stuck child would hold a pipe open.
	(cd "$dir" && "$bin" -test.count=1 -test.timeout=5m -test.v) >"$log" 2>&1
	st=$?
	cat "$log"
	if ((st != 0)) && grep -q '^panic: test timed out' "$log" && grep -q 'syscall.forkExec' "$log"; then
		pkill -KILL -f -- "$bin" || true # the stuck child, orphaned
		echo "=== RETRY $bin: timed out with a child stuck between fork and exec, a qemu-user fault; running it once more"
		(cd "$dir" && "$bin" -test.count=1 -test.timeout=5m -test.v)
		st=$?
	fi
	rm -f "$log"
	return "$st"
}

start=$SECONDS
if ((!list_only)); then
	echo "procpipe matrix on $(go version | cut -d' ' -f3-), $(nproc) cores, $(uname -sr)"
fi

# Setup failures show in the cells.
cd "$root"
go mod download >/dev/null 2>&1 || true

run_cell linux/amd64 "test -race" "" -- \
	go test -race -count=1 -timeout=20m -v ./...
# The full-size abuse test (1,000 children) runs without -race: a child of a
# -race binary costs ~15 times more to start (the race runtime's set-up), so
# the other cells start 100.
run_cell linux/amd64 "test 1,000 children" "no -race" -- \
	env PROCPIPE_TEST_FULL=1 go test -count=1 -timeout=20m -v -run '^TestManyChildren$' .
# Every test binary, and so every child it starts, on one CPU, as in a
# container limited to one: parent and child then take turns, and the read
# spin (unix/wait_linux.go) must hand the CPU over rather than burn it.
run_cell linux/amd64 "test on one CPU" "taskset -c 0" -- \
	go test -count=1 -timeout=20m -exec 'taskset -c 0' ./...

# linux/386 runs natively where the kernel runs 32-bit binaries. Some
# kernels have that switched off (boot option ia32_emulation=off, or
# CONFIG_IA32_EMULATION_DEFAULT_DISABLED), and qemu-i386 (Debian's 7.2)
# crashes Go's 386 runtime (its threads share one TLS descriptor table: "bad
# g in signal handler"), so there ci/vm386.sh boots a kernel that does, in
# qemu-system-x86_64, and runs them natively in that VM.
if selected "linux/386 test" && ((!list_only)); then
	# The probe lives outside the module, or ./... would find it.
	probe=$(mktemp -d)
	printf 'package main\nfunc main() {}\n' >"$probe/probe.go"
	if (cd "$probe" && GOARCH=386 CGO_ENABLED=0 GOFLAGS= go build -o probe probe.go) >/dev/null 2>&1 &&
		"$probe/probe" 2>/dev/null; then
		can386=1
	else
		can386=0
	fi
	rm -rf "$probe"
fi
run_cell linux/386 "vet, build tests" "CGO_ENABLED=0" -- \
	bash -c 'set -e; export GOARCH=386 CGO_ENABLED=0; go vet ./...; for p in $(go list -f "{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}" ./...); do go test -c -o /dev/null "$p"; done'
if [[ ${can386:-1} == 1 ]]; then
	run_cell linux/386 "test" "native, CGO_ENABLED=0" -- \
		env GOARCH=386 CGO_ENABLED=0 go test -count=1 -timeout=20m -v ./...
elif [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
	skip_cell linux/386 "test" "this kernel does not run 32-bit binaries, and ci/vm386.sh (a VM whose kernel does) needs root and apt-get"
else
	run_cell linux/386 "test" "native in a qemu-system-x86_64 VM (ci/vm386.sh), as this kernel does not run 32-bit binaries; there TestPassListenerExample skips (no go command), and on Linux before 6.4, should pipes not own their open files, the never-blocks probe's pipe half, TestTryReadDrained and TestSlowYieldFirstJudged's TryRead half may skip too" -- \
		bash ci/vm386.sh
fi

for pair in arm64:aarch64 s390x:s390x; do
	goarch=${pair%%:*} qarch=${pair##*:}
	why=
	if selected "linux/$goarch test" && ((!list_only)) && ! why=$(qemu_ready "$qarch"); then
		skip_cell "linux/$goarch" "test" "$why"
		continue
	fi
	run_cell "linux/$goarch" "test" "qemu-$qarch via binfmt_misc" -- foreign_tests "$goarch"
done

if [[ -x ci/wine.sh || -f ci/wine.sh ]]; then
	run_cell windows/amd64 "test" "Wine" -- bash ci/wine.sh
else
	skip_cell windows/amd64 "test" "ci/wine.sh not present"
fi

for target in "${vet_targets[@]}"; do
	run_cell "$target" "vet" "" -- env GOOS="${target%/*}" GOARCH="${target#*/}" CGO_ENABLED=0 go vet ./...
done

# staticcheck checks the files of one GOOS at a time: the three with the most
# per-OS code. Installed into ci/out/bin at a pinned version (as go run
# ...@version would, but built once for this machine), never added to go.mod.
staticcheck() {
	if [[ ! -x $out/bin/staticcheck ]] || ! "$out/bin/staticcheck" -version | grep -q "(${staticcheck_version#v})"; then
		GOBIN=$out/bin GOOS= GOARCH= go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version" || return
	fi
	"$out/bin/staticcheck" ./...
}
for os in linux windows darwin; do
	run_cell "$os/amd64" "staticcheck" "$staticcheck_version" -- env GOOS=$os GOARCH=amd64 bash -c "out=$out staticcheck_version=$staticcheck_version; $(declare -f staticcheck); staticcheck"
done

# Every fuzz target of every package, found rather than listed, so a new one
# is fuzzed without editing this script.
while read -r pkg _; do
	[[ -z $pkg ]] && continue
	short=${pkg#github.com/procpipe/procpipe}
	short=${short#/}
	for fz in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		run_cell linux/amd64 "fuzz ${short:-procpipe}.$fz" "$fuzztime" -- \
			go test -run '^$' -fuzz "^$fz\$" -fuzztime "$fuzztime" -fuzzminimizetime 2000x "$pkg"
	done
done < <(test_packages)

((list_only)) && exit 0

# --- summary ----------------------------------------------------------------

total=$((SECONDS - start))
pass=0 fail=0 skip=0
for s in "${r_status[@]}"; do
	case $s in PASS) ((++pass)) ;; FAIL) ((++fail)) ;; SKIP) ((++skip)) ;; esac
done
if ((${#r_status[@]} == 0)); then
	echo "FAIL matrix: no cell ran (MATRIX_CELLS=$only matches none)"
	exit 1
fi

echo
echo "Summary (total ${total}s on $(nproc) cores):"
printf '  %-6s %-16s %-34s %6s  %s\n' result cell what time note
for i in "${!r_status[@]}"; do
	printf '  %-6s %-16s %-34s %5ss  %s\n' "${r_status[$i]}" "${r_cell[$i]}" "${r_what[$i]}" "${r_secs[$i]}" "${r_note[$i]}"
done
echo "matrix: $pass passed, $fail failed, $skip skipped"

{
	echo "| Platform | Check | Result | Time | Notes |"
	echo "|---|---|---|---|---|"
	for i in "${!r_status[@]}"; do
		echo "| ${r_cell[$i]} | ${r_what[$i]} | ${r_status[$i]} | ${r_secs[$i]} s | ${r_note[$i]} |"
	done
	echo
	echo "Generated by \`ci/matrix.sh\` with $(go version | cut -d' ' -f3) on $(nproc) cores, $(date -u +%Y-%m-%d): $pass passed, $fail failed, $skip skipped, ${total} s in all."
} >"$out/matrix.md"

if ((fail > 0)) || ((strict && skip > 0)); then
	exit 1
fi
