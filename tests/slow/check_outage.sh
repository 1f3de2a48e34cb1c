#!/usr/bin/env bash
# check_outage.sh -- every broker down for 15 s mid-stream, then back: the daemon keeps
# running without spinning (CPU time measured over the outage), /ready says 503 during it and
# 200 after, the lag drains to 0, and every input has its outputs or its dead letter.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
e2e="$py tests/e2e_tool.py"
tool="$py tests/observe_tool.py"
inputs=20000 rate=1000 down_s=15 max_cpu_pct=25
ppid_=
trap '[ -n "$ppid_" ] && kill "$ppid_" 2> /dev/null; cleanup' EXIT

start_mock 8
port=$($tool free-port)
base="http://127.0.0.1:$port"
cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "outage";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 250;
                 statistics_interval_ms = 500; };
};
processing = { batch_size = 100; max_in_flight = 1000; max_message_bytes = 16384;
               shutdown_timeout_s = 10; };
circuit_breaker = { open_timeout_s = 1; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF

# cpu_ticks PID: user + system CPU time in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# The stream: $inputs inputs at $rate a second, produced on through the outage (the producer
# holds them until the brokers are back).
$e2e produce "$addr" "$inputs" "$tmp/manifest" --rate "$rate" > "$tmp/produce.out" \
    2> "$tmp/produce.err" &
ppid_=$!
"$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon.log" &
dpid=$!
check "/ready answers 200 once the group is steady" $tool wait-status "$base/ready" 200 30
check "the daemon handles inputs" $e2e signal-at "$base/metrics" "$dpid" 2000 NONE 1

for b in 1 2 3; do echo "down $b" >&3; done
start=$(date +%s.%N) ticks=$(cpu_ticks "$dpid")
check "down mid-stream: the stream is still being produced" kill -0 "$ppid_"
check "every broker down: /ready 503" $tool wait-status "$base/ready" 503 "$down_s"
check "every broker down: /health still 200" $tool wait-status "$base/health" 200 5
# The rest of the outage, then the CPU time the daemon used over all of it.
sleep "$(awk -v s="$start" -v d="$down_s" -v now="$(date +%s.%N)" \
    'BEGIN { w = s + d - now; printf "%.2f", (w > 0 ? w : 0) }')"
ticks=$(($(cpu_ticks "$dpid") - ticks))
pct=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$start" -v now="$(date +%s.%N)" \
    'BEGIN { printf "%.1f", 100 * t / hz / (now - s) }')
echo "# CPU while every broker was down: $pct% of one core ($ticks ticks)"
check "no busy loop while down: CPU $pct% < $max_cpu_pct% of one core" \
    awk -v p="$pct" -v max="$max_cpu_pct" 'BEGIN { exit !(p < max) }'
check "the daemon kept running through the outage" kill -0 "$dpid"
for b in 1 2 3; do echo "up $b" >&3; done

check "brokers back: /ready 200" $tool wait-status "$base/ready" 200 60
wait "$ppid_"
check "the stream: $inputs mixed inputs produced" [ $? -eq 0 ]
ppid_=
cat "$tmp/produce.out"
check "every input committed" $py tests/kafka_tool.py wait-committed "$addr" outage crm.inbound 120
check "lag drained: kafka_consumer_lag sums to 0" \
    $tool wait-metric "$base/metrics" kafka_consumer_lag == 0 30
kill -TERM "$dpid"
wait "$dpid"
check "SIGTERM exits 0" [ $? -eq 0 ]
dpid=
check "every input has its outputs or its dead letter" \
    $e2e verify "$addr" "$tmp/manifest" --duplicates "$tmp/dups"

finish outage
