//! One settling API call with retries: the whole call again on throttling, 5xx or network
//! errors, and failed entries again when the service (not the request) was at fault.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use std::sync::{Mutex, OnceLock};

use metrics::counter;
use tokio::time::Instant;

use crate::error::BusError;
use crate::log_limit::{Admit, LogLimiter};
use crate::message::{EntryError, EntryResult};
use crate::metrics::{API_CALLS, API_ERRORS, PRODUCER_WORKER};

/// A settling call that has not answered after this long is abandoned and tried again, so one
/// hung connection cannot stall leases or shutdown.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Labels of a producer's calls (`worker` is `producer`); a consumer has its own observer, with
/// handles registered once.
#[derive(Clone, Debug)]
pub(crate) struct Scope {
    pub queue: String,
}

/// The rate limit of every producer's lines about failed calls, per operation and error class.
fn producer_lines() -> &'static Mutex<LogLimiter<(&'static str, &'static str)>> {
    static LINES: OnceLock<Mutex<LogLimiter<(&'static str, &'static str)>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(LogLimiter::default()))
}

impl Scope {
    pub fn api_call(&self, operation: &'static str) {
        counter!(API_CALLS, "worker" => PRODUCER_WORKER, "queue" => self.queue.clone(), "operation" => operation)
            .increment(1);
    }

    pub fn api_error(&self, operation: &'static str, error: &BusError) {
        let error_type = error.error_type();
        counter!(API_ERRORS, "worker" => PRODUCER_WORKER, "queue" => self.queue.clone(),
            "operation" => operation, "error_type" => error_type)
        .increment(1);
        let admit = producer_lines()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(&(operation, error_type), Instant::now());
        if let Admit::Log { suppressed } = admit {
            let suppressed = (suppressed > 0).then_some(suppressed);
            tracing::warn!(queue = %self.queue, operation, error_type, %error, suppressed, "queue API call failed");
        }
    }
}

/// Tries a batch call up to four times; returns one result per entry, in order.
pub(crate) async fn call_batch<E, T, F, Fut>(
    scope: &Scope,
    op: &'static str,
    entries: Vec<E>,
    call: F,
) -> Vec<EntryResult<T>>
where
    E: Clone,
    F: Fn(Vec<E>) -> Fut,
    Fut: Future<Output = Result<Vec<EntryResult<T>>, BusError>>,
{
    let mut results: Vec<Option<EntryResult<T>>> = entries.iter().map(|_| None).collect();
    let mut todo: Vec<usize> = (0..entries.len()).collect();
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(3)
        .with_jitter()
        .build();
    while !todo.is_empty() {
        let batch: Vec<E> = todo.iter().map(|&i| entries[i].clone()).collect();
        scope.api_call(op);
        let outcome = match tokio::time::timeout(CALL_TIMEOUT, call(batch)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(BusError::timeout(&scope.queue, op, CALL_TIMEOUT)),
        };
        let next_delay = backoff.next();
        let mut again = Vec::new();
        match outcome {
            Err(e) => {
                scope.api_error(op, &e);
                match next_delay {
                    Some(_) if e.is_retryable() => again = todo.clone(),
                    _ => {
                        let entry = EntryError {
                            code: e.code().unwrap_or("CallFailed").to_owned(),
                            message: e.to_string(),
                            sender_fault: !e.is_retryable(),
                        };
                        for &i in &todo {
                            results[i] = Some(Err(entry.clone()));
                        }
                    }
                }
            }
            Ok(rs) => {
                let mut rs = rs.into_iter();
                for &i in &todo {
                    match rs.next() {
                        Some(Err(ee)) if !ee.sender_fault && next_delay.is_some() => again.push(i),
                        Some(r) => results[i] = Some(r),
                        None => {
                            results[i] = Some(Err(EntryError::sender(
                                "MissingEntryResult",
                                "the service returned no result for this entry",
                            )))
                        }
                    }
                }
            }
        }
        if let (false, Some(d)) = (again.is_empty(), next_delay) {
            tokio::time::sleep(d).await;
        }
        todo = again;
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(EntryError::sender("MissingEntryResult", "no result"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn scope() -> Scope {
        Scope { queue: "q".into() }
    }

    fn throttled() -> BusError {
        BusError::Api {
            resource: "q".into(),
            operation: "DeleteMessageBatch",
            code: "ThrottlingException".into(),
            message: "slow down".into(),
            retryable: true,
            source: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_the_whole_call_on_retryable_errors() {
        let calls = Mutex::new(0);
        let results = call_batch(
            &scope(),
            "DeleteMessageBatch",
            vec![1, 2],
            |batch: Vec<i32>| {
                let n = {
                    let mut c = calls.lock().expect("lock");
                    *c += 1;
                    *c
                };
                async move {
                    if n < 3 {
                        Err(throttled())
                    } else {
                        Ok(batch.into_iter().map(|_| Ok(())).collect())
                    }
                }
            },
        )
        .await;
        assert_eq!(*calls.lock().expect("lock"), 3);
        assert!(results.iter().all(Result::is_ok));
    }

    #[tokio::test(start_paused = true)]
    async fn resubmits_only_entries_that_failed_on_the_service_side() {
        let seen = Mutex::new(Vec::new());
        let results = call_batch(
            &scope(),
            "ChangeMessageVisibilityBatch",
            vec!["ok", "flaky", "bad"],
            |batch: Vec<&str>| {
                seen.lock().expect("lock").push(batch.clone());
                let first = seen.lock().expect("lock").len() == 1;
                async move {
                    Ok(batch
                        .into_iter()
                        .map(|e| match e {
                            "flaky" if first => Err(EntryError {
                                code: "InternalError".into(),
                                message: String::new(),
                                sender_fault: false,
                            }),
                            "bad" => Err(EntryError::sender("ReceiptHandleIsInvalid", "")),
                            _ => Ok(()),
                        })
                        .collect())
                }
            },
        )
        .await;
        assert_eq!(
            *seen.lock().expect("lock"),
            vec![vec!["ok", "flaky", "bad"], vec!["flaky"]]
        );
        assert!(results[0].is_ok() && results[1].is_ok());
        assert_eq!(
            results[2].as_ref().expect_err("bad").code,
            "ReceiptHandleIsInvalid"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_four_calls() {
        let calls = Mutex::new(0);
        let results = call_batch(&scope(), "DeleteMessageBatch", vec![1], |_b: Vec<i32>| {
            *calls.lock().expect("lock") += 1;
            async { Err::<Vec<EntryResult<()>>, _>(throttled()) }
        })
        .await;
        assert_eq!(*calls.lock().expect("lock"), 4);
        assert_eq!(
            results[0].as_ref().expect_err("failed").code,
            "ThrottlingException"
        );
    }
}
