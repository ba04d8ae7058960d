//! Applying a whole topology to a transport, in dependency order, and the report of what changed.

use std::fmt;

use super::{Declaration, Topology};
use crate::error::BusError;
use crate::transport::{Applied, Transport};

/// What [`provision`] did, resource by resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvisionReport {
    /// Each resource's label and what applying it did, in the order applied.
    pub entries: Vec<(String, Applied)>,
}

impl ProvisionReport {
    /// Whether anything was created or changed.
    pub fn changed(&self) -> bool {
        self.entries.iter().any(|(_, a)| *a != Applied::Unchanged)
    }
}

impl fmt::Display for ProvisionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (label, applied) in &self.entries {
            match applied {
                Applied::Created => writeln!(f, "created    {label}")?,
                Applied::Updated(what) => writeln!(f, "updated    {label} ({})", what.join(", "))?,
                Applied::Unchanged => writeln!(f, "unchanged  {label}")?,
            }
        }
        if self.changed() {
            write!(f, "{} resources, changes applied", self.entries.len())
        } else {
            write!(f, "{} resources, no changes", self.entries.len())
        }
    }
}

/// Creates or updates everything a topology declares: dead-letter queues first, then queues,
/// topics and subscriptions. Running it twice changes nothing the second time.
///
/// # Errors
/// When the topology is invalid (for SQS, or for the consumer: see
/// [`Topology::check_consumer_needs`]) or a call fails; resources applied before the failure stay.
pub async fn provision(
    transport: &dyn Transport,
    topology: &Topology,
) -> Result<ProvisionReport, BusError> {
    topology.validate()?;
    topology.check_consumer_needs()?;
    let full = topology.with_implicit_dead_letter_queues();
    let mut report = ProvisionReport::default();
    let mut declarations: Vec<Declaration<'_>> = full
        .queues_in_dependency_order()?
        .into_iter()
        .map(Declaration::Queue)
        .collect();
    for t in &full.topics {
        declarations.push(Declaration::Topic(t));
    }
    for t in &full.topics {
        for s in &t.subscriptions {
            declarations.push(Declaration::Subscription {
                topic: &t.name,
                subscription: s,
            });
        }
    }
    for d in declarations {
        let applied = transport.declare(&d).await?;
        report.entries.push((d.label(), applied));
    }
    Ok(report)
}
