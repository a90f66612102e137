#!/usr/bin/env bash
# HTTP/2 conformance of the ambassador's h2c listener, side by side with a
# plain net/http h2c server, measured by h2spec in the same run.
#
# Starts, all on 127.0.0.1 and in the foreground so every PID is ours:
#   plain       benchmarks/proxy/h2cserver (net/http, Protocols UnencryptedHTTP2, 200)
#   upstream    a second h2cserver, behind the ambassador
#   ambassador  ./examples/ambassador, one listener -> service (protocol h2c) -> upstream
# then runs h2spec (all 145 cases, default 2 s per-case timeout) against
# plain and against the ambassador's listener, and prints, for each, the
# pass count and the IDs of the failed and skipped cases (section/number,
# as `h2spec http2/8.1.2.2/1` would run one alone).
#
# Environment: NO_INSTALL=1 (never `go install` h2spec), H2SPEC_FLAGS (extra
# flags for both runs, e.g. "-o 5"). Installs h2spec with `go install
# github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible` when it is
# neither on PATH nor in $(go env GOPATH)/bin. Every process it started is
# stopped by PID on exit. Bounded: about 25 s (two h2spec runs of ~10 s)
# plus builds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench_mod=$(cd "$here/.." && pwd)
repo=$(cd "$bench_mod/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
PATH="$PATH:$(go env GOPATH)/bin"

tmp=$(mktemp -d /tmp/outbound-h2spec.XXXXXX)
# shellcheck source=lib.sh
source "$here/lib.sh"

if ! command -v h2spec >/dev/null; then
	if [ "${NO_INSTALL:-}" = 1 ]; then
		log "missing: h2spec (NO_INSTALL=1)"; exit 1
	fi
	log "installing h2spec v2.2.1 with go install"
	go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
fi

(cd "$bench_mod" && go build -o "$tmp/h2cserver" ./proxy/h2cserver)
targets=()
declare -A port tpid
# start_free NAME CMD...: start (lib.sh) on a free port, which replaces an
# argument PORT or a trailing :PORT in CMD; it tries up to 5 ports, since
# free_port only knows that nobody listens on one, and an outgoing
# connection may take it meanwhile.
start_free() {
	local name=$1 p a i
	shift
	for i in 1 2 3 4 5; do
		p=$(free_port)
		local cmd=()
		for a in "$@"; do
			if [ "$a" = PORT ]; then cmd+=("$p"); else cmd+=("${a/%:PORT/:$p}"); fi
		done
		start "$name" "$p" "${cmd[@]}" 2>>"$tmp/start.log"
		[ -n "${port[$name]:-}" ] && return 0
		log "$name: port $p failed (try $i of 5)"
	done
	return 1
}

start_free plain "$tmp/h2cserver" -addr 127.0.0.1:PORT
start_free upstream "$tmp/h2cserver" -addr 127.0.0.1:PORT || { log "upstream did not start"; exit 1; }
up_port=${port[upstream]}

if build_ambassador; then
	# run-ambassador PORT: writes the config for that listener port and
	# execs the ambassador (same PID, stopped by cleanup).
	cat >"$tmp/run-ambassador" <<SH
#!/bin/sh
cat >"$tmp/ambassador-\$1.yaml" <<YAML
admin: {address: 127.0.0.1:0}
listeners:
  - address: 127.0.0.1:\$1
    service: upstream
services:
  upstream:
    discovery: {static: [127.0.0.1:$up_port]}
    protocol: h2c
YAML
exec "$tmp/ambassador" -config "$tmp/ambassador-\$1.yaml"
SH
	chmod +x "$tmp/run-ambassador"
	start_free ambassador "$tmp/run-ambassador" PORT || true
fi

# report NAME: pass count and failed/skipped case IDs from NAME's JUnit file.
report() {
	local name=$1 summary
	summary=$(sed 's/\x1b\[[0-9;]*m//g' "$tmp/$name.out" | grep -E '^[0-9]+ tests, ' | tail -1)
	printf '%-11s %s\n' "$name" "${summary:-no summary (see $tmp/$name.out)}"
	awk -v name="$name" '
		/<testsuite / { n = 0 }
		/<testcase / {
			match($0, /package="[^"]*"/); pkg = substr($0, RSTART + 9, RLENGTH - 10)
			n++; id = pkg "/" n
			match($0, /classname="[^"]*"/); title = substr($0, RSTART + 11, RLENGTH - 12); gsub(/&#34;/, "\"", title)
		}
		/<failure|<error/ { printf "%-11s   failed  %-16s %s\n", "", id, title }
		/<skipped/ { printf "%-11s   skipped %-16s %s\n", "", id, title }
	' "$tmp/$name.xml"
}

for t in "${targets[@]}"; do
	[ "$t" = upstream ] && continue
	log "h2spec against $t (127.0.0.1:${port[$t]})"
	# h2spec exits 1 when a case fails: that is a result, not an error here.
	# shellcheck disable=SC2086
	h2spec -h 127.0.0.1 -p "${port[$t]}" -j "$tmp/$t.xml" ${H2SPEC_FLAGS:-} >"$tmp/$t.out" 2>&1 || true
done
for t in "${targets[@]}"; do
	[ "$t" = upstream ] || report "$t"
done
