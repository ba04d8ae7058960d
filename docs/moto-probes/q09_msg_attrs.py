from common import *
import base64, hashlib
attrs = {
    "s": {"DataType": "String", "StringValue": "hello ✓"},
    "n": {"DataType": "Number", "StringValue": "-12.50"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "ni": {"DataType": "Number.int", "StringValue": "7"},
    "sc": {"DataType": "String.custom", "StringValue": "c"},
    "bc": {"DataType": "Binary.gz", "BinaryValue": b"\x1f\x8b"},
}
url = sqs.create_queue(QueueName=uniq("q9"))["QueueUrl"]
s = sqs.send_message(QueueUrl=url, MessageBody="body", MessageAttributes=attrs)
print("send response:", {k: v for k, v in s.items() if k != "ResponseMetadata"})
r = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], VisibilityTimeout=0)
m = r["Messages"][0]
print("received MessageAttributes:", m["MessageAttributes"])
print("intact:", m["MessageAttributes"] == attrs, " MD5OfMessageAttributes:", m.get("MD5OfMessageAttributes"), "equals send MD5:", m.get("MD5OfMessageAttributes") == s.get("MD5OfMessageAttributes"))
# compute AWS-correct MD5 ourselves
import struct
def aws_md5(attrs):
    h = hashlib.md5()
    for name in sorted(attrs):
        v = attrs[name]
        for part in (name.encode(), v["DataType"].encode()):
            h.update(struct.pack("!I", len(part))); h.update(part)
        if "StringValue" in v:
            h.update(b"\x01"); x = v["StringValue"].encode(); h.update(struct.pack("!I", len(x))); h.update(x)
        else:
            h.update(b"\x02"); x = v["BinaryValue"]; h.update(struct.pack("!I", len(x))); h.update(x)
    return h.hexdigest()
print("AWS-algorithm MD5 computed locally:", aws_md5(attrs), "match:", aws_md5(attrs) == s.get("MD5OfMessageAttributes"))
r = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
print("receive without MessageAttributeNames -> keys:", sorted(r["Messages"][0].keys()))
r = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["s", "n"], VisibilityTimeout=0)
print("MessageAttributeNames=[s,n] ->", r["Messages"][0].get("MessageAttributes"), "MD5", r["Messages"][0].get("MD5OfMessageAttributes"))
r = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["b.*"], VisibilityTimeout=0)
print("MessageAttributeNames=['b.*'] ->", list(r["Messages"][0].get("MessageAttributes", {}).keys()))
r = sqs.receive_message(QueueUrl=url, MessageAttributeNames=[".*"], VisibilityTimeout=0)
print("MessageAttributeNames=['.*'] ->", list(r["Messages"][0].get("MessageAttributes", {}).keys()))

print("\n--- attribute validation")
for label, a in [
    ("DataType 'Foo'", {"x": {"DataType": "Foo", "StringValue": "1"}}),
    ("Number with non-numeric value", {"x": {"DataType": "Number", "StringValue": "abc"}}),
    ("String empty value", {"x": {"DataType": "String", "StringValue": ""}}),
    ("name with space", {"bad name": {"DataType": "String", "StringValue": "1"}}),
    ("name starting with AWS.", {"AWS.x": {"DataType": "String", "StringValue": "1"}}),
    ("11 attributes", {f"a{i}": {"DataType": "String", "StringValue": "1"} for i in range(11)}),
]:
    call(f"send attrs {label}", sqs.send_message, QueueUrl=url, MessageBody="x", MessageAttributes=a)

print("\n--- system attributes, standard")
def sysattrs(u, **kw):
    r = sqs.receive_message(QueueUrl=u, VisibilityTimeout=0, **kw)
    return r["Messages"][0].get("Attributes")
print("AttributeNames=['All']:", sysattrs(url, AttributeNames=["All"]))
print("MessageSystemAttributeNames=['All']:", sysattrs(url, MessageSystemAttributeNames=["All"]))
print("MessageSystemAttributeNames=[SentTimestamp, ApproximateReceiveCount]:", sysattrs(url, MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"]))
print("none requested:", sysattrs(url))
sqs.send_message(QueueUrl=url, MessageBody="t", MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"}})
sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)  # skip first message? order
r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageSystemAttributeNames=["All"])
print("AWSTraceHeader roundtrip:", [m["Attributes"].get("AWSTraceHeader") for m in r["Messages"]])
print("\n--- system attributes, FIFO")
fu = sqs.create_queue(QueueName=uniq("q9")+".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
sqs.send_message(QueueUrl=fu, MessageBody="f", MessageGroupId="g1", MessageDeduplicationId="d1")
print("FIFO MessageSystemAttributeNames=['All']:", sysattrs(fu, MessageSystemAttributeNames=["All"]))
print("FIFO [MessageGroupId, SequenceNumber]:", sysattrs(fu, MessageSystemAttributeNames=["MessageGroupId", "SequenceNumber"]))
print("FIFO AttributeNames=[MessageDeduplicationId]:", sysattrs(fu, AttributeNames=["MessageDeduplicationId"]))
