#!/usr/bin/env bash
# User-space instructions per answered TCP query (valgrind --tool=callgrind), for one or
# two Roundel builds: the TCP counterpart of benches/callgrind.sh. Instruction counts do not
# depend on what else runs on the machine.
#
#   benches/tcp-callgrind.sh [-n QUERIES] [-o OUTFILE]
#
#   -n  queries per measured run (default 20000)
#   -o  also write the Markdown table to this file
#
# Roundel's binary is $ROUNDEL_BIN (default $CARGO_TARGET_DIR or target/release/roundel);
# with $ROUNDEL_BEFORE_BIN set, that build is measured too ("before"). Each build serves
# the shared anchor zone's static part (the zone of benches/tcp-throughput.sh) with one UDP
# worker and, when it has the option, one TCP thread, under callgrind (all threads, user
# space only). It is probed until it answers the SOA over TCP, sent exactly N queries by
# `dnsperf -m tcp -n N -c 10 -q 20` (ten connections, at most 1000 queries each: the
# default per-connection cap, so the reconnects are in the count), and stopped with
# SIGTERM; a baseline run does the same with no queries. Then
#
#     instructions per query = (Ir of the run with N queries - Ir of the baseline) / N
#
# (queries dnsperf reports as lost, pipelined past the cap, are not counted as answered).
# Every wait is bounded; everything listens on 127.0.0.1 only; processes started here are
# stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
[[ -d $bench ]] || bench=/work/shared/bench
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
queries=20000 outfile=""
while getopts "n:o:" opt; do
    case $opt in
        n) queries=$OPTARG ;;
        o) outfile=$OPTARG ;;
        *) sed -n '2,10p' "$0"; exit 2 ;;
    esac
done
for tool in valgrind callgrind_annotate dnsperf dig; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
label=${ROUNDEL_LABEL:-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)}
run_id="tcp-callgrind-$(date -u +%Y%m%dT%H%M%SZ)-$label"
run=${CALLGRIND_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run/zones"
port=5398
echo "static.lb.example A" > "$run/queries"
printf '[rrl]\nenabled = false\n' > "$run/roundel.toml"
"$bin" import "$bench/templates/lb.example.static.zone" --origin lb.example. > "$run/zones/lb.example.toml"
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

# total_ir BIN N NAME: sets ir (the Ir of one run with N queries) and answered.
total_ir() {
    local b=$1 n=$2 out="$run/$3"
    local -a extra=()
    if "$b" serve --help | grep -q -- --tcp-threads; then extra=(--tcp-threads 1); fi
    valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$b" serve --config "$run/roundel.toml" \
        --zones "$run/zones" --listen "127.0.0.1:$port" --udp-threads 1 --no-admin --no-watch \
        "${extra[@]}" > "$out.log" 2>&1 &
    pid=$!
    local up=""
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || { echo "$3: the server exited, see $out.log" >&2; exit 1; }
        if dig +tcp +tries=1 +time=2 -p "$port" @127.0.0.1 lb.example SOA 2>/dev/null | grep -q NOERROR; then
            up=1
            break
        fi
        sleep 0.2
    done
    [[ -n $up ]] || { echo "$3: no answer over TCP" >&2; exit 1; }
    answered=0
    if ((n > 0)); then
        dnsperf -m tcp -s 127.0.0.1 -p "$port" -d "$run/queries" -n "$n" -c 10 -q 20 -T 1 -t 10 > "$out.dnsperf" 2>&1
        answered=$(awk '/Queries completed:/ {print $3}' "$out.dnsperf")
    fi
    kill "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    wait "$pid" 2>/dev/null || true
    pid=""
    ir=$(callgrind_annotate "$out.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
}

per_query() { # BIN NAME: sets per (Ir per answered query) and answered
    total_ir "$1" 0 "$2-baseline"
    local base=$ir
    total_ir "$1" "$queries" "$2-queries"
    per=$(( (ir - base) / answered ))
}

rows=()
per_query "$bin" after
rows+=("| after ($label) | $per | $answered |")
if [[ -n ${ROUNDEL_BEFORE_BIN:-} ]]; then
    per_query "$ROUNDEL_BEFORE_BIN" before
    rows+=("| before | $per | $answered |")
fi

{
    echo "### User-space instructions per TCP query (run $run_id)"
    echo
    echo "callgrind, dnsperf -m tcp -n $queries -c 10 -q 20, static.lb.example A; (Ir with queries - Ir of a baseline run) / answered queries."
    echo
    echo "| build | Ir/query | answered |"
    echo "|---|---|---|"
    printf '%s\n' "${rows[@]}"
} | tee "$run/results.md"
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
