#!/usr/bin/env bash
# Queries per second of server CPU over TCP (dnsperf -m tcp), Roundel beside Knot (and
# optionally NSD and gdnsd), in the same run. The shared anchor harness has no TCP mode,
# so this is its TCP column: same zone (the harness's lb.example static part), same
# pinning (servers on CPU 0, dnsperf on CPU 1), runs interleaved A B A B ..., medians.
#
#   benches/tcp-throughput.sh [-d SECONDS] [-r REPEATS] [-s SERVERS] [-Q QUERIES] [-o OUTFILE]
#
#   -d  seconds per dnsperf run (default 10)
#   -r  repeats, interleaved (default 3)
#   -s  comma list: roundel,roundel-before,knot,nsd,gdnsd (default roundel,knot);
#       roundel-before runs the binary $ROUNDEL_BEFORE_BIN (e.g. the main branch's build),
#       to compare two builds in one run
#   -Q  Roundel's tcp_queries_per_connection (default: its default, 1000). dnsperf loses
#       the queries it pipelined past the cap when Roundel closes, and they hold its
#       in-flight slots until they time out; a large value shows Roundel without reconnects
#       (Knot, NSD and gdnsd have no such cap)
#   -o  also write the Markdown table to this file
#
# dnsperf -m tcp -c 10 -q 100 -T 1 static.lb.example A: ten connections, each reused for
# every query. q/srv-CPU-s = answered queries / (utime + stime of the server's process tree
# during the run). Every wait is bounded; everything listens on 127.0.0.1 only; processes
# started here are stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
[[ -d $bench ]] || bench=/work/shared/bench
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
duration=10 repeats=3 servers=roundel,knot outfile="" qcap=""
while getopts "d:r:s:Q:o:" opt; do
    case $opt in
        d) duration=$OPTARG ;;
        r) repeats=$OPTARG ;;
        s) servers=$OPTARG ;;
        Q) qcap=$OPTARG ;;
        o) outfile=$OPTARG ;;
        *) sed -n '2,21p' "$0"; exit 2 ;;
    esac
done
for tool in dnsperf dig python3 taskset; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

# ROUNDEL_LABEL names the binary in the run id (default: the checkout's commit).
label=${ROUNDEL_LABEL:-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)}
run_id="tcp-$(date -u +%Y%m%dT%H%M%SZ)-$label"
run=${TCP_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run"
zone="$bench/templates/lb.example.static.zone"
echo "static.lb.example A" > "$run/queries"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

declare -A port=([roundel]=5392 [knot]=5393 [nsd]=5394 [gdnsd]=5395 [roundel-before]=5396)
declare -A spid
render() { sed -e "s#@@PORT@@#$2#g" -e "s#@@RUNDIR@@#$3#g" -e "s#@@THREADS@@#1#g" -e "s#@@HEALTH_TIMING@@##g" "$1"; }
start() {
    local srv=$1 p=${port[$1]} d="$run/$1"
    mkdir -p "$d"
    local -a cmd
    case $srv in
        roundel | roundel-before)
            local b=$bin
            if [[ $srv == roundel-before ]]; then
                b=${ROUNDEL_BEFORE_BIN:?roundel-before needs ROUNDEL_BEFORE_BIN}
            fi
            mkdir -p "$d/zones"
            "$b" import "$zone" --origin lb.example. > "$d/zones/lb.example.toml"
            # No rate limiting: it applies to UDP only, but keep both builds alike.
            printf '[rrl]\nenabled = false\n' > "$d/roundel.toml"
            [[ -n $qcap ]] && printf '[limits]\ntcp_queries_per_connection = %s\n' "$qcap" >> "$d/roundel.toml"
            cmd=("$b" serve --config "$d/roundel.toml" --zones "$d/zones" --listen "127.0.0.1:$p"
                 --udp-threads 1 --no-admin)
            # One TCP thread, as Knot's tcp-workers: 1 (builds before --tcp-threads ran TCP
            # on the tokio runtime's two workers).
            if "$b" serve --help | grep -q -- --tcp-threads; then cmd+=(--tcp-threads 1); fi ;;
        knot)
            render "$bench/templates/knot/knot.conf" "$p" "$d" > "$d/knot.conf"
            cp "$zone" "$d/lb.example.zone"
            cmd=(knotd -c "$d/knot.conf") ;;
        nsd)
            render "$bench/templates/nsd/nsd.conf" "$p" "$d" > "$d/nsd.conf"
            cp "$zone" "$d/lb.example.zone"
            cmd=(nsd -d -c "$d/nsd.conf") ;;
        gdnsd)
            mkdir -p "$d/zones"
            render "$bench/templates/gdnsd/config" "$p" "$d" | sed '/service_types/,$d' > "$d/config"
            cp "$zone" "$d/zones/lb.example"
            cmd=(gdnsd -c "$d" start) ;;
    esac
    taskset -c 0 "${cmd[@]}" > "$d/server.log" 2>&1 &
    spid[$srv]=$!
    pids+=($!)
    for _ in $(seq 300); do
        kill -0 "${spid[$srv]}" 2>/dev/null || { echo "$srv exited, see $d/server.log" >&2; exit 1; }
        dig +tcp +tries=1 +time=1 -p "$p" @127.0.0.1 lb.example SOA 2>/dev/null | grep -q "status: NOERROR" && return
        sleep 0.1
    done
    echo "$srv not answering over TCP on $p" >&2; exit 1
}
cpu_ticks() { # utime+stime of a process tree, clock ticks
    python3 - "$1" <<'EOF'
import os, sys
def tree(p):
    out = [p]
    for t in os.listdir(f"/proc/{p}/task"):
        try:
            for c in open(f"/proc/{p}/task/{t}/children").read().split():
                out += tree(int(c))
        except OSError:
            pass
    return out
total = 0
for p in tree(int(sys.argv[1])):
    try:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        total += int(f[11]) + int(f[12])
    except OSError:
        pass
print(total)
EOF
}

IFS=, read -r -a srv_list <<< "$servers"
for srv in "${srv_list[@]}"; do start "$srv"; done
hz=$(getconf CLK_TCK)
declare -A qps eff
for r in $(seq "$repeats"); do
    for srv in "${srv_list[@]}"; do
        c0=$(cpu_ticks "${spid[$srv]}")
        out="$run/$srv/dnsperf-$r.txt"
        taskset -c 1 dnsperf -m tcp -s 127.0.0.1 -p "${port[$srv]}" -d "$run/queries" -l "$duration" \
            -c 10 -q 100 -T 1 -t 5 > "$out" 2>&1 || true
        c1=$(cpu_ticks "${spid[$srv]}")
        done_q=$(awk '/Queries completed:/ {print $3}' "$out")
        q=$(awk '/Queries per second:/ {print $4}' "$out")
        e=$(python3 -c "print(f'{${done_q:-0} / max(($c1 - $c0) / $hz, 1e-9):.0f}')")
        qps[$srv]+="${q:-0} " eff[$srv]+="$e "
        echo "$srv run $r: ${q:-0} q/s, $e q/srv-CPU-s" >&2
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo "### TCP throughput (run $run_id)"
    echo
    echo "dnsperf -m tcp -c 10 -q 100 -T 1, $duration s, static.lb.example A; servers on CPU 0 (1 worker), dnsperf on CPU 1; medians of $repeats interleaved runs${qcap:+; Roundel with tcp_queries_per_connection = $qcap}."
    echo
    echo "| server | QPS | q/srv-CPU-s | vs ${srv_list[-1]} | runs (q/srv-CPU-s) |"
    echo "|---|---|---|---|---|"
    ref=$(echo "${eff[${srv_list[-1]}]}" | median)
    for srv in "${srv_list[@]}"; do
        m=$(echo "${eff[$srv]}" | median)
        echo "| $srv | $(echo "${qps[$srv]}" | median) | $m | $(python3 -c "print(f'{$m / $ref:.2f}')") | ${eff[$srv]}|"
    done
} | tee "$run/results.md"
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
