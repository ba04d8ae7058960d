//! Splitting, sharding, tokens and cancellation verdicts.

use super::*;

fn event(id: &str, keys: &[&str]) -> EventDeltas {
    EventDeltas::new(id, keys.iter().map(|k| ((*k).to_owned(), 1)))
}

fn reason(code: &str) -> Reason {
    Reason {
        code: Some(code.to_owned()),
        message: Some(format!("{code} said")),
    }
}

#[test]
fn a_batch_of_ten_fits_one_transaction() {
    let events: Vec<_> = (0..10)
        .map(|i| {
            event(
                &format!("e{i}"),
                &[&format!("k{i}a"), &format!("k{i}b"), "shared"],
            )
        })
        .collect();
    let refs: Vec<_> = events.iter().collect();
    let groups = split(&refs, MAX_ACTIONS);
    assert_eq!(groups.len(), 1);
    assert_eq!(Plan::new(groups[0].clone(), 4).actions(), 10 + 21);
}

#[test]
fn more_than_a_hundred_actions_are_split_by_events_each_group_within_the_limit() {
    // 30 events with 4 counters of their own: 150 actions.
    let events: Vec<_> = (0..30)
        .map(|i| {
            let keys: Vec<String> = (0..4).map(|k| format!("e{i}k{k}")).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            event(&format!("e{i}"), &keys)
        })
        .collect();
    let refs: Vec<_> = events.iter().collect();
    let groups = split(&refs, MAX_ACTIONS);
    assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [20, 10]);
    for g in &groups {
        assert!(Plan::new(g.clone(), 4).actions() <= MAX_ACTIONS);
    }
    let flat: Vec<&str> = groups
        .iter()
        .flatten()
        .map(|e| e.event_id.as_str())
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(flat, ids, "in order, each event once");
}

#[test]
fn shared_counters_count_once_towards_the_limit() {
    let events: Vec<_> = (0..60)
        .map(|i| event(&format!("e{i}"), &["a", "b", "c"]))
        .collect();
    let refs: Vec<_> = events.iter().collect();
    let groups = split(&refs, MAX_ACTIONS);
    assert_eq!(groups.iter().map(Vec::len).collect::<Vec<_>>(), [60]);
    assert_eq!(Plan::new(groups[0].clone(), 4).actions(), 63);
    let small = split(&refs, 10);
    let sizes: Vec<usize> = small.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [7, 7, 7, 7, 7, 7, 7, 7, 4],
        "7 events + 3 counters per group"
    );
}

#[test]
fn an_event_alone_over_the_limit_still_gets_its_own_group() {
    let keys: Vec<String> = (0..5).map(|k| format!("k{k}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let events = [event("a", &keys), event("b", &keys)];
    let refs: Vec<_> = events.iter().collect();
    assert_eq!(split(&refs, 3).len(), 2);
    assert!(split(&[], MAX_ACTIONS).is_empty());
}

#[test]
fn shards_are_stable_and_spread() {
    assert_eq!(shard_of("e-1", 4), shard_of("e-1", 4));
    assert_eq!(shard_of("anything", 1), 0);
    assert_eq!(shard_of("anything", 0), 0, "no shards configured means one");
    let mut seen = [0usize; 4];
    for _ in 0..400 {
        seen[shard_of(&uuid::Uuid::new_v4().to_string(), 4) as usize] += 1;
    }
    assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
}

#[test]
fn the_token_is_fixed_by_the_action_set_and_changes_with_any_part_of_it() {
    let events = [event("a", &["x", "y"]), event("b", &["y"])];
    let plan = Plan::new(events.iter().collect(), 4);
    let token = plan.token("fleet", 100);
    assert_eq!(token.len(), 36);
    assert_eq!(
        token,
        Plan::new(events.iter().collect(), 4).token("fleet", 100)
    );
    assert_ne!(token, plan.token("other", 100));
    assert_ne!(token, plan.token("fleet", 101));
    assert_ne!(token, Plan::new(vec![&events[0]], 4).token("fleet", 100));
    let more = [event("a", &["x", "y"]), event("b", &["y", "z"])];
    assert_ne!(
        token,
        Plan::new(more.iter().collect(), 4).token("fleet", 100)
    );
}

#[test]
fn the_plan_sums_deltas_per_counter_on_the_first_events_shard() {
    let events = [event("a", &["x", "y"]), event("b", &["y"])];
    let plan = Plan::new(events.iter().collect(), 8);
    assert_eq!(plan.counters, [("x".to_owned(), 1), ("y".to_owned(), 2)]);
    assert_eq!(plan.shard, shard_of("a", 8));
    assert_eq!(plan.actions(), 4);
}

#[test]
fn a_failed_dedup_condition_marks_a_duplicate_and_nothing_else() {
    let events = [event("a", &["x"]), event("b", &["x"]), event("c", &["y"])];
    let plan = Plan::new(events.iter().collect(), 4);
    let none = Reason {
        code: Some("None".into()),
        message: None,
    };
    let reasons = [
        none.clone(),
        reason("ConditionalCheckFailed"),
        none.clone(),
        none.clone(),
        none,
    ];
    let verdicts = plan.verdicts(&reasons);
    assert_eq!(
        verdicts.into_iter().collect::<Vec<_>>(),
        [(1, Verdict::Duplicate)]
    );
}

#[test]
fn a_conflict_on_a_counter_fails_every_event_that_adds_to_it_but_a_duplicate_stays_one() {
    let events = [
        event("a", &["x"]),
        event("b", &["x", "y"]),
        event("c", &["y"]),
    ];
    let plan = Plan::new(events.iter().collect(), 4);
    // Actions: puts a, b, c; then counters x, y.
    let reasons = [
        Reason::default(),
        reason("ConditionalCheckFailed"),
        Reason::default(),
        reason("TransactionConflict"),
        Reason::default(),
    ];
    let verdicts = plan.verdicts(&reasons);
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[&1], Verdict::Duplicate);
    assert_eq!(
        verdicts[&0],
        Verdict::Failed {
            label: "transaction_conflict",
            why: "TransactionConflict: TransactionConflict said".into()
        }
    );
}

#[test]
fn throttled_puts_fail_their_event_and_unknown_codes_fail_as_cancelled() {
    let events = [event("a", &["x"]), event("b", &["x"])];
    let plan = Plan::new(events.iter().collect(), 4);
    let verdicts = plan.verdicts(&[reason("ThrottlingError"), reason("ValidationError")]);
    assert!(matches!(
        verdicts[&0],
        Verdict::Failed {
            label: "dynamodb_throttled",
            ..
        }
    ));
    assert!(matches!(
        verdicts[&1],
        Verdict::Failed {
            label: "transaction_cancelled",
            ..
        }
    ));
    let verdicts = plan.verdicts(&[reason("ProvisionedThroughputExceeded")]);
    assert!(matches!(
        verdicts[&0],
        Verdict::Failed {
            label: "dynamodb_throttled",
            ..
        }
    ));
}

#[test]
fn a_cancellation_without_reasons_fails_every_event() {
    let events = [event("a", &["x"]), event("b", &["x"])];
    let plan = Plan::new(events.iter().collect(), 4);
    for reasons in [vec![], vec![Reason::default(); 3]] {
        let verdicts = plan.verdicts(&reasons);
        assert_eq!(verdicts.len(), 2);
        assert!(verdicts.values().all(|v| matches!(
            v,
            Verdict::Failed {
                label: "transaction_cancelled",
                ..
            }
        )));
    }
}
