//! `fleet topology export --format cloudformation`: the topology's resources as a stack, so an
//! operator deploys `deploy/topology.toml` with CloudFormation instead of `fleet provision`
//! without writing a second copy of it.
//!
//! - [`messaging`]: queues with their redrive, dead-letter queues, topics, subscriptions (filter
//!   policy, raw delivery), and the queue and topic policies (TLS only; a topic may send to the
//!   queues it feeds);
//! - [`encryption`]: SSE-SQS by default, or with the `QueueEncryption` parameter at `kms` a
//!   customer key that SNS may use for the stack's topics;
//! - [`tables`]: the DynamoDB tables with their indexes, TTL, billing, backups and encryption.
//!
//! Logical ids are [`logical_id`](super::logical_id)s, so the roles and the platform pieces name
//! the same resources.

pub mod encryption;
pub mod messaging;
pub mod tables;

use super::{ExportContext, Template, logical_id};

/// The template for `ctx`: the topology's resources, each worker's role and, for a platform,
/// what runs the workers.
pub fn template(ctx: &ExportContext<'_>) -> Template {
    let mut t = Template {
        description: "Fleet: queues, topics, subscriptions, tables and worker roles, generated from the topology by `fleet topology export --format cloudformation` (do not edit)".into(),
        ..Template::default()
    };
    encryption::add(&mut t, ctx.topology);
    messaging::add(&mut t, ctx.topology);
    tables::add(&mut t, ctx.topology);
    for worker in ctx.workers() {
        t.resource(
            logical_id("Role", worker.as_str()),
            super::iam::role(worker, ctx),
        );
    }
    super::platform::add(&mut t, ctx);
    t
}

/// The template as the file operators deploy: pretty JSON ending in a newline.
pub fn render(t: &Template) -> String {
    let mut text = serde_json::to_string_pretty(&t.to_json())
        .expect("a template is plain JSON values, which always serialise");
    text.push('\n');
    text
}
