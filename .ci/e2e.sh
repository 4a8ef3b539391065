#!/usr/bin/env bash
# End-to-end test of the built binary, started exactly as the README says:
#
#     cargo run --release -- serve          # from the repo root: zones/ on 127.0.0.1:5353
#
# (with --listen on a free port when 5353 is taken), queried with dig over UDP
# and TCP. Then: SIGHUP reload (new data taken, invalid data rejected with the
# old kept), `roundel check` and `roundel export`. Exits non-zero on any failure.
#
# E2E_TARGET=127.0.0.1:PORT runs only the dig checks against an already
# running server (used to validate this script against Knot).
#
# Every wait is bounded; the servers we start are stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/roundel-e2e.XXXXXX)
PIDS=()
FAILS=0

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
fail() { say "FAIL: $*"; FAILS=$((FAILS + 1)); }

port_busy() {
    ss -Hln "sport = :$1" 2>/dev/null | grep -q . 
}

free_port() {
    local p
    for p in $(seq 15353 15453); do
        if ! port_busy "$p"; then echo "$p"; return 0; fi
    done
    say "no free port in 15353-15453"; return 1
}

# dig against the server under test; short, bounded timeouts.
q() { dig @127.0.0.1 -p "$PORT" +norec +time=2 +tries=1 "$@"; }

# check DESCRIPTION 'dig args' REGEX... : every REGEX must match dig's output.
check() {
    local desc=$1 args=$2 out re
    shift 2
    # shellcheck disable=SC2086
    if ! out=$(q $args 2>&1); then
        fail "$desc: dig $args failed:"$'\n'"$out"; return
    fi
    for re in "$@"; do
        if ! grep -Eq -- "$re" <<<"$out"; then
            fail "$desc: /$re/ not in the output of: dig $args"$'\n'"$out"
            return
        fi
    done
    say "ok: $desc"
}

# check_refused DESCRIPTION ZONE TYPE : the zone transfer must be answered, and answered
# REFUSED (kdig names the rcode; dig only says "Transfer failed"). Silence fails too.
check_refused() {
    local desc=$1 zone=$2 type=$3 out
    out=$(kdig @127.0.0.1 -p "$PORT" +timeout=2 +retry=0 "$zone" "$type" 2>&1) || true
    if grep -q "server replied with error 'REFUSED'" <<<"$out"; then
        say "ok: $desc"
    else
        fail "$desc: no REFUSED in the output of: kdig $zone $type"$'\n'"$out"
    fi
}

# wait_log FILE REGEX COUNT : waits (at most 10 s) until REGEX matches more than COUNT lines
# of FILE: an observable event instead of a fixed sleep.
wait_log() {
    local file=$1 re=$2 count=$3
    for _ in $(seq 1 100); do
        if [ "$(grep -Ec -- "$re" "$file" || true)" -gt "$count" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

wait_answering() {
    local zone=$1 pid=${2:-}
    for _ in $(seq 1 120); do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            say "server exited during start-up"; return 1
        fi
        if q "$zone" SOA +short 2>/dev/null | grep -q .; then return 0; fi
        sleep 0.25
    done
    say "server did not answer $zone SOA on port $PORT within 30 s"
    return 1
}

dns_checks() {
    check "SOA, authoritative" "example.test SOA" \
        'status: NOERROR' 'flags: qr aa;' \
        'example\.test\.[[:space:]]+300[[:space:]]+IN[[:space:]]+SOA[[:space:]]+ns1\.example\.test\. hostmaster\.example\.test\. 2024010101 14400 3600 1209600 60'
    check "CNAME followed in-zone" "www.example.test A" \
        'status: NOERROR' 'ANSWER: 2,' 'CNAME[[:space:]]+web\.example\.test\.' 'web\.example\.test\.[[:space:]]+300[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.10'
    check "MX with additional addresses" "example.test MX" \
        'ANSWER: 2,' 'ADDITIONAL: 4$' 'mail\.example\.test\.[[:space:]]+300[[:space:]]+IN[[:space:]]+AAAA[[:space:]]+2001:db8::25'
    check "wildcard" "anything.apps.example.test A" \
        'flags: qr aa;' 'anything\.apps\.example\.test\.[[:space:]]+60[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.8[01]'
    check "NXDOMAIN with SOA (negative TTL 60)" "nx.example.test A" \
        'status: NXDOMAIN' 'flags: qr aa;' 'AUTHORITY: 1,' 'example\.test\.[[:space:]]+60[[:space:]]+IN[[:space:]]+SOA'
    check "NODATA" "ns1.example.test TXT" \
        'status: NOERROR' 'ANSWER: 0,' 'AUTHORITY: 1,'
    check "referral: NS and glue, no AA" "host.sub.example.test A" \
        'status: NOERROR' 'flags: qr;' 'ANSWER: 0, AUTHORITY: 2, ADDITIONAL: 3' \
        'sub\.example\.test\.[[:space:]]+300[[:space:]]+IN[[:space:]]+NS[[:space:]]+ns\.sub\.example\.test\.' \
        'ns\.sub\.example\.test\.[[:space:]]+300[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.99'
    check "REFUSED outside the zones" "example.org A" 'status: REFUSED'
    check "second zone" "www.second.test AAAA" 'flags: qr aa;' '2001:db8:2::80'
    check "reverse zone" "-x 192.0.2.10" 'PTR[[:space:]]+web\.example\.test\.'
    check "TCP" "+tcp example.test NS" 'status: NOERROR' 'flags: qr aa;' 'ANSWER: 2,'
    check "UDP truncation" "+ignore +bufsize=1232 huge.example.test TXT" 'flags: qr aa tc;'
    check "TCP carries the full answer" "+tcp huge.example.test TXT" 'ANSWER: 20,'
    check "no EDNS: truncated at 512" "+ignore +noedns big.example.test TXT" 'flags: qr aa tc;'
    check "EDNS payload capped at 1232" "+bufsize=4096 example.test SOA" 'udp: 1232'
    check "RD copied, RA never set" "+rec example.test SOA" 'flags: qr aa rd;'
    check "EDNS version 1: BADVERS" "+edns=1 +noednsnegotiation example.test SOA" 'status: BADVERS'
    check "ANY: one RRset" "example.test ANY" 'ANSWER: 1,'
    check_refused "AXFR refused" example.test AXFR
}

if [ -n "${E2E_TARGET:-}" ]; then
    PORT=${E2E_TARGET##*:}
    dns_checks
    [ "$FAILS" -eq 0 ] || { say "$FAILS check(s) failed"; exit 1; }
    say "all checks passed against $E2E_TARGET"
    exit 0
fi

say "== build"
# A clean release build (fat LTO, one codegen unit) took 9:42 with one job on the 2-core
# VM while another build ran: the bound leaves room for a slower machine.
timeout 1500 cargo build --release --locked
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/roundel

say "== serve, as the README says"
if port_busy 5353; then
    PORT=$(free_port)
    say "5353 is busy: using --listen 127.0.0.1:$PORT"
    timeout 600 cargo run --release --locked -- serve --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
else
    PORT=5353
    timeout 600 cargo run --release --locked -- serve >"$WORK/serve.log" 2>&1 &
fi
PIDS+=($!)
if ! wait_answering example.test. "${PIDS[0]}"; then
    cat "$WORK/serve.log" >&2
    exit 1
fi
dns_checks
kill -TERM "${PIDS[0]}"
for _ in $(seq 1 50); do kill -0 "${PIDS[0]}" 2>/dev/null || break; sleep 0.1; done
if kill -0 "${PIDS[0]}" 2>/dev/null; then fail "server still running 5 s after SIGTERM"; fi

say "== SIGHUP reload"
mkdir -p "$WORK/zones"
cp zones/*.toml "$WORK/zones/"
PORT=$(free_port)
# --no-watch: only SIGHUP can reload, so a reload seen below is SIGHUP's doing. Started
# without a `timeout` wrapper so that $! is the server itself: timeout(1) relays a SIGHUP
# to its whole process group as well as to the child, and a second SIGHUP could be lost
# there. The cleanup trap stops it by PID.
"$BIN" serve --no-watch --listen "127.0.0.1:$PORT" --zones "$WORK/zones" >"$WORK/hup.log" 2>&1 &
HUP_PID=$!
PIDS+=("$HUP_PID")
wait_answering example.test. "$HUP_PID" || { cat "$WORK/hup.log" >&2; exit 1; }
check "before reload" "ns2.example.test A" '198\.51\.100\.53'
sed -i 's/^A = "198\.51\.100\.53"/A = "198.51.100.54"/' "$WORK/zones/example.test.toml"
grep -q '198.51.100.54' "$WORK/zones/example.test.toml" || fail "could not edit the zone copy"
kill -HUP "$HUP_PID"
reloaded=no
for _ in $(seq 1 40); do
    if q ns2.example.test A +short | grep -q '198\.51\.100\.54'; then reloaded=yes; break; fi
    sleep 0.25
done
[ "$reloaded" = yes ] && say "ok: SIGHUP loads new data" || fail "new data not served 10 s after SIGHUP"
printf 'this is = not [valid\n' >"$WORK/zones/broken.toml"
failed_before=$(grep -c 'reload failed' "$WORK/hup.log" || true)
kill -HUP "$HUP_PID"
wait_log "$WORK/hup.log" 'reload failed' "$failed_before" \
    || fail "no rejected reload logged 10 s after SIGHUP with an invalid zone"
kill -0 "$HUP_PID" 2>/dev/null || fail "server died on SIGHUP with an invalid zone"
check "invalid zones on SIGHUP: old data kept" "ns2.example.test A" '198\.51\.100\.54'

say "== roundel check"
if out=$("$BIN" check zones 2>&1); then say "ok: check zones/"; else fail "check zones/ failed: $out"; fi
set +e
out=$("$BIN" check "$WORK/zones/broken.toml" 2>&1)
rc=$?
set -e
if [ "$rc" -eq 1 ] && grep -Eq '^[^:]+broken\.toml:[0-9]+:[0-9]+: .+' <<<"$out"; then
    say "ok: check reports file:line:column: [key: ]reason"
else
    fail "check of an invalid file: exit $rc, output: $out"
fi

say "== roundel export"
for f in zones/*.toml; do
    origin=$(sed -n 's/^origin = "\(.*\)"/\1/p' "$f")
    if ! "$BIN" export "$f" >"$WORK/export.zone" 2>"$WORK/export.err"; then
        fail "export $f: $(cat "$WORK/export.err")"
    elif ! nsd-checkzone "${origin%.}" "$WORK/export.zone" >/dev/null 2>"$WORK/check.err"; then
        fail "export $f is not a valid master file: $(cat "$WORK/check.err")"
    else
        say "ok: export $f"
    fi
done

say "== the README pool demo, as written"
# The block after the `e2e: pool-demo` marker in README.md, run unchanged with `roundel`
# (the binary just built, as `cargo install --path .` would put it) on the PATH. It uses
# the fixed addresses of the README: 5353, 8053 and 127.0.0.11-13:8080 must be free.
kill -TERM "$HUP_PID" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$HUP_PID" 2>/dev/null || break; sleep 0.1; done
DEMO=$(awk '/<!-- e2e: pool-demo/ {m=1; next} m && /^```sh/ {b=1; next} b && /^```/ {exit} b' README.md)
if [ -z "$DEMO" ]; then
    fail "no pool demo block after the e2e marker in README.md"
elif port_busy 5353 || port_busy 8053 || ss -Hln 'sport = :8080' 2>/dev/null | grep -Eq '127\.0\.0\.1[123]:8080'; then
    fail "the README demo needs 127.0.0.1:5353, :8053 and 127.0.0.11-13:8080 free"
else
    mkdir -p "$WORK/bin" && ln -sf "$BIN" "$WORK/bin/roundel"
    # In its own process group, so that whatever it leaves behind on failure is stopped
    # by that group's id (our child's PID), never by a name pattern.
    PATH="$WORK/bin:$PATH" setsid bash -euo pipefail -c "$DEMO" >"$WORK/demo.out" 2>&1 </dev/null &
    DEMO_PID=$!
    for _ in $(seq 1 600); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.2; done
    demo_rc=0
    if kill -0 "$DEMO_PID" 2>/dev/null; then
        demo_rc=124
    else
        wait "$DEMO_PID" || demo_rc=$?
    fi
    kill -TERM -- "-$DEMO_PID" 2>/dev/null || true
    if [ "$demo_rc" -eq 0 ]; then
        out=$(cat "$WORK/demo.out")
        # The dig outputs in order: all three, then .12 gone, then back.
        if grep -q '127.0.0.12 drained in' <<<"$out" && grep -q 'ALL\|normal\|degraded' <<<"$out"; then
            say "ok: the README pool demo runs as written"
        else
            fail "README pool demo output unexpected:"$'\n'"$out"
        fi
    else
        fail "README pool demo failed (exit $demo_rc):"$'\n'"$(cat "$WORK/demo.out")"
    fi
fi

if [ "$FAILS" -ne 0 ]; then
    say "== $FAILS check(s) failed; server log:"
    cat "$WORK/serve.log" "$WORK/hup.log" >&2 2>/dev/null || true
    exit 1
fi
say "== e2e: all checks passed"
