#!/usr/bin/python3
"""e2e_tool.py -- produce a mixed CRM workload with every poison class, then check every output.

An independent client (confluent-kafka) and an independent implementation of
the id algorithm (FNV-1a 64), so the daemon is checked against the contract,
not against itself.

  e2e_tool.py produce ADDR COUNT MANIFEST [--rate N]
                                            write COUNT inputs (N a second), record what each
                                            must become and where it went (partition, offset)
  e2e_tool.py link-again ADDR MANIFEST      one more WhatsApp from the linked phone
  e2e_tool.py verify ADDR MANIFEST [--max-duplicates N] [--duplicates FILE]
                                            every input has its outputs or its dead letter;
                                            counts how often each input's outputs appear
  e2e_tool.py committed ADDR GROUP FILE     the group's committed offsets, one
                                            "partition offset" line each
  e2e_tool.py signal-at URL PID COUNT SIGNAL WINDOW_MS [AFTER_S]
                                            watch the daemon's /metrics; once it has handled
                                            COUNT inputs and AFTER_S seconds more, send it
                                            SIGNAL (KILL, TERM, or NONE just to wait); print
                                            "handled N window H sent T": N handled when last
                                            seen, H at most handled in the WINDOW_MS before,
                                            T the signal's wall-clock time

verify prints "missing M, duplicates D (in I inputs), duplicate ratio R". An input is
missing when it lacks an expected output (a ticket and a response, or a dead letter). An
input handled k times leaves k copies of its outputs (ticket, response or dead letter,
whichever came out most often); its duplicates are the k - 1 extra copies, D their sum
over the inputs and R = D / inputs. Anything missing fails, as do more than N duplicates;
FILE gets one "partition offset copies" line per duplicated input.
"""
import datetime
import json
import os
import re
import signal
import sys
import time
import urllib.request

from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer, TopicPartition

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


def produce(bootstrap, count, manifest_path, rate=None):
    """Write the inputs, all at once or at `rate` a second (a stream that lasts)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    partitions = len(producer.list_topics(INBOUND, timeout=10).topics[INBOUND].partitions)
    failed = []
    manifest = {"valid": [], "poison": [], "links": []}

    def delivered(entry, err, msg):
        if err:
            failed.append(err)
        else:
            entry["p"], entry["o"] = msg.partition(), msg.offset()

    def send(value, key, partition, entry):
        producer.produce(INBOUND, value, key=key, partition=partition,
                         headers=[("trace-id", b"t-%s" % key.encode())],
                         on_delivery=lambda err, msg: delivered(entry, err, msg))
        producer.poll(0)

    # The link first, then a WhatsApp from that phone, in one partition so in that order.
    form = {"message_type": "form_submitted", "form_id": "signup", "submission_id": "link-form",
            "fields": {"email": LINK_EMAIL, "phone": LINK_PHONE, "name": "Lin"}}
    manifest["link_form"] = {}
    send(json.dumps(form).encode(), "link-form", 0, manifest["link_form"])
    wa = {"type": "whatsapp_received", "message_id": "link-wa-1", "from": "001 555 010 0777"}
    manifest["link_inputs"] = [{}]
    send(json.dumps(wa).encode(), "link-wa-1", 0, manifest["link_inputs"][0])
    manifest["links"].append("link-wa-1")

    pills = len(poison(0))
    start = time.monotonic()
    for i in range(count):
        if i % 10 == 9:
            cls, value = poison(i)[(i // 10) % pills]
            key = "poison-%d" % i
            entry = {"key": key, "class": cls}
            manifest["poison"].append(entry)
        else:
            msg, channel, sid, to = valid(i)
            value = json.dumps(msg).encode()
            key = sid
            entry = {"id": sid, "channel": channel, "to": to}
            manifest["valid"].append(entry)
        send(value, key, i % partitions, entry)
        if rate:
            wait = start + (i + 1) / rate - time.monotonic()
            if wait > 0:
                producer.poll(wait)
    producer.flush(120)
    if failed or producer.flush(0):
        sys.exit("produce: %d deliveries failed or unfinished: %s"
                 % (len(failed), failed[0] if failed else "timeout"))
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
    entry = {}

    def delivered(err, msg):
        if not err:
            entry["p"], entry["o"] = msg.partition(), msg.offset()

    producer.produce(INBOUND, json.dumps(wa).encode(), key=sid, partition=1,
                     on_delivery=delivered)
    producer.flush(30)
    if "o" not in entry:
        sys.exit("link-again: not delivered")
    manifest["links"].append(sid)
    manifest.setdefault("link_inputs", []).append(entry)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


def read_all(bootstrap, topic):
    """Every message of topic, from the beginning to the end of each partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-verify",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out, ends, deadline = [], set(), time.monotonic() + 120
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


def epoch_ms(text):
    """Milliseconds since the epoch of a created_at, "YYYY-MM-DDTHH:MM:SS.mmmZ"."""
    at = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (at - datetime.datetime(1970, 1, 1)) // datetime.timedelta(milliseconds=1)


def source_of(event):
    """The (partition, offset) of the input an output event came from; None if not crm.inbound."""
    src = event["source"]
    if src.get("topic", INBOUND) != INBOUND:
        return None
    return src["partition"], src["offset"]


def where(entry):
    return (entry["p"], entry["o"]) if "o" in entry else None


def verify(bootstrap, manifest_path, max_duplicates=None, duplicates_path=None):
    with open(manifest_path) as f:
        manifest = json.load(f)
    problems = []
    missing = 0
    tickets, responses = {}, {}
    # How many times each input offset was handled, by kind of output. A ticket (created_at)
    # and a dead letter (crm.failed_at) are written anew by each handling, so copies of them
    # that are byte for byte the same are one handling whose record the producer sent twice
    # (an ambiguous write that the mock cluster, unlike Kafka, does not deduplicate): those
    # are counted apart, as resent. Responses carry no time: only distinct ones are counted.
    copies = {"tickets": {}, "responses": {}, "dead letters": {}}
    seen_bytes = set()
    resent = [0]

    def count(kind, at, content=None):
        if at is None:
            return
        if content is not None:
            if (kind, at, content) in seen_bytes:
                resent[0] += kind != "responses"
                return
            seen_bytes.add((kind, at, content))
        copies[kind][at] = copies[kind].get(at, 0) + 1

    # Every record of a handling carries its ticket's created_at as its timestamp. Only the
    # ticket says which time that is: a response may outlive its ticket when a handling is
    # cut short (a kill between their acknowledgements), and the next one writes both anew.
    for m in read_all(bootstrap, "crm.tickets"):
        t = json.loads(m.value())
        if m.key().decode() != t["customer_id"]:
            problems.append("ticket key %s is not its customer_id" % m.key())
        if m.timestamp() != (TIMESTAMP_CREATE_TIME, epoch_ms(t["created_at"])):
            problems.append("ticket %s: record timestamp %s, created_at %s" %
                            (t["ticket_id"], m.timestamp(), t["created_at"]))
        tickets.setdefault(t["source"]["message_id"], []).append(t)
        count("tickets", source_of(t), m.value())
    # Links are keyed by the phone, so that one phone's links stay in order and a compacted
    # topic keeps each phone's latest.
    nlinks = 0
    for m in read_all(bootstrap, "crm.identities"):
        link = json.loads(m.value())
        nlinks += 1
        if m.key() is None or m.key().decode() != link["phone"]:
            problems.append("identity link key %s is not its phone %s" % (m.key(), link["phone"]))
    if nlinks == 0:
        problems.append("no identity link was published")
    for m in read_all(bootstrap, "crm.responses"):
        r = json.loads(m.value())
        responses.setdefault(r["source"]["message_id"], []).append(r)
        count("responses", source_of(r), m.value())
    dead = {}
    for m in read_all(bootstrap, "crm.inbound.dlq"):
        dead.setdefault(m.key().decode() if m.key() else None, []).append(m)
        h = dict(m.headers() or [])
        if "crm.source.partition" in h and "crm.source.offset" in h and \
                h.get("crm.source.topic", INBOUND.encode()) == INBOUND.encode():
            count("dead letters", (int(h["crm.source.partition"]), int(h["crm.source.offset"])),
                  (m.value(), tuple(m.headers() or [])))

    for v in manifest["valid"]:
        at = where(v)
        ts = tickets.get(v["id"], [])
        ids = {t["ticket_id"] for t in ts}
        if ids != {ticket_id(v["channel"], v["id"])}:
            problems.append("%s: ticket ids %s" % (v["id"], sorted(ids)))
            missing += 1
            continue
        rs = responses.get(v["id"], [])
        if not rs or any(r["to"] != v["to"] for r in rs):
            problems.append("%s: response %s" % (v["id"], rs[:1]))
            missing += not rs
            continue
        if at and not (copies["tickets"].get(at) and copies["responses"].get(at)):
            problems.append("%s: no output names its input offset %s" % (v["id"], at))
            missing += 1
    for p in manifest["poison"]:
        ms = dead.get(p["key"], [])
        if not ms:
            problems.append("%s: no dead letter" % p["key"])
            missing += 1
            continue
        headers = dict(ms[0].headers() or [])
        absent = [h for h in HEADERS if h not in headers]
        if absent:
            problems.append("%s: dead letter lacks %s" % (p["key"], absent))
        elif headers["crm.error.class"].decode() != p["class"]:
            problems.append("%s: class %s, want %s" % (p["key"], headers["crm.error.class"],
                                                        p["class"]))
        if headers.get("trace-id") != b"t-%s" % p["key"].encode():
            problems.append("%s: original header lost" % p["key"])
        at = where(p)
        if at and not copies["dead letters"].get(at):
            problems.append("%s: no dead letter names its input offset %s" % (p["key"], at))
            missing += 1
    linked = customer_id("email", LINK_EMAIL.lower())
    for sid in manifest["links"]:
        got = {t["customer_id"] for t in tickets.get(sid, [])}
        if got != {linked}:
            problems.append("%s: customer %s, want the linked %s" % (sid, sorted(got), linked))

    # Duplicates, per input offset: an input handled k times left k copies of its outputs.
    inputs = [where(e) for e in manifest["valid"] + manifest["poison"] +
              manifest.get("link_inputs", []) + [manifest.get("link_form", {})]]
    inputs = [at for at in inputs if at]
    extra = {}
    for at in inputs:
        k = max(copies[kind].get(at, 0) for kind in copies)
        if k > 1:
            extra[at] = k - 1
    duplicates = sum(extra.values())
    unknown = set()
    for kind in copies:
        unknown |= set(copies[kind]) - set(inputs)
    if inputs and unknown:
        problems.append("%d outputs name an input offset that was never produced, e.g. %s"
                        % (len(unknown), sorted(unknown)[:3]))
    ratio = duplicates / len(inputs) if inputs else 0.0
    if duplicates_path:
        with open(duplicates_path, "w") as f:
            for (part, off), n in sorted(extra.items()):
                f.write("%d %d %d\n" % (part, off, n + 1))
    if max_duplicates is not None and duplicates > max_duplicates:
        problems.append("%d duplicates, more than the bound %d" % (duplicates, max_duplicates))
    print("verified %d valid, %d poison, %d linked; %d problems"
          % (len(manifest["valid"]), len(manifest["poison"]), len(manifest["links"]),
             len(problems)))
    print("missing %d, duplicates %d (in %d inputs), duplicate ratio %.4f%s; "
          "%d records resent by the producer"
          % (missing, duplicates, len(extra), ratio,
             "" if max_duplicates is None else " (bound %d)" % max_duplicates, resent[0]))
    by_part = {}
    for (part, off) in sorted(extra):
        by_part.setdefault(part, []).append(off)
    for part, offs in sorted(by_part.items()):
        print("  duplicated inputs in partition %d: %d, offsets %d..%d"
              % (part, len(offs), offs[0], offs[-1]))
    for p in problems[:20]:
        print("  " + p)
    sys.exit(1 if problems or missing else 0)


def committed(bootstrap, group, path):
    """Write the group's committed offsets of the input topic, one "partition offset" a line."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    parts = consumer.list_topics(INBOUND, timeout=10).topics[INBOUND].partitions
    tps = consumer.committed([TopicPartition(INBOUND, p) for p in sorted(parts)], timeout=10)
    consumer.close()
    with open(path, "w") as f:
        for tp in tps:
            f.write("%d %d\n" % (tp.partition, tp.offset))


CONSUMED = re.compile(r"^kafka_consumer_messages_consumed_total(\{[^}]*\})?\s+(\S+)$", re.M)


def handled(url):
    """The inputs the daemon has handled (every status), or None if it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    return int(sum(float(m.group(2)) for m in CONSUMED.finditer(text)))


def signal_at(url, pid, count, signame, window_ms, after_s=0.0):
    """Signal the daemon at a point of the stream: once it has handled COUNT inputs, and
    AFTER_S seconds more."""
    samples = []
    deadline = time.monotonic() + 90
    reached = None
    while time.monotonic() < deadline:
        n = handled(url)
        now = time.monotonic()
        if n is not None:
            samples.append((now, n))
            if reached is None and n >= count:
                reached = now
            if reached is not None and now >= reached + after_s:
                break
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("signal-at: process %d is gone after %s inputs" % (pid, n))
        time.sleep(0.02)  # another process's counter: nothing to wait on but time
    else:
        sys.exit("signal-at: %d inputs not handled in time (last %s)" % (count, samples[-1:]))
    sent = time.time()
    if signame != "NONE":
        os.kill(pid, getattr(signal, "SIG" + signame))
    # The last WINDOW_MS before the last look lie after the last sample taken at least that
    # long before it: the counter grew by at most this much in them (all of it without one).
    last_t, last_n = samples[-1]
    before = [n for t, n in samples if t <= last_t - window_ms / 1000.0]
    print("handled %d window %d sent %.3f" % (last_n, last_n - (before[-1] if before else 0), sent))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "produce":
        opts = dict(zip(sys.argv[5::2], sys.argv[6::2]))
        produce(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                float(opts["--rate"]) if "--rate" in opts else None)
    elif cmd == "link-again":
        link_again(sys.argv[2], sys.argv[3])
    elif cmd == "verify":
        opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
        verify(sys.argv[2], sys.argv[3],
               int(opts["--max-duplicates"]) if "--max-duplicates" in opts else None,
               opts.get("--duplicates"))
    elif cmd == "signal-at":
        signal_at(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
                  float(sys.argv[6]), float(sys.argv[7]) if len(sys.argv) > 7 else 0.0)
    elif cmd == "committed":
        committed(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
