#!/usr/bin/env bash
# check_stall.sh -- a handler that hangs. Slower than max.poll.interval.ms but finishing: /health
# turns 503 and WATCHDOG=1 stops while it hangs, the daemon says it left the group, then carries
# on. Hanging for good: after the watchdog's SIGABRT and a restart, nothing is missing.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
tool="$py tests/observe_tool.py"
ktool="$py tests/kafka_tool.py"
stall_lib=${STALL_LIB:-build/default/tests/slow/stall.so}
ulimit -c 0 # the SIGABRT below is expected: no core file

start_mock
port=$($tool free-port)
base="http://127.0.0.1:$port"
cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "stall";
  # The hanging messages come on a topic of their own, apart from the verified stream.
  topics = [ "crm.inbound", "crm.stall" ];
  properties = { session_timeout_ms = 6000; max_poll_interval_ms = 8000;
                 auto_commit_interval_ms = 500; };
};
# Small enough that the oversize pills (20 KB) are dead letters.
processing = { shutdown_timeout_s = 10; max_message_bytes = 16384; };
http = { listen = "127.0.0.1:$port"; timeout_s = 2; };
identity = { store_path = "$tmp/store"; };
CONF

$tool notify-listen "$tmp/notify.sock" "$tmp/notify.log" &
npid=$!
for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && break; sleep 0.1; done

watchdogs() { grep -c '^WATCHDOG=1' "$tmp/notify.log" 2>/dev/null || true; }

# The loop is frozen if no WATCHDOG=1 arrives for 3 s (it comes every 0.5 s while it turns).
frozen() {
    local before
    before=$(watchdogs)
    sleep 3
    [ "$(watchdogs)" -eq "$before" ]
}

stall_message() { # ID: a valid e-mail whose handling the shim makes hang
    printf '{"message_type":"email_received","message_id":"%s","from":"stall@example.com","subject":"s","body":"crm-test-stall"}\n' \
        "$1" | kcat -P -b "$addr" -t crm.stall -p 0
}

# start_daemon LOG STALL_SECONDS: with the shim when STALL_SECONDS is set.
start_daemon() {
    if [ -n "$2" ]; then
        NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=1000000 LD_PRELOAD="$stall_lib" \
            CRM_STALL_SECONDS=$2 CRM_STALL_ONCE="$tmp/stalled.$1" \
            "$bin" -c "$tmp/crm.conf" 2> "$tmp/$1" &
    else
        NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=1000000 \
            "$bin" -c "$tmp/crm.conf" 2> "$tmp/$1" &
    fi
    dpid=$!
}

wait_for_file() { # FILE SECONDS
    local end=$((SECONDS + $2))
    until [ -e "$1" ]; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.1
    done
}

ticket_within() { # ID SECONDS
    local end=$((SECONDS + $2))
    until [ "$(tickets_for "$1")" -ge 1 ]; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.5
    done
}

tickets_for() { # ID: how many tickets name that message id
    kcat -C -b "$addr" -t crm.tickets -e -q 2>/dev/null | grep -c "\"message_id\":\"$1\"" || true
}

# 1. Slower than max.poll.interval.ms (8 s), then finishing (14 s).
stall_message stall-1
check "produce 2,000 mixed inputs" $py tests/e2e_tool.py produce "$addr" 2000 "$tmp/manifest"
start_daemon slow.log 14
check "slow: the handler hangs" wait_for_file "$tmp/stalled.slow.log" 30
check "slow: /health turns 503 once the handler outlives max.poll.interval.ms" \
    $tool wait-status "$base/health" 503 15
check "slow: WATCHDOG=1 has stopped" frozen
check "slow: /health is 200 again once the handler returns" $tool wait-status "$base/health" 200 20
check "slow: the daemon says the member left the group" \
    grep -q "the handler took .* more than max.poll.interval.ms" "$tmp/slow.log"
check "slow: WATCHDOG=1 again" bash -c "b=\$(grep -c '^WATCHDOG=1' '$tmp/notify.log'); sleep 2;
    [ \$(grep -c '^WATCHDOG=1' '$tmp/notify.log') -gt \$b ]"
check "slow: every input committed" $ktool wait-committed "$addr" stall crm.inbound 120
check "slow: the slow message has its ticket" ticket_within stall-1 60
kill -TERM "$dpid"
wait "$dpid"
check "slow: SIGTERM exits 0" [ $? -eq 0 ]
dpid=

# 2. Hanging for good: what systemd does when WATCHDOG=1 stops is SIGABRT, then a restart.
start_daemon hung.log 600
stall_message stall-2
check "hung: the handler hangs" wait_for_file "$tmp/stalled.hung.log" 60
check "hung: /health turns 503" $tool wait-status "$base/health" 503 15
check "hung: WATCHDOG=1 has stopped" frozen
kill -ABRT "$dpid"
wait "$dpid"
check "hung: SIGABRT ends it" [ $? -ne 0 ]
start_daemon restart.log ""
check "restart: every input committed" $ktool wait-committed "$addr" stall crm.inbound 120
check "restart: the hung message has its ticket" ticket_within stall-2 60
kill -TERM "$dpid"
wait "$dpid"
check "restart: SIGTERM exits 0" [ $? -eq 0 ]
dpid=
check "every input has its outputs or its dead letter" \
    $py tests/e2e_tool.py verify "$addr" "$tmp/manifest"
kill "$npid" 2>/dev/null
finish stall
