//! Shared lexical helpers for SIP header values (RFC 3261 §25.1).
//!
//! Header values are borrowed `&str` slices of the message; they may still contain folded
//! line breaks (`CRLF` followed by SP or HTAB), which the grammar treats as linear white space
//! (LWS). Every helper here skips LWS the same way, so typed views never need an unfolded copy.

/// Byte classes, one bit each, looked up in [`CLASS`] (one load per byte on the hot path).
const TOKEN: u8 = 1;
const PARAM: u8 = 2;
const WORD: u8 = 4;

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
const fn token_rule(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// Parameter name and unquoted value characters: token plus the URI paramchar extras.
const fn param_rule(b: u8) -> bool {
    token_rule(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'$' | b'(' | b')')
}

/// `word` characters (Call-ID, RFC 3261 §25.1): token plus `( ) < > : \ " / [ ] ? { }`.
const fn word_rule(b: u8) -> bool {
    token_rule(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let b = i as u8;
        if token_rule(b) {
            t[i] |= TOKEN;
        }
        if param_rule(b) {
            t[i] |= PARAM;
        }
        if word_rule(b) {
            t[i] |= WORD;
        }
        i += 1;
    }
    t
};

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
#[inline]
pub(crate) fn is_token_char(b: u8) -> bool {
    CLASS[usize::from(b)] & TOKEN != 0
}

/// `word` characters (Call-ID, RFC 3261 §25.1).
#[inline]
pub(crate) fn is_word_char(b: u8) -> bool {
    CLASS[usize::from(b)] & WORD != 0
}

/// SP or HTAB.
#[inline]
pub(crate) const fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Length of the LWS run at the start of `s` (SP, HTAB, and CRLF / LF followed by SP/HTAB).
#[inline]
pub(crate) fn lws_len(s: &[u8]) -> usize {
    // Fast path: most places have no white space at all.
    if !matches!(s.first(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        return 0;
    }
    let mut i = 0;
    loop {
        match s.get(i) {
            Some(&b) if is_wsp(b) => i += 1,
            Some(b'\r')
                if s.get(i + 1) == Some(&b'\n') && s.get(i + 2).is_some_and(|&b| is_wsp(b)) =>
            {
                i += 3
            }
            Some(b'\n') if s.get(i + 1).is_some_and(|&b| is_wsp(b)) => i += 2,
            _ => return i,
        }
    }
}

/// Offset of the first SP or HTAB in `s` (byte search; `str::find` with a char set decodes
/// UTF-8 and is several times slower on the hot path).
#[inline]
pub(crate) fn find_wsp(s: &str) -> Option<usize> {
    s.bytes().position(is_wsp)
}

/// Offset of the last SP or HTAB in `s`.
#[inline]
pub(crate) fn rfind_wsp(s: &str) -> Option<usize> {
    s.bytes().rposition(is_wsp)
}

/// `s` without leading SP / HTAB.
#[inline]
pub(crate) fn trim_wsp_start(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| is_wsp(b)).count();
    &s[n..]
}

/// `s` without trailing SP / HTAB.
#[inline]
pub(crate) fn trim_wsp_end(s: &str) -> &str {
    let n = s.bytes().rev().take_while(|&b| is_wsp(b)).count();
    &s[..s.len() - n]
}

/// `s` without leading and trailing LWS.
#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let lws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    // Fast path: values the parser has trimmed already.
    if !b.first().is_some_and(lws) && !b.last().is_some_and(lws) {
        return s;
    }
    let start = lws_len(b);
    let mut end = b.len();
    while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    &s[start..end]
}

/// A cursor over one header value. Offsets are relative to the value's start; typed views
/// add the value's offset in the message when they report an error.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    /// A cursor over `s` positioned at `pos` (clamped to the end).
    #[inline]
    pub(crate) fn at(s: &'a str, pos: usize) -> Self {
        Cursor {
            s,
            pos: pos.min(s.len()),
        }
    }

    /// Current byte offset.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The unread rest.
    #[inline]
    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// Whether everything was read.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// The next byte, if any.
    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Skip linear white space; returns whether any was skipped.
    #[inline(always)]
    pub(crate) fn skip_lws(&mut self) -> bool {
        // The test for "no white space here" (nearly every call) is inlined into the caller;
        // the loop is not.
        if !matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            return false;
        }
        self.skip_lws_run()
    }

    #[inline(never)]
    fn skip_lws_run(&mut self) -> bool {
        let n = lws_len(self.s.as_bytes().get(self.pos..).unwrap_or_default());
        self.pos += n;
        n > 0
    }

    /// Move past `n` bytes the caller has examined (clamped to the end).
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.s.len());
    }

    /// Consume `b` if it is next.
    #[inline]
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consume `b` surrounded by optional LWS (`SWS b SWS`, as in RFC 3261's SEMI, COMMA,
    /// EQUAL, SLASH, COLON).
    #[inline]
    pub(crate) fn eat_sep(&mut self, b: u8) -> bool {
        let save = self.pos;
        self.skip_lws();
        if self.eat(b) {
            self.skip_lws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Consume bytes while `f` holds; returns them (possibly empty).
    #[inline]
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let rest = self.s.as_bytes().get(start..).unwrap_or_default();
        // A local index over the rest (not `self.pos` per byte) keeps the loop in registers.
        let n = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.pos = start + n;
        // Only ASCII predicates are used, so the boundaries are char boundaries unless `f`
        // accepts non-ASCII bytes, in which case it accepts whole UTF-8 sequences.
        &self.s[start..self.pos]
    }

    /// A non-empty `token`.
    #[inline]
    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token_char);
        if t.is_empty() { None } else { Some(t) }
    }

    /// A `quoted-string` starting at the cursor (which must be at `"`). Returns the text
    /// between the quotes, escapes left as written. `Err(offset)` of the opening quote when
    /// the string is not closed.
    pub(crate) fn quoted_string(&mut self) -> Result<Option<&'a str>, usize> {
        if self.peek() != Some(b'"') {
            return Ok(None);
        }
        let open = self.pos;
        match quoted_len(&self.s.as_bytes()[open..]) {
            Some(len) => {
                self.pos = open + len;
                Ok(Some(&self.s[open + 1..open + len - 1]))
            }
            None => Err(open),
        }
    }
}

/// Length of the quoted-string at the start of `s` (which starts with `"`), including both
/// quotes; `None` when it is never closed.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    debug_assert_eq!(s.first(), Some(&b'"'));
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Split a header value on commas that are outside quoted strings and angle brackets
/// (RFC 3261 §7.3.1), yielding each element without surrounding LWS, with its offset in the
/// value. Empty elements (as in `a,,b`) are yielded as empty strings so a strict check can
/// see them.
pub(crate) fn split_list(value: &str) -> SplitList<'_> {
    SplitList {
        s: value,
        pos: 0,
        done: false,
        every_comma: false,
    }
}

/// [`split_list`] for a list whose elements never hold a comma but may hold `"`, `<` and
/// `>` as plain characters (In-Reply-To's Call-IDs, RFC 3261 §20.21, §25.1): every comma
/// separates.
pub(crate) fn split_on_commas(value: &str) -> SplitList<'_> {
    SplitList {
        every_comma: true,
        ..split_list(value)
    }
}

/// The first element [`split_list`] yields for `value`, found without the iterator: the
/// common single-element value costs one search for the bytes that matter.
#[inline]
pub(crate) fn first_element(value: &str) -> &str {
    let b = value.as_bytes();
    if memchr::memchr3(b',', b'"', b'<', b).is_none() {
        return trim_lws(value);
    }
    split_list(value).next().map_or("", |(_, v)| v)
}

/// Iterator returned by [`split_list`].
#[derive(Debug, Clone)]
pub(crate) struct SplitList<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
    /// Quotes and angle brackets are plain characters.
    every_comma: bool,
}

impl<'a> Iterator for SplitList<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        let mut angle = false;
        // Jump between the bytes that matter (memchr), not byte by byte.
        while i < b.len() {
            if self.every_comma {
                i = memchr::memchr(b',', &b[i..]).map_or(b.len(), |n| i + n);
                break;
            }
            let next = if angle {
                memchr::memchr2(b'>', b'"', &b[i..])
            } else {
                memchr::memchr3(b',', b'"', b'<', &b[i..])
            };
            let Some(n) = next else {
                i = b.len();
                break;
            };
            i += n;
            match b[i] {
                b'"' => match quoted_len(&b[i..]) {
                    Some(n) => i += n,
                    None => i = b.len(),
                },
                b'<' => {
                    angle = true;
                    i += 1;
                }
                b'>' => {
                    angle = false;
                    i += 1;
                }
                _ => break, // a comma outside quotes and brackets
            }
        }
        let piece = &self.s[start..i.min(b.len())];
        if i >= b.len() {
            self.done = true;
        } else {
            self.pos = i + 1;
        }
        let lead = lws_len(piece.as_bytes());
        Some((start + lead, trim_lws(piece)))
    }
}

/// One `;name[=value]` parameter as written (value unquoted only if it was a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// Parameter name as written (compare case-insensitively).
    pub name: &'a str,
    /// Value as written: `None` for a flag parameter such as `;lr`; quoted values keep their
    /// quotes so a round trip is exact (use [`Param::unquoted`] for the text).
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value without surrounding double quotes (escapes left as written).
    #[must_use]
    pub fn unquoted(&self) -> Option<&'a str> {
        self.value.map(|v| {
            if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                &v[1..v.len() - 1]
            } else {
                v
            }
        })
    }
}

/// A borrowed list of `;`-separated parameters, parsed lazily and without allocation.
/// The raw text starts at the first parameter name (after the first `;`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Wrap raw parameter text (`a=1;b;c="x"`) that a parser has already validated.
    pub(crate) const fn from_raw(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The raw text as written, without the leading `;`.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether there are no parameters.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Iterate the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter {
            c: Cursor::new(self.raw),
            first: true,
        }
    }

    /// The first parameter named `name` (case-insensitive): `Some(None)` for a flag,
    /// `Some(Some(v))` with the value (quotes kept), `None` when absent.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }

    /// Whether a parameter named `name` is present.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    c: Cursor<'a>,
    first: bool,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        if !self.first && !self.c.eat_sep(b';') {
            return None;
        }
        self.first = false;
        self.c.skip_lws();
        let name = self.c.take_while(is_param_char);
        if name.is_empty() {
            return None;
        }
        let value = if self.c.eat_sep(b'=') {
            let start = self.c.pos();
            match self.c.quoted_string() {
                Ok(Some(_)) => Some(&self.c.s[start..self.c.pos()]),
                Ok(None) => Some(self.c.take_while(is_param_value_char)),
                Err(_) => None,
            }
        } else {
            None
        };
        Some(Param { name, value })
    }
}

/// Characters of a parameter name: token, plus the unreserved/escaped set URI parameters use.
#[inline]
pub(crate) fn is_param_char(b: u8) -> bool {
    CLASS[usize::from(b)] & PARAM != 0
}

/// Characters of an unquoted parameter value: token, host (IPv6 reference), URI paramchar.
#[inline]
pub(crate) fn is_param_value_char(b: u8) -> bool {
    is_param_char(b)
}

/// Scan a `;param` list starting at the cursor (positioned just after the first `;`), checking
/// each element's grammar, and return the raw text it covers. `Err(offset)` names the first
/// byte that is not a valid parameter.
pub(crate) fn scan_params<'a>(c: &mut Cursor<'a>) -> Result<Params<'a>, usize> {
    scan_params_visit(c, |_, _| Ok(())).map_err(|(at, _)| at)
}

/// [`scan_params`], handing each parameter (as [`Params::iter`] would yield it) and the offset
/// of its name to `visit` in the same pass, so typed views check and remember the parameters
/// they know without scanning the list again. Errors are (offset, reason).
pub(crate) fn scan_params_visit<'a>(
    c: &mut Cursor<'a>,
    mut visit: impl FnMut(Param<'a>, usize) -> Result<(), (usize, &'static str)>,
) -> Result<Params<'a>, (usize, &'static str)> {
    let start = c.pos();
    let mut end;
    loop {
        c.skip_lws();
        let name_at = c.pos();
        let name = c.take_while(is_param_char);
        if name.is_empty() {
            return Err((c.pos(), "expected a parameter name"));
        }
        let mut value = None;
        if c.eat_sep(b'=') {
            let value_at = c.pos();
            match c.quoted_string() {
                Ok(Some(_)) => value = Some(&c.s[value_at..c.pos()]),
                Ok(None) => {
                    let v = c.take_while(is_param_value_char);
                    if v.is_empty() {
                        return Err((c.pos(), "expected a parameter value"));
                    }
                    value = Some(v);
                }
                Err(at) => return Err((at, "unterminated quoted parameter value")),
            }
        }
        visit(Param { name, value }, name_at)?;
        end = c.pos();
        if !c.eat_sep(b';') {
            break;
        }
    }
    Ok(Params::from_raw(&c.s[start..end]))
}

/// [`scan_params_visit`] for the shape nearly every parameter list has, in one pass over the
/// bytes: at `at` either the end of `s` (no parameters) or `;` and then `name[=value]`
/// parameters separated by `;`, with no LWS, no quoted value and nothing after the last one.
/// Each parameter and the offset of its name go to `visit`, which returns `false` to give up.
/// `None` for any other shape (the caller then runs its full grammar); otherwise the same
/// parameters, in the same order, as [`scan_params_visit`] yields after the first `;`.
#[inline]
pub(crate) fn scan_params_common<'a>(
    s: &'a str,
    at: usize,
    mut visit: impl FnMut(Param<'a>, usize) -> bool,
) -> Option<Params<'a>> {
    let b = s.as_bytes();
    if at == b.len() {
        return Some(Params::default());
    }
    if b.get(at) != Some(&b';') {
        return None;
    }
    let start = at + 1;
    let mut i = start;
    loop {
        let n = param_run_len(b, i);
        if n == 0 {
            return None;
        }
        let name = s.get(i..i + n)?;
        let name_at = i;
        i += n;
        let mut value = None;
        if b.get(i) == Some(&b'=') {
            i += 1;
            // `is_param_value_char` is `is_param_char`.
            let m = param_run_len(b, i);
            if m == 0 {
                return None;
            }
            value = Some(s.get(i..i + m)?);
            i += m;
        }
        if !visit(Param { name, value }, name_at) {
            return None;
        }
        match b.get(i) {
            None => return Some(Params::from_raw(s.get(start..)?)),
            Some(b';') => i += 1,
            Some(_) => return None,
        }
    }
}

/// Length of the run of bytes of `b` from `at` for which `f` holds (0 past the end).
#[inline]
pub(crate) fn run_len(b: &[u8], at: usize, f: impl Fn(u8) -> bool) -> usize {
    let rest = b.get(at..).unwrap_or_default();
    rest.iter().position(|&x| !f(x)).unwrap_or(rest.len())
}

/// [`run_len`] for a byte class: the length of the run of bytes of `b` from `at` whose entry
/// in `table` has the bit `class` set (0 past the end). `class` must be a single bit.
///
/// The hot scans (URI users, parameters, Call-IDs, header names) go four bytes at a time: the
/// four entries are and-ed, so a chunk whose bytes are all in the class costs one test instead
/// of four (the bit survives the and exactly when every byte has it). The first chunk that
/// holds a byte outside the class, and the tail, are looked at byte by byte.
#[inline]
pub(crate) fn class_run_len(b: &[u8], at: usize, table: &[u8; 256], class: u8) -> usize {
    debug_assert!(class.is_power_of_two());
    let rest = b.get(at..).unwrap_or_default();
    let mut n = 0;
    for c in rest.chunks_exact(4) {
        let all = table[usize::from(c[0])]
            & table[usize::from(c[1])]
            & table[usize::from(c[2])]
            & table[usize::from(c[3])];
        if all & class == 0 {
            break;
        }
        n += 4;
    }
    let tail = rest.get(n..).unwrap_or_default();
    n + tail
        .iter()
        .position(|&x| table[usize::from(x)] & class == 0)
        .unwrap_or(tail.len())
}

/// [`class_run_len`] of `token` characters.
#[inline]
pub(crate) fn token_run_len(b: &[u8], at: usize) -> usize {
    class_run_len(b, at, &CLASS, TOKEN)
}

/// [`class_run_len`] of parameter name and unquoted value characters ([`is_param_char`]).
#[inline]
pub(crate) fn param_run_len(b: &[u8], at: usize) -> usize {
    class_run_len(b, at, &CLASS, PARAM)
}

/// [`class_run_len`] of `word` characters ([`is_word_char`]).
#[inline]
pub(crate) fn word_run_len(b: &[u8], at: usize) -> usize {
    class_run_len(b, at, &CLASS, WORD)
}

/// Decode one hex digit.
#[inline]
pub(crate) const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parse a decimal number of at most `max_digits` digits that fits in `u64`.
#[inline]
pub(crate) fn parse_u64(s: &str, max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits {
        return None;
    }
    // One pass: each byte is checked as a digit where it is added.
    let mut n: u64 = 0;
    for b in s.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// A key that compares a name of 1 to 8 bytes ASCII-case-insensitively with a known name: for
/// any bytes `b` and a known name `k` of the same length made of lower-case letters, digits and
/// `-`, `short_key(b) == short_key(k)` exactly when `b` equals `k` ignoring ASCII case
/// (`const` keys of the known names are computed by the same function). Longer names all get
/// the same key, so callers compare the length too.
///
/// The bytes are packed little-endian into a word (names of 4 to 8 bytes as two overlapping
/// 4-byte loads, which with the length determine every byte) and folded: bit 5 is set in every
/// byte that has bit 6 set, which maps `A`–`Z` onto `a`–`z`; no other byte becomes a
/// lower-case letter, and digits and `-` (bit 6 clear) stay what they are.
#[inline]
pub(crate) const fn short_key(b: &[u8]) -> u64 {
    const fn le(b: &[u8], at: usize, n: usize) -> u64 {
        let mut w = 0u64;
        let mut i = 0;
        while i < n {
            w |= (b[at + i] as u64) << (8 * i);
            i += 1;
        }
        w
    }
    let n = b.len();
    let w = if n < 4 {
        le(b, 0, n)
    } else if n <= 8 {
        le(b, 0, 4) | (le(b, n - 4, 4) << 32)
    } else {
        return u64::MAX;
    };
    w | ((w >> 1) & 0x2020_2020_2020_2020)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn lws_includes_folded_line_breaks() {
        assert_eq!(lws_len(b" \t\r\n  x"), 6);
        assert_eq!(
            lws_len(b"\r\nx"),
            0,
            "CRLF not followed by WSP ends the header"
        );
    }

    #[test]
    fn split_list_ignores_commas_in_quotes_and_angle_brackets() {
        let v = "\"a, b\" <sip:x@y;p=1,2>;q=1 , <sip:z@w>";
        let parts: Vec<_> = split_list(v).map(|(_, s)| s).collect();
        assert_eq!(parts, ["\"a, b\" <sip:x@y;p=1,2>;q=1", "<sip:z@w>"]);
    }

    #[test]
    fn first_element_is_what_split_list_yields_first() {
        for v in [
            "",
            "a",
            " a ",
            "SIP/2.0/UDP a;branch=1",
            "SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b",
            ", b",
            "\"x, y\" <sip:a,b@c>;q=1, <sip:d@e>",
            "<sip:a@b",
            "\"open, b",
        ] {
            assert_eq!(
                first_element(v),
                split_list(v).next().map_or("", |(_, e)| e),
                "{v:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn first_element_agrees_with_split_list(v in "[a ,\"<>\\\\;=\r\n\t]{0,24}") {
            proptest::prop_assert_eq!(
                first_element(&v),
                split_list(&v).next().map_or("", |(_, e)| e)
            );
        }

        #[test]
        fn trim_lws_fast_path_agrees_with_the_general_trim(v in "[a \t\r\n]{0,12}") {
            let b = v.as_bytes();
            let start = lws_len(b);
            let mut end = b.len();
            while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
                end -= 1;
            }
            proptest::prop_assert_eq!(trim_lws(&v), &v[start..end]);
        }
    }

    proptest::proptest! {
        #[test]
        fn short_key_matches_exactly_the_names_equal_ignoring_case(
            a in "[A-Za-z0-9_.!~*'()\\[\\]/:&+$%`-]{1,8}|[\\x00-\\xff]{1,4}",
            known in "(branch|received|rport|maddr|ttl|tag|tls-sctp|wss|[a-z0-9-]{1,8})",
            flips in proptest::collection::vec(proptest::bool::ANY, 8),
        ) {
            let k = short_key(known.as_bytes());
            if a.len() == known.len() {
                proptest::prop_assert_eq!(short_key(a.as_bytes()) == k, a.eq_ignore_ascii_case(&known));
            }
            // Any mix of cases of the known name has its key.
            let mixed: Vec<u8> = known
                .bytes()
                .zip(flips.iter().cycle())
                .map(|(b, &up)| if up { b.to_ascii_uppercase() } else { b })
                .collect();
            proptest::prop_assert_eq!(short_key(&mixed), k);
        }

        #[test]
        fn parse_u64_reads_at_most_max_digits_of_a_decimal_number(
            s in "[0-9]{0,21}|[0-9+ a-]{0,6}",
            max in 0usize..21,
        ) {
            let want = if s.is_empty() || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                s.parse::<u64>().ok()
            };
            proptest::prop_assert_eq!(parse_u64(&s, max), want);
        }
    }

    #[test]
    fn params_iterate_flags_values_and_quoted_values() {
        let p = Params::from_raw("lr;ttl=15 ; maddr=\"x;y\";Branch=z9hG4bK1");
        let all: Vec<_> = p.iter().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("maddr").unwrap(), Some("\"x;y\""));
        assert_eq!(p.get("branch").unwrap(), Some("z9hG4bK1"));
    }
}
