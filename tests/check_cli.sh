#!/usr/bin/env bash
# check_cli.sh -- the command line: -t on good and bad files, exit codes, usage.
set -u
cd "$(dirname "$0")/.."
bin=${CRM_BIN:-./crm-consumerd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect NAME WANT_STATUS WANT_OUTPUT_FILE -- CMD...: run CMD, compare status and combined output.
expect() {
    local name=$1 want_status=$2 want=$3
    shift 4
    local got status
    got=$("$@" 2>&1)
    status=$?
    if [ "$status" -eq "$want_status" ] && [ "$got" = "$(cat "$want")" ]; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name (status $status, want $want_status)"
        diff -u "$want" <(printf '%s\n' "$got") | sed 's/^/#   /'
        failed=$((failed + 1))
    fi
}

echo "configuration OK" > "$tmp/ok.out"
expect "shipped configuration passes -t" 0 "$tmp/ok.out" -- $bin -t -c conf/crm-consumer.conf

cat > "$tmp/three.conf" <<'CONF'
kafka = {
  brokers = "localhost:9092";
  topics = [ "crm.inbound" ];
};
processing = {
  batch_size = 0;
};
log = {
  level = "verbose";
  colour = true;
};
CONF
cat > "$tmp/three.out" <<OUT
$tmp/three.conf:6: processing.batch_size: must be an integer from 1 to 100000 (got 0)
$tmp/three.conf:9: log.level: must be one of "error", "warning", "notice", "info", "debug" (got "verbose")
$tmp/three.conf:10: log.colour: unknown setting
OUT
expect "three mistakes: three file:line errors, exit 78" 78 "$tmp/three.out" -- \
    $bin -t -c "$tmp/three.conf"

# The daemon itself refuses to start on the same file, with the same exit status.
if $bin -c "$tmp/three.conf" >/dev/null 2>&1; then status=0; else status=$?; fi
if [ "$status" -eq 78 ]; then
    echo "ok - daemon refuses a bad file with 78"; passed=$((passed + 1))
else
    echo "not ok - daemon refuses a bad file with 78 (got $status)"; failed=$((failed + 1))
fi

printf '%s: cannot open: No such file or directory\n' "$tmp/absent.conf" > "$tmp/absent.out"
expect "missing file: exit 66" 66 "$tmp/absent.out" -- $bin -t -c "$tmp/absent.conf"

if $bin --no-such-option >/dev/null 2>&1; then status=0; else status=$?; fi
if [ "$status" -eq 64 ]; then
    echo "ok - unknown option: exit 64"; passed=$((passed + 1))
else
    echo "not ok - unknown option: exit 64 (got $status)"; failed=$((failed + 1))
fi

if $bin -V | grep -qE '^crm-consumerd [0-9.]+ \(librdkafka [0-9.]+\)$'; then
    echo "ok - version"; passed=$((passed + 1))
else
    echo "not ok - version"; failed=$((failed + 1))
fi

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
