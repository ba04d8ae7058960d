//! `fleet demo` (the README's first command) runs the real workers and matches its model, on
//! several seeds: nothing lost, nothing applied twice, every impossible event dead-lettered.

#![allow(clippy::unwrap_used)]

use fleet_workers::demo::{self, DemoOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_matches_its_model_on_several_seeds() {
    for seed in [2026, 1, 7] {
        let report = demo::run(DemoOptions {
            seed,
            ..DemoOptions::default()
        })
        .await
        .unwrap();
        let shown = report.to_string();
        assert!(report.ok(), "seed {seed}:\n{shown}");
        assert_eq!((report.lost(), report.double_applied()), (0, 0), "{shown}");
        assert!(
            shown.contains("lost 0, double-applied 0, wrong 0"),
            "{shown}"
        );
        assert!(shown.contains("200 of 200"), "{shown}");
        assert!(report.summary.0.iter().all(|r| {
            let r = r.report.as_ref().unwrap();
            r.received == r.settled() && r.abandoned == 0
        }));
    }
}

#[test]
fn the_demo_command_prints_its_verdict() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["demo", "--orders", "50", "--events", "250"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("published 250 order events"), "{stdout}");
    assert!(
        stdout.contains("lost 0, double-applied 0, wrong 0"),
        "{stdout}"
    );
}
