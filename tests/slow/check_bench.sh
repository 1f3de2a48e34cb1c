#!/usr/bin/env bash
# check_bench.sh -- `make bench`'s script on a small load: it finishes, prints every row of
# its table and a BENCH line whose figures are all numbers, and the publisher alone re-sent
# more records than there were inputs. No figure is judged here: speed is what `make bench`
# measures, never what a test asserts.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
# Enough that the dry run is seen before it has consumed them all (/metrics every 20 ms).
n=60000

run_bench() {
    BENCH_MESSAGES=$n BENCH_PHASE_TIMEOUT=90 bench/run > "$tmp/bench.out" 2>&1
}

has_rows() {
    local row
    for row in "kcat, library defaults" "kcat (raw consume)" "daemon, full" "daemon, dry run" \
        "publisher alone"; do
        grep -q "^$row " "$tmp/bench.out" || { echo "# no row: $row"; return 1; }
    done
}

# Every key the report promises, each with a number (*_tries_mps: three, comma-separated).
bench_line_complete() {
    awk -v n="$n" '
        /^BENCH / {
            seen = 1
            for (i = 2; i <= NF; i++) {
                split($i, kv, "=")
                if (kv[2] !~ /^[0-9][0-9.,]*$/) { print "# not a number: " $i; bad = 1 }
                v[kv[1]] = kv[2]
            }
        }
        END {
            split("messages bytes kcat_mps kcat_defaults_mps kcat_tries_mps full_mps dry_mps " \
                  "full_ratio dry_ratio p50_us p99_us peak_rss_mb full_cpu_s dry_cpu_s " \
                  "publisher_records publisher_s publisher_cpu_s full_bound_mps " \
                  "full_tries_mps dry_tries_mps full_median_ratio dry_median_ratio " \
                  "p99_max_us dry_p99_max_us peak_rss_max_mb dry_peak_rss_max_mb " \
                  "full_round_ratios dry_round_ratios full_round_median dry_round_median", keys, " ")
            for (k in keys)
                if (!(keys[k] in v)) { print "# missing: " keys[k]; bad = 1 }
            if (v["messages"] != n) { print "# messages=" v["messages"]; bad = 1 }
            if (v["publisher_records"] + 0 <= n) { print "# too few records re-sent"; bad = 1 }
            if (split(v["full_tries_mps"], t, ",") != 3 || split(v["dry_tries_mps"], t, ",") != 3 ||
                split(v["full_round_ratios"], t, ",") != 3 || split(v["dry_round_ratios"], t, ",") != 3) {
                print "# not three runs of each daemon mode"; bad = 1
            }
            exit !seen || bad
        }' "$tmp/bench.out"
}

check "bench/run finishes on $n messages" run_bench
check "it prints every row of the table" has_rows
check "its BENCH line has every figure, each a number" bench_line_complete
[ "$failed" -eq 0 ] || tail -n 20 "$tmp/bench.out" | sed 's/^/# /'
finish check_bench
