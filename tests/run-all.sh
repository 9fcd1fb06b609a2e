#!/bin/bash
# tests/run-all.sh: Haven's whole test suite, from a fresh Debian 12 or
# Ubuntu 24.04 machine to a verdict.
#
#   1. install what building and testing need (apt-get, as root or through
#      sudo; skipped when everything is already there)
#   2. npm ci in tests/js (the pinned @huggingface/hub)
#   3. ./autogen.sh, configure in build/, make check; then the integration
#      scripts once more over HTTPS with a test CA (HAVEN_TEST_TLS=1, results
#      in build-tls/, using build/haven)
#   4. configure --enable-sanitizers in build-san/, make check (ASan, UBSan)
#   5. make distcheck in build/
#
# Every step runs even when an earlier one failed (except distcheck, which
# needs a passing build). The last line is "N passed, N failed", summed
# over the unit and integration results of all runs; the exit status is 0
# only when nothing failed.
#
# Knobs (all optional): HAVEN_SKIP_DEPS=1, HAVEN_SKIP_SAN=1,
# HAVEN_SKIP_DISTCHECK=1, JOBS=N. HAVEN_HF_HUB_SRC, when set, enables the
# huggingface_hub client test (see tests/integration/t6002-client-python.sh).

# The README runs this with `sh`: continue under bash.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
logs=$root/build-logs
mkdir -p "$logs"
start_all=$(date +%s)

total_pass=0
total_fail=0
summary=()
failed_steps=()

say() {
	printf '\n==> %s\n' "$*"
}

# step NAME COMMAND...: run a step, its output both shown and kept in
# build-logs/NAME.log; records a failure without stopping.
step() {
	local name=$1 t0 rc
	shift
	say "$name"
	t0=$(date +%s)
	"$@" 2>&1 | tee "$logs/$name.log"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		failed_steps+=("$name")
		summary+=("$(printf '%-22s FAILED (status %d, %ds) see build-logs/%s.log' "$name" "$rc" $(($(date +%s) - t0)) "$name")")
	else
		summary+=("$(printf '%-22s ok (%ds)' "$name" $(($(date +%s) - t0)))")
	fi
	return "$rc"
}

# --- 1. Dependencies ----------------------------------------------------------

# One list of packages for the quick start and the tests: deploy/install-deps.sh.
install_deps() {
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "not a Debian-like system: install what deploy/install-deps.sh lists"
		return 0
	fi
	sh "$root/deploy/install-deps.sh" --test
}

check_tools() {
	local v
	v=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || v=0
	if [ "$v" -lt 18 ]; then
		echo "node >= 18 is needed for @huggingface/hub, found $(node --version 2>/dev/null || echo none)"
		return 1
	fi
	echo "node $(node --version), npm $(npm --version), $(curl --version | head -n 1 | cut -d' ' -f1-2), $(git --version)"
}

if [ "${HAVEN_SKIP_DEPS:-0}" != 1 ]; then
	step deps install_deps
fi
step tools check_tools

# --- 2. The JS client -----------------------------------------------------------

# The JS client test must run here: a missing package is a failure, not a skip.
export HAVEN_REQUIRE_JS=1
export HAVEN_JS_MODULES=$root/tests/js/node_modules
step npm-ci bash -c 'cd tests/js && npm ci --no-audit --no-fund --loglevel=warn'

# --- 3. Plain build -----------------------------------------------------------------

if [ -f "$root/config.status" ]; then
	echo "The source tree is configured in place (config.status exists);"
	echo "run 'make distclean' there first: the builds below are out of tree."
	echo "0 passed, 1 failed"
	exit 1
fi

configure_and_check() { # DIR CONFIGURE-ARGS...
	local dir=$1
	shift
	mkdir -p "$root/$dir" && cd "$root/$dir" || return 1
	# No stale results from an earlier run may be counted.
	rm -f test-suite.log tests/unit/*.log tests/unit/*.trs \
		tests/integration/*.log tests/integration/*.trs
	"$root/configure" "$@" &&
		make -j"$jobs" &&
		make -j"$jobs" check
	local rc=$?
	cd "$root" || return 1
	return $rc
}

step autogen ./autogen.sh
step check configure_and_check build
plain_rc=$?

# The integration scripts again, with every server speaking HTTPS and the
# clients trusting a throwaway CA (tests/integration/lib.sh, "TLS"). Run
# from their own folder so that both sets of results are counted; the
# binary is the plain build's.
tls_check() {
	local list
	list=$(sed -n 's/^[[:space:]]*\(tests\/integration\/t[0-9][^[:space:]]*\.sh\).*/\1/p' \
		"$root/tests/integration/include.am" | tr '\n' ' ')
	mkdir -p "$root/build-tls" && cd "$root/build-tls" || return 1
	rm -f test-suite.log tests/integration/*.log tests/integration/*.trs
	"$root/configure" -q &&
		HAVEN=$root/build/haven HAVEN_TEST_TLS=1 \
			make -j"$jobs" check-TESTS check_PROGRAMS= TESTS="$list"
	local rc=$?
	cd "$root" || return 1
	return $rc
}
tls_ran=0
if [ -x "$root/build/haven" ]; then
	tls_ran=1
	step check-tls tls_check
fi

# --- 4. Sanitizer build ----------------------------------------------------------------

if [ "${HAVEN_SKIP_SAN:-0}" != 1 ]; then
	step check-sanitizers configure_and_check build-san --enable-sanitizers
fi

# --- 5. distcheck -----------------------------------------------------------------------

if [ "${HAVEN_SKIP_DISTCHECK:-0}" != 1 ]; then
	if [ "$plain_rc" -eq 0 ]; then
		# VERBOSE: a failing test's log is printed (the folder is gone after)
		step distcheck bash -c "cd build && make -j$jobs distcheck VERBOSE=1"
	else
		failed_steps+=(distcheck)
		summary+=("$(printf '%-22s not run (the plain build failed)' distcheck)")
	fi
fi

# --- Summary -----------------------------------------------------------------------------

# count_build DIR: add the results of DIR's last `make check`. Unit tests
# count their own checks (their last line is "N passed, N failed");
# integration scripts count TAP results (.trs files).
count_build() {
	local dir=$1 p=0 f=0 s=0 log trs line np nf
	[ -d "$root/$dir/tests" ] || return 0
	for log in "$root/$dir"/tests/unit/*.log; do
		[ -f "$log" ] || continue
		line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
		if [ -n "$line" ]; then
			np=${line%% passed*}
			nf=${line#*, }
			nf=${nf%% failed}
			p=$((p + np))
			f=$((f + nf))
		else
			f=$((f + 1)) # crashed before its report
		fi
	done
	for trs in "$root/$dir"/tests/integration/*.trs; do
		[ -f "$trs" ] || continue
		local tp tf te ts
		tp=$(grep -Ec '^:test-result: (PASS|XFAIL)' "$trs")
		tf=$(grep -Ec '^:test-result: (FAIL|XPASS)' "$trs")
		te=$(grep -Ec '^:test-result: ERROR' "$trs")
		ts=$(grep -Ec '^:test-result: SKIP' "$trs")
		# A script that failed checks also exits non-zero (an ERROR):
		# count that only when no check failed.
		[ "$tf" -gt 0 ] && te=0
		p=$((p + tp))
		f=$((f + tf + te))
		s=$((s + ts))
	done
	summary+=("$(printf '%-22s %d passed, %d failed, %d skipped' "results $dir" "$p" "$f" "$s")")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

# count_log NAME: add the automake summary ("# PASS: N" ...) of a step log.
count_log() {
	local log=$logs/$1.log p f
	[ -f "$log" ] || return 0
	p=$(awk '/^# (PASS|XFAIL): +[0-9]+/ { s += $3 } END { print s + 0 }' "$log")
	f=$(awk '/^# (FAIL|XPASS|ERROR): +[0-9]+/ { s += $3 } END { print s + 0 }' "$log")
	summary+=("$(printf '%-22s %d passed, %d failed' "results $1" "$p" "$f")")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

count_build build
[ "$tls_ran" = 1 ] && count_build build-tls
[ "${HAVEN_SKIP_SAN:-0}" != 1 ] && count_build build-san
[ "${HAVEN_SKIP_DISTCHECK:-0}" != 1 ] && count_log distcheck

# A step that failed without a test result (a build error) is a failure too.
for s in "${failed_steps[@]+"${failed_steps[@]}"}"; do
	case $s in
	check | check-tls | check-sanitizers | distcheck) ;;
	*) total_fail=$((total_fail + 1)) ;;
	esac
done
if [ "${#failed_steps[@]}" -gt 0 ] && [ "$total_fail" -eq 0 ]; then
	total_fail=${#failed_steps[@]}
fi

say "Summary ($(($(date +%s) - start_all))s, logs in build-logs/)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed_steps[@]}" -gt 0 ]; then
	echo "  failed steps: ${failed_steps[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "${#failed_steps[@]}" -eq 0 ]
