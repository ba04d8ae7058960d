use super::*;

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Effective, ConfigError> {
    let dir = std::env::temp_dir().join(format!(
        "fleet-config-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    let out = Effective::load(Some(&path), env(vars));
    let _ = std::fs::remove_dir_all(dir);
    out
}

#[test]
fn the_shipped_configuration_reads_and_every_worker_is_enabled() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/fleet.toml");
    let e = Effective::load(Some(&path), env(&[])).unwrap();
    assert_eq!(e.config.transport, TransportKind::Aws);
    assert_eq!(e.config.chosen(&[]), WorkerKind::ALL.to_vec());
    assert!(e.config.topology.ends_with("topology.toml"));
    assert!(
        e.config.topology.exists(),
        "{}",
        e.config.topology.display()
    );
}

#[test]
fn no_file_means_the_defaults() {
    let e = Effective::load(None, env(&[])).unwrap();
    assert_eq!(e.config.orders.queue, "fleet-orders");
    assert_eq!(
        e.config.consumer_of(WorkerKind::Orders).handler_name,
        "orders"
    );
    assert_eq!(e.config.analytics.counter_shards, 4);
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_naming_it() {
    let err = load_text("[orders.consumer]\nconcurency = 4\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("concurency"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    let err = load_text("tabel = \"x\"\n", &[]).unwrap_err().to_string();
    assert!(err.contains("tabel"), "{err}");
    let err = load_text("[orders.consumer.retry]\nbse = \"1s\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("bse"), "{err}");
}

#[test]
fn overrides_come_from_double_underscore_variables() {
    let e = load_text(
        "[orders]\nqueue = \"from-file\"\n",
        &[
            ("FLEET__ORDERS__CONSUMER__CONCURRENCY", "32"),
            ("FLEET__ANALYTICS__ENABLED", "false"),
            ("FLEET__SHUTDOWN_TIMEOUT", "20s"),
            ("FLEET__TABLE", "fleet-prod"),
            ("FLEET_LOG", "debug"),
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    assert_eq!(e.config.orders.queue, "from-file");
    assert_eq!(e.config.orders.consumer.concurrency, Some(32));
    assert!(!e.config.analytics.enabled);
    assert_eq!(e.config.chosen(&[]), vec![WorkerKind::Orders]);
    assert_eq!(e.config.shutdown_timeout, Duration::from_secs(20));
    assert_eq!(
        e.config.consumer_of(WorkerKind::Orders).shutdown_timeout,
        Duration::from_secs(20)
    );
    assert_eq!(e.config.table, "fleet-prod");
    assert_eq!(e.overrides.len(), 4, "{:?}", e.overrides);
    let shown = e.to_string();
    assert!(
        shown.contains("# orders.consumer.concurrency set by FLEET__ORDERS__CONSUMER__CONCURRENCY"),
        "{shown}"
    );
    assert!(shown.contains("concurrency = 32"), "{shown}");
}

#[test]
fn an_override_of_an_unknown_key_names_the_variable() {
    let err = load_text("", &[("FLEET__ORDERS__CONSUMER__CONCURENCY", "3")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("concurency"), "{err}");
    assert!(err.contains("FLEET__ORDERS__CONSUMER__CONCURENCY"), "{err}");
    let err = load_text("", &[("FLEET__ORDERS__CONSUMER__POLLERS", "many")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("orders.consumer.pollers"), "{err}");
    assert!(err.contains("FLEET__ORDERS__CONSUMER__POLLERS"), "{err}");
}

#[test]
fn settings_that_cannot_work_are_refused_naming_the_key() {
    let err = load_text("[analytics]\ndedup_ttl = \"1d\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("analytics.dedup_ttl"), "{err}");
    let err = load_text("[orders.consumer]\npollers = 0\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("orders.consumer"), "{err}");
    let err = load_text("events_topic = \" \"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("events_topic"), "{err}");
}

#[test]
fn dead_letters_name_the_worker_unless_configured() {
    let e = load_text(
        "[orders.consumer]\npollers = 3\n[analytics.consumer]\nhandler_name = \"counts\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        e.config.consumer_of(WorkerKind::Orders).handler_name,
        "orders"
    );
    assert_eq!(
        e.config.consumer_of(WorkerKind::Analytics).handler_name,
        "counts"
    );
}

#[test]
fn a_consumer_drain_deadline_is_refused_naming_the_top_level_key() {
    let err = load_text("[orders.consumer]\nshutdown_timeout = \"40s\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("orders.consumer.shutdown_timeout"), "{err}");
    assert!(err.contains("top-level shutdown_timeout"), "{err}");
}

#[test]
fn chosen_workers_override_enabled() {
    let e = load_text("[orders]\nenabled = false\n", &[]).unwrap();
    assert_eq!(e.config.chosen(&[]), vec![WorkerKind::Analytics]);
    assert_eq!(
        e.config.chosen(&[WorkerKind::Orders, WorkerKind::Orders]),
        vec![WorkerKind::Orders]
    );
}

#[test]
fn secrets_never_print() {
    #[derive(Serialize, Deserialize, Debug)]
    struct WithSecret {
        password: Secret,
    }
    let s: WithSecret = toml::from_str("password = \"hunter2\"").unwrap();
    assert_eq!(s.password.expose(), "hunter2");
    assert!(!format!("{s:?}").contains("hunter2"));
    let shown = toml::to_string(&s).unwrap();
    assert_eq!(shown.trim(), "password = \"<redacted>\"");
}

#[test]
fn the_email_worker_refuses_what_cannot_work_naming_the_key() {
    for (text, key) in [
        ("[email]\nrate_per_second = 0\n", "email.rate_per_second"),
        ("[email]\nfrom = \"Fleet no-reply\"\n", "email.from"),
        ("[email]\nkeep_sent_for = \"7d\"\n", "email.keep_sent_for"),
        ("[email]\nmemory_file = \"x\"\n", "email.memory_file"),
        (
            "[email]\nmailer = \"smtp\"\n[email.smtp]\nhost = \"mail.example.com\"\ntls = \"none\"\n",
            "email.smtp.tls",
        ),
        (
            "[email]\nmailer = \"smtp\"\nclaim_lease = \"20s\"\n[email.smtp]\nhost = \"mail.example.com\"\n",
            "email.claim_lease",
        ),
    ] {
        let err = load_text(text, &[]).unwrap_err().to_string();
        assert!(err.starts_with(key), "{text}: {err}");
    }
    // A password is never a setting: only the name of an SSM parameter holding it.
    let err = load_text("[email.smtp]\npassword = \"hunter2\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `password`"), "{err}");
}

#[test]
fn the_smtp_password_is_a_parameter_name_and_relative_paths_follow_the_file() {
    let dir = std::env::temp_dir().join(format!("fleet-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fleet.toml");
    std::fs::write(
        &path,
        "[email]\nmailer = \"smtp\"\n[email.smtp]\nhost = \"mail.example.com\"\nusername = \"fleet\"\npassword_parameter = \"/fleet/email/smtp-password\"\n",
    )
    .unwrap();
    let e = Effective::load(Some(&path), std::iter::empty()).unwrap();
    assert_eq!(e.config.email.templates, dir.join("templates"));
    let printed = e.to_string();
    assert!(
        printed.contains("password_parameter = \"/fleet/email/smtp-password\""),
        "{printed}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
