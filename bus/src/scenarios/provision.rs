//! Scenarios of provisioning a topology.

use serde_json::json;

use super::TestBus;
use crate::sns::FilterScope;
use crate::topology::{QueueDecl, SubscriptionDecl, TopicDecl, Topology, provision};
use crate::transport::Applied;

pub async fn provisioning_twice_changes_nothing(bus: &TestBus) {
    let (q, fifo, topic) = (
        bus.unique("prov"),
        bus.unique("prov.fifo"),
        bus.unique("prov-topic"),
    );
    let filter = json!({"type": [{"prefix": "order."}]});
    let mut topology = Topology {
        queues: vec![
            QueueDecl::new(&q).dead_letter(format!("{q}-dlq"), 4),
            QueueDecl::new(&fifo).content_based_deduplication(),
        ],
        topics: vec![
            TopicDecl::new(&topic).subscribe(
                SubscriptionDecl::new(&q)
                    .raw()
                    .filter(filter, FilterScope::MessageAttributes),
            ),
        ],
        ..Topology::default()
    };
    let first = provision(&*bus.transport, &topology).await.unwrap();
    assert_eq!(first.entries.len(), 5, "{first}");
    assert!(
        first.entries.iter().all(|(_, a)| *a == Applied::Created),
        "[{}] {first}",
        bus.features.name
    );
    let second = provision(&*bus.transport, &topology).await.unwrap();
    assert!(
        !second.changed(),
        "[{}] second run changed something:\n{second}",
        bus.features.name
    );

    topology.queues[0].visibility_timeout_seconds = 90;
    topology.topics[0].subscriptions[0].filter_policy = Some(json!({"type": ["order.paid"]}));
    let third = provision(&*bus.transport, &topology).await.unwrap();
    let updated: Vec<&Applied> = third
        .entries
        .iter()
        .map(|(_, a)| a)
        .filter(|a| **a != Applied::Unchanged)
        .collect();
    assert_eq!(
        updated,
        [
            &Applied::Updated(vec!["VisibilityTimeout".into()]),
            &Applied::Updated(vec!["FilterPolicy".into()])
        ],
        "[{}] {third}",
        bus.features.name
    );
    let d = bus
        .transport
        .queue(&q)
        .await
        .unwrap()
        .admin()
        .describe()
        .await
        .unwrap();
    assert_eq!(d.visibility_timeout.as_secs(), 90);
    assert_eq!(
        d.redrive
            .map(|r| (r.dead_letter_queue_name().to_owned(), r.max_receive_count)),
        Some((format!("{q}-dlq"), 4))
    );
    assert!(
        !provision(&*bus.transport, &topology)
            .await
            .unwrap()
            .changed()
    );
}
