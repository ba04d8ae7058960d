//! Parsing and validating topologies.
use super::*;

const SAMPLE: &str = r#"
    [[queue]]
    name = "orders"
    visibility_timeout_seconds = 45
    dead_letter = { queue = "orders-dlq", max_receive_count = 4 }

    [[queue]]
    name = "audit.fifo"
    content_based_deduplication = true

    [[topic]]
    name = "events"
    [[topic.subscription]]
    queue = "orders"
    raw_delivery = true
    filter_policy = { type = ["order.placed", { prefix = "order." }] }
"#;

#[test]
fn parses_and_fills_defaults() {
    let t = Topology::from_toml(SAMPLE).expect("valid");
    assert_eq!(t.queues[0].visibility_timeout_seconds, 45);
    assert_eq!(t.queues[0].retention_seconds, 345_600);
    assert!(t.queues[0].encrypted);
    assert!(t.queues[1].is_fifo());
    let sub = &t.topics[0].subscriptions[0];
    assert!(sub.raw_delivery);
    assert_eq!(sub.filter_scope, FilterScope::MessageAttributes);
    assert!(sub.parsed_filter().expect("valid").is_some());
}

#[test]
fn implicit_dead_letter_queue_comes_first_with_long_retention() {
    let t = Topology::from_toml(SAMPLE).expect("valid");
    let full = t.with_implicit_dead_letter_queues();
    let order: Vec<&str> = full
        .queues_in_dependency_order()
        .expect("acyclic")
        .iter()
        .map(|q| q.name.as_str())
        .collect();
    assert_eq!(order, ["audit.fifo", "orders-dlq", "orders"]);
    let dlq = full.queue("orders-dlq").expect("implicit");
    assert_eq!(u64::from(dlq.retention_seconds), MAX_RETENTION.as_secs());
}

#[test]
fn rejects_what_aws_would_refuse() {
    let cases = [
        ("[[queue]]\nname = \"a b\"", "not a valid name"),
        (
            "[[queue]]\nname = \"q\"\nvisibility_timeout_seconds = 43201",
            "12 hours",
        ),
        ("[[queue]]\nname = \"q\"\ndelay_seconds = 901", "15 minutes"),
        (
            "[[queue]]\nname = \"q\"\nretention_seconds = 10",
            "retention",
        ),
        (
            "[[queue]]\nname = \"q\"\ndead_letter = { queue = \"d\", max_receive_count = 0 }",
            "max_receive_count",
        ),
        (
            "[[queue]]\nname = \"q.fifo\"\ndead_letter = { queue = \"d\", max_receive_count = 3 }",
            "same kind",
        ),
        (
            "[[queue]]\nname = \"q\"\ncontent_based_deduplication = true",
            "FIFO",
        ),
        (
            "[[topic]]\nname = \"t\"\n[[topic.subscription]]\nqueue = \"missing\"",
            "not declared",
        ),
        (
            "[[queue]]\nname = \"q.fifo\"\n[[topic]]\nname = \"t\"\n[[topic.subscription]]\nqueue = \"q.fifo\"",
            "standard topic",
        ),
        ("[[queue]]\nname = \"q\"\n[[queue]]\nname = \"q\"", "twice"),
    ];
    for (text, needle) in cases {
        let err = Topology::from_toml(text).expect_err(text).to_string();
        assert!(err.contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn rejects_unknown_fields_and_bad_filter_policies() {
    assert!(Topology::from_toml("[[queue]]\nname = \"q\"\nvisibility = 3").is_err());
    let bad = "[[queue]]\nname = \"q\"\n[[topic]]\nname = \"t\"\n[[topic.subscription]]\nqueue = \"q\"\nfilter_policy = { a = [{ nope = 1 }] }";
    assert!(matches!(
        Topology::from_toml(bad),
        Err(BusError::FilterPolicy(_))
    ));
}

#[test]
fn detects_redrive_cycles() {
    let t = Topology {
        queues: vec![
            QueueDecl::new("a").dead_letter("b", 3),
            QueueDecl::new("b").dead_letter("a", 3),
        ],
        topics: vec![],
        ..Default::default()
    };
    assert!(t.queues_in_dependency_order().is_err());
}

#[tokio::test]
async fn provisioning_refuses_a_visibility_the_consumer_refuses() {
    use crate::transport::Transport;
    let bus = crate::embedded::EmbeddedBus::new();
    for seconds in [0, 1] {
        let text = format!(
            "[[queue]]\nname = \"q{seconds}\"\nvisibility_timeout_seconds = {seconds}\ndead_letter = {{ queue = \"d\", max_receive_count = 3 }}"
        );
        let t = Topology::from_toml(&text).expect("SQS itself accepts it");
        let err = bus
            .provision(&t)
            .await
            .expect_err("the consumer would refuse the queue")
            .to_string();
        assert!(
            err.contains(&format!("queue q{seconds}"))
                && err.contains("2 s")
                && err.contains("the consumer"),
            "{err}"
        );
        assert!(
            bus.queue(&format!("q{seconds}")).await.is_err(),
            "nothing created"
        );
    }
    let fine = "[[queue]]\nname = \"q2\"\nvisibility_timeout_seconds = 2\ndead_letter = { queue = \"d\", max_receive_count = 3 }";
    bus.provision(&Topology::from_toml(fine).expect("valid"))
        .await
        .expect("2 s is enough");
}
