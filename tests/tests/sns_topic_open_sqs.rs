//! Opening an SNS topic needs neither `sns:ListTopics` nor a scan of every topic: the transport
//! builds the ARN from its region and account (one `sts:GetCallerIdentity` per transport) or takes
//! a full ARN, and checks that one topic with `GetTopicAttributes`.
//!
//! The calls are counted on the wire, by a proxy between the SDK and moto.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;
use fleet_bus::aws::SqsTransport;
use fleet_bus::scenarios::unique_name;
use fleet_bus::{BusError, Declaration, OutgoingMessage, TopicDecl, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Everything the SDK sent through the proxy.
type Log = Arc<Mutex<Vec<u8>>>;

/// A proxy to moto that records the requests; returns its endpoint.
async fn recording_proxy(log: Log) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let upstream = fleet_tests::moto::moto()
        .endpoint
        .trim_start_matches("http://")
        .to_owned();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.unwrap();
            tokio::spawn(relay(client, server, log.clone()));
        }
    });
    endpoint
}

async fn relay(client: TcpStream, server: TcpStream, log: Log) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = async move {
        let mut buf = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buf).await {
            log.lock().unwrap().extend_from_slice(&buf[..n]);
            if to_server.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    };
    tokio::join!(up, down);
}

/// How many requests of `operation` went through (SNS and STS speak the query protocol).
fn calls(log: &Log, operation: &str) -> usize {
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    text.matches(&format!("Action={operation}&")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_is_opened_by_its_arn_without_listing_topics() {
    let direct = fleet_tests::moto::transport().await;
    let name = unique_name("opened");
    direct
        .declare(&Declaration::Topic(&TopicDecl::new(&name)))
        .await
        .unwrap();

    let log = Log::default();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(recording_proxy(log.clone()).await)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "fleet-test",
            "fleet-test",
            None,
            None,
            "t",
        ))
        .load()
        .await;
    let t = SqsTransport::new(&config);

    let arn = t.topic_arn(&name).await.unwrap().unwrap();
    assert_eq!(arn, format!("arn:aws:sns:us-east-1:123456789012:{name}"));
    t.topic(&name)
        .await
        .unwrap()
        .publish(OutgoingMessage::new("by name"))
        .await
        .unwrap();
    t.topic(&arn)
        .await
        .unwrap()
        .publish(OutgoingMessage::new("by ARN"))
        .await
        .unwrap();
    let Err(missing) = t.topic(&unique_name("missing")).await else {
        panic!("a topic that does not exist was opened");
    };
    assert!(
        matches!(missing, BusError::NotFound { kind: "topic", .. }),
        "{missing:?}"
    );

    assert_eq!(calls(&log, "ListTopics"), 0, "a topic was found by listing");
    assert_eq!(
        calls(&log, "GetCallerIdentity"),
        1,
        "the account is asked once per transport"
    );
    assert_eq!(
        calls(&log, "GetTopicAttributes"),
        3,
        "one check per topic reference (name, ARN, missing); the name's ARN is then remembered"
    );
    assert_eq!(calls(&log, "PublishBatch"), 2);
}
