from common import *
url = sqs.create_queue(QueueName=uniq("q10"))["QueueUrl"]
for i in range(5): sqs.send_message(QueueUrl=url, MessageBody=f"p{i}")
sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=30)
inflight = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"][0]
print("before purge:", counts(url))
call("PurgeQueue", sqs.purge_queue, QueueUrl=url)
print("after purge:", counts(url))
call("DeleteMessage with receipt of purged in-flight msg", sqs.delete_message, QueueUrl=url, ReceiptHandle=inflight["ReceiptHandle"])
call("PurgeQueue again immediately", sqs.purge_queue, QueueUrl=url)
sqs.send_message(QueueUrl=url, MessageBody="after")
print("send right after purge is kept:", counts(url))
call("PurgeQueue nonexistent", sqs.purge_queue, QueueUrl=url + "-nope")
fu = sqs.create_queue(QueueName=uniq("q10")+".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
sqs.send_message(QueueUrl=fu, MessageBody="f", MessageGroupId="g", MessageDeduplicationId="d")
sqs.purge_queue(QueueUrl=fu)
sqs.send_message(QueueUrl=fu, MessageBody="f", MessageGroupId="g", MessageDeduplicationId="d")
print("FIFO: same dedup id accepted again right after purge:", counts(fu))
print("\n--- raw wire: Binary message attribute in ReceiveMessage JSON")
url = sqs.create_queue(QueueName=uniq("q10raw"))["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="bin", MessageAttributes={"b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"}})
import urllib.request
req = urllib.request.Request(EP + "/", data=json.dumps({"QueueUrl": url, "MessageAttributeNames": ["All"]}).encode(), headers={
    "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ReceiveMessage",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=abc"})
print(urllib.request.urlopen(req).read().decode())
