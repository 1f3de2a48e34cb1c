#!/usr/bin/env bash
# check_undecodable.sh -- a batch librdkafka cannot decompress (zstd inflating past its limit):
# the daemon counts the error each time it comes back, logs it once, keeps consuming the other
# partitions, and stops cleanly. Its partition waits for the operator (see crm-consumerd(8)).
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
tool="$py tests/observe_tool.py"

start_mock
$py - "$addr" <<'PY'
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "compression.type": "zstd",
              "message.max.bytes": 200 * 1024 * 1024})
p.produce("crm.inbound", value=b"\0" * (90 * 1024 * 1024), partition=0)
p.flush(30)
p = Producer({"bootstrap.servers": sys.argv[1]})
p.produce("crm.inbound", partition=1,
          value=b'{"message_type":"email_received","message_id":"after","from":"a@example.com"}')
p.flush(30)
PY
port=$($tool free-port)
cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "undecodable";
  properties = { session_timeout_ms = 6000; };
};
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF
"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon.log" &
dpid=$!
check "the error comes back and is counted each time" \
    $tool wait-metric "http://127.0.0.1:$port/metrics" crm_consumer_consume_errors_total '>=' 5 60
check "the other partition's message is handled" \
    $tool wait-metric "http://127.0.0.1:$port/metrics" kafka_consumer_messages_consumed_total == 1 30
n=$(grep -c 'consume crm.inbound \[0\] offset 0: Decompression' "$tmp/daemon.log")
check "logged once, not at every fetch ($n lines)" [ "$n" -eq 1 ]
kill -TERM "$dpid"
wait "$dpid"
check "SIGTERM exits 0" [ $? -eq 0 ]
dpid=
finish undecodable
