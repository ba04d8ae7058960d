//! The Lambda package as deploy/README.md builds it: `cargo lambda build ... --output-format zip
//! --include deploy/fleet.toml --include deploy/templates` (the command is
//! `fleet_workers::deploy::platform::lambda::PACKAGE`). The exported template tells each function
//! to read its configuration at `CONFIG_IN_PACKAGE`; this checks that the zip cargo-lambda makes
//! puts it there, beside `bootstrap`, and that the configuration and the email templates load
//! from the unpacked zip as the function reads them.
//!
//! Building `fleet-lambda` itself with cargo-lambda would rebuild the whole workspace for its own
//! target directory (minutes on two cores), so the package is built from a crate with no
//! dependencies and the same `--include` arguments: what is checked is cargo-lambda's layout of
//! the included files, with the real files. The binary itself runs in `lambda_watch.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cargo_lambda;
use fleet_workers::deploy::platform::lambda::{CONFIG_IN_PACKAGE, PACKAGE};
use fleet_workers::email::Templates;
use fleet_workers::run::Effective;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Where a function's zip is unpacked on Lambda (its working directory).
const TASK_ROOT: &str = "/var/task";

fn python() -> PathBuf {
    std::env::var_os("FLEET_TEST_PYTHON")
        .map_or_else(|| Path::new(REPO).join(".venv/bin/python"), PathBuf::from)
}

/// The `--include` arguments of the documented package command.
fn includes() -> Vec<&'static str> {
    let words: Vec<&str> = PACKAGE.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "--include")
        .map(|w| w[1])
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_documented_package_puts_the_configuration_where_the_template_says() {
    let includes = includes();
    assert_eq!(includes, ["deploy/fleet.toml", "deploy/templates"]);
    let dir = std::env::temp_dir().join(format!("fleet-lambda-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    for include in &includes {
        let from = Path::new(REPO).join(include);
        let to = dir.join(include);
        if from.is_dir() {
            copy_dir(&from, &to);
        } else {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
    }

    let mut build = Command::new(cargo_lambda());
    build
        .current_dir(&dir)
        .args([
            "lambda",
            "build",
            "--compiler",
            "cargo",
            "--offline",
            "--output-format",
            "zip",
        ])
        // Its own target directory, whatever the test run uses.
        .env("CARGO_TARGET_DIR", dir.join("target"));
    for include in &includes {
        build.args(["--include", include]);
    }
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "cargo lambda build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = dir.join("target/lambda/probe/bootstrap.zip");
    assert!(zip.exists(), "no zip at {}", zip.display());

    let task = dir.join("task");
    let unzip = Command::new(python())
        .args(["-m", "zipfile", "-e"])
        .arg(&zip)
        .arg(&task)
        .output()
        .unwrap();
    assert!(
        unzip.status.success(),
        "{}",
        String::from_utf8_lossy(&unzip.stderr)
    );
    assert!(task.join("bootstrap").is_file(), "bootstrap at the root");

    // FLEET_CONFIG as the template sets it, inside the unpacked zip.
    let relative = CONFIG_IN_PACKAGE
        .strip_prefix(TASK_ROOT)
        .unwrap()
        .trim_start_matches('/');
    let config_path = task.join(relative);
    assert!(
        config_path.is_file(),
        "{CONFIG_IN_PACKAGE} is not in the package"
    );
    let effective = Effective::load(Some(&config_path), Vec::new()).unwrap();
    let templates = &effective.config.email.templates;
    assert!(
        templates.starts_with(&task),
        "templates resolve inside the package: {}",
        templates.display()
    );
    Templates::load(templates).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
