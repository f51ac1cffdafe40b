//! Child processes a test kills with SIGKILL: a re-run of the current test binary limited to
//! one child-only function ([`reexec`]), or the `latchkey` binary. A [`Process`] is killed
//! and reaped when dropped, so a failing test leaves none behind; its standard error (and
//! standard output when piped) is collected by reader threads, never printed by this module.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Deadline;

/// A running child process.
#[derive(Debug)]
pub(crate) struct Process {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// The current test binary, set to run only the test named `test` (its path without the
/// crate name, e.g. `cases::child`), ignored or not, output uncaptured.
pub(crate) fn reexec(test: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args([
        test,
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command
}

/// The test name (as a test binary's filter wants it) of function `function` in module
/// `module_path` (`module_path!()`: the crate name comes first and is dropped).
pub(crate) fn test_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_, inner)) => format!("{inner}::{function}"),
        None => function.to_owned(),
    }
}

impl Process {
    /// Starts `command` with no standard input and its standard error collected; standard
    /// output is collected with `capture_stdout`, discarded otherwise.
    pub(crate) fn spawn(name: &str, mut command: Command, capture_stdout: bool) -> Process {
        command
            .stdin(Stdio::null())
            .stdout(if capture_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(collect(pipe, Arc::clone(&stdout)));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, Arc::clone(&stderr)));
        }
        Process {
            name: name.to_owned(),
            child,
            status: None,
            stdout,
            stderr,
            readers,
        }
    }

    /// What it wrote to standard error so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// What it wrote to standard output so far (empty unless captured).
    pub(crate) fn stdout(&self) -> Vec<u8> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether it is still running (reaps it if it has ended).
    pub(crate) fn running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.status = Some(status);
                false
            }
            Ok(None) => true,
            Err(e) => panic!("{}: wait: {e}", self.name),
        }
    }

    /// Kills it with SIGKILL (no chance to clean up or save anything), reaps it, and checks
    /// that it died of that signal, not of something else before.
    pub(crate) fn kill_9(&mut self) {
        assert!(
            self.running(),
            "{} ended before it was killed ({:?}); stderr:\n{}",
            self.name,
            self.status,
            self.stderr()
        );
        // `Child::kill` is SIGKILL on Unix.
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("kill -9 {}: {e}", self.name));
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("{}: wait: {e}", self.name));
        self.status = Some(status);
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "{} did not die of SIGKILL: {status}",
                self.name
            );
        }
    }

    /// Waits for it to end by itself, at most `limit`; the output readers are finished too.
    pub(crate) async fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Deadline::new(limit, format!("{} to exit", self.name));
        while self.running() {
            deadline.tick(&self.stderr()).await;
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.status.expect("reaped")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies `pipe` into `into` until it closes.
fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}
