#!/usr/bin/env bash
# check_e2e.sh -- 10,000 mixed inputs from an independent client through the daemon; every
# valid input has one ticket id and a response, every poison pill its dead letter, and a
# phone linked by a form resolves to the e-mail's customer, also after a restart.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
py=/usr/bin/python3

start_mock
# A free port, not the default: another daemon on this machine may hold that.
port=$($py tests/observe_tool.py free-port)
cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "e2e";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500; };
};
# Small enough that the oversize pills stay within the mock's 5 MiB partition retention.
processing = { max_message_bytes = 16384; shutdown_timeout_s = 20; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF

# run_daemon LOG: start, wait until every input is committed, SIGTERM, expect exit 0.
run_daemon() {
    "$bin" -c "$tmp/crm.conf" 2> "$tmp/$1" &
    dpid=$!
    check "$1: every input committed" \
        $py tests/kafka_tool.py wait-committed "$addr" e2e crm.inbound 180
    kill -TERM "$dpid"
    wait "$dpid"
    check "$1: SIGTERM exits 0" [ $? -eq 0 ]
    dpid=
}

check "produce 10,000 mixed inputs" $py tests/e2e_tool.py produce "$addr" 10000 "$tmp/manifest"
run_daemon daemon1.log
# After a restart the link comes back from the identity store, not from memory.
$py tests/e2e_tool.py link-again "$addr" "$tmp/manifest"
run_daemon daemon2.log
check "restart: the store resumed from its positions, not rebuilt" \
    grep -qE 'identity store .*: [0-9]+ links; resuming crm.identities from the stored' \
    "$tmp/daemon2.log"
check "every input has its outputs or its dead letter" \
    $py tests/e2e_tool.py verify "$addr" "$tmp/manifest"

finish e2e
