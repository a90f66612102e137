#!/usr/bin/env bash
# The ambassador's tcp listener, side by side with haproxy in mode tcp, in
# front of one redis-server.
#
# Starts, all on 127.0.0.1 and in the foreground so every PID is ours:
#   redis       redis-server, persistence off ("direct")
#   ambassador  ./examples/ambassador, a tcp listener -> service cache
#               (protocol tcp, static [redis])
#   haproxy     mode tcp, one backend server, HAPROXY_THREADS threads
# then runs redis-benchmark -t ping,set,get -P 1 -c 32 -n N against direct /
# ambassador / haproxy, interleaved over ROUNDS rounds (each round starts
# one target later), and prints for each test (PING_INLINE, PING_MBULK,
# SET, GET) and target the ops/s, p50 and p99 (median over rounds) with
# the ratios to direct and to haproxy, and the CPU time the serving process
# (redis for direct, else the proxy) used per operation over the whole
# redis-benchmark run (utime+stime from /proc). The raw per-run lines are
# printed first.
#
# Environment: N (requests per test per run, default 100000), ROUNDS
# (default 3), HAPROXY_THREADS (default 1), AMBASSADOR_GOMAXPROCS (default:
# the ambassador's own, 1), NO_INSTALL=1 (never apt-get). Installs
# redis-server (with redis-benchmark) and haproxy from Debian when missing.
# Every process it started is stopped by PID on exit.
# Bounded: each redis-benchmark run is killed after RUN_TIMEOUT seconds
# (default 120), so the script takes at most about (3 + 3*ROUNDS) *
# RUN_TIMEOUT plus start-up; with the defaults (3 targets x 3 rounds x 4
# tests x 100000 requests) it took 8.7 min on 2 cores at load average ~25.
set -euo pipefail

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
HAPROXY_THREADS=${HAPROXY_THREADS:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
here=$(cd "$(dirname "$0")" && pwd)
bench_mod=$(cd "$here/.." && pwd)
repo=$(cd "$bench_mod/.." && pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

tmp=$(mktemp -d /tmp/outbound-tcp-bench.XXXXXX)
# shellcheck source=lib.sh
source "$here/lib.sh"

need redis-server haproxy
command -v redis-benchmark >/dev/null || need redis-tools

# --- redis ---------------------------------------------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp" --save "" \
	--appendonly no --daemonize no --protected-mode no --loglevel warning >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" redis "$!"

targets=(direct)
declare -A port tpid
port[direct]=$redis_port
tpid[direct]=${pids[0]}

# --- ambassador ----------------------------------------------------------------
amb_port=$(free_port)
amb_admin=$(free_port)
if build_ambassador; then
	cat >"$tmp/ambassador.yaml" <<EOF
admin: {address: 127.0.0.1:$amb_admin}
listeners:
  - address: 127.0.0.1:$amb_port
    protocol: tcp
    service: cache
services:
  cache:
    protocol: tcp
    discovery: {static: [127.0.0.1:$redis_port]}
EOF
	start ambassador "$amb_port" env ${AMBASSADOR_GOMAXPROCS:+GOMAXPROCS=$AMBASSADOR_GOMAXPROCS} \
		"$tmp/ambassador" -config "$tmp/ambassador.yaml" -access-log off
fi

# --- haproxy -------------------------------------------------------------------
haproxy_port=$(free_port)
cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread $HAPROXY_THREADS
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:$haproxy_port
    default_backend be
backend be
    server s1 127.0.0.1:$redis_port
EOF
start haproxy "$haproxy_port" haproxy -db -f "$tmp/haproxy.cfg"

# --- redis-benchmark -------------------------------------------------------------
tests=(PING_INLINE PING_MBULK SET GET)
results=$tmp/results.txt
: >"$results"

# run_bench TARGET REQUESTS ROUND: one redis-benchmark run; with a ROUND it
# appends "TEST target round ops/s p50_us p99_us cpu_us_per_op" per test.
run_bench() {
	local out c0 c1 cpu
	c0=$(cpu_ticks "${tpid[$1]}")
	if ! out=$(timeout "$RUN_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "${port[$1]}" \
		-t ping,set,get -P 1 -c 32 -n "$2" --csv 2>&1); then
		log "redis-benchmark failed against $1:"; log "$out"; return 1
	fi
	c1=$(cpu_ticks "${tpid[$1]}")
	[ -z "$3" ] && return 0
	cpu=$(awk -v a="$c0" -v b="$c1" -v n="$(($2 * ${#tests[@]}))" -v hz="$hz" \
		'BEGIN {printf "%.2f", (b - a) * 1e6 / hz / n}')
	# "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
	tr -d '"' <<<"$out" | awk -F, -v t="$1" -v r="$3" -v cpu="$cpu" \
		'$1 != "test" && NF >= 7 {printf "%s %s %s %s %.0f %.0f %s\n", $1, t, r, $2, $5 * 1000, $7 * 1000, cpu}' >>"$results"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "targets: ${targets[*]}; $ROUNDS rounds x $N requests per test"
for t in "${targets[@]}"; do run_bench "$t" 10000 ""; done # warm-up, not recorded
for r in $(seq "$ROUNDS"); do
	for t in $(round_order "$r"); do run_bench "$t" "$N" "$r"; done
	log "round $r done"
done

# --- table -------------------------------------------------------------------
col() { awk -v k="$1" -v t="$2" -v c="$3" '$1 == k && $2 == t {print $c}' "$results" | median; }
echo "# raw: test target round ops/s p50_us p99_us cpu_us_per_op"
cat "$results"
printf '\n%s\n' "redis-benchmark -t ping,set,get -P 1 -c 32 -n $N, $ROUNDS rounds (interleaved), median per cell; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); ambassador GOMAXPROCS ${AMBASSADOR_GOMAXPROCS:-1 (its default)}, haproxy nbthread $HAPROXY_THREADS; load average $load_start before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "cpu us/op: the serving process's utime+stime per operation (redis-server for direct, the proxy otherwise)"
printf '%-12s %-11s %10s %9s %10s %8s %8s %10s\n' test target "ops/s" "x direct" "x haproxy" "p50 us" "p99 us" "cpu us/op"
for k in "${tests[@]}"; do
	d=$(col "$k" direct 4); h=$(col "$k" haproxy 4)
	for t in "${targets[@]}"; do
		awk -v k="$k" -v t="$t" -v v="$(col "$k" "$t" 4)" -v d="$d" -v h="${h:-0}" \
			-v p50="$(col "$k" "$t" 5)" -v p99="$(col "$k" "$t" 6)" -v cpu="$(col "$k" "$t" 7)" 'BEGIN {
			hx = (h > 0) ? sprintf("%9.2fx", v / h) : sprintf("%10s", "-")
			printf "%-12s %-11s %10.0f %8.2fx %s %8.0f %8.0f %10.2f\n", k, t, v, v / d, hx, p50, p99, cpu }'
	done
done
