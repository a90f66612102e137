#!/usr/bin/env bash
# The ambassador hop, side by side with nginx and haproxy.
#
# Starts, all on 127.0.0.1 and in the foreground so every PID is ours:
#   backend     benchmarks/proxy/backend (100-byte body, keep-alive)
#   ambassador  ./examples/ambassador, service -> backend, retry + breaker on
#   rproxy      benchmarks/proxy/bareproxy: a bare, tuned httputil.ReverseProxy
#               (pooled copy buffers; no policies, no telemetry), at the
#               ambassador's GOMAXPROCS and GOGC (its process defaults: 1, 400)
#   rproxy-obs  the same with otelhttp metrics on both sides and a slog
#               access log (bareproxy -observe): the ambassador's
#               observability without its policies
#   nginx       upstream keepalive 64, proxy_http_version 1.1, 2 workers
#   haproxy     http-reuse always, 2 threads
# then runs wrk against each target, interleaved over ROUNDS rounds (each
# round starts one target later: round_order), at -t1 -c1 and -t2 -c32, and
# prints requests/s, p50 and p99 (median over rounds) with the ratio to
# direct, and the CPU time the serving process used per request
# (utime+stime from /proc, children included: nginx's workers): on a shared
# machine req/s and p99 move with the neighbours' load, CPU per request
# much less.
#
# Environment: DURATION (wrk seconds per run, default 5), ROUNDS (default 3),
# AMBASSADOR_GOMAXPROCS (GOMAXPROCS of the ambassador only; default: the process default, 1),
# AMBASSADOR_BEFORE (the path of another ambassador binary, e.g. built from
# main: measured as the target "before" with the same config, for a
# before/after in one interleaved run),
# ONLY (the targets to measure, space-separated, e.g. "direct ambassador
# rproxy", with direct: the ratios are against it; default: all that
# started), RAW=1 (also print every run's line: conns target round req/s
# p50 p99 non-2xx cpu), NO_INSTALL=1 (never apt-get). Installs nginx, haproxy and wrk from Debian
# when missing. Every process it started is stopped by PID on exit.
# Bounded: about (2 + 2*targets*ROUNDS*DURATION) s plus start-up; < 5 min
# with the defaults.
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
here=$(cd "$(dirname "$0")" && pwd)
bench_mod=$(cd "$here/.." && pwd)
repo=$(cd "$bench_mod/.." && pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

tmp=$(mktemp -d /tmp/outbound-proxy-bench.XXXXXX)
# shellcheck source=lib.sh
source "$here/lib.sh"

need nginx haproxy wrk

# --- backend -----------------------------------------------------------------
(cd "$bench_mod" && go build -o "$tmp/backend" ./proxy/backend && go build -o "$tmp/bareproxy" ./proxy/bareproxy)
backend_port=$(free_port)
"$tmp/backend" -addr "127.0.0.1:$backend_port" >"$tmp/backend.log" 2>&1 &
pids+=($!)
wait_port "$backend_port" backend "$!"

targets=(direct)
declare -A port tpid
port[direct]=$backend_port
tpid[direct]=${pids[0]}

# --- ambassador ----------------------------------------------------------------
amb_port=$(free_port)
amb_admin=$(free_port)
if build_ambassador; then
	cat >"$tmp/ambassador.yaml" <<EOF
admin: {address: 127.0.0.1:$amb_admin}
listeners:
  - address: 127.0.0.1:$amb_port
    service: backend
services:
  backend:
    discovery: {static: [127.0.0.1:$backend_port]}
    retry: {}
    breaker: {}
EOF
	start ambassador "$amb_port" env ${AMBASSADOR_GOMAXPROCS:+GOMAXPROCS=$AMBASSADOR_GOMAXPROCS} "$tmp/ambassador" -config "$tmp/ambassador.yaml"
	if [ -n "${AMBASSADOR_BEFORE:-}" ]; then
		before_port=$(free_port)
		before_admin=$(free_port)
		sed "s/127.0.0.1:$amb_admin/127.0.0.1:$before_admin/; s/127.0.0.1:$amb_port/127.0.0.1:$before_port/" \
			"$tmp/ambassador.yaml" >"$tmp/before.yaml"
		start before "$before_port" env ${AMBASSADOR_GOMAXPROCS:+GOMAXPROCS=$AMBASSADOR_GOMAXPROCS} "$AMBASSADOR_BEFORE" -config "$tmp/before.yaml"
	fi
fi

# --- bare ReverseProxy ----------------------------------------------------------
rproxy_port=$(free_port)
start rproxy "$rproxy_port" env GOMAXPROCS="${AMBASSADOR_GOMAXPROCS:-1}" GOGC="${GOGC:-400}" "$tmp/bareproxy" -addr "127.0.0.1:$rproxy_port" -upstream "127.0.0.1:$backend_port"
# The same proxy with what a user would add to see what the ambassador
# shows: otelhttp on both sides and a slog access line per request.
obs_port=$(free_port)
start rproxy-obs "$obs_port" env GOMAXPROCS="${AMBASSADOR_GOMAXPROCS:-1}" GOGC="${GOGC:-400}" "$tmp/bareproxy" -addr "127.0.0.1:$obs_port" -upstream "127.0.0.1:$backend_port" -observe -access-log "$tmp/rproxy-obs-access.log"

# --- nginx ---------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
{
	nginx_conf_head "$tmp/nginx"
	cat <<EOF
    upstream backend {
        server 127.0.0.1:$backend_port;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$tmp/nginx/nginx.conf"
start nginx "$nginx_port" nginx -g "daemon off;" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf"

# --- haproxy -------------------------------------------------------------------
haproxy_port=$(free_port)
cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$haproxy_port
    default_backend be
backend be
    server s1 127.0.0.1:$backend_port
EOF
start haproxy "$haproxy_port" haproxy -db -f "$tmp/haproxy.cfg"

# --- wrk -----------------------------------------------------------------------
# to_us VALUE: wrk latency ("72.00us", "1.20ms", "1.00s") in microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
		else if (v ~ /s$/) print n * 1000000; else print n }'
}

confs=("1 1" "2 32") # threads connections
results=$tmp/results.txt
: >"$results"


# run_wrk TARGET THREADS CONNS SECONDS ROUND
run_wrk() {
	local out rps p50 p99 non2xx c0 c1 n cpu
	c0=$(cpu_ticks "${tpid[$1]}")
	out=$(wrk -t"$2" -c"$3" -d"$4"s --latency "http://127.0.0.1:${port[$1]}/" 2>&1)
	c1=$(cpu_ticks "${tpid[$1]}")
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	cpu=$(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" -v hz="$hz" 'BEGIN {if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print 0}')
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
	if [ -z "$rps" ]; then log "wrk failed against $1:"; log "$out"; return 1; fi
	[ -n "$5" ] && echo "c$3 $1 $5 $rps $p50 $p99 ${non2xx:-0} $cpu" >>"$results"
	return 0
}

if [ -n "${ONLY:-}" ]; then
	kept=()
	for t in "${targets[@]}"; do
		case " $ONLY " in *" $t "*) kept+=("$t") ;; esac
	done
	targets=("${kept[@]}")
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "targets: ${targets[*]}; $ROUNDS rounds x ${#confs[@]} configs x ${DURATION}s"
for t in "${targets[@]}"; do run_wrk "$t" 2 32 1 ""; done # warm-up, not recorded
for r in $(seq "$ROUNDS"); do
	for c in "${confs[@]}"; do
		set -- $c
		for t in $(round_order "$r"); do
			run_wrk "$t" "$1" "$2" "$DURATION" "$r"
		done
	done
	log "round $r done"
done

# --- table -------------------------------------------------------------------
printf '\n%s\n' "wrk ${DURATION}s x $ROUNDS rounds (interleaved), median per cell; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); ambassador GOMAXPROCS ${AMBASSADOR_GOMAXPROCS:-1 (its default)}; load average $load_start before, $(cut -d' ' -f1-3 /proc/loadavg) after"
print_table "$results" conns "req/s" non-2xx "cpu us/req" 1 32
if [ "${RAW:-}" = 1 ]; then
	printf '\nraw (conns target round req/s p50us p99us non-2xx cpu-us/req):\n'
	cat "$results"
fi
