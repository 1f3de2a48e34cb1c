#!/usr/bin/python3
"""e2e_tool.py -- produce a mixed CRM workload with every poison class, then check every output.

An independent client (confluent-kafka) and an independent implementation of
the id algorithm (FNV-1a 64), so the daemon is checked against the contract,
not against itself.

  e2e_tool.py produce ADDR COUNT MANIFEST   write COUNT inputs, record what each must become
  e2e_tool.py link-again ADDR MANIFEST      one more WhatsApp from the linked phone
  e2e_tool.py verify ADDR MANIFEST          every input has its outputs or its dead letter
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

INBOUND = "crm.inbound"
HEADERS = ["crm.error.class", "crm.error.reason", "crm.source.topic", "crm.source.partition",
           "crm.source.offset", "crm.source.timestamp", "crm.consumer.group", "crm.message_type",
           "crm.attempts", "crm.failed_at"]
LINK_EMAIL = "Linked.Person@Example.COM"
LINK_PHONE = "+1 (555) 010-0777"


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def customer_id(kind, canonical):
    return "cus_%016x" % fnv1a64(("%s:%s" % (kind, canonical)).encode())


def ticket_id(channel, source_id):
    return "tkt_%016x" % fnv1a64(("%s:%s" % (channel, source_id)).encode())


def poison(i):
    """The poison pills, by expected crm.error.class."""
    return [
        ("parse", b"{not json"),
        ("parse", b"[1, 2, 3]"),
        ("parse", b""),
        ("parse", None),
        ("parse", b'{"message_type": "email_received", "from": "\xff\xfe"}'),
        ("parse", b"[" * 200 + b"]" * 200),
        ("parse", b'{"message_type": "email_received", "message_type": "x"}'),
        ("schema", json.dumps({"message_type": "email_received", "message_id": "p%d" % i}).encode()),
        ("schema", json.dumps({"message_type": "whatsapp_received", "message_id": 7,
                               "from": "+15550100123"}).encode()),
        ("schema", json.dumps({"message_type": "form_submitted", "form_id": "f",
                               "submission_id": "p%d" % i, "fields": {}}).encode()),
        ("identity", json.dumps({"message_type": "email_received", "message_id": "p%d" % i,
                                 "from": "not-an-address"}).encode()),
        ("identity", json.dumps({"type": "whatsapp_received", "message_id": "p%d" % i,
                                 "from": "12"}).encode()),
        ("unknown_type", json.dumps({"message_type": "fax_received", "id": i}).encode()),
        ("oversize", json.dumps({"message_type": "email_received", "message_id": "p%d" % i,
                                 "from": "big@example.com", "body": "x" * 20000}).encode()),
    ]


def valid(i):
    """A valid message of one of the three types: (value, channel, source id, to-address)."""
    kind = i % 3
    if kind == 0:
        sid = "mail-%d" % i
        return ({"message_type": "email_received", "message_id": sid,
                 "from": "  Person%d@Example.com " % i, "subject": "Order %d \"late\"" % i,
                 "body": "Hello\nline two", "name": "José %d" % i}, "email", sid,
                "person%d@example.com" % i)
    if kind == 1:
        sid = "wamid-%d" % i
        return ({"type": "whatsapp_received", "message_id": sid,
                 "from": "+1 555 %03d %04d" % (100 + i % 800, i % 10000), "text": "こんにちは",
                 "profile_name": "名前"}, "whatsapp", sid,
                "+1555%03d%04d" % (100 + i % 800, i % 10000))
    sid = "sub-%d" % i
    return ({"message_type": "form_submitted", "form_id": "contact", "submission_id": sid,
             "fields": {"email": "form%d@example.org" % i, "name": "Ana",
                        "message": "Call me"}}, "form", sid, "form%d@example.org" % i)


def produce(bootstrap, count, manifest_path):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    partitions = len(producer.list_topics(INBOUND, timeout=10).topics[INBOUND].partitions)
    failed = []
    manifest = {"valid": [], "poison": [], "links": []}

    def send(value, key, partition):
        producer.produce(INBOUND, value, key=key, partition=partition,
                         headers=[("trace-id", b"t-%s" % key.encode())],
                         on_delivery=lambda err, msg: err and failed.append(err))
        producer.poll(0)

    # The link first, then a WhatsApp from that phone, in one partition so in that order.
    form = {"message_type": "form_submitted", "form_id": "signup", "submission_id": "link-form",
            "fields": {"email": LINK_EMAIL, "phone": LINK_PHONE, "name": "Lin"}}
    send(json.dumps(form).encode(), "link-form", 0)
    wa = {"type": "whatsapp_received", "message_id": "link-wa-1", "from": "001 555 010 0777"}
    send(json.dumps(wa).encode(), "link-wa-1", 0)
    manifest["links"].append("link-wa-1")

    pills = len(poison(0))
    for i in range(count):
        if i % 10 == 9:
            cls, value = poison(i)[(i // 10) % pills]
            key = "poison-%d" % i
            manifest["poison"].append({"key": key, "class": cls})
        else:
            msg, channel, sid, to = valid(i)
            value = json.dumps(msg).encode()
            key = sid
            manifest["valid"].append({"id": sid, "channel": channel, "to": to})
        send(value, key, i % partitions)
    producer.flush(60)
    if failed:
        sys.exit("produce: %d deliveries failed: %s" % (len(failed), failed[0]))
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    print("produced %d inputs (%d valid, %d poison) and 2 link messages"
          % (count, len(manifest["valid"]), len(manifest["poison"])))


def link_again(bootstrap, manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    sid = "link-wa-%d" % (len(manifest["links"]) + 1)
    wa = {"type": "whatsapp_received", "message_id": sid, "from": "5550100777"}
    producer.produce(INBOUND, json.dumps(wa).encode(), key=sid, partition=1)
    producer.flush(30)
    manifest["links"].append(sid)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


def read_all(bootstrap, topic):
    """Every message of topic, from the beginning to the end of each partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-verify",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out, ends, deadline = [], set(), time.monotonic() + 60
    while len(ends) < len(parts) and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                ends.add(m.partition())
                continue
            sys.exit("%s: %s" % (topic, m.error()))
        out.append(m)
    consumer.close()
    if len(ends) < len(parts):
        sys.exit("%s: not read to the end" % topic)
    return out


def verify(bootstrap, manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    problems = []
    tickets, responses = {}, {}
    for m in read_all(bootstrap, "crm.tickets"):
        t = json.loads(m.value())
        if m.key().decode() != t["customer_id"]:
            problems.append("ticket key %s is not its customer_id" % m.key())
        tickets.setdefault(t["source"]["message_id"], []).append(t)
    for m in read_all(bootstrap, "crm.responses"):
        r = json.loads(m.value())
        responses.setdefault(r["source"]["message_id"], []).append(r)
    dead = {}
    for m in read_all(bootstrap, "crm.inbound.dlq"):
        dead.setdefault(m.key().decode() if m.key() else None, []).append(m)

    for v in manifest["valid"]:
        ts = tickets.get(v["id"], [])
        ids = {t["ticket_id"] for t in ts}
        if ids != {ticket_id(v["channel"], v["id"])}:
            problems.append("%s: ticket ids %s" % (v["id"], sorted(ids)))
            continue
        rs = responses.get(v["id"], [])
        if not rs or any(r["to"] != v["to"] for r in rs):
            problems.append("%s: response %s" % (v["id"], rs[:1]))
    for p in manifest["poison"]:
        ms = dead.get(p["key"], [])
        if not ms:
            problems.append("%s: no dead letter" % p["key"])
            continue
        headers = dict(ms[0].headers() or [])
        missing = [h for h in HEADERS if h not in headers]
        if missing:
            problems.append("%s: dead letter lacks %s" % (p["key"], missing))
        elif headers["crm.error.class"].decode() != p["class"]:
            problems.append("%s: class %s, want %s" % (p["key"], headers["crm.error.class"],
                                                        p["class"]))
        if headers.get("trace-id") != b"t-%s" % p["key"].encode():
            problems.append("%s: original header lost" % p["key"])
    linked = customer_id("email", LINK_EMAIL.lower())
    for sid in manifest["links"]:
        got = {t["customer_id"] for t in tickets.get(sid, [])}
        if got != {linked}:
            problems.append("%s: customer %s, want the linked %s" % (sid, sorted(got), linked))

    dup = sum(len(ts) - 1 for ts in tickets.values())
    print("verified %d valid, %d poison, %d linked; %d duplicate tickets; %d problems"
          % (len(manifest["valid"]), len(manifest["poison"]), len(manifest["links"]), dup,
             len(problems)))
    for p in problems[:20]:
        print("  " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "produce":
        produce(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "link-again":
        link_again(sys.argv[2], sys.argv[3])
    elif cmd == "verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
