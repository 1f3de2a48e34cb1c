#!/usr/bin/env bash
# check_identity_kill.sh -- SIGKILL while the daemon links thousands of phones, twice: each
# time the store, as the kill left it, holds exactly the links that replaying the identities
# topic up to the store's positions gives; after the restarts every input is handled and
# the store agrees with the whole topic.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
tool="$py tests/identity_tool.py"
kafka="$py tests/kafka_tool.py"
observe="$py tests/observe_tool.py"
dump=${DUMP_BIN:-build/default/tests/store_dump}

start_mock 4
port=$($observe free-port)
cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "identity-kill";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500; };
};
processing = { shutdown_timeout_s = 20; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF

stored=0
for round in 1 2; do
    # Each phone linked twice (two addresses), 3 x 4,000 phones: 24,000 links a round.
    for tag in 1 2 3; do
        $tool forms "$addr" "$round$tag$round" 4000 --twice || { echo "not ok - produce"; exit 1; }
    done
    "$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon$round.log" &
    dpid=$!
    # Killed once its store holds some links (committed), while it still has many to make.
    check "round $round: links being read back into the store" \
        $observe wait-metric "http://127.0.0.1:$port/metrics" \
        crm_consumer_identity_links '>=' $((stored + 2000)) 60
    kill -KILL "$dpid"
    wait "$dpid" 2>/dev/null
    dpid=
    check "round $round: the store as the kill left it" \
        bash -c "'$dump' '$tmp/store' > '$tmp/dump$round'"
    check "round $round: it agrees with the topic up to its positions" \
        $tool agree "$addr" "$tmp/dump$round"
    stored=$(grep -c '^link ' "$tmp/dump$round")
done

"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon3.log" &
dpid=$!
check "after the kills every input is handled" \
    $kafka wait-committed "$addr" identity-kill crm.inbound 120
check "the restart resumed from the store" \
    grep -q 'resuming crm.identities from the stored positions' "$tmp/daemon3.log"
kill -TERM "$dpid"
wait "$dpid"
check "SIGTERM: exit 0" [ $? -eq 0 ]
# The store may lag the topic at a stop; the next start reads to the end before consuming.
"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon4.log" &
dpid=$!
check "the next start restores to the end" \
    wait_for "$tmp/daemon4.log" 'identity links restored' 60
kill -TERM "$dpid"
wait "$dpid"
check "SIGTERM: exit 0" [ $? -eq 0 ]
dpid=
check "the final store" bash -c "'$dump' '$tmp/store' > '$tmp/dump-final'"
check "it agrees with the whole topic" $tool agree "$addr" "$tmp/dump-final"
check "24,000 phones in the store" \
    bash -c "[ \$(grep -c '^link +1555' '$tmp/dump-final') -eq 24000 ]"

finish identity_kill
