#!/usr/bin/env bash
# Benchmarks the Meshgress gateway (mesh-master's embedded gateway) against nginx as a reverse proxy,
# side by side in the same run, on loopback. See bench/README.md.
#
# Environment (all optional):
#   DURATION=10        seconds of each measured wrk run
#   ROUNDS=3           rounds; each round measures every proxy once, interleaved
#   WARMUP=2           seconds of unmeasured load before each measured run
#   CONNECTIONS=64     wrk connections (-c); THREADS=1 wrk threads (-t)
#   PROXIES="nginx meshgress"   which proxies to measure, in round order
#   BACKEND=nginx      nginx (a second nginx answering "hello world") or mirror (the echo backend)
#   PROXY_CPU=0 LOAD_CPU=1 BACKEND_CPU=$LOAD_CPU   cores for the proxy, for wrk, for the backend
#   BUILD=1            0 skips `cargo build --release`
#   CARGO_TARGET_DIR   default $HOME/.cache/meshgress-target (release binaries are taken from there)
#   MESHGRESS_LOG=warn RUST_LOG of mesh-master during the run
#   KEEP=0             1 keeps the work directory (configs, logs, raw wrk output, results.csv)
#   OUT=               also copy results.csv to this path
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
PROXIES=${PROXIES:-nginx meshgress}
BACKEND=${BACKEND:-nginx}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-$LOAD_CPU}
BUILD=${BUILD:-1}
KEEP=${KEEP:-0}
OUT=${OUT:-}
MESHGRESS_LOG=${MESHGRESS_LOG:-warn}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/meshgress-target}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$CARGO_TARGET_DIR/release

log() { printf '%s\n' "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

for v in DURATION ROUNDS WARMUP CONNECTIONS THREADS PROXY_CPU LOAD_CPU BACKEND_CPU; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
((DURATION >= 1 && ROUNDS >= 1)) || die "DURATION and ROUNDS must be at least 1"
for p in $PROXIES; do
    [[ $p == nginx || $p == meshgress ]] || die "unknown proxy '$p' in PROXIES (nginx, meshgress)"
done
[[ $BACKEND == nginx || $BACKEND == mirror ]] || die "BACKEND must be nginx or mirror"
wants() { [[ " $PROXIES " == *" $1 "* ]]; }

# ---------------------------------------------------------------- tools
install_missing() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v getconf >/dev/null || missing+=(libc-bin)
    command -v curl >/dev/null || missing+=(curl)
    if wants nginx || [[ $BACKEND == nginx ]]; then
        command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    fi
    ((${#missing[@]} == 0)) && return
    log "installing ${missing[*]}"
    [[ $(id -u) == 0 ]] || die "missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) or run as root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
        die "apt-get install ${missing[*]} failed"
}
install_missing
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
CLK_TCK=$(getconf CLK_TCK)
CPUS=$(nproc)
for c in "$PROXY_CPU" "$LOAD_CPU" "$BACKEND_CPU"; do
    ((c < CPUS)) || die "core $c does not exist (this machine has $CPUS); set PROXY_CPU, LOAD_CPU, BACKEND_CPU"
done
((PROXY_CPU != LOAD_CPU && PROXY_CPU != BACKEND_CPU)) ||
    log "warning: the proxy shares a core with the load generator or the backend; numbers will be skewed"

needs_build=0
if wants meshgress || [[ $BACKEND == mirror ]]; then needs_build=1; fi
if ((needs_build)) && [[ $BUILD == 1 ]]; then
    log "building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO" && cargo build --release -q -p mesh-master -p meshctl -p meshgress-tests) ||
        die "cargo build failed"
fi
if ((needs_build)); then
    for b in mesh-master meshctl mirror; do
        [[ -x $BIN/$b ]] || die "$BIN/$b is missing; build it or set BUILD=1"
    done
fi

# ---------------------------------------------------------------- process bookkeeping
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meshgress-bench.XXXXXX")
chmod 755 "$WORK" # nginx workers run as an unprivileged user
PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

USED_PORTS=" "
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 40000))
        [[ $USED_PORTS == *" $port "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            USED_PORTS+="$port "
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

# Polls until URL answers 200 with exactly BODY (or any body when BODY is empty); TIMEOUT seconds.
wait_http() {
    local url=$1 body=$2 timeout=$3 code="" got=""
    local deadline=$((SECONDS + timeout)) file=$WORK/probe.body
    while ((SECONDS < deadline)); do
        rm -f "$file"
        code=$(curl -s -m 2 -o "$file" -w '%{http_code}' "$url" 2>/dev/null) || code=""
        got=$(head -c 300 "$file" 2>/dev/null || true)
        if [[ $code == 200 && (-z $body || $got == "$body") ]]; then return 0; fi
        sleep 0.2
    done
    # shellcheck disable=SC2016 # the quotes are literal, $body expands
    log "$url never answered 200${body:+ with '$body'}; last answer: ${code:-none} ${got}"
    return 1
}

# The pid and its direct children (an nginx master and its workers; mesh-master's threads are in its own stat).
proc_tree() {
    local pid=$1 f out=$1
    for f in /proc/"$pid"/task/*/children; do
        [[ -r $f ]] && out+=" $(cat "$f" 2>/dev/null || true)"
    done
    echo "$out"
}

# utime+stime, in clock ticks, summed over the given pids.
cpu_ticks() {
    local total=0 pid stat rest
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }            # fields from 3 (state) on; comm may contain spaces
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12])) # fields 14 and 15
    done
    echo "$total"
}

# ---------------------------------------------------------------- nginx
nginx_common() { # prefix dir
    cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; multi_accept on; }
EOF
}

nginx_http_common() { # prefix dir
    cat <<EOF
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
EOF
}

start_nginx() { # name cpu conf -> sets NGINX_PID
    local name=$1 cpu=$2 conf=$3 dir=$WORK/$1
    "$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$conf" >"$dir/test.log" 2>&1 ||
        { cat "$dir/test.log" >&2; die "nginx config $conf is invalid"; }
    taskset -c "$cpu" "$NGINX" -p "$dir" -e "$dir/error.log" -c "$conf" >>"$dir/stdout.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    log "$name: nginx pid $NGINX_PID on core $cpu"
}

start_backend() {
    BACKEND_PORT=$(free_port)
    if [[ $BACKEND == mirror ]]; then
        mkdir -p "$WORK/backend"
        taskset -c "$BACKEND_CPU" "$BIN/mirror" --listen "127.0.0.1:$BACKEND_PORT" --quiet \
            >"$WORK/backend/stdout.log" 2>&1 &
        PIDS+=("$!")
        EXPECTED_BODY=""
        log "backend: mirror pid $! on 127.0.0.1:$BACKEND_PORT, core $BACKEND_CPU"
    else
        local dir=$WORK/backend
        mkdir -p "$dir"
        {
            nginx_common "$dir"
            echo "http {"
            nginx_http_common "$dir"
            cat <<EOF
    server {
        listen 127.0.0.1:$BACKEND_PORT reuseport backlog=4096;
        location / { default_type text/plain; return 200 "hello world\n"; }
    }
}
EOF
        } >"$dir/nginx.conf"
        start_nginx backend "$BACKEND_CPU" "$dir/nginx.conf"
        EXPECTED_BODY="hello world"
    fi
    wait_http "http://127.0.0.1:$BACKEND_PORT/" "$EXPECTED_BODY" 15 || die "backend did not start"
}

start_nginx_proxy() {
    local dir=$WORK/nginx
    NGINX_PORT=$(free_port)
    mkdir -p "$dir"
    {
        nginx_common "$dir"
        echo "http {"
        nginx_http_common "$dir"
        cat <<EOF
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 75s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT reuseport backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$dir/nginx.conf"
    start_nginx nginx "$PROXY_CPU" "$dir/nginx.conf"
    NGINX_PROXY_PID=$NGINX_PID
    wait_http "http://127.0.0.1:$NGINX_PORT/" "$EXPECTED_BODY" 15 || die "nginx proxy did not start"
}

# ---------------------------------------------------------------- meshgress
start_meshgress() {
    local dir=$WORK/meshgress admin peer deadline out
    mkdir -p "$dir/data"
    admin=$(free_port)
    peer=$(free_port)
    MESHGRESS_PORT=$(free_port)
    RUST_LOG=$MESHGRESS_LOG taskset -c "$PROXY_CPU" "$BIN/mesh-master" --data-dir "$dir/data" \
        --listen "127.0.0.1:$admin" --peer-listen "127.0.0.1:$peer" >"$dir/master.log" 2>&1 &
    MESHGRESS_PID=$!
    PIDS+=("$MESHGRESS_PID")
    log "meshgress: mesh-master pid $MESHGRESS_PID on core $PROXY_CPU (admin 127.0.0.1:$admin)"
    cat >"$dir/objects.yaml" <<EOF
kind: HTTPServer
name: bench-server
port: $MESHGRESS_PORT
keepAlive: true
https: false
rules:
  - paths:
    - pathPrefix: /
      backend: bench-pipeline
---
name: bench-pipeline
kind: HTTPPipeline
flow:
  - filter: proxy
filters:
  - name: proxy
    kind: Proxy
    mainPool:
      servers:
      - url: http://127.0.0.1:$BACKEND_PORT
      loadBalance:
        policy: roundRobin
EOF
    # apply is idempotent: retry while the master starts and elects itself.
    deadline=$((SECONDS + 60))
    until out=$("$BIN/meshctl" --server "127.0.0.1:$admin" --timeout 5 object apply -f "$dir/objects.yaml" 2>&1); do
        kill -0 "$MESHGRESS_PID" 2>/dev/null || { tail -n 30 "$dir/master.log" >&2; die "mesh-master exited"; }
        ((SECONDS < deadline)) || { log "$out"; tail -n 30 "$dir/master.log" >&2; die "could not create the bench objects"; }
        sleep 0.5
    done
    wait_http "http://127.0.0.1:$MESHGRESS_PORT/" "$EXPECTED_BODY" 30 ||
        { tail -n 30 "$dir/master.log" >&2; die "the meshgress gateway did not start serving (PROXIES=nginx measures nginx alone)"; }
}

# ---------------------------------------------------------------- measuring
# wrk latency value (e.g. 512.00us, 1.20ms, 2.00s, 1.00m) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        else if (u == "h") n *= 3600000; else if (u != "ms") { print "nan"; exit }
        printf "%.3f", n }'
}

# Runs wrk against PORT for the proxy NAME whose processes are PIDS...; appends a CSV row.
measure() { # round name port pid...
    local round=$1 name=$2 port=$3
    shift 3
    local url="http://127.0.0.1:$port/" raw="$WORK/wrk-$name-$round.txt"
    local pids before after rps p50 p99 reqs non2xx sockerr cpu
    if ((WARMUP > 0)); then
        taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
    fi
    pids=$(proc_tree "$@")
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$raw" 2>&1 ||
        { cat "$raw" >&2; die "wrk failed against $name"; }
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$raw")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$raw")")
    reqs=$(awk '/ requests in / {print $1}' "$raw")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$raw")
    sockerr=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$raw")
    [[ -n $rps && -n $reqs ]] || { cat "$raw" >&2; die "cannot parse wrk output for $name"; }
    cpu=$(awk -v d=$((after - before)) -v t="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", (n > 0 ? d * 1e6 / t / n : 0) }')
    echo "$round,$name,$rps,$p50,$p99,$cpu,$reqs,$((${non2xx:-0} + ${sockerr:-0}))" >>"$WORK/results.csv"
}

print_round() { # round
    printf '\nround %s (%ss, %s connections, %s thread)\n' "$1" "$DURATION" "$CONNECTIONS" "$THREADS"
    printf '%-10s %12s %9s %9s %12s %10s %7s\n' proxy req/s p50-ms p99-ms cpu-us/req requests errors
    awk -F, -v r="$1" '$1 == r { printf "%-10s %12.1f %9.3f %9.3f %12.2f %10d %7d\n", $2, $3, $4, $5, $6, $7, $8 }' \
        "$WORK/results.csv"
    if awk -F, -v r="$1" '$1 == r && $8 > 0 { bad = 1 } END { exit !bad }' "$WORK/results.csv"; then
        log "warning: errors or non-2xx answers in round $1; see KEEP=1 raw output"
    fi
}

median() { # proxy column -> median of that column over rounds
    awk -F, -v p="$1" -v c="$2" '$2 == p { print $c }' "$WORK/results.csv" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else printf "%.6f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

ratio() { # column -> median(meshgress) / median(nginx)
    awk -v a="$(median meshgress "$1")" -v b="$(median nginx "$1")" \
        'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "n/a" }'
}

print_summary() {
    local p
    printf '\nsummary: median of %s rounds\n' "$ROUNDS"
    printf '%-10s %12s %9s %9s %12s\n' proxy req/s p50-ms p99-ms cpu-us/req
    for p in $PROXIES; do
        printf '%-10s %12.1f %9.3f %9.3f %12.2f\n' "$p" "$(median "$p" 3)" "$(median "$p" 4)" "$(median "$p" 5)" "$(median "$p" 6)"
    done
    if wants nginx && wants meshgress; then
        printf '%-10s %12s %9s %9s %12s\n' "mg/nginx" "$(ratio 3)" "$(ratio 4)" "$(ratio 5)" "$(ratio 6)"
        printf '(meshgress / nginx; req/s: higher is better; latency and CPU per request: lower is better)\n'
    fi
}

# ---------------------------------------------------------------- run
log "work directory $WORK; proxy on core $PROXY_CPU, wrk on core $LOAD_CPU, backend on core $BACKEND_CPU"
echo "round,proxy,rps,p50_ms,p99_ms,cpu_us_per_req,requests,errors" >"$WORK/results.csv"
start_backend
if ((WARMUP > 0)); then
    taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "http://127.0.0.1:$BACKEND_PORT/" >/dev/null 2>&1 || true
fi
taskset -c "$LOAD_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$BACKEND_PORT/" >"$WORK/wrk-direct.txt" 2>&1 || true
log "backend alone (no proxy): $(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-direct.txt") req/s"

if wants nginx; then start_nginx_proxy; fi
if wants meshgress; then start_meshgress; fi

for round in $(seq "$ROUNDS"); do
    for p in $PROXIES; do
        case $p in
        nginx) measure "$round" nginx "$NGINX_PORT" "$NGINX_PROXY_PID" ;;
        meshgress) measure "$round" meshgress "$MESHGRESS_PORT" "$MESHGRESS_PID" ;;
        esac
    done
    print_round "$round"
done
print_summary
if [[ -n $OUT ]]; then cp "$WORK/results.csv" "$OUT" && log "results written to $OUT"; fi
