use super::*;

const MIN: Duration = Duration::from_secs(60);
const MS: fn(u64) -> Duration = Duration::from_millis;

/// Runs `policy` over `busy` looks every 100 ms from `t`, the agent answering `ok`; returns
/// the calls made with their times.
fn drive(policy: &mut Policy, t: Instant, busy: &[bool], ok: bool) -> Vec<(u64, Call)> {
    let mut calls = Vec::new();
    for (i, b) in busy.iter().enumerate() {
        let now = t + MS(100 * i as u64);
        if let Some(call) = policy.next(*b, now) {
            policy.done(call, ok, now, now);
            calls.push((100 * i as u64, call));
        }
    }
    calls
}

#[test]
fn an_idle_process_makes_no_call() {
    let mut p = Policy::new(60 * MIN);
    assert!(drive(&mut p, Instant::now(), &[false; 100], true).is_empty());
}

#[test]
fn a_busy_period_protects_once_and_releases_half_a_second_after_idle() {
    let mut p = Policy::new(60 * MIN);
    let mut looks = vec![true; 30];
    looks.extend([false; 20]);
    let calls = drive(&mut p, Instant::now(), &looks, true);
    assert_eq!(calls, vec![(0, Call::Protect), (3500, Call::Release)]);
}

#[test]
fn short_gaps_between_messages_do_not_release() {
    let mut p = Policy::new(60 * MIN);
    let looks: Vec<bool> = (0..60).map(|i| i % 4 != 0).collect();
    let calls = drive(&mut p, Instant::now(), &looks, true);
    assert_eq!(calls, vec![(100, Call::Protect)], "gaps of 100 ms keep it");
}

#[test]
fn a_long_busy_period_renews_after_three_quarters_of_the_expiry() {
    let mut p = Policy::new(MIN);
    let t = Instant::now();
    assert_eq!(p.next(true, t), Some(Call::Protect));
    p.done(Call::Protect, true, t, t);
    assert_eq!(p.next(true, t + Duration::from_secs(44)), None);
    assert_eq!(
        p.next(true, t + Duration::from_secs(45)),
        Some(Call::Protect)
    );
}

#[test]
fn a_protection_that_expired_while_idle_is_not_released() {
    let mut p = Policy::new(MIN);
    let t = Instant::now();
    p.done(Call::Protect, true, t, t);
    assert_eq!(p.next(false, t + 2 * MIN), None);
    assert!(!p.protected(t + 2 * MIN));
}

#[test]
fn failures_back_off_and_a_later_success_protects() {
    let mut p = Policy::new(60 * MIN);
    let t = Instant::now();
    let calls = drive(&mut p, t, &[true; 40], false);
    // Tries at 0, then 1 s later, then 2 s after that: the backoff doubles.
    let at: Vec<u64> = calls.iter().map(|c| c.0).collect();
    assert_eq!(at, vec![0, 1000, 3000]);
    let now = t + Duration::from_secs(8);
    assert_eq!(p.next(true, now), Some(Call::Protect));
    p.done(Call::Protect, true, now, now);
    assert!(p.protected(now));
}

#[test]
fn the_agent_s_failure_and_error_answers_are_refusals() {
    assert_eq!(
        refusal(
            200,
            r#"{"protection":{"ProtectionEnabled":true,"TaskArn":"arn"}}"#
        ),
        None
    );
    let failure = r#"{"failure":{"Arn":"arn","Reason":"TASK_NOT_VALID","Detail":null}}"#;
    assert!(refusal(200, failure).unwrap().contains("TASK_NOT_VALID"));
    let error = r#"{"error":{"Code":"AccessDeniedException","Message":"no"}}"#;
    assert!(refusal(400, error).unwrap().contains("AccessDenied"));
    assert!(refusal(500, "oops").unwrap().contains("500"));
}
