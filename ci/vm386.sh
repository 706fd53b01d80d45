#!/usr/bin/env bash
# Runs procpipe's linux/386 tests natively on a kernel that runs 32-bit
# binaries, for machines whose own kernel does not (IA-32 emulation off) and
# where qemu-i386 cannot stand in (Debian's 7.2 shares one TLS descriptor
# table between threads, so Go's 386 runtime loses its g: "bad g in signal
# handler", "unlock of unlocked lock").
#
#   ci/vm386.sh [package pattern ...]    (default: ./...)
#
# It boots Debian's amd64 cloud kernel (IA-32 emulation on) in
# qemu-system-x86_64, KVM when /dev/kvm is usable and TCG otherwise, from an
# initramfs holding ci/vm/init.go as /init, every package's test binary built
# for linux/386, a copy of the source tree (tests read testdata/ and
# examples/), and the host's python3 with its standard library, for the
# tests that talk to Python. The VM has no go command, so a test that builds a
# program skips, and the summary names it. One line per package, like
# ci/wine.sh; exits non-zero if any package fails or the VM does not finish.
#
# Needs root on Debian (apt-get for qemu-system-x86 and cpio, apt-get
# download for the kernel package). Environment: VM386_TIMEOUT (seconds for
# the whole VM run, default 2400), VM386_KERNEL (a vmlinuz to use instead of
# downloading one), VM386_TESTFLAGS (more flags for every test binary, e.g.
# "-test.run=^TestPoll -test.count=20").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
work=$root/ci/out/vm386
timeout_s=${VM386_TIMEOUT:-2400}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for pkg in qemu-system-x86 cpio; do
	installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
	echo "vm386.sh: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rm -rf "$work/root"
mkdir -p "$work/root/t" "$work/root/src" "$work/kernel"

# --- kernel -------------------------------------------------------------------
kernel=${VM386_KERNEL:-}
if [[ -z $kernel ]]; then
	# The newest cloud kernel the archive names; its config has
	# CONFIG_IA32_EMULATION=y, and the serial console, devtmpfs and tmpfs
	# the VM needs are built in.
	newest() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}' || true; }
	pkg=$(newest)
	if [[ -z $pkg ]]; then
		apt-get update -qq
		pkg=$(newest)
	fi
	if [[ -z $pkg ]]; then
		echo "vm386.sh: apt-cache names no kernel for linux-image-cloud-amd64"
		exit 1
	fi
	kernel=$(ls "$work/kernel/$pkg"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
	if [[ -z $kernel ]]; then
		echo "vm386.sh: downloading $pkg"
		# Stale package lists name a version the archive no longer has:
		# update them and try once more.
		if ! (cd "$work/kernel" && rm -f ./*.deb && apt-get download "$pkg"); then
			apt-get update -qq
			pkg=$(newest)
			(cd "$work/kernel" && apt-get download "$pkg")
		fi
		# Into a temporary directory first: an interrupted extraction must
		# not pass for a kernel next time.
		rm -rf "$work/kernel/$pkg" "$work/kernel/$pkg.tmp"
		dpkg-deb -x "$work/kernel/$pkg"_*.deb "$work/kernel/$pkg.tmp"
		mv "$work/kernel/$pkg.tmp" "$work/kernel/$pkg"
		kernel=$(ls "$work/kernel/$pkg"/boot/vmlinuz-* | head -1)
	fi
fi

# --- initramfs ----------------------------------------------------------------
r=$work/root
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o "$r/init" ci/vm/init.go
# The source tree as it is, uncommitted changes included, without .git and
# ci/out.
tar -c --exclude=./.git --exclude=./ci/out . | tar -x -C "$r/src"

pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)
plan=$r/plan
{
	echo "env CI=true"
	echo "env GOTRACEBACK=all"
} >"$plan"
# Into a variable first, so that set -e sees go list fail.
list=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "${pkgs[@]}")
names=()
while read -r pkg dir; do
	[[ -z $pkg ]] && continue
	name=${pkg//\//_}
	GOOS=linux GOARCH=386 CGO_ENABLED=0 go test -c -o "$r/t/$name.test" "$pkg"
	# A 32-bit ELF file, which the VM's kernel runs through IA-32 emulation.
	if [[ $(head -c 5 "$r/t/$name.test" | od -An -tx1 | tr -d ' \n') != 7f454c4601 ]]; then
		echo "vm386.sh: $name.test is not a 32-bit ELF file"
		exit 1
	fi
	read -r -a extra <<<"${VM386_TESTFLAGS:-}"
	args=(-test.count=1 -test.timeout=20m -test.v ${extra[@]+"${extra[@]}"})
	(
		IFS=$'\t'
		echo "/src${dir#"$root"}	/t/$name.test	${args[*]}"
	) >>"$plan"
	names+=("$name")
done <<<"$list"
if ((${#names[@]} == 0)); then
	echo "vm386.sh: no package with tests in ${pkgs[*]}"
	exit 1
fi

# python3, its shared libraries and its standard library.
copy() { # path...: copies each path into the initramfs, symlinks resolved to their targets
	local p
	for p in "$@"; do
		mkdir -p "$r$(dirname "$p")"
		cp -aL "$p" "$r$p"
	done
}
read -r py pylib dynload < <(python3 -c 'import sys, sysconfig; print(sys.executable, sysconfig.get_paths()["stdlib"], sysconfig.get_config_var("DESTSHARED"))')
copy "$py"
mkdir -p "$r/usr/bin"
[[ $py == /usr/bin/python3 ]] || ln -s "$py" "$r/usr/bin/python3"
mkdir -p "$r$pylib"
tar -c -C "$pylib" --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./lib2to3 \
	--exclude=./ensurepip --exclude=./pydoc_data --exclude=./turtledemo --exclude=./site-packages --exclude='./config-*' . | tar -x -C "$r$pylib"
for lib in $(ldd "$py" "$dynload"/*.so 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | sort -u); do
	copy "$lib"
done

(cd "$r" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# --- run ------------------------------------------------------------------------
accel=tcg,thread=multi
if [[ -r /dev/kvm && -w /dev/kvm ]]; then
	accel=kvm
fi
log=$work/console.log
echo "vm386.sh: booting $(basename "$kernel") ($accel, $(nproc) CPUs) with ${#names[@]} test binaries; console in ${log#"$root"/}"
start=$SECONDS
st=0
timeout "$timeout_s" qemu-system-x86_64 -accel "$accel" -cpu max -smp "$(nproc)" -m 3072 \
	-kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet loglevel=1 panic=-1 ia32_emulation=on" \
	-display none -no-reboot -monitor none -serial "file:$log" </dev/null || st=$?
if ((st == 124)); then
	echo "vm386.sh: the VM did not finish within ${timeout_s}s"
fi
# The console has CRLF line ends.
tr -d '\r' <"$log" >"$log.txt"
cat "$log.txt"
echo "vm386.sh: the VM ran $((SECONDS - start))s"

# The tests that may skip in the VM: the one that builds a program (the VM has
# no go command), and on a kernel that refuses RWF_NOWAIT on pipes (before
# 6.4) the never-blocks probe's pipe-nowait half (pipes that do not own their
# open file), and, should a pipe there not own its open file
# (unix/pipe_linux.go; TestPipeOwnsItsOpenFile fails then), the probe's pipe
# half, TestTryReadDrained and the TryRead half of TestSlowYieldFirstJudged
# (a pipe's TryRead is never made then). Any
# other skip fails the run, so that a new one shows in the matrix rather than
# only in this log.
expected_skips="TestPassListenerExample TestNeverBlocksWhenONonblockCleared TestNeverBlocksWhenONonblockCleared/pipe TestNeverBlocksWhenONonblockCleared/pipe-nowait TestTryReadDrained TestSlowYieldFirstJudged/TryRead/small TestSlowYieldFirstJudged/TryRead/under_a_page TestSlowYieldFirstJudged/TryRead/page TestSlowYieldFirstJudged/TryRead/full_buffer TestSlowYieldFirstJudged/TryRead/nothing"
rc=0
((st == 0)) || rc=1
for name in "${names[@]}"; do
	status=$(awk -v b="/t/$name.test" '$1 == "vm:" && $2 == "exit" && $4 == b {print $3}' "$log.txt")
	# Top-level tests and their subtests; deeper indents are a child's
	# output quoted in a message.
	skips=$(awk -v b="/t/$name.test" '$1 == "vm:" && $2 == "run" {on = ($4 == b)} on && /^(    )?--- SKIP/ {print $3}' "$log.txt" | sort -u | paste -sd, -)
	unexpected=
	for t in ${skips//,/ }; do
		[[ " $expected_skips " == *" $t "* ]] || unexpected+=" $t"
	done
	if [[ $status == 0 && -n $unexpected ]]; then
		echo "FAIL $name (skipped in the VM, which this script does not expect:$unexpected)"
		rc=1
		continue
	fi
	case $status in
	0) echo "ok   $name${skips:+ (skipped: $skips)}" ;;
	"") echo "FAIL $name (no result: the VM stopped first)"; rc=1 ;;
	*) echo "FAIL $name (exit $status)"; rc=1 ;;
	esac
done
exit $rc
