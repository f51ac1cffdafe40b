//! Single-token and numeric headers: Call-ID, CSeq, Max-Forwards, Expires, Content-Length,
//! Content-Type, Allow, Supported, Require, Date.

use super::ValueError;
use crate::sip::lex::{self, Cursor, Params};
use crate::sip::message::Method;

fn whole<'a, T>(
    value: &'a str,
    f: impl FnOnce(&mut Cursor<'a>) -> Result<T, ValueError>,
) -> Result<T, ValueError> {
    let mut c = Cursor::new(value);
    c.skip_lws();
    let t = f(&mut c)?;
    c.skip_lws();
    if c.is_empty() {
        Ok(t)
    } else {
        Err(ValueError::new(
            c.pos(),
            "unexpected characters after value",
        ))
    }
}

/// Call-ID: `word [ "@" word ]`.
pub(crate) fn parse_call_id(value: &str) -> Result<&str, ValueError> {
    // The common shape, without white space around it, in one pass; anything else (and every
    // error) the general way below.
    let b = value.as_bytes();
    let n = lex::word_run_len(b, 0);
    if n > 0
        && (n == b.len()
            || (b[n] == b'@' && {
                let m = lex::word_run_len(b, n + 1);
                m > 0 && n + 1 + m == b.len()
            }))
    {
        return Ok(value);
    }
    parse_call_id_full(value)
}

/// [`parse_call_id`] by the general grammar.
#[inline(never)] // kept out of the one-pass reader that runs first
pub(super) fn parse_call_id_full(value: &str) -> Result<&str, ValueError> {
    whole(value, |c| {
        let start = c.pos();
        if c.take_while(lex::is_word_char).is_empty() {
            return Err(ValueError::new(c.pos(), "Call-ID must start with a word"));
        }
        if c.eat(b'@') && c.take_while(lex::is_word_char).is_empty() {
            return Err(ValueError::new(c.pos(), "expected a word after '@'"));
        }
        Ok(&value[start..c.pos()])
    })
}

fn digits<'a>(c: &mut Cursor<'a>, what: &'static str) -> Result<&'a str, ValueError> {
    let d = c.take_while(|b| b.is_ascii_digit());
    if d.is_empty() {
        Err(ValueError::new(c.pos(), what))
    } else {
        Ok(d)
    }
}

/// A decimal number that must fit in `u32`.
pub(crate) fn parse_u32(value: &str) -> Result<u32, ValueError> {
    whole(value, |c| {
        let at = c.pos();
        let d = digits(c, "expected a number")?;
        lex::parse_u64(d, 10)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(ValueError::new(at, "number out of range"))
    })
}

/// `delta-seconds`: RFC 3261 §20.19 allows 0 to 2³²−1; larger values are out of range here
/// (the strict check reports them) rather than silently clamped.
pub(crate) fn parse_delta_seconds(value: &str) -> Result<u32, ValueError> {
    parse_u32(value)
}

/// Content-Length: a decimal byte count.
pub(crate) fn parse_content_length(value: &str) -> Result<usize, ValueError> {
    whole(value, |c| {
        let at = c.pos();
        let d = digits(c, "expected a number")?;
        lex::parse_u64(d, 19)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(ValueError::new(at, "Content-Length out of range"))
    })
}

/// One method token (Allow).
pub(crate) fn parse_method(value: &str) -> Result<Method<'_>, ValueError> {
    whole(value, |c| {
        c.token()
            .map(Method::from_token)
            .ok_or(ValueError::new(c.pos(), "expected a method"))
    })
}

/// One option tag (Supported, Require).
pub(crate) fn parse_option_tag(value: &str) -> Result<&str, ValueError> {
    whole(value, |c| {
        c.token()
            .ok_or(ValueError::new(c.pos(), "expected an option tag"))
    })
}

/// CSeq: `1*DIGIT LWS Method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number: any 32-bit value (RFC 3261 §8.1.1.5 has a UA choose one below 2³¹,
    /// but a received one up to 2³²−1 is valid and accepted).
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parse a CSeq value.
    pub fn parse(value: &'a str) -> Result<CSeq<'a>, ValueError> {
        // The common shape `digits SP method` in one pass; anything else (and every error) the
        // general way.
        let b = value.as_bytes();
        let d = lex::run_len(b, 0, |x| x.is_ascii_digit());
        if d > 0 && b.get(d) == Some(&b' ') {
            let t = lex::token_run_len(b, d + 1);
            if t > 0
                && d + 1 + t == b.len()
                && let Some(seq) =
                    lex::parse_u64(&value[..d], 10).and_then(|n| u32::try_from(n).ok())
            {
                return Ok(CSeq {
                    seq,
                    method: Method::from_token(&value[d + 1..]),
                });
            }
        }
        Self::parse_full(value)
    }

    /// [`CSeq::parse`] by the general grammar.
    #[inline(never)] // kept out of the one-pass reader that runs first
    pub(super) fn parse_full(value: &'a str) -> Result<CSeq<'a>, ValueError> {
        whole(value, |c| {
            let at = c.pos();
            let d = digits(c, "CSeq must start with a sequence number")?;
            let seq = lex::parse_u64(d, 10)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(ValueError::new(at, "CSeq number does not fit in 32 bits"))?;
            if !c.skip_lws() {
                return Err(ValueError::new(
                    c.pos(),
                    "expected white space after CSeq number",
                ));
            }
            let method = c
                .token()
                .ok_or(ValueError::new(c.pos(), "expected CSeq method"))?;
            Ok(CSeq {
                seq,
                method: Method::from_token(method),
            })
        })
    }
}

/// Content-Type: `type/subtype *(;param)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    /// Top-level type, e.g. `application`.
    pub media_type: &'a str,
    /// Subtype, e.g. `sdp`.
    pub subtype: &'a str,
    /// Parameters, e.g. `charset=UTF-8`, `boundary=…`.
    pub params: Params<'a>,
}

impl<'a> ContentType<'a> {
    /// Parse a Content-Type value.
    pub fn parse(value: &'a str) -> Result<ContentType<'a>, ValueError> {
        whole(value, |c| {
            let media_type = c
                .token()
                .ok_or(ValueError::new(c.pos(), "expected media type"))?;
            if !c.eat_sep(b'/') {
                return Err(ValueError::new(c.pos(), "expected '/' in media type"));
            }
            let subtype = c
                .token()
                .ok_or(ValueError::new(c.pos(), "expected media subtype"))?;
            let params = if c.eat_sep(b';') {
                lex::scan_params(c).map_err(|o| ValueError::new(o, "invalid media parameter"))?
            } else {
                Params::default()
            };
            Ok(ContentType {
                media_type,
                subtype,
                params,
            })
        })
    }

    /// Whether this is `type/subtype` (case-insensitive).
    #[must_use]
    pub fn is(&self, media_type: &str, subtype: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type)
            && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// A SIP-date (RFC 3261 §20.17: RFC 1123 date, always GMT), e.g. `Sat, 13 Nov 2010 23:29:00 GMT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of month, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–60 (leap second allowed).
    pub second: u8,
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Date {
    /// Parse a SIP-date. The weekday is checked for spelling only; the zone must be `GMT`.
    pub fn parse(value: &str) -> Result<Date, ValueError> {
        whole(value, |c| {
            let at = c.pos();
            let wk = c.take_while(|b| b.is_ascii_alphabetic());
            if !WEEKDAYS.iter().any(|d| d.eq_ignore_ascii_case(wk)) {
                return Err(ValueError::new(at, "expected a weekday (Mon..Sun)"));
            }
            if !c.eat(b',') || !c.eat(b' ') {
                return Err(ValueError::new(c.pos(), "expected ', ' after weekday"));
            }
            let day = fixed_num(c, 2, 1, 31, "day")?;
            expect_sp(c)?;
            let at = c.pos();
            let mon = c.take_while(|b| b.is_ascii_alphabetic());
            let month = MONTHS
                .iter()
                .position(|m| m.eq_ignore_ascii_case(mon))
                .ok_or(ValueError::new(at, "expected a month (Jan..Dec)"))?;
            expect_sp(c)?;
            let year = fixed_num(c, 4, 0, 9999, "year")?;
            expect_sp(c)?;
            let hour = fixed_num(c, 2, 0, 23, "hour")?;
            expect_colon(c)?;
            let minute = fixed_num(c, 2, 0, 59, "minute")?;
            expect_colon(c)?;
            let second = fixed_num(c, 2, 0, 60, "second")?;
            expect_sp(c)?;
            let at = c.pos();
            if !c
                .take_while(|b| b.is_ascii_alphabetic())
                .eq_ignore_ascii_case("GMT")
            {
                return Err(ValueError::new(at, "SIP dates must be in GMT"));
            }
            #[allow(clippy::cast_possible_truncation)] // ranges checked above
            Ok(Date {
                year: year as u16,
                month: month as u8 + 1,
                day: day as u8,
                hour: hour as u8,
                minute: minute as u8,
                second: second as u8,
            })
        })
    }

    /// Seconds since the Unix epoch (a leap second counts as the next second).
    #[must_use]
    pub fn unix_seconds(&self) -> i64 {
        // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

fn fixed_num(
    c: &mut Cursor<'_>,
    len: usize,
    min: u32,
    max: u32,
    what: &'static str,
) -> Result<u32, ValueError> {
    let at = c.pos();
    let d = c.take_while(|b| b.is_ascii_digit());
    if d.len() != len {
        return Err(ValueError::new(at, what));
    }
    let n = d.bytes().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    if n < min || n > max {
        return Err(ValueError::new(at, what));
    }
    Ok(n)
}

fn expect_sp(c: &mut Cursor<'_>) -> Result<(), ValueError> {
    if c.eat(b' ') {
        Ok(())
    } else {
        Err(ValueError::new(c.pos(), "expected a space"))
    }
}

fn expect_colon(c: &mut Cursor<'_>) -> Result<(), ValueError> {
    if c.eat(b':') {
        Ok(())
    } else {
        Err(ValueError::new(c.pos(), "expected ':'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_number_and_method() {
        let c = CSeq::parse("4711 INVITE").unwrap();
        assert_eq!(c.seq, 4711);
        assert_eq!(c.method, Method::Invite);
        assert!(CSeq::parse("INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert_eq!(
            CSeq::parse("36893488147419103232 INVITE")
                .unwrap_err()
                .offset,
            0
        );
    }

    #[test]
    fn call_id_word_at_word() {
        assert_eq!(
            parse_call_id(" a84b4c76e66710@pc33.atlanta.com ").unwrap(),
            "a84b4c76e66710@pc33.atlanta.com"
        );
        assert!(parse_call_id("a b").is_err());
        assert!(parse_call_id("a@").is_err());
    }

    #[test]
    fn numbers_reject_overflow_and_garbage() {
        assert_eq!(parse_u32("70").unwrap(), 70);
        assert!(parse_u32("4294967296").is_err());
        assert!(parse_u32("-1").is_err());
        assert_eq!(parse_content_length("0").unwrap(), 0);
        assert!(parse_content_length("99999999999999999999999").is_err());
    }

    #[test]
    fn content_type_with_params() {
        let ct = ContentType::parse("multipart/mixed;boundary=unique-boundary-1").unwrap();
        assert!(ct.is("Multipart", "MIXED"));
        assert_eq!(ct.params.get("boundary"), Some(Some("unique-boundary-1")));
        assert!(ContentType::parse("application").is_err());
    }

    #[test]
    fn sip_date_parses_and_converts_to_unix_time() {
        // RFC 3261 §20.17 example.
        let d = Date::parse("Sat, 13 Nov 2010 23:29:00 GMT").unwrap();
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second),
            (2010, 11, 13, 23, 29, 0)
        );
        assert_eq!(d.unix_seconds(), 1_289_690_940);
        assert_eq!(
            Date::parse("Thu, 01 Jan 1970 00:00:00 GMT")
                .unwrap()
                .unix_seconds(),
            0
        );
        // RFC 4475 §3.1.2.13 (baddate): a zone other than GMT is invalid.
        assert!(Date::parse("Fri, 01 Jan 2010 16:00:00 EST").is_err());
        assert!(Date::parse("Fri, 32 Jan 2010 16:00:00 GMT").is_err());
    }
}
