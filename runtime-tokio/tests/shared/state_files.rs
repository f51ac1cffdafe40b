//! State files: what is written is read back, secrets are 0600 in a 0700 directory, and a
//! reader never sees a torn or missing file — not after a crash, a failed write, or while
//! several writers race.
//!
//! Shared cases: run on every runtime through `crate::rt`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::rt::block_on;
use crate::rt::state::{FileMode, StateDir, StateError};

/// A fresh, empty scratch path (not created).
fn scratch(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "latchkey-state-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = fs::remove_dir_all(&path);
    path
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn written_content_reads_back_and_absent_files_read_as_none() {
    let root = scratch("roundtrip");
    block_on(async {
        let dir = StateDir::open(&root).await.expect("open");
        assert_eq!(dir.read("tokens.json").await.expect("read"), None);
        dir.write("tokens.json", b"{\"v\":1}".to_vec())
            .await
            .expect("write");
        assert_eq!(
            dir.read("tokens.json").await.expect("read").as_deref(),
            Some(&b"{\"v\":1}"[..])
        );
        dir.write("tokens.json", "{\"v\":2}")
            .await
            .expect("overwrite");
        assert_eq!(
            dir.read("tokens.json").await.expect("read").as_deref(),
            Some(&b"{\"v\":2}"[..])
        );
        dir.write("empty", Vec::new()).await.expect("empty file");
        assert_eq!(dir.read("empty").await.expect("read"), Some(Vec::new()));
        assert!(dir.remove("tokens.json").await.expect("remove"));
        assert!(!dir.remove("tokens.json").await.expect("remove again"));
        assert_eq!(dir.read("tokens.json").await.expect("read"), None);
    });
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn secrets_are_0600_public_files_0644_and_new_directories_0700() {
    let root = scratch("modes");
    let nested = root.join("a").join("state");
    block_on(async {
        let dir = StateDir::open(&nested).await.expect("open");
        dir.write("secret", "s").await.expect("write");
        dir.write_with_mode("cert.pem", "c", FileMode::Public)
            .await
            .expect("write");
        // Replacing a public file with a secret one leaves a 0600 file (a new inode).
        dir.write_with_mode("flip", "p", FileMode::Public)
            .await
            .expect("write");
        dir.write("flip", "s").await.expect("write");
    });
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("a")), 0o700);
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&nested.join("secret")), 0o600);
    assert_eq!(mode(&nested.join("cert.pem")), 0o644);
    assert_eq!(mode(&nested.join("flip")), 0o600);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn an_existing_directory_is_used_as_it_is() {
    let root = scratch("existing");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o750)).unwrap();
    block_on(StateDir::open(&root)).expect("open");
    assert_eq!(mode(&root), 0o750);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn leftover_temp_file_of_a_crashed_writer_changes_nothing() {
    let root = scratch("leftover");
    block_on(async {
        let dir = StateDir::open(&root).await.expect("open");
        dir.write("tokens.json", "old").await.expect("write");
        // A writer that died after creating and partly writing its temp file.
        let leftover = root.join(format!(".tokens.json.{}.0.tmp", std::process::id()));
        fs::write(&leftover, "new but half-writ").unwrap();
        assert_eq!(
            dir.read("tokens.json").await.expect("read").as_deref(),
            Some(&b"old"[..])
        );
        dir.write("tokens.json", "new")
            .await
            .expect("write past the leftover");
        assert_eq!(
            dir.read("tokens.json").await.expect("read").as_deref(),
            Some(&b"new"[..])
        );
        assert_eq!(fs::read(&leftover).unwrap(), b"new but half-writ");
    });
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn failed_write_keeps_the_old_content_and_names_the_path() {
    let root = scratch("readonly");
    let dir = block_on(StateDir::open(&root)).expect("open");
    block_on(dir.write("tokens.json", "old")).expect("write");
    let probe = root.join("probe");
    fs::write(&probe, "").unwrap();
    let is_root = fs::metadata(&probe).unwrap().uid() == 0;
    fs::remove_file(&probe).unwrap();
    if is_root {
        // Permissions do not stop root; the fault-injection unit test in src/shared/state.rs
        // covers a failure at every step of the write instead.
        fs::remove_dir_all(&root).unwrap();
        return;
    }
    fs::set_permissions(&root, fs::Permissions::from_mode(0o500)).unwrap();
    let error = block_on(dir.write("tokens.json", "new")).expect_err("read-only directory");
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(
        error.to_string().contains(&*root.to_string_lossy()),
        "{error}"
    );
    assert_eq!(fs::read(root.join("tokens.json")).unwrap(), b"old");
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn concurrent_writers_never_leave_a_torn_file() {
    const SIZE: usize = 256 * 1024;
    const WRITERS: u8 = 4;
    const ROUNDS: usize = 20;
    let root = scratch("race");
    let dir = block_on(StateDir::open(&root)).expect("open");
    block_on(dir.write("shared.bin", vec![b'0'; SIZE])).expect("first write");
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let dir = dir.clone();
            scope.spawn(move || {
                block_on(async {
                    for _ in 0..ROUNDS {
                        dir.write("shared.bin", vec![b'a' + w; SIZE])
                            .await
                            .expect("write");
                    }
                });
            });
        }
        let dir = dir.clone();
        scope.spawn(move || {
            block_on(async {
                for _ in 0..(ROUNDS * 4) {
                    let seen = dir
                        .read("shared.bin")
                        .await
                        .expect("read")
                        .expect("present");
                    assert_eq!(seen.len(), SIZE, "torn file: wrong length");
                    assert!(
                        seen.iter().all(|b| *b == seen[0]),
                        "torn file: mixed content"
                    );
                }
            });
        });
    });
    let last = block_on(dir.read("shared.bin"))
        .expect("read")
        .expect("present");
    assert!((b'a'..b'a' + WRITERS).contains(&last[0]));
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["shared.bin"], "temp files left behind");
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn unsafe_names_and_non_directories_are_refused() {
    let root = scratch("names");
    block_on(async {
        let dir = StateDir::open(&root).await.expect("open");
        for bad in ["../escape", "a/b", ".hidden", "", ".."] {
            assert!(
                matches!(
                    dir.write(bad, "x").await,
                    Err(StateError::InvalidName { .. })
                ),
                "{bad:?}"
            );
            assert!(matches!(
                dir.read(bad).await,
                Err(StateError::InvalidName { .. })
            ));
        }
        dir.write("file", "x").await.expect("write");
        let error = StateDir::open(root.join("file")).await.expect_err("a file");
        assert!(matches!(error, StateError::NotADirectory { .. }), "{error}");
        assert!(error.to_string().contains("file"), "{error}");
        fs::create_dir(root.join("sub")).unwrap();
        let error = dir.read("sub").await.expect_err("a directory");
        assert!(
            error
                .to_string()
                .contains(&*root.join("sub").to_string_lossy()),
            "{error}"
        );
    });
    assert!(!root.parent().unwrap().join("escape").exists());
    fs::remove_dir_all(&root).unwrap();
}
