//! HTML escaping and the page shell of the admin UI. No template engine: pages are built
//! with `format!` and every interpolated value goes through [`escape`].

use std::string::String;

/// `s` with `& < > " '` replaced by character references: safe in element content and in
/// double- or single-quoted attribute values.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet served at `/static/app.css`.
pub const CSS: &str = "\
:root{color-scheme:light dark;font-family:system-ui,sans-serif}\
body{margin:0 auto;max-width:46rem;padding:1rem;line-height:1.45}\
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}\
table{border-collapse:collapse;width:100%;font-size:.92rem}\
td,th{border-bottom:1px solid #8884;padding:.35rem;text-align:left;vertical-align:top}\
input,textarea,button{font:inherit;padding:.45rem;margin:.2rem 0;max-width:100%;box-sizing:border-box}\
input[type=text],input[type=password],textarea{width:100%}\
textarea{min-height:7rem;font-family:monospace;font-size:.8rem}\
button{cursor:pointer}.inline{display:inline}\
.msg{padding:.6rem;border-radius:.3rem;background:#2a72;margin:.6rem 0}\
.err{padding:.6rem;border-radius:.3rem;background:#d333;margin:.6rem 0}\
.muted{opacity:.7;font-size:.85rem}nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap}\
code{word-break:break-all}";

/// The script served at `/static/app.js` (the CSP allows scripts from `'self'` only): asks
/// for confirmation before forms marked `data-confirm` are sent, and toggles password
/// fields' visibility.
pub const JS: &str = "\
document.addEventListener('submit',function(e){var m=e.target.getAttribute('data-confirm');\
if(m&&!window.confirm(m)){e.preventDefault();}});\
document.addEventListener('click',function(e){var t=e.target;if(t.matches&&t.matches('[data-toggle]')){\
var f=document.getElementById(t.getAttribute('data-toggle'));if(f){f.type=f.type==='password'?'text':'password';}}});";

/// A complete page: `title` is escaped, `body` must already be safe HTML.
#[must_use]
pub fn page(title: &str, nav: bool, csrf: Option<&str>, body: &str) -> String {
    let nav_html = match (nav, csrf) {
        (true, Some(token)) => format!(
            "<nav><a href=\"/admin\">Dashboard</a><a href=\"/admin/certificate\">Certificate</a>\
             <a href=\"/admin/password\">Password</a>\
             <form class=\"inline\" method=\"post\" action=\"/logout\">{}\
             <button type=\"submit\">Log out</button></form></nav>",
            hidden("csrf", token)
        ),
        _ => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t} · latchkey</title><link rel=\"stylesheet\" href=\"/static/app.css\">\
         <script src=\"/static/app.js\" defer></script></head><body>{nav_html}<h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    )
}

/// A hidden form field.
#[must_use]
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// A notice box (`error` picks the error style); `text` is escaped.
#[must_use]
pub fn notice(text: &str, error: bool) -> String {
    if text.is_empty() {
        return String::new();
    }
    let class = if error { "err" } else { "msg" };
    format!("<p class=\"{class}\" role=\"status\">{}</p>", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_both_quote_kinds() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn pages_carry_no_inline_script() {
        let p = page("T<", true, Some("tok"), "<p>x</p>");
        assert!(p.contains("<script src=\"/static/app.js\""));
        assert!(!p.contains("<script>"));
        assert!(p.contains("T&lt;"));
    }
}
