//! Dead letters as the engine writes them, put straight into a dead-letter queue.

use std::time::{Duration, SystemTime};

use fleet_bus::consumer::dead_letter::{DeadLetterOut, DeadLetterReason, dead_letter_message};
use fleet_bus::{
    AttributeValue, Message, OutgoingMessage, Receipt, ReceiveRequest, SystemAttributes, Transport,
};
use serde_json::Value;

/// A message as its source queue held it: `attributes` own attributes of its own.
pub fn source_message(id: &str, body: &str, attributes: usize) -> Message {
    Message {
        id: id.to_owned(),
        body: body.to_owned(),
        attributes: (0..attributes)
            .map(|i| (format!("own{i}"), AttributeValue::string(format!("v{i}"))))
            .collect(),
        system: SystemAttributes {
            receive_count: 1,
            sent_at: SystemTime::now(),
            first_received_at: None,
            message_group_id: None,
            deduplication_id: None,
            sequence_number: None,
            trace_header: None,
        },
        receipt: Receipt::new("r"),
    }
}

/// What the engine sends to a standard dead-letter queue for `m`, failed in `queue`.
pub fn dead_letter(m: &Message, queue: &str, kind: &str, why: &str) -> DeadLetterOut {
    dead_letter_in(m, queue, kind, why, false)
}

/// What the engine sends to a dead-letter queue (FIFO or not) for `m`, failed in `queue`.
pub fn dead_letter_in(
    m: &Message,
    queue: &str,
    kind: &str,
    why: &str,
    fifo: bool,
) -> DeadLetterOut {
    let reason = DeadLetterReason {
        kind: kind.to_owned(),
        message: why.to_owned(),
        attempt: 1,
        handler: "orders".to_owned(),
        queue: queue.to_owned(),
        message_id: m.id.clone(),
    };
    dead_letter_message(m, &reason, fifo)
}

/// Sends messages to a queue one by one, in order.
pub async fn put(t: &dyn Transport, queue: &str, messages: &[OutgoingMessage]) {
    let q = t.queue(queue).await.unwrap();
    for m in messages {
        q.sender().send(m.clone()).await.unwrap();
    }
}

/// Receives and deletes everything visible in a queue, in the order received (a FIFO queue
/// hands out more of a group only once the earlier ones are deleted).
pub async fn drain(t: &dyn Transport, queue: &str) -> Vec<Message> {
    let q = t.queue(queue).await.unwrap();
    let mut out: Vec<Message> = Vec::new();
    loop {
        let got = q
            .queue()
            .receive(
                &ReceiveRequest::new(10, Duration::from_secs(1))
                    .visibility(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        if got.is_empty() {
            return out;
        }
        let receipts: Vec<_> = got.iter().map(|m| m.receipt.clone()).collect();
        for r in q.queue().delete_batch(&receipts).await.unwrap() {
            r.unwrap();
        }
        out.extend(got);
    }
}

pub fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
