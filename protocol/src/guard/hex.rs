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

/// Lower-case hex of `bytes` into `out` (twice as long), four bytes per step: this encodes
/// the expected MAC of every authenticated request.
pub(crate) fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut quads = bytes.chunks_exact(4);
    let mut octets = out.chunks_exact_mut(8);
    for (q, o) in (&mut quads).zip(&mut octets) {
        let mut b = [0u8; 4];
        b.copy_from_slice(q);
        o.copy_from_slice(&encode_quad(u32::from_le_bytes(b)).to_le_bytes());
    }
    for (pair, b) in octets
        .into_remainder()
        .chunks_exact_mut(2)
        .zip(quads.remainder())
    {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// Eight hex digits (as a little-endian word, first digit lowest) of four bytes (as a
/// little-endian word, first byte lowest).
#[inline]
fn encode_quad(x: u32) -> u64 {
    const L: u64 = 0x0101_0101_0101_0101;
    // Byte k of the input to the low byte of 16-bit lane k.
    let x = u64::from(x);
    let y = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let y = (y | (y << 8)) & 0x00ff_00ff_00ff_00ff;
    // Each lane's high nibble to its low byte (the first digit), low nibble to its high byte.
    let n = ((y >> 4) & 0x000f_000f_000f_000f) | ((y & 0x000f_000f_000f_000f) << 8);
    // '0' + n, plus the 0x27 from '9' + 1 to 'a' where n > 9 (n + 6 carries into bit 4).
    let letters = ((n + 6 * L) >> 4) & L;
    n + 0x30 * L + letters * 0x27
}
