//! Keyed hashing for the guard's tables, and seed-independent fingerprints for what a
//! snapshot must carry across restarts.
//!
//! Table slots are placed by a keyed 64-bit hash (a folded 64×64→128-bit multiply, the core of
//! wyhash and foldhash) under a 256-bit seed drawn from the injected randomness at start-up.
//! An attacker choosing addresses cannot aim them at one probe chain without the seed; the
//! seed never leaves the process and is not part of a snapshot, so a restored table is simply
//! re-hashed under the new seed. Fingerprints that *are* persisted (provisioning codes,
//! account names) come from SHA-256 so they mean the same thing after a restart.

use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};

/// A 256-bit hashing key, drawn once per [`Guard`](super::Guard) from injected randomness.
#[derive(Clone)]
pub(crate) struct Seed {
    k: [u64; 4],
}

impl core::fmt::Debug for Seed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// Draws a seed from `rng`. The multiplicands are forced odd so no key collapses every
    /// hash to zero.
    pub(crate) fn from_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut k = [0u64; 4];
        for word in &mut k {
            *word = rng.next_u64();
        }
        k[1] |= 1;
        k[3] |= 1;
        Seed { k }
    }

    /// A fixed seed for tests and benchmarks that need reproducible placement.
    #[cfg(test)]
    pub(crate) const fn fixed(k: [u64; 4]) -> Self {
        Seed {
            k: [k[0], k[1] | 1, k[2], k[3] | 1],
        }
    }

    /// Hash of a two-word key.
    #[inline]
    pub(crate) fn hash2(&self, a: u64, b: u64) -> u64 {
        let x = fold_mul(a ^ self.k[0], b ^ self.k[1]);
        fold_mul(x ^ self.k[2], self.k[3])
    }

    /// Hash of a byte string of any length (folded eight bytes at a time, length mixed in).
    pub(crate) fn hash_bytes(&self, bytes: &[u8]) -> u64 {
        let mut h = self.k[2] ^ (bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(16);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&c[..8]);
            b.copy_from_slice(&c[8..]);
            h = fold_mul(
                h ^ u64::from_le_bytes(a) ^ self.k[0],
                u64::from_le_bytes(b) ^ self.k[1],
            );
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let (a, b) = rest.split_at(rest.len().min(8));
            h = fold_mul(h ^ word(a) ^ self.k[0], word(b) ^ self.k[1]);
        }
        fold_mul(h ^ self.k[2], self.k[3])
    }
}

/// Little-endian word from up to eight bytes (missing bytes are zero).
#[inline]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = bytes.len().min(8);
    w[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(w)
}

/// The folded multiply: both halves of the 128-bit product, xored.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// A seed-independent 64-bit fingerprint (the first eight bytes of SHA-256).
pub(crate) fn fingerprint64(domain: &[u8], bytes: &[u8]) -> u64 {
    let d = Sha256::new()
        .chain_update(domain)
        .chain_update(bytes)
        .finalize();
    let mut w = [0u8; 8];
    w.copy_from_slice(&d[..8]);
    u64::from_le_bytes(w)
}

/// A seed-independent 128-bit fingerprint (the first sixteen bytes of SHA-256), as two words.
pub(crate) fn fingerprint128(domain: &[u8], bytes: &[u8]) -> [u64; 2] {
    let d = Sha256::new()
        .chain_update(domain)
        .chain_update(bytes)
        .finalize();
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&d[..8]);
    b.copy_from_slice(&d[8..16]);
    [u64::from_le_bytes(a), u64::from_le_bytes(b)]
}
