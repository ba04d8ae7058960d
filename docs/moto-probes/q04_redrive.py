from common import *
dlq = sqs.create_queue(QueueName=uniq("q4dlq"))["QueueUrl"]
dlq_arn = qarn(dlq)
src = sqs.create_queue(QueueName=uniq("q4src"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
print("GetQueueAttributes(RedrivePolicy) raw string:", repr(sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]))
sqs.send_message(QueueUrl=src, MessageBody="poison", MessageAttributes={
    "s": {"DataType": "String", "StringValue": "v"}, "n": {"DataType": "Number", "StringValue": "42"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
for vt in (0,):
    for i in range(1, 7):
        r = sqs.receive_message(QueueUrl=src, VisibilityTimeout=0, AttributeNames=["All"], MessageAttributeNames=["All"])
        msgs = r.get("Messages", [])
        print(f"receive #{i} (VT=0): {[(m['Body'], m['Attributes']['ApproximateReceiveCount']) for m in msgs]}  src={counts(src)['ApproximateNumberOfMessages']} dlq={counts(dlq)['ApproximateNumberOfMessages']}")
r = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"], MessageAttributeNames=["All"])
m = r["Messages"][0]
print("DLQ message:", json.dumps({k: (v if k != "ReceiptHandle" else v[:10]+"...") for k, v in m.items()}, default=str))
print("\nlist_dead_letter_source_queues:", sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls"))

print("\n--- VT=1 variant with sleeps (maxReceiveCount 2)")
src2 = sqs.create_queue(QueueName=uniq("q4src2"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
sqs.send_message(QueueUrl=src2, MessageBody="p2")
for i in range(1, 5):
    r = sqs.receive_message(QueueUrl=src2, VisibilityTimeout=1, AttributeNames=["All"])
    msgs = r.get("Messages", [])
    print(f"receive #{i}: {[(m['Body'], m['Attributes']['ApproximateReceiveCount']) for m in msgs]}  dlq_visible={counts(dlq)['ApproximateNumberOfMessages']}")
    time.sleep(1.2)
print("numeric maxReceiveCount accepted; stored as:", repr(sqs.get_queue_attributes(QueueUrl=src2, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]))

print("\n--- does moving to DLQ need another receive? (check counts without receive)")
src3 = sqs.create_queue(QueueName=uniq("q4src3"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})})["QueueUrl"]
dlq3 = dlq
before = int(counts(dlq3)["ApproximateNumberOfMessages"])
sqs.send_message(QueueUrl=src3, MessageBody="p3")
sqs.receive_message(QueueUrl=src3, VisibilityTimeout=0)
time.sleep(0.2)
print("after 1 receive (maxRC=1): src", counts(src3), "dlq delta", int(counts(dlq3)["ApproximateNumberOfMessages"]) - before)
r = sqs.receive_message(QueueUrl=src3, VisibilityTimeout=0)
print("2nd receive returns:", len(r.get("Messages", [])), "dlq delta", int(counts(dlq3)["ApproximateNumberOfMessages"]) - before)

print("\n--- validation")
call("RedrivePolicy non-existent DLQ", sqs.create_queue, QueueName=uniq("q4bad"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:nope", "maxReceiveCount": 3})})
call("RedrivePolicy missing maxReceiveCount", sqs.create_queue, QueueName=uniq("q4bad"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
call("RedrivePolicy invalid json", sqs.create_queue, QueueName=uniq("q4bad"), Attributes={"RedrivePolicy": "{nope"})
call("RedrivePolicy maxReceiveCount 0", sqs.create_queue, QueueName=uniq("q4bad"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 0})})
call("RedrivePolicy maxReceiveCount 1001", sqs.create_queue, QueueName=uniq("q4bad"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1001})})
call("RedrivePolicy maxReceiveCount 'abc'", sqs.create_queue, QueueName=uniq("q4bad"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "abc"})})
q = call("RedriveAllowPolicy on CreateQueue", sqs.create_queue, QueueName=uniq("q4rap"), Attributes={
    "RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})})
if isinstance(q, dict):
    call("GetQueueAttributes(RedriveAllowPolicy)", sqs.get_queue_attributes, QueueUrl=q["QueueUrl"], AttributeNames=["RedriveAllowPolicy"])
    a = sqs.get_queue_attributes(QueueUrl=q["QueueUrl"], AttributeNames=["All"])["Attributes"]
    print("RedriveAllowPolicy in All?:", "RedriveAllowPolicy" in a)
    call("SetQueueAttributes RedriveAllowPolicy", sqs.set_queue_attributes, QueueUrl=q["QueueUrl"], Attributes={
        "RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [dlq_arn]})})
call("SetQueueAttributes RedrivePolicy", sqs.set_queue_attributes, QueueUrl=src, Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})})
print("after set:", sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"])
call("SetQueueAttributes RedrivePolicy='' (remove)", sqs.set_queue_attributes, QueueUrl=src, Attributes={"RedrivePolicy": ""})
print("after remove:", sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"]).get("Attributes"))
# FIFO source with standard DLQ
call("FIFO queue with standard DLQ", sqs.create_queue, QueueName=uniq("q4f")+".fifo", Attributes={"FifoQueue": "true",
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})})
