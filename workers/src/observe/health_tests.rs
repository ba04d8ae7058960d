use super::*;

const AFTER: Duration = Duration::from_secs(30);

/// A consumer polling happily.
fn polling() -> ConsumerStatus {
    ConsumerStatus {
        queue: "orders".into(),
        dead_letter_queue: "orders-dlq".into(),
        polling: true,
        since_last_receive: Some(Duration::from_secs(1)),
        receive_failures: 0,
        stopping: false,
        paused: None,
        stalled: None,
        in_flight: 0,
    }
}

fn one(status: ConsumerStatus) -> Vec<(String, ConsumerStatus)> {
    vec![("orders".to_owned(), status)]
}

#[test]
fn a_polling_worker_is_ready() {
    let v = readiness(Phase::Running, &one(polling()), AFTER);
    assert_eq!(
        v,
        Verdict {
            ok: true,
            body: "orders: ready\n".into()
        }
    );
}

#[test]
fn a_starting_or_draining_process_is_not_ready_whatever_its_workers_say() {
    for phase in [Phase::Starting, Phase::Draining] {
        let v = readiness(phase, &one(polling()), AFTER);
        assert!(!v.ok, "{phase:?}");
    }
    assert_eq!(readiness(Phase::Draining, &[], AFTER).body, "draining\n");
    assert_eq!(readiness(Phase::Starting, &[], AFTER).body, "starting\n");
}

#[test]
fn a_running_process_without_workers_is_not_ready() {
    assert!(!readiness(Phase::Running, &[], AFTER).ok);
}

#[test]
fn each_reason_makes_a_worker_unready() {
    let cases: Vec<(ConsumerStatus, &str)> = vec![
        (
            ConsumerStatus {
                queue: String::new(),
                ..polling()
            },
            "not resolved",
        ),
        (
            ConsumerStatus {
                dead_letter_queue: String::new(),
                ..polling()
            },
            "not resolved",
        ),
        (
            ConsumerStatus {
                stopping: true,
                ..polling()
            },
            "stopping",
        ),
        (
            ConsumerStatus {
                paused: Some("AccountSendingPausedException".into()),
                ..polling()
            },
            "paused: AccountSendingPausedException",
        ),
        (
            ConsumerStatus {
                polling: false,
                since_last_receive: None,
                ..polling()
            },
            "polling has not started",
        ),
        (
            ConsumerStatus {
                receive_failures: 4,
                since_last_receive: Some(Duration::from_secs(31)),
                ..polling()
            },
            "receives failing for 31s (4 in a row)",
        ),
    ];
    for (status, why) in cases {
        let reason = unready_reason(&status, AFTER);
        assert!(
            reason.as_deref().is_some_and(|r| r.contains(why)),
            "{status:?}: {reason:?}"
        );
        let v = readiness(Phase::Running, &one(status), AFTER);
        assert!(!v.ok);
        assert!(v.body.starts_with("orders: not ready: "), "{}", v.body);
    }
}

#[test]
fn receives_failing_for_less_than_unready_after_keep_a_worker_ready() {
    let status = ConsumerStatus {
        receive_failures: 3,
        since_last_receive: Some(AFTER),
        ..polling()
    };
    assert_eq!(unready_reason(&status, AFTER), None);
}

#[test]
fn a_long_quiet_poll_without_failures_keeps_a_worker_ready() {
    let status = ConsumerStatus {
        since_last_receive: Some(Duration::from_secs(600)),
        ..polling()
    };
    assert_eq!(unready_reason(&status, AFTER), None);
}

#[test]
fn one_unready_worker_makes_the_process_unready_and_each_worker_has_a_line() {
    let workers = vec![
        ("orders".to_owned(), polling()),
        (
            "email".to_owned(),
            ConsumerStatus {
                paused: Some("quota".into()),
                ..polling()
            },
        ),
    ];
    let v = readiness(Phase::Running, &workers, AFTER);
    assert!(!v.ok);
    assert_eq!(v.body, "orders: ready\nemail: not ready: paused: quota\n");
}

#[test]
fn a_starting_or_draining_process_is_alive() {
    for phase in [Phase::Starting, Phase::Draining] {
        assert!(
            liveness(phase, &[], |_| Some("stuck".into())).ok,
            "{phase:?}"
        );
    }
}

#[test]
fn a_stalled_consumer_makes_the_process_not_alive() {
    let email = ConsumerStatus {
        queue: "email".into(),
        ..polling()
    };
    let workers = vec![
        ("orders".to_owned(), polling()),
        ("email".to_owned(), email),
    ];
    let v = liveness(Phase::Running, &workers, |s| {
        (s.queue == "orders").then(|| "receive on the wire for 40s".to_owned())
    });
    assert!(!v.ok);
    assert_eq!(
        v.body,
        "orders: not alive: receive on the wire for 40s\nemail: alive\n"
    );
}

#[test]
fn running_consumers_whose_loops_turn_are_alive() {
    let v = liveness(Phase::Running, &one(polling()), stalled_reason);
    assert_eq!(
        v,
        Verdict {
            ok: true,
            body: "orders: alive\n".into()
        }
    );
}

#[test]
fn an_unready_worker_is_still_alive() {
    let paused = ConsumerStatus {
        paused: Some("quota".into()),
        receive_failures: 9,
        since_last_receive: Some(Duration::from_secs(300)),
        ..polling()
    };
    assert!(liveness(Phase::Running, &one(paused), stalled_reason).ok);
}

#[test]
fn the_engine_s_stalled_reason_is_the_liveness_reason() {
    let stuck = ConsumerStatus {
        stalled: Some("a receive has been on the wire for 55s".into()),
        ..polling()
    };
    let v = liveness(Phase::Running, &one(stuck), stalled_reason);
    assert!(!v.ok);
    assert!(v.body.contains("on the wire for 55s"), "{}", v.body);
    assert!(liveness(Phase::Running, &one(polling()), stalled_reason).ok);
}
