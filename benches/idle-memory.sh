#!/usr/bin/env bash
# Idle memory of Roundel beside Knot on the benchmark zone, split into private memory
# (RssAnon: heap, stacks, what one more instance really costs) and mapped files (RssFile:
# code and read-only data, shared with every other process that maps the same files).
#
#   benches/idle-memory.sh [-n REPEATS] [-w SECONDS]
#
#   -n  starts of each server (default 3); the table gives each and the medians
#   -w  seconds to wait after the zone's SOA first answers (default 2)
#
# Roundel runs as the anchor benchmark runs it (benches/anchor-column.sh: the imported
# benchmark zone plus one health-checked pool, one UDP worker, no admin listener); Knot
# from the shared harness's template and zone (../shared/bench/templates). Both listen on
# 127.0.0.1 only and are stopped by PID; every wait is bounded.
#
# Before each start of Roundel its binary is written back and dropped from the page cache
# (posix_fadvise DONTNEED), so that every binary is read from disk as after a boot. How a
# file came into the page cache changes how much of it a start maps: a binary the linker
# has just written sits in large folios, and a fault maps the whole folio rather than the
# 64 KiB around the page (fault-around), which made the same binary 0.6-0.8 MiB larger
# right after a build than after a reboot. Knot's files are the system's, long read, and
# are left alone. ROUNDEL_EVICT=0 measures the binary as the page cache holds it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${ROUNDEL_SHARED:-$here/../shared}
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
repeats=3 wait_s=2
while getopts "n:w:" opt; do
    case $opt in
        n) repeats=$OPTARG ;;
        w) wait_s=$OPTARG ;;
        *) sed -n '2,14p' "$0"; exit 2 ;;
    esac
done
for tool in dig knotd python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "no Roundel binary at $bin" >&2; exit 1; }
zone=$shared/bench/templates/lb.example.static.zone
[[ -f $zone ]] || { echo "no benchmark zone at $zone" >&2; exit 1; }

label=${ROUNDEL_LABEL:-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)}
run_id="idle-memory-$(date -u +%Y%m%dT%H%M%SZ)-$label"
run=$here/benches/.run/$run_id
mkdir -p "$run"
port=5386
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

evict() { # FILE: write back, then drop its pages from the page cache
    python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

start() { # SERVER DIR -> pid
    local srv=$1 d=$2
    mkdir -p "$d"
    case $srv in
        roundel)
            [[ ${ROUNDEL_EVICT:-1} == 0 ]] || evict "$bin"
            ROUNDEL_BIN=$bin bash "$here/benches/anchor-column.sh" "$port" "$zone" "$d" 1 default \
                > "$d/server.log" 2>&1 &
            pid=$! ;;
        knot)
            sed -e "s|@@RUNDIR@@|$d|g" -e "s|@@PORT@@|$port|" -e "s|@@THREADS@@|1|" \
                "$shared/bench/templates/knot/knot.conf" > "$d/knot.conf"
            cp "$zone" "$d/lb.example.zone"
            knotd -c "$d/knot.conf" > "$d/server.log" 2>&1 &
            pid=$! ;;
    esac
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || { echo "$srv exited, see $d/server.log" >&2; exit 1; }
        if dig +norec +tries=1 +time=1 -p "$port" @127.0.0.1 lb.example. SOA 2>/dev/null | grep -q "status: NOERROR"; then
            return
        fi
        sleep 0.05
    done
    echo "$srv did not answer within the bound" >&2; exit 1
}

stop() {
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

echo "server rss_kib anon_kib file_kib" > "$run/samples"
for i in $(seq "$repeats"); do
    for srv in roundel knot; do
        start "$srv" "$run/$srv-$i"
        sleep "$wait_s"
        # anchor-column.sh execs Roundel, so the PID is the server's.
        awk -v s="$srv" '/^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2}
            END {print s, r, a, f}' "/proc/$pid/status" >> "$run/samples"
        stop
    done
done

python3 - "$run/samples" "$run_id" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
print(f"### Idle memory (run {sys.argv[2]})\n")
print("| server | RSS MiB | private (RssAnon) MiB | mapped files (RssFile) MiB | starts |")
print("|---|---|---|---|---|")
med = {}
for srv in ("roundel", "knot"):
    mine = [r for r in rows if r[0] == srv]
    m = [statistics.median(int(r[k]) for r in mine) / 1024 for k in (1, 2, 3)]
    med[srv] = m
    each = ", ".join(f"{int(r[1]) / 1024:.1f}/{int(r[2]) / 1024:.1f}/{int(r[3]) / 1024:.1f}" for r in mine)
    print(f"| {srv} | {m[0]:.1f} | {m[1]:.2f} | {m[2]:.1f} | {each} |")
r, k = med["roundel"], med["knot"]
print(f"\nRoundel / Knot: RSS {r[0] / k[0]:.2f}, private {r[1] / k[1]:.2f}, mapped files {r[2] / k[2]:.2f} (medians).")
EOF
echo "run directory: $run" >&2
