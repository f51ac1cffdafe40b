//! Sessions saved by other clients, imported so that moving to latchkey needs no new login.
//!
//! Two formats, both JSON:
//!
//! * [`ImportFormat::BticinoTokenCache`]: the token cache of the BTicino/Legrand Node.js
//!   client (`s-dimaio/BTicinoDoorEntry`, `token_cache.json`): `b2cAccessToken`,
//!   `b2cRefreshToken`, `expiresIn`, `tokenType`, `receivedAt` (ISO 8601), `expiresAt`
//!   (ISO 8601), and in the enriched form `receivedAtMs`/`expiresAtMs` (Unix milliseconds).
//!   Raw token-endpoint names (`access_token`, `refresh_token`, `expires_in`) are accepted
//!   too, as that client does.
//! * [`ImportFormat::UtecGatewayConfig`]: the `config.json` of the U-tec local gateways
//!   (`Wheresitat/uteclocal`: `access_token`, `refresh_token`, `token_type`,
//!   `token_expires_in`, `access_key`, `secret_key`, `redirect_url`, `oauth_base_url`;
//!   `Wheresitat/uteclocal-HA`: the same with `token_expires_at` as a naive UTC ISO 8601
//!   time and `redirect_uri`). The access and secret keys are the OAuth client id and
//!   secret.
//!
//! A refresh token is required: without one there is no session to keep. When the file does
//! not say when its access token expires (uteclocal stores `token_expires_in` without the
//! time it was received), the token is taken as expired, so the first use refreshes it.
//!
//! Only one client may hold a rotating refresh token: once the other client refreshes with
//! its copy, the provider sees a spent token reused and may revoke the whole grant. Stop the
//! other client after importing (the CLI says so).

use serde_json::{Map, Value};

use crate::response::{ExpirySource, TokenResponse};
use crate::secret::Secret;

/// Largest file accepted, in bytes (the real ones are a few kilobytes).
pub const MAX_IMPORT_BYTES: usize = 256 * 1024;

/// A saved-session format latchkey can import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportFormat {
    /// The BTicino/Legrand Node.js client's `token_cache.json`.
    BticinoTokenCache,
    /// A U-tec local gateway's `config.json`.
    UtecGatewayConfig,
}

impl ImportFormat {
    /// Every format, in the order detection tries them.
    pub const ALL: [ImportFormat; 2] = [
        ImportFormat::BticinoTokenCache,
        ImportFormat::UtecGatewayConfig,
    ];

    /// The name used on the command line (`bticino-token-cache`, `utec-config`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ImportFormat::BticinoTokenCache => "bticino-token-cache",
            ImportFormat::UtecGatewayConfig => "utec-config",
        }
    }

    /// The format named `name` ([`ImportFormat::name`]).
    #[must_use]
    pub fn from_name(name: &str) -> Option<ImportFormat> {
        ImportFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether a session in this format belongs to the provider profile `profile_name`.
    /// `generic` and profiles of the user's own (any other name) accept every format.
    #[must_use]
    pub fn fits_provider(self, profile_name: &str) -> bool {
        let builtin_owner = match profile_name {
            "bticino-diy" | "bticino-c100x" => Some(ImportFormat::BticinoTokenCache),
            "utec" => Some(ImportFormat::UtecGatewayConfig),
            "watts" => None,
            _ => return true,
        };
        builtin_owner == Some(self)
    }

    /// Fields whose presence identifies the format.
    const fn markers(self) -> &'static [&'static str] {
        match self {
            ImportFormat::BticinoTokenCache => &[
                "b2cRefreshToken",
                "b2cAccessToken",
                "expiresAtMs",
                "receivedAtMs",
            ],
            ImportFormat::UtecGatewayConfig => &[
                "access_key",
                "secret_key",
                "token_expires_at",
                "token_expires_in",
                "oauth_base_url",
            ],
        }
    }
}

impl core::fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A session read from another client's file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Imported {
    /// The format it was read as.
    pub format: ImportFormat,
    /// The tokens, as if a login had returned them. `received_at` is when the other client
    /// received them where the file tells (the BTicino cache's `receivedAt`, or `expiresAt`
    /// minus `expiresIn`; a U-tec config holding both `token_expires_at` and
    /// `token_expires_in`), never later than the import; else the import time. The session
    /// takes it as the access token's issue time: the refresh schedule follows the real
    /// lifetime, and a 401 on a token obtained long ago is answered with a refresh at once.
    pub tokens: TokenResponse,
    /// The OAuth client id the file names (U-tec's `access_key`).
    pub client_id: Option<String>,
    /// The client secret the file holds (U-tec's `secret_key`).
    pub client_secret: Option<Secret>,
    /// The redirect URI the file names.
    pub redirect_uri: Option<String>,
    /// The token endpoint the file implies (U-tec's `oauth_base_url` + `/token`).
    pub token_endpoint: Option<String>,
    /// Things the user should know (no secrets), e.g. an unknown expiry.
    pub notes: Vec<String>,
}

/// Why a file cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// Larger than [`MAX_IMPORT_BYTES`].
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// Not JSON.
    Json {
        /// The JSON parser's explanation (line and column; never the content).
        message: String,
    },
    /// JSON, but not an object.
    NotAnObject,
    /// No format was given and the fields do not identify one.
    UnknownFormat,
    /// A required field is absent or empty.
    Missing {
        /// The format read.
        format: ImportFormat,
        /// The field names accepted for it.
        field: &'static str,
    },
    /// A field has the wrong type or an unreadable value.
    Invalid {
        /// The format read.
        format: ImportFormat,
        /// The field.
        field: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
    /// The file belongs to another provider than the one asked for.
    WrongProvider {
        /// The format read.
        format: ImportFormat,
        /// The provider profile asked for.
        provider: String,
    },
}

impl core::fmt::Display for ImportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ImportError::TooLarge { len } => write!(
                f,
                "the file has {len} bytes; a saved session is at most {MAX_IMPORT_BYTES}"
            ),
            ImportError::Json { message } => write!(f, "the file is not JSON: {message}"),
            ImportError::NotAnObject => f.write_str("the file is JSON but not an object"),
            ImportError::UnknownFormat => {
                let known: Vec<String> = ImportFormat::ALL
                    .iter()
                    .map(|f| format!("{} ({})", f.name(), f.markers().join(", ")))
                    .collect();
                write!(
                    f,
                    "cannot tell which client saved this file; name the format (known: {})",
                    known.join("; ")
                )
            }
            ImportError::Missing { format, field } => {
                write!(f, "{format}: the file has no {field}")
            }
            ImportError::Invalid {
                format,
                field,
                reason,
            } => write!(f, "{format}: {field} {reason}"),
            ImportError::WrongProvider { format, provider } => write!(
                f,
                "a {format} file does not belong to provider {provider:?} (use {})",
                match format {
                    ImportFormat::BticinoTokenCache => "bticino-diy or bticino-c100x",
                    ImportFormat::UtecGatewayConfig => "utec",
                }
            ),
        }
    }
}

impl std::error::Error for ImportError {}

/// Reads a saved session at `now` (wall-clock Unix seconds). `format` `None` detects it from
/// the fields present.
///
/// # Errors
/// [`ImportError`] naming the field that is missing or wrong.
pub fn import_session(
    bytes: &[u8],
    format: Option<ImportFormat>,
    now: u64,
) -> Result<Imported, ImportError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge { len: bytes.len() });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ImportError::Json {
        message: e.to_string(),
    })?;
    let Value::Object(doc) = value else {
        return Err(ImportError::NotAnObject);
    };
    let format = match format {
        Some(f) => f,
        None => detect(&doc).ok_or(ImportError::UnknownFormat)?,
    };
    let fields = Fields { doc: &doc, format };
    match format {
        ImportFormat::BticinoTokenCache => bticino(&fields, now),
        ImportFormat::UtecGatewayConfig => utec(&fields, now),
    }
}

/// The one format whose marker fields the document has.
fn detect(doc: &Map<String, Value>) -> Option<ImportFormat> {
    let mut found = ImportFormat::ALL
        .into_iter()
        .filter(|f| f.markers().iter().any(|m| doc.contains_key(*m)));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

struct Fields<'a> {
    doc: &'a Map<String, Value>,
    format: ImportFormat,
}

impl Fields<'_> {
    /// The first of `names` present and not null.
    fn get(&self, names: &[&'static str]) -> Option<(&'static str, &Value)> {
        names
            .iter()
            .find_map(|n| self.doc.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
    }

    fn invalid(&self, field: &'static str, reason: impl Into<String>) -> ImportError {
        ImportError::Invalid {
            format: self.format,
            field,
            reason: reason.into(),
        }
    }

    /// A string field; empty strings count as absent.
    fn string(&self, names: &[&'static str]) -> Result<Option<String>, ImportError> {
        match self.get(names) {
            None => Ok(None),
            Some((_, Value::String(s))) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
            Some((name, _)) => Err(self.invalid(name, "is not a string")),
        }
    }

    fn required(&self, names: &[&'static str], label: &'static str) -> Result<String, ImportError> {
        self.string(names)?.ok_or(ImportError::Missing {
            format: self.format,
            field: label,
        })
    }

    /// A non-negative number of seconds (or milliseconds), given as a number or a string.
    fn number(&self, names: &[&'static str]) -> Result<Option<(&'static str, u64)>, ImportError> {
        let Some((name, v)) = self.get(names) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e18)
                    .map(|f| f as u64)
            }),
            Value::String(s) if s.trim().is_empty() => return Ok(None),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        n.map(|n| Some((name, n)))
            .ok_or_else(|| self.invalid(name, "is not a non-negative number"))
    }

    /// A time: ISO 8601 text, or Unix milliseconds when `millis` names the field.
    fn time(
        &self,
        iso: &[&'static str],
        millis: &[&'static str],
    ) -> Result<Option<u64>, ImportError> {
        if let Some((_, ms)) = self.number(millis)? {
            return Ok(Some(ms / 1000));
        }
        match self.get(iso) {
            None => Ok(None),
            Some((_, Value::String(s))) if s.trim().is_empty() => Ok(None),
            Some((name, Value::String(s))) => parse_iso8601(s.trim())
                .map(Some)
                .ok_or_else(|| self.invalid(name, "is not an ISO 8601 date and time")),
            Some((name, _)) => Err(self.invalid(name, "is not a string")),
        }
    }
}

fn bticino(f: &Fields<'_>, now: u64) -> Result<Imported, ImportError> {
    let refresh = f.required(&["b2cRefreshToken", "refresh_token"], "b2cRefreshToken")?;
    let access = f.required(&["b2cAccessToken", "access_token"], "b2cAccessToken")?;
    let token_type = f
        .string(&["tokenType", "token_type"])?
        .unwrap_or_else(|| "Bearer".to_owned());
    let received = f.time(&["receivedAt"], &["receivedAtMs"])?;
    let lifetime = f.number(&["expiresIn", "expires_in"])?.map(|(_, n)| n);
    let mut notes = Vec::new();
    let expires_at = match f.time(&["expiresAt"], &["expiresAtMs"])? {
        Some(at) => at,
        None => match (received, lifetime) {
            (Some(r), Some(l)) => r.saturating_add(l),
            _ => {
                notes.push(unknown_expiry_note());
                now
            }
        },
    };
    let refresh_expires_at = match (received, f.number(&["refresh_token_expires_in"])?) {
        (Some(r), Some((_, l))) => Some(r.saturating_add(l)),
        _ => None,
    };
    let obtained = received.or_else(|| {
        let at = f.time(&["expiresAt"], &["expiresAtMs"]).ok()??;
        Some(at.saturating_sub(lifetime?))
    });
    let tokens = tokens(TokenParts {
        access,
        token_type,
        expires_at,
        obtained,
        refresh,
        refresh_expires_at,
        id_token: f.string(&["idToken", "id_token"])?,
        scope: f.string(&["scope"])?,
        now,
    });
    Ok(Imported {
        format: f.format,
        tokens,
        client_id: None,
        client_secret: None,
        redirect_uri: None,
        token_endpoint: None,
        notes,
    })
}

fn utec(f: &Fields<'_>, now: u64) -> Result<Imported, ImportError> {
    let refresh = f.required(&["refresh_token"], "refresh_token")?;
    let access = f.required(&["access_token"], "access_token")?;
    let token_type = f
        .string(&["token_type"])?
        .unwrap_or_else(|| "Bearer".to_owned());
    let mut notes = Vec::new();
    let saved_expiry = f.time(&["token_expires_at"], &[])?;
    let expires_at = match saved_expiry {
        Some(at) => at,
        None => {
            notes.push(unknown_expiry_note());
            now
        }
    };
    let obtained = match (saved_expiry, f.number(&["token_expires_in"])?) {
        (Some(at), Some((_, lifetime))) => Some(at.saturating_sub(lifetime)),
        _ => None,
    };
    let token_endpoint = f
        .string(&["oauth_base_url"])?
        .map(|base| format!("{}/token", base.trim_end_matches('/')));
    let tokens = tokens(TokenParts {
        access,
        token_type,
        expires_at,
        obtained,
        refresh,
        refresh_expires_at: None,
        id_token: None,
        scope: f.string(&["scope"])?,
        now,
    });
    Ok(Imported {
        format: f.format,
        tokens,
        client_id: f.string(&["access_key", "client_id"])?,
        client_secret: f.string(&["secret_key", "client_secret"])?.map(Secret::new),
        redirect_uri: f.string(&["redirect_uri", "redirect_url"])?,
        token_endpoint,
        notes,
    })
}

fn unknown_expiry_note() -> String {
    "the file does not say when the access token expires: it is taken as expired and \
     refreshed at first use"
        .to_owned()
}

struct TokenParts {
    access: String,
    token_type: String,
    expires_at: u64,
    /// When the other client received the tokens, if the file tells.
    obtained: Option<u64>,
    refresh: String,
    refresh_expires_at: Option<u64>,
    id_token: Option<String>,
    scope: Option<String>,
    now: u64,
}

fn tokens(p: TokenParts) -> TokenResponse {
    TokenResponse {
        access_token: Secret::new(p.access),
        token_type: p.token_type,
        expires_at: Some(p.expires_at),
        expiry_source: ExpirySource::Imported,
        not_before: None,
        refresh_token: Some(Secret::new(p.refresh)),
        refresh_expires_at: p.refresh_expires_at,
        id_token: p.id_token.map(Secret::new),
        scope: p.scope,
        received_at: p.obtained.map_or(p.now, |at| at.min(p.now)),
        clock_skew: 0,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` (RFC 3339, plus the offset-less
/// form Python's `datetime.isoformat()` writes, read as UTC; a space may replace the `T`).
/// Returns Unix seconds; the fraction is dropped.
#[must_use]
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0u64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let (h, m, sec) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset: i64 = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let (sign, tz) = match rest.as_bytes().first() {
                Some(b'+') => (1, &rest[1..]),
                Some(b'-') => (-1, &rest[1..]),
                _ => return None,
            };
            let tz = tz.as_bytes();
            let two = |at: usize| -> Option<i64> {
                let (a, b) = (tz.get(at)?, tz.get(at + 1)?);
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (oh, om) = match tz.len() {
                5 if tz.get(2) == Some(&b':') => (two(0)?, two(3)?),
                4 => (two(0)?, two(2)?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&year)
        || day == 0
        || day > days_in_month
        || h > 23
        || m > 59
        || sec > 60
    {
        return None;
    }
    let local =
        crate::response::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
    // The offset says how far local time is ahead of UTC.
    u64::try_from(i64::try_from(local).ok()?.checked_sub(offset)?).ok()
}

#[cfg(test)]
mod tests;
