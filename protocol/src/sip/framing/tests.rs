//! Tests of the stream framer: RFC 4475 messages, keep-alives, limits, errors, and the
//! chunk-invariance properties.

use super::*;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};
use proptest::collection::vec;
use proptest::prelude::*;

macro_rules! rfc4475 {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/rfc4475/",
                $name,
                ".dat"
            )) as &[u8],
        )
    };
}

/// The valid messages of RFC 4475 §3.1.1. All but dblreq (§3.1.1.8, index 7) are exactly
/// one message each.
const VALID: [(&str, &[u8]); 13] = [
    rfc4475!("wsinv"),
    rfc4475!("intmeth"),
    rfc4475!("esc01"),
    rfc4475!("escnull"),
    rfc4475!("esc02"),
    rfc4475!("lwsdisp"),
    rfc4475!("longreq"),
    rfc4475!("dblreq"),
    rfc4475!("semiuri"),
    rfc4475!("transports"),
    rfc4475!("mpart01"),
    rfc4475!("unreason"),
    rfc4475!("noreason"),
];

type Item = Result<Frame, FramingError>;

/// Everything a decoder reports for `stream` fed in pieces of the given sizes (cycled;
/// empty = all at once): the frames up to and including the first error, and how many
/// bytes stay buffered at the end. Checks on the way that the buffer stays within the
/// message limit whenever the decoder has been drained.
fn decode(stream: &[u8], sizes: &[usize], limits: Limits) -> (Vec<Item>, usize) {
    let mut d = Decoder::new(limits);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        d.feed(chunk);
        loop {
            match d.next_frame() {
                None => break,
                Some(Ok(frame)) => out.push(Ok(frame)),
                Some(Err(e)) => {
                    out.push(Err(e));
                    assert_eq!(d.next_frame(), Some(Err(e)), "errors are final");
                    assert_eq!(d.buffered(), 0, "a poisoned decoder holds nothing");
                    return (out, 0);
                }
            }
        }
        assert!(
            d.buffered() <= limits.max_message_bytes.max(1),
            "{} bytes buffered after draining, limit {}",
            d.buffered(),
            limits.max_message_bytes
        );
    }
    (out, d.buffered())
}

fn whole(stream: &[u8]) -> (Vec<Item>, usize) {
    decode(stream, &[], Limits::new())
}

fn msg(bytes: &[u8]) -> Item {
    Ok(Frame::Message(Bytes::copy_from_slice(bytes)))
}

/// The one frame a stream holding exactly one message must give.
fn single(stream: &[u8]) -> Item {
    let (frames, left) = whole(stream);
    assert_eq!(left, 0);
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().unwrap()
}

fn first_error(stream: &[u8], limits: Limits) -> FramingError {
    match decode(stream, &[], limits).0.pop() {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

const OPTIONS: &[u8] = b"OPTIONS sip:door@example.com SIP/2.0\r\nContent-Length: 5\r\n\r\nhello";

// --- Messages -------------------------------------------------------------------------

#[test]
fn each_rfc4475_valid_message_is_one_frame() {
    for (name, bytes) in VALID {
        if name != "dblreq" {
            assert_eq!(single(bytes), msg(bytes), "{name}");
        }
    }
}

#[test]
fn dblreq_on_a_stream_frames_both_requests_then_fails_on_the_leftover() {
    // RFC 4475 §3.1.1.8: a REGISTER (Content-Length 0), a CRLF, then octets that look like
    // an INVITE — noise after a datagram, but on a stream the next message. That INVITE's
    // Content-Length (150) is 3 bytes short of its SDP body, so the stream goes on with
    // "C\r\n\r\n": a header section without Content-Length.
    let (_, bytes) = VALID[7];
    let split = memchr::memmem::find(bytes, b"\r\n\r\n").unwrap() + 4;
    let invite = &bytes[split + 2..];
    let invite_len = memchr::memmem::find(invite, b"\r\n\r\n").unwrap() + 4 + 150;
    assert!(invite.starts_with(b"INVITE ") && &invite[invite_len..] == b"C\r\n\r\n");
    let offset = (bytes.len() - 5) as u64;
    assert_eq!(
        whole(bytes).0,
        [
            msg(&bytes[..split]),
            Ok(Frame::Pong),
            msg(&invite[..invite_len]),
            Err(FramingError::MissingContentLength { offset })
        ]
    );
}

#[test]
fn one_byte_chunks_give_the_same_frames_as_one_feed() {
    for (name, bytes) in VALID {
        assert_eq!(decode(bytes, &[1], Limits::new()), whole(bytes), "{name}");
    }
}

#[test]
fn two_messages_in_one_feed_are_two_frames_sharing_one_allocation() {
    let mut d = Decoder::default();
    d.feed(&[OPTIONS, OPTIONS].concat());
    let Some(Ok(Frame::Message(a))) = d.next_frame() else {
        panic!()
    };
    let Some(Ok(Frame::Message(b))) = d.next_frame() else {
        panic!()
    };
    assert_eq!((&a[..], &b[..]), (OPTIONS, OPTIONS));
    assert_eq!(
        a.as_ptr().wrapping_add(a.len()),
        b.as_ptr(),
        "split off, not copied"
    );
    assert_eq!(d.next_frame(), None);
    assert_eq!((d.buffered(), d.position()), (0, 2 * OPTIONS.len() as u64));
}

#[test]
fn body_split_across_feeds_waits_for_its_last_byte() {
    let mut d = Decoder::default();
    let (head_and_some, last) = OPTIONS.split_at(OPTIONS.len() - 1);
    let (head, some) = head_and_some.split_at(head_and_some.len() - 3);
    d.feed(head);
    assert_eq!(d.next_frame(), None);
    d.feed(some);
    assert_eq!(d.next_frame(), None);
    assert_eq!(d.buffered(), OPTIONS.len() - 1);
    d.feed(last);
    assert_eq!(d.next_frame(), Some(msg(OPTIONS)));
    assert_eq!(d.next_frame(), None);
}

#[test]
fn content_length_zero_ends_the_message_at_the_empty_line() {
    let m = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(whole(&[&m[..], b"SIP/2.0"].concat()).0, [msg(m)]);
}

#[test]
fn content_length_is_found_in_its_compact_case_folded_and_spaced_forms() {
    let heads: [&[u8]; 7] = [
        b"MESSAGE sip:a SIP/2.0\r\nl: 5\r\n\r\n",
        b"MESSAGE sip:a SIP/2.0\r\nL:5\r\n\r\n",
        b"MESSAGE sip:a SIP/2.0\r\ncontent-LENGTH \t:  5 \r\n\r\n",
        b"MESSAGE sip:a SIP/2.0\r\nContent-Length:\r\n   5\r\n\r\n",
        b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 5\r\n \r\nTo: x\r\n\r\n",
        b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 0005\r\nl: 5\r\n\r\n",
        b"MESSAGE sip:a SIP/2.0\r\nContact: <sip:c>\r\nContent-Type: t/p\r\nl: 5\r\n\r\n",
    ];
    for head in heads {
        let m = [head, b"12345"].concat();
        let stream = [&m[..], b"\r\n"].concat();
        assert_eq!(
            whole(&stream).0,
            [msg(&m), Ok(Frame::Pong)],
            "{:?}",
            head.escape_ascii()
        );
        assert_eq!(decode(&stream, &[1], Limits::new()), whole(&stream));
    }
}

#[test]
fn bare_lf_line_ends_frame_like_crlf() {
    for m in [
        &b"NOTIFY sip:a SIP/2.0\nl: 3\n\nabc"[..],
        b"NOTIFY sip:a SIP/2.0\r\nl: 3\n\r\nabc",
        b"NOTIFY sip:a SIP/2.0\nl: 3\r\n\nabc",
        b"NOTIFY sip:a SIP/2.0\nContent-Length:\n\t3\n\nabc",
    ] {
        assert_eq!(single(m), msg(m), "{:?}", m.escape_ascii());
    }
}

#[test]
fn names_that_merely_start_like_content_length_are_ignored() {
    let m = b"INFO sip:a SIP/2.0\r\nContent-Lengthy: 9\r\nL-x: 9\r\nl : 1\r\nC: x\r\n\r\nz";
    assert_eq!(single(m), msg(m));
    // A folded line never starts a field, and the start line is never a header.
    let e = first_error(
        b"l: 1 INFO SIP/2.0\r\nTo: x\r\n Content-Length: 1\r\n\r\nz",
        Limits::new(),
    );
    assert_eq!(e, FramingError::MissingContentLength { offset: 0 });
}

#[test]
fn content_length_name_compare_is_exact_in_every_case() {
    // Every single-byte change of the name, compared with the plain definition.
    let name = *b"Content-Length";
    for i in 0..name.len() {
        for b in 0..=255u8 {
            let mut n = name;
            n[i] = b;
            assert_eq!(
                is_content_length(&n),
                n.eq_ignore_ascii_case(b"content-length"),
                "{:?}",
                n.escape_ascii()
            );
        }
    }
    assert!(is_content_length(b"cONTENT-lENGTH"));
}

#[test]
fn garbage_before_a_start_line_is_framed_for_the_parser_to_reject() {
    let m = b"\r\0 junk\r\nl: 1\r\n\r\nz";
    assert_eq!(single(m), msg(m));
}

// --- Keep-alives ----------------------------------------------------------------------

#[test]
fn a_lone_crlf_is_a_pong_reported_at_once() {
    // RFC 5626 §4.4.1: the pong is a single CRLF; the peer sends nothing after it.
    let mut d = Decoder::default();
    d.feed(b"\r\n");
    assert_eq!(d.next_frame(), Some(Ok(Frame::Pong)));
    assert_eq!(d.next_frame(), None);
    assert_eq!(d.buffered(), 0);
}

#[test]
fn crlfcrlf_is_a_pong_then_a_ping_however_it_is_split() {
    // RFC 5626 §4.4.1: the ping is CRLFCRLF, to be answered with a single CRLF.
    let expected = vec![Ok(Frame::Pong), Ok(Frame::Ping)];
    for sizes in [&[][..], &[1], &[2], &[3], &[1, 3]] {
        assert_eq!(
            decode(b"\r\n\r\n", sizes, Limits::new()),
            (expected.clone(), 0)
        );
    }
}

#[test]
fn a_cr_waits_for_its_lf() {
    let mut d = Decoder::default();
    d.feed(b"\r");
    assert_eq!(d.next_frame(), None);
    assert_eq!(d.buffered(), 1);
    d.feed(b"\n");
    assert_eq!(d.next_frame(), Some(Ok(Frame::Pong)));
}

#[test]
fn keep_alive_parity_alternates_and_restarts_after_each_message() {
    let stream = [&b"\r\n\r\n\r\n"[..], OPTIONS, b"\n\r\n\n", OPTIONS, b"\r\n"].concat();
    let (frames, left) = whole(&stream);
    let (pong, ping) = (Ok(Frame::Pong), Ok(Frame::Ping));
    assert_eq!(
        frames,
        [
            pong.clone(),
            ping.clone(),
            pong.clone(),
            msg(OPTIONS),
            pong.clone(),
            ping,
            pong.clone(),
            msg(OPTIONS),
            pong
        ]
    );
    assert_eq!(left, 0);
}

// --- Errors ---------------------------------------------------------------------------

#[test]
fn missing_content_length_is_an_error_at_the_message_start() {
    // RFC 3261 §18.3 / §20.14: stream transports must frame with Content-Length.
    // RFC 4475 §3.4 (inv2543) omits it, as RFC 2543 allowed: unframeable on a stream.
    let (_, inv2543) = rfc4475!("inv2543");
    assert_eq!(
        single(inv2543),
        Err(FramingError::MissingContentLength { offset: 0 })
    );
    let stream = [&b"\r\n"[..], OPTIONS, b"BYE sip:a SIP/2.0\r\nTo: b\r\n\r\n"].concat();
    let offset = 2 + OPTIONS.len() as u64;
    assert_eq!(
        whole(&stream).0,
        [
            Ok(Frame::Pong),
            msg(OPTIONS),
            Err(FramingError::MissingContentLength { offset })
        ]
    );
}

#[test]
fn negative_or_non_numeric_content_length_is_invalid() {
    // RFC 4475 §3.1.2.3 (ncl): Content-Length: -999.
    let (_, ncl) = rfc4475!("ncl");
    let at = memchr::memmem::find(ncl, b"-999").unwrap() as u64;
    assert_eq!(
        single(ncl),
        Err(FramingError::InvalidContentLength { offset: at })
    );
    let head = b"ACK sip:a SIP/2.0\r\nContent-Length:  ";
    for value in [
        &b"x"[..],
        b"5x",
        b"5 5",
        b"",
        b"+5",
        b"12345678901234567890",
        b"\xff",
    ] {
        let m = [&b"\r\n"[..], head, value, b"\r\n\r\n"].concat();
        let offset = 2 + head.len() as u64;
        assert_eq!(
            whole(&m).0,
            [
                Ok(Frame::Pong),
                Err(FramingError::InvalidContentLength { offset })
            ],
            "{:?}",
            value.escape_ascii()
        );
    }
}

#[test]
fn conflicting_content_lengths_are_rejected_and_equal_ones_accepted() {
    // RFC 4475 §3.3.9 (mcl01): Content-Length 13, then Content-Length 5.
    let (_, mcl01) = rfc4475!("mcl01");
    let at = memchr::memmem::find(mcl01, b"Length: 5").unwrap() as u64 + 8;
    assert_eq!(
        single(mcl01),
        Err(FramingError::ConflictingContentLength {
            offset: at,
            first: 13,
            second: 5
        })
    );
    let same = b"ACK sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 01\r\n\r\nx";
    assert_eq!(single(same), msg(same));
}

#[test]
fn content_length_larger_than_what_arrived_waits_for_the_body() {
    // RFC 4475 §3.1.2.2 (clerr): Content-Length 9999 with a 152-byte body. On a stream the
    // rest of the body may still come.
    let (_, clerr) = rfc4475!("clerr");
    assert_eq!(whole(clerr), (vec![], clerr.len()));
}

#[test]
fn body_limit_is_enforced_when_the_content_length_field_is_read() {
    let limits = Limits::new().with_max_body_bytes(4);
    let head = b"MESSAGE sip:a SIP/2.0\r\nl: 5\r\n";
    let mut d = Decoder::new(limits);
    d.feed(head);
    d.feed(b"T"); // the next field starts: `l: 5` is complete, before the header end.
    let offset = head.len() as u64 - 3;
    let e = FramingError::BodyTooLarge {
        offset,
        length: 5,
        limit: 4,
    };
    assert_eq!(d.next_frame(), Some(Err(e)));
    assert_eq!(
        decode(OPTIONS, &[], limits.with_max_body_bytes(5)).0,
        [msg(OPTIONS)]
    );
}

#[test]
fn message_limit_counts_header_section_and_body() {
    let len = OPTIONS.len();
    assert_eq!(
        decode(OPTIONS, &[1], Limits::new().with_max_message_bytes(len)).0,
        [msg(OPTIONS)]
    );
    let limits = Limits::new().with_max_message_bytes(len - 1);
    let e = FramingError::MessageTooLarge {
        offset: 0,
        length: len as u64,
        limit: len - 1,
    };
    assert_eq!(decode(OPTIONS, &[1], limits).0, [Err(e)]);
    // An overlong Content-Length that fits in the body limit but not in the message.
    let huge = b"ACK sip:a SIP/2.0\r\nl: 9999999999999999999\r\n\r\n";
    let limits = Limits::new().with_max_body_bytes(usize::MAX);
    assert!(matches!(
        first_error(huge, limits),
        FramingError::MessageTooLarge { .. }
    ));
}

#[test]
fn header_section_exactly_at_the_limit_passes_and_one_byte_more_fails() {
    let head_len = OPTIONS.len() - 5;
    let exact = Limits::new().with_max_header_bytes(head_len);
    assert_eq!(decode(OPTIONS, &[1], exact).0, [msg(OPTIONS)]);
    assert_eq!(decode(OPTIONS, &[], exact).0, [msg(OPTIONS)]);
    let under = exact.with_max_header_bytes(head_len - 1);
    let e = FramingError::HeaderTooLarge {
        offset: 0,
        limit: head_len - 1,
    };
    assert_eq!(decode(OPTIONS, &[1], under).0, [Err(e)]);
    assert_eq!(decode(OPTIONS, &[], under).0, [Err(e)]);
}

#[test]
fn dribbling_a_header_section_without_end_hits_the_header_limit() {
    let limits = Limits::new();
    let limit = limits.max_header_bytes;
    let mut d = Decoder::new(limits);
    d.feed(b"\r\n");
    assert_eq!(d.next_frame(), Some(Ok(Frame::Pong)));
    let line = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let attack = [
        &b"INVITE sip:a SIP/2.0\r\n"[..],
        &line.repeat(limit / line.len() + 1),
    ]
    .concat();
    let mut fed = 0;
    let error = loop {
        d.feed(&attack[fed..=fed]);
        fed += 1;
        if let Some(r) = d.next_frame() {
            break r.unwrap_err();
        }
        assert!(d.buffered() < limit);
    };
    assert_eq!(error, FramingError::HeaderTooLarge { offset: 2, limit });
    assert_eq!(fed, limit, "the error comes with the limit-th byte");
    d.feed(&attack);
    assert_eq!((d.buffered(), d.next_frame()), (0, Some(Err(error))));
}

#[test]
fn an_error_poisons_the_decoder_until_reset() {
    let mut d = Decoder::default();
    d.feed(OPTIONS);
    d.feed(b"ACK sip:a SIP/2.0\r\nl: x\r\n\r\n");
    d.feed(OPTIONS);
    assert_eq!(d.next_frame(), Some(msg(OPTIONS)));
    let offset = OPTIONS.len() as u64 + 22;
    let e = FramingError::InvalidContentLength { offset };
    for _ in 0..3 {
        assert_eq!(d.next_frame(), Some(Err(e)));
    }
    assert!(d.is_poisoned());
    assert_eq!(d.error(), Some(e));
    d.feed(OPTIONS);
    assert_eq!((d.buffered(), d.next_frame()), (0, Some(Err(e))));
    assert_eq!(d.position(), 3 * OPTIONS.len() as u64 + 27);
    d.reset();
    assert!(!d.is_poisoned());
    assert_eq!(d.position(), 0);
    d.feed(OPTIONS);
    assert_eq!(d.next_frame(), Some(msg(OPTIONS)));
}

#[test]
fn errors_name_the_fault_and_the_stream_offset() {
    let cases = [
        (
            FramingError::HeaderTooLarge {
                offset: 7,
                limit: 16,
            },
            "header section",
        ),
        (
            FramingError::MissingContentLength { offset: 7 },
            "no Content-Length",
        ),
        (
            FramingError::InvalidContentLength { offset: 7 },
            "not 1 to 19 decimal digits",
        ),
        (
            FramingError::ConflictingContentLength {
                offset: 7,
                first: 1,
                second: 2,
            },
            "earlier one",
        ),
        (
            FramingError::BodyTooLarge {
                offset: 7,
                length: 9,
                limit: 8,
            },
            "body limit",
        ),
        (
            FramingError::MessageTooLarge {
                offset: 7,
                length: 9,
                limit: 8,
            },
            "message limit",
        ),
    ];
    for (e, fault) in cases {
        let text = format!("{e}");
        assert!(text.contains(fault) && text.contains("offset 7"), "{text}");
        assert_eq!(e.offset(), 7);
    }
}

#[test]
fn limits_builder_sets_each_field() {
    let l = Limits::new()
        .with_max_header_bytes(1)
        .with_max_body_bytes(2)
        .with_max_message_bytes(3);
    assert_eq!(
        (l.max_header_bytes, l.max_body_bytes, l.max_message_bytes),
        (1, 2, 3)
    );
    assert_eq!(Limits::default(), Limits::new());
    assert_eq!(Decoder::new(l).limits(), l);
}

// --- Properties -----------------------------------------------------------------------

/// One piece of a generated stream: a whole RFC 4475 file, or a keep-alive line break.
#[derive(Debug, Clone, Copy)]
enum Piece {
    File(usize),
    Crlf,
    Lf,
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => (0..VALID.len()).prop_filter("dblreq is not one message", |&i| i != 7).prop_map(Piece::File),
        2 => Just(Piece::Crlf),
        1 => Just(Piece::Lf),
    ]
}

/// Bytes that steer arbitrary input towards the decoder's decisions.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b" ".to_vec()),
        Just(b"INVITE sip:a SIP/2.0\r\n".to_vec()),
        Just(b"Content-Length: ".to_vec()),
        Just(b"l:".to_vec()),
        Just(b"X-Pad: abcdefghij\r\n".to_vec()),
        (0u64..40).prop_map(|n| format!("{n}").into_bytes()),
        Just(b"99999999999999999999".to_vec()),
        vec(any::<u8>(), 0..12),
    ]
}

/// A message that is often well formed and often not: a start line, a few header fields,
/// zero to two `Content-Length` fields in various spellings, and a body whose length is
/// usually the `Content-Length`.
fn near_message() -> impl Strategy<Value = Vec<u8>> {
    let start = prop::sample::select(&["OPTIONS sip:a SIP/2.0", "SIP/2.0 200 OK", "x"][..]);
    let eol = prop_oneof![4 => Just("\r\n"), 1 => Just("\n")];
    let field = prop::sample::select(
        &[
            "To: <sip:b>",
            "Call-ID: 1",
            "Contact: <sip:c>",
            "X: a\r\n b",
            " c",
            "C: l",
        ][..],
    );
    let good = prop::sample::select(
        &[
            "Content-Length: #",
            "l:#",
            "content-LENGTH :\r\n #",
            "L: 0#",
        ][..],
    );
    let any = prop::sample::select(&["Content-Length: #", "l: # x", "l: 7", "l:"][..]);
    let lengths = prop_oneof![5 => vec(good, 1..=1), 1 => vec(any, 0..3)];
    let body = prop_oneof![6 => Just(0i64), 1 => -2i64..=2];
    (start, eol, vec(field, 0..4), lengths, 0usize..40, body).prop_map(
        |(start, eol, fields, lengths, len, delta)| {
            let mut m = String::from(start) + eol;
            for f in fields {
                m = m + f + eol;
            }
            for l in lengths {
                m = m + &l.replace('#', &len.to_string()) + eol;
            }
            m += eol;
            let body = usize::try_from(i64::try_from(len).unwrap_or(0) + delta).unwrap_or(0);
            m.extend(core::iter::repeat_n('b', body));
            m.into_bytes()
        },
    )
}

/// A stream of near-messages and steering fragments.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![3 => near_message(), 2 => fragment()], 0..16).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn chunking_never_changes_the_frames_of_valid_streams(
        pieces in vec(piece(), 0..12),
        sizes in vec(1usize..80, 1..16),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        let mut odd = false;
        for p in pieces {
            match p {
                Piece::File(i) => {
                    stream.extend_from_slice(VALID[i].1);
                    expected.extend(whole(VALID[i].1).0);
                    odd = false;
                }
                Piece::Crlf | Piece::Lf => {
                    stream.extend_from_slice(if let Piece::Crlf = p { b"\r\n" } else { b"\n" });
                    expected.push(Ok(if odd { Frame::Ping } else { Frame::Pong }));
                    odd = !odd;
                }
            }
        }
        prop_assert_eq!(whole(&stream), (expected.clone(), 0));
        prop_assert_eq!(decode(&stream, &sizes, Limits::new()), (expected, 0));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_never_changes_the_outcome(
        stream in stream(),
        sizes in vec(1usize..24, 1..16),
        header in 0usize..160,
        body in 0usize..48,
        message in 0usize..192,
    ) {
        let limits = Limits::new()
            .with_max_header_bytes(header)
            .with_max_body_bytes(body)
            .with_max_message_bytes(message);
        // `decode` also checks that a drained decoder never buffers more than the limit.
        let at_once = decode(&stream, &[], limits);
        prop_assert_eq!(decode(&stream, &sizes, limits), at_once.clone());
        prop_assert_eq!(decode(&stream, &[1], limits), at_once);
        let defaults = decode(&stream, &[], Limits::new());
        prop_assert_eq!(decode(&stream, &sizes, Limits::new()), defaults);
    }

    #[test]
    fn every_message_frame_reparses_to_itself(
        stream in stream(),
    ) {
        // A frame holds exactly one message: framing it again gives the same frame.
        for item in whole(&stream).0 {
            if let Ok(Frame::Message(m)) = item {
                prop_assert_eq!(whole(&m), (vec![Ok(Frame::Message(m.clone()))], 0));
            }
        }
    }
}
