#!/usr/bin/env bash
# Runs procpipe's Windows tests and seed examples under Wine on Linux.
#
#   ci/wine.sh [package pattern ...]    (default: ./...)
#
# Installs Debian's wine and the mingw-w64 cross compiler when missing, builds
# the ProcessPrng shim (ci/wine/processprng.c: Go >= 1.24's runtime needs
# bcryptprimitives.dll!ProcessPrng, which Wine 8 lacks) into a Wine prefix of
# its own, then builds every package's test binary for windows/amd64 and runs
# it under Wine, one line per package. Exits non-zero if anything fails.
#
# Environment: WINEPREFIX (default ${TMPDIR:-/tmp}/procpipe-wine),
# WINE_TEST_TIMEOUT (seconds per test binary, default 600).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

export WINEPREFIX=${WINEPREFIX:-${TMPDIR:-/tmp}/procpipe-wine}
export WINEDEBUG=-all
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}  # no Mono/Gecko prompts
timeout_s=${WINE_TEST_TIMEOUT:-600}

# --- tools -----------------------------------------------------------------

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for pkg in wine wine64 gcc-mingw-w64-x86-64; do
	installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
	sudo=()
	if [[ $(id -u) != 0 ]]; then
		sudo=(sudo)
	fi
	echo "wine.sh: installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Wine prefix and shim --------------------------------------------------

if [[ ! -f $WINEPREFIX/system.reg ]]; then
	echo "wine.sh: initialising the Wine prefix $WINEPREFIX"
	mkdir -p "$WINEPREFIX"
	wineboot -i >/dev/null 2>&1
	wineserver -w
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/procpipe-wine-build.XXXXXX")
cleanup() {
	wineserver -k 2>/dev/null || true # children a failed test left behind
	rm -rf "$work"
}
trap cleanup EXIT

x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" ci/wine/processprng.c
install -m 0644 "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"

# --- tests -----------------------------------------------------------------

export GOOS=windows GOARCH=amd64 CGO_ENABLED=0
module=$(go list -m)
failed=0

patterns=("$@")
if ((${#patterns[@]} == 0)); then
	patterns=(./...)
fi

# Packages with tests for windows, as "import-path directory" lines.
pkgs=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "${patterns[@]}")

while read -r pkg dir; do
	[[ -n $pkg ]] || continue
	rel=${pkg#"$module"}
	rel=${rel#/}
	name=${rel:-procpipe}
	exe="$work/${name//\//_}.test.exe"
	log="$work/${name//\//_}.log"
	if ! go test -c -o "$exe" "$pkg" >"$log" 2>&1; then
		echo "FAIL $pkg (build)"
		sed 's/^/    /' "$log"
		failed=1
		continue
	fi
	start=$SECONDS
	# Like go test, run in the package's directory (for testdata).
	if (cd "$dir" && timeout "$timeout_s" wine "$exe" -test.timeout "$((timeout_s - 30))s" </dev/null >"$log" 2>&1); then
		echo "ok   $pkg ($((SECONDS - start))s)"
	else
		echo "FAIL $pkg ($((SECONDS - start))s)"
		tail -n 60 "$log" | sed 's/^/    /'
		failed=1
		wineserver -k 2>/dev/null || true
	fi
done <<<"$pkgs"

# --- seed examples ---------------------------------------------------------

# check_example NAME EXPECTED-OUTPUT: builds examples/NAME, runs it and
# compares its standard output, line by line, with the expected one.
check_example() {
	local name=$1 want=$2 exe="$work/$1.exe" out="$work/$1.out"
	if ! go build -o "$exe" "./examples/$name" >"$out" 2>&1; then
		echo "FAIL examples/$name (build)"
		sed 's/^/    /' "$out"
		failed=1
		return
	fi
	if (cd "$work" && timeout 120 wine "$exe" </dev/null >"$out" 2>"$out.err") && [[ $(tr -d '\r' <"$out") == "$want" ]]; then
		echo "ok   examples/$name"
	else
		echo "FAIL examples/$name: got"
		sed 's/^/    /' "$out" "$out.err"
		echo "  want"
		sed 's/^/    /' <<<"$want"
		failed=1
		wineserver -k 2>/dev/null || true
	fi
}

check_example parent_to_child "Child received: Welcome to TutorialsPoint"
check_example bidirectional "Parent received: Have a nice day!
Child received: Same to you!"

exit "$failed"
