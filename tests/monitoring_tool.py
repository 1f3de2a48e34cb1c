#!/usr/bin/python3
"""monitoring_tool.py -- checks of the alert rules, their runbook and the Grafana dashboard.

  monitoring_tool.py lint-rules RULES TESTS RUNBOOK
        every alert named CrmConsumer*, severity critical or warning, a summary and a
        description; a promtool test that fires it and one that expects it quiet; a runbook
        section (a heading naming it) with what it means, what to check, what to do
  monitoring_tool.py lint-dashboard DASHBOARD
        the Grafana JSON model: schema version, a datasource variable every query uses,
        unique panel ids, a PromQL expression in every target
  monitoring_tool.py dashboard-queries PROMETHEUS_URL DASHBOARD MIN_FRACTION
        every expression of the dashboard (panels, annotations, variables), its Grafana
        variables substituted, sent to Prometheus: all must parse, and at least MIN_FRACTION
        of them return data; those that return none are listed
  monitoring_tool.py rules-health PROMETHEUS_URL SECONDS
        until Prometheus has evaluated every rule it loaded; none may have failed
"""
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SEVERITIES = ("critical", "warning")
RUNBOOK_PARTS = ("what it means", "what to check", "what to do")


def load_yaml(path):
    import yaml  # python3-yaml; imported here so the other commands do without it

    with open(path) as f:
        return yaml.safe_load(f)


def lint_rules(rules_path, tests_path, runbook_path):
    problems = []
    alerts = {}
    for group in load_yaml(rules_path).get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            if name in alerts:
                problems.append("%s: defined twice" % name)
            alerts[name] = rule
            if not name.startswith("CrmConsumer"):
                problems.append("%s: the name does not start with CrmConsumer" % name)
            severity = (rule.get("labels") or {}).get("severity")
            if severity not in SEVERITIES:
                problems.append("%s: severity %r, not one of %s" % (name, severity,
                                                                   ", ".join(SEVERITIES)))
            notes = rule.get("annotations") or {}
            for key in ("summary", "description"):
                if not str(notes.get(key, "")).strip():
                    problems.append("%s: no %s annotation" % (name, key))

    firing, quiet = set(), set()
    for test in load_yaml(tests_path).get("tests", []):
        for case in test.get("alert_rule_test") or []:
            (firing if case.get("exp_alerts") else quiet).add(case.get("alertname"))
    for name in sorted(alerts):
        if name not in firing:
            problems.append("%s: no test expects it to fire" % name)
        if name not in quiet:
            problems.append("%s: no test expects it to stay quiet" % name)
    for name in sorted((firing | quiet) - set(alerts)):
        problems.append("%s: tested, but no such alert" % name)

    with open(runbook_path) as f:
        runbook = f.read()
    sections = {}
    for m in re.finditer(r"^#{2,3} +(CrmConsumer\w+)[^\n]*\n(.*?)(?=^#{1,3} |\Z)", runbook,
                         re.M | re.S):
        sections[m.group(1)] = m.group(2).lower()
    for name in sorted(alerts):
        text = sections.get(name)
        if text is None:
            problems.append("%s: no section in %s" % (name, runbook_path))
            continue
        missing = [p for p in RUNBOOK_PARTS if p not in text]
        if missing:
            problems.append("%s: the runbook section lacks %s" % (name, ", ".join(missing)))
    for name in sorted(set(sections) - set(alerts)):
        problems.append("%s: a runbook section, but no such alert" % name)

    counts = {s: sum(1 for r in alerts.values()
                     if (r.get("labels") or {}).get("severity") == s) for s in SEVERITIES}
    print("%d alerts (%s)" % (len(alerts), ", ".join("%d %s" % (counts[s], s)
                                                       for s in SEVERITIES)))
    for p in problems:
        print(p)
    return 1 if problems or not alerts else 0


def panels_of(dashboard):
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []) or []:
            yield inner


def uses_datasource_variable(ds):
    uid = ds.get("uid", "") if isinstance(ds, dict) else str(ds or "")
    return uid in ("${datasource}", "$datasource", "${DS_PROMETHEUS}")


def lint_dashboard(path):
    with open(path) as f:
        dashboard = json.load(f)
    problems = []
    if dashboard.get("schemaVersion", 0) < 36:
        problems.append("schemaVersion %s, older than 36" % dashboard.get("schemaVersion"))
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append("no datasource variable: the dashboard would not import anywhere")
    ids = set()
    queries = 0
    for panel in panels_of(dashboard):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            problems.append("%s: panel id %s used twice" % (title, panel.get("id")))
        ids.add(panel.get("id"))
        if "gridPos" not in panel:
            problems.append("%s: no gridPos" % title)
        if panel.get("type") == "row":
            continue
        if not uses_datasource_variable(panel.get("datasource")):
            problems.append("%s: its datasource is not the datasource variable" % title)
        targets = panel.get("targets") or []
        if not targets:
            problems.append("%s: no query" % title)
        for t in targets:
            queries += 1
            if not str(t.get("expr", "")).strip():
                problems.append("%s: target %s has no expression" % (title, t.get("refId")))
            if not uses_datasource_variable(t.get("datasource", panel.get("datasource"))):
                problems.append("%s: target %s does not use the datasource variable" %
                                (title, t.get("refId")))
    print("%d panels, %d queries" % (len(ids), queries))
    for p in problems:
        print(p)
    return 1 if problems else 0


# Grafana's own variables, by the ranges an operator's dashboard would use; any other
# variable ($job, ${instance:regex}, [[topic]]) is a regular expression matching all.
BUILTINS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
            "__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000"}
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def substitute(expr):
    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return BUILTINS.get(name, ".*")
    return VARIABLE.sub(one, expr)


def dashboard_expressions(dashboard):
    """(where, expression) for every PromQL query the dashboard makes."""
    for panel in panels_of(dashboard):
        for t in panel.get("targets") or []:
            if t.get("expr"):
                yield "%s (%s)" % (panel.get("title"), t.get("refId")), t["expr"]
    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("expr"):
            yield "annotation %s" % a.get("name"), a["expr"]
    for v in dashboard.get("templating", {}).get("list", []):
        query = v.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if v.get("type") != "query" or not query:
            continue
        m = re.match(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", query, re.S)
        if m:  # what Grafana asks for, as PromQL: the label's values among the series
            query = "count by (%s) (%s)" % (m.group(2), m.group(1))
        yield "variable $%s" % v.get("name"), query


def prometheus_query(base, expr):
    url = base + "/api/v1/query?query=" + urllib.parse.quote(expr)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode()
    except urllib.error.HTTPError as e:
        body = e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return "error", str(e)
    try:
        answer = json.loads(body)
    except ValueError:
        return "error", body[:200]
    if answer.get("status") != "success":
        return "error", answer.get("error", body[:200])
    return "success", answer["data"]["result"]


def dashboard_queries(base, path, min_fraction):
    with open(path) as f:
        dashboard = json.load(f)
    exprs = list(dashboard_expressions(dashboard))
    failed, empty = [], []
    for where, expr in exprs:
        status, result = prometheus_query(base, substitute(expr))
        if status != "success":
            failed.append((where, expr, result))
        elif not result:
            empty.append((where, expr))
    with_data = len(exprs) - len(failed) - len(empty)
    print("%d expressions: %d return data, %d none, %d fail" %
          (len(exprs), with_data, len(empty), len(failed)))
    for where, expr, why in failed:
        print("fails: %s: %s: %s" % (where, expr, why))
    for where, expr in empty:
        print("no data: %s: %s" % (where, expr))
    return 0 if exprs and not failed and with_data >= min_fraction * len(exprs) else 1


def rules_health(base, seconds):
    deadline = time.monotonic() + seconds
    while True:
        status, rules = "error", None
        try:
            with urllib.request.urlopen(base + "/api/v1/rules", timeout=10) as r:
                answer = json.loads(r.read().decode())
            status = answer.get("status")
            rules = [rule for g in answer["data"]["groups"] for rule in g["rules"]]
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass
        pending = [r for r in rules or [] if r.get("health") == "unknown"]
        if status == "success" and rules and not pending:
            break
        if time.monotonic() > deadline:
            print("timed out: %s" % ("no rules loaded" if not rules else
                                       "%d rules never evaluated" % len(pending)))
            return 1
        time.sleep(0.5)  # Prometheus evaluates on its own schedule: nothing to wait on
    bad = [r for r in rules if r.get("health") != "ok"]
    active = ["%s (%s)" % (a["labels"].get("alertname"), a.get("state"))
              for r in rules for a in r.get("alerts") or []]
    print("%d rules evaluated, %d with errors; active now: %s" %
          (len(rules), len(bad), ", ".join(active) or "none"))
    for r in bad:
        print("%s: %s" % (r.get("name"), r.get("lastError")))
    return 1 if bad else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "lint-rules" and len(argv) == 5:
        return lint_rules(argv[2], argv[3], argv[4])
    if cmd == "lint-dashboard" and len(argv) == 3:
        return lint_dashboard(argv[2])
    if cmd == "dashboard-queries" and len(argv) == 5:
        return dashboard_queries(argv[2].rstrip("/"), argv[3], float(argv[4]))
    if cmd == "rules-health" and len(argv) == 4:
        return rules_health(argv[2].rstrip("/"), float(argv[3]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
