from common import *
url = sqs.create_queue(QueueName=uniq("q1"))["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="hello")
m1 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, AttributeNames=["All"])["Messages"][0]
print("first receipt:", m1["ReceiptHandle"][:60], "... len", len(m1["ReceiptHandle"]), "ARC", m1["Attributes"]["ApproximateReceiveCount"])
time.sleep(1.5)
m2 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, AttributeNames=["All"])["Messages"][0]
print("second receipt differs:", m1["ReceiptHandle"] != m2["ReceiptHandle"], "ARC", m2["Attributes"]["ApproximateReceiveCount"])
call("DeleteMessage stale", sqs.delete_message, QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"])
print("counts after stale delete:", counts(url))
# is it still receivable after visibility expires? (we set visibility 30; change to 0 with new receipt)
call("CMV(0) with new receipt after stale delete", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"], VisibilityTimeout=0)
r = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)
print("receivable after stale delete:", len(r.get("Messages", [])))

print("\n--- batch")
url = sqs.create_queue(QueueName=uniq("q1b"))["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="hello")
m1 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"][0]
time.sleep(1.5)
m2 = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]
call("DeleteMessageBatch stale+garbage", sqs.delete_message_batch, QueueUrl=url, Entries=[
    {"Id": "stale", "ReceiptHandle": m1["ReceiptHandle"]},
    {"Id": "garbage", "ReceiptHandle": "not-a-real-receipt"}])
print("counts after batch:", counts(url))
call("DeleteMessage garbage", sqs.delete_message, QueueUrl=url, ReceiptHandle="not-a-real-receipt")
call("DeleteMessage current", sqs.delete_message, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
print("counts after current delete:", counts(url))
call("DeleteMessage current again (already deleted)", sqs.delete_message, QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
call("DeleteMessageBatch already-deleted", sqs.delete_message_batch, QueueUrl=url, Entries=[{"Id":"x","ReceiptHandle":m2["ReceiptHandle"]}])
call("DeleteMessage empty receipt", sqs.delete_message, QueueUrl=url, ReceiptHandle="")
call("DeleteMessage nonexistent queue", sqs.delete_message, QueueUrl=url+"nope", ReceiptHandle=m2["ReceiptHandle"])
