#!/usr/bin/python3
"""replay_tool.py -- inputs that dead-letter, and a check of the tickets replay made of them."""
import json
import sys

from confluent_kafka import Consumer, Producer, TopicPartition


def produce(bootstrap, count, first):
    """`count` inputs from number `first`: every 3rd oversize (a long body), every 3rd+1 bad JSON."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    failed = []
    for i in range(first, first + count):
        if i % 3 == 0:
            value = json.dumps({"message_type": "email_received", "message_id": "big%d" % i,
                                "from": "big%d@example.com" % i, "subject": "Large %d" % i,
                                "body": "x" * 3000}).encode()
        elif i % 3 == 1:
            value = b"{not json %d" % i
        else:
            value = json.dumps({"message_type": "email_received", "message_id": "small%d" % i,
                                "from": "small%d@example.com" % i}).encode()
        producer.produce("crm.inbound", value, key=b"k%d" % i,
                         headers={"traceparent": "00-%032x-%016x-01" % (i + 1, i + 1)},
                         on_delivery=lambda err, msg: err and failed.append(err))
        producer.poll(0)
    producer.flush(30)
    if failed:
        sys.exit("produce: %d deliveries failed: %s" % (len(failed), failed[0]))


def read_all(bootstrap, topic):
    """Every record of topic, from the beginning to the current end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "replay-tool",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    tps = []
    for p in sorted(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            tps.append(TopicPartition(topic, p, low))
    left = len(tps)
    records = []
    if tps:
        consumer.assign(tps)
    while left:
        m = consumer.poll(10)
        if m is None:
            sys.exit("read %s: timed out" % topic)
        if m.error():
            left -= 1
            continue
        records.append(m)
    consumer.close()
    return records


def check(bootstrap):
    """Every oversize input has its ticket, with its own source; no bad-JSON input has one."""
    sources = {}
    for m in read_all(bootstrap, "crm.inbound"):
        if m.value().startswith(b"{not json"):
            continue
        msg = json.loads(m.value())
        sources[msg["message_id"]] = (m.topic(), m.partition(), m.offset(),
                                      dict(m.headers() or []).get("traceparent"))
    tickets = {}
    bad = 0
    for m in read_all(bootstrap, "crm.tickets"):
        t = json.loads(m.value())
        s = t["source"]
        want = sources.get(s["message_id"])
        trace = dict(m.headers() or []).get("traceparent")
        if not want or want != (s["topic"], s["partition"], s["offset"], trace):
            bad += 1
        tickets[s["message_id"]] = tickets.get(s["message_id"], 0) + 1
    big = [k for k in sources if k.startswith("big")]
    missing = [k for k in big if k not in tickets]
    dups = sum(n - 1 for n in tickets.values())
    print("inputs %d, big %d, tickets %d, missing %d, duplicates %d, wrong source %d"
          % (len(sources), len(big), len(tickets), len(missing), dups, bad))
    sys.exit(1 if missing or bad else 0)


def count(bootstrap, topic):
    """Records in topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "replay-tool"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    n = 0
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        n += high - low
    consumer.close()
    print(n)


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "check":
        check(sys.argv[2])
    elif sys.argv[1] == "count":
        count(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: replay_tool.py produce|check|count ...")
