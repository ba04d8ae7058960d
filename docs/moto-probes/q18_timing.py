from common import *
t0 = time.time(); sqs.list_queues(); print(f"first SQS request after startup: {time.time()-t0:.3f}s")
t0 = time.time(); sns.list_topics(); print(f"first SNS request after startup: {time.time()-t0:.3f}s")
topic = sns.create_topic(Name=uniq("t18"))["TopicArn"]
qe = sqs.create_queue(QueueName=uniq("q18e"))["QueueUrl"]; qr = sqs.create_queue(QueueName=uniq("q18r"))["QueueUrl"]
se = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(qe))["SubscriptionArn"]
N = 20
ts = []
for i in range(N):
    t0 = time.time(); sns.publish(TopicArn=topic, Message="x"); ts.append(time.time() - t0)
print(f"publish to 1 enveloped subscriber: first {ts[0]*1000:.1f} ms, mean of rest {sum(ts[1:])/(N-1)*1000:.1f} ms")
sns.unsubscribe(SubscriptionArn=se)
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(qr), Attributes={"RawMessageDelivery": "true"})
ts = []
for i in range(N):
    t0 = time.time(); sns.publish(TopicArn=topic, Message="x"); ts.append(time.time() - t0)
print(f"publish to 1 raw subscriber: mean {sum(ts)/N*1000:.1f} ms")
ts = []
for i in range(N):
    t0 = time.time(); sqs.send_message(QueueUrl=qr, MessageBody="x"); ts.append(time.time() - t0)
print(f"SQS SendMessage: mean {sum(ts)/N*1000:.1f} ms")
