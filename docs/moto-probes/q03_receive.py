from common import *
import threading
url = sqs.create_queue(QueueName=uniq("q3"), Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="vt")
m = sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)["Messages"][0]
for t in (1.0, 2.3):
    time.sleep(t - (0 if t == 1.0 else 1.0))
    r = sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)
    print(f"after ~{t}s receive (per-call VT=2, queue VT=30): got {len(r.get('Messages', []))}")
# VT=0 per call
sqs.purge_queue(QueueUrl=url)
sqs.send_message(QueueUrl=url, MessageBody="vt0")
a = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
b = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
print("per-call VT=0: immediately re-receivable:", len(b.get("Messages", [])) == 1)

print("\n--- long poll")
url2 = sqs.create_queue(QueueName=uniq("q3lp"))["QueueUrl"]
t0 = time.time()
r = sqs.receive_message(QueueUrl=url2, WaitTimeSeconds=2)
print(f"empty queue WaitTimeSeconds=2: returned after {time.time()-t0:.3f}s, messages={len(r.get('Messages', []))}")
def sender():
    time.sleep(1.0)
    client("sqs").send_message(QueueUrl=url2, MessageBody="late")
    print(f"  sent at {time.time()-t0:.3f}s")
t0 = time.time()
threading.Thread(target=sender).start()
r = sqs.receive_message(QueueUrl=url2, WaitTimeSeconds=5)
print(f"WaitTimeSeconds=5 with send after 1s: returned after {time.time()-t0:.3f}s, messages={len(r.get('Messages', []))}")

# Long poll with MaxNumberOfMessages=10, send 3 separately at 1s intervals -> returns on first?
def sender3():
    c = client("sqs")
    for i in range(3):
        time.sleep(0.5)
        c.send_message(QueueUrl=url2, MessageBody=f"s{i}")
t0 = time.time()
threading.Thread(target=sender3).start()
r = sqs.receive_message(QueueUrl=url2, WaitTimeSeconds=5, MaxNumberOfMessages=10)
print(f"long poll max10, 3 sends 0.5s apart: returned after {time.time()-t0:.3f}s with {len(r.get('Messages', []))} msgs")
time.sleep(1.5)
sqs.purge_queue(QueueUrl=url2)

# Queue-level ReceiveMessageWaitTimeSeconds
url3 = sqs.create_queue(QueueName=uniq("q3qw"), Attributes={"ReceiveMessageWaitTimeSeconds": "2"})["QueueUrl"]
t0 = time.time(); sqs.receive_message(QueueUrl=url3)
print(f"queue attr ReceiveMessageWaitTimeSeconds=2, no WaitTimeSeconds param: {time.time()-t0:.3f}s")
t0 = time.time(); sqs.receive_message(QueueUrl=url3, WaitTimeSeconds=0)
print(f"  ... explicit WaitTimeSeconds=0: {time.time()-t0:.3f}s")
call("WaitTimeSeconds=21", sqs.receive_message, QueueUrl=url3, WaitTimeSeconds=21)
call("MaxNumberOfMessages=11", sqs.receive_message, QueueUrl=url3, MaxNumberOfMessages=11)
call("MaxNumberOfMessages=0", sqs.receive_message, QueueUrl=url3, MaxNumberOfMessages=0)

print("\n--- batch size")
url4 = sqs.create_queue(QueueName=uniq("q3n"))["QueueUrl"]
for i in range(3): sqs.send_message(QueueUrl=url4, MessageBody=f"n{i}")
r = sqs.receive_message(QueueUrl=url4, MaxNumberOfMessages=10)
print("3 present, Max=10, no wait -> got", [m["Body"] for m in r.get("Messages", [])])
for i in range(15): sqs.send_message(QueueUrl=url4, MessageBody=f"k{i}")
r = sqs.receive_message(QueueUrl=url4, MaxNumberOfMessages=10)
print("15 present, Max=10 -> got", len(r["Messages"]), "order:", [m["Body"] for m in r["Messages"]])
r = sqs.receive_message(QueueUrl=url4)
print("default MaxNumberOfMessages -> got", len(r["Messages"]))
