#!/usr/bin/python3
"""bench_tool.py -- the Kafka and /metrics side of bench/run: load, timed drain, quantiles.

  bench_tool.py free-port
  bench_tool.py produce ADDR COUNT               preload crm.inbound; prints "COUNT BYTES"
  bench_tool.py values COUNT [NUMBERS]           the load, one value a line (for bench/pipeline);
                                                 NUMBERS: phone numbers from that many customers
  bench_tool.py count-lines                      read kcat's output on stdin; prints
                                                 "LINES SECONDS" from its first byte to EOF
  bench_tool.py measure URL ADDR GROUP COUNT PID TIMEOUT
                                                 time one daemon draining COUNT inputs;
                                                 prints key=value lines for bench/run
"""
import re
import socket
import sys
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

INBOUND = "crm.inbound"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$')
LE = re.compile(r'le="([^"]*)"')
FOR = re.compile(r'\bfor="([^"]*)"')

# Bodies of a few realistic lengths, so values spread over ~250-350 bytes the way real
# mail and chat do, instead of every message having the same size.
BODIES = [
    "Hi, my order has not arrived yet and the tracking page has not changed since Monday.",
    "Hello team, could you send me the invoice again? The PDF attached last time was empty.",
    "Good morning. I would like to change the delivery address of my last order, please. "
    "I moved last week.",
    "Olá, o produto chegou danificado. Podem trocar?",
]


def value(i, numbers=None):
    """Input number i as bytes: e-mail, WhatsApp or form, and 1% poison of several classes.

    The phone numbers are the input's own (26,400 spellings in 50,000 inputs), or those of
    `numbers` customers who write again and again."""
    n = i if numbers is None else i % numbers
    body = BODIES[i % len(BODIES)]
    when = "2024-05-%02dT%02d:%02d:%02d.%03dZ" % (1 + i % 28, i % 24, i % 60, i % 59, i % 1000)
    if i % 100 == 99:
        # Poison is dead-lettered (one output, no retry): a mix of parse, schema, identity
        # and unknown-type failures, none oversized, so the byte count stays representative.
        return [b'{"message_type": "email_received", "message_id": "broken-%d", "from": ' % i,
                b'{"message_type": "email_received", "message_id": "p%d"}' % i,
                b'{"message_type": "email_received", "message_id": "p%d", "from": "nobody"}' % i,
                b'{"message_type": "fax_received", "id": %d, "pages": 3}' % i][(i // 100) % 4]
    kind = i % 3
    if kind == 0:
        text = ('{"message_type": "email_received", "message_id": "<mail-%d@mx.example.com>", '
                '"from": "person%d@example.com", "name": "José %d", '
                '"received_at": "%s", "subject": "Re: order %d is late", "body": "%s"}'
                % (i, i % 50000, i, when, i, body))
    elif kind == 1:
        text = ('{"type": "whatsapp_received", "message_id": "wamid.HBgL%012d", '
                '"from": "+1 555 %03d %04d", "profile_name": "Cliente %d", '
                '"timestamp": %d, "received_at": "%s", "text": "%s"}'
                % (i, 100 + n % 800, n % 10000, i, 1700000000 + i, when, body))
    else:
        text = ('{"message_type": "form_submitted", "form_id": "contact", '
                '"submission_id": "sub-%d", "received_at": "%s", "fields": {'
                '"email": "form%d@example.org", "name": "Ana %d", "phone": "(555) 010-%04d", '
                '"message": "%s"}}' % (i, when, i % 50000, i, n % 10000, body))
    return text.encode()


def produce(bootstrap, count, numbers=None):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False,
                         "linger.ms": 20, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 500000})
    partitions = len(producer.list_topics(INBOUND, timeout=10).topics[INBOUND].partitions)
    failed = []
    total = 0

    def on_delivery(err, msg):
        if err:
            failed.append(err)

    for i in range(count):
        v = value(i, numbers)
        total += len(v)
        while True:
            try:
                producer.produce(INBOUND, v, partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)  # the local queue is full: let deliveries drain it
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(60) or failed:
        sys.exit("produce: %d deliveries failed or pending: %s"
                 % (len(failed) + len(producer), failed[:1]))
    print(count, total)


def scrape(url):
    """Every sample of GET url as (name, labels, value); [] when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return []
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


def total(samples, name):
    return sum(v for n, _, v in samples if n == name)


def waits(samples):
    """crm_consumer_wait_seconds_total by its "for" label: {"messages": s, ...}."""
    out = {}
    for n, labels, v in samples:
        m = FOR.search(labels) if n == "crm_consumer_wait_seconds_total" else None
        if m:
            out[m.group(1)] = v
    return out


def quantile(q, samples, name):
    """histogram_quantile(q, name): linear inside the bucket the rank falls in (Prometheus)."""
    buckets = {}
    for n, labels, v in samples:
        if n == name + "_bucket":
            le = LE.search(labels).group(1)
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + v  # summed over any other labels
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return float("nan")
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if b == float("inf"):
                return lower  # Prometheus answers the highest finite bound
            if buckets[b] == below:
                return b
            return lower + (b - lower) * (rank - below) / (buckets[b] - below)
        lower, below = b, buckets[b]
    return lower


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def timed_drain(url, consumer, tps, highs, count, pid, deadline, fail):
    """The three phases of measure(): the times and the figures read at each end."""
    consumed_name = "kafka_consumer_messages_consumed_total"
    # Phase 1: wait for the first consumed message. Start-up (join, assignment, reading the
    # identities topic) is not what this measures.
    while True:
        now = time.monotonic()
        samples = scrape(url)
        first = total(samples, consumed_name)
        if first > 0:
            t_first = now
            waits_first = waits(samples)
            cpu_first = total(samples, "process_cpu_seconds_total")
            break
        if not alive(pid):
            fail("the daemon exited before consuming anything")
        if now > deadline:
            fail("nothing consumed in time")
        time.sleep(POLL_S)
    # Phase 2: every input consumed and none left in flight.
    t_consumed = None
    while True:
        now = time.monotonic()
        samples = scrape(url)
        done = total(samples, consumed_name)
        if t_consumed is None and done >= count:
            t_consumed = now
            waits_consumed = waits(samples)
            cpu_consumed = total(samples, "process_cpu_seconds_total")
        if t_consumed is not None and samples and total(
                samples, "crm_consumer_in_flight_messages") == 0:
            break
        if not alive(pid):
            fail("the daemon exited at %d of %d consumed" % (done, count))
        if now > deadline:
            fail("timed out at %d of %d consumed" % (done, count))
        time.sleep(POLL_S)
    # Phase 3: the group's committed offsets reach the high watermarks (the daemon commits
    # once it has caught up).
    try:
        while True:
            now = time.monotonic()
            committed = [tp.offset for tp in consumer.committed(tps, timeout=10)]
            if committed == highs:
                t_committed = now
                break
            if now > deadline:
                behind = sum(h - max(c, 0) for c, h in zip(committed, highs))
                fail("offsets still %d behind the high watermarks" % behind)
            time.sleep(POLL_S)  # another process's commits: nothing to wait on but time
    except KafkaException as e:
        fail(str(e))
    return (t_first, t_consumed, t_committed, first, waits_first, waits_consumed, cpu_first,
            cpu_consumed)


# How often measure() looks: the resolution of each end of a timed window. A look costs the
# daemon about a millisecond of CPU on /metrics, and the runs last a second or more.
POLL_S = 0.02


def measure(url, bootstrap, group, count, pid, timeout):
    deadline = time.monotonic() + timeout

    def fail(why):
        sys.exit("measure %s: %s" % (group, why))

    # For phase 3, made before the run so that none of it is timed: the inputs' partitions
    # and high watermarks, which the preload fixed.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(INBOUND, timeout=10).topics[INBOUND].partitions
        tps = [TopicPartition(INBOUND, p) for p in sorted(parts)]
        highs = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    except KafkaException as e:
        consumer.close()
        fail(str(e))
    try:
        t_first, t_consumed, t_committed, first, waits_first, waits_consumed, cpu_first, \
            cpu_consumed = timed_drain(url, consumer, tps, highs, count, pid, deadline, fail)
    finally:
        consumer.close()
    samples = scrape(url)
    hist = "kafka_message_processing_duration_seconds"
    # Rates count only what was consumed after the first sighting, over that window.
    print("first_seen=%d" % first)
    print("consume_s=%.6f" % (t_consumed - t_first))
    print("total_s=%.6f" % (t_committed - t_first))
    print("p50_us=%.1f" % (quantile(0.50, samples, hist) * 1e6))
    print("p99_us=%.1f" % (quantile(0.99, samples, hist) * 1e6))
    print("peak_rss_kib=%d" % peak_rss_kib(pid))
    # The daemon's CPU time (every thread) over the msgs/s window.
    print("cpu_s=%.2f" % (cpu_consumed - cpu_first))
    # How long the loop sat waiting inside that window, and for what.
    for kind in ("messages", "acknowledgements"):
        if kind not in waits_first or kind not in waits_consumed:
            fail("no crm_consumer_wait_seconds_total{for=\"%s\"} in /metrics" % kind)
        print("wait_%s_s=%.6f" % (kind, waits_consumed[kind] - waits_first[kind]))


def count_lines():
    """Lines on stdin and the time from the first byte to the end.

    Timing kcat from its first message, not from its start, matches the daemon's window
    (first consumed -> last), so connecting and fetching metadata count for neither. Big
    reads keep this reader's share of the CPU small.
    """
    stdin = sys.stdin.buffer
    chunk = stdin.read1(1 << 20)
    start = time.monotonic()
    lines = 0
    while chunk:
        lines += chunk.count(b"\n")
        chunk = stdin.read1(1 << 20)
    print(lines, "%.6f" % (time.monotonic() - start))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "free-port":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
    elif cmd == "produce":
        produce(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 and argv[4] else None)
    elif cmd == "values":
        out = sys.stdout.buffer
        numbers = int(argv[3]) if len(argv) > 3 else None
        for i in range(int(argv[2])):
            out.write(value(i, numbers) + b"\n")
    elif cmd == "count-lines":
        count_lines()
    elif cmd == "measure":
        measure(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]), float(argv[7]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
