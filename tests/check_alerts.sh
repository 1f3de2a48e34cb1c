#!/usr/bin/env bash
# check_alerts.sh -- the alert rules and the dashboard in monitoring/: promtool accepts the
# rules and runs their unit tests; every alert is named, graded, described, tested firing and
# quiet, and has a runbook section; the dashboard is a Grafana JSON model that imports
# anywhere. (check_observe.sh runs the rules and the dashboard's queries on live metrics.)
set -u
cd "$(dirname "$0")/.."
. tests/lib.sh
py=/usr/bin/python3
mtool="$py tests/monitoring_tool.py"
rules=monitoring/crm-consumerd.rules.yml
tests=monitoring/crm-consumerd.rules.test.yml
dashboard=monitoring/crm-consumerd.dashboard.json

# run NAME COMMAND...: check COMMAND, showing its output as comments.
run() {
    local name=$1
    shift
    check "$name" bash -c '"$@" > "$0" 2>&1' "$tmp/out" "$@"
    sed '/^[[:space:]]*$/d; s/^/#   /' "$tmp/out"
}

if command -v promtool >/dev/null; then
    run "promtool check rules: $rules" promtool check rules "$rules"
    run "promtool test rules: each alert fires, and stays quiet, when its tests expect" \
        promtool test rules "$tests"
else
    skip "promtool check rules, promtool test rules" \
        "promtool is not installed (make deps installs prometheus)"
fi
if $py -c 'import yaml' 2>/dev/null; then
    run "each alert: CrmConsumer*, critical or warning, a summary and a description, tests firing and quiet, a runbook section" \
        $mtool lint-rules "$rules" "$tests" docs/runbook.md
else
    skip "the alerts' names, severities, tests and runbook" \
        "python3-yaml is not installed (make deps installs it)"
fi
check "the dashboard is valid JSON" bash -c '"$0" -m json.tool "$1" > /dev/null' "$py" "$dashboard"
run "the dashboard: schema 36+, a datasource variable in every query, unique panel ids" \
    $mtool lint-dashboard "$dashboard"
finish alerts
