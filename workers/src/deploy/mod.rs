//! What operators deploy, generated from the one declaration (`deploy/topology.toml`) and `fleet
//! run`'s configuration (`deploy/fleet.toml`), never written twice by hand:
//! - [`cloudformation`]: `fleet topology export --format cloudformation`, the queues, dead-letter
//!   queues, topics, subscriptions, queue policies, tables and encryption of a stack;
//! - [`iam`]: each worker's role, derived from the AWS operations its code issues, on resources
//!   named by ARN;
//! - [`platform`]: the ECS Fargate, EC2 and Lambda pieces (services, autoscaling on backlog per
//!   task, alarms, the Auto Scaling group and its lifecycle hook, functions and their event
//!   source mappings).
//!
//! The pieces meet in a [`Template`] and name each other's resources through [`logical_id`] and
//! the ARN expressions below, so a role's resource is always the resource the stack creates.

pub mod cloudformation;
pub mod iam;
pub mod platform;

use fleet_bus::topology::Topology;
use serde_json::{Map, Value, json};

use crate::run::{FleetConfig, WorkerKind};

/// Where the workers run, which decides what the exported template adds to the resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// Only the queues, topics, subscriptions, policies, tables and the workers' roles.
    #[default]
    None,
    /// ECS Fargate: a service per worker, autoscaling on backlog per task, alarms.
    Ecs,
    /// EC2: an Auto Scaling group per worker with the same backlog policy, a lifecycle hook for
    /// drains, alarms.
    Ec2,
    /// AWS Lambda: a function per worker (the `fleet-lambda` bootstrap) with an SQS event
    /// source mapping reporting batch item failures, reserved concurrency, alarms.
    Lambda,
}

/// What an export is made from.
#[derive(Clone, Copy, Debug)]
pub struct ExportContext<'a> {
    /// The declaration of queues, topics, subscriptions and tables.
    pub topology: &'a Topology,
    /// `fleet run`'s configuration: which workers run, on which queues and tables.
    pub config: &'a FleetConfig,
    /// Where the workers run.
    pub platform: Platform,
}

impl ExportContext<'_> {
    /// The workers the configuration enables, in [`WorkerKind::ALL`]'s order.
    pub fn workers(&self) -> Vec<WorkerKind> {
        self.config.chosen(&[])
    }
}

/// A CloudFormation template under construction (serialised as JSON, which CloudFormation and
/// cfn-lint read as they read YAML).
#[derive(Clone, Debug, Default)]
pub struct Template {
    /// `Description`.
    pub description: String,
    /// `Parameters`, by name.
    pub parameters: Map<String, Value>,
    /// `Conditions`, by name.
    pub conditions: Map<String, Value>,
    /// `Resources`, by logical id.
    pub resources: Map<String, Value>,
    /// `Outputs`, by name.
    pub outputs: Map<String, Value>,
}

impl Template {
    /// Adds a resource; a logical id used twice is a bug in the generator.
    ///
    /// # Panics
    /// When `id` is already taken.
    pub fn resource(&mut self, id: impl Into<String>, resource: Value) {
        let id = id.into();
        assert!(
            self.resources.insert(id.clone(), resource).is_none(),
            "logical id {id} generated twice"
        );
    }

    /// The template as CloudFormation reads it.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("AWSTemplateFormatVersion".into(), json!("2010-09-09"));
        out.insert("Description".into(), json!(self.description));
        for (key, section) in [
            ("Parameters", &self.parameters),
            ("Conditions", &self.conditions),
            ("Resources", &self.resources),
            ("Outputs", &self.outputs),
        ] {
            if !section.is_empty() {
                out.insert(key.into(), Value::Object(section.clone()));
            }
        }
        Value::Object(out)
    }
}

/// A resource's logical id: the kind, then the name's alphanumeric parts capitalised
/// (`Queue` + `fleet-orders-dlq` → `QueueFleetOrdersDlq`).
pub fn logical_id(kind: &str, name: &str) -> String {
    let mut out = kind.to_owned();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// The ARN of a queue: the stack's own when the topology declares it (or names it as a
/// dead-letter queue, which the stack creates too), else built from its name.
pub fn queue_arn(topology: &Topology, name: &str) -> Value {
    let in_stack = topology
        .queues
        .iter()
        .any(|q| q.name == name || q.dead_letter.as_ref().is_some_and(|dl| dl.queue == name));
    if in_stack {
        json!({ "Fn::GetAtt": [logical_id("Queue", name), "Arn"] })
    } else {
        json!({ "Fn::Sub": format!("arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{name}") })
    }
}

/// The ARN of a topic: the stack's own when the topology declares it, else built from its name.
pub fn topic_arn(topology: &Topology, name: &str) -> Value {
    if topology.topics.iter().any(|t| t.name == name) {
        json!({ "Ref": logical_id("Topic", name) })
    } else {
        json!({ "Fn::Sub": format!("arn:${{AWS::Partition}}:sns:${{AWS::Region}}:${{AWS::AccountId}}:{name}") })
    }
}

/// The ARN of a table, or of one of its indexes with `index`.
pub fn table_arn(topology: &Topology, name: &str, index: Option<&str>) -> Value {
    let declared = topology.tables.iter().any(|t| t.name == name);
    match (declared, index) {
        (true, None) => json!({ "Fn::GetAtt": [logical_id("Table", name), "Arn"] }),
        (true, Some(index)) => {
            json!({ "Fn::Sub": format!("${{{}.Arn}}/index/{index}", logical_id("Table", name)) })
        }
        (false, None) => json!({ "Fn::Sub": format!(
            "arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{name}"
        ) }),
        (false, Some(index)) => json!({ "Fn::Sub": format!(
            "arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{name}/index/{index}"
        ) }),
    }
}

/// The ARN of every SSM parameter under a path (`/fleet/email` → `.../parameter/fleet/email/*`).
pub fn ssm_path_arn(path: &str) -> Value {
    let path = path.trim_matches('/');
    json!({ "Fn::Sub": format!(
        "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/{path}/*"
    ) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_the_kind_and_the_capitalised_name() {
        assert_eq!(
            logical_id("Queue", "fleet-orders-dlq"),
            "QueueFleetOrdersDlq"
        );
        assert_eq!(logical_id("Queue", "jobs.fifo"), "QueueJobsFifo");
        assert_eq!(logical_id("Table", "fleet"), "TableFleet");
    }
}
