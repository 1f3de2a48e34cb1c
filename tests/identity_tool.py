#!/usr/bin/python3
"""identity_tool.py -- identity links through the daemon: retention, precedence, store vs topic.

An independent client (confluent-kafka) with its own implementation of the id hash.

  identity_tool.py forms ADDR TAG N [--twice]
        N forms linking +1 555 TAG nnnn to tag-n@example.org (with --twice, each phone is then
        linked again, at once and in the same input partition, to later-n@example.org)
  identity_tool.py whatsapps ADDR TAG N ROUND
        one WhatsApp from each of the N phones (message ids carry ROUND)
  identity_tool.py junk ADDR TOPIC MIB
        MIB MiB of incompressible records into every partition of TOPIC, past the retention
  identity_tool.py gone ADDR TAG N
        no record left on crm.identities names any of the N phones (retention took them)
  identity_tool.py resolved ADDR TAG N ROUND WANT
        every WhatsApp ticket of ROUND names the customer of its phone's WANT (first|later)
        e-mail address: no customer split
  identity_tool.py agree ADDR DUMP
        the store's dump (store_dump's output) holds exactly the links that replaying
        crm.identities up to the dumped positions gives
"""
import json
import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from e2e_tool import customer_id

INBOUND = "crm.inbound"
IDENTITIES = "crm.identities"


def phone(tag, i):
    return "+1555%s%04d" % (tag, i)


def email(which, tag, i):
    return "%s-%s-%d@example.org" % ("first" if which == "first" else "later", tag, i)


def producer_for(addr):
    return Producer({"bootstrap.servers": addr, "enable.idempotence": True, "linger.ms": 5})


def flush(producer, failed):
    producer.flush(60)
    if failed:
        sys.exit("%d deliveries failed: %s" % (len(failed), failed[0]))


def forms(addr, tag, n, twice):
    p = producer_for(addr)
    failed = []
    parts = len(p.list_topics(INBOUND, timeout=10).topics[INBOUND].partitions)
    for i in range(n):
        whos = ["first", "later"] if twice else ["first"]
        for k, who in enumerate(whos):
            form = {"type": "form_submitted", "form_id": "contact",
                    "submission_id": "%s-%s-%d" % (who, tag, i),
                    "fields": {"email": email(who, tag, i), "phone": phone(tag, i)}}
            # Both links of a phone in one input partition, in order.
            p.produce(INBOUND, json.dumps(form).encode(), key=phone(tag, i),
                      partition=i % parts, on_delivery=lambda e, m: e and failed.append(e))
        p.poll(0)
    flush(p, failed)


def whatsapps(addr, tag, n, rnd):
    p = producer_for(addr)
    failed = []
    for i in range(n):
        wa = {"type": "whatsapp_received", "message_id": "wa-%s-%s-%d" % (rnd, tag, i),
              "from": "+1 555 %s %04d" % (tag, i), "text": "hello"}
        p.produce(INBOUND, json.dumps(wa).encode(), on_delivery=lambda e, m: e and failed.append(e))
        p.poll(0)
    flush(p, failed)


def junk(addr, topic, mib):
    p = Producer({"bootstrap.servers": addr, "linger.ms": 0, "compression.type": "none",
                  "message.max.bytes": 2000000})
    failed = []
    parts = len(p.list_topics(topic, timeout=10).topics[topic].partitions)
    size = 256 * 1024
    for part in range(parts):
        for _ in range(mib * 4):
            p.produce(topic, os.urandom(size), partition=part,
                      on_delivery=lambda e, m: e and failed.append(e))
            p.flush(60)  # one record a message set: the retention counts sets
    flush(p, failed)


def read_all(addr, topic, upto=None):
    """Every record of topic from its log start, up to its end (or upto[partition])."""
    c = Consumer({"bootstrap.servers": addr, "group.id": "identity-tool",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
    ends = {}
    for part in parts:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
        ends[part] = hi if upto is None else min(hi, upto.get(part, 0))
    todo = {part for part in parts if ends[part] > 0}
    c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in parts])
    out, deadline = [], time.monotonic() + 120
    while todo and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # end of partition
                if m.offset() >= ends[m.partition()]:
                    todo.discard(m.partition())
                continue
            sys.exit("read %s: %s" % (topic, m.error()))
        if m.offset() < ends[m.partition()]:
            out.append(m)
        if m.offset() + 1 >= ends[m.partition()]:
            todo.discard(m.partition())
    c.close()
    if todo:
        sys.exit("read %s: partitions %s not read to their end" % (topic, sorted(todo)))
    return out


def gone(addr, tag, n):
    phones = {phone(tag, i) for i in range(n)}
    left = 0
    for m in read_all(addr, IDENTITIES):
        try:
            v = json.loads(m.value())
        except (ValueError, TypeError):
            continue
        left += isinstance(v, dict) and v.get("phone") in phones
    print("%d of %d links left on %s" % (left, n, IDENTITIES))
    sys.exit(0 if left == 0 else 1)


def resolved(addr, tag, n, rnd, want):
    tickets = {}
    for m in read_all(addr, "crm.tickets"):
        t = json.loads(m.value())
        if t["channel"] == "whatsapp" and t["source"]["message_id"].startswith("wa-%s-%s-" % (rnd, tag)):
            tickets[t["source"]["message_id"]] = t
    split = missing = 0
    for i in range(n):
        t = tickets.get("wa-%s-%s-%d" % (rnd, tag, i))
        if t is None:
            missing += 1
        elif t["customer_id"] != customer_id("email", email(want, tag, i)):
            split += 1
    print("%d tickets, %d missing, %d split customers" % (len(tickets), missing, split))
    sys.exit(0 if missing == 0 and split == 0 else 1)


def agree(addr, dump_path):
    stored, pos = {}, {}
    with open(dump_path) as f:
        for line in f:
            words = line.split()
            if words[0] == "link":
                stored[words[1]] = words[2]
            elif words[0] == "position":
                pos[int(words[1])] = int(words[2])
    replayed = {}
    for m in read_all(addr, IDENTITIES, upto=pos):
        key = m.key().decode() if m.key() else None
        if m.value() is None:
            replayed.pop(key, None)
            continue
        v = json.loads(m.value())
        if key == v["phone"] and v["customer_id"] == customer_id("email", v["email"].lower()):
            replayed[key] = v["customer_id"]
    differ = [p for p in set(stored) | set(replayed) if stored.get(p) != replayed.get(p)]
    print("store %d links, topic %d links up to positions %s, %d differ" %
          (len(stored), len(replayed), [pos[p] for p in sorted(pos)], len(differ)))
    for p in sorted(differ)[:5]:
        print("  %s: store %s, topic %s" % (p, stored.get(p), replayed.get(p)))
    sys.exit(0 if not differ and stored else 1)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "forms":
        forms(args[0], args[1], int(args[2]), "--twice" in args)
    elif cmd == "whatsapps":
        whatsapps(args[0], args[1], int(args[2]), args[3])
    elif cmd == "junk":
        junk(args[0], args[1], int(args[2]))
    elif cmd == "gone":
        gone(args[0], args[1], int(args[2]))
    elif cmd == "resolved":
        resolved(args[0], args[1], int(args[2]), args[3], args[4])
    elif cmd == "agree":
        agree(args[0], args[1])
    else:
        sys.exit(__doc__)
