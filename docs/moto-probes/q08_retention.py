from common import *
call("CreateQueue MessageRetentionPeriod=59 (below AWS min 60)", sqs.create_queue, QueueName=uniq("q8lo"), Attributes={"MessageRetentionPeriod": "59"})
call("CreateQueue MessageRetentionPeriod=1209601 (above AWS max)", sqs.create_queue, QueueName=uniq("q8hi"), Attributes={"MessageRetentionPeriod": "1209601"})
url = sqs.create_queue(QueueName=uniq("q8"), Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="old")
t0 = time.time()
print("sent 'old'; waiting 62 s")
time.sleep(62)
sqs.send_message(QueueUrl=url, MessageBody="new")
print("counts before receive:", counts(url))
for i in range(3):
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"])
    print(f"receive #{i+1} max10:", [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in r.get("Messages", [])], counts(url))
print("--- now with VisibilityTimeout=30 (expired msg gets marked in-flight, loop breaks)")
for i in range(3):
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"])
    print(f"receive VT=30 #{i+1} max10:", [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in r.get("Messages", [])], counts(url))
