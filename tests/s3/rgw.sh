#!/bin/bash
# tests/s3/rgw.sh: a throw-away S3 object store for Haven's tests. It runs a
# one-node Ceph cluster (one monitor, one OSD, one RADOS Gateway) from
# Debian 12's own ceph packages, by hand (no systemd, no containers), with
# every file under one folder and every socket on 127.0.0.1.
#
#   rgw.sh start DIR   install the packages if missing, start the cluster
#                      in DIR (created; must be empty or an earlier run's),
#                      create an S3 user, wait until a signed request works,
#                      and print shell lines to eval:
#                        export HAVEN_S3_ENDPOINT=http://127.0.0.1:PORT
#                        export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
#                        export AWS_REGION=us-east-1
#   rgw.sh env DIR     print those lines again
#   rgw.sh stop DIR    stop the daemons started in DIR and remove DIR
#
# Exit status: 0 on success; 77 when the packages are missing and cannot be
# installed (not root, no package registry), which tests report as a skip;
# 1 on any other failure (the daemons' logs are kept in DIR/log then).
# Progress and errors go to stderr; only the export lines go to stdout.
#
# Settings (environment): RGW_TIMEOUT (seconds "start" may take, default
# 120), RGW_STORE (memstore, the default: objects in the OSD's memory; or
# bluestore: a sparse file in DIR), RGW_STORE_GB (capacity, default 4 for
# memstore and 20 for bluestore), RGW_INSTALL=0 (never run apt-get),
# RGW_KEEP=1 ("stop" keeps DIR and its logs).
#
# docs/s3.md explains the settings below and what RGW needs from clients.

set -u -o pipefail

# Debian's tools, not a shim earlier on PATH.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
OWNED=.haven-rgw
REGION=us-east-1
S3_USER=haven-test
DAEMONS="rgw:radosgw osd:ceph-osd mon:ceph-mon" # stop order
TIMEOUT=${RGW_TIMEOUT:-120}
STORE=${RGW_STORE:-memstore}

log() { printf 'rgw.sh: %s\n' "$*" >&2; }
fail() {
	log "error: $*"
	exit 1
}
skip() {
	log "skip: $*"
	exit 77
}
now_ms() { date +%s%3N; }
since() { # since T0_MS: seconds elapsed, one decimal
	local d=$(($(now_ms) - $1))
	printf '%d.%d' $((d / 1000)) $((d % 1000 / 100))
}

# --- Packages ---------------------------------------------------------------

have_packages() {
	command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null &&
		command -v radosgw >/dev/null && command -v radosgw-admin >/dev/null &&
		command -v ceph >/dev/null && command -v monmaptool >/dev/null &&
		command -v ceph-authtool >/dev/null && command -v curl >/dev/null
}

install_packages() {
	have_packages && return 0
	[ "${RGW_INSTALL:-1}" = 1 ] || skip "ceph packages missing (${PACKAGES[*]}) and RGW_INSTALL=0"
	[ "$(id -u)" = 0 ] || skip "ceph packages missing (${PACKAGES[*]}); run as root to install them"
	command -v apt-get >/dev/null || skip "ceph packages missing and there is no apt-get"
	log "installing ${PACKAGES[*]} (once per machine)"
	export DEBIAN_FRONTEND=noninteractive
	local opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=120)
	if ! timeout 300 apt-get install "${opts[@]}" "${PACKAGES[@]}" curl >&2; then
		timeout 120 apt-get update -q >&2 &&
			timeout 300 apt-get install "${opts[@]}" "${PACKAGES[@]}" curl >&2 ||
			skip "cannot install ${PACKAGES[*]} (no package registry?)"
	fi
	have_packages || skip "${PACKAGES[*]} installed but their commands are missing"
}

# --- Ports ------------------------------------------------------------------

# The local TCP ports in use (any state), one a line (decimal).
ports_in_use() {
	awk 'NR > 1 { split($2, a, ":"); print strtonum("0x" a[2]) }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -un
}

# free_range N: the first of N consecutive free ports, picked at random
# between 10000 and the kernel's ephemeral range (where outgoing
# connections take their ports), so that clusters side by side rarely meet.
free_range() {
	local n=$1 used p i ok lo=10000 hi
	hi=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ "${hi:-0}" -gt $((lo + 1000)) ] || hi=32767
	used=" $(ports_in_use | tr '\n' ' ') "
	for _ in $(seq 1 200); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo - n)))
		ok=1
		for i in $(seq 0 $((n - 1))); do
			case $used in *" $((p + i)) "*) ok=0 ;; esac
		done
		if [ "$ok" = 1 ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# --- Daemons ----------------------------------------------------------------

conf() { echo "$DIR/ceph.conf"; }
cephx() { timeout 30 ceph -c "$(conf)" --connect-timeout 20 "$@"; }

# pid_of NAME COMM: the pid of our daemon NAME if it is alive and really is
# COMM (a pid file can outlive its process, and the pid be reused).
pid_of() {
	local f=$DIR/run/$1.pid pid
	[ -s "$f" ] || return 1
	pid=$(cat "$f")
	[ -r "/proc/$pid/stat" ] || return 1
	[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
	echo "$pid"
}

log_tail() { # log_tail NAME: the end of a daemon's log, for error messages
	tail -n 5 "$DIR/log/$1.log" 2>/dev/null | sed 's/^/    /' >&2
}

# wait_until WHAT LIMIT DAEMON CMD...: retry CMD every 0.2 s until it
# succeeds, LIMIT seconds or the start's deadline pass, or DAEMON
# (NAME:COMM, or -) dies.
wait_until() {
	local what=$1 limit=$(($(now_ms) + $2 * 1000)) daemon=$3
	shift 3
	[ "$limit" -lt "$deadline" ] || limit=$deadline
	while ! "$@" >/dev/null 2>&1; do
		if [ "$daemon" != - ] && [ -s "$DIR/run/${daemon%%:*}.pid" ] &&
			! pid_of "${daemon%%:*}" "${daemon#*:}" >/dev/null; then
			log "${daemon%%:*} exited while waiting for $what:"
			log_tail "${daemon%%:*}"
			return 1
		fi
		if [ "$(now_ms)" -gt "$limit" ]; then
			log "timed out waiting for $what:"
			log_tail "${daemon%%:*}"
			return 1
		fi
		sleep 0.2
	done
}

write_conf() {
	local fsid=$1 bytes=$2
	cat >"$(conf)" <<EOF
# Written by Haven's tests/s3/rgw.sh: a one-node test cluster on loopback.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = mon
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
ms bind port min = $OSD_PORT
ms bind port max = $((OSD_PORT + 9))
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/\$name.keyring
run dir = $DIR/run
pid file = $DIR/run/\$id.pid
admin socket = $DIR/run/\$id.asok
log file = $DIR/log/\$id.log
crash dir = $DIR/crash
log to stderr = false
err to stderr = false
# one OSD: every pool keeps a single copy
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
# by default the monitor stops below 5% free disk
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $DIR/mon
keyring = $DIR/mon/keyring
# commit map changes every 0.1 s, not 1 s: the gateway's first start makes
# several pools, and this takes seconds off it
paxos propose interval = 0.1

[osd]
osd data = $DIR/osd
keyring = $DIR/osd/keyring
osd objectstore = $STORE
memstore device bytes = $bytes
bluestore block create = true
bluestore block size = $bytes
osd memory target = 1073741824

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
keyring = $DIR/rgw.keyring
# free deleted objects' data after 10 s, not 2 h (memstore holds it in RAM)
rgw gc obj min wait = 10
rgw gc processor period = 10
EOF
}

# The daemons' ids in pid files and logs: mon, osd (0) and rgw.
anon_answers() { curl -sf --max-time 3 -o /dev/null "http://127.0.0.1:$RGW_PORT/"; }
osd_is_up() {
	local s
	s=$(cephx osd stat -f json) && [[ $s == *'"num_up_osds":1'* ]]
}
# A SigV4-signed ListBuckets with the new keys. curl's signer does not add
# x-amz-content-sha256, which RGW requires, so it is given here (and signed).
signed_answers() {
	local out
	out=$(curl -sf --max-time 3 --aws-sigv4 "aws:amz:$REGION:s3" \
		--user "$ACCESS_KEY:$SECRET_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		"http://127.0.0.1:$RGW_PORT/") && [[ $out == *"<ID>$S3_USER</ID>"* ]]
}

rand_hex() { # rand_hex N
	head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c "1-$1"
}

# start_once: one attempt at a fresh cluster in DIR; 1 on failure.
start_once() {
	local t bytes fsid uuid key id
	case $STORE in
	memstore) bytes=$((${RGW_STORE_GB:-4} << 30)) ;;
	bluestore) bytes=$((${RGW_STORE_GB:-20} << 30)) ;;
	*) fail "RGW_STORE must be memstore or bluestore, not '$STORE'" ;;
	esac
	MON_PORT=$(free_range 1) && OSD_PORT=$(free_range 10) && RGW_PORT=$(free_range 1) ||
		{ log "no free loopback ports"; return 1; }
	[ "$MON_PORT" != "$RGW_PORT" ] || return 1
	mkdir -p "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/mon" "$DIR/osd" || return 1
	fsid=$(cat /proc/sys/kernel/random/uuid)
	write_conf "$fsid" "$bytes"

	t=$(now_ms)
	{ ceph-authtool "$DIR/mon.keyring" --create-keyring --gen-key -n mon. \
		--cap mon 'allow *' &&
		ceph-authtool "$DIR/client.admin.keyring" --create-keyring --gen-key \
			-n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' &&
		ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/client.admin.keyring"; } \
		>"$DIR/log/mon-mkfs.log" 2>&1 &&
		monmaptool --create --addv mon "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" \
			"$DIR/monmap" >>"$DIR/log/mon-mkfs.log" 2>&1 &&
		ceph-mon -c "$(conf)" -i mon --mkfs --monmap "$DIR/monmap" \
			--keyring "$DIR/mon.keyring" >>"$DIR/log/mon-mkfs.log" 2>&1 ||
		{ log "monitor setup failed:"; tail -n 5 "$DIR/log/mon-mkfs.log" >&2; return 1; }
	# Daemons fork into the background; their output goes to files so that
	# no pipe of the caller (a TAP reader) is held open.
	ceph-mon -c "$(conf)" -i mon </dev/null >>"$DIR/log/mon.out" 2>&1 ||
		{ log "ceph-mon did not start:"; log_tail mon; return 1; }
	wait_until "the monitor" 30 mon:ceph-mon cephx mon stat || return 1
	log "monitor up on 127.0.0.1:$MON_PORT ($(since "$t") s)"

	t=$(now_ms)
	uuid=$(cat /proc/sys/kernel/random/uuid)
	key=$(ceph-authtool --gen-print-key) || return 1
	printf '{"cephx_secret": "%s"}\n' "$key" >"$DIR/osd-secret.json"
	id=$(cephx osd new "$uuid" -i "$DIR/osd-secret.json") || { log "osd new failed"; return 1; }
	[ "$id" = 0 ] || { log "expected OSD id 0, got '$id'"; return 1; }
	# --mkfs --key does not write the keyring the OSD then reads
	printf '[osd.0]\n\tkey = %s\n' "$key" >"$DIR/osd/keyring"
	ceph-osd -c "$(conf)" -i 0 --mkfs --key "$key" --osd-uuid "$uuid" \
		>"$DIR/log/osd-mkfs.log" 2>&1 ||
		{ log "ceph-osd --mkfs failed:"; tail -n 5 "$DIR/log/osd-mkfs.log" >&2; return 1; }
	ceph-osd -c "$(conf)" -i 0 </dev/null >>"$DIR/log/osd.out" 2>&1 ||
		{ log "ceph-osd did not start:"; log_tail 0; return 1; }
	# the OSD's files are named by its id, 0
	ln -sf 0.pid "$DIR/run/osd.pid"
	ln -sf 0.log "$DIR/log/osd.log"
	wait_until "the OSD" 60 osd:ceph-osd osd_is_up || return 1
	log "OSD up ($STORE) ($(since "$t") s)"

	t=$(now_ms)
	cephx auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' \
		>"$DIR/rgw.keyring" || { log "cannot create the gateway's key"; return 1; }
	radosgw -c "$(conf)" -n client.rgw.a </dev/null >>"$DIR/log/rgw.out" 2>&1 ||
		{ log "radosgw did not start:"; log_tail rgw.a; return 1; }
	ln -sf rgw.a.pid "$DIR/run/rgw.pid"
	ln -sf rgw.a.log "$DIR/log/rgw.log"
	wait_until "the gateway on 127.0.0.1:$RGW_PORT" 40 rgw:radosgw anon_answers || return 1
	log "gateway up on 127.0.0.1:$RGW_PORT ($(since "$t") s)"

	ACCESS_KEY=$(rand_hex 20 | tr a-f A-F)
	SECRET_KEY=$(rand_hex 40)
	timeout 60 radosgw-admin -c "$(conf)" -n client.admin user create --uid="$S3_USER" \
		--display-name="Haven tests" --access-key="$ACCESS_KEY" \
		--secret-key="$SECRET_KEY" >"$DIR/log/user.json" 2>>"$DIR/log/user.err" ||
		{ log "cannot create the S3 user:"; tail -n 5 "$DIR/log/user.err" >&2; return 1; }
	wait_until "a signed request to succeed" 30 rgw:radosgw signed_answers || return 1
	(
		umask 077
		env_lines >"$DIR/env"
	)
}

env_lines() {
	cat <<EOF
export HAVEN_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
EOF
}

# stop_daemons QUIET: TERM our daemons one at a time (gateway first: one
# whose OSD is gone ignores TERM; an OSD whose monitor is gone waits),
# KILL what is still there after 20 s.
stop_daemons() {
	local d name comm pid i
	for d in $DAEMONS; do
		name=${d%%:*} comm=${d#*:}
		pid=$(pid_of "$name" "$comm") || continue
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 1 100); do
			pid_of "$name" "$comm" >/dev/null || break
			sleep 0.2
		done
		if pid_of "$name" "$comm" >/dev/null; then
			log "$comm ($pid) ignored TERM for 20 s: killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
		[ -n "$1" ] || log "stopped $comm ($pid)"
	done
}

owned_or_empty() {
	[ -e "$DIR/$OWNED" ] || [ -z "$(ls -A "$DIR" 2>/dev/null)" ]
}

do_start() {
	local t0 attempt
	install_packages
	if [ -e "$DIR" ]; then
		owned_or_empty || fail "$DIR is not empty and was not made by rgw.sh"
		stop_daemons quiet
		rm -rf "$DIR"
	fi
	# Unix admin sockets live in DIR/run: their paths must fit in 107 bytes.
	[ ${#DIR} -le 80 ] || fail "DIR is too long for Ceph's admin sockets (max 80 characters): $DIR"
	t0=$(now_ms)
	deadline=$((t0 + TIMEOUT * 1000))
	# A port taken between our choice and the daemon's bind is the likely
	# failure when tests run side by side: try once more with new ports.
	for attempt in 1 2; do
		mkdir -p "$DIR" && touch "$DIR/$OWNED" || fail "cannot create $DIR"
		if start_once; then
			log "ready in $(since "$t0") s: http://127.0.0.1:$RGW_PORT (signed request OK)"
			env_lines
			return 0
		fi
		stop_daemons quiet
		[ "$(now_ms)" -lt "$deadline" ] || break
		if [ "$attempt" = 1 ]; then
			log "start failed; retrying once with other ports"
			mv "$DIR/log" "$DIR.failed-log" 2>/dev/null
			rm -rf "$DIR"
		fi
	done
	rm -rf "$DIR.failed-log"
	fail "RGW did not start; logs in $DIR/log"
}

do_stop() {
	[ -d "$DIR" ] || return 0
	owned_or_empty || fail "$DIR was not made by rgw.sh; not touching it"
	stop_daemons "${QUIET:-}"
	if [ "${RGW_KEEP:-0}" = 1 ]; then
		log "kept $DIR"
	else
		rm -rf "$DIR" "$DIR.failed-log"
	fi
}

[ $# = 2 ] || {
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}
DIR=$(realpath -m "$2")
case $1 in
start) do_start ;;
stop) do_stop ;;
env)
	[ -s "$DIR/env" ] || fail "nothing running in $DIR"
	cat "$DIR/env"
	;;
*)
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
