//! `latchkey sip parse`: a parsed message rendered as JSON, typed views where latchkey has one.

use latchkey_protocol::sip::digest::{Challenge, Credentials};
use latchkey_protocol::sip::headers::{Contact, NameAddr, Via};
use latchkey_protocol::sip::uri::Uri;
use latchkey_protocol::sip::validate::{Options, Violation};
use latchkey_protocol::sip::{Header, HeaderName, Host, Message, Params, StartLine};
use serde_json::{Map, Value, json};

/// Parse `raw` (and run the strict check when `strict` is given); the JSON view on success,
/// the one-line fault otherwise.
pub(crate) fn parse_to_json(raw: &[u8], strict: Option<Options>) -> Result<Value, String> {
    let m = Message::parse(raw).map_err(|e| Violation::from(e).to_string())?;
    if let Some(options) = strict {
        m.validate(options).map_err(|v| v.to_string())?;
    }
    Ok(message(&m))
}

fn message(m: &Message<'_>) -> Value {
    let mut o = Map::new();
    match m.start_line() {
        StartLine::Request(r) => {
            o.insert("type".into(), json!("request"));
            o.insert("method".into(), json!(r.method.as_str()));
            o.insert("uri".into(), json!(redacted_uri_passwords(r.uri)));
            if let Ok(u) = Uri::parse(r.uri) {
                o.insert("uri_parts".into(), uri(&u));
            }
            o.insert("version".into(), json!(r.version));
        }
        StartLine::Response(s) => {
            o.insert("type".into(), json!("response"));
            o.insert("version".into(), json!(s.version));
            o.insert("status".into(), json!(s.code));
            o.insert("reason".into(), json!(s.reason));
        }
        _ => {}
    }
    let headers: Vec<Value> = m.headers().iter().map(|h| header(m, h)).collect();
    o.insert("headers".into(), Value::Array(headers));
    o.insert("body_length".into(), json!(m.body().len()));
    if !m.trailing().is_empty() {
        o.insert("trailing_length".into(), json!(m.trailing().len()));
    }
    Value::Object(o)
}

fn header(m: &Message<'_>, h: &Header<'_>) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(h.name));
    if h.kind != HeaderName::Other && h.canonical_name() != h.name {
        o.insert("canonical".into(), json!(h.canonical_name()));
    }
    match h.kind {
        // Credentials: the digest response (enough for an offline guess of the password
        // with the nonce and realm beside it) is never printed, nor another scheme's token.
        HeaderName::Authorization | HeaderName::ProxyAuthorization => {
            let value = redacted_credentials(h.value);
            o.insert("value".into(), json!(redacted_uri_passwords(&value)));
        }
        // `rspauth` is computed from the same password-derived hash as a response.
        HeaderName::AuthenticationInfo => {
            o.insert("value".into(), json!(redacted_param(h.value, "rspauth")));
        }
        // A SIP URI's password (`sip:user:password@host`, deprecated by RFC 3261 §19.1.1
        // but still sent) is a secret wherever a URI appears.
        _ => {
            o.insert("value".into(), json!(redacted_uri_passwords(h.value)));
        }
    }
    o.insert("offset".into(), json!(m.offset_of(h.name)));
    match typed(h) {
        Some(Ok(v)) => {
            o.insert("typed".into(), v);
        }
        Some(Err(e)) => {
            o.insert("typed_error".into(), json!(e));
        }
        None => {}
    }
    Value::Object(o)
}

/// The typed view of one header line (every element of a list header).
fn typed(h: &Header<'_>) -> Option<Result<Value, String>> {
    use latchkey_protocol::sip::headers as hv;
    let list = |f: &dyn Fn(&str) -> Result<Value, String>| -> Result<Value, String> {
        h.elements()
            .map(f)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    };
    let r = match h.kind {
        HeaderName::Via => list(&|v| Via::parse(v).map(|v| via(&v)).map_err(|e| e.to_string())),
        HeaderName::From | HeaderName::To => NameAddr::parse(h.value)
            .map(|a| name_addr(&a))
            .map_err(|e| e.to_string()),
        HeaderName::Route | HeaderName::RecordRoute => list(&|v| {
            NameAddr::parse(v)
                .map(|a| name_addr(&a))
                .map_err(|e| e.to_string())
        }),
        HeaderName::Contact => list(&|v| {
            Contact::parse(v)
                .map(|c| match c {
                    Contact::Addr(a) => name_addr(&a),
                    _ => json!("*"),
                })
                .map_err(|e| e.to_string())
        }),
        HeaderName::CSeq => hv::CSeq::parse(h.value)
            .map(|c| json!({"seq": c.seq, "method": c.method.as_str()}))
            .map_err(|e| e.to_string()),
        HeaderName::CallId => Ok(json!(h.value)),
        // The library's own readers: `+70` or an Expires past 2^32 - 1 are not numbers here.
        HeaderName::MaxForwards => number(hv::parse_max_forwards(h.value).map(u64::from)),
        HeaderName::Expires | HeaderName::MinExpires => {
            number(hv::parse_delta_seconds(h.value).map(u64::from))
        }
        HeaderName::ContentLength => number(hv::parse_content_length(h.value).map(|n| n as u64)),
        HeaderName::ContentType => hv::ContentType::parse(h.value)
            .map(
                |c| json!({"type": c.media_type, "subtype": c.subtype, "params": params(c.params)}),
            )
            .map_err(|e| e.to_string()),
        HeaderName::Allow | HeaderName::Supported | HeaderName::Require => {
            Ok(Value::Array(h.elements().map(|v| json!(v)).collect()))
        }
        HeaderName::Date => hv::Date::parse(h.value)
            .map(|d| {
                json!({
                    "iso8601": format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                        d.year, d.month, d.day, d.hour, d.minute, d.second),
                    "unix": d.unix_seconds(),
                })
            })
            .map_err(|e| e.to_string()),
        HeaderName::WwwAuthenticate | HeaderName::ProxyAuthenticate => Challenge::parse(h.value)
            .map(|c| challenge(&c))
            .map_err(|e| e.to_string()),
        HeaderName::Authorization | HeaderName::ProxyAuthorization => Credentials::parse(h.value)
            .map(|c| credentials(&c))
            .map_err(|e| e.to_string()),
        _ => return None,
    };
    Some(r)
}

fn number(v: Result<u64, latchkey_protocol::sip::headers::ValueError>) -> Result<Value, String> {
    v.map(|n| json!(n)).map_err(|e| e.to_string())
}

fn params(p: Params<'_>) -> Value {
    let mut o = Map::new();
    for p in p.iter() {
        o.insert(
            p.name.to_string(),
            p.unquoted().map_or(Value::Bool(true), |v| json!(v)),
        );
    }
    Value::Object(o)
}

fn host(h: &Host<'_>) -> Value {
    json!(h.to_string())
}

fn uri(u: &Uri<'_>) -> Value {
    match u {
        Uri::Sip(s) => {
            let headers: Map<String, Value> = s
                .headers()
                .map(|(n, v)| (n.to_string(), json!(v)))
                .collect();
            json!({
                "scheme": s.scheme(),
                "user": s.user(),
                "user_decoded": s.user().filter(|u| u.contains('%'))
                    .map(|u| String::from_utf8_lossy(&latchkey_protocol::sip::uri::unescape_bytes(u)).into_owned()),
                "password_present": s.password().is_some(),
                "host": host(&s.host()),
                "port": s.port(),
                "params": params(s.params()),
                "headers": headers,
            })
        }
        Uri::Tel(t) => json!({"scheme": "tel", "number": t.number(), "global": t.is_global(),
            "params": params(t.params())}),
        other => json!({"scheme": other.scheme(), "raw": redacted_uri_passwords(other.as_str())}),
    }
}

fn via(v: &Via<'_>) -> Value {
    json!({
        "protocol": format!("{}/{}", v.protocol, v.version),
        "transport": v.transport.as_str(),
        "host": host(&v.host),
        "port": v.port,
        "branch": v.branch(),
        "received": v.received().map(|h| h.to_string()),
        "rport": v.rport().map(|p| p.map_or(Value::Bool(true), |p| json!(p))),
        "params": params(v.params),
    })
}

fn name_addr(a: &NameAddr<'_>) -> Value {
    let mut display = String::new();
    if let Some(d) = a.display_name {
        d.write_unescaped(&mut display);
    }
    json!({
        "display_name": a.display_name.map(|_| display),
        "uri": redacted_uri_passwords(a.uri.as_str()),
        "uri_parts": uri(&a.uri),
        "tag": a.tag(),
        "params": params(a.params),
    })
}

fn challenge(c: &Challenge<'_>) -> Value {
    json!({
        "scheme": c.scheme(),
        "realm": c.realm().unescaped(),
        "nonce": c.nonce().unescaped(),
        "algorithm": c.algorithm_param().unwrap_or("MD5"),
        "qop": c.qop_options().collect::<Vec<_>>(),
        "stale": c.stale(),
        "opaque": c.opaque().map(|o| o.unescaped()),
        "userhash": c.userhash(),
    })
}

/// `text` with the password of every `sip:`/`sips:` URI in it (the userinfo after its first
/// `:`, up to the `@`; RFC 3261 §19.1.1) replaced by `<redacted>`. A scheme is found in any
/// ASCII case at the start of a word; its userinfo ends at the first `@`, and a URI without
/// one before `>`, `<`, `"`, white space or the end has none; what follows the first `:`
/// is a password only when it is made of password characters.
fn redacted_uri_passwords(text: &str) -> std::borrow::Cow<'_, str> {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        // A scheme starts a word (`gossip:` is not `sip:`).
        let starts_word = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'+');
        let scheme_end = if !starts_word {
            None
        } else if b[i..].len() >= 5 && b[i..i + 5].eq_ignore_ascii_case(b"sips:") {
            Some(i + 5)
        } else if b[i..].len() >= 4 && b[i..i + 4].eq_ignore_ascii_case(b"sip:") {
            Some(i + 4)
        } else {
            None
        };
        let Some(scheme_end) = scheme_end else {
            i += 1;
            continue;
        };
        let userinfo_end = b[scheme_end..]
            .iter()
            .position(|&c| matches!(c, b'@' | b'>' | b'<' | b'"' | b' ' | b'\t' | b'\r' | b'\n'))
            .map(|p| scheme_end + p)
            .filter(|&at| b[at] == b'@');
        // A password is made of RFC 3261's password characters (unreserved, escaped,
        // `&=+$,`); anything else after the first `:` (another `:` or scheme, `;`, `?`,
        // `/`) means the `@` belongs to something else, as in an unbracketed list
        // `sip:h:5060,sip:b@c`.
        let is_password = |p: &[u8]| {
            p.iter()
                .all(|&c| c.is_ascii_alphanumeric() || b"-_.!~*'()%&=+$,".contains(&c))
        };
        if let Some(at) = userinfo_end
            && let Some(colon) = b[scheme_end..at].iter().position(|&c| c == b':')
            && is_password(&b[scheme_end + colon + 1..at])
        {
            let password = scheme_end + colon + 1;
            out.push_str(&text[copied..password]);
            out.push_str("<redacted>");
            copied = at;
            i = at;
        } else {
            i = scheme_end;
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// An `Authorization` value as written, its `response` value replaced by `<redacted>`; for
/// a scheme other than Digest (a bearer token, Basic's encoded password) or a value that
/// does not parse, only the scheme.
fn redacted_credentials(value: &str) -> String {
    let Ok(c) = Credentials::parse(value) else {
        let scheme = value.split([' ', '\t']).next().unwrap_or_default();
        return format!("{scheme} <redacted>");
    };
    let Some(raw) = c
        .params()
        .find(|p| p.name.eq_ignore_ascii_case("response"))
        .map(|p| p.value.as_raw())
    else {
        return value.to_owned();
    };
    let start = (raw.as_ptr() as usize).wrapping_sub(value.as_ptr() as usize);
    match (value.get(..start), value.get(start + raw.len()..)) {
        (Some(before), Some(after)) => format!("{before}<redacted>{after}"),
        _ => format!("{} <redacted>", c.scheme()),
    }
}

/// `value`, a list of `name=value` parameters (Authentication-Info), with the value of
/// every `name` parameter replaced by `"<redacted>"`; the whole value when it cannot be
/// followed (an unterminated quoted string).
fn redacted_param(value: &str, name: &str) -> String {
    let b = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    while i < b.len() {
        // One element: up to the next comma outside a quoted string.
        let start = i;
        let mut quoted = false;
        while i < b.len() && (quoted || b[i] != b',') {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                _ => {}
            }
            i += 1;
        }
        if quoted || i > b.len() {
            return "<redacted>".to_owned();
        }
        let element = &value[start..i];
        match element.split_once('=') {
            Some((n, _)) if n.trim().eq_ignore_ascii_case(name) => {
                out.push_str(&element[..n.len() + 1]);
                out.push_str("\"<redacted>\"");
            }
            _ => out.push_str(element),
        }
        if i < b.len() {
            out.push(',');
            i += 1;
        }
    }
    out
}

fn credentials(c: &Credentials<'_>) -> Value {
    // The response hash is a credential: print only that it is there.
    json!({
        "scheme": c.scheme(),
        "username": c.username(),
        "realm": c.realm().unescaped(),
        "uri": redacted_uri_passwords(&c.uri().unescaped()),
        "algorithm": c.algorithm_param().unwrap_or("MD5"),
        "qop": c.qop().map(|q| q.as_str()),
        "nc": c.nc(),
        "response_present": !c.response().is_empty(),
    })
}
