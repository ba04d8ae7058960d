from common import *
topic = sns.create_topic(Name=uniq("t11"))["TopicArn"]
qraw = sqs.create_queue(QueueName=uniq("q11raw"))["QueueUrl"]
qenv = sqs.create_queue(QueueName=uniq("q11env"))["QueueUrl"]
# NOTE: no queue policy set on either queue
sraw = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(qraw), Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)["SubscriptionArn"]
senv = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(qenv), Attributes={"RawMessageDelivery": "false"}, ReturnSubscriptionArn=True)["SubscriptionArn"]
print("subscription arns:", sraw, senv)
attrs = {
    "s": {"DataType": "String", "StringValue": "hello"},
    "n": {"DataType": "Number", "StringValue": "42.5"},
    "arr": {"DataType": "String.Array", "StringValue": '["a", "b", 3]'},
    "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
}
p = sns.publish(TopicArn=topic, Message='{"hello": "world"}', Subject="subj", MessageAttributes=attrs)
print("publish response:", {k: v for k, v in p.items() if k != "ResponseMetadata"})
# Receiving the raw message with MessageAttributeNames=All triggers a moto 500 because of the Binary attribute
# (see q11b_raw_binary.py). Request only the non-binary attributes here.
r = sqs.receive_message(QueueUrl=qraw, MessageAttributeNames=["s", "n", "arr"], MessageSystemAttributeNames=["All"])
m = r["Messages"][0]
print("\nRAW queue message (MessageAttributeNames=[s,n,arr]):")
print("  Body:", repr(m["Body"]))
print("  MessageAttributes:", m.get("MessageAttributes"))
print("  MD5OfMessageAttributes:", m.get("MD5OfMessageAttributes"))
print("  Attributes:", m.get("Attributes"))
r = sqs.receive_message(QueueUrl=qenv, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
m = r["Messages"][0]
print("\nENVELOPE queue message:")
print("  SQS MessageAttributes:", m.get("MessageAttributes"))
print("  Body (verbatim):")
print(m["Body"])
env = json.loads(m["Body"])
print("  envelope keys:", sorted(env.keys()))
print("  MessageId equals publish MessageId:", env["MessageId"] == p["MessageId"])
import base64
print("  Binary decoded:", base64.b64decode(env["MessageAttributes"]["bin"]["Value"]))

print("\n--- publish without subject / attributes (envelope)")
sns.publish(TopicArn=topic, Message="plain")
m = sqs.receive_message(QueueUrl=qenv)["Messages"][0]
print("  envelope keys:", sorted(json.loads(m["Body"]).keys()))
m = sqs.receive_message(QueueUrl=qraw, MessageAttributeNames=["All"])["Messages"][0]
print("  raw body:", repr(m["Body"]), "attrs:", m.get("MessageAttributes"))

print("\n--- MessageStructure=json")
sns.publish(TopicArn=topic, Message=json.dumps({"default": "dflt", "sqs": "for-sqs"}), MessageStructure="json")
print("  raw:", repr(sqs.receive_message(QueueUrl=qraw)["Messages"][0]["Body"]))
print("  env Message:", repr(json.loads(sqs.receive_message(QueueUrl=qenv)["Messages"][0]["Body"])["Message"]))

print("\n--- attribute validation at publish")
call("Number attr non-numeric", sns.publish, TopicArn=topic, Message="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}})
call("String attr empty", sns.publish, TopicArn=topic, Message="x", MessageAttributes={"s": {"DataType": "String", "StringValue": ""}})
call("bad DataType", sns.publish, TopicArn=topic, Message="x", MessageAttributes={"s": {"DataType": "Foo", "StringValue": "x"}})
call("String.Array not JSON", sns.publish, TopicArn=topic, Message="x", MessageAttributes={"s": {"DataType": "String.Array", "StringValue": "notjson"}})
call("custom type Number.int", sns.publish, TopicArn=topic, Message="x", MessageAttributes={"s": {"DataType": "Number.int", "StringValue": "5"}})
m = sqs.receive_message(QueueUrl=qraw, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
print("  raw attrs delivered:", [mm.get("MessageAttributes") for mm in m.get("Messages", [])])
sqs.purge_queue(QueueUrl=qenv)
call("Publish to nonexistent topic", sns.publish, TopicArn=topic + "nope", Message="x")
call("Publish message 262144", sns.publish, TopicArn=topic, Message="a" * 262144)
call("Publish message 262145", sns.publish, TopicArn=topic, Message="a" * 262145)
call("Publish empty message", sns.publish, TopicArn=topic, Message="")
call("Publish subject > 100", sns.publish, TopicArn=topic, Message="x", Subject="s" * 101)

print("\n--- subscribing a non-existent queue ARN, then publishing")
t2 = sns.create_topic(Name=uniq("t11b"))["TopicArn"]
call("subscribe nonexistent queue", sns.subscribe, TopicArn=t2, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:does-not-exist")
call("publish to topic with dangling subscription", sns.publish, TopicArn=t2, Message="x")
call("subscribe with queue URL instead of ARN", sns.subscribe, TopicArn=t2, Protocol="sqs", Endpoint=qraw)
call("publish again", sns.publish, TopicArn=t2, Message="x")
