from common import *
url = sqs.create_queue(QueueName=uniq("q7"))["QueueUrl"]
a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
print("standard All:", json.dumps(a, indent=1))
fu = sqs.create_queue(QueueName=uniq("q7")+".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
print("fifo All extra keys:", {k: v for k, v in sqs.get_queue_attributes(QueueUrl=fu, AttributeNames=["All"])["Attributes"].items() if k not in a})
for i in range(3): sqs.send_message(QueueUrl=url, MessageBody=f"n{i}")
sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
print("after 3 normal + 1 delayed:", counts(url))
sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)
print("after receiving 1:", counts(url))
# delay via queue attribute
u3 = sqs.create_queue(QueueName=uniq("q7d"), Attributes={"DelaySeconds": "60"})["QueueUrl"]
sqs.send_message(QueueUrl=u3, MessageBody="d")
print("queue DelaySeconds=60, 1 sent:", counts(u3))
# delayed message becomes visible after delay?
u4 = sqs.create_queue(QueueName=uniq("q7d2"))["QueueUrl"]
sqs.send_message(QueueUrl=u4, MessageBody="d", DelaySeconds=1)
print("DelaySeconds=1 immediate receive:", len(sqs.receive_message(QueueUrl=u4).get("Messages", [])), counts(u4))
time.sleep(1.2)
print("after 1.2s:", len(sqs.receive_message(QueueUrl=u4).get("Messages", [])))

print("\n--- specific attribute names")
call("GetQueueAttributes([ApproximateNumberOfMessages, QueueArn])", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "QueueArn"])
call("GetQueueAttributes no names", sqs.get_queue_attributes, QueueUrl=url)
call("GetQueueAttributes([Policy]) when none set", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["Policy"])
call("GetQueueAttributes([FifoQueue]) on standard", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["FifoQueue"])

print("\n--- SSE")
r = call("CreateQueue SqsManagedSseEnabled=true", sqs.create_queue, QueueName=uniq("q7s"), Attributes={"SqsManagedSseEnabled": "true"})
call("CreateQueue SqsManagedSseEnabled=false", sqs.create_queue, QueueName=uniq("q7s"), Attributes={"SqsManagedSseEnabled": "false"})
print("  attrs:", sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName=uniq("q7s"), Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"], AttributeNames=["SqsManagedSseEnabled"])["Attributes"])
r = call("CreateQueue KmsMasterKeyId=alias/aws/sqs", sqs.create_queue, QueueName=uniq("q7k"), Attributes={"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "600"})
print("  attrs:", {k: v for k, v in sqs.get_queue_attributes(QueueUrl=r["QueueUrl"], AttributeNames=["All"])["Attributes"].items() if k.startswith(("Kms", "Sqs"))})
call("SetQueueAttributes KmsMasterKeyId", sqs.set_queue_attributes, QueueUrl=url, Attributes={"KmsMasterKeyId": "arn:aws:kms:us-east-1:123456789012:key/abc"})
call("SetQueueAttributes SqsManagedSseEnabled=false", sqs.set_queue_attributes, QueueUrl=url, Attributes={"SqsManagedSseEnabled": "false"})
print("  attrs:", {k: v for k, v in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"].items() if k.startswith(("Kms", "Sqs"))})
call("SetQueueAttributes bogus attribute name", sqs.set_queue_attributes, QueueUrl=url, Attributes={"Bogus": "1"})
print("  ... bogus visible in All?", "Bogus" in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])
call("CreateQueue bogus attribute name", sqs.create_queue, QueueName=uniq("q7b"), Attributes={"Bogus": "1"})
call("CreateQueue VisibilityTimeout=abc", sqs.create_queue, QueueName=uniq("q7b"), Attributes={"VisibilityTimeout": "abc"})

print("\n--- CreateQueue idempotency")
name = uniq("q7i")
call("create #1 VT=30", sqs.create_queue, QueueName=name, Attributes={"VisibilityTimeout": "30"})
call("create #2 same attrs", sqs.create_queue, QueueName=name, Attributes={"VisibilityTimeout": "30"})
call("create #3 no attrs", sqs.create_queue, QueueName=name)
call("create #4 VT=60 (different)", sqs.create_queue, QueueName=name, Attributes={"VisibilityTimeout": "60"})
call("create #5 different extra attr DelaySeconds=5", sqs.create_queue, QueueName=name, Attributes={"VisibilityTimeout": "30", "DelaySeconds": "5"})
call("create #6 default value explicitly DelaySeconds=0", sqs.create_queue, QueueName=name, Attributes={"DelaySeconds": "0"})
name = uniq("q7t")
call("create with tags", sqs.create_queue, QueueName=name, tags={"a": "1"})
call("create again different tags", sqs.create_queue, QueueName=name, tags={"a": "2"})
print("  tags now:", sqs.list_queue_tags(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"]).get("Tags"))
print("\n--- Query protocol wire for QueueAlreadyExists")
