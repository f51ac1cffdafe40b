//! Arbitrary pages and answers into the headless B2C sign-in: sign-in pages, credential
//! answers, redirects and cookies as a hostile or broken provider might send them.
#![no_main]

use latchkey_oauth_core::authorize::{AuthorizeOptions, authorization_request};
use latchkey_oauth_core::b2c::{Credentials, HeadlessConfig, HeadlessLogin, Next};
use latchkey_oauth_core::http::HttpResponse;
use latchkey_oauth_core::profile::Profile;
use latchkey_oauth_core::secret::Secret;
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let profile = Profile::builtin("bticino-diy").expect("shipped profile");
    let request = authorization_request(
        &profile,
        &AuthorizeOptions::default(),
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .expect("bticino-diy has every field");
    let credentials = Credentials::new("user@example.com", Secret::new("secret-password"));
    let (mut login, _) = HeadlessLogin::start(request, credentials, HeadlessConfig::default())
        .expect("absolute URL");
    // Responses separated by 0xFF: a status byte, then a header-line count byte, then the
    // body; the body's first lines (split at '\n') become Location / Set-Cookie headers.
    for (i, chunk) in data.split(|&b| b == 0xFF).take(16).enumerate() {
        let (status, rest) = match chunk.split_first() {
            Some((&s, rest)) => (
                [200u16, 302, 303, 400, 404, 500, 301, 200][usize::from(s % 8)],
                rest,
            ),
            None => (200, chunk),
        };
        let (headers, body) = match rest.split_first() {
            Some((&n, body)) => (usize::from(n % 4), body),
            None => (0, rest),
        };
        let text = String::from_utf8_lossy(body);
        let mut response = HttpResponse::new(status, body.to_vec());
        for (k, line) in text.lines().take(headers).enumerate() {
            let name = if k % 2 == 0 { "Location" } else { "Set-Cookie" };
            response = response.with_header(name, line);
        }
        match login.handle_response(&response) {
            Ok(Next::Send(req)) => {
                assert!(!req.url.is_empty());
                // The password goes only into the credentials form, never into a URL.
                assert!(!req.url.contains("secret-password"), "step {i}");
            }
            Ok(Next::Code(code)) => {
                assert!(!code.code.expose().is_empty());
                break;
            }
            Ok(_) => break,
            Err(e) => {
                assert!(!e.to_string().contains("secret-password"));
                break;
            }
        }
    }
});
