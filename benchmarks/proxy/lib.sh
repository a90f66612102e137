# Shell helpers shared by the proxy benchmarks (run.sh, grpc.sh); source it
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

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
