#!/usr/bin/env bash
# Instructions per HTTP health check, counted by valgrind's callgrind: a noise-proof figure
# for the cost of checks, whatever else runs on the machine.
#
#   benches/health-callgrind.sh [-n NODES] [-t SECONDS] [-o OUTFILE] [-r]
#
#   -n  nodes checked over HTTP every second (default 100), each its own probe
#   -t  seconds the short run lasts after every pool answers (default 20); the long run
#       lasts twice as long
#   -o  also write the Markdown result to this file
#   -r  checks with `reuse_connection = true` against backends that keep connections
#
# Two runs of Roundel under callgrind checking the nodes over HTTP against four local
# backends (benches/healthd.c, which count the requests they answer), one twice as long
# as the other. Instructions per check = (Ir of the long run - Ir of the short run) /
# (requests answered in the long run - in the short run): start-up (zone load, the TLS
# trust store) and shutdown cancel out. User space only: the kernel's TCP connect, accept
# and close are not counted. The long run's top functions (self cost, start-up included)
# are kept in the run directory (annotate.txt).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
nodes=100 seconds=20 outfile="" reuse=""
while getopts "n:t:o:r" opt; do
    case $opt in
        n) nodes=$OPTARG ;;
        t) seconds=$OPTARG ;;
        o) outfile=$OPTARG ;;
        r) reuse=1 ;;
        *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
for tool in valgrind callgrind_annotate dig python3 gcc; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "no Roundel binary at $bin" >&2; exit 1; }

run_id="health-callgrind-$nodes-$(date -u +%Y%m%dT%H%M%SZ)-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)${reuse:+-reuse}"
run=${HEALTH_SCALE_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run"
port=5397 bport=18081
backends=(127.0.0.61 127.0.0.62 127.0.0.63 127.0.0.64)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
gcc -O2 -o "$run/healthd" "$here/benches/healthd.c"

zone() { # $1: check table body
    python3 "$here/benches/lib/health-zone.py" "$nodes" "$1" "${backends[@]}"
}

# One run: $1 name, $2 seconds. Prints "Ir answered".
one() {
    local dir=$run/$1 secs=$2 bpids=() spid ready="" answered=0
    mkdir -p "$dir/zones"
    zone "http = { port = $bport, path = \"/health\"${reuse:+, reuse_connection = true} }
interval = \"1s\"
timeout = \"500ms\"" > "$dir/zones/hc.test.toml"
    for a in "${backends[@]}"; do
        "$run/healthd" "$a" "$bport" ${reuse:+keep} > "$dir/healthd.$a" &
        bpids+=($!)
        pids+=($!)
    done
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$bin" serve --zones "$dir/zones" --listen "127.0.0.1:$port" --udp-threads 1 --no-admin \
        > "$dir/server.log" 2>&1 &
    spid=$!
    pids+=("$spid")
    for _ in $(seq 1200); do
        kill -0 "$spid" 2>/dev/null || { echo "roundel exited, see $dir/server.log" >&2; exit 1; }
        if [[ $(dig +short +tries=1 +time=1 -p "$port" @127.0.0.1 p0.hc.test A | grep -c '^[0-9]') -ge 1 ]]; then
            ready=1; break
        fi
        sleep 0.1
    done
    [[ -n $ready ]] || { echo "pools never answered" >&2; exit 1; }
    sleep "$secs"
    kill -TERM "$spid"
    for _ in $(seq 600); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$spid" 2>/dev/null && { echo "roundel did not stop" >&2; exit 1; }
    for p in "${bpids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
    for a in "${backends[@]}"; do answered=$((answered + $(cat "$dir/healthd.$a"))); done
    echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$dir/callgrind.out") $answered"
}

# Not in a subshell: the EXIT trap must see every process started.
one short "$seconds" > "$run/short.result"
one long $((2 * seconds)) > "$run/long.result"
read -r ir_short checks_short < "$run/short.result"
read -r ir_long checks_long < "$run/long.result"
callgrind_annotate --inclusive=no "$run/long/callgrind.out" 2>/dev/null | head -80 > "$run/annotate.txt" || true
checks=$((checks_long - checks_short))
per=$(python3 -c "print(f'{($ir_long - $ir_short) / max($checks, 1):,.0f}')")
{
    echo "### Instructions per HTTP check${reuse:+ with reuse_connection} (run $run_id)"
    echo
    echo "$nodes nodes checked every 1 s under callgrind, for $seconds s (Ir $ir_short, $checks_short requests answered) and $((2 * seconds)) s (Ir $ir_long, $checks_long answered)."
    echo
    echo "| nodes | checks in the difference | instructions per check |"
    echo "|---|---|---|"
    echo "| $nodes | $checks | $per |"
} | tee "$run/results.md"
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
