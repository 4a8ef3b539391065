#!/usr/bin/env bash
# Runs Roundel as one column of the shared anchor benchmark (../shared/bench), which
# starts it with `--extra 'roundel:PORT:static,www,failover:<this script> ...'`.
#
#   benches/anchor-column.sh PORT ZONEFILE RUNDIR THREADS [PROFILE]
#
# ZONEFILE is the harness's static zone (RFC 1035); it is imported as a Roundel zone and
# the health-aware name www.lb.example is added as a pool of 127.0.0.11-14 checked with
# GET http://<node>:8080/health (200 = healthy), TTL 30, every healthy address in each
# answer, as the harness asks of every server. PROFILE "default" uses Roundel's default
# check timing; "fast" checks every 200 ms with a 100 ms timeout.
# The binary is target/release/roundel unless ROUNDEL_BIN says otherwise.
set -euo pipefail
port=$1 zonefile=$2 rundir=$3 threads=$4 profile=${5:-default}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ROUNDEL_BIN:-$here/target/release/roundel}

mkdir -p "$rundir/zones"
zone="$rundir/zones/lb.example.toml"
"$bin" import "$zonefile" --origin lb.example. > "$zone"
timing=""
if [[ $profile == fast ]]; then
    timing=$'interval = "200ms"\ntimeout = "100ms"'
fi
cat >> "$zone" <<EOT

[checks.health]
http = { port = 8080, path = "/health", host = "www.lb.example" }
$timing

[pools.www]
check = "health"
ttl = 30
nodes = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"]
EOT
# Response rate limiting off: the load generator is one client sending the same names
# tens of thousands of times a second, which RRL exists to refuse (the reference servers
# of the harness run without it too).
cat > "$rundir/roundel.toml" <<EOT
[rrl]
enabled = false
EOT
# No admin listener: the harness requires each server to listen on its assigned port only.
exec "$bin" serve --config "$rundir/roundel.toml" --zones "$rundir/zones" --listen "127.0.0.1:$port" --udp-threads "$threads" --no-admin
