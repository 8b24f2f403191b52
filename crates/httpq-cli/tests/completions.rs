//! `httpq completions SHELL` and `httpq man`: generated from the clap
//! definitions, checked by the shell that reads them and for the man header.

mod common;

use std::process::Command;

use common::raw::{assert_code, httpq};

#[test]
fn bash_completion_names_the_subcommands_and_parses() {
    let out = httpq(&["completions", "bash"], &[]);
    assert_code(&out, 0);
    let script = out.stdout_text();
    for word in ["serve", "get", "completions", "--include"] {
        assert!(script.contains(word), "no {word} in the bash script");
    }
    let dir = common::raw::TempDir::new();
    let path = dir.path().join("httpq.bash");
    std::fs::write(&path, &script).unwrap();
    match Command::new("bash").arg("-n").arg(&path).output() {
        Ok(check) => assert!(
            check.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&check.stderr)
        ),
        Err(e) => println!("skipped the bash -n check: cannot run bash: {e}"),
    }
}

#[test]
fn every_shell_gets_a_script_and_an_unknown_one_is_refused() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = httpq(&["completions", shell], &[]);
        assert_code(&out, 0);
        assert!(out.stdout_text().contains("httpq"), "{shell}");
    }
    let out = httpq(&["completions", "tcsh"], &[]);
    assert_code(&out, 2);
}

#[test]
fn the_man_page_is_roff_naming_the_subcommands() {
    let out = httpq(&["man"], &[]);
    assert_code(&out, 0);
    let page = out.stdout_text();
    assert!(page.starts_with(".TH"), "{}", &page[..page.len().min(200)]);
    for name in [
        "httpq\\-serve",
        "httpq\\-get",
        "httpq\\-completions",
        "httpq\\-man",
    ] {
        assert!(page.contains(name), "no {name} in the man page");
    }
}
