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

/// Decodes pairs of hex digits (either case) into `out` (as many as fit); returns flags
/// with `0xe0` bits set if any was not a hex digit (the `0x10` bit, set by upper-case digits
/// taken digit by digit, is not meaningful).
#[inline]
fn decode_pairs(b: &[u8], out: &mut [u8]) -> u8 {
    let mut flags = 0u8;
    // Sixteen digits at a time while eight bytes of room remain, then digit by digit.
    let mut blocks = b.chunks_exact(16);
    let mut octets = out.chunks_exact_mut(8);
    let mut done = 0;
    for (digits, o) in (&mut blocks).zip(&mut octets) {
        let mut src = [0u8; 16];
        src.copy_from_slice(digits);
        let mut dst = [0u8; 8];
        flags |= decode_block(&src, &mut dst);
        o.copy_from_slice(&dst);
        done += 8;
    }
    let (b, out) = (b.get(done * 2..).unwrap_or_default(), &mut out[done..]);
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        flags |= hi | lo;
        *o = ((hi & 0xf) << 4) | (lo & 0xf);
    }
    flags
}

/// Eight bytes from sixteen hex digits (either case); `0xe0` if any byte was not a hex
/// digit (else 0). Written as fixed-size loops of plain byte arithmetic without tables or
/// branches, which the compiler turns into a few vector instructions (this decodes the
/// nonce of every authenticated request).
#[inline]
fn decode_block(src: &[u8; 16], dst: &mut [u8; 8]) -> u8 {
    let mut values = [0u8; 16];
    let mut bad = 0u8;
    for (v, &c) in values.iter_mut().zip(src) {
        let digit = c.wrapping_sub(b'0');
        let letter = (c | 0x20).wrapping_sub(b'a');
        let is_digit = digit < 10;
        let is_letter = letter < 6;
        bad |= u8::from(!(is_digit | is_letter));
        *v = if is_digit {
            digit
        } else {
            letter.wrapping_add(10)
        };
    }
    for (i, d) in dst.iter_mut().enumerate() {
        *d = (values[2 * i] << 4) | (values[2 * i + 1] & 0x0f);
    }
    if bad == 0 { 0 } else { 0xe0 }
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
