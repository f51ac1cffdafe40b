//! Arbitrary answers into every cloud API response reader (Legrand, U-tec, Watts): a broken or
//! hostile service.
#![no_main]

use latchkey_oauth_core::cloud::{is_unauthorized, legrand, utec, utec_local, watts};
use latchkey_oauth_core::http::HttpResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data.split_first() {
        Some((&s, body)) => (
            [200u16, 201, 400, 401, 403, 404, 500, 502][usize::from(s % 8)],
            body,
        ),
        None => (200, data),
    };
    let r = HttpResponse::new(status, body.to_vec());
    if let Ok(plants) = legrand::parse_plants(&r) {
        assert!(plants.iter().all(|p| !p.id.is_empty()));
    }
    let _ = legrand::parse_plant(&r);
    if let Ok(modules) = legrand::parse_modules(&r, "p-1") {
        let _ = legrand::gateway(&modules);
        let _ = legrand::locks(&modules);
    }
    let _ = legrand::parse_sip_accounts(&r);
    if let Ok(account) = legrand::parse_registered_account(&r, usize::from(status % 5)) {
        assert!(account.password.is_some());
    }
    if let Ok(pem) = legrand::parse_ca_chain(&r) {
        let _ = pem.len();
    }
    if let Ok(pem) = legrand::parse_issued_certificate(&r) {
        assert!(pem.contains("-----BEGIN"));
    }
    if let Ok(devices) = utec::parse_devices(&r) {
        assert!(devices.iter().all(|d| !d.id.is_empty()));
    }
    let _ = utec::parse_states(&r);
    let _ = is_unauthorized(&r);
    // The same bytes as a request body (and query) to the uteclocal endpoints.
    for path in ["/api/status", "/api/lock", "/unlock", "/api/config"] {
        let _ = utec_local::route("POST", path, "", body);
    }
    if let Ok(query) = std::str::from_utf8(body) {
        let _ = utec_local::route("GET", "/api/status", query, b"");
    }
    let _ = watts::parse_envelope(&r, "fuzz");
    if let Ok(locations) = watts::parse_locations(&r) {
        assert!(locations.iter().all(|l| !l.id.is_empty()));
    }
    if let Ok(devices) = watts::parse_devices(&r) {
        assert!(devices.iter().all(|d| !d.id.is_empty()));
    }
});
