//! `fleet stats` against moto: every queue of the topology with its counts.

#![allow(clippy::unwrap_used)]

mod common;

use fleet_bus::scenarios::unique_name;
use fleet_bus::{OutgoingMessage, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_show_every_queue_of_the_topology() {
    let prefix = unique_name("stats");
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("topology.toml");
    std::fs::write(&file, format!("[[queue]]\nname = \"{prefix}-work\"\ndead_letter = {{ queue = \"{prefix}-work-dlq\", max_receive_count = 3 }}\n")).unwrap();
    let file = file.to_str().unwrap();
    assert!(common::fleet(&["provision", "--topology", file]).ok);
    let t = fleet_tests::moto::transport().await;
    let q = t.queue(&format!("{prefix}-work")).await.unwrap();
    for i in 0..3 {
        q.sender()
            .send(OutgoingMessage::new(format!("m{i}")))
            .await
            .unwrap();
    }
    q.sender()
        .send(OutgoingMessage::new("later").delay(std::time::Duration::from_secs(60)))
        .await
        .unwrap();
    let out = common::fleet(&["stats", "--topology", file]);
    assert!(out.ok, "{}", out.stderr);
    let row = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(
        row(&format!("{prefix}-work "))[1..],
        ["3", "0", "1", "n/a"],
        "{}",
        out.stdout
    );
    assert_eq!(
        row(&format!("{prefix}-work-dlq"))[1..],
        ["(dlq)", "0", "0", "0", "n/a"],
        "{}",
        out.stdout
    );
    let _ = std::fs::remove_dir_all(dir);
}
