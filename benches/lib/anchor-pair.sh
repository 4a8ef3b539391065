# Shared by benches/callgrind.sh and benches/kernel-share.sh: Roundel and gdnsd set up
# to answer the same queries from the same zone, one UDP worker each.
#
# The zone is the anchor benchmark's static part plus a delegation with glue, and the
# pool `www` over four nodes that answer an HTTP health check (healthsrv.py on
# 127.0.0.41-44:8080) checked once an hour, so that only the first check falls in a run.
# Response rate limiting is off for Roundel: the load is one client asking one name many
# thousand times, which RRL exists to refuse (gdnsd has none).
#
# Source it after setting: here, bench (../shared/bench), bin (Roundel), run (the run
# directory), port, servers (comma list of roundel,gdnsd) and the array pids (PIDs to
# stop on exit). It defines `pair_nodes`, `pair_qname`, `pair_kinds`, and:
#   pair_backends         start the four health backends (bounded wait until they accept)
#   pair_configs          write $run/lb.example.zone and each server's configuration
#   pair_cmd SRV          set the array `cmd` to the command line of server SRV
#   pair_wait_ready SRV PID LOG
#                         wait (bounded) until SRV answers the SOA and the pool is healthy

pair_nodes=(127.0.0.41 127.0.0.42 127.0.0.43 127.0.0.44)
declare -A pair_qname=(
    [static]="static.lb.example A"
    [pool]="www.lb.example A"
    [nxdomain]="nx.lb.example A"
    [referral]="host.sub.lb.example A"
)
pair_kinds=(static pool nxdomain referral)

pair_backends() {
    local a
    for a in "${pair_nodes[@]}"; do
        python3 "$bench/lib/healthsrv.py" "$a" 8080 >/dev/null 2>&1 &
        pids+=($!)
    done
    for a in "${pair_nodes[@]}"; do
        for _ in $(seq 50); do
            python3 - "$a" <<'PY' && break
import socket, sys
s = socket.socket(); s.settimeout(0.2)
sys.exit(0 if s.connect_ex((sys.argv[1], 8080)) == 0 else 1)
PY
            sleep 0.1
        done
    done
}

pair_configs() {
    local zone="$run/lb.example.zone"
    cp "$bench/templates/lb.example.static.zone" "$zone"
    cat >> "$zone" <<'EOT'
; A delegation with glue, for the referral query.
sub     IN NS  ns.sub.lb.example.
ns.sub  IN A   127.0.0.1
EOT
    mkdir -p "$run/roundel/zones" "$run/gdnsd/zones"
    if [[ ,$servers, == *,roundel,* ]]; then
        "$bin" import "$zone" --origin lb.example. > "$run/roundel/zones/lb.example.toml"
        cat >> "$run/roundel/zones/lb.example.toml" <<EOT

[checks.health]
http = { port = 8080, path = "/health", host = "www.lb.example" }
interval = "1h"
timeout = "1s"
rise = 1

[pools.www]
check = "health"
ttl = 30
nodes = [$(printf '"%s", ' "${pair_nodes[@]}" | sed 's/, $//')]
EOT
    fi
    printf '[rrl]\nenabled = false\n' > "$run/roundel/roundel.toml"
    { cat "$zone"; echo "www     30 DYNA multifo!www"; } > "$run/gdnsd/zones/lb.example"
    cat > "$run/gdnsd/config" <<EOT
options => {
  listen => [ 127.0.0.1:$port ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => "$run/gdnsd/run"
  state_dir => "$run/gdnsd/state"
}
service_types => {
  health => {
    plugin => http_status
    port => 8080
    url_path => /health
    vhost => www.lb.example
    interval => 3600
    timeout => 1
    up_thresh => 1
    ok_thresh => 1
    down_thresh => 1
  }
}
plugins => {
  multifo => {
    www => {
      service_types => [ health ]
      n1 => ${pair_nodes[0]}
      n2 => ${pair_nodes[1]}
      n3 => ${pair_nodes[2]}
      n4 => ${pair_nodes[3]}
    }
  }
}
EOT
}

pair_cmd() {
    case $1 in
        roundel) cmd=("$bin" serve --config "$run/roundel/roundel.toml" --zones "$run/roundel/zones"
                      --listen "127.0.0.1:$port" --udp-threads 1 --no-admin) ;;
        gdnsd) cmd=(gdnsd -c "$run/gdnsd" start) ;;
        *) echo "unknown server $1" >&2; return 1 ;;
    esac
}

pair_wait_ready() {
    local srv=$1 pid=$2 log=$3 ready=""
    for _ in $(seq 240); do
        kill -0 "$pid" 2>/dev/null || { echo "$srv exited early, see $log" >&2; return 1; }
        if dig +short +tries=1 +time=1 -p "$port" @127.0.0.1 lb.example SOA 2>/dev/null | grep -q .; then
            ready=1; break
        fi
        sleep 0.25
    done
    [[ -n $ready ]] || { echo "$srv not answering on $port, see $log" >&2; return 1; }
    # the pool is healthy before anything is measured (first check done)
    for _ in $(seq 120); do
        [[ $(dig +short +tries=1 +time=1 -p "$port" @127.0.0.1 www.lb.example A | wc -l) == 4 ]] && return 0
        sleep 0.25
    done
    echo "$srv: pool www not healthy within 30 s, see $log" >&2
    return 1
}
