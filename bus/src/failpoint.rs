//! Failpoints at the seams where a crash hurts most, for the crash tests.
//!
//! They are evaluated only when the `fail` crate is built with its `failpoints` feature, which
//! only dev-dependencies turn on: in a normal build [`hit`] does nothing. `fleet
//! run` configures them from `FAILPOINTS` ([`configure_from_env`]), in `fail`'s syntax
//! (`orders::after_commit=return;settler::during_extension=1*return`).
//!
//! The points, where each sits and what a crash there leaves:
//!
//! | name | where | a crash there leaves |
//! |---|---|---|
//! | [`ORDERS_AFTER_COMMIT`] | orders worker, after the DynamoDB commit, before the SNS publish | outbox rows pending; the redelivery publishes them |
//! | [`EMAIL_AFTER_ACCEPT`] | email worker, after the provider accepted, before the mark-as-sent | a claim in progress; the redelivery dead-letters `delivery_unknown`, never resends |
//! | [`SETTLER_BEFORE_DELETE_FLUSH`] | bus settler, a delete batch about to go out | a handled message not deleted; it is redelivered and deduplicated |
//! | [`SETTLER_DURING_EXTENSION`] | bus settler, a lease extension about to go out | a handler cut off mid-run; the message is redelivered |
//!
//! The action `return` aborts the process on the spot (as a SIGKILL would: no drain, no
//! settlement); `return(MS)` holds the task there for MS milliseconds without blocking its
//! thread (to make a handler outlive its lease's first extension, say). `fail`'s other actions
//! work as usual, but `sleep` and `pause` block a runtime thread (and whatever task shares it,
//! such as the settler), and a `panic` in a handler is caught by the engine and becomes a retry,
//! not a crash.

/// After the orders worker's DynamoDB commit, before its SNS publish.
pub const ORDERS_AFTER_COMMIT: &str = "orders::after_commit";
/// After the mail provider accepted an email, before the email worker marks it sent.
pub const EMAIL_AFTER_ACCEPT: &str = "email::after_accept";
/// In the bus settler, right before a batch of deletes goes out.
pub const SETTLER_BEFORE_DELETE_FLUSH: &str = "settler::before_delete_flush";
/// In the bus settler, right before a batch carrying a lease extension goes out.
pub const SETTLER_DURING_EXTENSION: &str = "settler::during_extension";

/// Every failpoint, for checking a `FAILPOINTS` value against.
pub const ALL: [&str; 4] = [
    ORDERS_AFTER_COMMIT,
    EMAIL_AFTER_ACCEPT,
    SETTLER_BEFORE_DELETE_FLUSH,
    SETTLER_DURING_EXTENSION,
];

/// Evaluates failpoint `name`: with the action `return` the process aborts here; with
/// `return(MS)` the calling task waits MS milliseconds.
pub async fn hit(name: &str) {
    if let Some(hold) = evaluate(name) {
        tokio::time::sleep(hold).await;
    }
}

/// How long `name` holds the task; aborts the process for a bare `return`.
fn evaluate(name: &str) -> Option<std::time::Duration> {
    // Without the `failpoints` feature the macro expands to nothing and `name` goes unread.
    let _ = name;
    fail::fail_point!(name, |arg: Option<String>| {
        match arg.as_deref().map(str::parse::<u64>) {
            Some(Ok(ms)) => return Some(std::time::Duration::from_millis(ms)),
            Some(Err(_)) => eprintln!("failpoint {name}: return(MS) needs milliseconds"),
            None => {}
        }
        // Flushing nothing and running no destructor is the point: this stands for a SIGKILL.
        eprintln!("failpoint {name}: aborting the process");
        std::process::abort();
    });
    None
}

/// Whether this build evaluates failpoints.
pub const fn compiled_in() -> bool {
    fail::has_failpoints()
}

/// Configures the failpoints named in `FAILPOINTS`; returns the names configured (none when the
/// variable is unset or empty).
///
/// # Errors
/// A malformed entry, an unknown failpoint name, or `FAILPOINTS` set in a build without
/// failpoints (it would silently do nothing).
pub fn configure_from_env() -> Result<Vec<String>, String> {
    match std::env::var("FAILPOINTS") {
        Ok(value) => configure(&value),
        Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(e) => Err(format!("FAILPOINTS: {e}")),
    }
}

/// Configures failpoints from a `FAILPOINTS`-style value (`name=actions;...`).
///
/// # Errors
/// As [`configure_from_env`].
pub fn configure(value: &str) -> Result<Vec<String>, String> {
    let entries: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    if !compiled_in() {
        return Err(
            "FAILPOINTS is set but this build has no failpoints (they are compiled in \
                    only for tests)"
                .to_owned(),
        );
    }
    let mut names = Vec::new();
    for entry in entries {
        let (name, actions) = entry
            .split_once('=')
            .ok_or_else(|| format!("FAILPOINTS: {entry:?} is not name=actions"))?;
        let name = name.trim();
        if !ALL.contains(&name) {
            return Err(format!(
                "FAILPOINTS: no failpoint {name:?} (there are {})",
                ALL.join(", ")
            ));
        }
        fail::cfg(name, actions.trim()).map_err(|e| format!("FAILPOINTS: {name}: {e}"))?;
        names.push(name.to_owned());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_malformed_entries_are_refused_and_empty_is_nothing() {
        assert_eq!(configure(" ; "), Ok(Vec::new()));
        if compiled_in() {
            assert!(configure("orders::nowhere=return").is_err());
            assert!(configure("orders::after_commit").is_err());
            assert!(configure("orders::after_commit=bogus(").is_err());
            assert_eq!(
                configure("settler::during_extension=off"),
                Ok(vec!["settler::during_extension".to_owned()])
            );
        } else {
            assert!(configure("orders::after_commit=return").is_err());
        }
    }
}
