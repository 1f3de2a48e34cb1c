#!/usr/bin/env bash
# check_observe.sh -- what an operator sees: /metrics (valid for promtool, counts and lag right),
# /health and /ready through a broker outage, the sd_notify messages in order, and a real
# Prometheus server scraping the daemon, evaluating the alert rules and answering every query
# of the Grafana dashboard.
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
py=/usr/bin/python3
tool="$py tests/observe_tool.py"
ktool="$py tests/kafka_tool.py"

start_mock
# Inputs and the group on broker 1, outputs on broker 2: broker 2 can fail on its own.
for p in 0 1 2 3; do
    echo "leader crm.inbound $p 1" >&3
    for t in crm.tickets crm.responses crm.identities crm.inbound.dlq; do
        echo "leader $t $p 2" >&3
    done
done
echo "coord group observe 1" >&3
port=$($tool free-port)
base="http://127.0.0.1:$port"
cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "observe";
  properties = { session_timeout_ms = 6000; statistics_interval_ms = 500;
                 auto_commit_interval_ms = 500; };
};
processing = { shutdown_timeout_s = 10; };
http = { listen = "127.0.0.1:$port"; timeout_s = 2; };
identity = { store_path = "$tmp/store"; };
CONF

$tool notify-listen "$tmp/notify.sock" "$tmp/notify.log" &
npid=$!
wait_for_socket() { for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && return; sleep 0.1; done; }
wait_for_socket
NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=1000000 \
    "$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon.log" &
dpid=$!

check "/ready answers 200 once the group is steady" $tool wait-status "$base/ready" 200 30
check "/health answers 200" $tool wait-status "$base/health" 200 5
check "unknown path: 404" $tool wait-status "$base/nope" 404 5

$ktool produce "$addr" crm.inbound 200 > /dev/null
check "all 200 consumed and committed" $ktool wait-committed "$addr" observe crm.inbound 60
check "kafka_consumer_messages_consumed_total counts 200" \
    $tool wait-metric "$base/metrics" kafka_consumer_messages_consumed_total == 200 10
check "lag drained: kafka_consumer_lag sums to 0" \
    $tool wait-metric "$base/metrics" kafka_consumer_lag == 0 10
# Record age: each input done is observed, and each partition's last stored record has a time.
check "record age: every input done is observed" \
    $tool wait-metric "$base/metrics" crm_consumer_record_age_seconds_count '>=' 200 10
check "record age: the last processed record timestamp of the 4 partitions is recent" \
    $tool wait-metric "$base/metrics" crm_consumer_last_processed_record_timestamp_seconds '>=' \
    "$(( ($(date +%s) - 3600) * 4 ))" 10
if command -v promtool >/dev/null; then
    $py -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('$base/metrics').read().decode())" \
        > "$tmp/metrics.txt"
    check "promtool check metrics accepts /metrics" \
        bash -c "promtool check metrics < '$tmp/metrics.txt' > '$tmp/promtool.out' 2>&1"
    sed 's/^/#   /' "$tmp/promtool.out"
else
    skip "promtool check metrics" "promtool is not installed (make deps installs prometheus)"
fi

# Abuse of the HTTP port does not stop /metrics, grow memory, or stop consumption.
$ktool produce "$addr" crm.inbound 100 > /dev/null &
kpid=$!
check "HTTP abuse: /metrics answers within 1 s, RSS < +10 MiB, idle sockets closed" \
    $tool abuse 127.0.0.1 "$port" "$dpid"
wait "$kpid"
check "consumption went on during the abuse" $ktool wait-committed "$addr" observe crm.inbound 60
check "kafka_consumer_messages_consumed_total counts 300" \
    $tool wait-metric "$base/metrics" kafka_consumer_messages_consumed_total == 300 10

# Records on the identities topic that are not identity.linked events: counted, not applied.
$ktool produce "$addr" crm.identities 10 > /dev/null
check "foreign records on the identities topic: 10 skipped" \
    $tool wait-metric "$base/metrics" 'crm_consumer_identity_events_total{result="skipped"}' == 10 10
check "the forms' links were read back and applied" \
    $tool wait-metric "$base/metrics" 'crm_consumer_identity_events_total{result="applied"}' '>=' 1 5
check "a skipped record is logged as a warning" \
    grep -q 'crm.identities .*not an identity.linked event.*skipped' "$tmp/daemon.log"

# The outputs' broker goes down: offsets cannot be stored, so the lag is the backlog.
echo "down 2" >&3
$ktool produce "$addr" crm.inbound 50 > /dev/null
check "a known backlog shows as lag: 50" \
    $tool wait-metric "$base/metrics" kafka_consumer_lag == 50 30
echo "up 2" >&3
check "outputs recover: lag back to 0" $tool wait-metric "$base/metrics" kafka_consumer_lag == 0 60

# Every broker down: /ready goes 503 within a bounded time, and back to 200 when they return.
for b in 1 2 3; do echo "down $b" >&3; done
check "every broker down: /ready 503" $tool wait-status "$base/ready" 503 30
check "every broker down: /health still 200 (the loop turns)" \
    $tool wait-status "$base/health" 200 5
for b in 1 2 3; do echo "up $b" >&3; done
check "brokers back: /ready 200" $tool wait-status "$base/ready" 200 60

# A real Prometheus server scrapes the daemon, with the alert rules loaded; the dashboard's
# queries are run against it.
dashboard=monitoring/crm-consumerd.dashboard.json
check "the dashboard is valid JSON" bash -c '"$0" -m json.tool "$1" > /dev/null' "$py" "$dashboard"
if command -v prometheus >/dev/null; then
    pport=$($tool free-port)
    prom="http://127.0.0.1:$pport"
    cat > "$tmp/prometheus.yml" <<PROM
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ "$PWD/monitoring/crm-consumerd.rules.yml" ]
scrape_configs:
  - job_name: crm-consumerd
    static_configs: [ { targets: [ "127.0.0.1:$port" ] } ]
PROM
    prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
        --web.listen-address="127.0.0.1:$pport" > "$tmp/prometheus.log" 2>&1 &
    ppid_=$!
    check "Prometheus scrapes kafka_consumer_messages_consumed_total = 350" \
        $tool prom-query "$prom" 'sum(kafka_consumer_messages_consumed_total)' 350 60
    # Messages flow while it scrapes, so that the rates and quantiles have something to show.
    $ktool produce "$addr" crm.inbound 100 > /dev/null
    check "Prometheus scrapes 450 consumed" \
        $tool prom-query "$prom" 'sum(kafka_consumer_messages_consumed_total)' 450 60
    check "Prometheus has at least 3 scrapes of the daemon in the last minute" \
        $tool prom-query "$prom" 'count_over_time(up{job="crm-consumerd"}[1m]) >= bool 3' 1 30
    check "every alert rule evaluates on the daemon's metrics without error" \
        bash -c '$0 tests/monitoring_tool.py rules-health "$1" 30 > "$2" 2>&1' \
        "$py" "$prom" "$tmp/rules.out"
    sed 's/^/#   /' "$tmp/rules.out"
    # Every expression must parse; those that return no data are listed (the record age
    # panels have none until the daemon exports the record age).
    check "every dashboard expression parses, two thirds or more return data" \
        bash -c '$0 tests/monitoring_tool.py dashboard-queries "$1" "$2" 0.67 > "$3" 2>&1' \
        "$py" "$prom" "$dashboard" "$tmp/dashboard.out"
    sed 's/^/#   /' "$tmp/dashboard.out"
    kill "$ppid_"
    wait "$ppid_" 2>/dev/null
else
    skip "a live Prometheus scrape" "prometheus is not installed (make deps installs it)"
fi

kill -HUP "$dpid"
wait_for "$tmp/daemon.log" 'reload: log level' 10
kill -TERM "$dpid"
wait "$dpid"
check "SIGTERM: exit 0" [ $? -eq 0 ]
dpid=
kill "$npid"
wait "$npid" 2>/dev/null
# The order systemd must see: READY first, RELOADING then READY again, STOPPING last.
order=$(grep -oE '^(READY=1|RELOADING=1|STOPPING=1)' "$tmp/notify.log" | tr '\n' ' ')
check "sd_notify order: READY, RELOADING, READY, STOPPING ($order)" \
    [ "$order" = "READY=1 RELOADING=1 READY=1 STOPPING=1 " ]
check "sd_notify: WATCHDOG=1 sent while running" grep -q '^WATCHDOG=1' "$tmp/notify.log"
check "sd_notify: STATUS= lines with the rate" grep -q 'STATUS=.*msg/s' "$tmp/notify.log"

finish observe
