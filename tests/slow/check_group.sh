#!/usr/bin/env bash
# check_group.sh -- two instances in one group with the cooperative-sticky assignor: A starts,
# B joins mid-stream, A is stopped with SIGTERM mid-stream, B is killed with SIGKILL and
# restarted. Every input has its outputs or its dead letter, and every input handled twice
# lies where the SIGKILL left it (in a partition B held, at or after its committed offset) or
# where a commit the broker refused during the hand-over to B left it.
set -u
cd "$(dirname "$0")/../.."
. tests/lib.sh
py=/usr/bin/python3
e2e="$py tests/e2e_tool.py"
inputs=45000 rate=1500 partitions=16
apid= ppid_=
trap '[ -n "$apid" ] && kill -KILL "$apid" 2> /dev/null
      [ -n "$ppid_" ] && kill "$ppid_" 2> /dev/null; cleanup' EXIT

start_mock "$partitions"

# write_conf NAME: the configuration of one instance, with its own HTTP port in $port.
write_conf() {
    port=$($py tests/observe_tool.py free-port)
    cat > "$tmp/$1.conf" <<CONF
kafka = {
  brokers = "$addr";
  group_id = "group";
  properties = { session_timeout_ms = 6000; heartbeat_interval_ms = 500;
                 auto_commit_interval_ms = 250;
                 partition_assignment_strategy = "cooperative-sticky"; };
};
processing = { batch_size = 100; max_in_flight = 1000; max_message_bytes = 16384;
               shutdown_timeout_s = 10; };
circuit_breaker = { open_timeout_s = 1; };
http = { listen = "127.0.0.1:$port"; };
identity = { store_path = "$tmp/store-$1"; };
CONF
}

# held LOG: the partitions an instance holds after the assignments and revocations it logged.
held() {
    $py - "$1" <<'PY'
import re, sys
held = set()
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"(assigned|revoked|lost) \d+ partitions?\b.*?crm\.inbound\[([0-9,]*)\]", line)
    if m:
        parts = {int(p) for p in m.group(2).split(",") if p}
        held = held | parts if m.group(1) == "assigned" else held - parts
print(" ".join(str(p) for p in sorted(held)))
PY
}

# The stream: $inputs inputs at $rate a second, produced while the instances come and go.
$e2e produce "$addr" "$inputs" "$tmp/manifest" --rate "$rate" > "$tmp/produce.out" \
    2> "$tmp/produce.err" &
ppid_=$!

write_conf a
aurl="http://127.0.0.1:$port/metrics"
"$bin" -c "$tmp/a.conf" 2> "$tmp/a.log" &
apid=$!
check "A handles inputs alone" $e2e signal-at "$aurl" "$apid" 3000 NONE 1

write_conf b
burl="http://127.0.0.1:$port/metrics"
$e2e committed "$addr" group "$tmp/committed.join"
"$bin" -c "$tmp/b.conf" 2> "$tmp/b1.log" &
dpid=$!
check "B joins mid-stream and handles inputs" $e2e signal-at "$burl" "$dpid" 1500 NONE 1
check "B took partitions incrementally (cooperative)" \
    grep -q 'assigned .* (cooperative)' "$tmp/b1.log"
echo "# A holds: $(held "$tmp/a.log"); B holds: $(held "$tmp/b1.log")"

kill -TERM "$apid"
wait "$apid"
check "A: SIGTERM mid-stream exits 0" [ $? -eq 0 ]
apid=
left() { sed -n "/Terminated/,\$p" "$tmp/a.log" | grep -q revoked && ! grep -q shutdown: "$tmp/a.log"; }
check "A committed and left: its partitions revoked after SIGTERM, no shutdown warning" left

# B takes A's partitions, handles 2,000 more inputs, and is killed.
takeover() {
    local end=$((SECONDS + 30))
    until [ "$(held "$tmp/b1.log" | wc -w)" -eq "$partitions" ]; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}
check "B takes over every partition after A left" takeover
read -r _ n _ _ < <($e2e signal-at "$burl" "$dpid" 0 NONE 1)
check "B goes on after A left" $e2e signal-at "$burl" "$dpid" $((n + 2000)) NONE 1
# Committed offsets only grow: whatever the kill leaves uncommitted lies at or after these.
$e2e committed "$addr" group "$tmp/committed"
kill -KILL "$dpid"
{ wait "$dpid"; } 2> /dev/null
dpid=
held_b=$(held "$tmp/b1.log")
echo "# B held at the SIGKILL: $held_b"
echo "# committed just before it: $(tr '\n' ' ' < "$tmp/committed")"

write_conf b
"$bin" -c "$tmp/b.conf" 2> "$tmp/b2.log" &
dpid=$!
wait "$ppid_"
check "the stream: $inputs mixed inputs produced" [ $? -eq 0 ]
ppid_=
cat "$tmp/produce.out"
check "B restarted drains every input" \
    $py tests/kafka_tool.py wait-committed "$addr" group crm.inbound 120
kill -TERM "$dpid"
wait "$dpid"
check "B: SIGTERM exits 0" [ $? -eq 0 ]
dpid=

check "every input has its outputs or its dead letter" \
    $e2e verify "$addr" "$tmp/manifest" --duplicates "$tmp/dups"
echo "# duplicated inputs (partition offset copies), first 10 of $(wc -l < "$tmp/dups"):"
head -n 10 "$tmp/dups" | sed 's/^/#   /'
# Each duplicate must have a cause. The SIGKILL: in a partition B held, at or after the
# offset committed just before the kill. The hand-over when B joined, if the broker refused
# A's commit on that revoke (the mock cluster answers REBALANCE_IN_PROGRESS to commits during
# a rebalance): in a partition A gave up, at or after the offset committed before B started.
# A rewind after an output failed (the daemon logs it): in that partition, at or after the
# failed offset, as crm-consumerd(8) says. (Copies the producer resent are not duplicates:
# the verifier counts them apart.)
explain() {
    $py - "$tmp/dups" "$tmp/committed.join" "$tmp/committed" "$tmp/a.log" "$held_b" \
        "$tmp/b1.log" <<'PY'
import re
import sys

dups, join, kill, alog, held, blog = sys.argv[1:7]


def offsets(path):
    return {int(p): max(int(o), 0) for p, o in (line.split() for line in open(path))}


at_join, at_kill = offsets(join), offsets(kill)
held = {int(p) for p in held.split()}
handed, refused = set(), False
for line in open(alog, errors="replace"):
    if "Terminated" in line:
        break
    if "offset commit: " in line and "automatic" not in line:
        refused = True  # the synchronous commit of a revoke
    m = re.search(r"revoked \d+ partitions?: crm\.inbound\[([0-9,]*)\]", line)
    if m:
        handed |= {int(p) for p in m.group(1).split(",")}
rewound = {}
for path in (alog, blog):
    for line in open(path, errors="replace"):
        m = re.search(r"crm\.inbound \[(\d+)\] offset (\d+): (an output was not acknowledged|"
                      r"attempt \d+ failed)", line)
        if m:
            p, o = int(m.group(1)), int(m.group(2))
            rewound[p] = min(o, rewound.get(p, o))
killed = handover = rewind = 0
bad = []
for line in open(dups):
    p, o, n = map(int, line.split())
    if p in held and o >= at_kill[p]:
        killed += 1
    elif refused and p in handed and o >= at_join[p]:
        handover += 1
    elif p in rewound and o >= rewound[p]:
        rewind += 1
    else:
        bad.append((p, o, n))
print("# duplicated inputs: %d from the SIGKILL, %d from the hand-over to B (A's revoke commit "
      "%s), %d from rewinds, %d unexplained"
      % (killed, handover, "refused" if refused else "accepted", rewind, len(bad)))
for b in bad[:10]:
    print("#   unexplained: partition %d offset %d, %d copies" % b)
sys.exit(1 if bad else 0)
PY
}
check "every duplicate comes from the SIGKILL or a commit the broker refused" explain

finish group
