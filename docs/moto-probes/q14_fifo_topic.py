from common import *
call("CreateTopic FifoTopic=true without .fifo suffix", sns.create_topic, Name=uniq("t14x"), Attributes={"FifoTopic": "true"})
call("CreateTopic name .fifo without FifoTopic attr", sns.create_topic, Name=uniq("t14y") + ".fifo")
topic = sns.create_topic(Name=uniq("t14") + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
print("GetTopicAttributes:", {k: v for k, v in sns.get_topic_attributes(TopicArn=topic)["Attributes"].items() if k not in ("Policy", "EffectiveDeliveryPolicy")})
qf = sqs.create_queue(QueueName=uniq("q14") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
qf_env = sqs.create_queue(QueueName=uniq("q14e") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
qstd = sqs.create_queue(QueueName=uniq("q14s"))["QueueUrl"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(qf), Attributes={"RawMessageDelivery": "true"})
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(qf_env))
r = call("subscribe standard queue to FIFO topic", sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=qarn(qstd))
std_topic = sns.create_topic(Name=uniq("t14std"))["TopicArn"]
call("subscribe FIFO queue to standard topic", sns.subscribe, TopicArn=std_topic, Protocol="sqs", Endpoint=qarn(qf))
if isinstance(r, dict):
    sns.unsubscribe(SubscriptionArn=r["SubscriptionArn"])
for i in range(5):
    g = "A" if i % 2 == 0 else "B"
    sns.publish(TopicArn=topic, Message=f"msg{i}-{g}", MessageGroupId=g, MessageDeduplicationId=f"d{i}")
ms = []
while True:
    r = sqs.receive_message(QueueUrl=qf, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
    if not r.get("Messages"): break
    for m in r["Messages"]:
        ms.append(m); sqs.delete_message(QueueUrl=qf, ReceiptHandle=m["ReceiptHandle"])
print("raw FIFO queue order + attrs:")
for m in ms: print("  ", m["Body"], {k: m["Attributes"].get(k) for k in ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")})
r = sqs.receive_message(QueueUrl=qf_env, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
m = r["Messages"][0]
print("enveloped FIFO: SQS attrs:", {k: m["Attributes"].get(k) for k in ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")})
print("enveloped FIFO envelope keys:", sorted(json.loads(m["Body"]).keys()))
sqs.purge_queue(QueueUrl=qf_env)

print("\n--- dedup through topic")
sns.publish(TopicArn=topic, Message="dup", MessageGroupId="A", MessageDeduplicationId="same")
p2 = sns.publish(TopicArn=topic, Message="dup2", MessageGroupId="A", MessageDeduplicationId="same")
print("publish response for duplicate:", {k: v for k, v in p2.items() if k != "ResponseMetadata"})
print("queue count after 2 publishes with same dedup id:", counts(qf)["ApproximateNumberOfMessages"])
print("\n--- errors")
call("publish FIFO topic without MessageGroupId", sns.publish, TopicArn=topic, Message="x", MessageDeduplicationId="z")
call("publish FIFO topic without MessageDeduplicationId (CBD off)", sns.publish, TopicArn=topic, Message="x", MessageGroupId="A")
call("publish_batch FIFO without MessageGroupId", sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=[{"Id": "1", "Message": "x"}])
call("publish_batch FIFO with group+dedup", sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=[{"Id": "1", "Message": "b1", "MessageGroupId": "A", "MessageDeduplicationId": "bb1"}, {"Id": "2", "Message": "b2", "MessageGroupId": "A", "MessageDeduplicationId": "bb2"}])
print("publish response has SequenceNumber?:", "SequenceNumber" in sns.publish(TopicArn=topic, Message="seq", MessageGroupId="A", MessageDeduplicationId="seq1"))

print("\n--- ContentBasedDeduplication on topic")
t2 = sns.create_topic(Name=uniq("t14c") + ".fifo", Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
print("topic attrs:", {k: v for k, v in sns.get_topic_attributes(TopicArn=t2)["Attributes"].items() if k in ("FifoTopic", "ContentBasedDeduplication")})
q_nocbd = sqs.create_queue(QueueName=uniq("q14n") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
q_cbd = sqs.create_queue(QueueName=uniq("q14c") + ".fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
s_cbd = sns.subscribe(TopicArn=t2, Protocol="sqs", Endpoint=qarn(q_cbd), Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
call("publish (CBD topic, no dedup id) -> only CBD queue subscribed", sns.publish, TopicArn=t2, Message="same", MessageGroupId="A")
call("publish same body again", sns.publish, TopicArn=t2, Message="same", MessageGroupId="A")
print("CBD queue count:", counts(q_cbd)["ApproximateNumberOfMessages"])
r = sqs.receive_message(QueueUrl=q_cbd, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
print("  attrs:", r["Messages"][0]["Attributes"])
s_no = sns.subscribe(TopicArn=t2, Protocol="sqs", Endpoint=qarn(q_nocbd), Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
call("publish (CBD topic, no dedup id) with a non-CBD FIFO queue subscribed", sns.publish, TopicArn=t2, Message="other", MessageGroupId="A")
print("non-CBD queue count:", counts(q_nocbd)["ApproximateNumberOfMessages"])
call("SetTopicAttributes ContentBasedDeduplication=false", sns.set_topic_attributes, TopicArn=t2, AttributeName="ContentBasedDeduplication", AttributeValue="false")
print("topic attrs:", {k: v for k, v in sns.get_topic_attributes(TopicArn=t2)["Attributes"].items() if k in ("FifoTopic", "ContentBasedDeduplication")})
