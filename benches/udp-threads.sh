#!/usr/bin/env bash
# How UDP throughput and the CPU cost of a query move with `--udp-threads`: Roundel with
# 1 and with 2 workers (one SO_REUSEPORT socket each) on the anchor zone's static name,
# dnsperf from many source ports so the kernel spreads the flows over the sockets.
#
#   benches/udp-threads.sh [-d SECONDS] [-r REPEATS] [-t THREADS] [-o OUTFILE]
#
#   -d  seconds per dnsperf run (default 10)
#   -r  repeats, interleaved 1 2 1 2 ... (default 3)
#   -t  comma list of worker counts (default 1,2)
#   -o  also write the Markdown table to this file
#
# Placement: with N workers the server may use CPUs 0..N-1; dnsperf always runs on the
# last CPU. On a two-core machine the 2-worker server therefore shares a core with the
# client: the figure that stays meaningful is q/srv-CPU-s (answered queries per second
# of server CPU: does a worker get slower when another runs beside it?), not the QPS
# (capped by the one core dnsperf has). Every wait is bounded; everything listens on
# 127.0.0.1 only; the server is stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
[[ -d $bench ]] || bench=/work/shared/bench
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
duration=10 repeats=3 threads=1,2 outfile=""
while getopts "d:r:t:o:" opt; do
    case $opt in
        d) duration=$OPTARG ;;
        r) repeats=$OPTARG ;;
        t) threads=$OPTARG ;;
        o) outfile=$OPTARG ;;
        *) sed -n '2,18p' "$0"; exit 2 ;;
    esac
done
for tool in dnsperf dig python3 taskset nproc; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "no release binary at $bin (cargo build --release)" >&2; exit 1; }
cpus=$(nproc)
client_cpu=$((cpus - 1))

run_id="udp-threads-$(date -u +%Y%m%dT%H%M%SZ)-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)"
run=${BENCH_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run/zones"
"$bin" import "$bench/templates/lb.example.static.zone" --origin lb.example. > "$run/zones/lb.example.toml"
echo "static.lb.example A" > "$run/queries"
# Response rate limiting off: one client sending one name tens of thousands of times a
# second is what RRL exists to refuse (the reference servers run without it too).
printf '[rrl]\nenabled = false\n' > "$run/roundel.toml"
port=5398
server=""
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null || true; }
trap cleanup EXIT

start() { # $1 = workers
    local n=$1
    taskset -c "0-$((n > cpus ? cpus - 1 : n - 1))" "$bin" serve --config "$run/roundel.toml" --zones "$run/zones" \
        --listen "127.0.0.1:$port" --udp-threads "$n" --no-admin --no-watch \
        > "$run/server-$n.log" 2>&1 &
    server=$!
    for _ in $(seq 300); do
        kill -0 "$server" 2>/dev/null || { echo "roundel exited, see $run/server-$n.log" >&2; exit 1; }
        dig +tries=1 +time=1 -p "$port" @127.0.0.1 lb.example SOA 2>/dev/null | grep -q "status: NOERROR" && return
        sleep 0.1
    done
    echo "roundel not answering on $port" >&2; exit 1
}
stop() {
    kill "$server" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    server=""
}
cpu_ticks() { # utime+stime of the server process (all its threads), clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

hz=$(getconf CLK_TCK)
IFS=, read -r -a thread_list <<< "$threads"
declare -A qps eff
for r in $(seq "$repeats"); do
    for n in "${thread_list[@]}"; do
        start "$n"
        c0=$(cpu_ticks "$server")
        out="$run/dnsperf-$n-$r.txt"
        # -c 20: twenty client sockets, so twenty source ports for the kernel to spread.
        taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$run/queries" -l "$duration" \
            -c 20 -q 200 -T 1 -t 2 > "$out" 2>&1 || true
        c1=$(cpu_ticks "$server")
        stop
        done_q=$(awk '/Queries completed:/ {print $3}' "$out")
        q=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$out")
        e=$(python3 -c "print(f'{${done_q:-0} / max(($c1 - $c0) / $hz, 1e-9):.0f}')")
        qps[$n]+="${q:-0} " eff[$n]+="$e "
        echo "workers $n run $r: ${q:-0} q/s, $e q/srv-CPU-s" >&2
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo "### UDP workers (run $run_id)"
    echo
    echo "dnsperf -c 20 -q 200 -T 1, $duration s, static.lb.example A; $cpus CPUs; server on CPUs 0..N-1, dnsperf on CPU $client_cpu; medians of $repeats interleaved runs; load before: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "| workers | QPS | q/srv-CPU-s | vs 1 worker | runs (q/srv-CPU-s) |"
    echo "|---|---|---|---|---|"
    ref=$(echo "${eff[${thread_list[0]}]}" | median)
    for n in "${thread_list[@]}"; do
        m=$(echo "${eff[$n]}" | median)
        echo "| $n | $(echo "${qps[$n]}" | median) | $m | $(python3 -c "print(f'{$m / max($ref, 1):.2f}')") | ${eff[$n]}|"
    done
} | tee "$run/results.md"
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
