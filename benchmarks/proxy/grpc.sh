#!/usr/bin/env bash
# The ambassador's gRPC hop, side by side with nginx and haproxy.
#
# Starts, all on 127.0.0.1 and in the background with every PID recorded:
#   direct      benchmarks/proxy/grpcbackend (grpc health service)
#   ambassador  ./examples/ambassador, service protocol h2c, retry + breaker on
#               (gRPC on the native path)
#   amb-p2      the same binary and config with GOMAXPROCS=2 (its default: 1)
#   amb-rproxy  the same with host_header: preserve, which keeps gRPC on the
#               ReverseProxy path
#   floor       benchmarks/proxy/grpcfloor: a bare grpc-go pass-through proxy
#               (UnknownServiceHandler, ClientConn.NewStream, a codec that
#               does not decode; no policies, no telemetry, no access log):
#               grpc-go's own transport on both sides, the native path's floor
#   nginx       grpc_pass to an upstream with keepalive 64, 2 workers
#   haproxy     h2 on both sides, http-reuse always, 2 threads
# then runs benchmarks/proxy/grpcload (unary Health/Check over one h2c
# ClientConn, as an application would dial a localhost ambassador) against
# each, interleaved over ROUNDS rounds (each round starts one target
# later), with 1 and 32 calls in flight, and prints calls/s, p50 and p99
# (median over rounds) with the ratio to direct, and the CPU time the
# serving process used per call.
#
# Environment: DURATION (seconds per run, default 5), ROUNDS (default 3),
# AMBASSADOR_BEFORE (the path of another ambassador binary, e.g. built from
# main: measured as the target "before" with the native path's config, for
# a before/after in one interleaved run), AMBASSADOR_ARGS (extra flags of
# both ambassador binaries, e.g. "-access-log off"; default: the access log
# to the process's log file), ONLY (the targets to measure, space-separated,
# e.g. "direct ambassador before floor", with direct: the ratios are against
# it; default: all that started), RAW=1 (also print every run's line:
# conc target round calls/s p50 p99 errors cpu), NO_INSTALL=1 (never apt-get). Installs nginx and haproxy from Debian when
# missing. Bounded: about 2*targets*ROUNDS*(DURATION+1) s plus start-up.
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
here=$(cd "$(dirname "$0")" && pwd)
bench_mod=$(cd "$here/.." && pwd)
repo=$(cd "$bench_mod/.." && pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
tmp=$(mktemp -d /tmp/outbound-grpc-bench.XXXXXX)
# shellcheck source=lib.sh
source "$here/lib.sh"

need nginx haproxy

(cd "$bench_mod" && go build -o "$tmp/grpcbackend" ./proxy/grpcbackend && go build -o "$tmp/grpcload" ./proxy/grpcload &&
	go build -o "$tmp/grpcfloor" ./proxy/grpcfloor)
backend_port=$(free_port)
"$tmp/grpcbackend" -addr "127.0.0.1:$backend_port" >"$tmp/backend.log" 2>&1 &
pids+=($!)
wait_port "$backend_port" grpcbackend "$!"

targets=(direct)
declare -A port tpid
port[direct]=$backend_port
tpid[direct]=${pids[0]}

# --- ambassador ----------------------------------------------------------------
amb_port=$(free_port)
if build_ambassador; then
	cat >"$tmp/ambassador.yaml" <<EOF
admin: {address: 127.0.0.1:$(free_port)}
listeners: [{address: 127.0.0.1:$amb_port, service: backend}]
services:
  backend:
    discovery: {static: [127.0.0.1:$backend_port]}
    protocol: h2c
    retry: {}
    breaker: {}
EOF
	# shellcheck disable=SC2086 # AMBASSADOR_ARGS is a list of flags
	start ambassador "$amb_port" "$tmp/ambassador" -config "$tmp/ambassador.yaml" ${AMBASSADOR_ARGS:-}
	if [ -n "${AMBASSADOR_BEFORE:-}" ]; then
		before_port=$(free_port)
		sed -e "s/127.0.0.1:$amb_port/127.0.0.1:$before_port/" -e "s/^admin: .*/admin: {address: 127.0.0.1:$(free_port)}/" \
			"$tmp/ambassador.yaml" >"$tmp/before.yaml"
		# shellcheck disable=SC2086
		start before "$before_port" "$AMBASSADOR_BEFORE" -config "$tmp/before.yaml" ${AMBASSADOR_ARGS:-}
	fi
	# The same binary and config on two Ps (its default is one): nginx and
	# haproxy here run two workers and two threads.
	p2_port=$(free_port)
	sed -e "s/127.0.0.1:$amb_port/127.0.0.1:$p2_port/" -e "s/^admin: .*/admin: {address: 127.0.0.1:$(free_port)}/" \
		"$tmp/ambassador.yaml" >"$tmp/ambassador-p2.yaml"
	# shellcheck disable=SC2086
	start amb-p2 "$p2_port" env GOMAXPROCS=2 "$tmp/ambassador" -config "$tmp/ambassador-p2.yaml" ${AMBASSADOR_ARGS:-}
	# The same service with host_header: preserve, which keeps gRPC on the
	# ReverseProxy path: the native path's before/after in one run.
	rp_port=$(free_port)
	sed -e "s/127.0.0.1:$amb_port/127.0.0.1:$rp_port/" -e "s/^admin: .*/admin: {address: 127.0.0.1:$(free_port)}/" \
		-e 's/^    breaker: {}/    breaker: {}\n    host_header: preserve/' "$tmp/ambassador.yaml" >"$tmp/ambassador-rp.yaml"
	# shellcheck disable=SC2086
	start amb-rproxy "$rp_port" "$tmp/ambassador" -config "$tmp/ambassador-rp.yaml" ${AMBASSADOR_ARGS:-}
fi

# --- floor -----------------------------------------------------------------------
floor_port=$(free_port)
start floor "$floor_port" "$tmp/grpcfloor" -addr "127.0.0.1:$floor_port" -upstream "127.0.0.1:$backend_port"

# --- nginx ---------------------------------------------------------------------
nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
{
	nginx_conf_head "$tmp/nginx"
	cat <<EOF
    upstream grpcbackend {
        server 127.0.0.1:$backend_port;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$nginx_port http2;
        location / { grpc_pass grpc://grpcbackend; }
    }
}
EOF
} >"$tmp/nginx/nginx.conf"
start nginx "$nginx_port" nginx -g 'daemon off;' -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf"

# --- haproxy -------------------------------------------------------------------
haproxy_port=$(free_port)
cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$haproxy_port proto h2
    default_backend be
backend be
    server s1 127.0.0.1:$backend_port proto h2
EOF
start haproxy "$haproxy_port" haproxy -db -f "$tmp/haproxy.cfg"

# --- load ----------------------------------------------------------------------
results=$tmp/results.txt
: >"$results"

# run_load TARGET CONC SECONDS ROUND (ROUND empty: warm-up, not recorded)
run_load() {
	local out c0 c1 n cpu
	c0=$(cpu_ticks "${tpid[$1]}")
	if ! out=$("$tmp/grpcload" -addr "127.0.0.1:${port[$1]}" -c "$2" -d "${3}s" -warmup 300ms 2>&1); then
		log "grpcload failed against $1: $out"; return 1
	fi
	c1=$(cpu_ticks "${tpid[$1]}")
	n=$(sed -n 's/.*calls=\([0-9]*\).*/\1/p' <<<"$out")
	cpu=$(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" -v hz="$hz" 'BEGIN {if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print 0}')
	# c<conc> target round rps p50 p99 errors cpu
	[ -n "$4" ] && awk -v c="c$2" -v t="$1" -v r="$4" -v cpu="$cpu" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		print c, t, r, v["rps"], v["p50_us"], v["p99_us"], v["errors"], cpu }' <<<"$out" >>"$results"
	return 0
}

if [ -n "${ONLY:-}" ]; then
	kept=()
	for t in "${targets[@]}"; do
		case " $ONLY " in *" $t "*) kept+=("$t") ;; esac
	done
	targets=("${kept[@]}")
fi
concs=(1 32)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "targets: ${targets[*]}; $ROUNDS rounds x ${#concs[@]} configs x ${DURATION}s"
for t in "${targets[@]}"; do run_load "$t" 32 1 ""; done
for r in $(seq "$ROUNDS"); do
	for c in "${concs[@]}"; do
		for t in $(round_order "$r"); do run_load "$t" "$c" "$DURATION" "$r"; done
	done
	log "round $r done"
done

# --- table -------------------------------------------------------------------
printf '\n%s\n' "grpcload ${DURATION}s x $ROUNDS rounds (interleaved), median per cell; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); ambassador args '${AMBASSADOR_ARGS:-}'; load average $load_start before, $(cut -d' ' -f1-3 /proc/loadavg) after"
print_table "$results" calls "calls/s" errors "cpu us/call" "${concs[@]}"
if [ "${RAW:-}" = 1 ]; then
	printf '\nraw (conc target round calls/s p50us p99us errors cpu-us/call):\n'
	cat "$results"
fi
