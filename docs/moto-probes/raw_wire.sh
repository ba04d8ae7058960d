#!/bin/bash
# Raw JSON-protocol (awsJson1_0) and Query-protocol requests against moto_server, showing headers/body
P=${MOTO_PORT:-57689}
EP=http://127.0.0.1:$P/
AUTH='AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=abc'
j() { echo "### JSON $1 $2"; curl -s -i -X POST $EP -H "Content-Type: application/x-amz-json-1.0" -H "X-Amz-Target: AmazonSQS.$1" -H "Authorization: $AUTH" -d "$2" | grep -iv "^date\|^server\|^connection\|^access-control"; echo; echo; }
j CreateQueue '{"QueueName":"rawq"}'
j GetQueueUrl '{"QueueName":"does-not-exist"}'
j DeleteMessage '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq","ReceiptHandle":"garbage"}'
j DeleteMessageBatch '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq","Entries":[{"Id":"a","ReceiptHandle":"x"},{"Id":"b","ReceiptHandle":"x"}]}'
j SendMessageBatch '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq","Entries":[]}'
j SendMessage '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq","MessageBody":"hi","MessageAttributes":{"n":{"DataType":"Number","StringValue":"1"}}}'
j ReceiveMessage '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq","MessageSystemAttributeNames":["All"],"MessageAttributeNames":["All"]}'
j ReceiveMessage '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq"}'
j GetQueueAttributes '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq","AttributeNames":["Bogus"]}'
echo "### QUERY protocol GetQueueUrl nonexistent"
curl -s -i -X POST $EP -H "Content-Type: application/x-www-form-urlencoded" -H "Authorization: $AUTH" -d "Action=GetQueueUrl&QueueName=does-not-exist&Version=2012-11-05" | grep -iv "^date\|^server\|^connection\|^access-control"; echo
echo "### QUERY protocol DeleteMessage garbage"
curl -s -i -X POST $EP -H "Content-Type: application/x-www-form-urlencoded" -H "Authorization: $AUTH" -d "Action=DeleteMessage&QueueUrl=http://127.0.0.1:$P/123456789012/rawq&ReceiptHandle=garbage&Version=2012-11-05" | grep -iv "^date\|^server\|^connection\|^access-control"; echo
j DeleteQueue '{"QueueUrl":"http://127.0.0.1:'$P'/123456789012/rawq"}'
echo "### SNS (query/XML) Publish to nonexistent topic"
curl -s -i -X POST $EP -H "Content-Type: application/x-www-form-urlencoded" -H "Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=abc" -d "Action=Publish&TopicArn=arn:aws:sns:us-east-1:123456789012:nope&Message=x&Version=2010-03-31" | grep -iv "^date\|^server\|^connection\|^access-control"; echo
echo "### SNS PublishBatch 11 entries"
body="Action=PublishBatch&TopicArn=arn:aws:sns:us-east-1:123456789012:nope&Version=2010-03-31"
curl -s -X POST $EP -H "Content-Type: application/x-www-form-urlencoded" -H "Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=abc" -d "Action=CreateTopic&Name=rawt&Version=2010-03-31" >/dev/null
for i in $(seq 1 11); do body="$body&PublishBatchRequestEntries.member.$i.Id=i$i&PublishBatchRequestEntries.member.$i.Message=m"; done
body=${body/nope/rawt}
curl -s -i -X POST $EP -H "Content-Type: application/x-www-form-urlencoded" -H "Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=abc" -d "$body" | grep -iv "^date\|^server\|^connection\|^access-control"; echo
