#!/usr/bin/python3
"""kafka_tool.py -- an independent Kafka client for the daemon tests (confluent-kafka)."""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def produce(bootstrap, topic, count):
    """Produce `count` mixed messages round-robin over the partitions; print how many."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    partitions = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
    failed = []
    samples = [
        {"message_type": "email_received", "message_id": "m{i}", "from": "a{i}@example.com",
         "subject": "Order {i}", "name": "José"},
        {"type": "whatsapp_received", "message_id": "w{i}", "from": "+1 555 010 {i:04d}",
         "text": "こんにちは"},
        {"message_type": "form_submitted", "form_id": "contact", "submission_id": "s{i}",
         "fields": {"email": "f{i}@example.com", "phone": "(555) 010-0123"}},
    ]
    for i in range(count):
        if i % 10 == 9:
            value = b"{not json"  # a poison pill: dead-lettered, never retried
        else:
            sample = samples[i % len(samples)]
            text = json.dumps(sample).replace("{i}", str(i)).replace("{i:04d}", "%04d" % (i % 10000))
            value = text.encode()
        producer.produce(topic, value, partition=i % partitions,
                         on_delivery=lambda err, msg: err and failed.append(err))
        producer.poll(0)
    producer.flush(30)
    if failed:
        sys.exit("produce: %d deliveries failed: %s" % (len(failed), failed[0]))
    print(count)


def wait_committed(bootstrap, group, topic, timeout):
    """Wait until the group's committed offsets equal the high watermarks; print them."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    deadline = time.monotonic() + timeout
    while True:
        highs = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        # A partition that never held a message has no committed offset (-1001): it is done.
        done = [tp.offset if tp.offset >= 0 or hi > 0 else hi
                for tp, hi in zip(consumer.committed(tps, timeout=10), highs)]
        if done == highs or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling another process's commits: there is nothing to wait on
    consumer.close()
    print("committed %s high %s" % (done, highs))
    sys.exit(0 if done == highs else 1)


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "wait-committed":
        wait_committed(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    else:
        sys.exit("usage: kafka_tool.py produce|wait-committed ...")
