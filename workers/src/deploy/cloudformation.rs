//! `fleet topology export --format cloudformation`: the topology's resources as a stack.
//! (Being built for issue 12; see `workers/src/deploy/mod.rs`.)

use super::{ExportContext, Template};

/// The template for `ctx`: the topology's resources, each worker's role and, for a platform,
/// what runs the workers.
pub fn template(ctx: &ExportContext<'_>) -> Template {
    let mut t = Template {
        description: "Fleet: queues, topics, subscriptions, tables and worker roles".into(),
        ..Template::default()
    };
    super::platform::add(&mut t, ctx);
    t
}
