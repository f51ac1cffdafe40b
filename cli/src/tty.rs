//! Reading a secret typed on the terminal without showing it (`login --headless`'s password).
//!
//! On a terminal the line is read with echo off, byte by byte (non-canonical mode, signals
//! off), so that Ctrl-C ends the prompt through this code and the terminal settings are put
//! back on every path: a Ctrl-C that killed the process while echo was off would leave the
//! shell not showing what is typed. Erase (Backspace) and kill (Ctrl-U) work as on a normal
//! line. SIGTERM and SIGHUP (a `kill`, a closed terminal window) are caught for as long as
//! the prompt is up (`async-signal`'s self-pipe, polled beside the terminal): the settings
//! are put back and the process ends with the status the signal would have given it
//! (128 + its number), instead of dying with echo off. Termios and poll come from `rustix`
//! (already in the dependency tree through `async-io`; safe wrappers, so the crate stays
//! free of `unsafe`).
//!
//! When standard input is not a terminal (a pipe, a file) one line is read as it is.

use std::io::BufRead;

/// The longest secret read from a terminal, in bytes.
const MAX_SECRET: usize = 4096;

/// Why no secret was read.
pub(crate) enum ReadError {
    /// Ctrl-C (or the quit key) at the prompt.
    Cancelled,
    /// Reading or setting up the terminal failed, or the input is not UTF-8.
    Failed(String),
    /// SIGTERM or SIGHUP arrived at the prompt: the exit status the signal would have
    /// caused (128 + its number).
    Signalled(u8),
}

/// One line from standard input, without its line ending; not echoed when standard input is
/// a terminal.
pub(crate) fn read_secret_line() -> Result<String, ReadError> {
    let stdin = std::io::stdin();
    #[cfg(unix)]
    if std::io::IsTerminal::is_terminal(&stdin) {
        return unix::read_hidden(&stdin);
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| ReadError::Failed(format!("cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(unix)]
mod unix {
    use async_signal::{Signal, Signals};
    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::io::Errno;
    use rustix::termios::{
        LocalModes, OptionalActions, SpecialCodeIndex, Termios, tcgetattr, tcsetattr,
    };
    use std::os::fd::AsFd as _;

    use super::{MAX_SECRET, ReadError};

    /// The terminal's settings before the prompt, put back when dropped.
    struct Restore<'a> {
        stdin: &'a std::io::Stdin,
        saved: Termios,
    }

    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.stdin, OptionalActions::Now, &self.saved);
        }
    }

    fn failed(e: impl std::fmt::Display) -> ReadError {
        ReadError::Failed(format!("cannot read the terminal: {e}"))
    }

    pub(super) fn read_hidden(stdin: &std::io::Stdin) -> Result<String, ReadError> {
        let saved = tcgetattr(stdin).map_err(failed)?;
        let code = |i: SpecialCodeIndex| saved.special_codes[i];
        // 0 is _POSIX_VDISABLE: that key is switched off.
        let (intr, quit, erase, kill, eof) = (
            code(SpecialCodeIndex::VINTR),
            code(SpecialCodeIndex::VQUIT),
            code(SpecialCodeIndex::VERASE),
            code(SpecialCodeIndex::VKILL),
            code(SpecialCodeIndex::VEOF),
        );
        let mut hidden = saved.clone();
        hidden
            .local_modes
            .remove(LocalModes::ECHO | LocalModes::ECHONL | LocalModes::ICANON | LocalModes::ISIG);
        hidden.special_codes[SpecialCodeIndex::VMIN] = 1;
        hidden.special_codes[SpecialCodeIndex::VTIME] = 0;
        // One notifier per signal, so the one that came is known; registering replaces the
        // default action (termination) until they are dropped, after the settings are back.
        // Without them (registration failed) the prompt still works, as before.
        let term = Signals::new([Signal::Term]).ok();
        let hup = Signals::new([Signal::Hup]).ok();
        let restore = Restore { stdin, saved };
        tcsetattr(stdin, OptionalActions::Now, &hidden).map_err(failed)?;
        let mut line: Vec<u8> = Vec::new();
        let ended = loop {
            match signalled(stdin, term.as_ref(), hup.as_ref()) {
                Ok(None) => {}
                Ok(Some(status)) => break Err(ReadError::Signalled(status)),
                Err(e) => break Err(failed(e)),
            }
            let mut byte = [0u8; 1];
            match rustix::io::read(stdin, &mut byte) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => break Err(failed(e)),
            }
            let b = byte[0];
            match b {
                b'\r' | b'\n' => break Ok(()),
                0 => {}
                _ if b == intr || b == quit => break Err(ReadError::Cancelled),
                _ if b == eof => break Ok(()),
                _ if b == erase || b == 0x7f || b == 0x08 => {
                    // One character, however many UTF-8 bytes it took.
                    while let Some(last) = line.pop() {
                        if last & 0xc0 != 0x80 {
                            break;
                        }
                    }
                }
                _ if b == kill => line.clear(),
                // Other control keys (Ctrl-Z, Ctrl-W, Ctrl-V, arrows' ESC…) are not typed
                // text: storing them would make a password that cannot be typed again.
                _ if b < 0x20 => {}
                _ if line.len() >= MAX_SECRET => {
                    break Err(ReadError::Failed(format!(
                        "more than {MAX_SECRET} bytes typed; use --password-file"
                    )));
                }
                _ => line.push(b),
            }
        };
        drop(restore);
        drop((term, hup));
        // The Enter was not echoed either: end the prompt's line.
        err!("");
        ended?;
        String::from_utf8(line).map_err(|_| ReadError::Failed("the input is not UTF-8".into()))
    }

    /// The signal numbers POSIX fixes (XSI) for every Unix.
    const SIGHUP: u8 = 1;
    const SIGTERM: u8 = 15;

    /// Waits until the terminal has a byte to read (`None`) or SIGTERM / SIGHUP came (the
    /// exit status it would have caused).
    fn signalled(
        stdin: &std::io::Stdin,
        term: Option<&Signals>,
        hup: Option<&Signals>,
    ) -> Result<Option<u8>, Errno> {
        let never = PollFlags::empty();
        let watch = |s: Option<&Signals>| s.map_or(never, |_| PollFlags::IN);
        loop {
            let mut fds = [
                PollFd::new(stdin, PollFlags::IN),
                PollFd::from_borrowed_fd(term.map_or(stdin.as_fd(), |s| s.as_fd()), watch(term)),
                PollFd::from_borrowed_fd(hup.map_or(stdin.as_fd(), |s| s.as_fd()), watch(hup)),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
            if !fds[1].revents().is_empty() && term.is_some() {
                return Ok(Some(128 + SIGTERM));
            }
            if !fds[2].revents().is_empty() && hup.is_some() {
                return Ok(Some(128 + SIGHUP));
            }
            return Ok(None);
        }
    }
}
