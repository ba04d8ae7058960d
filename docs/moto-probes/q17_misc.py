from common import *
import threading
print("--- long poll picks up a message whose visibility timeout expires during the wait")
url = sqs.create_queue(QueueName=uniq("q17"))["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="x")
sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)
t0 = time.time()
r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, VisibilityTimeout=30)
print(f"  returned after {time.time()-t0:.3f}s with {len(r.get('Messages', []))} msgs")

print("--- two concurrent long polls, one message sent")
url = sqs.create_queue(QueueName=uniq("q17c"))["QueueUrl"]
res = {}
def poll(name):
    t = time.time(); r = client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=4, VisibilityTimeout=30)
    res[name] = (round(time.time() - t, 2), len(r.get("Messages", [])))
ths = [threading.Thread(target=poll, args=(n,)) for n in ("p1", "p2")]
for t in ths: t.start()
time.sleep(1); sqs.send_message(QueueUrl=url, MessageBody="one")
for t in ths: t.join()
print("  results (elapsed s, msgs):", res)

print("--- delete queue, recreate immediately")
name = uniq("q17d")
u = sqs.create_queue(QueueName=name)["QueueUrl"]
sqs.send_message(QueueUrl=u, MessageBody="x")
call("DeleteQueue", sqs.delete_queue, QueueUrl=u)
call("DeleteQueue again", sqs.delete_queue, QueueUrl=u)
call("SendMessage to deleted queue", sqs.send_message, QueueUrl=u, MessageBody="x")
call("CreateQueue same name immediately", sqs.create_queue, QueueName=name)
print("  recreated queue is empty:", counts(u))

print("--- queue URL host handling")
u = sqs.create_queue(QueueName=uniq("q17u"))["QueueUrl"]
other = "http://some-other-host:1234/123456789012/" + u.split("/")[-1]
call("SendMessage using a URL with a different host (only last path segment matters)", sqs.send_message, QueueUrl=other, MessageBody="x")
call("SendMessage using bare queue name as QueueUrl", sqs.send_message, QueueUrl=u.split("/")[-1], MessageBody="x")
lc = boto3.client("sqs", region_name="us-east-1", endpoint_url=EP.replace("127.0.0.1", "localhost"), aws_access_key_id="t", aws_secret_access_key="t")
print("  GetQueueUrl via localhost endpoint:", lc.get_queue_url(QueueName=u.split("/")[-1])["QueueUrl"])
print("--- different region / account")
w = boto3.client("sqs", region_name="eu-west-1", endpoint_url=EP, aws_access_key_id="t", aws_secret_access_key="t")
call("GetQueueUrl of us-east-1 queue from eu-west-1 client", w.get_queue_url, QueueName=u.split("/")[-1])
print("--- ListQueues")
r = sqs.list_queues(QueueNamePrefix="q17u")
print("  ", r.get("QueueUrls"))
print("--- ReceiveRequestAttemptId on FIFO (ignored?)")
fu = sqs.create_queue(QueueName=uniq("q17f")+".fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
sqs.send_message(QueueUrl=fu, MessageBody="a", MessageGroupId="g")
r1 = sqs.receive_message(QueueUrl=fu, ReceiveRequestAttemptId="att1", VisibilityTimeout=30)
r2 = sqs.receive_message(QueueUrl=fu, ReceiveRequestAttemptId="att1", VisibilityTimeout=30)
print("  same attempt id twice: first", len(r1.get("Messages", [])), "second", len(r2.get("Messages", [])))
