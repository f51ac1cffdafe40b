//! `application/x-www-form-urlencoded` bodies and query strings.

/// `url` with `pairs` appended to its query (`?` or `&` as needed), before any fragment.
#[must_use]
pub fn append_query(url: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let mut out = String::with_capacity(base.len() + 64);
    out.push_str(base);
    if !base.contains('?') {
        out.push('?');
    } else if !base.ends_with('?') && !base.ends_with('&') {
        out.push('&');
    }
    out.push_str(&encode(pairs));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `k1=v1&k2=v2`, form-urlencoded.
#[must_use]
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Decodes a query string or form body into pairs (`+` is a space, percent escapes decoded,
/// invalid UTF-8 replaced).
#[must_use]
pub fn decode(input: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(input.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_query_picks_the_separator_and_keeps_the_fragment() {
        assert_eq!(
            append_query("https://a/b", &[("p", "x y")]),
            "https://a/b?p=x+y"
        );
        assert_eq!(
            append_query("https://a/b?q=1", &[("p", "&")]),
            "https://a/b?q=1&p=%26"
        );
        assert_eq!(
            append_query("https://a/b?", &[("p", "1")]),
            "https://a/b?p=1"
        );
        assert_eq!(
            append_query("https://a/b#f", &[("p", "1")]),
            "https://a/b?p=1#f"
        );
        assert_eq!(append_query("https://a/b", &[]), "https://a/b");
    }

    #[test]
    fn decode_reverses_encode() {
        let pairs = [("a", "1 2"), ("b", "é&="), ("c", "")];
        let enc = encode(&pairs);
        let dec = decode(&enc);
        let back: Vec<(&str, &str)> = dec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(back, pairs);
    }
}
