#!/usr/bin/env bash
# check_valgrind.sh -- the daemon's normal life under valgrind: start, consume 300 messages,
# answer a scrape, SIGTERM; no leak, no invalid access (valgrind's exit status says).
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
tool="$py tests/observe_tool.py"
ktool="$py tests/kafka_tool.py"

if ! command -v valgrind >/dev/null; then
    echo "not ok - valgrind is not installed (make deps installs it)"
    failed=1
    finish valgrind
    exit
fi
if ldd "$bin" | grep -q 'libasan\|libubsan'; then
    # A sanitizer build cannot run under valgrind; CI runs this on the plain build.
    echo "# $bin is a sanitizer build: skipped"
    finish valgrind
    exit
fi

start_mock
port=$($tool free-port)
cat > "$tmp/crm.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "valgrind";
  properties = { session_timeout_ms = 6000; auto_commit_interval_ms = 500; };
};
processing = { shutdown_timeout_s = 20; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store"; };
CONF

# The suppressions cover only libphonenumber's singleton, which lives until exit.
valgrind --leak-check=full --error-exitcode=1 --suppressions=tests/valgrind.supp \
    --log-file="$tmp/valgrind.log" "$bin" -c "$tmp/crm.conf" 2> "$tmp/daemon.log" &
dpid=$!
check "ready under valgrind" $tool wait-status "http://127.0.0.1:$port/ready" 200 120
$ktool produce "$addr" crm.inbound 300 > /dev/null
check "300 consumed and committed" $ktool wait-committed "$addr" valgrind crm.inbound 120
check "a scrape answers" $tool wait-metric "http://127.0.0.1:$port/metrics" \
    kafka_consumer_messages_consumed_total == 300 30
kill -TERM "$dpid"
wait "$dpid"
rc=$?
dpid=
grep -E 'definitely lost|indirectly lost|possibly lost|ERROR SUMMARY' "$tmp/valgrind.log" |
    sed 's/^==[0-9]*== /#   /'
check "SIGTERM: exit 0, no leak, no error (valgrind exit status $rc)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$tmp/valgrind.log" | tail -n 60
finish valgrind
