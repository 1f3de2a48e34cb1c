#!/usr/bin/env bash
# check_daemon.sh -- the real binary on a mock cluster: drain, commit, SIGHUP, SIGTERM, no brokers.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
tool="/usr/bin/python3 tests/kafka_tool.py"

write_conf() { # write_conf LEVEL SHUTDOWN_S [EXTRA SETTINGS] [CLIENT_ID]
    cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "daemon-test";
  client_id = "${4:-crm-consumerd}";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500; };
};
processing = { shutdown_timeout_s = $2; };
log = { level = "$1"; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
${3:-}
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

# SIGHUP re-reads the whole file: the log level, a template and the retry settings take effect
# at once, a setting that needs a restart is named; a broken file changes nothing.
write_conf debug 10 'responses = { email = "Reloaded template {ticket_id}"; };
retry = { initial_backoff_ms = 50; };' other-client
kill -HUP "$dpid"
check "SIGHUP: the log level, a template and a retry setting change at once" \
    wait_for "$tmp/daemon.log" 'reload: 3 settings changed .*log level is debug' 10
check "SIGHUP: a setting that needs a restart is named" \
    wait_for "$tmp/daemon.log" 'need a restart: kafka.client_id' 10
/usr/bin/python3 - "$addr" <<'PY'
import json, sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1]})
p.produce("crm.inbound", json.dumps({"type": "email_received", "message_id": "after-reload",
                                     "from": "r@example.org"}).encode())
p.flush(30)
PY
check "the reloaded template answers the next e-mail" \
    $tool wait-committed "$addr" daemon-test crm.inbound 30
check "... in its response" bash -c "kcat -b '$addr' -C -t crm.responses -e -q 2>/dev/null |
    grep -q '\"text\":\"Reloaded template tkt_'"
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
check "SIGTERM: every message counted (1801 handled, 200 dead letters)" \
    grep -q 'stopped: 2001 messages (1801 handled, 0 skipped, 200 dead letters, 0 retries)' \
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
