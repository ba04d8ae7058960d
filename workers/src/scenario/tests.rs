use std::collections::BTreeMap;

use super::*;

#[test]
fn the_same_seed_gives_the_same_scenario() {
    let a = Scenario::generate(7, 200, 1000, 0.1);
    let b = Scenario::generate(7, 200, 1000, 0.1);
    let ids = |s: &Scenario| -> Vec<String> {
        s.publish
            .iter()
            .map(|&i| s.events[i].envelope.header.id.clone())
            .collect()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.orders, b.orders);
    assert_ne!(ids(&a), ids(&Scenario::generate(8, 200, 1000, 0.1)));
}

#[test]
fn a_thousand_events_for_two_hundred_orders_with_a_tenth_duplicates() {
    let s = Scenario::generate(1, 200, 1000, 0.1);
    assert_eq!(s.orders.len(), 200);
    assert_eq!(s.publish.len(), 1000);
    assert_eq!(s.events.len(), 900);
    let mut seen = BTreeMap::new();
    for &i in &s.publish {
        *seen.entry(i).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 900, "every distinct event is published");
    let ids: std::collections::BTreeSet<&str> = s
        .events
        .iter()
        .map(|e| e.envelope.header.id.as_str())
        .collect();
    assert_eq!(ids.len(), 900, "ids are unique");
}

#[test]
fn refunds_never_reach_what_was_paid_unless_the_story_says_so() {
    let s = Scenario::generate(3, 200, 1000, 0.1);
    for o in &s.orders {
        assert!(o.refunded_cents <= o.paid_cents, "{o:?}");
        match o.story {
            Story::Refunded => assert_eq!(o.status, "refunded"),
            Story::PartlyRefunded => {
                assert!(
                    o.refunded_cents < o.paid_cents && o.refunded_cents > 0,
                    "{o:?}"
                );
                assert_eq!(o.status, "shipped");
            }
            Story::WrongAmount => assert_eq!((o.status, o.paid_cents), ("placed", 0)),
            Story::OverRefund => assert_eq!((o.status, o.refunded_cents), ("paid", 0)),
            Story::ShippedAfterCancel | Story::Cancelled => assert_eq!(o.status, "cancelled"),
            Story::Shipped => assert_eq!(o.status, "shipped"),
            Story::Paid => assert_eq!(o.status, "paid"),
            Story::Placed => assert_eq!(o.status, "placed"),
        }
    }
    let refused = s
        .events
        .iter()
        .filter(|e| e.expect == Expect::Refused)
        .count();
    assert!(refused > 0, "a few impossible events are in the stream");
}

#[test]
fn every_order_is_placed_exactly_once_and_events_are_valid() {
    let s = Scenario::generate(5, 50, 250, 0.1);
    for (i, o) in s.orders.iter().enumerate() {
        let placed = s
            .events
            .iter()
            .filter(|e| e.order == i && e.envelope.payload.event_type() == "order.placed")
            .count();
        assert_eq!(placed, 1, "{}", o.order_id);
    }
    for e in &s.events {
        e.envelope.header.check().unwrap();
        e.envelope.payload.validate().unwrap();
    }
}

#[test]
fn merged_waves_keep_every_wave_and_sum_their_counters() {
    let waves: Vec<Scenario> = (0..3)
        .map(|w| Scenario::generate(100 + w, 20, 100, 0.1))
        .collect();
    let merged = Scenario::merge(&waves);
    assert_eq!(merged.seed, 100);
    assert_eq!(merged.orders.len(), 60);
    assert_eq!(merged.publish.len(), 300);
    assert_eq!(
        merged.events.len(),
        waves.iter().map(|w| w.events.len()).sum::<usize>()
    );
    // Wave after wave, in each wave's own order, each event with its own order.
    let published: Vec<String> = merged
        .publish
        .iter()
        .map(|&i| merged.events[i].envelope.header.id.clone())
        .collect();
    let by_wave: Vec<String> = waves
        .iter()
        .flat_map(|w| {
            w.publish
                .iter()
                .map(|&i| w.events[i].envelope.header.id.clone())
        })
        .collect();
    assert_eq!(published, by_wave);
    for e in &merged.events {
        let order = &merged.orders[e.order].order_id;
        assert!(e.envelope.header.id.contains(order.as_str()), "{order}");
    }
    let ids: std::collections::BTreeSet<_> = merged
        .events
        .iter()
        .map(|e| &e.envelope.header.id)
        .collect();
    assert_eq!(
        ids.len(),
        merged.events.len(),
        "ids are unique across waves"
    );
    let mut summed = model::Counters::new();
    for w in &waves {
        for (k, v) in w.expected_counters() {
            *summed.entry(k).or_default() += v;
        }
    }
    assert_eq!(merged.expected_counters(), summed);
    assert_eq!(
        merged.applied(),
        waves.iter().map(Scenario::applied).sum::<usize>()
    );
}
