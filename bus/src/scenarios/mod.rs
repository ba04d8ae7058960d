//! The transport-generic scenario suite, after Watermill's `TestPubSub`: plain async functions
//! that every transport must pass, a [`Features`] struct for what a transport supports, and
//! [`scenario_tests!`](crate::scenario_tests) to stamp out one test per scenario.
//!
//! ```text
//! async fn embedded() -> fleet_bus::scenarios::TestBus {
//!     fleet_bus::scenarios::TestBus::embedded()
//! }
//! fleet_bus::scenario_tests!(#[tokio::test(start_paused = true)], embedded);
//! ```
//!
//! Each scenario declares its own uniquely named queues and topics, so all scenarios of a
//! transport can share one broker and run in parallel.
#![allow(clippy::unwrap_used, missing_docs)]

mod fifo;
pub mod idempotency;
pub mod latency;
mod provision;
mod queue;
pub mod support;
mod topic;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

pub use fifo::*;
pub use provision::*;
pub use queue::*;
pub use topic::*;

use crate::embedded::EmbeddedBus;
use crate::message::{Message, MessageAttributes, ReceiveRequest};
use crate::topology::{Declaration, QueueDecl, TopicDecl};
use crate::transport::{Publisher, QueueHandle, Transport};

/// What a transport supports, and where it differs from AWS, so scenarios adapt instead of being
/// dropped.
#[derive(Clone, Debug)]
pub struct Features {
    /// Shown in failure messages.
    pub name: &'static str,
    /// Time-based scenarios run on tokio's paused clock: waits cost no real time.
    pub paused_clock: bool,
    /// How far a real clock may be off when a scenario checks when something happened.
    pub clock_slack: Duration,
    /// Concurrent receivers never get the same message twice within its visibility timeout
    /// (moto 5.2.5 sometimes hands one message to two concurrent receivers).
    pub exclusive_receive: bool,
    /// SNS `$or` in attribute-scope filter policies works.
    pub or_filter: bool,
    /// SNS `$or` in body-scope filter policies works (moto 5.2.5 answers 500 to every publish on
    /// the topic once such a subscription matches a key).
    pub or_filter_in_body: bool,
    /// SNS `equals-ignore-case` works (moto 5.2.5 never matches it).
    pub equals_ignore_case: bool,
    /// The largest message SQS accepts.
    pub max_message_bytes: usize,
    /// Messages past their retention period disappear.
    pub retention_expiry: bool,
    /// FIFO deduplication ids stay taken for 5 minutes, even after the original is deleted
    /// (moto 5.2.5 deduplicates only against messages still queued).
    pub dedup_window: bool,
    /// Bodies with characters outside the XML set are refused (moto 5.2.5 accepts them).
    pub validates_body_characters: bool,
}

impl Features {
    /// The embedded transport: everything, on a paused clock.
    pub fn embedded() -> Self {
        Self {
            name: "embedded",
            paused_clock: true,
            clock_slack: Duration::ZERO,
            exclusive_receive: true,
            or_filter: true,
            or_filter_in_body: true,
            equals_ignore_case: true,
            max_message_bytes: crate::limits::MAX_SQS_MESSAGE_BYTES,
            retention_expiry: true,
            dedup_window: true,
            validates_body_characters: true,
        }
    }
}

/// A transport under test and what it supports.
#[derive(Clone)]
pub struct TestBus {
    pub transport: Arc<dyn Transport>,
    pub features: Features,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A name no other test uses, in this process or another sharing the broker (`.fifo` kept at
/// the end).
pub fn unique_name(base: &str) -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let salt: u32 = rand::random();
    match base.strip_suffix(".fifo") {
        Some(stem) => format!("{stem}-{salt:08x}-{n}.fifo"),
        None => format!("{base}-{salt:08x}-{n}"),
    }
}

impl TestBus {
    /// A fresh embedded bus.
    pub fn embedded() -> Self {
        Self {
            transport: Arc::new(EmbeddedBus::new()),
            features: Features::embedded(),
        }
    }

    /// A name no other scenario uses (`.fifo` kept at the end).
    pub fn unique(&self, base: &str) -> String {
        unique_name(base)
    }

    /// Declares a queue (its name made unique first) and opens it.
    pub async fn queue(&self, mut decl: QueueDecl) -> QueueHandle {
        decl.name = self.unique(&decl.name);
        self.declare_queue(&decl).await
    }

    /// Declares a queue under its exact name and opens it.
    pub async fn declare_queue(&self, decl: &QueueDecl) -> QueueHandle {
        self.transport
            .declare(&Declaration::Queue(decl))
            .await
            .unwrap();
        self.transport.queue(&decl.name).await.unwrap()
    }

    /// A queue with a dead-letter queue: returns (queue, dead-letter queue).
    pub async fn queue_with_dlq(
        &self,
        base: &str,
        max_receive_count: u32,
        visibility: Duration,
    ) -> (QueueHandle, QueueHandle) {
        let fifo = base.ends_with(".fifo");
        let dlq_name = self.unique(if fifo { "dlq.fifo" } else { "dlq" });
        let dlq = self.declare_queue(&QueueDecl::new(&dlq_name)).await;
        let decl = QueueDecl::new(self.unique(base))
            .visibility_timeout(visibility)
            .dead_letter(dlq_name, max_receive_count);
        (self.declare_queue(&decl).await, dlq)
    }

    /// Declares a topic with its subscriptions (queue names as given) and opens it.
    pub async fn topic(&self, decl: &TopicDecl) -> Arc<dyn Publisher> {
        self.transport
            .declare(&Declaration::Topic(decl))
            .await
            .unwrap();
        for s in &decl.subscriptions {
            let d = Declaration::Subscription {
                topic: &decl.name,
                subscription: s,
            };
            self.transport.declare(&d).await.unwrap();
        }
        self.transport.topic(&decl.name).await.unwrap()
    }

    /// Whether less than `within` has surely passed since `since`, allowing for the transport's
    /// clock slack. A check that holds only inside a delay or a visibility timeout is made only
    /// then: on a loaded broker (the stress reruns) the call may come after it.
    pub fn surely_within(&self, since: Instant, within: Duration) -> bool {
        since.elapsed() + self.features.clock_slack < within
    }

    /// Asserts that `elapsed` is at least `expected`, allowing for the transport's clock slack.
    pub fn assert_waited(&self, elapsed: Duration, expected: Duration, what: &str) {
        assert!(
            elapsed + self.features.clock_slack >= expected,
            "[{}] {what}: after {elapsed:?}, expected at least {expected:?}",
            self.features.name
        );
    }
}

/// Receives once, long-polling up to `wait`, with the queue's default visibility.
pub async fn receive(q: &QueueHandle, max: usize, wait: Duration) -> Vec<Message> {
    q.queue()
        .receive(&ReceiveRequest::new(max, wait))
        .await
        .unwrap()
}

/// Receives until `n` messages arrived or `within` passed; returns what arrived.
pub async fn receive_n(q: &QueueHandle, n: usize, within: Duration) -> Vec<Message> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let wait = left.min(Duration::from_secs(2));
        out.extend(receive(q, (n - out.len()).min(10), wait).await);
    }
    out
}

/// Receives up to `n` messages hidden (delayed, in flight) for `hidden.1` since `hidden.0`,
/// first checking that none is there before then. A receive after that time (a loaded broker,
/// as under the stress reruns) may rightly find them already, and then those are returned.
pub async fn receive_after_hidden(
    bus: &TestBus,
    q: &QueueHandle,
    n: usize,
    hidden: (Instant, Duration),
    what: &str,
) -> Vec<Message> {
    let early = receive(q, 10, Duration::ZERO).await;
    if bus.surely_within(hidden.0, hidden.1) {
        assert!(
            early.is_empty(),
            "[{}] {what}: {early:?}",
            bus.features.name
        );
    } else {
        // Not silent: a run where this shows often checks less than it claims.
        eprintln!(
            "[{}] not checked ({what}): the receive came {:?} after the message was hidden for {:?}",
            bus.features.name,
            hidden.0.elapsed(),
            hidden.1
        );
    }
    if early.is_empty() {
        receive_n(q, n, Duration::from_secs(10)).await
    } else {
        early
    }
}

/// Deletes received messages, asserting that every entry succeeded.
pub async fn ack(q: &QueueHandle, messages: &[Message]) {
    for chunk in messages.chunks(10) {
        let receipts: Vec<_> = chunk.iter().map(|m| m.receipt.clone()).collect();
        let results = q.queue().delete_batch(&receipts).await.unwrap();
        assert!(
            results.iter().all(Result::is_ok),
            "delete failed: {results:?}"
        );
    }
}

/// The attributes a producer set, without the `traceparent` every send adds; asserts that the
/// one received is a valid trace context.
pub fn own_attributes(received: &MessageAttributes) -> MessageAttributes {
    let mut own = received.clone();
    let context = own
        .remove(crate::trace::TRACEPARENT)
        .and_then(|v| v.as_str().map(str::to_owned));
    assert!(
        context
            .as_deref()
            .and_then(crate::trace::TraceContext::from_traceparent)
            .is_some(),
        "no valid traceparent among {received:?}"
    );
    own
}

/// The future of one run of a [`Case`].
pub type CaseFuture = futures::future::BoxFuture<'static, ()>;

/// One case of a suite, by name, so the suite can be run as data: the stress tests rerun every
/// case many times at once. `T` is what the case runs against (a [`TestBus`], a store).
pub struct Case<T> {
    /// The case's function name, as its test is named.
    pub name: &'static str,
    /// Runs the case against a fresh `T`.
    pub run: fn(T) -> CaseFuture,
}

// By hand: a derive would ask `T: Copy`, and `T` is only the argument of `run`.
impl<T> Clone for Case<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Case<T> {}

impl<T> std::fmt::Debug for Case<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every scenario of the suite, from the list [`scenario_tests!`](crate::scenario_tests) stamps
/// tests out of, so a new scenario is in both.
pub fn all() -> Vec<Case<TestBus>> {
    crate::scenario_tests!(@names (@cases))
}

/// Stamps out one test per scenario of the suite for a transport. The first argument is the test
/// attribute to use (for the embedded transport `#[tokio::test(start_paused = true)]`); the second
/// is an async function returning the [`TestBus`] under test. [`all`] lists the same scenarios.
#[macro_export]
macro_rules! scenario_tests {
    (#[$attr:meta], $setup:path) => {
        $crate::scenario_tests!(@names (@each #[$attr], $setup,));
    };
    // The one list of scenarios: passes every name on to the arm `$arm`.
    (@names ($($arm:tt)*)) => {
        $crate::scenario_tests! { $($arm)*
            round_trip_with_attributes,
            ack_removes_the_message,
            retry_redelivers_after_the_given_delay,
            unacked_message_redelivers_after_visibility_timeout,
            receive_count_increments,
            redrive_to_dlq_at_max_receive_count,
            partial_batch_results,
            whole_batch_errors,
            per_message_and_queue_delays,
            long_poll_returns_as_soon_as_a_message_arrives,
            visibility_is_capped_at_twelve_hours,
            retention_drops_old_messages,
            concurrent_consumers_lose_nothing,
            fifo_order_within_a_group,
            fifo_group_locked_while_in_flight,
            fifo_failed_message_holds_back_its_group,
            fifo_deduplication_window,
            fifo_content_based_deduplication,
            fifo_rejects_what_sqs_rejects,
            topic_fans_out_to_every_subscribed_queue,
            attribute_filter_policies,
            body_filter_policies,
            raw_delivery_versus_envelope,
            fifo_topic_keeps_group_order,
            publish_batch_partial_results,
            provisioning_twice_changes_nothing,
        }
    };
    (@each #[$attr:meta], $setup:path, $($name:ident),+ $(,)?) => {
        $(
            #[$attr]
            async fn $name() {
                let bus = $setup().await;
                $crate::scenarios::$name(&bus).await;
            }
        )+
    };
    (@cases $($name:ident),+ $(,)?) => {
        vec![$(
            $crate::scenarios::Case {
                name: stringify!($name),
                run: |bus: $crate::scenarios::TestBus| -> $crate::scenarios::CaseFuture {
                    Box::pin(async move { $crate::scenarios::$name(&bus).await })
                },
            }
        ),+]
    };
}
