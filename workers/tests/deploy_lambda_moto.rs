//! The committed Lambda template (`deploy/cloudformation/fleet-lambda.json`) deployed into moto's
//! CloudFormation: the stack creates each worker's function, its event source mapping with
//! `ReportBatchItemFailures` and its maximum concurrency, and the queues with a visibility
//! timeout 6× the function's timeout. Read back through Lambda's and SQS's own APIs.
//!
//! Two things are done for moto, not for AWS: the code zip is put into moto's S3 with a plain
//! HTTP request (the workspace has no S3 client: moto routes a request by the service its
//! credential scope names and checks no signature), and the template's `Number` parameters are
//! written into the resources as numbers, because moto's event source mapping compares the
//! string CloudFormation hands it with a number and fails (`TypeError: '>' not supported between
//! instances of 'str' and 'int'`); AWS's CloudFormation converts them.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;

use aws_sdk_sqs::types::QueueAttributeName;
use fleet_tests::http::request;
use serde_json::{Value, json};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const STACK: &str = "fleet-lambda";
const BUCKET: &str = "fleet-artifacts";
const KEY: &str = "fleet/test/fleet-lambda.zip";

/// A zip with no entry: only its end-of-central-directory record.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Numbers the stack is created with, beside the defaults.
const NUMBERS: [(&str, u64); 1] = [("OrdersReservedConcurrency", 7)];

/// The template's resources with each `Ref` to a `Number` parameter replaced by its value in
/// [`NUMBERS`], else its default (the stack gets the same values as parameters, for the
/// conditions).
fn numbers_inlined(template: &Value) -> Value {
    fn walk(v: &Value, params: &Value) -> Value {
        match v {
            Value::Object(m) => {
                if let (1, Some(Value::String(name))) = (m.len(), m.get("Ref")) {
                    let p = &params[name];
                    if p["Type"] == "Number" {
                        let given = NUMBERS.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
                        return json!(given.unwrap_or_else(|| {
                            p["Default"].as_str().unwrap().parse::<u64>().unwrap()
                        }));
                    }
                }
                Value::Object(
                    m.iter()
                        .map(|(k, v)| (k.clone(), walk(v, params)))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(|v| walk(v, params)).collect()),
            other => other.clone(),
        }
    }
    let mut t = template.clone();
    t["Resources"] = walk(&template["Resources"], &template["Parameters"]);
    t
}

/// A request to moto for `service`: a credential scope that names it, no real signature.
async fn moto_call(
    moto: SocketAddr,
    service: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Value {
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let answer = request(
        moto,
        method,
        path,
        &[
            ("Authorization", &authorization),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ],
        body,
    )
    .await
    .unwrap();
    assert!(
        answer.status < 300,
        "{method} {path}: {} {}",
        answer.status,
        answer.body
    );
    serde_json::from_str(&answer.body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_lambda_template_deploys_functions_with_partial_batch_responses() {
    let sdk = fleet_tests::moto::sdk_config().await;
    let moto: SocketAddr = fleet_tests::moto::moto()
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    // The code: any zip will do for moto, which runs nothing here (the package itself is
    // checked in lambda/tests/lambda_package.rs).
    moto_call(moto, "s3", "PUT", &format!("/{BUCKET}"), &[]).await;
    moto_call(moto, "s3", "PUT", &format!("/{BUCKET}/{KEY}"), &EMPTY_ZIP).await;

    let text =
        std::fs::read_to_string(Path::new(REPO).join("deploy/cloudformation/fleet-lambda.json"))
            .unwrap();
    let template = numbers_inlined(&serde_json::from_str(&text).unwrap());
    let parameters: Vec<(&str, String)> = NUMBERS
        .iter()
        .map(|(name, value)| (*name, value.to_string()))
        .chain([
            ("CodeBucket", BUCKET.to_owned()),
            ("CodeKey", KEY.to_owned()),
        ])
        .collect();
    common::cloudformation::create_stack(&sdk, STACK, &template.to_string(), &parameters).await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);

    // The functions' names, as CloudFormation made them.
    let resources = cfn
        .list_stack_resources()
        .stack_name(STACK)
        .send()
        .await
        .unwrap();
    let function_of = |title: &str| {
        resources
            .stack_resource_summaries()
            .iter()
            .find(|r| r.logical_resource_id() == Some(&format!("Function{title}")))
            .and_then(|r| r.physical_resource_id())
            .unwrap_or_else(|| panic!("no Function{title}"))
            .to_owned()
    };

    let mappings = moto_call(
        moto,
        "lambda",
        "GET",
        "/2015-03-31/event-source-mappings/",
        &[],
    )
    .await;
    let mappings = mappings["EventSourceMappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 3, "{mappings:?}");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for (worker, title, queue, timeout, batch) in [
        ("orders", "Orders", "fleet-orders", 30, 10),
        ("analytics", "Analytics", "fleet-analytics", 30, 10),
        ("email", "Email", "fleet-email", 62, 1),
    ] {
        let function = function_of(title);
        let m = mappings
            .iter()
            .find(|m| {
                m["FunctionArn"]
                    .as_str()
                    .is_some_and(|a| a.ends_with(&format!(":function:{function}")))
            })
            .unwrap_or_else(|| panic!("no mapping for {function}: {mappings:?}"));
        assert!(
            m["EventSourceArn"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{queue}")),
            "{m}"
        );
        assert_eq!(
            m["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"])
        );
        assert_eq!(m["BatchSize"], batch, "{m}");
        assert_eq!(m["ScalingConfig"]["MaximumConcurrency"], 5);
        assert_eq!(m["MaximumBatchingWindowInSeconds"], 0);

        let f = moto_call(
            moto,
            "lambda",
            "GET",
            &format!("/2015-03-31/functions/{function}"),
            &[],
        )
        .await;
        let c = &f["Configuration"];
        assert_eq!(c["Runtime"], "provided.al2023");
        assert_eq!(c["Handler"], "bootstrap");
        assert_eq!(c["Timeout"], timeout, "{function}");
        assert_eq!(c["Environment"]["Variables"]["FLEET_LAMBDA_WORKER"], worker);
        assert_eq!(
            c["Environment"]["Variables"]["FLEET_CONFIG"],
            "/var/task/deploy/fleet.toml"
        );
        // The worker's own derived role (moto names it <stack>-Role<Worker>-<random>).
        assert!(
            c["Role"]
                .as_str()
                .unwrap()
                .contains(&format!(":role/{STACK}-Role{title}-")),
            "{c}"
        );
        // Reserved where asked (orders: 7), none by default (ReservedConcurrency 0).
        let concurrency = moto_call(
            moto,
            "lambda",
            "GET",
            &format!("/2019-09-30/functions/{function}/concurrency"),
            &[],
        )
        .await;
        let reserved = concurrency.get("ReservedConcurrentExecutions");
        if worker == "orders" {
            assert_eq!(reserved, Some(&json!(7)), "{concurrency}");
        } else {
            assert!(reserved.is_none_or(Value::is_null), "{concurrency}");
        }

        let url = sqs
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .unwrap();
        let visibility: u64 = attributes
            .attributes()
            .unwrap()
            .get(&QueueAttributeName::VisibilityTimeout)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(visibility, 6 * timeout, "{queue}");
    }
}
