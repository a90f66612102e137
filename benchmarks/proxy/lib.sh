# Shell helpers shared by the proxy benchmarks (run.sh, grpc.sh, tcp.sh); source it
# after setting tmp (a scratch directory it removes on exit). Every process
# a script starts in the background is appended to pids and stopped by PID
# on exit: TERM, a bounded wait, then KILL.

pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# need TOOL...: installs the missing ones from Debian (unless NO_INSTALL=1).
need() {
	local missing=() t
	for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "${NO_INSTALL:-}" = 1 ]; then
		log "missing: ${missing[*]} (NO_INSTALL=1)"; exit 1
	fi
	log "installing ${missing[*]} from Debian"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# free_port prints a TCP port on 127.0.0.1 nobody listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"; return
		fi
	done
}

# wait_port PORT NAME PID: until PORT accepts connections (10 s at most).
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		kill -0 "$3" 2>/dev/null || { log "$2 exited before listening"; return 1; }
		sleep 0.1
	done
	log "$2 did not listen on 127.0.0.1:$1 within 10 s"; return 1
}

# cpu_ticks PID: utime+stime of PID and its children, in clock ticks.
cpu_ticks() {
	local p s=0
	for p in "$1" $(pgrep -P "$1" || true); do
		s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$s"
}
hz=$(getconf CLK_TCK)

# round_order R: the targets in the order round R (from 1) runs them, the
# list rotated by R-1, so that over as many rounds as there are targets
# each target runs once in each position (right after direct, last, ...):
# a target that always runs in the same place takes that place's effect
# (a cache warmed or a CPU frequency left by the one before) for its own.
round_order() {
	local n=${#targets[@]} k i
	[ "$n" -gt 0 ] || return 0
	k=$((($1 - 1) % n))
	for ((i = 0; i < n; i++)); do printf '%s\n' "${targets[$(((k + i) % n))]}"; done
}

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# nginx_conf_head DIR: the top of an nginx.conf that keeps every file under
# DIR (pid, logs, temp paths), 2 workers, up to the opening of the http
# block; the caller writes the upstream and server blocks and the closing
# brace.
nginx_conf_head() {
	cat <<EOF
worker_processes 2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}

# print_table RESULTS LOADLABEL RATE ERRORS CPU CONC...: the medians over
# rounds of RESULTS, whose lines are "c<CONC> target round rate p50 p99
# errors cpu", one row per target and CONC, with the ratio and the added
# latency against the target "direct". The other words are column labels.
print_table() {
	local results=$1 first=$2 rate=$3 errs=$4 cpu_label=$5 c t cc d_rate d_p50 d_p99 v p50 p99 cpu bad
	shift 5
	col() { awk -v c="$1" -v t="$2" -v k="$3" '$1 == c && $2 == t {print $k}' "$results" | median; }
	printf '%-6s %-11s %12s %8s %10s %10s %10s %10s %8s %s\n' "$first" target "$rate" "x direct" "p50 us" "+p50 us" "p99 us" "+p99 us" "$errs" "$cpu_label"
	for c in "$@"; do
		cc=c$c
		d_rate=$(col "$cc" direct 4); d_p50=$(col "$cc" direct 5); d_p99=$(col "$cc" direct 6)
		for t in "${targets[@]}"; do
			v=$(col "$cc" "$t" 4); p50=$(col "$cc" "$t" 5); p99=$(col "$cc" "$t" 6); cpu=$(col "$cc" "$t" 8)
			bad=$(awk -v c="$cc" -v t="$t" '$1 == c && $2 == t {s += $7} END {print s + 0}' "$results")
			awk -v c="$c" -v t="$t" -v v="$v" -v d="$d_rate" -v p50="$p50" -v dp50="$d_p50" \
				-v p99="$p99" -v dp99="$d_p99" -v bad="$bad" -v cpu="$cpu" 'BEGIN {
				printf "%-6s %-11s %12.0f %7.2fx %10.0f %10.0f %10.0f %10.0f %8s %10.1f\n",
					c, t, v, v / d, p50, p50 - dp50, p99, p99 - dp99, bad, cpu }'
		done
	done
}

# start NAME PORT CMD...: runs CMD in the background (output in
# $tmp/NAME.log) and, once PORT listens, adds NAME to the script's targets
# with its port and PID (the arrays targets, port and tpid).
start() {
	local name=$1 p=$2
	shift 2
	"$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	if wait_port "$p" "$name" "$!"; then
		targets+=("$name"); port[$name]=$p; tpid[$name]=${pids[-1]}
	else
		log "$name: SKIPPED"; head -20 "$tmp/$name.log" >&2 || true
	fi
}

# build_ambassador: builds ./examples/ambassador into $tmp/ambassador; on
# failure it says so (the script then measures the others) and returns 1.
build_ambassador() {
	if (cd "$repo" && go build -o "$tmp/ambassador" ./examples/ambassador) >"$tmp/ambassador-build.log" 2>&1; then
		return 0
	fi
	log "ambassador: SKIPPED, 'go build ./examples/ambassador' failed:"
	head -5 "$tmp/ambassador-build.log" | sed 's/^/    /' >&2
	return 1
}
