#!/usr/bin/env bash
# check_daemon.sh -- the real binary on a mock cluster: drain, commit, signals, no brokers.
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

# What a stray `systemctl kill -s SIG` may send: each is logged, none stops or harms the daemon.
noted="USR1 USR2 ALRM VTALRM PROF IO PWR STKFLT TSTP RTMIN RTMAX"
for sig in $noted TTIN TTOU XFSZ PIPE; do
    kill -s "$sig" "$dpid"
done
check "SIGUSR1: logged, nothing to reopen" wait_for "$tmp/daemon.log" 'SIGUSR1: the log is' 10
for sig in $noted; do
    case $sig in
    USR1) ;;
    RTMIN) check "SIGRTMIN: logged and ignored" \
        wait_for "$tmp/daemon.log" 'signal [0-9]+ \(SIGRTMIN\+0\): ignored' 10 ;;
    RTMAX) check "SIGRTMAX: logged and ignored" \
        wait_for "$tmp/daemon.log" 'signal [0-9]+ \(SIGRTMIN\+[1-9][0-9]*\): ignored' 10 ;;
    IO) check "SIGIO: logged and ignored" wait_for "$tmp/daemon.log" 'SIG(IO|POLL): ignored' 10 ;;
    *) check "SIG$sig: logged and ignored" wait_for "$tmp/daemon.log" "SIG$sig: ignored" 10 ;;
    esac
done
check "still running after the stray signals" kill -0 "$dpid"
check "the loop still turns after the stray signals (/health is 200)" \
    curl -sf -o /dev/null "http://127.0.0.1:$port/health"

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

# SIGQUIT stops the daemon as SIGTERM does (commit, leave, exit 0), without a core dump.
$tool produce "$addr" crm.inbound 100 > /dev/null
write_conf info 10
"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon3.log" &
dpid=$!
check "another life picks up the new messages" \
    $tool wait-committed "$addr" daemon-test crm.inbound 60
kill -QUIT "$dpid"
wait "$dpid"
status=$?
dpid=
check "SIGQUIT: exit status 0" [ "$status" -eq 0 ]
check "SIGQUIT: finishes the batch, commits and leaves the group" \
    grep -q 'Quit: finishing the batch, flushing outputs, committing and leaving the group' \
    "$tmp/daemon3.log"
check "SIGQUIT: every message counted" grep -q 'stopped: 100 messages' "$tmp/daemon3.log"

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
