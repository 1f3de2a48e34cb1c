#!/usr/bin/python3
"""badinput_tool.py -- a catalogue of bad inputs for the daemon; the check of what became of each.

  badinput_tool.py produce ADDR MANIFEST   write the catalogue to crm.inbound, a valid message
                                           after each bad one; record where each input landed
  badinput_tool.py counts URL LOG MANIFEST /metrics counts each input once: dead letters by
                                           class, successes, no retries; the log has the
                                           first dead letter of each class
  badinput_tool.py logged LOG MANIFEST     once the daemon stopped: the log told every dead
                                           letter, one by one or in a "N more" count
  badinput_tool.py verify ADDR MANIFEST    each input has its ticket and response, or its dead
                                           letter with the expected class, a reason naming the
                                           problem, and its key, value and headers intact

Every case says what the daemon must do with it: "ok" (processed: a ticket and a response
whose source is the input's partition and offset) or ("dlq", CLASS, REASON_PART). Inputs are
matched to outputs by partition and offset, so cases need no id of their own (a null value, a
value that is not JSON). An independent client (confluent-kafka) and its own id hash.
"""
import hashlib
import json
import os
import re
import sys
import urllib.request
import zlib

from confluent_kafka import Producer

# The end-to-end verifier's topic reader and its own implementation of the ticket id.
from e2e_tool import read_all, ticket_id

INBOUND = "crm.inbound"
GROUP = "badinput"
# processing.max_message_bytes and processing.max_nesting_depth as the daemon runs with them.
MAX_BYTES = 1048576
MAX_DEPTH = 64
# The librdkafka producer's default message.max.bytes, which the daemon's outputs meet.
PRODUCER_MAX = 1000000
# Bigger than every bounded field and small enough that a dozen copies fit one partition.
HUGE = 128 * 1024
# The mock keeps about 5 MiB per partition and trims the oldest batches beyond that: stay under.
PARTITION_BUDGET = 4 * 1024 * 1024
# The 10 MB value gets this partition to itself: anything after it there would trim it.
HUGE_PARTITION = 3
SMALL_PARTITIONS = 3


def js(obj):
    return json.dumps(obj, ensure_ascii=False).encode()


def email(mid, **extra):
    msg = {"message_type": "email_received", "message_id": mid, "from": "Ann@Example.com",
           "subject": "Hello", "body": "text"}
    msg.update(extra)
    return msg


def whatsapp(mid, **extra):
    msg = {"message_type": "whatsapp_received", "message_id": mid, "from": "+1 555 010 1234"}
    msg.update(extra)
    return msg


def form(sid, fields=None, **extra):
    msg = {"message_type": "form_submitted", "form_id": "contact", "submission_id": sid,
           "fields": fields if fields is not None else {"email": "bo@example.org"}}
    msg.update(extra)
    return msg


def at(value, needle):
    """The byte offset of needle in value, for reasons that name a position."""
    return value.index(needle)


def nest(depth):
    """An object nested `depth` levels below the member it is the value of."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def catalogue():
    """Every case: (name, value, expectation, options). Options: key, headers, channel, sid."""
    H = "x" * HUGE
    cases = []

    def ok(name, value, channel, sid, **opt):
        cases.append(dict(name=name, value=value, expect=["ok", channel, sid], **opt))

    def dlq(name, value, cls, reason, **opt):
        cases.append(dict(name=name, value=value, expect=["dlq", cls, reason], **opt))

    # Empty, null and not-JSON values.
    dlq("empty value", b"", "parse", "empty value")
    dlq("null value (tombstone)", None, "parse", "null value")
    dlq("whitespace only", b"  \n ", "parse", "invalid JSON near byte")
    # The byte where reading stopped, which may be past the real mistake, hence "near".
    dlq("not JSON", b"{not json", "parse", "invalid JSON near byte 1")
    dlq("plain text", b"hello", "parse", "invalid JSON near byte 0")
    # RFC 8259 section 8.1 lets a parser ignore a leading byte-order mark; the daemon does.
    ok("byte-order mark before the object", b"\xef\xbb\xbf" + js(email("bom")), "email", "bom")
    v = js(email("trail")) + b" garbage"
    dlq("trailing garbage", v, "parse", "trailing data after JSON at byte %d" % at(v, b"garbage"))
    dlq("two objects", b"{}{}", "parse", "trailing data after JSON at byte 2")
    dlq("JSON array", js([email("arr")]), "parse", "value is a JSON array, not an object")
    dlq("JSON string", b'"email_received"', "parse", "value is a JSON string, not an object")
    dlq("JSON number", b"42", "parse", "value is a JSON number, not an object")
    dlq("JSON boolean", b"true", "parse", "value is a JSON boolean, not an object")
    dlq("JSON null", b"null", "parse", "value is a JSON null, not an object")
    dlq("invalid escape", b'{"message_type":"email_received","subject":"\\x41"}', "parse",
        "invalid JSON near byte")
    dlq("lone surrogate escape", b'{"message_type":"email_received","subject":"\\ud800"}',
        "parse", "invalid JSON near byte")

    # Invalid UTF-8, wherever it is.
    for name, bad in [("invalid UTF-8 (0xff)", b"\xff"), ("overlong UTF-8", b"\xc0\xaf"),
                      ("UTF-8 surrogate", b"\xed\xa0\x80"), ("UTF-8 beyond U+10FFFF",
                                                             b"\xf4\x90\x80\x80"),
                      ("UTF-8 cut short", b"\xe2\x82")]:
        v = b'{"message_type":"email_received","message_id":"u8","from":"a@b.co","subject":"' + \
            bad + b'"}'
        dlq(name, v, "parse", "invalid UTF-8 at byte %d" % at(v, bad))
    v = b'{"message_type":"email_received","message_id":"u8k","from":"a@b.co","k\xfe":1}'
    dlq("invalid UTF-8 in a key", v, "parse", "invalid UTF-8 at byte %d" % at(v, b"\xfe"))

    # Nesting.
    dlq("10,000-deep arrays", b"[" * 10000 + b"]" * 10000, "parse",
        "nesting deeper than %d levels" % MAX_DEPTH)
    dlq("10,000 array openers, never closed", b"[" * 10000, "parse",
        "nesting deeper than %d levels" % MAX_DEPTH)
    # An object must start with a name, so the second brace is already wrong.
    dlq("10,000 object openers, never closed", b"{" * 10000, "parse", "invalid JSON near byte 1")
    v = js(email("deep"))[:-1] + b',"extra":' + nest(10000) + b"}"
    dlq("10,000-deep objects in a member", v, "parse", "nesting deeper than %d levels" % MAX_DEPTH)
    v = js(email("depth-limit"))[:-1] + b',"extra":' + nest(MAX_DEPTH - 1) + b"}"
    ok("nesting exactly at the limit", v, "email", "depth-limit")
    v = js(email("depth-over"))[:-1] + b',"extra":' + nest(MAX_DEPTH) + b"}"
    dlq("nesting one level over the limit", v, "parse", "nesting deeper than %d levels" % MAX_DEPTH)
    ok("10,000 brackets inside a string", js(email("brackets", body="[{" * 10000)), "email",
       "brackets")

    # NUL and control characters.
    v = b'{"message_type":"email_received","message_id":"nul1","from":"a@b.co",' \
        b'"subject":"a\\u0000b"}'
    dlq("\\u0000 escape in a string", v, "parse",
        "\\u0000 in string at byte %d" % at(v, b"\\u0000"))
    v = b'{"message_type":"email_received","message_id":"nul2","from":"a@b.co\\u0000.evil"}'
    dlq("\\u0000 escape in an address", v, "parse",
        "\\u0000 in string at byte %d" % at(v, b"\\u0000"))
    v = b'{"message_type":"email_received","message_id":"nul3","fr\\u0000om":"a@b.co"}'
    dlq("\\u0000 escape in a key", v, "parse", "\\u0000 in string at byte %d" % at(v, b"\\u0000"))
    v = b'{"message_type":"email_received","message_id":"nul4","from":"a@b.co","subject":"a\x00b"}'
    dlq("raw NUL byte in a string", v, "parse",
        "control character in string at byte %d" % at(v, b"\x00"))
    v = b'{"message_type":"email_received","message_id":"nul5","from":"a@b.co"}\x00'
    dlq("raw NUL byte after the object", v, "parse",
        "trailing data after JSON at byte %d" % at(v, b"\x00"))
    v = b'{"message_type":"email_received",\x00"message_id":"nul6","from":"a@b.co"}'
    dlq("raw NUL byte between members", v, "parse", "invalid JSON near byte %d" % at(v, b"\x00"))
    v = b'{"message_type":"email_received","message_id":"ctl","from":"a@b.co","subject":"\x01"}'
    dlq("raw control byte in a string", v, "parse",
        "control character in string at byte %d" % at(v, b"\x01"))
    ok("escaped backslash before u0000 (no NUL)",
       b'{"message_type":"email_received","message_id":"bs","from":"a@b.co","subject":"\\\\u0000"}',
       "email", "bs")

    # Duplicate keys, which many parsers resolve silently to the first or the last.
    dlq("duplicate message_type", b'{"message_type":"email_received","message_type":"x"}',
        "parse", 'duplicate key "message_type"')
    dlq("duplicate from, different values",
        b'{"message_type":"email_received","message_id":"d1","from":"a@b.co","from":"c@d.co"}',
        "parse", 'duplicate key "from"')
    dlq("duplicate key inside fields",
        js(form("d2"))[:-2] + b',"email":"x@y.co"}}', "parse", 'duplicate key "email"')
    many = b",".join(b'"k%d":%d' % (i, i) for i in range(40))
    dlq("duplicate key among 41 members", js(email("d3"))[:-1] + b"," + many + b',"k17":0}',
        "parse", 'duplicate key "k17"')
    ok("keys that differ only in case", js(email("case", From="other@example.com")), "email",
       "case")

    # Types and fields.
    dlq("empty object", b"{}", "schema", "no message_type or type field")
    for name, t in [("a number", 5), ("a boolean", True), ("an array", ["email_received"]),
                    ("null", None), ("an empty string", "")]:
        dlq("message_type is %s" % name, js({"message_type": t}), "schema",
            "message_type must be a non-empty string")
    dlq("type is a number", js({"type": 7}), "schema", "type must be a non-empty string")
    ok("type instead of message_type", js({"type": "whatsapp_received", "message_id": "tp",
                                           "from": "+44 20 7946 0000"}), "whatsapp", "tp")
    # message_type is read first; one that is not a non-empty string gives way to type.
    ok("ill-typed message_type beside a good type",
       js(email("fallback", message_type=5, type="email_received")), "email", "fallback")
    dlq("unknown message_type beside a good type",
        js(email("nofallback", message_type="sms_received", type="email_received")),
        "unknown_type", 'no handler for type "sms_received"')
    m = email("nofrom")
    del m["from"]
    dlq("e-mail without from", js(m), "schema", 'field "from" is missing')
    m = email("x")
    del m["message_id"]
    dlq("e-mail without message_id", js(m), "schema", 'field "message_id" is missing')
    m = email("cap")
    m["From"] = m.pop("from")
    dlq("From instead of from (keys are case-sensitive)", js(m), "schema",
        'field "from" is missing')
    for name, bad in [("a number", 42), ("a boolean", True), ("an array", ["a@b.co"]),
                      ("an object", {"a": "b"}), ("null", None)]:
        dlq("from is %s" % name, js(email("t-" + name, **{"from": bad})), "schema",
            'field "from" must be a string')
    dlq("message_id is a number", js(email(12345)), "schema",
        'field "message_id" must be a string')
    dlq("message_id is empty", js(email("")), "schema", 'field "message_id" must not be empty')
    dlq("subject is a number", js(email("sn", subject=7)), "schema",
        'field "subject" must be a string')
    dlq("timestamp is a boolean", js(whatsapp("tb", timestamp=True)), "schema",
        'field "timestamp" must be a string or a number')
    dlq("timestamp is infinite (1e999)",
        js(whatsapp("ti"))[:-1] + b',"timestamp":1e999}', "schema",
        'field "timestamp" must be a finite number')
    ok("timestamp is a number", js(whatsapp("tn", timestamp=1700000000)), "whatsapp", "tn")
    dlq("fields is an array", js(form("fa", fields=[])), "schema",
        'field "fields" must be an object')
    dlq("fields is a string", js(form("fs", fields="bo@example.org")), "schema",
        'field "fields" must be an object')
    dlq("fields without email or phone", js(form("fe", fields={"name": "Bo"})), "schema",
        'fields must hold "email" or "phone"')
    dlq("fields.email is a number", js(form("fn", fields={"email": 5})), "schema",
        'field "fields.email" must be a string')
    dlq("fields.email is empty", js(form("fz", fields={"email": ""})), "schema",
        'field "fields.email" must not be empty')

    # A huge string in every field: bounded ones are schema errors, free text is processed.
    for field, limit in [("message_id", 256), ("from", 320), ("to", 4096), ("subject", 998),
                         ("name", 256), ("received_at", 64)]:
        dlq("huge e-mail %s" % field, js(email("hx-" + field, **{field: H})), "schema",
            'field "%s" is longer than %d bytes' % (field, limit))
    for field, limit in [("message_id", 256), ("from", 64), ("profile_name", 256),
                         ("timestamp", 64)]:
        dlq("huge WhatsApp %s" % field, js(whatsapp("hw-" + field, **{field: H})), "schema",
            'field "%s" is longer than %d bytes' % (field, limit))
    for field, limit in [("form_id", 256), ("submission_id", 256), ("submitted_at", 64)]:
        dlq("huge form %s" % field, js(form("hf-" + field, **{field: H})), "schema",
            'field "%s" is longer than %d bytes' % (field, limit))
    for field, limit in [("email", 320), ("phone", 64), ("name", 256)]:
        dlq("huge form fields.%s" % field, js(form("hff-" + field, fields={field: H})), "schema",
            'field "fields.%s" is longer than %d bytes' % (field, limit))
    ok("huge e-mail body", js(email("hb", body=H)), "email", "hb")
    ok("huge WhatsApp text", js(whatsapp("ht", text=H)), "whatsapp", "ht")
    ok("huge form fields.message", js(form("hm", fields={"email": "m@example.org",
                                                         "message": H})), "form", "hm")
    dlq("huge message_type", js({"message_type": H}), "unknown_type",
        'no handler for type "' + "x" * 64 + '..."')
    dlq("huge non-ASCII message_type", js({"message_type": "\u00e9" * (HUGE // 2)}), "unknown_type",
        'no handler for type "' + "\u00e9" * 32 + '..."')
    dlq("huge emoji message_type", js({"message_type": "\U0001F600" * 1000}), "unknown_type",
        'no handler for type "' + "\U0001F600" * 16 + '..."')
    ok("50,000 members", js(email("wide", **{"m%d" % i: i for i in range(50000)})), "email",
       "wide")
    ok("100,000-element array", js(email("long", extra=list(range(100000)))), "email", "long")
    ok("70-digit number in an ignored member",
       js(email("digits"))[:-1] + b',"extra":' + b"7" * 70 + b"}", "email", "digits")
    ok("huge member name", js(email("hn", **{H: 1})), "email", "hn")
    dlq("huge duplicate member name", js(email("hd"))[:-1] + b',"' + H.encode() + b'":1,"' +
        H.encode() + b'":2}', "parse", 'duplicate key "' + "x" * 64 + '..."')

    # Addresses and numbers that cannot be normalised.
    dlq("from is not an address", js(email("i1", **{"from": "not-an-address"})), "identity",
        'field "from": e-mail address has no "@"')
    dlq("from has two @", js(email("i2", **{"from": "a@b@example.com"})), "identity",
        'field "from": e-mail address has more than one "@"')
    ok("non-ASCII local part", js(email("idn-local", **{"from": "Jos\u00e9@Example.com"})),
       "email", "idn-local")
    ok("non-ASCII domain", js(email("idn-dom", **{"from": "a@ex\u00e4mple.com"})), "email",
       "idn-dom")
    dlq("underscore in the domain", js(email("us-dom", **{"from": "a@ex_ample.com"})),
        "identity", 'field "from": e-mail domain has an invalid character')
    dlq("address with a space inside", js(email("sp-in", **{"from": "a b@example.com"})),
        "identity", 'field "from": e-mail address contains whitespace or a control character')
    dlq("plus sign inside a number", js(whatsapp("plus", **{"from": "1555+0101234"})),
        "identity", 'field "from": phone number has a "+" not at the start')
    dlq("WhatsApp number too short", js(whatsapp("i3", **{"from": "12"})), "identity",
        'field "from": phone number is too short for its country')
    dlq("WhatsApp number with letters", js(whatsapp("i4", **{"from": "+1 555 CALL NOW"})),
        "identity", 'field "from": phone number has an invalid character')
    dlq("WhatsApp number too long", js(whatsapp("i5", **{"from": "1" * 20})), "identity",
        'field "from": phone number is too long for its country')
    dlq("WhatsApp number longer than any", js(whatsapp("i7", **{"from": "1" * 23})), "identity",
        'field "from": phone number has more than 15 digits')
    dlq("WhatsApp number without its area code", js(whatsapp("i8", **{"from": "555 0123"})),
        "identity", 'field "from": phone number lacks its area code')
    dlq("form with a bad phone beside a good address",
        js(form("i6", fields={"email": "ok@example.org", "phone": "0"})), "identity",
        'field "fields.phone": phone number is too short')

    # Types nobody handles.
    dlq("unknown type", js({"message_type": "sms_received", "id": 1}), "unknown_type",
        'no handler for type "sms_received"')
    dlq("type in the wrong case", js(email("uc", message_type="Email_Received")), "unknown_type",
        'no handler for type "Email_Received"')
    dlq("type with a newline", js(email("un", message_type="email_received\n")), "unknown_type",
        'no handler for type "email_received\\u000a"')

    # Sizes beyond what the daemon or its producer takes.
    v = js(email("over-by-one", body=""))
    v = v[:-3] + b"y" * (MAX_BYTES + 1 - len(v)) + v[-3:]
    dlq("value one byte over max_message_bytes", v, "oversize",
        "value of %d bytes exceeds processing.max_message_bytes (%d)" % (MAX_BYTES + 1, MAX_BYTES),
        omitted=True)
    dlq("output larger than the producer accepts",
        js(email("big-out", body="z" * (PRODUCER_MAX - 100))), "oversize",
        "larger than the producer accepts (message.max.bytes)", omitted=True)
    ten = 10 * 1024 * 1024
    v = js(email("ten-mb", body=""))
    v = v[:-3] + b"w" * (ten - len(v)) + v[-3:]
    dlq("10 MB value", v, "oversize",
        "value of %d bytes exceeds processing.max_message_bytes (%d)" % (ten, MAX_BYTES),
        omitted=True, partition=HUGE_PARTITION)

    # Text that the outputs must carry exactly: every JSON escape, and template syntax.
    ok("every escape in subject, body and name",
       js(email("esc", subject='"\\/\b\f\n\r\t\u001f\u007f\u2028\u2029\U0001F600 </script>',
                body="\U0001F600 \u00e9", name="Zo\u00eb \"Q\" \\"))[:-1] +
       b',"text2":"\\ud83d\\ude00"}', "email", "esc")
    ok("placeholders in the name and subject",
       js(email("tpl", name="{ticket_id} {{x}} {subject}", subject="{name}")), "email", "tpl")
    ok("escaped surrogate pair", b'{"message_type":"email_received","message_id":"sur",'
       b'"from":"a@b.co","subject":"\\ud83d\\ude00 x","body":"\\u00e9"}', "email", "sur")

    # Compressed batches: kept small in the mock, inflated by the daemon's client.
    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        v = js(email("ten-mb-" + codec, body=""))
        v = v[:-3] + b"0" * (ten - len(v)) + v[-3:]
        dlq("10 MB value in a %s batch" % codec, v, "oversize",
            "value of %d bytes exceeds processing.max_message_bytes (%d)" % (ten, MAX_BYTES),
            omitted=True, compression=codec)
    ok("valid message in a zstd batch", js(email("zstd-ok")), "email", "zstd-ok",
       compression="zstd")

    # Keys and headers: processing ignores them; a dead letter keeps them exactly.
    ok("null key", js(email("nk")), "email", "nk", key=None)
    dlq("null key on a poison pill", b"{nope", "parse", "invalid JSON", key=None)
    dlq("binary key on a poison pill", b"{nope", "parse", "invalid JSON",
        key=bytes(range(256)) + b"\xff\xfe")
    ok("huge key", js(email("hk")), "email", "hk", key=b"k" * HUGE)
    many = [("h%d" % i, b"v%d" % i) for i in range(1000)]
    ok("1,000 headers", js(email("mh")), "email", "mh", headers=many)
    dlq("1,000 headers on a poison pill", b"[]", "parse", "value is a JSON array", headers=many)
    odd = [("bin", bytes(range(256))), ("", b"empty name"), ("nullvalue", None),
           ("utf8-bad", b"\xff\xfe\x00"), ("big", b"b" * (64 * 1024))]
    ok("binary, empty-named and null headers", js(email("oh")), "email", "oh", headers=odd)
    dlq("binary, empty-named and null headers on a poison pill", b"{}", "schema",
        "no message_type or type field", headers=odd)
    spoof = [("crm.error.class", b"none"), ("crm.error.reason", b"all fine"),
             ("crm.source.offset", b"0"), ("crm.attempts", b"99")]
    ok("headers named like crm.* ones", js(email("sp")), "email", "sp", headers=spoof)
    dlq("headers named like crm.* ones on a poison pill", b"{}", "schema",
        "no message_type or type field", headers=spoof)
    # A poison pill whose key or headers alone are more than the producer's message.max.bytes:
    # its dead letter cannot be sent even without the value, so it goes without the key and
    # the original headers too, saying how many bytes it left out.
    if True:
        big = PRODUCER_MAX + 200 * 1024
        dlq("poison pill with a key over message.max.bytes", b"{nope", "parse", "invalid JSON",
            key=b"k" * big, envelope=True)
        dlq("poison pill with headers over message.max.bytes", b"{nope", "parse",
            "invalid JSON", headers=[("h", b"v" * big)], envelope=True)
    return cases


def valid_after(i):
    """The valid message produced after the i-th bad one, in the same partition."""
    kind = i % 3
    sid = "fine-%d" % i
    if kind == 0:
        return js(email(sid, **{"from": "fine%d@example.com" % i})), "email", sid
    if kind == 1:
        return js(whatsapp(sid, **{"from": "+1 555 020 %04d" % i})), "whatsapp", sid
    fields = {"email": "fine%d@example.org" % i, "phone": "+1 555 030 %04d" % i}
    return js(form(sid, fields=fields)), "form", sid


def digest(value):
    return None if value is None else hashlib.sha256(value).hexdigest()


# The default response templates, rendered here independently of the daemon.
TEMPLATES = {
    "email": 'Hello {name}, we received "{subject}". Your ticket is {ticket_id}.',
    "whatsapp": "Hi {name}, thanks for your message. Your ticket is {ticket_id}.",
    "form": "Hello {name}, thank you for contacting us. Your ticket is {ticket_id}.",
}


def content(value, channel):
    """What a processed input's ticket and response must say, read by Python's own parser."""
    msg = json.loads(value.decode("utf-8-sig"))
    if channel == "email":
        got = {"subject": msg.get("subject"), "body": msg.get("body"), "name": msg.get("name")}
    elif channel == "whatsapp":
        got = {"subject": None, "body": msg.get("text"), "name": msg.get("profile_name")}
    else:
        got = {"subject": None, "body": msg["fields"].get("message"),
               "name": msg["fields"].get("name")}
    return got


def response_text(channel, rec_content, tid):
    """The template with its placeholders filled in one pass: values are not expanded again."""
    values = {"name": rec_content["name"] or "there",
              "subject": rec_content["subject"] or "(no subject)", "ticket_id": tid}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], TEMPLATES[channel])


def header_type(case):
    """What crm.message_type must say: the routed type, cut to 63 bytes between characters, or
    empty when the value failed before routing (parse errors, a value over the size limit)."""
    exp = case["expect"]
    if exp[0] != "dlq" or exp[1] == "parse" or exp[2].startswith("value of"):
        return ""
    try:
        msg = json.loads(case["value"].decode("utf-8-sig"))
    except ValueError:
        return ""
    for name in ("message_type", "type"):
        t = msg.get(name) if isinstance(msg, dict) else None
        if isinstance(t, str) and t:
            raw = t.encode()[:63]
            return raw.decode("utf-8", errors="ignore")
    return ""


def stored(case):
    """About how many bytes an input takes in the mock: compressed batches are kept compressed."""
    value = case["value"] or b""
    if case.get("compression"):
        value = zlib.compress(value)
    return len(value) + len(case.get("key") or b"") + \
        sum(len(h) + len(v or b"") for h, v in case.get("headers") or [])


def produce(bootstrap, manifest_path):
    entries, failed, budget = [], [], {p: 0 for p in range(SMALL_PARTITIONS)}
    budget[HUGE_PARTITION] = 0
    for i, case in enumerate(catalogue()):
        # Each bad input and the valid one after it go to the emptiest partition, in order.
        part = case.get("partition", min(range(SMALL_PARTITIONS), key=lambda p: budget[p]))
        group = [case]
        if part != HUGE_PARTITION:
            value, channel, sid = valid_after(i)
            group.append(dict(name="valid after #%d" % i, value=value,
                              expect=["ok", channel, sid], compression=case.get("compression")))
        for c in group:
            entries.append((c, part))
            budget[part] += stored(c)
    over = {p: n for p, n in budget.items() if p != HUGE_PARTITION and n > PARTITION_BUDGET}
    if over:
        sys.exit("produce: partitions %s hold more than the mock keeps" % over)
    # Dead letters land wherever their keys hash: all of them must fit one partition.
    dead = sum(stored(c) for c, _ in entries
               if c["expect"][0] == "dlq" and not c.get("omitted") and not c.get("envelope"))
    if dead > PARTITION_BUDGET:
        sys.exit("produce: %d bytes of dead letters may not fit one partition" % dead)

    # One producer per compression codec; the 10 MB values must get past the client's own
    # message.max.bytes, which it checks before compressing.
    producers = {}
    for case, _ in entries:
        codec = case.get("compression") or "none"
        if codec not in producers:
            producers[codec] = Producer({"bootstrap.servers": bootstrap,
                                         "enable.idempotence": True,
                                         "message.max.bytes": 20 * 1024 * 1024,
                                         "compression.type": codec})
    manifest = []
    for n, (case, part) in enumerate(entries):
        key = case["key"] if "key" in case else b"case-%d" % n
        headers = case.get("headers")
        rec = {"name": case["name"], "expect": case["expect"], "partition": part,
               "offset": None, "value_sha": digest(case["value"]),
               "value_len": None if case["value"] is None else len(case["value"]),
               "key_sha": digest(key), "key_len": len(key or b""),
               "omitted": case.get("omitted", False), "envelope": case.get("envelope", False),
               "headers": [[h, None if v is None else v.hex()] for h, v in headers or []]}
        if case["expect"][0] == "dlq":
            rec["type"] = header_type(case)
        if case["expect"][0] == "ok":
            rec["content"] = content(case["value"], case["expect"][1])
        manifest.append(rec)

        def report(err, msg, rec=rec):
            if err:
                failed.append("%s: %s" % (rec["name"], err))
            else:
                rec["offset"] = msg.offset()

        kw = {"headers": headers} if headers else {}
        producer = producers[case.get("compression") or "none"]
        producer.produce(INBOUND, case["value"], key=key, partition=part, on_delivery=report, **kw)
        producer.poll(0)
    for producer in producers.values():
        producer.flush(60)
    if failed or any(r["offset"] is None for r in manifest):
        sys.exit("produce: deliveries failed: %s" % failed[:3])
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    print("produced %d inputs (%d cases), bytes per partition %s, %d bytes to dead-letter"
          % (len(manifest), len(manifest) - sum(1 for r in manifest
                                                   if r["name"].startswith("valid after")),
             dict(sorted(budget.items())), dead))


def last(headers, name):
    """The last value of a header: the daemon's own follows any the input carried."""
    found = [v for h, v in headers if h == name]
    return found[-1] if found else None


def by_source(bootstrap, topic):
    """Outputs of topic by (input partition, input offset)."""
    out = {}
    for m in read_all(bootstrap, topic):
        ev = json.loads(m.value())
        src = ev["source"]
        if src["topic"] != INBOUND:
            sys.exit("%s: output from topic %s" % (topic, src["topic"]))
        if m.key() is None or m.key().decode() != ev["customer_id"]:
            sys.exit("%s: key %r is not the customer_id" % (topic, m.key()))
        out.setdefault((src["partition"], src["offset"]), []).append(ev)
    return out


def verify(bootstrap, manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    tickets = by_source(bootstrap, "crm.tickets")
    responses = by_source(bootstrap, "crm.responses")
    dead = {}
    for m in read_all(bootstrap, "crm.inbound.dlq"):
        hs = m.headers() or []
        src = (last(hs, "crm.source.topic"), last(hs, "crm.source.partition"),
               last(hs, "crm.source.offset"))
        if None in src or src[0] != INBOUND.encode():
            sys.exit("dead letter without its source: %s" % hs[-10:])
        dead.setdefault((int(src[1]), int(src[2])), []).append(m)

    problems, rows = [], []
    for rec in manifest:
        where = (rec["partition"], rec["offset"])
        exp = rec["expect"]
        ts, rs, ds = tickets.get(where, []), responses.get(where, []), dead.get(where, [])
        if ts and ds:
            observed = "both processed and dead-lettered"
        elif ts:
            observed = "ok"
        elif ds:
            hs = ds[0].headers() or []
            observed = "dlq %s: %s" % ((last(hs, "crm.error.class") or b"?").decode(),
                                       (last(hs, "crm.error.reason") or b"?").decode())
        else:
            observed = "nothing (silently dropped)"
        bad = []
        if exp[0] == "ok":
            want = ticket_id(exp[1], exp[2])
            if ds:
                bad.append("dead-lettered")
            if not ts or {t["ticket_id"] for t in ts} != {want}:
                bad.append("ticket ids %s, want %s" % (sorted({t["ticket_id"] for t in ts}), want))
            if not rs or {r["ticket_id"] for r in rs} != {want}:
                bad.append("no response for %s" % want)
            for t in ts:
                got = {"subject": t["subject"], "body": t["body"], "name": t["contact"]["name"]}
                if got != rec["content"]:
                    bad.append("ticket subject/body/name differ from the input's")
                    break
            for r in rs:
                if r["text"] != response_text(exp[1], rec["content"], want):
                    bad.append("response text %r" % r["text"][:120])
                    break
        else:
            if ts or rs:
                bad.append("has outputs")
            if not ds:
                bad.append("no dead letter")
            for m in ds:
                hs = m.headers() or []
                cls = (last(hs, "crm.error.class") or b"").decode()
                reason = (last(hs, "crm.error.reason") or b"").decode()
                if cls != exp[1]:
                    bad.append("class %r, want %r" % (cls, exp[1]))
                if exp[2] not in reason:
                    bad.append("reason %r lacks %r" % (reason, exp[2]))
                try:
                    for h, v in hs:
                        if h.startswith("crm.") and v is not None:
                            v.decode("utf-8")
                except UnicodeDecodeError:
                    bad.append("a crm.* header is not UTF-8")
                if last(hs, "crm.attempts") != b"1" or last(hs, "crm.consumer.group") != \
                        GROUP.encode():
                    bad.append("crm.attempts or crm.consumer.group wrong")
                key_left = rec["envelope"] and m.key() is None and \
                    last(hs, "crm.key.omitted_bytes") == str(rec["key_len"]).encode()
                if last(hs, "crm.message_type") != rec["type"].encode():
                    bad.append("crm.message_type %r, want %r"
                               % (last(hs, "crm.message_type"), rec["type"]))
                if digest(m.key()) != rec["key_sha"] and not key_left:
                    bad.append("key not kept")
                # A dead letter whose key or headers alone are too big leaves out everything
                # but the daemon's headers, saying the sizes of what it left.
                if rec["omitted"] or rec["envelope"]:
                    if m.value() not in (None, b"") or \
                            last(hs, "crm.value.omitted_bytes") != str(rec["value_len"]).encode():
                        bad.append("value not omitted with its size")
                elif digest(m.value()) != rec["value_sha"]:
                    bad.append("value not kept (got %s bytes)"
                               % (None if m.value() is None else len(m.value())))
                orig = [[h, None if v is None else v.hex()] for h, v in hs[:len(rec["headers"])]]
                # The input's own crm.* headers are kept as crm.previous.*.
                want = [["crm.previous." + h[4:] if h.startswith("crm.") and
                         not h.startswith("crm.previous.") else h, v] for h, v in rec["headers"]]
                headers_left = rec["envelope"] and last(hs, "crm.headers.omitted_bytes")
                if orig != want and not headers_left:
                    bad.append("original headers not kept in order")
        if bad:
            problems.append("%s (partition %d offset %d): %s"
                            % (rec["name"], where[0], where[1], "; ".join(bad)))
        want = "ok" if exp[0] == "ok" else "dlq %s: ...%s..." % (exp[1], exp[2])
        rows.append((rec["name"], want, observed))
    for name, want, observed in rows:
        if not name.startswith("valid after"):
            print("| %s | %s | %s |" % (name, want, observed[:160].replace("|", "\\|")))
    ndlq = sum(len(v) for v in dead.values())
    print("verified %d inputs; %d tickets, %d dead letters; %d problems"
          % (len(manifest), sum(len(v) for v in tickets.values()), ndlq, len(problems)))
    for p in problems:
        print("  " + p)
    sys.exit(1 if problems else 0)


def expected_counts(manifest_path):
    """What the catalogue should make: successes, and dead letters by class."""
    with open(manifest_path) as f:
        manifest = json.load(f)
    want = {"dead": {}, "success": 0, "dead_letter": 0, "failure": 0, "error": 0, "retries": 0}
    for rec in manifest:
        if rec["expect"][0] == "ok":
            want["success"] += 1
        else:
            want["dead_letter"] += 1
            cls = rec["expect"][1]
            want["dead"][cls] = want["dead"].get(cls, 0) + 1
    return want


def counts(url, log_path, manifest_path):
    """The daemon's own counts against the catalogue: every input handled once, nothing retried."""
    want = expected_counts(manifest_path)
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    got = {"dead": {}, "success": 0, "dead_letter": 0, "failure": 0, "error": 0, "retries": 0}
    for line in text.splitlines():
        m = re.match(r'crm_consumer_dead_letters_total\{class="(\w+)"\} (\d+)$', line)
        if m and int(m.group(2)):
            got["dead"][m.group(1)] = int(m.group(2))
        m = re.match(r'kafka_consumer_messages_consumed_total\{.*status="(\w+)"\} (\d+)$', line)
        if m:
            got[m.group(1)] += int(m.group(2))
        m = re.match(r"crm_consumer_retries_total (\d+)$", line)
        if m:
            got["retries"] = int(m.group(1))
    logged, told = log_counts(log_path)
    # Dead letters are logged at a bounded rate: at least the first of each class, never more
    # than there are; the rest are told as counts when their window ends (see logged_all).
    print("metrics %s; %d dead letters logged one by one, %d told as counts so far" %
          (json.dumps(got, sort_keys=True), logged, told))
    ok = got == want and len(want["dead"]) <= logged <= want["dead_letter"]
    if not ok:
        print("want %s; %d to %d dead letters logged one by one" %
              (json.dumps(want, sort_keys=True), len(want["dead"]), want["dead_letter"]))
    sys.exit(0 if ok else 1)


def log_counts(log_path):
    """Dead letters logged one by one, and those told as "N more dead letters" counts."""
    logged = told = 0
    with open(log_path, errors="replace") as f:
        for line in f:
            if ": dead letter: " in line:
                logged += 1
            m = re.search(r"(\d+) more dead letters? of class \w+ in the last", line)
            if m:
                told += int(m.group(1))
    return logged, told


def logged_all(log_path, manifest_path):
    """After the daemon stopped: every dead letter was logged, one by one or in a count."""
    want = expected_counts(manifest_path)
    logged, told = log_counts(log_path)
    print("%d dead letters logged one by one and %d in counts, of %d" %
          (logged, told, want["dead_letter"]))
    sys.exit(0 if logged + told == want["dead_letter"] else 1)


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "produce" and len(sys.argv) == 4:
        produce(sys.argv[2], sys.argv[3])
    elif cmd == "counts" and len(sys.argv) == 5:
        counts(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "verify" and len(sys.argv) == 4:
        verify(sys.argv[2], sys.argv[3])
    elif cmd == "logged" and len(sys.argv) == 4:
        logged_all(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
