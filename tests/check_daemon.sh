#!/usr/bin/env bash
# check_daemon.sh -- the real binary on a mock cluster: drain, commit, SIGHUP, SIGTERM, no brokers.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tool="/usr/bin/python3 tests/kafka_tool.py"

write_conf() { # write_conf LEVEL SHUTDOWN_S
    cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "daemon-test";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500; };
};
processing = { shutdown_timeout_s = $2; };
log = { level = "$1"; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF
}

start_mock
# A free port, not the default: another daemon on this machine may hold that.
port=$(/usr/bin/python3 tests/observe_tool.py free-port)
$tool produce "$addr" crm.inbound 2000 > /dev/null
write_conf info 10
"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon.log" &
dpid=$!

check "drains 2000 messages: committed offsets reach the high watermarks" \
    $tool wait-committed "$addr" daemon-test crm.inbound 60

# SIGHUP applies the new log level; a broken file is reported and the daemon keeps running.
write_conf debug 10
kill -HUP "$dpid"
check "SIGHUP reloads log.level" wait_for "$tmp/daemon.log" 'reload: log level is debug' 10
echo 'kafka = { brokers = 1; };' > "$tmp/crm.conf"
kill -HUP "$dpid"
check "SIGHUP with a broken file keeps the running configuration" \
    wait_for "$tmp/daemon.log" 'has errors; keeping the running configuration' 10
check "still running after a bad reload" kill -0 "$dpid"

kill -TERM "$dpid"
start=$SECONDS
wait "$dpid"
status=$?
dpid=
check "SIGTERM: exit status 0" [ "$status" -eq 0 ]
check "SIGTERM: exits within shutdown_timeout_s" [ $((SECONDS - start)) -le 10 ]
check "SIGTERM: every message counted (1800 handled, 200 dead letters)" \
    grep -q 'stopped: 2000 messages (1800 handled, 0 skipped, 200 dead letters, 0 retries)' \
    "$tmp/daemon.log"
check "after SIGTERM the committed offsets are still the high watermarks" \
    $tool wait-committed "$addr" daemon-test crm.inbound 5

# Every broker gone: SIGTERM must still end the process within shutdown_timeout_s.
$tool produce "$addr" crm.inbound 100 > /dev/null
write_conf info 3
"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon2.log" &
dpid=$!
check "second life picks up the new messages" \
    $tool wait-committed "$addr" daemon-test crm.inbound 60
kill -TERM "$mpid"
wait "$mpid"
mpid=
kill -TERM "$dpid"
start=$SECONDS
wait "$dpid"
status=$?
dpid=
check "no brokers: SIGTERM still exits 0" [ "$status" -eq 0 ]
check "no brokers: exits within shutdown_timeout_s + 2 s" [ $((SECONDS - start)) -le 5 ]

finish daemon
