//! Every 837P the tests render and every 835 golden file, checked by two independent validators
//! from PyPI: pyx12 (`x12valid`, whose exit status is 1 even for a valid file, so its verdict
//! line `<file>: OK` / `<file>: Failure` is read) and x12sdk (`x12sdk -m -x`, exit 0 when valid).
//! A missing validator skips the check with a note, unless `CLAIMLEDGER_X12_VALIDATORS_REQUIRED=1`
//! (the test script sets it), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::golden::{GOLDEN_835S, read_golden, rendered_837s};

const REQUIRED: &str = "CLAIMLEDGER_X12_VALIDATORS_REQUIRED";

fn required() -> bool {
    std::env::var(REQUIRED).is_ok_and(|value| value == "1")
}

/// Runs `program args`, or says why it could not (not installed).
fn run(program: &str, args: &[&Path], flags: &[&str]) -> Result<Output, String> {
    Command::new(program)
        .args(flags)
        .args(args)
        .output()
        .map_err(|error| format!("{program} did not start: {error}"))
}

/// A fresh folder under the system's temporary directory holding the files to validate.
fn files_to_validate(validator: &str) -> (PathBuf, Vec<PathBuf>) {
    let folder = std::env::temp_dir().join(format!(
        "claimledger-x12-{validator}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("a temporary folder");
    let mut files = Vec::new();
    for (name, text) in rendered_837s() {
        let path = folder.join(name);
        std::fs::write(&path, text).expect("a writable temporary file");
        files.push(path);
    }
    for name in GOLDEN_835S {
        let path = folder.join(name);
        std::fs::write(&path, read_golden(name)).expect("a writable temporary file");
        files.push(path);
    }
    (folder, files)
}

fn skip_or_fail(reason: &str) {
    assert!(!required(), "{REQUIRED}=1 but {reason}");
    // Tests may print: this says why the check did not run.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipping the validator check: {reason}");
    }
}

#[test]
fn given_every_837p_and_835_the_tests_produce_when_pyx12_validates_them_then_each_is_ok() {
    let (folder, files) = files_to_validate("pyx12");
    let mut failures = Vec::new();
    for file in &files {
        let output = match run("x12valid", &[file], &[]) {
            Ok(output) => output,
            Err(reason) => {
                let _ = std::fs::remove_dir_all(&folder);
                return skip_or_fail(&reason);
            }
        };
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let verdict_ok = format!("{}: OK", file.display());
        if !log.lines().any(|line| line.trim_end() == verdict_ok) {
            failures.push(format!("{}:\n{log}", file.display()));
        }
    }
    let _ = std::fs::remove_dir_all(&folder);
    assert!(
        failures.is_empty(),
        "pyx12 refused:\n{}",
        failures.join("\n")
    );
}

#[test]
fn given_every_837p_and_835_the_tests_produce_when_x12sdk_validates_them_then_each_is_ok() {
    let (folder, files) = files_to_validate("x12sdk");
    let mut failures = Vec::new();
    for file in &files {
        let output = match run("x12sdk", &[file], &["-m", "-x"]) {
            Ok(output) => output,
            Err(reason) => {
                let _ = std::fs::remove_dir_all(&folder);
                return skip_or_fail(&reason);
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().take(3).collect::<Vec<_>>().join("\n");
            failures.push(format!("{}: {last}", file.display()));
        }
    }
    let _ = std::fs::remove_dir_all(&folder);
    assert!(
        failures.is_empty(),
        "x12sdk refused:\n{}",
        failures.join("\n")
    );
}
