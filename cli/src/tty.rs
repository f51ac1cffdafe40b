//! Reading a secret typed on the terminal without showing it (`login --headless`'s password).
//!
//! On a terminal the line is read with echo off, byte by byte (non-canonical mode, signals
//! off), so that Ctrl-C ends the prompt through this code and the terminal settings are put
//! back on every path: a Ctrl-C that killed the process while echo was off would leave the
//! shell not showing what is typed. Erase (Backspace) and kill (Ctrl-U) work as on a normal
//! line. SIGTERM and SIGHUP (a `kill`, a closed terminal window) are caught from the first
//! prompt on (`async-signal`'s self-pipes, polled beside the terminal): at the prompt the
//! settings are put back and the process ends with the status the signal would have given
//! it (128 + its number), instead of dying with echo off. A handler, once registered,
//! cannot give the signal its default action back (unregistering leaves it ignored), so the
//! notifiers stay for the life of the process and, after the prompt, a thread ends the
//! process the same way when one comes. A hang-up of the terminal at the prompt cancels it:
//! what was typed so far is never taken for a password. Termios and poll come from `rustix`
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
    use std::sync::OnceLock;

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
        // One notifier per signal, so the one that came is known. Without them (registration
        // failed) the prompt still works, as before.
        let (term, hup) = notifiers();
        let restore = Restore { stdin, saved };
        tcsetattr(stdin, OptionalActions::Now, &hidden).map_err(failed)?;
        let mut line: Vec<u8> = Vec::new();
        let ended = loop {
            match signalled(Some(stdin), term, hup) {
                Ok(None) => {}
                Ok(Some(status)) => break Err(ReadError::Signalled(status)),
                Err(e) => break Err(failed(e)),
            }
            let mut byte = [0u8; 1];
            match rustix::io::read(stdin, &mut byte) {
                // With line editing off a terminal reads 0 bytes only when it hung up: the
                // line was never finished, so nothing typed is taken.
                Ok(0) => break Err(ReadError::Cancelled),
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
        // A signal that ended the prompt is the caller's to report (its notifier stays
        // readable, so a watcher would end the process before the message is printed).
        if !matches!(ended, Err(ReadError::Signalled(_))) {
            watch_after_prompt(term, hup);
        }
        // The Enter was not echoed either: end the prompt's line.
        err!("");
        ended?;
        String::from_utf8(line).map_err(|_| ReadError::Failed("the input is not UTF-8".into()))
    }

    /// The notifiers for SIGTERM and SIGHUP, registered once for the life of the process.
    fn notifiers() -> (Option<&'static Signals>, Option<&'static Signals>) {
        static NOTIFIERS: OnceLock<(Option<Signals>, Option<Signals>)> = OnceLock::new();
        let (term, hup) = NOTIFIERS.get_or_init(|| {
            (
                Signals::new([Signal::Term]).ok(),
                Signals::new([Signal::Hup]).ok(),
            )
        });
        (term.as_ref(), hup.as_ref())
    }

    /// From the end of the (first) prompt on, SIGTERM or SIGHUP end the process with 128 +
    /// the signal's number, as their default action would have: the notifiers registered
    /// for the prompt would otherwise leave them ignored.
    fn watch_after_prompt(term: Option<&'static Signals>, hup: Option<&'static Signals>) {
        static WATCHING: OnceLock<()> = OnceLock::new();
        if term.is_none() && hup.is_none() {
            return;
        }
        WATCHING.get_or_init(|| {
            let _ = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    loop {
                        match signalled(None, term, hup) {
                            Ok(Some(status)) => std::process::exit(i32::from(status)),
                            Ok(None) => {}
                            Err(_) => return,
                        }
                    }
                });
        });
    }

    /// The signal numbers POSIX fixes (XSI) for every Unix.
    const SIGHUP: u8 = 1;
    const SIGTERM: u8 = 15;

    /// Waits until SIGTERM or SIGHUP came (the exit status it would have caused) or, when
    /// `terminal` is given, until it has a byte to read (or hung up) (`None`). Only the
    /// registered notifiers are polled.
    fn signalled(
        terminal: Option<&std::io::Stdin>,
        term: Option<&Signals>,
        hup: Option<&Signals>,
    ) -> Result<Option<u8>, Errno> {
        let watched: Vec<(&Signals, u8)> = [(term, SIGTERM), (hup, SIGHUP)]
            .into_iter()
            .filter_map(|(s, n)| s.map(|s| (s, n)))
            .collect();
        let mut fds: Vec<PollFd<'_>> = watched
            .iter()
            .map(|(s, _)| PollFd::new(*s, PollFlags::IN))
            .chain(terminal.map(|t| PollFd::new(t, PollFlags::IN)))
            .collect();
        loop {
            match poll(&mut fds, None) {
                Ok(_) => break,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(fds
            .iter()
            .zip(&watched)
            .find(|(fd, _)| fd.revents().contains(PollFlags::IN))
            .map(|(_, (_, n))| 128 + n))
    }
}
