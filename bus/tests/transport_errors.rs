//! Errors of the transports' one-message helpers name the queue or topic they were for.

#![allow(clippy::unwrap_used)]

use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::{OutgoingMessage, QueueDecl, Topology, Transport};

#[tokio::test(start_paused = true)]
async fn a_refused_send_names_its_queue() {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology {
        queues: vec![QueueDecl::new("greetings")],
        topics: vec![],
        ..Default::default()
    })
    .await
    .unwrap();
    let queue = bus.queue("greetings").await.unwrap();
    let err = queue
        .sender()
        .send(OutgoingMessage::new(""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("MissingParameter"), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("SendMessage on greetings failed"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_publish_names_its_topic() {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology {
        queues: vec![],
        topics: vec![fleet_bus::TopicDecl::new("fleet-events")],
        ..Default::default()
    })
    .await
    .unwrap();
    let topic = bus.topic("fleet-events").await.unwrap();
    // Topics refuse a per-message delay.
    let refused = OutgoingMessage::new("x").delay(std::time::Duration::from_secs(5));
    let err = topic.publish(refused).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Publish on fleet-events failed"),
        "{err}"
    );
}
