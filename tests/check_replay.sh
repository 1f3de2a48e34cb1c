#!/usr/bin/env bash
# check_replay.sh -- --dlq-stats and --replay on a mock cluster: dead letters turned into tickets.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tool="/usr/bin/python3 tests/replay_tool.py"

write_conf() { # write_conf MAX_MESSAGE_BYTES [DLQ_TOPIC]
    cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "replay-test";
  # Small produce requests: with slow brokers, a replay takes long enough to be killed midway.
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500;
                 batch_num_messages = 20; };
};
processing = { max_message_bytes = $1; shutdown_timeout_s = 10; };
output = { dlq_topic = "${2:-crm.inbound.dlq}"; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF
}

# Run the daemon until every input is committed, then stop it.
drain() {
    "$bin" -c "$tmp/crm.conf" 2>> "$tmp/daemon.log" &
    dpid=$!
    /usr/bin/python3 tests/kafka_tool.py wait-committed "$addr" replay-test crm.inbound 60 \
        > /dev/null
    kill -TERM "$dpid"
    wait "$dpid"
    dpid=
}

replay() { # replay NAME ARGS...: runs --replay; output in $tmp/NAME.out and .err, status in rc
    local name=$1
    shift
    "$bin" -c "$tmp/crm.conf" --replay "$@" > "$tmp/$name.out" 2> "$tmp/$name.err"
    rc=$?
}

count() { $tool count "$addr" "$1"; }

start_mock
port=$(/usr/bin/python3 tests/observe_tool.py free-port)
# 90 inputs: 30 too big for 2048 bytes (oversize), 30 bad JSON (parse), 30 fine.
write_conf 2048
$tool produce "$addr" 90 0
drain
check "the daemon dead-lettered 60 of 90 inputs" [ "$(count crm.inbound.dlq)" -eq 60 ]

"$bin" -c "$tmp/crm.conf" --dlq-stats > "$tmp/stats.out" 2> "$tmp/stats.err"
rc=$?
check "--dlq-stats: exit 0" [ "$rc" -eq 0 ]
check "--dlq-stats: the total" grep -q '^crm.inbound.dlq: 60 dead letters in 4 partitions$' \
    "$tmp/stats.out"
check "--dlq-stats: counts by class" bash -c "grep -Eq '^oversize +30$' '$tmp/stats.out' &&
    grep -Eq '^parse +30$' '$tmp/stats.out'"
check "--dlq-stats: by source topic" grep -Eq '^crm.inbound +60$' "$tmp/stats.out"
check "--dlq-stats: the reasons" grep -Eq '^invalid JSON near byte 1 +30$' "$tmp/stats.out"
check "--dlq-stats: oldest and newest failed_at" \
    grep -Eq '^failed_at: oldest [0-9-]{10}T[0-9:.]{12}Z, newest ' "$tmp/stats.out"
check "--dlq-stats: commits nothing" bash -c "! /usr/bin/python3 tests/kafka_tool.py \
    wait-committed '$addr' replay-test.dlq-stats crm.inbound.dlq 0 > /dev/null"

# The limit raised: a dry run says what would be done, and writes nothing.
write_conf 8192
replay dry --class oversize --dry-run
check "--dry-run: exit 0" [ "$rc" -eq 0 ]
check "--dry-run: the summary" grep -q '^replay (dry run: nothing written): 30 selected, 30 would be replayed, 0 would fail again, 0 skipped (60 dead letters read, 30 not selected)$' "$tmp/dry.out"
check "--dry-run: a line per dead letter" [ "$(grep -c '^would replay: ' "$tmp/dry.out")" -eq 30 ]
check "--dry-run: writes nothing" bash -c "[ \$($tool count '$addr' crm.tickets) -eq 30 ] &&
    [ \$($tool count '$addr' crm.inbound.dlq) -eq 60 ]"

replay first --class oversize
check "--replay: exit 0" [ "$rc" -eq 0 ]
check "--replay: the summary" grep -q '^replay: 30 selected, 30 replayed, 0 failed again, 0 skipped (60 dead letters read, 30 not selected)$' "$tmp/first.out"
check "--replay: every oversize input has its ticket, with its own source and trace" \
    $tool check "$addr"
check "--replay: the parse dead letters are untouched, no new dead letter" bash -c \
    "[ \$($tool count '$addr' crm.tickets) -eq 60 ] && [ \$($tool count '$addr' crm.inbound.dlq) -eq 60 ]"

replay second --class oversize
check "the same replay again: exit 0" [ "$rc" -eq 0 ]
check "the same replay again writes nothing" bash -c "grep -q '^replay: 0 selected, 0 replayed' \
    '$tmp/second.out' && [ \$($tool count '$addr' crm.tickets) -eq 60 ]"

replay parse --class parse
check "--class parse: every one fails again, exit 65" [ "$rc" -eq 65 ]
check "--class parse: reported with its reason" bash -c "[ \$(grep -c '^failed again: .*parse: invalid JSON' '$tmp/parse.out') -eq 30 ]"
check "--class parse: no new dead letter, no output" bash -c \
    "[ \$($tool count '$addr' crm.inbound.dlq) -eq 60 ] && [ \$($tool count '$addr' crm.tickets) -eq 60 ]"

# A larger batch; the brokers answer slowly, so SIGKILL finds the replay midway.
write_conf 2048
$tool produce "$addr" 3000 1000
drain
write_conf 8192
for b in 1 2 3; do echo "rtt $b 500" >&3; done
"$bin" -c "$tmp/crm.conf" --replay --class oversize > "$tmp/killed.out" 2> "$tmp/killed.err" &
dpid=$!
base=$(count crm.tickets)
until [ "$(count crm.tickets)" -gt $((base + 100)) ] || ! kill -0 "$dpid" 2> /dev/null; do
    sleep 0.1
done
kill -KILL "$dpid"
wait "$dpid"
rc=$?
dpid=
check "SIGKILL mid-replay: killed before the end" [ "$rc" -eq 137 ]
for b in 1 2 3; do echo "rtt $b 0" >&3; done
replay resumed --class oversize
check "after SIGKILL the replay resumes: exit 0" [ "$rc" -eq 0 ]
check "after SIGKILL: it replayed the rest" grep -Eq '^replay: ([0-9]+) selected, \1 replayed, 0 failed again, 0 skipped' "$tmp/resumed.out"
rest=$(sed -En 's/^replay: ([0-9]+) selected.*/\1/p' "$tmp/resumed.out")
check "after SIGKILL: the killed run had done part ($rest of 1000 left)" \
    [ "${rest:-0}" -gt 0 -a "${rest:-1000}" -lt 1000 ]
check "after SIGKILL: nothing missing, every source right" $tool check "$addr"

replay future --class oversize --since 2999-01-01T00:00:00+01:00 --dry-run
check "--since after every record: nothing selected" \
    grep -q '^replay (dry run: nothing written): 0 selected, ' "$tmp/future.out"

# Bad flags and a missing topic: one clear line each.
"$bin" -c "$tmp/crm.conf" --replay --class nosuch > /dev/null 2> "$tmp/bad.err"
rc=$?
check "--class nosuch: exit 64, one line naming the classes" bash -c "[ $rc -eq 64 ] &&
    [ \$(wc -l < '$tmp/bad.err') -eq 1 ] && grep -q 'not a class; the classes are' '$tmp/bad.err'"
"$bin" -c "$tmp/crm.conf" --replay --since garbage > /dev/null 2> "$tmp/bad.err"
rc=$?
check "--since garbage: exit 64, one line" bash -c "[ $rc -eq 64 ] &&
    [ \$(wc -l < '$tmp/bad.err') -eq 1 ] && grep -q 'is not an ISO 8601 time' '$tmp/bad.err'"
"$bin" -c "$tmp/crm.conf" --class oversize > /dev/null 2> "$tmp/bad.err"
rc=$?
check "--class without --replay: exit 64, one line" bash -c "[ $rc -eq 64 ] &&
    [ \$(wc -l < '$tmp/bad.err') -eq 1 ]"
write_conf 8192 no.such.dlq
"$bin" -c "$tmp/crm.conf" --dlq-stats > /dev/null 2> "$tmp/bad.err"
rc=$?
check "a missing dead-letter topic: exit 78, one line" bash -c "[ $rc -eq 78 ] &&
    [ \$(wc -l < '$tmp/bad.err') -eq 1 ] && grep -q 'no.such.dlq does not exist' '$tmp/bad.err'"
sed -i 's/^  brokers = .*/  brokers = "127.0.0.1:1";/' "$tmp/crm.conf"
"$bin" -c "$tmp/crm.conf" --dlq-stats > /dev/null 2> "$tmp/bad.err"
rc=$?
check "no brokers: exit 69, one line" bash -c "[ $rc -eq 69 ] &&
    [ \$(wc -l < '$tmp/bad.err') -eq 1 ] && grep -q 'no answer from the brokers' '$tmp/bad.err'"

finish replay
