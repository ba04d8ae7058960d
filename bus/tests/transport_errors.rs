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
