from common import *
import urllib.request
topic = sns.create_topic(Name=uniq("t11b"))["TopicArn"]
q = sqs.create_queue(QueueName=uniq("q11b"))["QueueUrl"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(q), Attributes={"RawMessageDelivery": "true"})
sns.publish(TopicArn=topic, Message="x", MessageAttributes={"b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}, "s": {"DataType": "String", "StringValue": "v"}})
call("receive MessageAttributeNames=All (raw delivery w/ Binary attr)", sqs.receive_message, QueueUrl=q, MessageAttributeNames=["All"], VisibilityTimeout=0)
print("counts after failed receive:", counts(q))
call("receive MessageAttributeNames=['s']", sqs.receive_message, QueueUrl=q, MessageAttributeNames=["s"], VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])
# raw wire without MD5 computation is impossible; show with only 'b' requested
call("receive MessageAttributeNames=['b']", sqs.receive_message, QueueUrl=q, MessageAttributeNames=["b"], VisibilityTimeout=0)
