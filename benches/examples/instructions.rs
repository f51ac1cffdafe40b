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
//!
//! `instructions <sign|hmac|prefixed|guard> <calaos_base|design> <n>` does the same for the
//! guard, in the setting of the criterion bench `guard/full_check/1k_addresses_hot` (1,000
//! client addresses, 100 ms of virtual time per request, every table in cache): each mode
//! signs 5,000 + `n` panel requests, as a panel would, and runs the first 5,000 through the
//! guard to reach its steady state (`sign` stops there); `hmac` then verifies each remaining
//! request's HMAC from a pre-keyed state (the criterion bench's `hmac_alone/keyed_state`),
//! `prefixed` from a state that has also absorbed the token and separator, as the guard's
//! device credentials keep it (`hmac_alone/prefixed`); `guard` runs
//! [`Guard::authenticate_device`] on each, with `handle_timeout` whenever `poll_timeout`
//! asks, as a driver would. So `(prefixed − sign) / n` is the HMAC the guard computes and
//! `(guard − prefixed) / n` is the guard's own work per request (header picking, checks,
//! device lookup, rate limit, replay cache, sweeps). Under valgrind SHA-256 runs in software (no
//! SHA-NI), so the HMAC counts far more instructions than its share of wall time.

use std::hint::black_box;
use std::process::ExitCode;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use latchkey_benches::guard_setting::{self, SECRET, TOKEN};
use latchkey_benches::{Core, ezk_peer, inputs, latchkey, rsip_peer};
use latchkey_protocol::guard::{
    AddressPolicy, AuthHeaders, DeviceCredentials, DeviceDirectory, DeviceId, Guard, Now, Signer,
    SigningVariant,
};
use latchkey_protocol::time::Instant;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::Sha256;

fn consume(core: &Core<'_>) {
    black_box(core);
}

#[allow(clippy::print_stderr)] // the usage line is the point
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(what), Some(name), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!(
            "usage: instructions <parse|core|rsip-core|ezk-core> <register|invite_sdp|ok_200> <n>\n\
             \x20      instructions <sign|hmac|prefixed|guard> <calaos_base|design> <n>"
        );
        return ExitCode::FAILURE;
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("not a count: {n:?}");
        return ExitCode::FAILURE;
    };
    if matches!(what.as_str(), "sign" | "hmac" | "prefixed" | "guard") {
        let variant = match name.as_str() {
            "calaos_base" => SigningVariant::CalaosBase,
            "design" => SigningVariant::RemoteUiDesign,
            other => {
                eprintln!("unknown signing variant {other:?}");
                return ExitCode::FAILURE;
            }
        };
        return guard(what, variant, n as u64);
    }
    let Some(&(_, raw)) = inputs::TYPICAL.iter().find(|(m, _)| m == name) else {
        eprintln!("unknown message {name:?}");
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

/// One signed panel request: its three header values and the HMAC they carry, as bytes.
struct Request {
    timestamp: String,
    nonce: String,
    hmac: String,
    mac: [u8; 32],
}

/// Requests checked by the guard before the counted ones, in every mode.
const WARM_UP: u64 = 5000;

/// The guard modes (see the crate docs): sign `n` requests, then check them one way or none.
#[allow(clippy::print_stderr)] // a refused request is reported, not hidden
fn guard(what: &str, variant: SigningVariant, n: u64) -> ExitCode {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let config = guard_setting::config();
    let (Ok(mut guard), Ok(credentials), Ok(signer)) = (
        Guard::new(config, &mut rng),
        DeviceCredentials::new(DeviceId(1), TOKEN, SECRET, variant),
        Signer::new(TOKEN, SECRET, variant),
    ) else {
        eprintln!("guard set-up failed");
        return ExitCode::FAILURE;
    };
    let mut devices = DeviceDirectory::new(&mut rng);
    if devices.insert(credentials).is_err() {
        eprintln!("device insert failed");
        return ExitCode::FAILURE;
    }
    let policy = AddressPolicy::default();
    let keys: Vec<_> = (0..1000u64)
        .map(|i| {
            policy.key(IpAddr::V6(Ipv6Addr::from_bits(
                (0x2001_0db8_u128 << 96) | (u128::from(i) << 64) | 1,
            )))
        })
        .collect();
    let now = |i: u64| {
        let nanos = 1_000_000_000 + i * 100_000_000;
        Now::new(
            Instant::from_duration_since_origin(Duration::from_nanos(nanos)),
            1_767_225_600 + nanos / 1_000_000_000,
        )
    };
    // Each request's header values as the server's HTTP parser would hand them over, and
    // its HMAC as bytes (decoded here, in every mode, so that the `hmac` mode's count is the
    // HMAC and the comparison only, as in the criterion bench).
    let signed: Vec<Request> = (0..WARM_UP + n)
        .map(|i| {
            let mut nonce = [0u8; 32];
            nonce[..8].copy_from_slice(&i.to_le_bytes());
            let h = signer.sign_with_nonce(now(i).unix_secs, &nonce);
            let mut mac = [0u8; 32];
            for (k, m) in mac.iter_mut().enumerate() {
                *m = u8::from_str_radix(h.hmac().get(2 * k..2 * k + 2).unwrap_or("zz"), 16)
                    .unwrap_or_default();
            }
            Request {
                timestamp: h.timestamp().to_owned(),
                nonce: h.nonce().to_owned(),
                hmac: h.hmac().to_owned(),
                mac,
            }
        })
        .collect();
    let authorization = signer.authorization();
    let mut refused = 0u64;
    let mut check = |i: u64, h: &Request| {
        let t = now(i);
        // Walked by reference, as the gateway walks its parsed request's headers.
        let pairs = guard_setting::upgrade_pairs(authorization, &h.timestamp, &h.nonce, &h.hmac);
        let headers = AuthHeaders::from_pairs(pairs.iter().copied());
        let key = keys[(i % 1000) as usize];
        let ok = black_box(guard.authenticate_device(t, key, &headers, &devices)).is_ok();
        if guard.poll_timeout().is_some_and(|d| d <= t.instant) {
            guard.handle_timeout(t);
        }
        ok
    };
    // The warm-up, in every mode: every address tracked, the replay cache at working size.
    let (warm, measured) = signed.split_at(WARM_UP as usize);
    for (i, h) in (0u64..).zip(warm) {
        refused += u64::from(!check(i, h));
    }
    match what {
        "guard" => {
            for (i, h) in (WARM_UP..).zip(measured) {
                refused += u64::from(!check(i, h));
            }
        }
        "hmac" | "prefixed" => {
            let Ok(mut keyed) = Hmac::<Sha256>::new_from_slice(SECRET) else {
                return ExitCode::FAILURE;
            };
            let separator: &[u8] = match variant {
                SigningVariant::CalaosBase => b":",
                _ => b"",
            };
            let prefixed = what == "prefixed";
            if prefixed {
                keyed.update(TOKEN.as_bytes());
                keyed.update(separator);
            }
            for h in measured {
                let mut m = keyed.clone();
                if !prefixed {
                    m.update(TOKEN.as_bytes());
                    m.update(separator);
                }
                m.update(h.timestamp.as_bytes());
                m.update(separator);
                m.update(h.nonce.as_bytes());
                if black_box(m.verify_slice(&h.mac)).is_err() {
                    refused += 1;
                }
            }
        }
        _ => {
            black_box(measured);
        }
    }
    if refused > 0 {
        eprintln!("{refused} of {n} requests refused");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
