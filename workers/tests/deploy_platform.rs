//! The drain figures the operator's guide states are the ones the ECS and EC2 templates use.
//! (That the committed templates are what the export generates is `deploy_templates`' check.)

use std::path::{Path, PathBuf};

use fleet_workers::deploy::platform;
use fleet_workers::run::Effective;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The drain figures deploy/README.md states are the ones the export uses.
#[test]
fn the_guide_states_the_drain_figures_the_templates_use() {
    let config = Effective::load(Some(&deploy_dir().join("fleet.toml")), Vec::new())
        .expect("deploy/fleet.toml loads")
        .config;
    let guide = std::fs::read_to_string(deploy_dir().join("README.md")).expect("deploy/README.md");
    let secs = |d: std::time::Duration| format!("| {} s", d.as_secs());
    for (what, figure) in [
        ("shutdown_timeout", secs(config.shutdown_timeout)),
        (
            "worst-case drain",
            secs(platform::worst_case_drain(&config)),
        ),
        ("stopTimeout", secs(platform::stop_timeout(&config))),
        ("hook heartbeat", secs(platform::hook_heartbeat(&config))),
    ] {
        assert!(
            guide.contains(&figure),
            "deploy/README.md: the {what} ({figure}) is not stated"
        );
    }
}
