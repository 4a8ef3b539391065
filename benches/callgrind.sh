#!/usr/bin/env bash
# Counts user-space instructions per answered query with valgrind's callgrind, for Roundel
# and for gdnsd on the same zone and the same queries. Instruction counts do not depend on
# what else runs on the machine, so this shows a change's effect on a busy box where
# dnsperf's queries per second cannot.
#
#   benches/callgrind.sh [-n QUERIES] [-s SERVERS] [-o OUTFILE]
#
#   -n  queries per measured run (default 20000)
#   -q  queries in flight (default 20). Under valgrind the server is slow, so with 20 in
#       flight it finds many datagrams per recvmmsg and per-batch costs are shared; -q 1
#       gives one datagram per batch, the case of a lightly loaded server
#   -s  comma list of servers: roundel,gdnsd (default both)
#   -o  also write the Markdown table to this file
#
# Method. Each server runs under `valgrind --tool=callgrind` (all threads, user space only:
# callgrind does not see the kernel) with one UDP worker thread, the zone of the shared
# anchor benchmark plus a delegation, and the pool `www` over four nodes that answer the
# health check (healthsrv.py on 127.0.0.41-44:8080, checked once an hour so that only the
# first check falls in the run). For every query kind the server is started, probed until
# it answers the SOA, sent exactly N identical queries by dnsperf (`-n N`, 20 in flight,
# no EDNS), and stopped with SIGTERM; a baseline run does the same with no queries. Then
#
#     instructions per query = (Ir of the run with N queries - Ir of the baseline) / N
#
# which removes start-up, zone load, health checks and shutdown. CALLGRIND_OPTS adds
# valgrind options (e.g. --dump-instr=yes to see a cost per instruction). Queries
# dnsperf reports as lost make the run fail. Roundel's binary is $ROUNDEL_BIN (default
# $CARGO_TARGET_DIR or target/release/roundel); gdnsd is the Debian package's.
# Every wait is bounded; everything listens on 127.0.0.1 only; processes started here are
# stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
[[ -d $bench ]] || bench=/work/shared/bench
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
queries=20000 inflight=20 servers=roundel,gdnsd outfile=""
while getopts "n:q:s:o:" opt; do
    case $opt in
        n) queries=$OPTARG ;;
        q) inflight=$OPTARG ;;
        s) servers=$OPTARG ;;
        o) outfile=$OPTARG ;;
        *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
for tool in valgrind dnsperf dig python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ ,$servers, == *,gdnsd,* ]] && { command -v gdnsd >/dev/null || { echo "missing: gdnsd" >&2; exit 1; }; }
[[ ,$servers, == *,roundel,* ]] && { [[ -x $bin ]] || { echo "no Roundel binary at $bin (cargo build --release)" >&2; exit 1; }; }

# ROUNDEL_LABEL names the binary in the run id (default: the checkout's commit).
label=${ROUNDEL_LABEL:-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)}
run_id="callgrind-$(date -u +%Y%m%dT%H%M%SZ)-$label"
run=${CALLGRIND_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run"
port=5390
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# shellcheck source=benches/lib/anchor-pair.sh
source "$here/benches/lib/anchor-pair.sh"
pair_backends
pair_configs

# measure SERVER KIND -> prints total Ir of the run
measure() {
    local srv=$1 kind=$2 out="$run/$1/callgrind.$2.out" log="$run/$1/$2.log"
    local -a cmd
    pair_cmd "$srv"
    # CALLGRIND_OPTS adds options, e.g. --dump-instr=yes to find a cost's call site.
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file="$out" ${CALLGRIND_OPTS:-} "${cmd[@]}" > "$log" 2>&1 &
    local pid=$!
    # measure runs in a command substitution (a subshell): its own exit must stop the
    # server it started, or a failed run leaves it in the port's SO_REUSEPORT group.
    trap 'kill "$pid" 2>/dev/null || true' EXIT
    pair_wait_ready "$srv" "$pid" "$log" || exit 1
    if [[ $kind != baseline ]]; then
        # what is being measured, for the record
        dig +norec +tries=1 +time=2 -p "$port" @127.0.0.1 ${pair_qname[$kind]} > "$run/$srv/dig.$kind.txt" 2>&1 || true
        echo "${pair_qname[$kind]}" > "$run/q.$kind"
        dnsperf -s 127.0.0.1 -p "$port" -d "$run/q.$kind" -n "$queries" -c 1 -T 1 -q "$inflight" -t 5 \
            > "$run/$srv/dnsperf.$kind.txt" 2>&1
        local done_q lost
        done_q=$(awk '/Queries completed:/ {print $3}' "$run/$srv/dnsperf.$kind.txt")
        lost=$(awk '/Queries lost:/ {print $3}' "$run/$srv/dnsperf.$kind.txt")
        if [[ $done_q != "$queries" || $lost != 0 ]]; then
            echo "$srv $kind: $done_q of $queries completed, $lost lost" >&2; exit 1
        fi
    fi
    kill -TERM "$pid"
    for _ in $(seq 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"; echo "$srv did not stop on SIGTERM" >&2; exit 1
    fi
    wait "$pid" 2>/dev/null || true
    # callgrind writes one file (all threads together); the totals line sums the events
    awk '/^totals:/ {print $2}' "$out"
}

if ss -Hlun "sport = :$port" | grep -q .; then
    echo "UDP port $port is in use: stop what listens there first" >&2; exit 1
fi
declare -A result
IFS=, read -r -a srv_list <<< "$servers"
for srv in "${srv_list[@]}"; do
    base=$(measure "$srv" baseline)
    result[$srv,baseline]=$base
    echo "$srv baseline: $base Ir" >&2
    for kind in "${pair_kinds[@]}"; do
        total=$(measure "$srv" "$kind")
        result[$srv,$kind]=$(( (total - base) / queries ))
        echo "$srv $kind: $total Ir total, ${result[$srv,$kind]} per query" >&2
    done
done

{
    echo "### Instructions per query (callgrind, run $run_id)"
    echo
    echo "User-space instructions per answered UDP query, (Ir with $queries queries - Ir with none) / $queries;"
    echo "one UDP worker thread, dnsperf -n $queries -q $inflight, no EDNS. Roundel: $bin ($label)."
    echo
    header="| query |" sep="|---|"
    for srv in "${srv_list[@]}"; do header+=" $srv |"; sep+="---|"; done
    [[ ${#srv_list[@]} == 2 ]] && { header+=" ${srv_list[0]} / ${srv_list[1]} |"; sep+="---|"; }
    echo "$header"; echo "$sep"
    for kind in "${pair_kinds[@]}"; do
        row="| $kind (\`${pair_qname[$kind]}\`) |"
        for srv in "${srv_list[@]}"; do row+=" ${result[$srv,$kind]} |"; done
        if [[ ${#srv_list[@]} == 2 ]]; then
            row+=" $(python3 -c "print(f'{${result[${srv_list[0]},$kind]}/${result[${srv_list[1]},$kind]}:.2f}')") |"
        fi
        echo "$row"
    done
    echo
    row="Baseline runs (start, load, one health check, stop; no queries), Ir:"
    for srv in "${srv_list[@]}"; do row+=" $srv ${result[$srv,baseline]};"; done
    echo "$row"
} | tee "$run/results.md"
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
