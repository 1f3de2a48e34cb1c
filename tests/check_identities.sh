#!/usr/bin/env bash
# check_identities.sh -- identity links through the real daemon: links older than the
# identities topic's retention survive a restart (no customer split), the later of two
# links of a phone wins live, after a restart and on a second instance, a store whose
# position retention overtook is rebuilt, and /ready waits for the restore.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
py=/usr/bin/python3
tool="$py tests/identity_tool.py"
kafka="$py tests/kafka_tool.py"
observe="$py tests/observe_tool.py"

start_mock 4

# write_conf NAME GROUP PORT: a daemon with a store of its own.
write_conf() {
    cat > "$tmp/$1.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "$2";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500; };
};
processing = { shutdown_timeout_s = 20; };
http = { listen = "127.0.0.1:$3"; };
identity = { store_path = "$tmp/store-$1"; };
CONF
}

# start NAME LOG: run the daemon of NAME.conf, logging to LOG.
start() {
    "$bin" -c "$tmp/$1.conf" 2> "$tmp/$2" &
    dpid=$!
}

# stop: SIGTERM, and the exit status must be 0.
stop() {
    kill -TERM "$dpid"
    wait "$dpid"
    local status=$?
    dpid=
    [ "$status" -eq 0 ]
}

port_a=$($observe free-port)
port_b=$($observe free-port)
write_conf a identities "$port_a"
write_conf b identities-b "$port_b"

# Instance A links 300 phones to 300 addresses, and 20 phones twice in a row.
start a a1.log
check "/ready is 200 once restored and consuming" \
    $observe wait-status "http://127.0.0.1:$port_a/ready" 200 60
check "produce 300 forms, and 20 phones linked twice" \
    bash -c "$tool forms $addr 101 300 && $tool forms $addr 102 20 --twice"
check "A handles them" $kafka wait-committed "$addr" identities crm.inbound 60
$tool whatsapps "$addr" 102 20 live
check "A handles 20 WhatsApps" $kafka wait-committed "$addr" identities crm.inbound 60
check "live: the later link of each phone wins" $tool resolved "$addr" 102 20 live later
check "A: stopped with exit 0" stop

# A second instance with a store of its own restores every link from the topic first.
start b b1.log
check "B: restores from the beginning of the topic" \
    wait_for "$tmp/b1.log" 'identity store .*store-b: new; reading crm.identities' 10
check "B handles everything of its own group" \
    $kafka wait-committed "$addr" identities-b crm.inbound 60
$tool whatsapps "$addr" 102 20 second
check "B handles 20 more WhatsApps" $kafka wait-committed "$addr" identities-b crm.inbound 60
check "second instance: the later link of each phone wins" \
    $tool resolved "$addr" 102 20 second later
check "B: stopped with exit 0" stop

# Retention deletes the links' records while A reads on: A's store keeps them.
start a a2.log
check "A resumes from its stored positions" \
    wait_for "$tmp/a2.log" 'resuming crm.identities from the stored positions' 10
check "A handles B's WhatsApps too" $kafka wait-committed "$addr" identities crm.inbound 60
check "24 MiB of records past the retention of crm.identities" \
    $tool junk "$addr" crm.identities 6
# Each junk record is read and skipped, or deleted before A reached it (and reported lost).
check "A reads to the end of the topic (96 records skipped or lost)" \
    $observe wait-metric "http://127.0.0.1:$port_a/metrics" \
    'crm_consumer_identity_events_total{result="skipped"} + crm_consumer_identity_records_lost_total' \
    '>=' 96 60
check "the topic no longer holds any of the 320 links" \
    bash -c "$tool gone $addr 101 300 && $tool gone $addr 102 20"
check "A: stopped with exit 0" stop

start a a3.log
check "after the restart A resumes, no rebuild" \
    wait_for "$tmp/a3.log" 'resuming crm.identities from the stored positions' 10
$tool whatsapps "$addr" 101 300 after
$tool whatsapps "$addr" 102 20 restart
check "A handles 320 WhatsApps" $kafka wait-committed "$addr" identities crm.inbound 60
check "links older than the retention: 300 of 300 resolve to the form's customer" \
    $tool resolved "$addr" 101 300 after first
check "after a restart: the later link of each phone wins" \
    $tool resolved "$addr" 102 20 restart later
check "A: stopped with exit 0" stop
check "A's store agrees with what the topic still holds, and keeps what it lost" \
    bash -c "'${DUMP_BIN:-build/default/tests/store_dump}' '$tmp/store-a' > '$tmp/dump-a' &&
             [ \$(grep -c '^link ' '$tmp/dump-a') -eq 320 ]"

# B stopped before the retention took the records it had not read: its store is stale.
start b b2.log
check "B: a stale store is rebuilt, and the log says why" \
    wait_for "$tmp/b2.log" 'rebuilding from the beginning of crm.identities: partition [0-3].s records before offset [0-9]+ were deleted before the store read them' 20
check "B: /ready turns 200 after the rebuild" \
    $observe wait-status "http://127.0.0.1:$port_b/ready" 200 60
check "B: stopped with exit 0" stop

finish identities
