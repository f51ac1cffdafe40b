//! `latchkey` — the command-line front end of the latchkey workspace.
//!
//! This crate only parses arguments, reads input, calls the pure crates and the tokio drivers
//! and prints results; every protocol rule lives in `latchkey-protocol`,
//! `latchkey-oauth-core` and `latchkey-pki`.
//!
//! Argument parsing uses `clap` (derive, no default features beyond help and usage); JSON output
//! uses `serde_json`. A password typed on the terminal (`login --headless`) is read with echo
//! off through `rustix`'s termios calls (Unix only; `rustix` was already in the dependency
//! tree through `async-io`, and its wrappers are safe) rather than a prompt crate such as
//! `rpassword` (two more crates); reading byte by byte with signals off also lets Ctrl-C at the
//! prompt put the terminal settings back before the command ends.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// `println!` that survives a closed standard output: a reader that went away (`latchkey
/// serve | head -1`, a log collector that exited) must not panic a running command — Rust
/// ignores SIGPIPE, so `println!` would. Write errors are dropped; the command goes on.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

/// `eprintln!` that survives a closed standard error: a log collector that went away must
/// not panic a running command (`eprintln!` panics when the write fails, and a closed pipe
/// fails it since Rust ignores SIGPIPE). Write errors are dropped; the command goes on.
///
/// `println!`, `print!`, `eprintln!` and `eprint!` are not used in this crate (the workspace's
/// `clippy::print_stdout` and `clippy::print_stderr` lints hold that).
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::write_err_line(format_args!($($arg)*))
    };
}

/// One line on standard output, errors ignored (see [`out!`]).
fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"));
    let _ = stdout.flush();
}

/// One line on standard error, errors ignored (see [`err!`]).
fn write_err_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_fmt(line)
        .and_then(|()| stderr.write_all(b"\n"));
    let _ = stderr.flush();
}

mod bticino;
mod cert;
mod cert_serve;
mod oauth;
mod serve;
mod sip;
mod sip_json;
mod tty;
mod watts;

/// Largest input `latchkey sip parse` reads (a SIP message on a stream is capped at 64 KiB by
/// default; 16 MiB leaves room for odd captures without unbounded memory).
const MAX_INPUT: u64 = 16 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "latchkey",
    version,
    about = "Secure access machinery for home automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the local gateway: RemoteUI panel provisioning and WebSockets, the HTTPS admin
    /// pages (setup link, login, certificate management), U-tec compatible /health and
    /// token endpoints. Starts on https://127.0.0.1:8443 with a self-signed certificate.
    Serve(serve::ServeArgs),
    /// SIP tools.
    Sip {
        #[command(subcommand)]
        command: SipCommand,
    },
    /// Log in to an OAuth provider once; the session is kept in the state directory.
    Login {
        #[command(flatten)]
        provider: oauth::ProviderArgs,
        #[command(flatten)]
        mode: oauth::LoginMode,
    },
    /// Inspect, refresh, print or keep the stored OAuth tokens.
    Token {
        #[command(subcommand)]
        command: oauth::TokenCommand,
    },
    /// Keys, CSRs, self-signed certificates, inspection, checks and renewal timing.
    Cert {
        #[command(subcommand)]
        command: cert::CertCommand,
    },
    /// BTicino/Legrand door entry: device registration, door release, light, doorbell.
    Bticino {
        #[command(subcommand)]
        command: bticino::BticinoCommand,
    },
    /// Watts Home thermostats: devices, setpoints, away state.
    Watts {
        #[command(subcommand)]
        command: watts::WattsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SipCommand {
    /// Register over mutual TLS and print one JSON line per event (registered, doorbell,
    /// message, reconnecting, …), reconnecting after any loss, until killed or --duration.
    Listen(sip::ListenArgs),
    /// Send the gate (door release) command; exit 0 on a 2xx, 1 with the SIP status and
    /// reason otherwise.
    OpenGate(sip::OpenGateArgs),
    /// Send one MESSAGE; exit 0 on a 2xx, 1 with the SIP status and reason otherwise.
    Message(sip::MessageArgs),
    /// Parse one SIP message and print it as JSON (start line, headers with typed views where
    /// known, body length). Exit 0 when accepted, 1 with one line naming the fault otherwise.
    Parse {
        /// File holding the message; standard input when absent.
        file: Option<PathBuf>,
        /// Apply the strict RFC 3261 check (the faults a UA answers with 400).
        #[arg(long)]
        strict: bool,
        /// Transport the message is checked for with --strict: on a stream Content-Length is
        /// mandatory and exact; on a datagram it may be absent or shorter than the bytes.
        #[arg(long, value_enum, default_value_t = TransportArg::Datagram)]
        transport: TransportArg,
        /// With --strict: accept RFC 2543-style requests without Max-Forwards.
        #[arg(long)]
        rfc2543: bool,
        /// Print compact JSON on one line.
        #[arg(long)]
        compact: bool,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum TransportArg {
    Stream,
    Datagram,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => finish(serve::run(args)),
        Command::Login { provider, mode } => finish(oauth::login(provider, mode)),
        Command::Token { command } => finish(oauth::token(command)),
        Command::Cert { command } => finish(cert::run(command)),
        Command::Bticino { command } => finish(bticino::run(command)),
        Command::Watts { command } => finish(watts::run(command)),
        Command::Sip {
            command: SipCommand::Listen(args),
        } => finish(sip::listen(args)),
        Command::Sip {
            command: SipCommand::OpenGate(args),
        } => finish(sip::open_gate(args)),
        Command::Sip {
            command: SipCommand::Message(args),
        } => finish(sip::message(args)),
        Command::Sip {
            command:
                SipCommand::Parse {
                    file,
                    strict,
                    transport,
                    rfc2543,
                    compact,
                },
        } => {
            let input = match read_input(file.as_ref()) {
                Ok(b) => b,
                Err(e) => {
                    err!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let options = match transport {
                TransportArg::Stream => latchkey_protocol::sip::validate::Options::stream(),
                TransportArg::Datagram => latchkey_protocol::sip::validate::Options::datagram(),
            }
            .with_rfc2543_compat(rfc2543);
            match sip_json::parse_to_json(&input, strict.then_some(options)) {
                Ok(json) => {
                    let text = if compact {
                        serde_json::to_string(&json)
                    } else {
                        serde_json::to_string_pretty(&json)
                    };
                    match text {
                        Ok(t) => print_line(&t, ExitCode::SUCCESS),
                        Err(e) => {
                            err!("error: cannot write JSON: {e}");
                            ExitCode::from(2)
                        }
                    }
                }
                Err(fault) => print_line(&format!("rejected: {fault}"), ExitCode::from(1)),
            }
        }
    }
}

/// Exit status of an OAuth command: 0, or the failure's code with its message on stderr.
fn finish(result: Result<(), (u8, String)>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            err!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// Print one line to standard output; a closed pipe (`latchkey … | head`) is not a crash.
fn print_line(text: &str, code: ExitCode) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            err!("error: cannot write output: {e}");
            ExitCode::from(2)
        }
    }
}

/// Reads a whole file of at most `limit` bytes (certificates, keys, saved sessions): a
/// clear error naming the file, never unbounded memory.
pub(crate) fn read_limited(path: &std::path::Path, limit: usize) -> Result<Vec<u8>, (u8, String)> {
    let file = std::fs::File::open(path)
        .map_err(|e| (2, format!("cannot read {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| (2, format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() > limit {
        return Err((
            2,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

/// [`read_limited`] of a text file (UTF-8).
pub(crate) fn read_text_limited(
    path: &std::path::Path,
    limit: usize,
) -> Result<String, (u8, String)> {
    String::from_utf8(read_limited(path, limit)?)
        .map_err(|_| (2, format!("{} is not UTF-8 text", path.display())))
}

/// The bound on the small files the commands read (profiles, secrets, keys, certificates,
/// registrations: a few KiB each).
pub(crate) const MAX_SMALL_FILE: usize = 4 * 1024 * 1024;

fn read_input(file: Option<&PathBuf>) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let (reader, name): (Box<dyn Read>, String) = match file {
        Some(p) => (
            Box::new(
                std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?,
            ),
            p.display().to_string(),
        ),
        None => (
            Box::new(std::io::stdin().lock()),
            "standard input".to_string(),
        ),
    };
    reader
        .take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(format!(
            "{name} is larger than {MAX_INPUT} bytes; refusing to parse it"
        ));
    }
    Ok(buf)
}

/// The OS random source as a `rand_core` generator (the binary may read it; the cores
/// only take it as an argument).
pub(crate) struct OsRng;

impl rand_core::TryRng for OsRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        // Without OS randomness no key or login can be made safely: stop rather than use
        // weak state.
        #[allow(clippy::expect_used)]
        getrandom::fill(dst).expect("the operating system's random source failed");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRng {}
