#!/usr/bin/env bash
# Where a UDP answer's CPU goes: user space against the kernel, Roundel beside gdnsd on
# the same zone and queries at the same offered rate.
#
#   benches/kernel-share.sh [-r RATE] [-d SECONDS] [-n REPEATS] [-s SERVERS] [-k KINDS] [-o OUTFILE]
#
#   -r  queries per second offered (default 50000: below either server's saturation,
#       so both answer every query and work at the same pace)
#   -d  seconds per measured run (default 10)
#   -n  repeats, servers interleaved within each (default 3)
#   -s  comma list: roundel,gdnsd (default both)
#   -k  comma list of query kinds: static,pool,nxdomain,referral (default static,pool)
#   -o  also write the Markdown table to this file
#
# Method. The setup of benches/callgrind.sh (benches/lib/anchor-pair.sh): one UDP worker
# each, the anchor zone, the pool `www` over four healthy nodes. For each run the server
# is started pinned to CPU 0 (dnsperf on CPU 1), probed until it answers, sent RATE q/s of
# one name for SECONDS, and stopped; its user and system CPU time over the load come from
# /proc/PID/stat (all threads), divided by the queries answered. After the repeats, one
# more run per server and kind under `perf record -e cpu-clock` (Debian linux-perf; the
# software clock, which works where hardware counters are not exposed) gives the top
# kernel and user functions. Every wait is bounded; everything listens on 127.0.0.1;
# processes started here are stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
[[ -d $bench ]] || bench=/work/shared/bench
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
rate=50000 dur=10 repeats=3 servers=roundel,gdnsd kinds=static,pool outfile=""
while getopts "r:d:n:s:k:o:" opt; do
    case $opt in
        r) rate=$OPTARG ;;
        d) dur=$OPTARG ;;
        n) repeats=$OPTARG ;;
        s) servers=$OPTARG ;;
        k) kinds=$OPTARG ;;
        o) outfile=$OPTARG ;;
        *) sed -n '2,14p' "$0"; exit 2 ;;
    esac
done
for tool in perf dnsperf dig python3 taskset; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ ,$servers, == *,gdnsd,* ]] && { command -v gdnsd >/dev/null || { echo "missing: gdnsd" >&2; exit 1; }; }
[[ ,$servers, == *,roundel,* ]] && { [[ -x $bin ]] || { echo "no Roundel binary at $bin (cargo build --release)" >&2; exit 1; }; }

label=${ROUNDEL_LABEL:-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)}
run_id="kernel-share-$(date -u +%Y%m%dT%H%M%SZ)-$label"
run=${KERNEL_SHARE_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run"
port=5389
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# shellcheck source=benches/lib/anchor-pair.sh
source "$here/benches/lib/anchor-pair.sh"
if ss -Hlun "sport = :$port" | grep -q .; then
    echo "UDP port $port is in use: stop what listens there first" >&2; exit 1
fi
pair_backends
pair_configs
clk=$(getconf CLK_TCK)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# cpu_ticks PID -> "utime stime" of the whole process (all threads), in clock ticks
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"; }

# one SRV KIND TAG [perf] -> prints "answered user_ticks sys_ticks"
one() {
    local srv=$1 kind=$2 tag=$3 profile=${4:-} log="$run/$1/$3.log"
    local -a cmd
    pair_cmd "$srv"
    taskset -c 0 "${cmd[@]}" > "$log" 2>&1 &
    # one runs in a subshell ($(...)): its exit stops the server it started.
    srv_pid=$!
    trap 'kill "$srv_pid" 2>/dev/null || true' EXIT
    local pid=$srv_pid
    pair_wait_ready "$srv" "$pid" "$log" || exit 1
    echo "${pair_qname[$kind]}" > "$run/q.$kind"
    local ppid="" before after
    if [[ -n $profile ]]; then
        # perf stops by itself after the load's duration (the `sleep` it waits on).
        perf record -q -e cpu-clock -F 999 -g -p "$pid" -o "$run/$srv/perf.$kind.data" \
            -- sleep "$dur" > "$run/$srv/perf.$kind.log" 2>&1 &
        ppid=$!
    fi
    before=$(cpu_ticks "$pid")
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/q.$kind" -l "$dur" -Q "$rate" \
        -c 4 -T 1 -q 200 -t 2 > "$run/$srv/dnsperf.$tag.txt" 2>&1
    after=$(cpu_ticks "$pid")
    if [[ -n $ppid ]]; then
        for _ in $(seq 100); do kill -0 "$ppid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$ppid" 2>/dev/null && { kill -TERM "$ppid"; echo "perf did not stop" >&2; exit 1; }
        wait "$ppid" 2>/dev/null || true
    fi
    kill -TERM "$pid"
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; echo "$srv did not stop on SIGTERM" >&2; exit 1; }
    wait "$pid" 2>/dev/null || true
    local answered
    answered=$(awk '/Queries completed:/ {print $3}' "$run/$srv/dnsperf.$tag.txt")
    read -r u0 s0 <<< "$before"
    read -r u1 s1 <<< "$after"
    echo "$answered $((u1 - u0)) $((s1 - s0))"
}

IFS=, read -r -a srv_list <<< "$servers"
IFS=, read -r -a kind_list <<< "$kinds"
: > "$run/runs.txt"
for r in $(seq "$repeats"); do
    for kind in "${kind_list[@]}"; do
        for srv in "${srv_list[@]}"; do
            res=$(one "$srv" "$kind" "$kind.$r")
            echo "$srv $kind $res" >> "$run/runs.txt"
            echo "repeat $r $srv $kind: answered user_ticks sys_ticks = $res" >&2
        done
    done
done
for kind in "${kind_list[@]}"; do
    for srv in "${srv_list[@]}"; do
        res=$(one "$srv" "$kind" "$kind.perf" perf)
        echo "profile $srv $kind: $res" >&2
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# Table: per run, microseconds of CPU per answered query; medians; ratios to the last server.
python3 - "$clk" "$rate" "$dur" "$run_id" "$load_start" "$load_end" "$servers" "$kinds" "$run" <<'PY' | tee "$run/results.md"
import statistics, subprocess, sys
clk, rate, dur, run_id, l0, l1, servers, kinds, run = sys.argv[1:]
clk = int(clk)
runs = {}
for line in open(f"{run}/runs.txt"):
    srv, kind, a, u, k = line.split()
    runs.setdefault(f"{srv},{kind}", []).append((int(a), int(u), int(k)))
servers = servers.split(","); kinds = kinds.split(",")
print(f"### User and kernel CPU per UDP answer (run {run_id})\n")
print(f"{rate} q/s offered for {dur} s, one UDP worker pinned to CPU 0, dnsperf on CPU 1; "
      f"CPU from /proc/PID/stat (all threads). Load average at start {l0}, at end {l1}.\n")
print("| query | server | answered q/s | user µs/q | kernel µs/q | total µs/q | kernel share | runs (total µs/q) |")
print("|---|---|---|---|---|---|---|---|")
med = {}
for kind in kinds:
    for srv in servers:
        rows = runs[f"{srv},{kind}"]
        us = [u / clk * 1e6 / a for a, u, s in rows]
        ks = [s / clk * 1e6 / a for a, u, s in rows]
        tot = [u + k for u, k in zip(us, ks)]
        m = (statistics.median(us), statistics.median(ks), statistics.median(tot))
        med[srv, kind] = m
        qps = statistics.median(a for a, _, _ in rows) / float(dur)
        print(f"| {kind} | {srv} | {qps:,.0f} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | "
              f"{m[1] / m[2]:.0%} | {' / '.join(f'{t:.2f}' for t in tot)} |")
if len(servers) == 2:
    a, b = servers
    print(f"\n{a} / {b}, medians: " + "; ".join(
        f"{k}: user {med[a,k][0]/med[b,k][0]:.2f}, kernel {med[a,k][1]/med[b,k][1]:.2f}, "
        f"total {med[a,k][2]/med[b,k][2]:.2f}" for k in kinds))
print("\nTop functions by share of the server's samples (`perf record -e cpu-clock`, one run each):\n")
for kind in kinds:
    for srv in servers:
        data = f"{run}/{srv}/perf.{kind}.data"
        out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
                              "--stdio", "-g", "none"], capture_output=True, text=True).stdout
        lines = [l.strip() for l in out.splitlines() if l.strip() and not l.startswith("#")]
        kern = sum(float(l.split("%")[0]) for l in lines if "[kernel" in l)
        print(f"- **{srv}, {kind}**: kernel {kern:.0f} % of samples; top: " +
              ", ".join(" ".join(l.split()[0:1] + l.split()[-1:]) for l in lines[:8]))
PY
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
