import os, json, time, uuid, boto3
from botocore.exceptions import ClientError
from botocore.config import Config

PORT = int(os.environ.get("MOTO_PORT", "57689"))
EP = f"http://127.0.0.1:{PORT}"

def client(svc):
    return boto3.client(svc, region_name="us-east-1", endpoint_url=EP,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))

sqs = client("sqs")
sns = client("sns")

def uniq(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"

def err(e):
    r = e.response
    return {"Code": r["Error"].get("Code"), "Message": r["Error"].get("Message"),
            "Type": r["Error"].get("Type"), "HTTP": r["ResponseMetadata"]["HTTPStatusCode"],
            "QueryErrorCode": r["Error"].get("QueryErrorCode")}

def call(label, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
        r = {k: v for k, v in r.items() if k != "ResponseMetadata"}
        print(f"[{label}] OK: {json.dumps(r, default=str)[:1500]}")
        return r
    except ClientError as e:
        print(f"[{label}] ERROR: {json.dumps(err(e))}")
        return e
    except Exception as e:  # e.g. moto HTML 500 page on an XML (query protocol) service
        print(f"[{label}] EXCEPTION {type(e).__name__}: {str(e)[:200]}")
        return e

def qarn(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

def counts(url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages","ApproximateNumberOfMessagesNotVisible","ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return a
