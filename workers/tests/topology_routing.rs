//! The subscriptions of `deploy/topology.toml` route every Fleet type where its workers expect
//! it, on the embedded transport and on moto: `fleet-email` gets `email.requested` only,
//! `fleet-analytics` everything else (`email.sent` included), `fleet-orders` the `order.*` types.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use fleet_bus::embedded::EmbeddedBus;
use fleet_bus::scenarios::support::peek_all;
use fleet_bus::scenarios::unique_name;
use fleet_bus::{OutgoingMessage, Topology, Transport, provision};
use fleet_schemas::{decode, event_types};

/// One message of every Fleet type at its current version, from the schemas crate's fixtures,
/// with the attributes Fleet's producer sets.
fn one_of_each_type() -> Vec<OutgoingMessage> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/tests/fixtures");
    event_types()
        .into_iter()
        .map(|(t, v)| {
            let body = std::fs::read_to_string(dir.join(format!("{t}.v{v}.json"))).unwrap();
            let envelope = decode(&body).unwrap();
            OutgoingMessage {
                attributes: envelope.attributes(),
                body,
                ..OutgoingMessage::default()
            }
        })
        .collect()
}

/// Where each type must arrive: queue (unsuffixed) → types.
fn expected() -> BTreeMap<&'static str, BTreeSet<String>> {
    let all: Vec<String> = event_types()
        .into_iter()
        .map(|(t, _)| t.to_owned())
        .collect();
    assert!(all.iter().any(|t| t == "email.sent"), "{all:?}");
    let only = |keep: &dyn Fn(&str) -> bool| all.iter().filter(|t| keep(t)).cloned().collect();
    BTreeMap::from([
        ("fleet-email", only(&|t| t == "email.requested")),
        ("fleet-analytics", only(&|t| t != "email.requested")),
        ("fleet-orders", only(&|t| t.starts_with("order."))),
    ])
}

/// Publishes one message of each type to the topic and reads back the types on each queue.
async fn routed(
    t: &dyn Transport,
    name: &dyn Fn(&str) -> String,
) -> BTreeMap<&'static str, BTreeSet<String>> {
    let topic = t.topic(&name("fleet-events")).await.unwrap();
    for message in one_of_each_type() {
        topic.publish(message).await.unwrap();
    }
    let mut out = BTreeMap::new();
    for queue in expected().into_keys() {
        let types = peek_all(t, &name(queue))
            .await
            .iter()
            .map(|m| decode(&m.body).unwrap().header.event_type)
            .collect();
        out.insert(queue, types);
    }
    out
}

#[tokio::test]
async fn every_type_reaches_its_queues_on_the_embedded_transport() {
    let bus = EmbeddedBus::new();
    bus.provision(&Topology::from_toml(fleet_workers::demo::TOPOLOGY).unwrap())
        .await
        .unwrap();
    assert_eq!(routed(&bus, &|n: &str| n.to_owned()).await, expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_reaches_its_queues_on_moto() {
    let suffix = unique_name("route");
    let name = |n: &str| format!("{n}-{suffix}");
    let mut topology = Topology::from_toml(fleet_workers::demo::TOPOLOGY).unwrap();
    for q in &mut topology.queues {
        q.name = name(&q.name);
        if let Some(dl) = &mut q.dead_letter {
            dl.queue = name(&dl.queue);
        }
    }
    for topic in &mut topology.topics {
        topic.name = name(&topic.name);
        for s in &mut topic.subscriptions {
            s.queue = name(&s.queue);
        }
    }
    topology.tables.clear();
    let transport = fleet_tests::moto::transport().await;
    provision(&transport, &topology).await.unwrap();
    assert_eq!(routed(&transport, &name).await, expected());
}
