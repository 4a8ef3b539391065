#!/usr/bin/env bash
# Cost as checks grow: Roundel checking NODES nodes over HTTP every second, against a few
# efficient local backends (benches/healthd.c), pointed at with check_addr / check_host.
#
#   benches/health-scale.sh [-n NODES] [-i INTERVAL] [-T TIMEOUT] [-t SECONDS] [-o OUTFILE] [-p] [-r]
#
#   -n  nodes (default 10000), in pools of 50; each node has its own check target
#       (check_host differs), so each is one probe: NODES checks per interval
#   -i  check interval (default 1s)
#   -T  check timeout (default 500ms; must be shorter than the interval)
#   -t  seconds measured (default 30)
#   -o  also write the Markdown table to this file
#   -p  also profile Roundel over the window (`perf record -e cpu-clock -g`, Debian
#       linux-perf) and split its CPU into user space, its own kernel work, and the
#       receive processing of the packets it sends (see below)
#   -s  also count Roundel's system calls over the window (`perf stat`, tracepoints
#       raw_syscalls:sys_enter, syscalls:sys_enter_connect and _close), per check answered
#       (the UDP worker's few calls for the 1000 q/s latency probe are included)
#   -r  checks with `reuse_connection = true`, against backends that keep connections
#       (healthd ... keep); the run id ends in -reuse. Roundel keeps at most its probe
#       descriptor reserve minus the checks in flight (printed); the rest connect per check
#
# Roundel runs pinned to CPU 0 with one UDP worker; the four backends (127.0.0.51-54:18080)
# and dnsperf run on CPU 1. After every pool answers (first checks done) it measures, over
# the window: Roundel's CPU (utime+stime, all threads, and per thread name), RSS, the
# checks answered by the backends over the window (they count them), and answer latency
# of a pool name at 1000 q/s (dnsperf -v: p99 and slowest) during the checks.
#
# Why -p splits out receive processing: on loopback a packet is received (IP, TCP, the
# listener's SYN queue, the new connection, waking the reader) in the context of the
# task that sent it, so the backends' half of every handshake, request and close is
# charged to Roundel. Against backends on other hosts that work runs on their CPUs. A
# sample whose kernel stack passes through the receive path (process_backlog,
# __netif_receive_skb, ip_rcv, ipv6_rcv) is counted as such.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
nodes=10000 interval=1s timeout=500ms seconds=30 outfile="" profile="" reuse="" syscalls=""
while getopts "n:i:T:t:o:prs" opt; do
    case $opt in
        n) nodes=$OPTARG ;;
        i) interval=$OPTARG ;;
        T) timeout=$OPTARG ;;
        t) seconds=$OPTARG ;;
        o) outfile=$OPTARG ;;
        p) profile=1 ;;
        r) reuse=1 ;;
        s) syscalls=1 ;;
        *) sed -n '2,35p' "$0"; exit 2 ;;
    esac
done
for tool in dnsperf dig python3 taskset gcc; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "no Roundel binary at $bin" >&2; exit 1; }

run_id="health-scale-$nodes-$(date -u +%Y%m%dT%H%M%SZ)-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)${reuse:+-reuse}"
run=${HEALTH_SCALE_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run/zones"
port=5396 bport=18080
backends=(127.0.0.51 127.0.0.52 127.0.0.53 127.0.0.54)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

gcc -O2 -o "$run/healthd" "$here/benches/healthd.c"
for a in "${backends[@]}"; do
    taskset -c 1 "$run/healthd" "$a" "$bport" ${reuse:+keep} > "$run/healthd.$a" &
    pids+=($!)
done

python3 "$here/benches/lib/health-zone.py" "$nodes" \
    "http = { port = $bport, path = \"/health\"${reuse:+, reuse_connection = true} }
interval = \"$interval\"
timeout = \"$timeout\"" "${backends[@]}" > "$run/zones/hc.test.toml"

# More probes than the default cap ([health] max_probes = 4096); the latency probe
# (dnsperf, 1000 q/s of one name from 127.0.0.1) exempt from response rate limiting.
printf '[health]\nmax_probes = %d\n[rrl]\nexempt = ["127.0.0.0/8"]\n' \
    $((nodes > 4096 ? nodes : 4096)) > "$run/server.toml"
t0=$(date +%s.%N)
taskset -c 0 "$bin" serve --config "$run/server.toml" --zones "$run/zones" --listen "127.0.0.1:$port" --udp-threads 1 --no-admin \
    > "$run/server.log" 2>&1 &
spid=$!
pids+=("$spid")
ready=""
for _ in $(seq 600); do
    kill -0 "$spid" 2>/dev/null || { echo "roundel exited, see $run/server.log" >&2; exit 1; }
    if [[ $(dig +short +tries=1 +time=1 -p "$port" @127.0.0.1 p0.hc.test A | grep -c '^[0-9]') -ge 1 ]]; then
        ready=1; break
    fi
    sleep 0.1
done
[[ -n $ready ]] || { echo "pools never answered" >&2; exit 1; }
startup=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
sleep 3 # let the probes spread over the interval

threads() { # "name ticks" per thread of $spid
    for t in /proc/"$spid"/task/*; do
        awk '{sub(/^.*\) /, ""); print $12 + $13}' "$t/stat" | sed "s|^|$(tr ' ' '_' < "$t/comm") |"
    done
}
answered() { # requests answered by all backends so far (each prints its count on SIGUSR1)
    local before=() total=0 i
    for i in "${!backends[@]}"; do before[i]=$(wc -l < "$run/healthd.${backends[i]}"); done
    for i in "${!backends[@]}"; do kill -USR1 "${pids[i]}"; done
    for i in "${!backends[@]}"; do
        for _ in $(seq 200); do
            (( $(wc -l < "$run/healthd.${backends[i]}") > before[i] )) && break
            sleep 0.01
        done
        (( $(wc -l < "$run/healthd.${backends[i]}") > before[i] )) ||
            { echo "backend ${backends[i]} did not report its count" >&2; exit 1; }
        total=$((total + $(tail -n 1 "$run/healthd.${backends[i]}")))
    done
    echo "$total"
}
a0=$(answered)
threads > "$run/threads.0"
c0=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' /proc/"$spid"/stat)
s0=$(awk '{sub(/^.*\) /, ""); print $13}' /proc/"$spid"/stat)
echo "$(( nodes > 0 ? nodes / 50 - 1 : 0 ))" > /dev/null
echo "p7.hc.test A" > "$run/queries"
if [[ -n $profile ]]; then
    command -v perf >/dev/null || { echo "missing: perf (Debian linux-perf)" >&2; exit 1; }
    # stops by itself after the window (the `sleep` it waits on)
    perf record -q -e cpu-clock -F 499 -g -p "$spid" -o "$run/perf.data" -- sleep "$seconds" \
        > "$run/perf.log" 2>&1 &
    perf_pid=$!
fi
if [[ -n $syscalls ]]; then
    command -v perf >/dev/null || { echo "missing: perf (Debian linux-perf)" >&2; exit 1; }
    perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_connect,syscalls:sys_enter_close \
        -p "$spid" -o "$run/syscalls.csv" -- sleep "$seconds" > /dev/null 2>&1 &
    stat_pid=$!
fi
taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/queries" -l "$seconds" -Q 1000 -c 1 -T 1 -t 5 -v \
    > "$run/dnsperf.txt" 2>&1 || true
c1=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' /proc/"$spid"/stat)
s1=$(awk '{sub(/^.*\) /, ""); print $13}' /proc/"$spid"/stat)
threads > "$run/threads.1"
# TCP sockets in TIME_WAIT on the machine (either side of a check that closed first keeps one)
time_wait=$(ss -Htan state time-wait | wc -l)
a1=$(answered)
split=""
if [[ -n $profile ]]; then
    for _ in $(seq 100); do kill -0 "$perf_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$perf_pid" 2>/dev/null && { kill -TERM "$perf_pid"; echo "perf did not stop" >&2; exit 1; }
    wait "$perf_pid" 2>/dev/null || true
    perf script -i "$run/perf.data" -F ip,sym > "$run/perf.txt" 2>/dev/null
    split=$(python3 "$here/benches/lib/rx-split.py" "$run/perf.txt")
fi
if [[ -n $syscalls ]]; then
    for _ in $(seq 100); do kill -0 "$stat_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$stat_pid" 2>/dev/null && { kill -TERM "$stat_pid"; echo "perf stat did not stop" >&2; exit 1; }
    wait "$stat_pid" 2>/dev/null || true
fi
checks_per_s=$(( (a1 - a0) / seconds ))
rss=$(awk '/^VmRSS:/ {print int($2 / 1024)}' /proc/"$spid"/status)
hwm=$(awk '/^VmHWM:/ {print int($2 / 1024)}' /proc/"$spid"/status)
nthreads=$(ls /proc/"$spid"/task | wc -l)
hz=$(getconf CLK_TCK)
cpu=$(python3 -c "print(f'{100 * ($c1 - $c0) / $hz / $seconds:.1f}')")
sys_cpu=$(python3 -c "print(f'{100 * ($s1 - $s0) / $hz / $seconds:.1f}')")
# When the machine is busy the checks fall behind (missed ticks are delayed, not made up):
# CPU per check, scaled to 10,000 checks per second, compares across such runs.
per10k=$(python3 -c "print(f'{$cpu * 10000 / max($checks_per_s, 1):.1f}')")
lat=$(python3 - "$run/dnsperf.txt" <<'EOF'
import re, sys
lat, lost = [], 0
for line in open(sys.argv[1], errors="replace"):
    if line.startswith(">"):
        m = re.search(r"([0-9.]+)\s*$", line)
        if m:
            lat.append(float(m.group(1)))
    m = re.match(r"\s*Queries lost:\s+(\d+)", line)
    if m:
        lost = int(m.group(1))
lat.sort()
print(f"{lat[int(len(lat) * 0.99)] * 1000:.2f} {lat[-1] * 1000:.1f} {lost}" if lat else "nan nan nan")
EOF
)
read -r p99 slowest lost <<< "$lat"
down=$(grep -c '"down"\|node down\|went down' "$run/server.log" || true)
by_thread=$(python3 - "$run/threads.0" "$run/threads.1" "$hz" "$seconds" <<'EOF'
import collections, sys
def read(p):
    d = collections.Counter()
    for line in open(p):
        name, ticks = line.rsplit(" ", 1)
        d[name.rstrip("0123456789-")] += int(ticks)
    return d
a, b = read(sys.argv[1]), read(sys.argv[2])
hz, secs = int(sys.argv[3]), float(sys.argv[4])
parts = [(n, 100 * (b[n] - a.get(n, 0)) / hz / secs) for n in b]
print(", ".join(f"{n} {v:.1f}%" for n, v in sorted(parts, key=lambda x: -x[1]) if v >= 0.1))
EOF
)
{
    echo "### $nodes HTTP checks every $interval${reuse:+ with reuse_connection} (run $run_id)"
    echo
    echo "Roundel on CPU 0 (1 UDP worker), 4 backends (benches/healthd.c) and dnsperf on CPU 1; measured over $seconds s after every pool answered."
    echo
    echo "| nodes | interval | checks/s answered | Roundel CPU % of one core (of which kernel) | CPU % per 10k checks/s | RSS MiB | peak RSS MiB | threads | start until pools answer s | pool answer p99 / slowest ms at 1000 q/s | lost | node-down log lines |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    echo "| $nodes | $interval | $checks_per_s | $cpu ($sys_cpu) | $per10k | $rss | $hwm | $nthreads | $startup | $p99 / $slowest | $lost | $down |"
    echo
    echo "CPU by thread name: $by_thread"
    echo
    echo "TCP sockets in TIME_WAIT at the end of the window: $time_wait"
    if [[ -n $syscalls ]]; then
        echo
        python3 - "$run/syscalls.csv" $((a1 - a0)) <<'EOF'
import sys
n = {}
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].strip().isdigit():
        n[f[2].split(":")[-1]] = int(f[0])
checks = max(int(sys.argv[2]), 1)
print(f"System calls per check answered (perf stat over the window, {checks} checks): "
      f"{n.get('sys_enter', 0) / checks:.2f} in all, connect {n.get('sys_enter_connect', 0) / checks:.3f}, "
      f"close {n.get('sys_enter_close', 0) / checks:.3f}")
EOF
    fi
    if [[ -n $reuse ]]; then
        echo
        echo "Kept check connections at most (from the startup log): $(grep -o 'max_kept_connections=[0-9]*' "$run/server.log" | head -n 1 | cut -d= -f2)"
    fi
    if [[ -n $split ]]; then
        read -r f_user f_own f_rx n_samples <<< "$split"
        echo
        python3 - "$cpu" "$f_user" "$f_own" "$f_rx" "$n_samples" "$checks_per_s" <<'EOF'
import sys
cpu, fu, fo, fr = map(float, sys.argv[1:5]); n, cps = int(sys.argv[5]), int(sys.argv[6])
scale = 10000 / max(cps, 1)
print(f"Split of that CPU by `perf record -e cpu-clock` ({n} samples): user space {cpu * fu:.1f} %, "
      f"Roundel's own kernel work {cpu * fo:.1f} %, receive processing of the packets it sends "
      f"(the backends' half on loopback) {cpu * fr:.1f} %. Without the last, scaled to 10,000 "
      f"checks/s: {cpu * (fu + fo) * scale:.1f} % of one core.")
EOF
    fi
} | tee "$run/results.md"
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
