#!/usr/bin/env bash
# Cost as zones grow: load time, RSS and a reload under load, Roundel beside Knot and NSD
# on the same generated data.
#
#   benches/zone-scale.sh [-n NAMES] [-s SERVERS] [-r RATE] [-o OUTFILE]
#
#   -n  names in the generated zone (default 200000; benches/gen-zone.py)
#   -s  comma list: roundel,knot,nsd (default all three); roundel-before runs the binary
#       ROUNDEL_BEFORE_BIN names (e.g. one built from main) the same way as roundel
#   -r  queries per second offered during the reload test (default 10000)
#   -o  also write the Markdown table to this file
#
# For each server: start it on the zone (Roundel reads the TOML; Knot and NSD the RFC 1035
# file `roundel export` writes from it), time from spawn until the zone's SOA answers,
# then RSS (VmRSS) and peak RSS (VmHWM) of the process tree, one server at a time, pinned
# to CPU 0 like the anchor benchmark. For Roundel and Knot, then: dnsperf at -r q/s for
# 20 s over a mix of names of the zone (dnsperf -v: every query's latency), a reload
# (Roundel: SIGHUP; Knot: knotc zone-reload) 5 s in, and the slowest answer and lost
# queries of that run, beside a run without reload. Every wait is bounded; everything
# listens on 127.0.0.1 only; processes started here are stopped by PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ROUNDEL_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/roundel}
names=200000 servers=roundel,knot,nsd rate=10000 outfile=""
while getopts "n:s:r:o:" opt; do
    case $opt in
        n) names=$OPTARG ;;
        s) servers=$OPTARG ;;
        r) rate=$OPTARG ;;
        o) outfile=$OPTARG ;;
        *) sed -n '2,21p' "$0"; exit 2 ;;
    esac
done
for tool in dnsperf dig python3 knotd knotc nsd taskset; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "no Roundel binary at $bin" >&2; exit 1; }
before_bin=${ROUNDEL_BEFORE_BIN:-}
if [[ ,$servers, == *,roundel-before,* && ! -x $before_bin ]]; then
    echo "roundel-before needs ROUNDEL_BEFORE_BIN (an executable)" >&2; exit 1
fi

# ROUNDEL_LABEL names the binary in the run id (default: the checkout's commit).
label=${ROUNDEL_LABEL:-$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo nogit)}
run_id="zone-scale-$names-$(date -u +%Y%m%dT%H%M%SZ)-$label"
run=${ZONE_SCALE_RUN_DIR:-$here/benches/.run}/$run_id
mkdir -p "$run/zones"
port=5391
origin=big.test.
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "generating $names names" >&2
python3 "$here/benches/gen-zone.py" "$names" "$run/zones/big.test.toml" --origin "$origin"
"$bin" export "$run/zones/big.test.toml" > "$run/big.test.zone"
# A query mix over the zone: A, AAAA, TXT, MX, CNAME, wildcard, referral and NXDOMAIN.
python3 - "$names" > "$run/queries" <<'EOF'
import sys
n = int(sys.argv[1])
for i in range(0, n, max(1, n // 5000)):
    k = i % 100
    qt = "A" if k < 55 or k >= 88 else "AAAA" if k < 70 else "TXT" if k < 80 else "MX"
    name = f"n{i}.h{i % 256:02x}.big.test"
    if k == 99:
        name = "x." + name
    print(name, qt)
    print(f"nx{i}.h{i % 256:02x}.big.test A")
EOF

tree_pids() { # PID and its descendants
    local p=$1; echo "$p"
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}
mem_kib() { # FIELD PID -> sum over the process tree, KiB
    local sum=0 v
    for p in $(tree_pids "$2"); do
        v=$(awk -v f="$1:" '$1 == f {print $2}' /proc/"$p"/status 2>/dev/null || echo 0)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

start() { # SERVER -> sets spid, load seconds in load_s
    local srv=$1 d="$run/$1"
    mkdir -p "$d"
    local -a cmd
    case $srv in
        roundel|roundel-before)
            local b=$bin
            [[ $srv == roundel-before ]] && b=$before_bin
            mkdir -p "$d/zones"; cp "$run/zones/big.test.toml" "$d/zones/"
            # Rate limiting off: dnsperf is one client at 10,000 q/s, half of them
            # NXDOMAIN of one zone, which RRL exists to slow down (Knot and NSD run
            # without it here too); its drops would count as lost queries.
            printf '[rrl]\nenabled = false\n' > "$d/roundel.toml"
            cmd=("$b" serve --config "$d/roundel.toml" --zones "$d/zones" --listen "127.0.0.1:$port"
                 --udp-threads 1 --no-admin) ;;
        knot)
            cp "$run/big.test.zone" "$d/big.test.zone"
            cat > "$d/knot.conf" <<EOT
server:
    rundir: "$d"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$d/db"
control:
    listen: "$d/knot.sock"
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "$d"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: $origin
EOT
            cmd=(knotd -c "$d/knot.conf") ;;
        nsd)
            cp "$run/big.test.zone" "$d/big.test.zone"
            cat > "$d/nsd.conf" <<EOT
server:
    ip-address: 127.0.0.1@$port
    server-count: 1
    do-ip6: no
    reuseport: no
    username: ""
    chroot: ""
    zonesdir: "$d"
    database: ""
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d"
    pidfile: "$d/nsd.pid"
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "$origin"
    zonefile: "big.test.zone"
EOT
            cmd=(nsd -d -c "$d/nsd.conf") ;;
    esac
    local t0; t0=$(date +%s.%N)
    taskset -c 0 "${cmd[@]}" > "$d/server.log" 2>&1 &
    spid=$!
    pids+=("$spid")
    load_s=""
    for _ in $(seq 1200); do
        kill -0 "$spid" 2>/dev/null || { echo "$srv exited, see $d/server.log" >&2; exit 1; }
        if dig +norec +tries=1 +time=1 -p "$port" @127.0.0.1 "$origin" SOA 2>/dev/null | grep -q "status: NOERROR"; then
            load_s=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
            break
        fi
        sleep 0.05
    done
    [[ -n $load_s ]] || { echo "$srv did not answer within the bound" >&2; exit 1; }
}

stop() {
    kill -TERM "$spid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
}

# load RELOAD(yes/no) SERVER -> "max_ms lost p99_ms" of a run at $rate q/s: 20 s, or for
# the reload, long enough for it to finish (5 s + 3 x the startup load time, bounded)
load() {
    local reload=$1 srv=$2 log="$run/$2/dnsperf-$1.txt" secs=20
    if [[ $reload == yes ]]; then
        secs=$(python3 -c "print(min(600, max(20, int(10 + 3 * $load_s))))")
    fi
    taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$run/queries" -l "$secs" -Q "$rate" -c 1 -T 1 -q 500 -t 5 -v \
        > "$log" 2>&1 &
    local dp=$!
    pids+=("$dp")
    if [[ $reload == yes ]]; then
        sleep 5
        case $srv in
            roundel|roundel-before) kill -HUP "$spid" ;;
            knot) knotc -s "$run/knot/knot.sock" -b -t 600 zone-reload "$origin" > /dev/null ;;
        esac
    fi
    wait "$dp" || true
    if [[ $reload == yes && $srv == roundel* ]] && ! grep -q 'trigger="signal"' "$run/$srv/server.log"; then
        echo "$srv: the reload did not finish within the run" >&2; exit 1
    fi
    python3 - "$log" <<'EOF'
import re, sys
lat = []
lost = 0
for line in open(sys.argv[1], errors="replace"):
    if line.startswith(">"):
        m = re.search(r"([0-9.]+)\s*$", line)
        if m:
            lat.append(float(m.group(1)))
    m = re.match(r"\s*Queries lost:\s+(\d+)", line)
    if m:
        lost = int(m.group(1))
lat.sort()
p99 = lat[int(len(lat) * 0.99)] if lat else float("nan")
print(f"{lat[-1] * 1000 if lat else float('nan'):.1f} {lost} {p99 * 1000:.2f}")
EOF
}

declare -A res
IFS=, read -r -a srv_list <<< "$servers"
for srv in "${srv_list[@]}"; do
    start "$srv"
    sleep 1
    res[$srv,load]=$load_s
    res[$srv,rss]=$(( $(mem_kib VmRSS "$spid") / 1024 ))
    res[$srv,hwm]=$(( $(mem_kib VmHWM "$spid") / 1024 ))
    echo "$srv: loaded in $load_s s, RSS ${res[$srv,rss]} MiB, peak ${res[$srv,hwm]} MiB" >&2
    if [[ $srv != nsd ]]; then
        res[$srv,steady]=$(load no "$srv")
        res[$srv,reload]=$(load yes "$srv")
        res[$srv,rss2]=$(( $(mem_kib VmRSS "$spid") / 1024 ))
        res[$srv,hwm2]=$(( $(mem_kib VmHWM "$spid") / 1024 ))
        echo "$srv: steady ${res[$srv,steady]}, with reload ${res[$srv,reload]} (max ms, lost, p99 ms)" >&2
    fi
    stop
done

{
    echo "### Zone of $names names (run $run_id)"
    echo
    echo "Load: spawn until the SOA answers. RSS / peak: VmRSS / VmHWM of the process tree after load, then after the reload test."
    echo "Reload test: dnsperf -Q $rate (20 s; with the reload 5 s in, 10 s + 3 x the load time, so that it finishes within the run) over $(wc -l < "$run/queries") names of the zone (half NXDOMAIN), one reload 5 s in; slowest answer, lost queries and p99, beside the same run without reload."
    echo
    echo "| server | load s | RSS MiB | peak MiB | RSS / peak after reload MiB | slowest answer ms (no reload / reload) | lost (no reload / reload) | p99 ms (no reload / reload) |"
    echo "|---|---|---|---|---|---|---|---|"
    for srv in "${srv_list[@]}"; do
        if [[ -n ${res[$srv,steady]:-} ]]; then
            read -r m0 l0 p0 <<< "${res[$srv,steady]}"
            read -r m1 l1 p1 <<< "${res[$srv,reload]}"
            echo "| $srv | ${res[$srv,load]} | ${res[$srv,rss]} | ${res[$srv,hwm]} | ${res[$srv,rss2]} / ${res[$srv,hwm2]} | $m0 / $m1 | $l0 / $l1 | $p0 / $p1 |"
        else
            echo "| $srv | ${res[$srv,load]} | ${res[$srv,rss]} | ${res[$srv,hwm]} | - | - | - | - |"
        fi
    done
} | tee "$run/results.md"
[[ -n $outfile ]] && cp "$run/results.md" "$outfile"
echo "run directory: $run" >&2
