from common import *
url = sqs.create_queue(QueueName=uniq("q6"))["QueueUrl"]
def e(i, body="x", **kw):
    d = {"Id": str(i), "MessageBody": body}; d.update(kw); return d
call("11 entries", sqs.send_message_batch, QueueUrl=url, Entries=[e(i) for i in range(11)])
call("10 entries", sqs.send_message_batch, QueueUrl=url, Entries=[e(i) for i in range(10)])
call("duplicate ids", sqs.send_message_batch, QueueUrl=url, Entries=[e(1), e(1)])
call("empty list", sqs.send_message_batch, QueueUrl=url, Entries=[])
call("invalid id chars", sqs.send_message_batch, QueueUrl=url, Entries=[e("a b")])
K = 1024
call("2 x 140KiB (total 280KiB > 256KiB)", sqs.send_message_batch, QueueUrl=url, Entries=[e(1, "a"*140*K), e(2, "b"*140*K)])
call("8 x 130KiB (total 1040KiB < 1MiB)", sqs.send_message_batch, QueueUrl=url, Entries=[e(i, "a"*130*K) for i in range(8)])
call("9 x 120KiB (total 1080KiB > 1MiB)", sqs.send_message_batch, QueueUrl=url, Entries=[e(i, "a"*120*K) for i in range(9)])
call("batch single 300KiB entry", sqs.send_message_batch, QueueUrl=url, Entries=[e(1, "a"*300*K)])
call("batch single 1MiB+1 entry", sqs.send_message_batch, QueueUrl=url, Entries=[e(1, "a"*(1024*K+1))])
call("batch 1 ok + 1 with DelaySeconds 901", sqs.send_message_batch, QueueUrl=url, Entries=[e(1), e(2, DelaySeconds=901)])
print("\n--- single SendMessage sizes")
call("SendMessage 262144", sqs.send_message, QueueUrl=url, MessageBody="a"*262144)
call("SendMessage 262145", sqs.send_message, QueueUrl=url, MessageBody="a"*262145)
call("SendMessage 1048576", sqs.send_message, QueueUrl=url, MessageBody="a"*1048576)
call("SendMessage 1048577", sqs.send_message, QueueUrl=url, MessageBody="a"*1048577)
call("SendMessage 600000 x 2-byte chars (1.2MB utf8, 600000 chars)", sqs.send_message, QueueUrl=url, MessageBody="é"*600000)
call("SendMessage body+attributes > 1MiB", sqs.send_message, QueueUrl=url, MessageBody="a"*1048000, MessageAttributes={"big": {"DataType": "String", "StringValue": "b"*10000}})
call("SendMessage DelaySeconds 901", sqs.send_message, QueueUrl=url, MessageBody="x", DelaySeconds=901)
call("SendMessage empty body", sqs.send_message, QueueUrl=url, MessageBody="")
print("\n--- MaximumMessageSize attribute")
u2 = sqs.create_queue(QueueName=uniq("q6m"), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
call("send 1025 to MaximumMessageSize=1024", sqs.send_message, QueueUrl=u2, MessageBody="a"*1025)
call("create MaximumMessageSize=1048577", sqs.create_queue, QueueName=uniq("q6m"), Attributes={"MaximumMessageSize": "1048577"})
call("create MaximumMessageSize=1023", sqs.create_queue, QueueName=uniq("q6m"), Attributes={"MaximumMessageSize": "1023"})
print("\n--- forbidden characters")
for label, body in [("\\u0000", "a\u0000b"), ("\\uFFFF", "a\uffffb"), ("\\uFFFE", "a\ufffeb"), ("\\u0008 (backspace)", "a\u0008b"), ("\\u001F", "a\u001fb"), ("lone surrogate-ish \\uD800 n/a", None), ("\\U0001F600 emoji", "a\U0001F600b"), ("\\t\\n\\r", "a\t\n\rb")]:
    if body is None: continue
    r = call(f"SendMessage body with {label}", sqs.send_message, QueueUrl=url, MessageBody=body)
call("batch with \\u0000 in one entry", sqs.send_message_batch, QueueUrl=url, Entries=[e(1, "ok"), e(2, "a\u0000b")])
call("message attribute value with \\u0000", sqs.send_message, QueueUrl=url, MessageBody="ok", MessageAttributes={"a": {"DataType": "String", "StringValue": "x\u0000y"}})
sqs.purge_queue(QueueUrl=url)
sqs.send_message(QueueUrl=url, MessageBody="a\u0000b\uffff")
r = sqs.receive_message(QueueUrl=url)
print("round trip of \\u0000\\uFFFF body:", repr(r["Messages"][0]["Body"]))
print("\n--- batch vs queue MaximumMessageSize (per-entry or whole request?)")
u3 = sqs.create_queue(QueueName=uniq("q6m"), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
call("batch [ok, 2000 chars] on MaximumMessageSize=1024 queue", sqs.send_message_batch, QueueUrl=u3, Entries=[e(1, "ok"), e(2, "a" * 2000)])
print("  count after:", counts(u3)["ApproximateNumberOfMessages"])
call("batch 7 x 140KiB (1003520 chars, < 1MiB)", sqs.send_message_batch, QueueUrl=url, Entries=[e(i, "a"*140*K) for i in range(7)])
