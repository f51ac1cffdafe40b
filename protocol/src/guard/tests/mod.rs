//! Tests of the guard, one file per concern; property tests state their invariant in their
//! name and set their case count explicitly.

mod addr;
mod auth;
mod guard;
mod login;
mod nonce;
mod password;
mod provisioning;
mod rate;
mod session;
mod snapshot;
mod table;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::time::Instant;

/// Wall-clock second of the tests' `t = 0` (2026-01-01T00:00:00Z).
pub(super) const T0: u64 = 1_767_225_600;

pub(super) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Both clocks at `secs` seconds after the tests' start (monotonic origin + 1000 s).
pub(super) fn at(secs: u64) -> Now {
    Now::new(Instant::from_secs(1000 + secs), T0 + secs)
}

/// Both clocks at `millis` milliseconds after the tests' start.
pub(super) fn at_ms(millis: u64) -> Now {
    Now::new(Instant::from_millis(1_000_000 + millis), T0 + millis / 1000)
}

pub(super) fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

pub(super) fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

pub(super) fn key(n: u32) -> ClientKey {
    AddressPolicy::default().key(IpAddr::V4(Ipv4Addr::from_bits(n)))
}

pub(super) const SECRET: &[u8] =
    b"7f3b5a2d9e1c4b6a8c3f5e2d9a7b4c6e1f8d5a2c9b6e3f0d7a4b1c8e5f2a9d0c";
pub(super) const TOKEN: &str = "remote_ui_ABC123";
pub(super) const NONCE: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

pub(super) fn creds(id: u32, variant: SigningVariant) -> DeviceCredentials {
    DeviceCredentials::new(DeviceId(id), TOKEN, SECRET, variant).unwrap()
}

pub(super) fn directory(variant: SigningVariant) -> DeviceDirectory {
    let mut d = DeviceDirectory::new(&mut rng(9));
    d.insert(creds(1, variant)).unwrap();
    d
}
