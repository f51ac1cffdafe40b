//! Hex encoding and decoding for header values, nonces, MACs and session ids: table-driven,
//! one pass, no branches per digit.

/// Hex digit values: 0–15 for `0-9a-f`, `0x10 | value` for `A-F`, `0xff` for anything else.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 0x10 | (10 + i as u8);
        i += 1;
    }
    t
};

/// Decodes pairs of hex digits into `out` (as many as fit); returns the flags of every
/// digit or-ed together: `0x10` set if any was upper case, `0xe0` bits set if any was not a
/// hex digit.
#[inline]
fn decode_pairs(b: &[u8], out: &mut [u8]) -> u8 {
    let mut flags = 0u8;
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        flags |= hi | lo;
        *o = ((hi & 0xf) << 4) | (lo & 0xf);
    }
    flags
}

/// Exactly 64 lower-case hex digits, as 32 bytes.
pub(crate) fn decode_hex_lower_32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    (b.len() == 64 && decode_pairs(b, &mut out) & 0xf0 == 0).then_some(out)
}

/// Decodes hex (either case) into `out`; returns the byte count, or `None` for odd length,
/// a non-hex character or too little room.
pub(crate) fn decode_hex(s: &str, out: &mut [u8]) -> Option<usize> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) || b.len() / 2 > out.len() {
        return None;
    }
    (decode_pairs(b, out) & 0xe0 == 0).then_some(b.len() / 2)
}

/// Whether `s` is all hex digits (either case).
pub(crate) fn is_hex(s: &str) -> bool {
    s.bytes().fold(0u8, |f, c| f | HEX[usize::from(c)]) & 0xe0 == 0
}

/// Lower-case hex of `bytes` into `out` (twice as long).
pub(crate) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}
