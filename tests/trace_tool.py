#!/usr/bin/python3
"""trace_tool.py -- inputs with W3C trace context, and the headers of what the daemon made of them.

  trace_tool.py produce ADDR      a traced form (valid traceparent, header names in odd case, a
                                  tracestate), an e-mail with a malformed traceparent and a
                                  tracestate, and an untraced e-mail
  trace_tool.py verify ADDR       every output of the traced form carries both headers unchanged
                                  (ticket, response, identity link); the others carry neither
"""
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
STATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


def produce(addr):
    p = Producer({"bootstrap.servers": addr})
    form = {"type": "form_submitted", "form_id": "f", "submission_id": "traced",
            "fields": {"email": "trace@example.org", "phone": "+1 555 010 4242"}}
    p.produce("crm.inbound", json.dumps(form).encode(),
              headers=[("TraceParent", PARENT.encode()), ("TRACESTATE", STATE.encode())])
    bad = {"type": "email_received", "message_id": "bad-trace", "from": "b@example.org"}
    p.produce("crm.inbound", json.dumps(bad).encode(),
              headers=[("traceparent", PARENT.upper().encode()), ("tracestate", STATE.encode())])
    plain = {"type": "email_received", "message_id": "untraced", "from": "c@example.org"}
    p.produce("crm.inbound", json.dumps(plain).encode())
    if p.flush(30):
        sys.exit("produce: not delivered")


def read(addr, topic):
    c = Consumer({"bootstrap.servers": addr, "group.id": "trace-verify",
                  "enable.partition.eof": True})
    parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out, ends, deadline = [], set(), time.monotonic() + 30
    while len(ends) < len(parts) and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            ends.add(m.partition())
            continue
        out.append(m)
    c.close()
    return out


def verify(addr):
    problems, seen = [], 0
    for topic in ("crm.tickets", "crm.responses", "crm.identities"):
        for m in read(addr, topic):
            v = json.loads(m.value())
            source = v["source"]["message_id"]
            headers = dict(m.headers() or [])
            if source == "traced":
                seen += 1
                if headers.get("traceparent") != PARENT.encode():
                    problems.append("%s of the traced form: traceparent %s" %
                                    (topic, headers.get("traceparent")))
                if headers.get("tracestate") != STATE.encode():
                    problems.append("%s of the traced form: tracestate %s" %
                                    (topic, headers.get("tracestate")))
            elif headers:
                problems.append("%s of %s carries headers %s" % (topic, source, sorted(headers)))
    if seen != 3:
        problems.append("the traced form made %d outputs, not 3" % seen)
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    {"produce": produce, "verify": verify}[sys.argv[1]](sys.argv[2])
