//! The committed ECS and EC2 templates (`deploy/cloudformation/fleet-{ecs,ec2}.json`) are what
//! the export generates from `deploy/fleet.toml` and `deploy/topology.toml` now.
//!
//! Regenerate them with `FLEET_REGENERATE=1 cargo test -p fleet-workers --test deploy_platform`
//! (`fleet topology export --format cloudformation --platform ecs|ec2` writes the same).

use std::path::{Path, PathBuf};

use fleet_bus::topology::Topology;
use fleet_workers::deploy::{ExportContext, Platform, cloudformation, platform};
use fleet_workers::run::Effective;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn generated(platform: Platform) -> String {
    let deploy = deploy_dir();
    let config = Effective::load(Some(&deploy.join("fleet.toml")), Vec::new())
        .expect("deploy/fleet.toml loads")
        .config;
    let topology = Topology::from_file(deploy.join("topology.toml")).expect("topology loads");
    let ctx = ExportContext {
        topology: &topology,
        config: &config,
        platform,
    };
    platform::check(&ctx).expect("the shipped configuration fits the platform");
    let json = cloudformation::template(&ctx).to_json();
    serde_json::to_string_pretty(&json).expect("JSON") + "\n"
}

fn check(platform: Platform, file: &str) {
    let path = deploy_dir().join("cloudformation").join(file);
    let now = generated(platform);
    if std::env::var_os("FLEET_REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, &now).expect("write the template");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "{} is not what the export generates: regenerate it with FLEET_REGENERATE=1 cargo test -p fleet-workers --test deploy_platform",
        path.display()
    );
}

#[test]
fn the_committed_ecs_template_is_generated() {
    check(Platform::Ecs, "fleet-ecs.json");
}

#[test]
fn the_committed_ec2_template_is_generated() {
    check(Platform::Ec2, "fleet-ec2.json");
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
