//! Helpers shared by the `latchkey` binary's integration tests. Each file in `tests/` is its
//! own crate and includes this module with `mod common;`, using the part it needs.
#![allow(dead_code)] // each test crate uses its own subset

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs `latchkey` with `args` and an empty standard input; its exit status and output.
pub(crate) fn latchkey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run latchkey")
}

/// Runs `latchkey` with `args`, writing `input` to its standard input and closing it.
pub(crate) fn latchkey_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run latchkey");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait for latchkey")
}

/// Asserts that `out` is the output of a run that exited with `code`, showing both of its
/// streams when it did not.
#[track_caller]
pub(crate) fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A fresh empty directory for test `tag` under the system's temporary directory (one left
/// over by an earlier run is removed first).
pub(crate) fn scratch(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("latchkey-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("create a scratch directory");
    p
}

/// Output bytes as text (lossy).
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A path as a command-line argument.
pub(crate) fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
