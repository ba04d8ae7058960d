//! Each worker's IAM permissions, derived from the AWS operations its code issues, and the role
//! the exported template gives it.
//!
//! - [`permissions`]: what one worker's code calls, on which resources, from `fleet run`'s
//!   configuration and the topology: the engine's operations on its queue and dead-letter queue
//!   (the same for every worker), then its store's, publisher's and mailer's.
//! - [`role`]: the `AWS::IAM::Role` of that worker (`Role<Worker>`): the ECS task role or EC2
//!   instance role, with one inline policy granting exactly those permissions on resources named
//!   by ARN ([`crate::deploy::queue_arn`] and the other ARN expressions).
//! - [`compare`]: the two-way check of a role against what a process really issued
//!   ([`crate::iam_actions`]), used by the end-to-end tests: nothing missing, nothing extra.
//!
//! Actions are IAM's, not the SDK's: a batch call needs the action of one entry
//! (`DeleteMessageBatch` → `sqs:DeleteMessage`), a transaction the action of each item
//! (`TransactWriteItems` → `dynamodb:PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem`),
//! and `PublishBatch` `sns:Publish`. `sts:GetCallerIdentity`, which the SNS transport asks once to
//! complete topic ARNs, needs no permission (AWS answers it even under an explicit deny), so no
//! role grants it.

mod compare;
mod declare;
mod policy;

pub use compare::{Diff, compare};
pub use declare::{USE_KMS, check, leading_key_pattern, permissions, sender_address, ssm_path};
pub use policy::{policy_document, role};

use std::fmt;
use std::str::FromStr;

/// What an action is allowed on, by name; [`role`] turns it into ARNs of the stack's resources.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// An SQS queue.
    Queue(String),
    /// An SNS topic.
    Topic(String),
    /// A DynamoDB table.
    Table(String),
    /// A DynamoDB index (a `Query` on it is authorised on the index's ARN).
    Index {
        /// The table.
        table: String,
        /// The index.
        index: String,
    },
    /// SSM parameters: granted on a path (`/fleet/email`, every parameter under it), issued on
    /// one parameter's full name.
    Parameters(String),
    /// An SES identity: the sender's address; the grant covers the address and its domain,
    /// whichever of the two the account verified.
    SesIdentity(String),
    /// An SES configuration set a send names.
    SesConfigurationSet(String),
    /// Any KMS key, only through SSM and only for the parameters under a path (granted), or for
    /// one parameter (issued): a `SecureString` is decrypted by SSM on the caller's behalf.
    KmsViaSsm(String),
    /// The stack's queue key (`QueueKey`), only through SQS: a KMS-encrypted queue needs it to
    /// receive from and send to.
    KmsViaSqs,
    /// The tasks of the stack's ECS cluster: the ECS agent updates a task's scale-in protection
    /// with the task role's credentials when `fleet run` asks it to.
    EcsTasks,
    /// Every resource: only for actions AWS cannot scope (`ses:GetAccount`).
    Any,
}

impl Resource {
    /// Whether a grant on `self` allows an action issued on `issued`.
    pub fn covers(&self, issued: &Resource) -> bool {
        let under = |path: &str, name: &str| {
            name == path || name.starts_with(&format!("{}/", path.trim_end_matches('/')))
        };
        match (self, issued) {
            (Resource::Parameters(path), Resource::Parameters(name))
            | (Resource::KmsViaSsm(path), Resource::KmsViaSsm(name)) => under(path, name),
            _ => self == issued,
        }
    }
}

impl fmt::Display for Resource {
    /// `kind:name`, the form `fleet run` prints and [`Resource::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Queue(n) => write!(f, "queue:{n}"),
            Resource::Topic(n) => write!(f, "topic:{n}"),
            Resource::Table(n) => write!(f, "table:{n}"),
            Resource::Index { table, index } => write!(f, "index:{table}/{index}"),
            Resource::Parameters(n) => write!(f, "parameter:{n}"),
            Resource::SesIdentity(n) => write!(f, "identity:{n}"),
            Resource::SesConfigurationSet(n) => write!(f, "configuration-set:{n}"),
            Resource::KmsViaSsm(n) => write!(f, "kms-via-ssm:{n}"),
            Resource::KmsViaSqs => write!(f, "kms-via-sqs:QueueKey"),
            Resource::EcsTasks => write!(f, "ecs-tasks:Cluster"),
            Resource::Any => write!(f, "*"),
        }
    }
}

impl FromStr for Resource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(Resource::Any);
        }
        let (kind, name) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not kind:name"))?;
        let name = name.to_owned();
        Ok(match kind {
            "queue" => Resource::Queue(name),
            "topic" => Resource::Topic(name),
            "table" => Resource::Table(name),
            "index" => {
                let (table, index) = name
                    .rsplit_once('/')
                    .ok_or_else(|| format!("{s:?}: an index is table/index"))?;
                Resource::Index {
                    table: table.to_owned(),
                    index: index.to_owned(),
                }
            }
            "parameter" => Resource::Parameters(name),
            "identity" => Resource::SesIdentity(name),
            "configuration-set" => Resource::SesConfigurationSet(name),
            "kms-via-ssm" => Resource::KmsViaSsm(name),
            "kms-via-sqs" => Resource::KmsViaSqs,
            "ecs-tasks" => Resource::EcsTasks,
            other => return Err(format!("{s:?}: unknown kind {other}")),
        })
    }
}

/// One action a worker's code issues, on one resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// The IAM action, `sqs:ReceiveMessage`.
    pub action: String,
    /// What it is issued on.
    pub resource: Resource,
    /// The partition-key patterns of the items it touches (`USER#*`), for the
    /// `dynamodb:LeadingKeys` condition; `None` where the action touches no item.
    pub leading_keys: Option<Vec<String>>,
    /// The template condition the grant depends on ([`USE_KMS`]), if any.
    pub when: Option<&'static str>,
}

impl Permission {
    /// `action` on `resource`, unconditionally.
    pub fn new(action: &str, resource: Resource) -> Self {
        Self {
            action: action.to_owned(),
            resource,
            leading_keys: None,
            when: None,
        }
    }

    /// Limited to items whose partition key matches one of `patterns`.
    #[must_use]
    pub fn leading_keys(mut self, patterns: &[String]) -> Self {
        let mut patterns = patterns.to_vec();
        patterns.sort();
        patterns.dedup();
        self.leading_keys = Some(patterns);
        self
    }

    /// Granted only when the template's `condition` holds.
    #[must_use]
    pub fn when(mut self, condition: &'static str) -> Self {
        self.when = Some(condition);
        self
    }
}

impl fmt::Display for Permission {
    /// `action resource [leading-keys=a,b] [when=Condition]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.resource)?;
        if let Some(keys) = &self.leading_keys {
            write!(f, " leading-keys={}", keys.join(","))?;
        }
        if let Some(when) = self.when {
            write!(f, " when={when}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
