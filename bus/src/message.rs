//! Messages as transports carry them: what is sent, what is received, and the receipt that settles it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// User message attributes by name, as SQS `MessageAttributes` and SNS `MessageAttributes`.
pub type MessageAttributes = BTreeMap<String, AttributeValue>;

/// One message attribute: a data type (`String`, `Number`, `Binary`, `String.Array`, optionally with
/// a custom suffix such as `Number.int`) and its value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttributeValue {
    data_type: String,
    string_value: Option<String>,
    binary_value: Option<Vec<u8>>,
}

impl AttributeValue {
    /// A `String` attribute.
    pub fn string(v: impl Into<String>) -> Self {
        Self::text("String", v)
    }

    /// A `Number` attribute (SQS and SNS carry numbers as text).
    pub fn number(v: impl ToString) -> Self {
        Self::text("Number", v.to_string())
    }

    /// An SNS `String.Array` attribute: a JSON array in text form.
    pub fn string_array(json_array: impl Into<String>) -> Self {
        Self::text("String.Array", json_array)
    }

    /// A `Binary` attribute.
    pub fn binary(v: impl Into<Vec<u8>>) -> Self {
        Self {
            data_type: "Binary".to_owned(),
            string_value: None,
            binary_value: Some(v.into()),
        }
    }

    /// A text attribute with an explicit data type, such as `Number.int` or `String.json`.
    pub fn text(data_type: impl Into<String>, v: impl Into<String>) -> Self {
        Self {
            data_type: data_type.into(),
            string_value: Some(v.into()),
            binary_value: None,
        }
    }

    /// Replaces the data type (for example `Binary` by `Binary.png`), keeping the value.
    pub fn set_data_type(&mut self, data_type: impl Into<String>) {
        self.data_type = data_type.into();
    }

    /// The full data type, such as `String`, `Number.int` or `Binary.png`.
    pub fn data_type(&self) -> &str {
        &self.data_type
    }

    /// The data type without its custom suffix: `String`, `Number`, `Binary` or `String.Array`.
    pub fn base_type(&self) -> &str {
        if self.data_type.starts_with("String.Array") {
            return "String.Array";
        }
        self.data_type.split('.').next().unwrap_or(&self.data_type)
    }

    /// The text value of a String, Number or String.Array attribute.
    pub fn as_str(&self) -> Option<&str> {
        self.string_value.as_deref()
    }

    /// The bytes of a Binary attribute.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        self.binary_value.as_deref()
    }

    /// Bytes this value counts against the message size limit (type plus value).
    pub fn size(&self) -> usize {
        self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
    }
}

/// Bytes that a body and its attributes count against the SQS/SNS message size limits: the body,
/// and each attribute's name, data type and value.
pub fn payload_size(body: &str, attributes: &MessageAttributes) -> usize {
    body.len()
        + attributes
            .iter()
            .map(|(name, v)| name.len() + v.size())
            .sum::<usize>()
}

/// The opaque token a receive hands out, needed to delete the message or change its visibility.
/// Each receive of a message yields a new receipt. Shared, not copied: the engine hands it to
/// every settling call of the message.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Receipt(Arc<str>);

impl Receipt {
    /// Wraps a transport's receipt handle.
    pub fn new(handle: impl Into<Arc<str>>) -> Self {
        Self(handle.into())
    }

    /// The handle as the transport gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Receipt {
    fn from(handle: String) -> Self {
        Self::new(handle)
    }
}

impl From<Receipt> for String {
    fn from(receipt: Receipt) -> Self {
        receipt.0.as_ref().to_owned()
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Receipts are long and opaque; the tail is enough to tell them apart in logs.
        let chars: Vec<char> = self.0.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(12)..].iter().collect();
        write!(f, "Receipt(..{tail})")
    }
}

/// What the queue itself records about a message (SQS system attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemAttributes {
    /// `ApproximateReceiveCount`: how many times the message has been received, this time included.
    pub receive_count: u32,
    /// `SentTimestamp`: when the queue accepted the message.
    pub sent_at: SystemTime,
    /// `ApproximateFirstReceiveTimestamp`.
    pub first_received_at: Option<SystemTime>,
    /// `MessageGroupId` (FIFO queues, and standard queues that set it).
    pub message_group_id: Option<String>,
    /// `MessageDeduplicationId` (FIFO queues).
    pub deduplication_id: Option<String>,
    /// `SequenceNumber` (FIFO queues).
    pub sequence_number: Option<String>,
    /// `AWSTraceHeader`: the X-Ray trace header the message was sent with, if any (see
    /// [`crate::trace`]).
    pub trace_header: Option<String>,
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The queue's message id.
    pub id: String,
    /// The body as sent (for SNS enveloped delivery, the envelope JSON).
    pub body: String,
    /// User message attributes.
    pub attributes: MessageAttributes,
    /// What the queue records about the message.
    pub system: SystemAttributes,
    /// The token that settles this receive of the message.
    pub receipt: Receipt,
}

/// A message to send to a queue or publish to a topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The body: text, at most the service's size limit together with the attributes.
    pub body: String,
    /// User message attributes (at most 10).
    pub attributes: MessageAttributes,
    /// `DelaySeconds` for this message (standard queues only; topics refuse it).
    pub delay: Option<Duration>,
    /// `MessageGroupId`: required on FIFO queues and topics.
    pub group_id: Option<String>,
    /// `MessageDeduplicationId`: required on FIFO unless content-based deduplication is on.
    pub deduplication_id: Option<String>,
    /// SNS `Subject` (topics only; it appears in the SNS envelope).
    pub subject: Option<String>,
    /// The X-Ray trace header to send as the `AWSTraceHeader` system attribute (queues only;
    /// counts against no limit). The bus sets it when the trace context does not fit in the
    /// `traceparent` attribute (see [`crate::trace`]).
    pub trace_header: Option<String>,
}

impl OutgoingMessage {
    /// A message with this body and nothing else.
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// Adds a message attribute.
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>, value: AttributeValue) -> Self {
        self.attributes.insert(name.into(), value);
        self
    }

    /// Sets `DelaySeconds`.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sets the FIFO message group.
    #[must_use]
    pub fn group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets the FIFO deduplication id.
    #[must_use]
    pub fn deduplication_id(mut self, id: impl Into<String>) -> Self {
        self.deduplication_id = Some(id.into());
        self
    }

    /// Sets the SNS subject.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Bytes this message counts against the size limit.
    pub fn size(&self) -> usize {
        payload_size(&self.body, &self.attributes)
    }
}

/// What the queue answered for one sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    /// The message id the queue (or topic) assigned.
    pub message_id: String,
    /// The FIFO sequence number.
    pub sequence_number: Option<String>,
}

/// Why one entry of a batch call failed while the others may have succeeded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EntryError {
    /// The AWS error code of the entry (`ReceiptHandleIsInvalid`, `MessageNotInflight`, ...).
    pub code: String,
    /// What the service said.
    pub message: String,
    /// Whether the request was at fault (`SenderFault`); a service fault may succeed when retried.
    pub sender_fault: bool,
}

impl EntryError {
    /// An entry error caused by the request.
    pub fn sender(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            sender_fault: true,
        }
    }
}

/// The result of one entry of a batch call, in the order the entries were given.
pub type EntryResult<T> = Result<T, EntryError>;

/// Parameters of one receive call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// At most this many messages (1 to 10).
    pub max_messages: usize,
    /// Long-poll wait: the call returns as soon as a message is available, or after this long.
    pub wait_time: Duration,
    /// Visibility timeout for the received messages; the queue's default when `None`.
    pub visibility_timeout: Option<Duration>,
}

impl ReceiveRequest {
    /// A long poll for up to `max_messages`, waiting up to `wait_time`.
    pub fn new(max_messages: usize, wait_time: Duration) -> Self {
        Self {
            max_messages,
            wait_time,
            visibility_timeout: None,
        }
    }

    /// Sets the visibility timeout of the received messages.
    #[must_use]
    pub fn visibility(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }
}

/// A new visibility timeout for a received message, counted from now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisibilityChange {
    /// The receipt of the message.
    pub receipt: Receipt,
    /// How long from now the message stays invisible (0 makes it visible at once).
    pub timeout: Duration,
}
