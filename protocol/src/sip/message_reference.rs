//! The header-section reader as it was before it indexed each header as its line is read
//! (folded lines extending the last header in place, Content-Length looked up at the end): the
//! reference `Message::parse_with_limit` is checked against.

use smallvec::SmallVec;

use super::{
    HeaderName, INLINE_HEADERS, Message, ParseError, StartLine, UTF8_WINDOW, lex,
    start_line_general as parse_start_line,
};
use crate::sip::header::Header;

pub(super) fn parse_with_limit<'a>(
    raw: &'a [u8],
    max_headers: usize,
) -> Result<Message<'a>, ParseError> {
    // Skip leading empty lines.
    let mut pos = 0;
    loop {
        if raw[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if raw.get(pos) == Some(&b'\n') {
            pos += 1;
        } else {
            break;
        }
    }
    if pos >= raw.len() {
        return Err(ParseError::Empty);
    }
    let head_start = pos;

    // One pass over the lines of the header section: the first empty line ends it.
    let mut start: Option<StartLine<'a>> = None;
    let mut headers: SmallVec<[Header<'a>; INLINE_HEADERS]> = SmallVec::new();
    let mut content_length: Option<Option<usize>> = None;
    let mut cur: Option<Pending<'a>> = None;
    let mut line_start = head_start;
    let mut last_end = head_start;
    let mut newlines = memchr::memchr_iter(b'\n', &raw[head_start..]);
    // UTF-8 is checked once over a window that holds any typical header section; lines
    // are sliced from it. A line reaching past the window is checked on its own.
    let window = &raw[head_start..raw.len().min(head_start + UTF8_WINDOW)];
    let text = match core::str::from_utf8(window) {
        Ok(t) => t,
        Err(e) => core::str::from_utf8(&window[..e.valid_up_to()]).unwrap_or_default(),
    };
    let (head_end, body_start, terminated) = loop {
        let Some(rel) = newlines.next() else {
            // A header section not closed by an empty line is read to the end of the input
            // when its last line is complete (a datagram or file that lost its final CRLF);
            // the strict check reports it. A last line cut short is not a message.
            if line_start == raw.len() {
                break (last_end, raw.len(), false);
            }
            return Err(ParseError::UnterminatedHeaders { offset: head_start });
        };
        let nl = head_start + rel;
        let end = if nl > line_start && raw[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if end == line_start {
            break (last_end, nl + 1, true);
        }
        let line = match text.get(line_start - head_start..end - head_start) {
            Some(line) => line,
            None => core::str::from_utf8(&raw[line_start..end]).map_err(|e| {
                ParseError::InvalidUtf8 {
                    offset: line_start + e.valid_up_to(),
                }
            })?,
        };
        if start.is_none() {
            start = Some(parse_start_line(line, line_start)?);
        } else if lex::is_wsp(line.as_bytes()[0]) {
            // Folded continuation of the current header (RFC 3261 §7.3.1).
            let Some(c) = cur.as_mut() else {
                return Err(ParseError::OrphanContinuation { offset: line_start });
            };
            c.end = end;
        } else {
            if let Some(c) = cur.take() {
                push_header(&mut headers, &mut content_length, raw, c)?;
            }
            if headers.len() >= max_headers {
                return Err(ParseError::TooManyHeaders {
                    offset: line_start,
                    limit: max_headers,
                });
            }
            cur = Some(header_line(line, line_start, end)?);
        }
        last_end = end;
        line_start = nl + 1;
    };
    if let Some(c) = cur.take() {
        push_header(&mut headers, &mut content_length, raw, c)?;
    }
    let Some(start) = start else {
        return Err(ParseError::Empty);
    };

    let rest = &raw[body_start..];
    let body_len = match content_length {
        Some(Some(n)) if n <= rest.len() => n,
        _ => rest.len(),
    };
    Ok(Message {
        raw,
        head: &raw[head_start..head_end],
        start,
        headers,
        body: &rest[..body_len],
        body_offset: body_start,
        trailing: &rest[body_len..],
        terminated,
    })
}

/// A header line whose value may still grow by folded continuation lines.
struct Pending<'a> {
    name: &'a str,
    kind: HeaderName,
    /// The value on the first line (after the colon), used when nothing was folded in.
    first: &'a str,
    /// Offset of the value's first byte and end of the last line that belongs to it.
    value_start: usize,
    end: usize,
}

/// Split one header line into name and value: `token *(SP/HTAB) ":" value`.
fn header_line(line: &str, offset: usize, end: usize) -> Result<Pending<'_>, ParseError> {
    let b = line.as_bytes();
    let name_len = b
        .iter()
        .position(|&c| !lex::is_token_char(c))
        .unwrap_or(b.len());
    let mut i = name_len;
    while i < b.len() && lex::is_wsp(b[i]) {
        i += 1;
    }
    if i >= b.len() || b[i] != b':' || name_len == 0 {
        let reason = if memchr::memchr(b':', b).is_some() {
            "header name is not a token"
        } else {
            "no colon"
        };
        return Err(ParseError::BadHeaderLine { offset, reason });
    }
    let name = &line[..name_len];
    // Skip the SP / HTAB after the colon here (the value is trimmed again in `push_header`,
    // which also removes folded line breaks; this makes that the quick case).
    let mut v = i + 1;
    while v < b.len() && lex::is_wsp(b[v]) {
        v += 1;
    }
    Ok(Pending {
        name,
        kind: HeaderName::from_name(name),
        first: &line[v..],
        value_start: offset + v,
        end,
    })
}

fn push_header<'a>(
    headers: &mut SmallVec<[Header<'a>; INLINE_HEADERS]>,
    content_length: &mut Option<Option<usize>>,
    raw: &'a [u8],
    p: Pending<'a>,
) -> Result<(), ParseError> {
    let folded = p.value_start + p.first.len() != p.end;
    let value = if folded {
        // The lines were each checked as UTF-8; joined by ASCII line breaks they still are.
        core::str::from_utf8(&raw[p.value_start..p.end]).map_err(|e| ParseError::InvalidUtf8 {
            offset: p.value_start + e.valid_up_to(),
        })?
    } else {
        p.first
    };
    let value = lex::trim_lws(value);
    if p.kind == HeaderName::ContentLength && content_length.is_none() {
        // The first Content-Length decides the body cut; an invalid or repeated one is left to
        // the strict check (`None` means "unusable").
        *content_length = Some(lex::parse_u64(value, 19).and_then(|n| usize::try_from(n).ok()));
    }
    headers.push(Header {
        name: p.name,
        kind: p.kind,
        value,
    });
    Ok(())
}
