//! Header names and the raw header index entry.
//!
//! Names are matched case-insensitively and compact forms (RFC 3261 §7.3.3 and the later
//! RFCs that define one) map to the same [`HeaderName`] as the long form.

use core::fmt;

/// A header name latchkey knows, or [`HeaderName::Other`].
///
/// Compact forms map to the long form: `i` Call-ID, `m` Contact, `e` Content-Encoding,
/// `l` Content-Length, `c` Content-Type, `f` From, `s` Subject, `k` Supported, `t` To, `v` Via
/// (RFC 3261 §7.3.3); `o` Event, `u` Allow-Events (RFC 6665); `r` Refer-To (RFC 3515);
/// `b` Referred-By (RFC 3892); `a` Accept-Contact, `j` Reject-Contact, `d` Request-Disposition
/// (RFC 3841); `x` Session-Expires (RFC 4028); `y` Identity (RFC 8224).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderName {
    /// `Accept`
    Accept,
    /// `Accept-Contact` (`a`)
    AcceptContact,
    /// `Accept-Encoding`
    AcceptEncoding,
    /// `Accept-Language`
    AcceptLanguage,
    /// `Alert-Info`
    AlertInfo,
    /// `Allow`
    Allow,
    /// `Allow-Events` (`u`)
    AllowEvents,
    /// `Authentication-Info`
    AuthenticationInfo,
    /// `Authorization`
    Authorization,
    /// `Call-ID` (`i`)
    CallId,
    /// `Call-Info`
    CallInfo,
    /// `Contact` (`m`)
    Contact,
    /// `Content-Disposition`
    ContentDisposition,
    /// `Content-Encoding` (`e`)
    ContentEncoding,
    /// `Content-Language`
    ContentLanguage,
    /// `Content-Length` (`l`)
    ContentLength,
    /// `Content-Type` (`c`)
    ContentType,
    /// `CSeq`
    CSeq,
    /// `Date`
    Date,
    /// `Error-Info`
    ErrorInfo,
    /// `Event` (`o`)
    Event,
    /// `Expires`
    Expires,
    /// `From` (`f`)
    From,
    /// `Identity` (`y`)
    Identity,
    /// `In-Reply-To`
    InReplyTo,
    /// `Max-Forwards`
    MaxForwards,
    /// `MIME-Version`
    MimeVersion,
    /// `Min-Expires`
    MinExpires,
    /// `Organization`
    Organization,
    /// `Priority`
    Priority,
    /// `Proxy-Authenticate`
    ProxyAuthenticate,
    /// `Proxy-Authorization`
    ProxyAuthorization,
    /// `Proxy-Require`
    ProxyRequire,
    /// `Record-Route`
    RecordRoute,
    /// `Refer-To` (`r`)
    ReferTo,
    /// `Referred-By` (`b`)
    ReferredBy,
    /// `Reject-Contact` (`j`)
    RejectContact,
    /// `Reply-To`
    ReplyTo,
    /// `Request-Disposition` (`d`)
    RequestDisposition,
    /// `Require`
    Require,
    /// `Retry-After`
    RetryAfter,
    /// `Route`
    Route,
    /// `Server`
    Server,
    /// `Session-Expires` (`x`)
    SessionExpires,
    /// `Subject` (`s`)
    Subject,
    /// `Subscription-State`
    SubscriptionState,
    /// `Supported` (`k`)
    Supported,
    /// `Timestamp`
    Timestamp,
    /// `To` (`t`)
    To,
    /// `Unsupported`
    Unsupported,
    /// `User-Agent`
    UserAgent,
    /// `Via` (`v`)
    Via,
    /// `Warning`
    Warning,
    /// `WWW-Authenticate`
    WwwAuthenticate,
    /// Any other header; its name is kept verbatim in [`Header::name`].
    Other,
}

/// The longest known header name.
const LONGEST: usize = 19;

/// (long form, compact form, name) — the table `as_str` and `compact` read; `from_name`
/// matches the same names (a test checks they agree).
const TABLE: &[(&str, Option<u8>, HeaderName)] = &[
    ("Accept", None, HeaderName::Accept),
    ("Accept-Contact", Some(b'a'), HeaderName::AcceptContact),
    ("Accept-Encoding", None, HeaderName::AcceptEncoding),
    ("Accept-Language", None, HeaderName::AcceptLanguage),
    ("Alert-Info", None, HeaderName::AlertInfo),
    ("Allow", None, HeaderName::Allow),
    ("Allow-Events", Some(b'u'), HeaderName::AllowEvents),
    ("Authentication-Info", None, HeaderName::AuthenticationInfo),
    ("Authorization", None, HeaderName::Authorization),
    ("Call-ID", Some(b'i'), HeaderName::CallId),
    ("Call-Info", None, HeaderName::CallInfo),
    ("Contact", Some(b'm'), HeaderName::Contact),
    ("Content-Disposition", None, HeaderName::ContentDisposition),
    ("Content-Encoding", Some(b'e'), HeaderName::ContentEncoding),
    ("Content-Language", None, HeaderName::ContentLanguage),
    ("Content-Length", Some(b'l'), HeaderName::ContentLength),
    ("Content-Type", Some(b'c'), HeaderName::ContentType),
    ("CSeq", None, HeaderName::CSeq),
    ("Date", None, HeaderName::Date),
    ("Error-Info", None, HeaderName::ErrorInfo),
    ("Event", Some(b'o'), HeaderName::Event),
    ("Expires", None, HeaderName::Expires),
    ("From", Some(b'f'), HeaderName::From),
    ("Identity", Some(b'y'), HeaderName::Identity),
    ("In-Reply-To", None, HeaderName::InReplyTo),
    ("Max-Forwards", None, HeaderName::MaxForwards),
    ("MIME-Version", None, HeaderName::MimeVersion),
    ("Min-Expires", None, HeaderName::MinExpires),
    ("Organization", None, HeaderName::Organization),
    ("Priority", None, HeaderName::Priority),
    ("Proxy-Authenticate", None, HeaderName::ProxyAuthenticate),
    ("Proxy-Authorization", None, HeaderName::ProxyAuthorization),
    ("Proxy-Require", None, HeaderName::ProxyRequire),
    ("Record-Route", None, HeaderName::RecordRoute),
    ("Refer-To", Some(b'r'), HeaderName::ReferTo),
    ("Referred-By", Some(b'b'), HeaderName::ReferredBy),
    ("Reject-Contact", Some(b'j'), HeaderName::RejectContact),
    ("Reply-To", None, HeaderName::ReplyTo),
    (
        "Request-Disposition",
        Some(b'd'),
        HeaderName::RequestDisposition,
    ),
    ("Require", None, HeaderName::Require),
    ("Retry-After", None, HeaderName::RetryAfter),
    ("Route", None, HeaderName::Route),
    ("Server", None, HeaderName::Server),
    ("Session-Expires", Some(b'x'), HeaderName::SessionExpires),
    ("Subject", Some(b's'), HeaderName::Subject),
    ("Subscription-State", None, HeaderName::SubscriptionState),
    ("Supported", Some(b'k'), HeaderName::Supported),
    ("Timestamp", None, HeaderName::Timestamp),
    ("To", Some(b't'), HeaderName::To),
    ("Unsupported", None, HeaderName::Unsupported),
    ("User-Agent", None, HeaderName::UserAgent),
    ("Via", Some(b'v'), HeaderName::Via),
    ("Warning", None, HeaderName::Warning),
    ("WWW-Authenticate", None, HeaderName::WwwAuthenticate),
];

/// A name of 2 to [`LONGEST`] bytes, ASCII letters folded to lower case, packed into three
/// words (with the length, the words determine every byte): by [`fold_key`] for the guard,
/// by [`class_key`] for classifying header names.
pub(crate) type Key = (u64, u64, u64);

/// `fold` each byte of a word: set bit 5 of the bytes that have bit 6 set. It maps `A`–`Z`
/// onto `a`–`z`, leaves `a`–`z`, `-` and every other byte below 0x40 alone, and maps no other
/// byte onto a lower-case letter or `-`, so two names fold alike exactly when they are equal
/// ignoring ASCII case, or when one holds a byte no known name has.
pub(crate) const fn fold(w: u64) -> u64 {
    w | ((w >> 1) & 0x2020_2020_2020_2020)
}

/// Little-endian word of `b[at..at + n]` (n ≤ 8).
const fn word(b: &[u8], at: usize, n: usize) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < n {
        w |= (b[at + i] as u64) << (8 * i);
        i += 1;
    }
    w
}

/// The folded key of a name of 2 to [`LONGEST`] bytes: equal for two names of the same length
/// exactly when they are equal ignoring ASCII case, if one of them holds only letters, digits
/// and `-` (see [`fold`]). Also the guard's header-name match.
#[inline]
pub(crate) const fn fold_key(b: &[u8]) -> Key {
    let n = b.len();
    let (a, m, z) = if n < 4 {
        (word(b, 0, n), 0, 0)
    } else if n < 8 {
        (word(b, 0, 4) | (word(b, n - 4, 4) << 32), 0, 0)
    } else if n <= 16 {
        (word(b, 0, 8), word(b, n - 8, 8), 0)
    } else {
        (word(b, 0, 8), word(b, 8, 8), word(b, n - 8, 8))
    };
    (fold(a), fold(m), fold(z))
}

/// The classifier's key of a name of 2 to [`LONGEST`] bytes: bytes 0–7, 8–15 and 16–23 as
/// little-endian words, zero past the end of the name, each [`fold`]ed. Unlike [`fold_key`]'s
/// overlapping loads, this layout is what the parser has in hand when it finds a header
/// line's colon a word at a time: the words before the colon, the last one cut at it (see
/// [`HeaderName::from_folded`]). With the length, the words determine every byte, so two
/// names of the same length have the same key exactly when they are equal ignoring ASCII case,
/// if one of them holds only letters, digits and `-`.
#[inline]
pub(crate) const fn class_key(b: &[u8]) -> Key {
    let n = b.len();
    // Overlapping loads, shifted so the bytes they share land on each other (OR-ing equal
    // bytes changes nothing).
    let (a, m, z) = if n < 4 {
        (word(b, 0, n), 0, 0)
    } else if n <= 8 {
        (word(b, 0, 4) | (word(b, n - 4, 4) << (8 * (n - 4))), 0, 0)
    } else if n <= 16 {
        (word(b, 0, 8), word(b, n - 8, 8) >> (8 * (16 - n)), 0)
    } else {
        (
            word(b, 0, 8),
            word(b, 8, 8),
            word(b, n - 8, 8) >> (8 * (24 - n)),
        )
    };
    (fold(a), fold(m), fold(z))
}

/// The slot of a name of `len` bytes with classifier key `key` ([`class_key`]) in [`SLOTS`]: a
/// multiplicative hash of the first two key words and the length. The multiplier was chosen
/// so that the known names take distinct slots; building [`SLOTS`] fails to compile if a name
/// added to [`TABLE`] collides.
#[inline]
const fn slot(key: &Key, len: usize) -> usize {
    const MUL: u64 = 0x7e52_12e7_6326_d853;
    ((key.0 ^ key.1.rotate_left(31) ^ len as u64).wrapping_mul(MUL) >> (64 - SLOT_BITS)) as usize
}

const SLOT_BITS: u32 = 7;

/// [`TABLE`]'s long forms by [`slot`]: (key, length, name); empty slots have length 0.
static SLOTS: [(Key, u8, HeaderName); 1 << SLOT_BITS] = {
    let mut slots = [((0, 0, 0), 0u8, HeaderName::Other); 1 << SLOT_BITS];
    let mut i = 0;
    while i < TABLE.len() {
        let name = TABLE[i].0.as_bytes();
        let key = class_key(name);
        let at = slot(&key, name.len());
        assert!(
            slots[at].1 == 0,
            "two header names share a slot: change slot()'s multiplier"
        );
        #[allow(clippy::cast_possible_truncation)] // names are at most LONGEST bytes
        {
            slots[at] = (key, name.len() as u8, TABLE[i].2);
        }
        i += 1;
    }
    slots
};

impl HeaderName {
    /// Classify a header name (long or compact form, any case).
    #[must_use]
    pub fn from_name(name: &str) -> HeaderName {
        let b = name.as_bytes();
        if b.len() == 1 {
            return Self::from_compact(b[0]);
        }
        if b.len() > LONGEST {
            return HeaderName::Other;
        }
        // The name folded to lower case in at most three machine words; the only known name it
        // can be is the one in its hash slot.
        Self::lookup(&class_key(b), b.len())
    }

    /// Classify a name of `len` bytes from its [`class_key`], as [`HeaderName::from_name`]
    /// classifies the name; for a name of one byte, the key's low byte is the name folded,
    /// which is a lower-case letter exactly when the name is an ASCII letter, the same letter
    /// lower-cased. Names of 0 or more than [`LONGEST`] bytes, whatever their key, are
    /// [`HeaderName::Other`].
    #[inline]
    pub(crate) fn from_folded(key: &Key, len: usize) -> HeaderName {
        if len == 1 {
            #[allow(clippy::cast_possible_truncation)] // the low byte
            return Self::from_compact(key.0 as u8);
        }
        Self::lookup(key, len)
    }

    /// The known name of 2 to [`LONGEST`] bytes with this key, if any: [`HeaderName::Other`]
    /// for any other length too (an empty name can meet only an empty slot, whose name is
    /// `Other`; a longer one matches no slot's length).
    #[inline]
    fn lookup(key: &Key, len: usize) -> HeaderName {
        let e = &SLOTS[slot(key, len)];
        if usize::from(e.1) == len && e.0 == *key {
            e.2
        } else {
            HeaderName::Other
        }
    }

    fn from_compact(c: u8) -> HeaderName {
        match c.to_ascii_lowercase() {
            b'a' => HeaderName::AcceptContact,
            b'u' => HeaderName::AllowEvents,
            b'i' => HeaderName::CallId,
            b'm' => HeaderName::Contact,
            b'e' => HeaderName::ContentEncoding,
            b'l' => HeaderName::ContentLength,
            b'c' => HeaderName::ContentType,
            b'o' => HeaderName::Event,
            b'f' => HeaderName::From,
            b'y' => HeaderName::Identity,
            b'r' => HeaderName::ReferTo,
            b'b' => HeaderName::ReferredBy,
            b'j' => HeaderName::RejectContact,
            b'x' => HeaderName::SessionExpires,
            b's' => HeaderName::Subject,
            b'k' => HeaderName::Supported,
            b't' => HeaderName::To,
            b'v' => HeaderName::Via,
            b'd' => HeaderName::RequestDisposition,
            _ => HeaderName::Other,
        }
    }

    /// The canonical long form, e.g. `"Call-ID"`; `None` for [`HeaderName::Other`].
    #[must_use]
    pub fn as_str(self) -> Option<&'static str> {
        TABLE.iter().find(|e| e.2 == self).map(|e| e.0)
    }

    /// The compact form, if the header has one.
    #[must_use]
    pub fn compact(self) -> Option<char> {
        TABLE
            .iter()
            .find(|e| e.2 == self)
            .and_then(|e| e.1.map(char::from))
    }

    /// Whether the header's grammar is a comma-separated list (RFC 3261 §7.3.1), so several
    /// values may share one header line. Authentication headers, `Date` and other headers whose
    /// values contain commas are not lists.
    #[must_use]
    pub fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | AcceptContact
                | AcceptEncoding
                | AcceptLanguage
                | AlertInfo
                | Allow
                | AllowEvents
                | CallInfo
                | Contact
                | ContentEncoding
                | ContentLanguage
                | ErrorInfo
                | InReplyTo
                | ProxyRequire
                | RecordRoute
                | RejectContact
                | RequestDisposition
                | Require
                | Route
                | Supported
                | Unsupported
                | Via
                | Warning
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str().unwrap_or("(other)"))
    }
}

/// One header line of a parsed message: the name as written, its classification, and the
/// value with surrounding white space removed (folded line breaks inside are kept; the typed
/// views treat them as white space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name as written (e.g. `"v"` or `"VIA"`).
    pub name: &'a str,
    /// What the name means.
    pub kind: HeaderName,
    /// The value, trimmed. [`Message::offset_of`](super::Message::offset_of) gives its byte
    /// offset in the message.
    pub value: &'a str,
}

impl<'a> Header<'a> {
    /// Whether this header is `name` (compact and long forms are the same header).
    #[must_use]
    pub fn is(&self, name: HeaderName) -> bool {
        self.kind == name
    }

    /// The elements of the value: for list headers ([`HeaderName::is_list`]) each
    /// comma-separated element (commas inside quotes and angle brackets do not split), for
    /// other headers the whole value.
    pub fn elements(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let mut whole = (!self.kind.is_list()).then_some(self.value);
        let mut parts = self.kind.is_list().then(|| {
            if self.kind == HeaderName::InReplyTo {
                super::lex::split_on_commas(self.value)
            } else {
                super::lex::split_list(self.value)
            }
        });
        core::iter::from_fn(move || match &mut parts {
            Some(it) => it.next().map(|(_, v)| v),
            None => whole.take(),
        })
    }

    /// The canonical name: the long form for known headers, the name as written otherwise.
    #[must_use]
    pub fn canonical_name(&self) -> &'a str {
        self.kind.as_str().unwrap_or(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reference;

    impl Reference {
        /// The classification as a plain `match` on the lower-cased name: the reference
        /// [`HeaderName::from_name`] is checked against.
        fn from_name_by_match(name: &str) -> HeaderName {
            let b = name.as_bytes();
            if b.len() == 1 {
                return HeaderName::from_compact(b[0]);
            }
            if b.len() > LONGEST {
                return HeaderName::Other;
            }
            let mut lower = [0u8; LONGEST];
            for (d, s) in lower.iter_mut().zip(b) {
                *d = s.to_ascii_lowercase();
            }
            match &lower[..b.len()] {
                b"accept" => HeaderName::Accept,
                b"accept-contact" => HeaderName::AcceptContact,
                b"accept-encoding" => HeaderName::AcceptEncoding,
                b"accept-language" => HeaderName::AcceptLanguage,
                b"alert-info" => HeaderName::AlertInfo,
                b"allow" => HeaderName::Allow,
                b"allow-events" => HeaderName::AllowEvents,
                b"authentication-info" => HeaderName::AuthenticationInfo,
                b"authorization" => HeaderName::Authorization,
                b"call-id" => HeaderName::CallId,
                b"call-info" => HeaderName::CallInfo,
                b"contact" => HeaderName::Contact,
                b"content-disposition" => HeaderName::ContentDisposition,
                b"content-encoding" => HeaderName::ContentEncoding,
                b"content-language" => HeaderName::ContentLanguage,
                b"content-length" => HeaderName::ContentLength,
                b"content-type" => HeaderName::ContentType,
                b"cseq" => HeaderName::CSeq,
                b"date" => HeaderName::Date,
                b"error-info" => HeaderName::ErrorInfo,
                b"event" => HeaderName::Event,
                b"expires" => HeaderName::Expires,
                b"from" => HeaderName::From,
                b"identity" => HeaderName::Identity,
                b"in-reply-to" => HeaderName::InReplyTo,
                b"max-forwards" => HeaderName::MaxForwards,
                b"mime-version" => HeaderName::MimeVersion,
                b"min-expires" => HeaderName::MinExpires,
                b"organization" => HeaderName::Organization,
                b"priority" => HeaderName::Priority,
                b"proxy-authenticate" => HeaderName::ProxyAuthenticate,
                b"proxy-authorization" => HeaderName::ProxyAuthorization,
                b"proxy-require" => HeaderName::ProxyRequire,
                b"record-route" => HeaderName::RecordRoute,
                b"refer-to" => HeaderName::ReferTo,
                b"referred-by" => HeaderName::ReferredBy,
                b"reject-contact" => HeaderName::RejectContact,
                b"reply-to" => HeaderName::ReplyTo,
                b"require" => HeaderName::Require,
                b"retry-after" => HeaderName::RetryAfter,
                b"route" => HeaderName::Route,
                b"server" => HeaderName::Server,
                b"session-expires" => HeaderName::SessionExpires,
                b"subject" => HeaderName::Subject,
                b"subscription-state" => HeaderName::SubscriptionState,
                b"supported" => HeaderName::Supported,
                b"timestamp" => HeaderName::Timestamp,
                b"to" => HeaderName::To,
                b"unsupported" => HeaderName::Unsupported,
                b"user-agent" => HeaderName::UserAgent,
                b"via" => HeaderName::Via,
                b"warning" => HeaderName::Warning,
                b"www-authenticate" => HeaderName::WwwAuthenticate,
                b"request-disposition" => HeaderName::RequestDisposition,
                _ => HeaderName::Other,
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn from_name_agrees_with_a_plain_match_on_the_lower_cased_name(
            name in "(?i)(call-id|via|from|to|cseq|contact|content-length|www-authenticate|x|[a-z]|[a-z-]{2,20}|[\\x00-\\xff]{0,20})",
        ) {
            proptest::prop_assert_eq!(HeaderName::from_name(&name), Reference::from_name_by_match(&name));
        }
    }

    #[test]
    fn folding_matches_no_name_that_differs_in_more_than_case() {
        for (long, _, name) in TABLE {
            let mut lower = alloc::string::String::from(*long);
            lower.make_ascii_lowercase();
            assert_eq!(HeaderName::from_name(&lower), *name);
            // A CR where a '-' is, '_' or DEL for a letter: bytes that a careless fold would
            // take for the name.
            for (from, to) in [
                ('-', '\r'),
                ('-', '\x0d'),
                ('a', '\x7f'),
                ('e', '_'),
                ('a', 'A'),
            ] {
                if lower.contains(from) {
                    let other = lower.replacen(from, &alloc::format!("{to}"), 1);
                    let want = if to == 'A' { *name } else { HeaderName::Other };
                    assert_eq!(HeaderName::from_name(&other), want, "{other:?}");
                }
            }
        }
    }

    #[test]
    fn every_rfc3261_compact_form_maps_to_its_long_form() {
        // RFC 3261 §7.3.3 and §20.
        for (c, long) in [
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("e", HeaderName::ContentEncoding),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("f", HeaderName::From),
            ("s", HeaderName::Subject),
            ("k", HeaderName::Supported),
            ("t", HeaderName::To),
            ("v", HeaderName::Via),
        ] {
            assert_eq!(HeaderName::from_name(c), long, "{c}");
            assert_eq!(HeaderName::from_name(&c.to_ascii_uppercase()), long, "{c}");
            assert_eq!(HeaderName::from_name(long.as_str().unwrap()), long);
        }
    }

    #[test]
    fn names_are_case_insensitive_and_unknown_names_are_other() {
        assert_eq!(HeaderName::from_name("cAlL-iD"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_name("www-authenticate"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(HeaderName::from_name("NewFangledHeader"), HeaderName::Other);
        assert_eq!(HeaderName::from_name("q"), HeaderName::Other);
        assert_eq!(HeaderName::from_name(""), HeaderName::Other);
    }

    #[test]
    fn every_table_entry_round_trips_through_its_names() {
        for (long, compact, name) in TABLE {
            assert_eq!(HeaderName::from_name(long), *name);
            assert_eq!(name.as_str(), Some(*long));
            if let Some(c) = compact {
                assert_eq!(
                    HeaderName::from_name(core::str::from_utf8(&[*c]).unwrap()),
                    *name
                );
            }
        }
    }
}
