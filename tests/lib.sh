# lib.sh -- shared by the shell tests: a temporary folder, a mock cluster, ok/not ok lines.
# Source it from the repository root; it sets bin, mock, tmp, addr (after start_mock).
bin=${CRM_BIN:-./crm-consumerd}
mock=${MOCK_BIN:-build/default/tests/mock_cluster}
tmp=$(mktemp -d)
passed=0 failed=0 dpid= mpid=

cleanup() {
    exec 3>&- 2>/dev/null
    [ -n "$dpid" ] && kill -KILL "$dpid" 2>/dev/null
    [ -n "$mpid" ] && kill -TERM "$mpid" 2>/dev/null
    wait 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

check() { # check NAME COMMAND...: one ok / not ok line
    local name=$1
    shift
    if "$@"; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name"
        failed=$((failed + 1))
    fi
}

# wait_for FILE PATTERN SECONDS: until a line of FILE matches (another process writes it).
wait_for() {
    local end=$((SECONDS + $3))
    until grep -qE "$2" "$1" 2>/dev/null; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.1
    done
}

# start_mock [PARTITIONS]: a mock cluster in its own process with the input and output topics,
# PARTITIONS (4) each. Fault commands for it (see tests/mock_cluster.c) go to file descriptor
# 3: echo "down 1" >&3.
start_mock() {
    mkfifo "$tmp/mock.in"
    "$mock" -p "${1:-4}" crm.inbound crm.tickets crm.responses crm.identities crm.inbound.dlq \
        < "$tmp/mock.in" > "$tmp/mock.out" 2> "$tmp/mock.err" &
    mpid=$!
    exec 3> "$tmp/mock.in"
    wait_for "$tmp/mock.out" : 10 || { echo "not ok - mock cluster did not start"; exit 1; }
    addr=$(head -n 1 "$tmp/mock.out")
}

# skip WHAT REASON: a part of the test cannot run here. It says so, as SKIP; under CI (CI=true),
# where every tool is installed, it is a failure, so that a green CI never hides an untested area.
skip() {
    if [ "${CI:-}" = true ]; then
        echo "not ok - $1: $2 (CI must run it)"
        failed=$((failed + 1))
    else
        echo "# SKIP $1: $2"
    fi
}

# finish NAME: the closing line run-tests reads, and the exit status.
finish() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
