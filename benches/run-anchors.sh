#!/usr/bin/env bash
# Builds Roundel (release) and runs the shared anchor benchmark (../shared/bench) with
# Roundel as extra columns next to gdnsd, PowerDNS, NSD, Knot and hickory-dns:
#   roundel       default check timing, measured for static and www throughput and in
#                 the startup, failover and all-down phases
#   roundel-fast  200 ms checks, in the health phases only
#
#   benches/run-anchors.sh [--quick] [--phases ...]   (extra options go to the harness)
#
# Needs the harness's Debian packages (see ../shared/bench/README.md). Results:
# ../shared/bench/.run/<timestamp>/results.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
cargo build --release --manifest-path "$here/Cargo.toml"
col="$here/benches/anchor-column.sh"
exec "$bench/run-anchors.sh" \
    --extra "roundel:5320:static,www,failover:exec $col {port} {zonefile} {rundir} {threads} default" \
    --extra "roundel-fast:5321:failover:exec $col {port} {zonefile} {rundir} {threads} fast" \
    "$@"
