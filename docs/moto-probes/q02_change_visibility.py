from common import *
url = sqs.create_queue(QueueName=uniq("q2"))["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="m")
m1 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
time.sleep(1.5)
print("counts (message visible again, not in flight):", counts(url))
call("CMV on visible (not in-flight) msg with its last receipt -> 10", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=10)
print("counts after:", counts(url))
r = sqs.receive_message(QueueUrl=url, VisibilityTimeout=5)
print("receive right after CMV(10) on visible msg got:", len(r.get("Messages", [])))
call("CMV back to 0", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=0)
m2 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]
call("CMV stale receipt (m1) while m2 in flight -> 0", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=0)
print("counts after stale CMV(0):", counts(url))
call("CMV garbage receipt", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle="garbage", VisibilityTimeout=0)
call("CMV 43201", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=43201)
call("CMV 43200", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=43200)
call("CMV 43199", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=43199)
call("CMV -1", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=-1)
print("\n--- 12h cap: total since SEND (not first receive)")
# Setting 43000 twice: each time computed from now - sent_timestamp
call("CMV 43000 #1", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=43000)
time.sleep(1.1)
call("CMV 43000 #2 (1s later)", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=43000)
time.sleep(1.1)
call("CMV 43199 (2s+ after send)", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=43199)
print("\n--- receive with VisibilityTimeout 43201")
call("Receive VT=43201", sqs.receive_message, QueueUrl=url, VisibilityTimeout=43201)
call("CreateQueue VisibilityTimeout=43201", sqs.create_queue, QueueName=uniq("q2vt"), Attributes={"VisibilityTimeout": "43201"})

print("\n--- deleted message")
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=0)
m3 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]
sqs.delete_message(QueueUrl=url, ReceiptHandle=m3["ReceiptHandle"])
call("CMV on deleted msg (its receipt)", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m3["ReceiptHandle"], VisibilityTimeout=0)

print("\n--- batch")
url = sqs.create_queue(QueueName=uniq("q2b"))["QueueUrl"]
for i in range(4): sqs.send_message(QueueUrl=url, MessageBody=f"b{i}")
first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, MaxNumberOfMessages=10)["Messages"]
print("received", len(first))
time.sleep(1.5)
second = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, MaxNumberOfMessages=10)["Messages"]
print("received again", len(second))
# delete second[3]
bymid = {m["MessageId"]: m for m in first}
sqs.delete_message(QueueUrl=url, ReceiptHandle=second[3]["ReceiptHandle"])
call("CMVBatch", sqs.change_message_visibility_batch, QueueUrl=url, Entries=[
    {"Id": "current", "ReceiptHandle": second[0]["ReceiptHandle"], "VisibilityTimeout": 60},
    {"Id": "stale", "ReceiptHandle": bymid[second[1]["MessageId"]]["ReceiptHandle"], "VisibilityTimeout": 0},
    {"Id": "garbage", "ReceiptHandle": "garbage", "VisibilityTimeout": 0},
    {"Id": "too_big", "ReceiptHandle": second[2]["ReceiptHandle"], "VisibilityTimeout": 43201},
    {"Id": "deleted", "ReceiptHandle": second[3]["ReceiptHandle"], "VisibilityTimeout": 0},
])
print("counts after batch:", counts(url))
call("CMVBatch 43199 (cap check path per entry)", sqs.change_message_visibility_batch, QueueUrl=url, Entries=[
    {"Id": "a", "ReceiptHandle": second[0]["ReceiptHandle"], "VisibilityTimeout": 43199}])
call("CMVBatch empty", sqs.change_message_visibility_batch, QueueUrl=url, Entries=[])
call("CMVBatch dup ids", sqs.change_message_visibility_batch, QueueUrl=url, Entries=[
    {"Id": "a", "ReceiptHandle": second[0]["ReceiptHandle"], "VisibilityTimeout": 1},
    {"Id": "a", "ReceiptHandle": second[1]["ReceiptHandle"], "VisibilityTimeout": 1}])
call("CMVBatch 11 entries", sqs.change_message_visibility_batch, QueueUrl=url, Entries=[
    {"Id": f"a{i}", "ReceiptHandle": second[0]["ReceiptHandle"], "VisibilityTimeout": 1} for i in range(11)])
call("DeleteBatch empty", sqs.delete_message_batch, QueueUrl=url, Entries=[])
call("DeleteBatch dup ids (different receipts)", sqs.delete_message_batch, QueueUrl=url, Entries=[
    {"Id": "a", "ReceiptHandle": "x1"}, {"Id": "a", "ReceiptHandle": "x2"}])
call("DeleteBatch dup receipts", sqs.delete_message_batch, QueueUrl=url, Entries=[
    {"Id": "a", "ReceiptHandle": "x1"}, {"Id": "b", "ReceiptHandle": "x1"}])
call("DeleteBatch 11 entries", sqs.delete_message_batch, QueueUrl=url, Entries=[
    {"Id": f"a{i}", "ReceiptHandle": f"x{i}"} for i in range(11)])
