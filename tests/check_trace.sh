#!/usr/bin/env bash
# check_trace.sh -- W3C trace context through the daemon: a valid traceparent (and its
# tracestate) reaches every output of its input unchanged; a malformed one, nothing.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
py=/usr/bin/python3

start_mock
port=$($py tests/observe_tool.py free-port)
cat > "$tmp/crm.conf" <<CONF
kafka = { brokers = "$addr"; group_id = "trace"; properties = { auto_commit_interval_ms = 500; }; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF
check "produce a traced form, a badly traced e-mail and an untraced one" \
    $py tests/trace_tool.py produce "$addr"
"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon.log" &
dpid=$!
check "all three handled" $py tests/kafka_tool.py wait-committed "$addr" trace crm.inbound 60
kill -TERM "$dpid"
wait "$dpid"
check "SIGTERM: exit 0" [ $? -eq 0 ]
dpid=
check "trace context on every output of the traced input, on none of the others" \
    $py tests/trace_tool.py verify "$addr"
finish trace
