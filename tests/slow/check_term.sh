#!/usr/bin/env bash
# check_term.sh -- SIGTERM the daemon at random points of a stream, several times, restarting
# it each time, then let it drain: each stop exits 0 within processing.shutdown_timeout_s,
# every input has its outputs or its dead letter, and none has them twice.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
e2e="$py tests/e2e_tool.py"
inputs=20000 stops=4 shutdown_s=10

start_mock 16

write_conf() {
    port=$($py tests/observe_tool.py free-port)
    cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "term";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 250; };
};
processing = { batch_size = 100; max_in_flight = 1000; max_message_bytes = 16384;
               shutdown_timeout_s = $shutdown_s; };
circuit_breaker = { open_timeout_s = 1; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF
}

check "produce $inputs mixed inputs" $e2e produce "$addr" "$inputs" "$tmp/manifest"

for i in $(seq "$stops"); do
    write_conf
    "$bin" -c "$tmp/crm.conf" 2> "$tmp/term$i.log" &
    dpid=$!
    # A random point of the stream: after 1,000 to 4,000 inputs handled in this run.
    at=$((1000 + RANDOM % 3001))
    read -r _ n _ _ _ sent < <($e2e signal-at "http://127.0.0.1:$port/metrics" "$dpid" "$at" TERM 1)
    [ -n "${sent:-}" ] || kill -KILL "$dpid" 2> /dev/null # it did not get that far
    wait "$dpid"
    rc=$?
    took=$(awk -v a="${sent:-0}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    dpid=
    stopped=no
    [ "$rc" -eq 0 ] && [ -n "${sent:-}" ] && stopped=yes
    check "stop $i: SIGTERM after ${n:-no} inputs handled exits 0" [ "$stopped" = yes ]
    echo "# stop $i: exited $took s after SIGTERM"
    check "stop $i: exit within shutdown_timeout_s ($shutdown_s s)" \
        awk -v t="$took" -v max="$shutdown_s" 'BEGIN { exit !(t < max) }'
    [ "$stopped" = yes ] || { tail -n 20 "$tmp/term$i.log"; break; }
done

$e2e committed "$addr" term "$tmp/committed"
done=$(awk '$2 > 0 { n += $2 } END { print n + 0 }' "$tmp/committed")
check "the stops were mid-stream: $done of $((inputs + 2)) committed" \
    [ "$done" -lt $((inputs + 2)) ]

write_conf
"$bin" -c "$tmp/crm.conf" 2> "$tmp/drain.log" &
dpid=$!
check "after $stops stops, a restart drains every input" \
    $py tests/kafka_tool.py wait-committed "$addr" term crm.inbound 120
kill -TERM "$dpid"
wait "$dpid"
check "the last run: SIGTERM exits 0" [ $? -eq 0 ]
dpid=

check "every input has its outputs or its dead letter, none twice" \
    $e2e verify "$addr" "$tmp/manifest" --max-duplicates 0
# The verifier itself must be able to fail: an input nobody produced is missing.
$py -c 'import json, sys
m = json.load(open(sys.argv[1]))
m["valid"].append({"id": "never-sent", "channel": "email", "to": "x@example.com",
                   "p": 0, "o": 10**9})
json.dump(m, open(sys.argv[2], "w"))' "$tmp/manifest" "$tmp/manifest.bad"
fails_missing() { ! $e2e verify "$addr" "$tmp/manifest.bad" > "$tmp/bad.out" &&
    grep -q '^missing 1,' "$tmp/bad.out"; }
check "the verifier reports an input without outputs as missing" fails_missing

finish term
