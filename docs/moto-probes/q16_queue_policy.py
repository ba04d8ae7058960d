from common import *
topic = sns.create_topic(Name=uniq("t16"))["TopicArn"]
q = sqs.create_queue(QueueName=uniq("q16"))["QueueUrl"]
arn = qarn(q)
policy = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "AllowSNS",
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
    }],
}
print("GetQueueAttributes(Policy) before set:", sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["Policy"]).get("Attributes"))
pol_str = json.dumps(policy)
call("SetQueueAttributes Policy", sqs.set_queue_attributes, QueueUrl=q, Attributes={"Policy": pol_str})
got = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["Policy"])["Attributes"]["Policy"]
print("returned Policy string:", got)
print("byte-identical to what was sent:", got == pol_str, "| semantically equal:", json.loads(got) == policy)
compact = json.dumps(policy, separators=(",", ":"))
sqs.set_queue_attributes(QueueUrl=q, Attributes={"Policy": compact})
got2 = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["Policy"])["Attributes"]["Policy"]
print("compact input returned byte-identical?:", got2 == compact, "->", got2[:80], "...")
print("Policy present in All:", "Policy" in sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"])
call("CreateQueue with Policy attribute", sqs.create_queue, QueueName=uniq("q16c"), Attributes={"Policy": pol_str})
call("SetQueueAttributes Policy invalid JSON", sqs.set_queue_attributes, QueueUrl=q, Attributes={"Policy": "{not json"})
call("SetQueueAttributes Policy ''(clear)", sqs.set_queue_attributes, QueueUrl=q, Attributes={"Policy": ""})
print("after clear:", sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["Policy"]).get("Attributes"))
# Deny policy: does moto enforce it for SNS delivery?
deny = {"Version": "2012-10-17", "Statement": [{"Sid": "Deny", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": arn}]}
sqs.set_queue_attributes(QueueUrl=q, Attributes={"Policy": json.dumps(deny)})
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
sns.publish(TopicArn=topic, Message="through deny policy")
print("SNS delivery despite explicit Deny policy:", counts(q)["ApproximateNumberOfMessages"])
call("SendMessage directly despite Deny policy", sqs.send_message, QueueUrl=q, MessageBody="x")
call("AddPermission", sqs.add_permission, QueueUrl=q, Label="lbl", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
print("Policy after AddPermission:", sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["Policy"])["Attributes"]["Policy"])

print("\n--- does SetQueueAttributes without Policy wipe an existing Policy?")
q2 = sqs.create_queue(QueueName=uniq("q16w"))["QueueUrl"]
sqs.set_queue_attributes(QueueUrl=q2, Attributes={"Policy": pol_str})
print("Policy set:", "Policy" in sqs.get_queue_attributes(QueueUrl=q2, AttributeNames=["All"])["Attributes"])
sqs.set_queue_attributes(QueueUrl=q2, Attributes={"VisibilityTimeout": "45"})
print("after SetQueueAttributes(VisibilityTimeout=45) Policy still present:", "Policy" in sqs.get_queue_attributes(QueueUrl=q2, AttributeNames=["All"])["Attributes"])
dlq = sqs.create_queue(QueueName=uniq("q16dlq"))["QueueUrl"]
sqs.set_queue_attributes(QueueUrl=q2, Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": qarn(dlq), "maxReceiveCount": 2})})
sqs.set_queue_attributes(QueueUrl=q2, Attributes={"VisibilityTimeout": "46"})
print("after SetQueueAttributes(VisibilityTimeout=46) RedrivePolicy still present:", "RedrivePolicy" in sqs.get_queue_attributes(QueueUrl=q2, AttributeNames=["All"])["Attributes"])
q3 = sqs.create_queue(QueueName=uniq("q16x"), Attributes={"Policy": pol_str})["QueueUrl"]
call("CreateQueue again same name, no attributes (policy kept?)", sqs.create_queue, QueueName=q3.split("/")[-1])
print("  Policy present:", "Policy" in sqs.get_queue_attributes(QueueUrl=q3, AttributeNames=["All"])["Attributes"])
