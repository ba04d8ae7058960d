//! What a process really issued, as IAM sees it: an SDK interceptor on every client Fleet builds
//! (next to [`crate::aws_calls`]'s counter) that reads each request's input before it is sent
//! and records the IAM action, the resource by name, and the partition-key patterns of the items
//! it touches. `fleet run` prints the record at exit ("IAM actions used by this process:"), and
//! the end-to-end tests compare it, both ways, with the role the export derives
//! ([`crate::deploy::iam::compare`]).
//!
//! The mapping is IAM's: a batch call is the action of its entries (`DeleteMessageBatch` →
//! `sqs:DeleteMessage`, `PublishBatch` → `sns:Publish`), a transaction the action of each item
//! (`TransactWriteItems` → `dynamodb:PutItem`, ..., `ConditionCheckItem`; `TransactGetItems` →
//! `dynamodb:GetItem`), a `Query` on an index is on the index, and a `GetParameter` that asks
//! for decryption also uses `kms:Decrypt` through SSM. An operation the recorder has no mapping
//! for is still recorded, on `*`, so a new call can never pass unseen.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, Input,
};

use crate::deploy::iam::{Resource, leading_key_pattern, sender_address};

mod dynamodb;

/// The title `fleet run` prints the record under.
pub const REPORT_TITLE: &str = "IAM actions used by this process:";

/// One action on one resource, with the key patterns of the items it touched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IssuedAction {
    /// The IAM action, `dynamodb:PutItem`.
    pub action: String,
    /// What it was issued on.
    pub resource: Resource,
    /// The partition-key patterns (`USER#*`) of the items touched; empty for non-item actions.
    pub leading_keys: BTreeSet<String>,
}

impl fmt::Display for IssuedAction {
    /// `action resource [leading-keys=a,b]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.resource)?;
        if !self.leading_keys.is_empty() {
            let keys: Vec<&str> = self.leading_keys.iter().map(String::as_str).collect();
            write!(f, " leading-keys={}", keys.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for IssuedAction {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let mut parts = line.split_whitespace();
        let (Some(action), Some(resource)) = (parts.next(), parts.next()) else {
            return Err(format!("{line:?} is not `action resource`"));
        };
        let leading_keys = match parts.next() {
            Some(keys) => keys
                .strip_prefix("leading-keys=")
                .ok_or_else(|| format!("{line:?}: expected leading-keys="))?
                .split(',')
                .map(str::to_owned)
                .collect(),
            None => BTreeSet::new(),
        };
        Ok(Self {
            action: action.to_owned(),
            resource: resource.parse()?,
            leading_keys,
        })
    }
}

/// Key patterns by action and resource.
type Record = BTreeMap<(String, Resource), BTreeSet<String>>;

/// The actions issued so far; clone it into every client builder.
#[derive(Clone, Debug, Default)]
pub struct IssuedActions {
    issued: Arc<Mutex<Record>>,
}

impl IssuedActions {
    /// Nothing issued yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `action` on `resource`, touching items of these key patterns.
    pub fn record(&self, action: &str, resource: Resource, leading_keys: Vec<String>) {
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued
            .entry((action.to_owned(), resource))
            .or_default()
            .extend(leading_keys);
    }

    /// Every action and resource issued, in order.
    pub fn snapshot(&self) -> Vec<IssuedAction> {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((action, resource), keys)| IssuedAction {
                action: action.clone(),
                resource: resource.clone(),
                leading_keys: keys.clone(),
            })
            .collect()
    }

    /// Whether nothing was issued.
    pub fn is_empty(&self) -> bool {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// The interceptor to add to a client of the service whose IAM prefix is `service` (`sqs`):
    /// the prefix names an operation the recorder has no mapping for.
    pub fn interceptor(&self, service: &'static str) -> IssuedActionsInterceptor {
        IssuedActionsInterceptor {
            issued: self.clone(),
            service,
        }
    }

    fn record_input(&self, service: &str, input: &Input) {
        let found = match service {
            "sqs" => sqs(input),
            "sns" => sns(input),
            "dynamodb" => dynamodb::actions(input),
            "ses" => ses(input),
            "ssm" => ssm(input),
            _ => Vec::new(),
        };
        if found.is_empty() {
            let operation = operation_name(input);
            self.record(&format!("{service}:{operation}"), Resource::Any, Vec::new());
        }
        for (action, resource, keys) in found {
            self.record(action, resource, keys);
        }
    }
}

impl fmt::Display for IssuedActions {
    /// One line per action and resource.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for issued in self.snapshot() {
            writeln!(f, "{issued}")?;
        }
        Ok(())
    }
}

/// Reads the lines `fleet run` printed under [`REPORT_TITLE`] back (up to the first blank line).
///
/// # Errors
/// When the title is missing or a line cannot be read.
pub fn parse_report(stdout: &str) -> Result<Vec<IssuedAction>, String> {
    let start = stdout
        .find(REPORT_TITLE)
        .ok_or_else(|| format!("no {REPORT_TITLE:?} in the output"))?;
    stdout[start + REPORT_TITLE.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// The SDK interceptor behind [`IssuedActions`].
#[derive(Clone, Debug)]
pub struct IssuedActionsInterceptor {
    issued: IssuedActions,
    service: &'static str,
}

impl Intercept for IssuedActionsInterceptor {
    fn name(&self) -> &'static str {
        "fleet-iam-actions"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Before execution: once per operation (retries are the same action), and while the
        // input is still there to read.
        self.issued.record_input(self.service, context.input());
        Ok(())
    }
}

/// The operation of an input the recorder has no mapping for, from its type's name (the first
/// word of its `Debug`, `CreateQueueInput { .. }` → `CreateQueue`).
fn operation_name(input: &Input) -> String {
    let text = format!("{input:?}");
    let text = text.rsplit_once("]:").map_or(text.as_str(), |(_, t)| t);
    let name: String = text
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    name.strip_suffix("Input").unwrap_or(&name).to_owned()
}

type Found = Vec<(&'static str, Resource, Vec<String>)>;

/// The queue of a URL (`https://sqs.../123456789012/fleet-orders` → `fleet-orders`).
fn queue_of(url: Option<&String>) -> Resource {
    let url = url.map_or("", String::as_str);
    Resource::Queue(url.rsplit('/').next().unwrap_or(url).to_owned())
}

fn sqs(input: &Input) -> Found {
    use aws_sdk_sqs::operation as op;
    let on = |action, url: &Option<String>| vec![(action, queue_of(url.as_ref()), Vec::new())];
    if let Some(i) = input.downcast_ref::<op::receive_message::ReceiveMessageInput>() {
        return on("sqs:ReceiveMessage", &i.queue_url);
    }
    if let Some(i) = input.downcast_ref::<op::delete_message_batch::DeleteMessageBatchInput>() {
        return on("sqs:DeleteMessage", &i.queue_url);
    }
    if let Some(i) = input.downcast_ref::<op::delete_message::DeleteMessageInput>() {
        return on("sqs:DeleteMessage", &i.queue_url);
    }
    if let Some(i) = input
        .downcast_ref::<op::change_message_visibility_batch::ChangeMessageVisibilityBatchInput>()
    {
        return on("sqs:ChangeMessageVisibility", &i.queue_url);
    }
    if let Some(i) =
        input.downcast_ref::<op::change_message_visibility::ChangeMessageVisibilityInput>()
    {
        return on("sqs:ChangeMessageVisibility", &i.queue_url);
    }
    if let Some(i) = input.downcast_ref::<op::send_message_batch::SendMessageBatchInput>() {
        return on("sqs:SendMessage", &i.queue_url);
    }
    if let Some(i) = input.downcast_ref::<op::send_message::SendMessageInput>() {
        return on("sqs:SendMessage", &i.queue_url);
    }
    if let Some(i) = input.downcast_ref::<op::get_queue_attributes::GetQueueAttributesInput>() {
        return on("sqs:GetQueueAttributes", &i.queue_url);
    }
    if let Some(i) = input.downcast_ref::<op::get_queue_url::GetQueueUrlInput>() {
        let name = i.queue_name.clone().unwrap_or_default();
        return vec![("sqs:GetQueueUrl", Resource::Queue(name), Vec::new())];
    }
    Vec::new()
}

/// The topic of an ARN (`arn:aws:sns:us-east-1:123456789012:fleet-events` → `fleet-events`).
fn topic_of(arn: &Option<String>) -> Resource {
    let arn = arn.as_deref().unwrap_or_default();
    Resource::Topic(arn.rsplit(':').next().unwrap_or(arn).to_owned())
}

fn sns(input: &Input) -> Found {
    use aws_sdk_sns::operation as op;
    if let Some(i) = input.downcast_ref::<op::publish_batch::PublishBatchInput>() {
        return vec![("sns:Publish", topic_of(&i.topic_arn), Vec::new())];
    }
    if let Some(i) = input.downcast_ref::<op::publish::PublishInput>() {
        return vec![("sns:Publish", topic_of(&i.topic_arn), Vec::new())];
    }
    if let Some(i) = input.downcast_ref::<op::get_topic_attributes::GetTopicAttributesInput>() {
        return vec![("sns:GetTopicAttributes", topic_of(&i.topic_arn), Vec::new())];
    }
    Vec::new()
}

fn ses(input: &Input) -> Found {
    use aws_sdk_sesv2::operation as op;
    if let Some(i) = input.downcast_ref::<op::send_email::SendEmailInput>() {
        let from = sender_address(i.from_email_address.as_deref().unwrap_or_default());
        let mut out: Found = vec![("ses:SendEmail", Resource::SesIdentity(from), Vec::new())];
        if let Some(set) = &i.configuration_set_name {
            out.push((
                "ses:SendEmail",
                Resource::SesConfigurationSet(set.clone()),
                Vec::new(),
            ));
        }
        return out;
    }
    if input
        .downcast_ref::<op::get_account::GetAccountInput>()
        .is_some()
    {
        return vec![("ses:GetAccount", Resource::Any, Vec::new())];
    }
    Vec::new()
}

fn ssm(input: &Input) -> Found {
    use aws_sdk_ssm::operation as op;
    let read = |action, names: Vec<String>, decrypt: Option<bool>| {
        let mut out: Found = Vec::new();
        for name in names {
            if decrypt == Some(true) {
                out.push(("kms:Decrypt", Resource::KmsViaSsm(name.clone()), Vec::new()));
            }
            out.push((action, Resource::Parameters(name), Vec::new()));
        }
        out
    };
    if let Some(i) = input.downcast_ref::<op::get_parameter::GetParameterInput>() {
        let names = i.name.clone().into_iter().collect();
        return read("ssm:GetParameter", names, i.with_decryption);
    }
    if let Some(i) = input.downcast_ref::<op::get_parameters::GetParametersInput>() {
        let names = i.names.clone().unwrap_or_default();
        return read("ssm:GetParameters", names, i.with_decryption);
    }
    Vec::new()
}

/// The key pattern of an item's partition key (the single table's `PK`), if it has one.
fn item_key(item: Option<&HashMap<String, AttributeValue>>) -> Vec<String> {
    item.and_then(|i| i.get(crate::table::PK))
        .and_then(|v| v.as_s().ok())
        .map(|v| vec![leading_key_pattern(v)])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
