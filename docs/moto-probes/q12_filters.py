from common import *
topic = sns.create_topic(Name=uniq("t12"))["TopicArn"]

def S(v): return {"DataType": "String", "StringValue": v}
def N(v): return {"DataType": "Number", "StringValue": str(v)}
def A(v): return {"DataType": "String.Array", "StringValue": json.dumps(v)}

def test(label, policy, cases, scope=None):
    q = sqs.create_queue(QueueName=uniq("q12"))["QueueUrl"]
    attrs = {"RawMessageDelivery": "true", "FilterPolicy": json.dumps(policy)}
    if scope: attrs["FilterPolicyScope"] = scope
    try:
        sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn(q), Attributes=attrs, ReturnSubscriptionArn=True)["SubscriptionArn"]
    except ClientError as e:
        print(f"## {label}: policy={json.dumps(policy)} scope={scope or 'MessageAttributes'} -> SUBSCRIBE REJECTED {err(e)['HTTP']} {err(e)['Code']}: {err(e)['Message']}")
        return
    except Exception as e:
        print(f"## {label}: policy={json.dumps(policy)} -> SUBSCRIBE HTTP 500 ({type(e).__name__})")
        return
    print(f"## {label}: policy={json.dumps(policy)} scope={scope or 'MessageAttributes'}" + ("" if cases else " -> subscribe ACCEPTED"))
    for case_label, kwargs in cases:
        marker = uniq("m")
        kw = dict(kwargs)
        if scope == "MessageBody":
            body = kw.pop("body")
        else:
            body = marker
        try:
            sns.publish(TopicArn=topic, Message=body if scope == "MessageBody" else marker, **kw)
        except ClientError as e:
            print(f"    {case_label:45s} PUBLISH ERROR {err(e)['HTTP']} {err(e)['Code']}")
            continue
        except Exception as e:  # moto returns an HTML 500 page, botocore cannot parse it
            print(f"    {case_label:45s} PUBLISH -> HTTP 500 (moto internal error: {type(e).__name__})")
            continue
        r = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10)
        got = len(r.get("Messages", []))
        for m in r.get("Messages", []): sqs.delete_message(QueueUrl=q, ReceiptHandle=m["ReceiptHandle"])
        print(f"    {case_label:45s} {'MATCH' if got else 'no match'}")
    sns.unsubscribe(SubscriptionArn=sub)

MA = lambda **a: {"MessageAttributes": a}
test("exact string", {"color": ["red", "blue"]}, [
    ("color=red", MA(color=S("red"))), ("color=green", MA(color=S("green"))), ("color missing", MA(other=S("red"))),
    ("color=RED", MA(color=S("RED"))), ("no attributes at all", {}),
    ("color as String.Array ['red','x']", MA(color=A(["red", "x"]))), ("color as Number 1", MA(color=N(1))),
])
test("exact number", {"price": [100]}, [
    ("price=100 (Number)", MA(price=N(100))), ("price=100.0", MA(price=N("100.0"))), ("price=1e2", MA(price=N("1e2"))),
    ("price=101", MA(price=N(101))), ("price='100' as String", MA(price=S("100"))),
])
test("prefix", {"color": [{"prefix": "re"}]}, [
    ("color=red", MA(color=S("red"))), ("color=bred", MA(color=S("bred"))), ("color=red as String.Array", MA(color=A(["red"]))),
])
test("suffix", {"color": [{"suffix": "ed"}]}, [
    ("color=red", MA(color=S("red"))), ("color=redx", MA(color=S("redx"))),
])
test("anything-but list", {"color": [{"anything-but": ["red", "blue"]}]}, [
    ("color=green", MA(color=S("green"))), ("color=red", MA(color=S("red"))), ("color missing", MA(other=S("x"))),
])
test("anything-but single string", {"color": [{"anything-but": "red"}]}, [
    ("color=green", MA(color=S("green"))), ("color=red", MA(color=S("red"))),
])
test("anything-but single number", {"n": [{"anything-but": 5}]}, [
    ("n=5", MA(n=N(5))), ("n=6", MA(n=N(6))),
])
test("anything-but prefix", {"color": [{"anything-but": {"prefix": "re"}}]}, [
    ("color=green", MA(color=S("green"))), ("color=red", MA(color=S("red"))), ("color missing", MA(other=S("x"))),
])
test("numeric range > 0 <= 5", {"n": [{"numeric": [">", 0, "<=", 5]}]}, [
    ("n=0", MA(n=N(0))), ("n=0.5", MA(n=N(0.5))), ("n=5", MA(n=N(5))), ("n=5.01", MA(n=N(5.01))), ("n='3' String", MA(n=S("3"))), ("n missing", {}),
])
test("numeric = ", {"n": [{"numeric": ["=", 3]}]}, [("n=3", MA(n=N(3))), ("n=4", MA(n=N(4)))])
test("exists true", {"k": [{"exists": True}]}, [("k present", MA(k=S("x"))), ("k absent", MA(other=S("x")))])
test("exists false", {"k": [{"exists": False}]}, [("k present", MA(k=S("x"))), ("k absent", MA(other=S("x"))), ("no attributes", {})])
test("String.Array attribute vs string list", {"tags": ["a", "z"]}, [
    ("tags=['a','b'] String.Array", MA(tags=A(["a", "b"]))), ("tags=['x','y']", MA(tags=A(["x", "y"]))), ("tags='a' String", MA(tags=S("a"))),
])
test("String.Array attribute vs number", {"nums": [3]}, [("nums=[1,3] String.Array", MA(nums=A([1, 3]))), ("nums=[1,2]", MA(nums=A([1, 2])))])
test("two keys (AND)", {"a": ["1"], "b": ["2"]}, [
    ("a=1,b=2", MA(a=S("1"), b=S("2"))), ("a=1 only", MA(a=S("1"))),
])
test("equals-ignore-case (uppercase rule)", {"color": [{"equals-ignore-case": "RED"}]}, [
    ("color=red", MA(color=S("red"))), ("color=RED", MA(color=S("RED"))), ("color=Red", MA(color=S("Red"))),
])
test("equals-ignore-case (lowercase rule)", {"color": [{"equals-ignore-case": "red"}]}, [
    ("color=red", MA(color=S("red"))), ("color=RED", MA(color=S("RED"))), ("color=Red", MA(color=S("Red"))),
])
test("$or attributes", {"$or": [{"a": ["1"]}, {"b": ["2"]}]}, [
    ("a=1", MA(a=S("1"))), ("b=2", MA(b=S("2"))), ("c=3", MA(c=S("3"))),
])
test("$or combined with other key", {"x": ["1"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}, [
    ("x=1,a=1", MA(x=S("1"), a=S("1"))), ("x=1,c=3", MA(x=S("1"), c=S("3"))),
])
test("boolean rule", {"flag": [True]}, [("flag='true' String", MA(flag=S("true")))])
test("null rule", {"k": [None]}, [("k absent", MA(other=S("x")))])
test("empty policy {}", {}, [("anything", MA(a=S("1")))])

print("\n==== MessageBody scope")
B = lambda d: {"body": json.dumps(d)}
test("body exact string", {"color": ["red"]}, [
    ("{'color':'red'}", B({"color": "red"})), ("{'color':'blue'}", B({"color": "blue"})), ("non-JSON body", {"body": "not json"}),
    ("{'color':['red','x']} (array)", B({"color": ["red", "x"]})),
], scope="MessageBody")
test("body nested", {"order": {"status": ["paid"], "total": [{"numeric": [">", 10]}]}}, [
    ("order.status=paid,total=20", B({"order": {"status": "paid", "total": 20}})),
    ("order.status=paid,total=5", B({"order": {"status": "paid", "total": 5}})),
    ("order missing", B({"status": "paid"})),
    ("order as list of objects (one matches)", B({"order": [{"status": "x", "total": 1}, {"status": "paid", "total": 50}]})),
], scope="MessageBody")
test("body 3-level nested prefix", {"a": {"b": {"c": [{"prefix": "x"}]}}}, [
    ("a.b.c=xyz", B({"a": {"b": {"c": "xyz"}}})), ("a.b.c=yz", B({"a": {"b": {"c": "yz"}}})),
], scope="MessageBody")
test("body exact number", {"n": [5]}, [("n=5", B({"n": 5})), ("n=5.0", B({"n": 5.0})), ("n='5' string", B({"n": "5"}))], scope="MessageBody")
test("body exists", {"k": [{"exists": True}]}, [("k present", B({"k": 1})), ("k absent", B({"z": 1})), ("k null", B({"k": None}))], scope="MessageBody")
test("body exists false", {"k": [{"exists": False}]}, [("k present", B({"k": 1})), ("k absent", B({"z": 1}))], scope="MessageBody")
test("body anything-but", {"k": [{"anything-but": ["a"]}]}, [("k=b", B({"k": "b"})), ("k=a", B({"k": "a"})), ("k absent", B({"z": 1}))], scope="MessageBody")
test("body boolean", {"flag": [True]}, [("flag=true", B({"flag": True})), ("flag=false", B({"flag": False}))], scope="MessageBody")
test("body $or", {"$or": [{"a": ["1"]}, {"b": ["2"]}]}, [("a=1", B({"a": "1"})), ("b=2", B({"b": "2"})), ("c=3", B({"c": "3"}))], scope="MessageBody")
test("body equals-ignore-case lowercase rule", {"c": [{"equals-ignore-case": "red"}]}, [("c=RED", B({"c": "RED"}))], scope="MessageBody")

print("\n==== validation at subscribe")
test("nested policy with MessageAttributes scope", {"a": {"b": ["1"]}}, [])
test("value not a list", {"a": "1"}, [])
test("unknown operator", {"a": [{"foo": 1}]}, [])
test("numeric bad operator", {"a": [{"numeric": ["!=", 1]}]}, [])
test("numeric bottom > top", {"a": [{"numeric": [">", 5, "<", 1]}]}, [])
test("numeric value non-numeric", {"a": [{"numeric": [">", "x"]}]}, [])
test("exists non-bool", {"a": [{"exists": "yes"}]}, [])
test("6 keys", {f"k{i}": ["x"] for i in range(6)}, [])
test("too complex (151 combos)", {"a": [str(i) for i in range(151)]}, [])
test("number out of range 1e9", {"a": [1000000000]}, [])
test("nested list in rule", {"a": [["x"]]}, [])
test("prefix with non-string", {"a": [{"prefix": 1}]}, [])
test("FilterPolicyScope=Bogus", {"a": ["1"]}, [], scope="Bogus")
q = sqs.create_queue(QueueName=uniq("q12x"))["QueueUrl"]
call("subscribe FilterPolicy invalid JSON", sns.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=qarn(q), Attributes={"FilterPolicy": "{nope"})

print("\n==== does a rejected Subscribe leave a subscription behind?")
t = sns.create_topic(Name=uniq("t12r"))["TopicArn"]
q = sqs.create_queue(QueueName=uniq("q12r"))["QueueUrl"]
call("subscribe with nested policy (MessageAttributes scope)", sns.subscribe, TopicArn=t, Protocol="sqs", Endpoint=qarn(q), Attributes={"FilterPolicy": json.dumps({"a": {"b": ["1"]}})})
subs = sns.list_subscriptions_by_topic(TopicArn=t)["Subscriptions"]
print("subscriptions on topic after rejected subscribe:", len(subs))
if subs:
    print("  attrs:", sns.get_subscription_attributes(SubscriptionArn=subs[0]["SubscriptionArn"])["Attributes"])
    sns.publish(TopicArn=t, Message="leak", MessageAttributes={"z": {"DataType": "String", "StringValue": "1"}})
    print("  message delivered through the 'rejected' subscription:", counts(q)["ApproximateNumberOfMessages"])
print("\n==== a broken subscription breaks Publish for the whole topic")
t = sns.create_topic(Name=uniq("t12b"))["TopicArn"]
qa = sqs.create_queue(QueueName=uniq("q12ok"))["QueueUrl"]
qb = sqs.create_queue(QueueName=uniq("q12bad"))["QueueUrl"]
sns.subscribe(TopicArn=t, Protocol="sqs", Endpoint=qarn(qa))
sns.subscribe(TopicArn=t, Protocol="sqs", Endpoint=qarn(qb), Attributes={"FilterPolicy": json.dumps({"n": [{"anything-but": 5}]})})
call("publish n=6", sns.publish, TopicArn=t, Message="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "6"}})
print("  healthy subscriber queue got:", counts(qa)["ApproximateNumberOfMessages"])
call("publish without attribute n", sns.publish, TopicArn=t, Message="x")
print("  healthy subscriber queue got:", counts(qa)["ApproximateNumberOfMessages"])
