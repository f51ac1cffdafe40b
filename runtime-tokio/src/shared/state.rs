//! Small state files written atomically: a reader, another process or the next start after a
//! crash sees the old content or the new content, never a mix, never an empty file.
//!
//! A write goes to a new temporary file in the same directory (created with its final mode,
//! so a secret is never readable by others, not even for an instant), is flushed to disk
//! (`fsync`), renamed over the target, and the directory is flushed so the rename itself is
//! durable. The state directory is created with mode 0700 when absent. The blocking file
//! system calls run on the runtime's blocking thread pool.
//!
//! Temporary files are named `.<name>.<pid>.<n>.tmp`; a crash can leave one behind. It is
//! never read as state and is not removed automatically (it might belong to a sibling process
//! that is still writing); names starting with `.` are therefore refused for state files.
//!
//! Shared source: compiled into both `latchkey-tokio` and `latchkey-smol`; the runtime is
//! `crate::rt::Rt`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::rt::Rt;
use crate::runtime::Runtime;

/// A directory of state files.
///
/// Cheap to clone. Every method is safe to call concurrently, from tasks and from other
/// processes: concurrent writes of one file leave one of the written contents, whole.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: Arc<PathBuf>,
}

/// Who may read a state file (Unix permission bits; ignored elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FileMode {
    /// `0600`: only the owner. Tokens, keys, passwords. The default.
    #[default]
    Secret,
    /// `0644`: anyone may read, e.g. a public certificate another service serves.
    Public,
}

impl FileMode {
    /// The Unix permission bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        match self {
            FileMode::Secret => 0o600,
            FileMode::Public => 0o644,
        }
    }
}

/// Why a state file operation failed. Each message names the path involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateError {
    /// The file name is not a single plain path component, or starts with `.`.
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The state directory path exists and is not a directory.
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file system call failed.
    Io {
        /// What was being done, e.g. `"rename"`.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::InvalidName { name } => write!(
                f,
                "invalid state file name {name:?}: must be one plain path component not \
                 starting with '.'"
            ),
            StateError::NotADirectory { path } => {
                write!(f, "state directory {} is not a directory", path.display())
            }
            StateError::Io {
                action,
                path,
                source,
            } => write!(f, "could not {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl StateDir {
    /// Opens the state directory at `path`, creating it (and missing parents) with mode 0700
    /// when absent. An existing directory is used as it is.
    pub async fn open(path: impl Into<PathBuf>) -> Result<StateDir, StateError> {
        let dir = path.into();
        let dir = Arc::new(dir);
        let inner = Arc::clone(&dir);
        blocking(&dir, move || sync::create_dir(&inner)).await?;
        Ok(StateDir { dir })
    }

    /// The directory's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The content of file `name`, or `None` when it does not exist.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        sync::check_name(name)?;
        let path = self.dir.join(name);
        blocking(&self.dir, move || sync::read(&path)).await
    }

    /// Replaces file `name` with `contents` atomically, mode 0600 ([`FileMode::Secret`]).
    ///
    /// When this returns `Ok`, the new content is on disk. When it returns an error, the file
    /// holds its old content (or still does not exist) — except for an error flushing the
    /// directory after the rename, when the new content is in place but may not survive a
    /// power loss. Dropping the future does not stop the write; it completes or fails whole.
    pub async fn write(&self, name: &str, contents: impl Into<Vec<u8>>) -> Result<(), StateError> {
        self.write_with_mode(name, contents, FileMode::Secret).await
    }

    /// [`StateDir::write`] with an explicit [`FileMode`].
    pub async fn write_with_mode(
        &self,
        name: &str,
        contents: impl Into<Vec<u8>>,
        mode: FileMode,
    ) -> Result<(), StateError> {
        sync::check_name(name)?;
        let dir = Arc::clone(&self.dir);
        let name = name.to_owned();
        let contents = contents.into();
        blocking(&self.dir, move || {
            sync::write_atomic(&dir, &name, &contents, mode, &mut |_| Ok(()))
        })
        .await
    }

    /// Reads file `name` and decides what to do with it while holding an exclusive lock on
    /// `<name>.lock`, so that processes sharing the directory see each other's updates in
    /// order (a compare-and-swap across processes). `decide` gets the current content and
    /// returns [`Update::Write`] (written atomically, mode 0600) or [`Update::Keep`].
    pub async fn update<T, F>(&self, name: &str, decide: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(Option<Vec<u8>>) -> Update<T> + Send + 'static,
    {
        sync::check_name(name)?;
        let dir = Arc::clone(&self.dir);
        let name = name.to_owned();
        blocking(&self.dir, move || sync::update(&dir, &name, decide)).await
    }

    /// Removes file `name`; `false` when it did not exist.
    pub async fn remove(&self, name: &str) -> Result<bool, StateError> {
        sync::check_name(name)?;
        let dir = Arc::clone(&self.dir);
        let name = name.to_owned();
        blocking(&self.dir, move || sync::remove(&dir, &name)).await
    }
}

/// What [`StateDir::update`] does after reading the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum Update<T> {
    /// Replace the file with these bytes, then return the value.
    Write(Vec<u8>, T),
    /// Leave the file as it is and return the value.
    Keep(T),
}

/// Runs `f` on the blocking pool; `dir` names the directory should the pool refuse.
async fn blocking<T, F>(dir: &Path, f: F) -> Result<T, StateError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StateError> + Send + 'static,
{
    Rt::unblock(f).await.map_err(|source| StateError::Io {
        action: "start a blocking task for",
        path: dir.to_owned(),
        source,
    })?
}

/// The blocking core, runtime-independent.
mod sync {
    use super::*;

    /// The steps of an atomic write, for fault injection in tests.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Step {
        Created,
        Written,
        Synced,
    }

    pub(super) fn check_name(name: &str) -> Result<(), StateError> {
        let mut components = Path::new(name).components();
        let single = matches!(
            (components.next(), components.next()),
            (Some(Component::Normal(c)), None) if c == name
        );
        if !single || name.starts_with('.') || name.contains('\0') {
            return Err(StateError::InvalidName {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    pub(super) fn create_dir(dir: &Path) -> Result<(), StateError> {
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(StateError::NotADirectory {
                    path: dir.to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("inspect", dir, e)),
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| io_error("create directory", dir, e))?;
        sync_dir(parent(dir))
    }

    pub(super) fn read(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", path, e)),
        }
    }

    /// Temp file, write, fsync, rename over `name`, fsync `dir`. `fault` is called after each
    /// step and may fail it (tests).
    pub(super) fn write_atomic(
        dir: &Path,
        name: &str,
        contents: &[u8],
        mode: FileMode,
        fault: &mut dyn FnMut(Step) -> io::Result<()>,
    ) -> Result<(), StateError> {
        let target = dir.join(name);
        let (temp, mut file) = create_temp(dir, name, mode)?;
        let written = (|| {
            fault(Step::Created).map_err(|e| io_error("create temporary file", &temp, e))?;
            file.write_all(contents)
                .and_then(|()| fault(Step::Written))
                .map_err(|e| io_error("write", &temp, e))?;
            file.sync_all()
                .and_then(|()| fault(Step::Synced))
                .map_err(|e| io_error("flush to disk", &temp, e))?;
            drop(file);
            fs::rename(&temp, &target)
                .map_err(|e| io_error("rename a temporary file onto", &target, e))
        })();
        if let Err(e) = written {
            // Best effort: the error being reported matters more than a leftover temp file.
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        sync_dir(dir)
    }

    /// Read-decide-write under an exclusive lock on `<name>.lock` (released when the lock
    /// file is closed, also when the process dies).
    pub(super) fn update<T>(
        dir: &Path,
        name: &str,
        decide: impl FnOnce(Option<Vec<u8>>) -> Update<T>,
    ) -> Result<T, StateError> {
        let lock_path = dir.join(format!("{name}.lock"));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let lock = options
            .open(&lock_path)
            .map_err(|e| io_error("open lock file", &lock_path, e))?;
        lock.lock().map_err(|e| io_error("lock", &lock_path, e))?;
        let current = read(&dir.join(name))?;
        let result = match decide(current) {
            Update::Write(bytes, value) => {
                write_atomic(dir, name, &bytes, FileMode::Secret, &mut |_| Ok(()))?;
                value
            }
            Update::Keep(value) => value,
        };
        drop(lock);
        Ok(result)
    }

    pub(super) fn remove(dir: &Path, name: &str) -> Result<bool, StateError> {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(dir).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("remove", &path, e)),
        }
    }

    /// A new file `.<name>.<pid>.<n>.tmp` in `dir`, created with `mode` (never an existing
    /// file, never through a symbolic link).
    fn create_temp(dir: &Path, name: &str, mode: FileMode) -> Result<(PathBuf, File), StateError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let mut attempts = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{pid}.{n}.tmp"));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode.bits());
            #[cfg(not(unix))]
            let _ = mode;
            match options.open(&temp) {
                Ok(file) => return Ok((temp, file)),
                // A leftover of an earlier process that had the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_error("create temporary file", &temp, e)),
            }
        }
    }

    /// Flushes directory `dir` so renames and creations in it survive a power loss.
    fn sync_dir(dir: &Path) -> Result<(), StateError> {
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("flush directory", dir, e))?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }

    fn parent(path: &Path) -> &Path {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    fn io_error(action: &'static str, path: &Path, source: io::Error) -> StateError {
        StateError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sync::{self, Step};
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "latchkey-state-unit-{tag}-{}-{}",
            std::process::id(),
            env!("CARGO_PKG_NAME")
        ));
        let _ = fs::remove_dir_all(&dir);
        sync::create_dir(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_write_failing_at_any_step_keeps_the_old_content_and_no_temp_file() {
        let dir = scratch("fault");
        let path = dir.join("tokens.json");
        sync::write_atomic(&dir, "tokens.json", b"old", FileMode::Secret, &mut |_| {
            Ok(())
        })
        .unwrap();
        for failing in [Step::Created, Step::Written, Step::Synced] {
            let err = sync::write_atomic(
                &dir,
                "tokens.json",
                b"new content that must not appear",
                FileMode::Secret,
                &mut |step| {
                    if step == failing {
                        Err(io::Error::other("injected"))
                    } else {
                        Ok(())
                    }
                },
            )
            .unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
            assert_eq!(
                fs::read(&path).unwrap(),
                b"old",
                "after failing at {failing:?}"
            );
            assert_eq!(
                entries(&dir),
                ["tokens.json"],
                "after failing at {failing:?}"
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_that_are_not_one_plain_component_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "/abs", ".hidden", "nul\0"] {
            assert!(
                matches!(sync::check_name(bad), Err(StateError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        for good in ["tokens.json", "account-1.toml", "a..b"] {
            sync::check_name(good).unwrap();
        }
    }

    #[test]
    fn error_messages_name_the_path() {
        let dir = scratch("errpath");
        let missing = dir.join("no-such-dir");
        let err =
            sync::write_atomic(&missing, "x", b"1", FileMode::Secret, &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
