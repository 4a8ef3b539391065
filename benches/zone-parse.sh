#!/usr/bin/env bash
# Where the CPU of a large zone's load goes, parse thread against builder, for two builds
# of Roundel on the same generated zones: `roundel check`, which loads and validates the
# zone and exits.
#
#   benches/zone-parse.sh [-c NAMES] [-w NAMES] [-r RUNS] [-o OUTFILE] BEFORE_BIN AFTER_BIN
#
#   -c  names of the zone counted under callgrind (default 200000)
#   -w  names of the zone timed (default 1000000)
#   -r  timed runs of each binary, interleaved (default 3)
#   -o  also write the Markdown table to this file
#
# Method. The zones come from benches/gen-zone.py, each alone in a directory as
# big.test.toml. For each binary:
# - `valgrind --tool=callgrind --separate-threads=yes` of `check` on the counted zone:
#   user-space instructions of the whole process and of the parse thread (`zone-parse`),
#   which do not depend on the machine's load;
# - `perf record` of `check` on the timed zone: CPU samples per thread;
# - RUNS interleaved `/usr/bin/time` runs of `check` on the timed zone: wall time, user and
#   system CPU and maximum RSS; medians are quoted. Wall time is only meaningful when the
#   other core is free (see `uptime`, printed at the start and the end).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
counted=200000 timed=1000000 runs=3 outfile=""
while getopts "c:w:r:o:" opt; do
    case $opt in
        c) counted=$OPTARG ;;
        w) timed=$OPTARG ;;
        r) runs=$OPTARG ;;
        o) outfile=$OPTARG ;;
        *) sed -n '2,21p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 2 ]] || { sed -n '2,21p' "$0"; exit 2; }
before=$1 after=$2
for tool in valgrind perf python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
for b in "$before" "$after"; do
    [[ -x $b ]] || { echo "not an executable: $b" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "missing: /usr/bin/time" >&2; exit 1; }

run=zone-parse-$(date -u +%Y%m%dT%H%M%SZ)-$(git -C "$here" rev-parse --short HEAD)
work=$(mktemp -d "/tmp/$run.XXXX")
echo "run $run, work $work"
echo "start: $(uptime)"
for n in "$counted" "$timed"; do
    mkdir -p "$work/z$n"
    [[ -f $work/z$n/big.test.toml ]] || python3 "$here/benches/gen-zone.py" "$n" "$work/z$n/big.test.toml"
done

declare -A total parse psamples tsamples wall user sys rss
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

for side in before after; do
    bin=${!side}
    out=$work/cg-$side
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out.%p" \
        "$bin" check "$work/z$counted" >"$out.log" 2>&1
    # One file per thread: the main thread (builder) is -01; the parse thread names itself.
    all=0 par=0
    for f in "$out".*-[0-9]*; do
        ir=$(awk '/^totals:/ {print $2}' "$f")
        all=$((all + ir))
        if grep -q 'chunked::produce' "$f"; then
            par=$((par + ir))
        fi
    done
    total[$side]=$all parse[$side]=$par
    perf record -q -F 999 -o "$work/perf-$side.data" "$bin" check "$work/z$timed" >/dev/null 2>&1
    read -r p t < <(perf report -i "$work/perf-$side.data" --sort comm -F sample,comm --stdio 2>/dev/null |
        awk '$1 ~ /^[0-9]+$/ {t += $1; if ($2 == "zone-parse") p += $1} END {print p + 0, t + 0}')
    psamples[$side]=$p tsamples[$side]=$t
done

for i in $(seq "$runs"); do
    for side in before after; do
        bin=${!side}
        /usr/bin/time -f "%e %U %S %M" -o "$work/time-$side-$i" "$bin" check "$work/z$timed" >/dev/null
    done
done
for side in before after; do
    wall[$side]=$(cat "$work"/time-$side-* | awk '{print $1}' | median)
    user[$side]=$(cat "$work"/time-$side-* | awk '{print $2}' | median)
    sys[$side]=$(cat "$work"/time-$side-* | awk '{print $3}' | median)
    rss[$side]=$(cat "$work"/time-$side-* | awk '{print int($4 / 1024)}' | median)
done
echo "end: $(uptime)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}'; }
share() { awk -v p="$1" -v t="$2" 'BEGIN {printf "%.0f %%", (t > 0 ? 100 * p / t : 0)}'; }
millions() { awk -v v="$1" 'BEGIN {printf "%\047d M", v / 1e6}'; }
table=$(
    echo "| $run | before | after | after / before |"
    echo "|---|---|---|---|"
    echo "| instructions, check of $counted names | $(millions "${total[before]}") | $(millions "${total[after]}") | $(ratio "${total[before]}" "${total[after]}") |"
    echo "| of which the parse thread | $(millions "${parse[before]}") | $(millions "${parse[after]}") | $(ratio "${parse[before]}" "${parse[after]}") |"
    echo "| parse thread's share of CPU samples, $timed names | $(share "${psamples[before]}" "${tsamples[before]}") | $(share "${psamples[after]}" "${tsamples[after]}") | |"
    echo "| CPU samples (1 ms), $timed names | ${tsamples[before]} | ${tsamples[after]} | $(ratio "${tsamples[before]}" "${tsamples[after]}") |"
    echo "| wall s, median of $runs, $timed names | ${wall[before]} | ${wall[after]} | $(ratio "${wall[before]}" "${wall[after]}") |"
    echo "| user + sys s, median | ${user[before]} + ${sys[before]} | ${user[after]} + ${sys[after]} | |"
    echo "| max RSS MiB, median | ${rss[before]} | ${rss[after]} | $(ratio "${rss[before]}" "${rss[after]}") |"
)
echo "$table"
[[ -z $outfile ]] || echo "$table" >"$outfile"
