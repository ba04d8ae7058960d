//! `fleet templates check` as an operator meets it: one line per template, and exit code 1
//! naming the templates that fail (a syntax error, data the sample lacks, no sample).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `fleet --log-format text ARGS` in `cwd` (no AWS needed).
fn fleet(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleet"))
        .current_dir(cwd)
        .args(["--log-format", "text"])
        .args(args)
        .env_remove("FLEET_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A template directory `name` with these files.
fn template(dir: &Path, name: &str, files: &[(&str, &str)]) {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    for (file, content) in files {
        std::fs::write(path.join(file), content).unwrap();
    }
}

#[test]
fn the_shipped_templates_pass_from_the_default_directory() {
    let out = fleet(&repo_root(), &["templates", "check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains("order_confirmation"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.starts_with("ok"), "{line}");
    assert!(
        line.contains("subject \"Your order o-1001 is confirmed\""),
        "{line}"
    );
    assert!(line.contains("text ") && line.contains("html "), "{line}");
}

#[test]
fn a_broken_directory_fails_naming_each_broken_template() {
    let dir = std::env::temp_dir().join(format!("fleet-templates-{}", uuid::Uuid::new_v4()));
    template(
        &dir,
        "good",
        &[
            ("subject.txt", "Hi {{ name }}\n"),
            ("text.txt", "Hello {{ name }}\n"),
            ("sample.json", r#"{"name": "Ada"}"#),
        ],
    );
    template(
        &dir,
        "bad_syntax",
        &[
            ("subject.txt", "s\n"),
            ("text.txt", "fine\n{% if %}\n"),
            ("sample.json", "{}"),
        ],
    );
    template(
        &dir,
        "no_data",
        &[
            ("subject.txt", "Order {{ order_id }}\n"),
            ("text.txt", "x\n"),
            ("sample.json", "{}"),
        ],
    );
    template(
        &dir,
        "no_sample",
        &[("subject.txt", "s\n"), ("text.txt", "x\n")],
    );
    let out = fleet(
        &repo_root(),
        &["templates", "check", "--dir", dir.to_str().unwrap()],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_owned()
    };
    assert!(line("good").starts_with("ok"), "{stdout}");
    let bad = line("bad_syntax");
    assert!(bad.starts_with("FAIL"), "{bad}");
    assert!(
        bad.contains("bad_syntax/text.txt is invalid at line 2"),
        "{bad}"
    );
    let no_data = line("no_data");
    assert!(no_data.contains("needs \"order_id\""), "{no_data}");
    let no_sample = line("no_sample");
    assert!(no_sample.contains("sample.json"), "{no_sample}");
    assert!(
        stderr.contains("3 of 4 templates failed: bad_syntax, no_data, no_sample"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_absent_directory_fails_naming_it() {
    let out = fleet(
        &repo_root(),
        &["templates", "check", "--dir", "no/such/templates"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read no/such/templates"), "{stderr}");
}
