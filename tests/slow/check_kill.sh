#!/usr/bin/env bash
# check_kill.sh -- SIGKILL the daemon at random moments of a stream, ten times, restarting it
# each time, then let it drain: every input has its outputs or its dead letter, and what was
# handled twice stays within what each crash can redo.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
e2e="$py tests/e2e_tool.py"
# A stream of 70,000 inputs at 700 a second outlasts the ten runs and their restarts (each
# waits about session_timeout_ms for the killed member to leave the group). Inputs go round
# the partitions and one in ten is a poison pill: with 16 partitions the pills (20 KB ones
# among them) spread over eight, within the mock cluster's 5 MiB a partition; with 20 they
# would all land in two and overflow it.
inputs=70000 rate=700 kills=10 partitions=16
# The settings the duplicate bound is computed from.
max_in_flight=1000 batch_size=100 commit_ms=100
ppid_=
trap '[ -n "$ppid_" ] && kill "$ppid_" 2> /dev/null; cleanup' EXIT

start_mock "$partitions"

# write_conf: a fresh HTTP port for every start, so a restart never waits for the old one.
write_conf() {
    port=$($py tests/observe_tool.py free-port)
    cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "kill";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = $commit_ms; };
};
processing = { batch_size = $batch_size; max_in_flight = $max_in_flight;
               max_message_bytes = 16384; shutdown_timeout_s = 20; };
circuit_breaker = { open_timeout_s = 1; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF
}

# committed: how many inputs the group has committed, over every partition.
committed() {
    $e2e committed "$addr" kill "$tmp/committed" &&
        awk '$2 > 0 { n += $2 } END { print n + 0 }' "$tmp/committed"
}

$e2e produce "$addr" "$inputs" "$tmp/manifest" --rate "$rate" > "$tmp/produce.out" \
    2> "$tmp/produce.err" &
ppid_=$!
total=$((inputs + 2))

# The duplicate bound. A crash redoes the inputs it handled and did not commit:
#   - those handled but not stored at the last commit that reached the broker: at most the
#     messages in flight, max_in_flight + batch_size (consumption pauses at max_in_flight, and
#     one batch can be taken before that check), plus one batch acknowledged but not yet stored
#     when the loop turns: max_in_flight + 2 * batch_size;
#   - those handled since that commit. Commits go out every auto_commit_interval_ms; allowing
#     as long again for the answer, that is what the daemon handled in the last
#     2 * auto_commit_interval_ms before the kill, read from its own /metrics counter
#     (e2e_tool.py signal-at), plus one batch for the moment between the last look and the kill.
window_ms=$((2 * commit_ms))
bound=0 before=0
for i in $(seq "$kills"); do
    write_conf
    "$bin" -c "$tmp/crm.conf" 2> "$tmp/kill$i.log" &
    dpid=$!
    # A random moment: 0.5 to 2 s after this run has handled its first input.
    after=$(printf '%d.%02d' $((RANDOM % 2)) $((RANDOM % 100)))
    read -r _ n _ window _ _ < <($e2e signal-at "http://127.0.0.1:$port/metrics" "$dpid" 1 \
        KILL "$window_ms" "$(awk -v a="$after" 'BEGIN { print a * 0.75 + 0.5 }')")
    [ -n "${window:-}" ] || kill -KILL "$dpid" 2> /dev/null # it did not get that far
    { wait "$dpid"; } 2> /dev/null
    rc=$?
    dpid=
    killed=no
    [ "$rc" -eq 137 ] && [ -n "${window:-}" ] && killed=yes
    check "run $i: SIGKILL after ${n:-no} inputs handled" [ "$killed" = yes ]
    [ "$killed" = yes ] || { tail -n 20 "$tmp/kill$i.log"; break; }
    redo=$((max_in_flight + 2 * batch_size + window + batch_size))
    bound=$((bound + redo))
    now=$(committed)
    echo "# run $i: $window handled in the last $window_ms ms, so this crash may redo $redo;" \
        "committed $before -> $now of $total; about $((n - (now - before))) to redo"
    before=$now
done
# A daemon that never committed would redo everything; these runs must have moved on.
check "the killed runs committed $before of $total inputs between them" [ "$before" -gt 0 ]
check "the last SIGKILL was mid-stream: inputs left to handle" [ "$before" -lt "$total" ]

write_conf
"$bin" -c "$tmp/crm.conf" 2> "$tmp/drain.log" &
dpid=$!
wait "$ppid_"
check "the stream: $inputs mixed inputs produced" [ $? -eq 0 ]
ppid_=
cat "$tmp/produce.out"
check "after $kills kills, a restart drains every input" \
    $py tests/kafka_tool.py wait-committed "$addr" kill crm.inbound 120
kill -TERM "$dpid"
wait "$dpid"
check "the last run: SIGTERM exits 0" [ $? -eq 0 ]
dpid=

echo "# duplicate bound over $kills kills: $bound"
check "every input has its outputs or its dead letter; duplicates within $bound" \
    $e2e verify "$addr" "$tmp/manifest" --max-duplicates "$bound" --duplicates "$tmp/dups"

finish kill
