//! Password hashing away from the application lock.
//!
//! A costly request ([`Request::is_costly`](crate::Request::is_costly): login, first-boot setup, password change)
//! spends nearly all its time in Argon2id. A driver that shares one [`App`](crate::App) between
//! connections behind a lock would stall every other request and panel message for as long
//! (tens of milliseconds at the OWASP cost). Instead it
//!
//! 1. asks [`App::password_work`](crate::App::password_work), under the lock and cheaply, what the request will verify
//!    or hash;
//! 2. runs [`PasswordWork::run`] without the lock (on a blocking pool, a bounded number at a
//!    time, since each run holds its Argon2 memory);
//! 3. answers with [`App::handle_request_with`](crate::App::handle_request_with) and the [`PasswordResults`], under the lock.
//!    The handlers take a result only when its inputs are the ones they would hash; anything
//!    changed meanwhile (another login set a new password) is hashed under the lock, as it
//!    was before, so the outcome never depends on the split.
//!
//! Work is planned only for requests that passed the checks their handler makes before any
//! hashing (the setup link, the form's CSRF token, the login throttle, an admin session), so
//! requests that would be refused cost no hashing here either.

use core::fmt;
use std::string::String;

use latchkey_protocol::guard::{PasswordError, PasswordHasher, Verification};

/// When a planned hash is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashWhen {
    /// In any case (a first password).
    Always,
    /// When the verification succeeded (a password change after the current one).
    IfVerified,
    /// When the verification succeeded and asked for a stronger hash (a login).
    IfRehash,
}

/// The password operations one request will need (see the module docs). Holds the
/// submitted passwords: never logged (its `Debug` shows none).
pub struct PasswordWork {
    pub(crate) hasher: PasswordHasher,
    /// (stored PHC string, password).
    pub(crate) verify: Option<(String, String)>,
    /// (password, fresh salt, when).
    pub(crate) hash: Option<(String, [u8; 16], HashWhen)>,
}

impl fmt::Debug for PasswordWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordWork")
            .field("verify", &self.verify.is_some())
            .field("hash", &self.hash.as_ref().map(|h| h.2))
            .finish_non_exhaustive()
    }
}

impl PasswordWork {
    /// Does the work: the verification first, then the hash when it is wanted. Pure CPU
    /// (Argon2id or PBKDF2), no lock, no I/O.
    #[must_use]
    pub fn run(self) -> PasswordResults {
        let verified = self.verify.map(|(stored, password)| {
            let result = self.hasher.verify(&stored, &password);
            (stored, password, result)
        });
        let outcome = verified.as_ref().map(|(_, _, r)| r.as_ref().ok().copied());
        let hashed = self.hash.and_then(|(password, salt, when)| {
            let wanted = match when {
                HashWhen::Always => true,
                HashWhen::IfVerified => matches!(outcome, Some(Some(_))),
                HashWhen::IfRehash => matches!(outcome, Some(Some(v)) if v.needs_rehash),
            };
            wanted.then(|| {
                let result = self.hasher.hash_with_salt(&password, &salt);
                (password, result)
            })
        });
        PasswordResults { verified, hashed }
    }
}

/// What [`PasswordWork::run`] found, for
/// [`App::handle_request_with`](crate::App::handle_request_with). Holds the submitted
/// passwords (to match them): never logged.
#[derive(Default)]
pub struct PasswordResults {
    /// (stored PHC string, password, outcome).
    verified: Option<(String, String, Result<Verification, PasswordError>)>,
    /// (password, PHC string or why none).
    hashed: Option<(String, Result<String, PasswordError>)>,
}

impl fmt::Debug for PasswordResults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordResults")
            .field("verified", &self.verified.as_ref().map(|v| v.2.is_ok()))
            .field("hashed", &self.hashed.as_ref().map(|h| h.1.is_ok()))
            .finish()
    }
}

impl PasswordResults {
    /// The outcome of verifying `password` against `stored`, if that is what was done.
    pub(crate) fn verification(
        &self,
        stored: &str,
        password: &str,
    ) -> Option<Result<Verification, PasswordError>> {
        self.verified
            .as_ref()
            .filter(|(s, p, _)| s == stored && p == password)
            .map(|(_, _, r)| r.clone())
    }

    /// The hash of `password`, if that is what was done (once: a salt is used once).
    pub(crate) fn take_hash(&mut self, password: &str) -> Option<Result<String, PasswordError>> {
        if self.hashed.as_ref().is_some_and(|(p, _)| p == password) {
            self.hashed.take().map(|(_, r)| r)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use latchkey_protocol::guard::{Argon2Params, Now, PasswordHasher};
    use latchkey_protocol::time::Instant;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use crate::http::{Method, Request};
    use crate::{App, AppConfig};

    const PRE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 9));

    fn now() -> Now {
        Now::new(Instant::from_secs(1), 1_767_225_601)
    }

    fn app() -> (App, ChaCha20Rng) {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let app = App::new(AppConfig::for_tests(), &mut rng).unwrap();
        (app, rng)
    }

    fn setup_request(app: &App, password: &str, csrf_ok: bool) -> Request {
        let token = app.setup_token.clone().unwrap();
        let csrf = if csrf_ok {
            app.csrf_token("pre", PRE)
        } else {
            "0".repeat(64)
        };
        Request::new(Method::Post, "/setup")
            .with_header("Cookie", &format!("__Host-lk_pre={PRE}"))
            .with_body(
                format!("token={token}&csrf={csrf}&password={password}&confirm={password}")
                    .into_bytes(),
            )
    }

    /// The stored admin hash's Argon2 memory cost, read from the PHC string.
    fn stored_memory(app: &App) -> String {
        let phc = &app.state.admin.as_ref().unwrap().password_hash;
        phc.split('$')
            .find_map(|part| part.strip_prefix("m="))
            .and_then(|p| p.split(',').next())
            .unwrap()
            .to_owned()
    }

    /// The password work of `req`, done with other costs than the app's own (96 KiB), so
    /// the stored hash tells whose it is.
    fn done_apart_at_96_kib(
        app: &mut App,
        rng: &mut ChaCha20Rng,
        req: &Request,
    ) -> super::PasswordResults {
        let mut work = app.password_work(now(), PEER, req, rng).unwrap();
        work.hasher = PasswordHasher::new(Argon2Params {
            m_kib: 96,
            t: 1,
            p: 1,
        })
        .unwrap();
        work.run()
    }

    #[test]
    fn the_handler_takes_the_hash_done_outside_when_its_inputs_match() {
        let (mut app, mut rng) = app();
        let req = setup_request(&app, "Correct1Horse", true);
        let results = done_apart_at_96_kib(&mut app, &mut rng, &req);
        let (r, _) = app.handle_request_with(now(), PEER, &req, &mut rng, results);
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(stored_memory(&app), "96");
    }

    #[test]
    fn inputs_that_changed_since_the_work_was_done_are_hashed_by_the_handler() {
        let (mut app, mut rng) = app();
        let planned = setup_request(&app, "Correct1Horse", true);
        let results = done_apart_at_96_kib(&mut app, &mut rng, &planned);
        let sent = setup_request(&app, "Another2Horse", true);
        let (r, _) = app.handle_request_with(now(), PEER, &sent, &mut rng, results);
        assert_eq!(r.status, 303, "{}", r.text());
        assert_eq!(stored_memory(&app), "64");
        let phc = app.state.admin.as_ref().unwrap().password_hash.clone();
        assert!(app.hasher.verify(&phc, "Another2Horse").is_ok());
    }

    #[test]
    fn requests_refused_before_any_hashing_get_no_work() {
        let (mut app, mut rng) = app();
        let bad_csrf = setup_request(&app, "Correct1Horse", false);
        assert!(
            app.password_work(now(), PEER, &bad_csrf, &mut rng)
                .is_none()
        );
        let weak = setup_request(&app, "short", true);
        assert!(app.password_work(now(), PEER, &weak, &mut rng).is_none());
        let mut wrong_link = setup_request(&app, "Correct1Horse", true);
        wrong_link.body = wrong_link.body.replace_token();
        assert!(
            app.password_work(now(), PEER, &wrong_link, &mut rng)
                .is_none()
        );
        let get = Request::new(Method::Get, "/login");
        assert!(app.password_work(now(), PEER, &get, &mut rng).is_none());
        // A login with no admin yet, or for another user: nothing to verify.
        let login = Request::new(Method::Post, "/login")
            .with_header("Cookie", &format!("__Host-lk_pre={PRE}"))
            .with_body(
                format!("user=admin&password=x&csrf={}", app.csrf_token("pre", PRE)).into_bytes(),
            );
        assert!(app.password_work(now(), PEER, &login, &mut rng).is_none());
    }

    #[test]
    fn debug_output_of_the_work_and_its_results_holds_no_password() {
        let (mut app, mut rng) = app();
        let req = setup_request(&app, "Correct1Horse", true);
        let work = app.password_work(now(), PEER, &req, &mut rng).unwrap();
        let shown = format!("{work:?}");
        let results = work.run();
        let shown = shown + &format!("{results:?}");
        assert!(!shown.contains("Correct1Horse"), "{shown}");
        assert!(!shown.contains("$argon2"), "{shown}");
    }

    /// Replaces the setup token in a form body with another one.
    trait ReplaceToken {
        fn replace_token(&self) -> Vec<u8>;
    }

    impl ReplaceToken for Vec<u8> {
        fn replace_token(&self) -> Vec<u8> {
            let text = String::from_utf8_lossy(self);
            let rest = text.split_once('&').map_or("", |(_, r)| r);
            format!("token={}&{rest}", "f".repeat(43)).into_bytes()
        }
    }
}
