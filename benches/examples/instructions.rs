//! A deterministic harness for instruction counts (callgrind), next to the criterion groups:
//! wall-clock times on a shared machine move with its load, instruction counts do not.
//!
//! `instructions <parse|core|rsip-core|ezk-core> <register|invite_sdp|ok_200> <n>` runs the
//! `parse` or `core` adapter of [`latchkey_benches::latchkey`] (or a peer's `core` adapter)
//! `n` times on one of the typical messages. Run it
//! under `valgrind --tool=callgrind` with `n` = 0 and `n` = N; the difference of the two
//! totals over N is the cost of one message:
//!
//! ```text
//! cargo build --release -p latchkey-benches --example instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions core ok_200 2000
//! ```

use std::hint::black_box;
use std::process::ExitCode;

use latchkey_benches::{Core, ezk_peer, inputs, latchkey, rsip_peer};

fn consume(core: &Core<'_>) {
    black_box(core);
}

#[allow(clippy::print_stderr)] // the usage line is the point
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(what), Some(name), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!(
            "usage: instructions <parse|core|rsip-core|ezk-core> <register|invite_sdp|ok_200> <n>"
        );
        return ExitCode::FAILURE;
    };
    let Some(&(_, raw)) = inputs::TYPICAL.iter().find(|(m, _)| m == name) else {
        eprintln!("unknown message {name:?}");
        return ExitCode::FAILURE;
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("not a count: {n:?}");
        return ExitCode::FAILURE;
    };
    match what.as_str() {
        "parse" => {
            for _ in 0..n {
                let _ = black_box(latchkey::parse(black_box(raw)));
            }
        }
        "core" => {
            for _ in 0..n {
                let _ = black_box(latchkey::core(black_box(raw), consume));
            }
        }
        "rsip-core" => {
            for _ in 0..n {
                let _ = black_box(rsip_peer::core(black_box(raw), consume));
            }
        }
        "ezk-core" => {
            let buffer = bytes::Bytes::copy_from_slice(raw);
            for _ in 0..n {
                let _ = black_box(ezk_peer::core(black_box(&buffer), consume));
            }
        }
        other => {
            eprintln!("unknown adapter {other:?}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
