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

# The identity store's directory must be one the daemon can use, or make.
touch "$tmp/afile"
printf 'kafka = { brokers = "localhost:9092"; };\nidentity = { store_path = "%s/afile/store"; };\n' \
    "$tmp" > "$tmp/store.conf"
printf '%s:2: identity.store_path: %s is not a directory\n' "$tmp/store.conf" "$tmp/afile" \
    > "$tmp/store.out"
expect "-t: an unusable store directory is a file:line error, exit 78" 78 "$tmp/store.out" -- \
    $bin -t -c "$tmp/store.conf"
printf 'kafka = { brokers = "localhost:9092"; };\nidentity = { store_path = "%s/new/store"; };\n' \
    "$tmp" > "$tmp/store2.conf"
expect "-t: a store directory that can be made passes" 0 "$tmp/ok.out" -- \
    $bin -t -c "$tmp/store2.conf"

printf '%s: no such file; copy conf/crm-consumer.conf there, or name another with -c FILE\n' \
    "$tmp/absent.conf" > "$tmp/absent.out"
expect "missing file: one line, exit 66" 66 "$tmp/absent.out" -- $bin -t -c "$tmp/absent.conf"

# status NAME WANT PATTERN -- CMD...: the exit status, and a line of stderr matching PATTERN.
status() {
    local name=$1 want=$2 pattern=$3 got
    shift 4
    "$@" > "$tmp/out" 2>&1
    got=$?
    if [ "$got" -eq "$want" ] && grep -qE "$pattern" "$tmp/out"; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name (status $got, want $want)"
        sed 's/^/#   /' "$tmp/out"
        failed=$((failed + 1))
    fi
}

# -t makes every Kafka client's configuration as the start does, and reports what librdkafka
# would refuse there as file:line errors: before, it said OK and the start exited 69.
idem="(crm-consumerd's producer is always idempotent)"
refused() { # refused NAME PROPERTY MESSAGE
    printf 'kafka = {\n  brokers = "localhost:9092";\n  properties = {\n    session_timeout_ms = 45000;\n    %s;\n  };\n};\n' \
        "$2" > "$tmp/props.conf"
    printf '%s\n' "$tmp/props.conf:5: kafka.properties.$3" > "$tmp/props.out"
    expect "-t refuses $1, exit 78" 78 "$tmp/props.out" -- $bin -t -c "$tmp/props.conf"
}
refused "acks = 0" "acks = 0" \
    "acks: librdkafka refuses it for the producer: \`acks\` must be set to \`all\` when \`enable.idempotence\` is true $idem"
refused "acks = 1" "acks = 1" \
    "acks: librdkafka refuses it for the producer: \`acks\` must be set to \`all\` when \`enable.idempotence\` is true $idem"
refused "max.in.flight = 10" "max_in_flight_requests_per_connection = 10" \
    "max_in_flight_requests_per_connection: librdkafka refuses it for the producer: \`max.in.flight\` must be set <= 5 when \`enable.idempotence\` is true $idem"
refused "retries = 0" "retries = 0" \
    "retries: librdkafka refuses it for the producer: \`retries\` must be set >= 1 when \`enable.idempotence\` is true $idem"
refused "an unknown assignor" 'partition_assignment_strategy = "bogus"' \
    "partition_assignment_strategy: librdkafka refuses it for the consumer: Unsupported partition.assignment.strategy: bogus"
refused "enable.idempotence = false" "enable_idempotence = false" \
    "enable_idempotence: must be true, as crm-consumerd sets it: the producer is idempotent, so that its retries neither duplicate nor reorder outputs"

# Every refusal at once, each at its own line, also from an included file.
cat > "$tmp/props.inc" <<'CONF'
kafka = {
  brokers = "localhost:9092";
  properties = {
    acks = 1;
    linger_ms = 20;
    retries = 0;
  };
};
CONF
printf 'log = { level = "info"; };\n@include "%s"\n' "$tmp/props.inc" > "$tmp/props.conf"
cat > "$tmp/props.out" <<OUT
$tmp/props.inc:4: kafka.properties.acks: librdkafka refuses it for the producer: \`acks\` must be set to \`all\` when \`enable.idempotence\` is true $idem
$tmp/props.inc:6: kafka.properties.retries: librdkafka refuses it for the producer: \`retries\` must be set >= 1 when \`enable.idempotence\` is true $idem
OUT
expect "-t reports every refused property at its file and line" 78 "$tmp/props.out" -- \
    $bin -t -c "$tmp/props.conf"
# What -t accepts, the start accepts: the same file without the two goes as far as the brokers.
sed -i '/acks = 1;/d; /retries = 0;/d' "$tmp/props.inc"
expect "-t accepts the properties librdkafka takes" 0 "$tmp/ok.out" -- $bin -t -c "$tmp/props.conf"

# Only regular files are read, and the file with its includes is bounded: nothing blocks or
# takes long. Without the checks, a FIFO blocked for ever and a large include parsed for seconds.
mkfifo "$tmp/fifo"
status "-c names a FIFO: refused at once, exit 66" 66 \
    "^$tmp/fifo: cannot read: not a regular file but a FIFO; name the configuration file\$" -- \
    timeout 10 $bin -t -c "$tmp/fifo"
printf 'kafka = { brokers = "localhost:9092"; };\n@include "%s"\n' "$tmp/fifo" > "$tmp/fifo.conf"
status "@include of a FIFO: refused at once, exit 78" 78 \
    "^$tmp/fifo.conf:2: syntax error: cannot include \"$tmp/fifo\": not a regular file but a FIFO\$" \
    -- timeout 10 $bin -t -c "$tmp/fifo.conf"
printf 'kafka = { brokers = "localhost:9092"; };\n@include "/dev/zero"\n' > "$tmp/zero.conf"
status "@include of a device: refused, exit 78" 78 \
    'zero.conf:2: syntax error: cannot include "/dev/zero": not a regular file but a character device$' \
    -- timeout 10 $bin -t -c "$tmp/zero.conf"
# 700 KB each: either file alone is allowed, both together are over 1 MiB.
yes '# a comment line that pads the file out to its size, seventy-two bytes.' | head -n 9700 \
    > "$tmp/pad.conf"
printf 'kafka = { brokers = "localhost:9092"; };\n@include "%s"\n' "$tmp/pad.conf" > "$tmp/one.conf"
echo "configuration OK" > "$tmp/one.out"
expect "@include of a 700 KB file: allowed" 0 "$tmp/one.out" -- timeout 10 $bin -t -c "$tmp/one.conf"
printf '@include "%s"\n' "$tmp/pad.conf" >> "$tmp/one.conf"
status "two 700 KB includes: over 1 MiB together, exit 78" 78 \
    "^$tmp/one.conf:3: syntax error: cannot include \"$tmp/pad.conf\": the file and its includes together would be over 1048576 bytes, so not a configuration\$" \
    -- timeout 10 $bin -t -c "$tmp/one.conf"
{
    echo 'kafka = { brokers = "localhost:9092"; };'
    echo 'processing = {'
    seq 1 5000 | sed 's/.*/  x& = &;/'
    echo '};'
} > "$tmp/many.inc"
printf 'log = { level = "info"; };\n@include "%s"\n' "$tmp/many.inc" > "$tmp/many.conf"
status "5000 settings in an include: over 4096, exit 78" 78 \
    "^$tmp/many.conf: cannot read: over 4096 settings in the file and its includes together, so not a configuration\$" \
    -- timeout 10 $bin -t -c "$tmp/many.conf"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    cp conf/crm-consumer.conf "$tmp/private.conf"
    chmod 600 "$tmp/private.conf"
    # The other user must reach the binary: the checkout's folders may not let it.
    cp "$bin" "$tmp/crm-consumerd"
    chmod 755 "$tmp" "$tmp/crm-consumerd"
    status "unreadable file: exit 77" 77 'private.conf: permission denied; make it readable' -- \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$tmp/crm-consumerd" -t \
        -c "$tmp/private.conf"
elif [ "${CI:-}" = true ]; then
    echo "not ok - unreadable file: needs root and setpriv (CI must run it)"
    failed=$((failed + 1))
else
    echo "# SKIP unreadable file: needs root and setpriv to act as another user"
fi

printf 'kafka = { brokers = "no-such-host.invalid:9092"; };\nidentity = { store_path = "%s/store"; };\n' \
    "$tmp" > "$tmp/nohost.conf"
status "unresolvable broker: exit 68" 68 \
    'kafka.brokers: cannot resolve "no-such-host.invalid".*check the names' -- \
    $bin -c "$tmp/nohost.conf"

# Something already listens on the HTTP port.
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(30)' > "$tmp/port" &
holder=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
printf 'kafka = { brokers = "localhost:9092"; };\nhttp = { listen = "127.0.0.1:%s"; };\n%s\n' \
    "$(cat "$tmp/port")" "identity = { store_path = \"$tmp/store\"; };" > "$tmp/busy.conf"
status "HTTP port in use: exit 73" 73 'Address already in use; free the address or change' -- \
    $bin -c "$tmp/busy.conf"
kill "$holder" 2>/dev/null

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
