//! Scenarios of FIFO queues: group order, the group lock, deduplication.

use std::time::Duration;

use tokio::time::Instant;

use super::{TestBus, ack, receive, receive_after_hidden, receive_n};
use crate::message::{Message, OutgoingMessage, ReceiveRequest, VisibilityChange};
use crate::topology::QueueDecl;
use crate::transport::QueueHandle;

fn fifo_message(group: &str, n: u32) -> OutgoingMessage {
    OutgoingMessage::new(format!("{group}{n}"))
        .group(group)
        .deduplication_id(format!("{group}-{n}"))
}

async fn send_groups(q: &QueueHandle, groups: &[(&str, u32)]) {
    let mut batch = Vec::new();
    for (g, count) in groups {
        for n in 1..=*count {
            batch.push(fifo_message(g, n));
        }
    }
    for chunk in batch.chunks(10) {
        let results = q.sender().send_batch(chunk).await.unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
}

fn bodies_of(messages: &[Message], group: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.system.message_group_id.as_deref() == Some(group))
        .map(|m| m.body.clone())
        .collect()
}

pub async fn fifo_order_within_a_group(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("order.fifo")).await;
    send_groups(&q, &[("a", 4), ("b", 3)]).await;
    let mut got = Vec::new();
    // Acknowledge as we go so locked groups unlock.
    for _ in 0..10 {
        let batch = receive(&q, 10, Duration::from_secs(1)).await;
        ack(&q, &batch).await;
        got.extend(batch);
        if got.len() == 7 {
            break;
        }
    }
    assert_eq!(
        bodies_of(&got, "a"),
        ["a1", "a2", "a3", "a4"],
        "[{}]",
        bus.features.name
    );
    assert_eq!(
        bodies_of(&got, "b"),
        ["b1", "b2", "b3"],
        "[{}]",
        bus.features.name
    );
    let seqs: Vec<&str> = got
        .iter()
        .filter_map(|m| m.system.sequence_number.as_deref())
        .collect();
    assert_eq!(seqs.len(), 7, "FIFO messages carry sequence numbers");
}

pub async fn fifo_group_locked_while_in_flight(bus: &TestBus) {
    let q = bus
        .queue(QueueDecl::new("lock.fifo").visibility_timeout(Duration::from_secs(30)))
        .await;
    send_groups(&q, &[("a", 3), ("b", 2)]).await;
    let first = q
        .queue()
        .receive(&ReceiveRequest::new(1, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let locked = first[0].system.message_group_id.clone().unwrap();
    let other = if locked == "a" { "b" } else { "a" };
    // While the head of `locked` is in flight, only the other group is handed out.
    let rest = receive_n(&q, 10, Duration::from_secs(2)).await;
    assert!(
        bodies_of(&rest, &locked).is_empty(),
        "[{}] locked group delivered: {rest:?}",
        bus.features.name
    );
    assert_eq!(
        bodies_of(&rest, other).len(),
        if other == "a" { 3 } else { 2 }
    );
    ack(&q, &rest).await;
    ack(&q, &first).await;
    let after = receive_n(&q, 10, Duration::from_secs(2)).await;
    let expected = if locked == "a" {
        vec!["a2", "a3"]
    } else {
        vec!["b2"]
    };
    assert_eq!(
        bodies_of(&after, &locked),
        expected,
        "[{}] group not unlocked by the delete",
        bus.features.name
    );
}

pub async fn fifo_failed_message_holds_back_its_group(bus: &TestBus) {
    let q = bus
        .queue(QueueDecl::new("hold.fifo").visibility_timeout(Duration::from_secs(30)))
        .await;
    send_groups(&q, &[("a", 2)]).await;
    let got = receive_n(&q, 2, Duration::from_secs(5)).await;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["a1", "a2"]
    );
    // a1 fails and is retried after 2 s; a2 (not yet processed) is released at once.
    let retry = Duration::from_secs(2);
    let changes = vec![
        VisibilityChange {
            receipt: got[0].receipt.clone(),
            timeout: retry,
        },
        VisibilityChange {
            receipt: got[1].receipt.clone(),
            timeout: Duration::ZERO,
        },
    ];
    let changed = Instant::now();
    let r = q.queue().change_visibility_batch(&changes).await.unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    // a2 is visible but must not jump ahead of a1 (which may be back first, when late).
    let what = "a2 delivered before the retried a1";
    let again = receive_after_hidden(bus, &q, 2, (changed, retry), what).await;
    assert_eq!(
        again.first().map(|m| m.body.as_str()),
        Some("a1"),
        "[{}] {again:?}",
        bus.features.name
    );
    ack(&q, &again).await;
}

pub async fn fifo_deduplication_window(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("dedup.fifo")).await;
    q.sender().send(fifo_message("g", 1)).await.unwrap();
    q.sender().send(fifo_message("g", 1)).await.unwrap();
    let got = receive_n(&q, 10, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "[{}] duplicate stored", bus.features.name);
    ack(&q, &got).await;
    if !bus.features.dedup_window {
        eprintln!(
            "[{}] deduplication lasts only while the original is queued: the 5-minute window is not checked",
            bus.features.name
        );
        return;
    }
    // Within the window the id stays taken even after the original is deleted.
    q.sender().send(fifo_message("g", 1)).await.unwrap();
    assert!(
        receive(&q, 10, Duration::from_secs(1)).await.is_empty(),
        "dedup forgot the id after delete"
    );
    // After the window it is free again.
    tokio::time::sleep(crate::limits::FIFO_DEDUP_WINDOW).await;
    q.sender().send(fifo_message("g", 1)).await.unwrap();
    assert_eq!(
        receive_n(&q, 1, Duration::from_secs(2)).await.len(),
        1,
        "dedup window never ended"
    );
}

pub async fn fifo_content_based_deduplication(bus: &TestBus) {
    let q = bus
        .queue(QueueDecl::new("content.fifo").content_based_deduplication())
        .await;
    for _ in 0..3 {
        q.sender()
            .send(OutgoingMessage::new("same body").group("g"))
            .await
            .unwrap();
    }
    q.sender()
        .send(OutgoingMessage::new("other body").group("g"))
        .await
        .unwrap();
    let got = receive_n(&q, 10, Duration::from_secs(2)).await;
    let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["same body", "other body"],
        "[{}]",
        bus.features.name
    );
}

pub async fn fifo_rejects_what_sqs_rejects(bus: &TestBus) {
    let q = bus.queue(QueueDecl::new("strict.fifo")).await;
    let no_group = q
        .sender()
        .send(OutgoingMessage::new("no group").deduplication_id("d1"))
        .await;
    assert_eq!(
        no_group.unwrap_err().code(),
        Some("MissingParameter"),
        "[{}]",
        bus.features.name
    );
    let no_dedup = q
        .sender()
        .send(OutgoingMessage::new("no dedup").group("g"))
        .await;
    assert_eq!(
        no_dedup.unwrap_err().code(),
        Some("InvalidParameterValue"),
        "[{}]",
        bus.features.name
    );
    let delayed = q
        .sender()
        .send(fifo_message("g", 2).delay(Duration::from_secs(5)))
        .await;
    assert_eq!(
        delayed.unwrap_err().code(),
        Some("InvalidParameterValue"),
        "[{}]",
        bus.features.name
    );
    q.sender().send(fifo_message("g", 1)).await.unwrap();
}
