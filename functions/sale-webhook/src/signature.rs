//! Stripe webhook signatures.
//!
//! Header: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (other schemes such as `v0`
//! are ignored). Each `v1` is the hex HMAC-SHA256, keyed with the endpoint's signing secret (the
//! whole `whsec_…` string, as Stripe's libraries use it), over `"{t}.{raw body}"`.
//!
//! A request is genuine when **any** `v1` matches under **any** configured secret (Stripe sends
//! several `v1` while it rotates a secret; we may hold several secrets while we rotate ours), the
//! comparison is constant-time (`hmac`'s `verify_slice`), and `|now − t| ≤ 300 s` on the
//! technical clock. The signature is checked before the timestamp, so a forged request never
//! learns anything about our clock.
//!
//! The sale feed (`POST /webhooks/sale`, [`crate::feed`]) signs the same way in its
//! `Sale-Signature` header, with the secret of the source it names.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Largest accepted distance between the signature's `t` and our clock, either way.
pub const TOLERANCE_SECS: u64 = 300;

/// At most this many `v1` entries are looked at (a real header has one or two).
const MAX_SIGNATURES: usize = 8;

/// Why a request's signature was refused. The message is safe to show to the caller: it says
/// what is wrong with the header, never anything about the secrets.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature header has no v1 signature")]
    NoV1,
    #[error("no v1 signature matches the body with the signing secret")]
    NoMatch,
    #[error(
        "the signature's timestamp is {age_secs} s away from now, more than the tolerated {TOLERANCE_SECS} s"
    )]
    OutsideTolerance { age_secs: u64 },
}

/// The signing secrets of the endpoint: the current one and, while rotating, older ones.
/// `Debug` never prints them.
#[derive(Clone)]
pub struct SigningSecrets(Vec<Vec<u8>>);

impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecrets({} redacted)", self.0.len())
    }
}

impl SigningSecrets {
    /// Secrets from a comma-separated list (`whsec_new,whsec_old`); blanks are dropped. `None`
    /// when no secret remains.
    pub fn from_list(list: &str) -> Option<Self> {
        let secrets: Vec<Vec<u8>> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if secrets.is_empty() {
            None
        } else {
            Some(SigningSecrets(secrets))
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a verified header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The signature's timestamp, Unix seconds.
    pub timestamp: i64,
}

/// Verify `header` (the `Stripe-Signature` value, if any) over the raw `body` at `now_ms`
/// (technical clock, milliseconds since the epoch).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &SigningSecrets,
    now_ms: i64,
) -> Result<Verified, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let parsed = parse_header(header)?;
    let signed_ok = secrets.0.iter().any(|secret| {
        // `new_from_slice` accepts keys of any length for HMAC; an error is impossible, but
        // a secret that could not key a MAC simply matches nothing.
        let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
            return false;
        };
        mac.update(parsed.t_raw.as_bytes());
        mac.update(b".");
        mac.update(body);
        parsed
            .v1
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok())
    });
    if !signed_ok {
        return Err(SignatureError::NoMatch);
    }
    let now_s = now_ms.div_euclid(1000);
    let age_secs = now_s.abs_diff(parsed.t);
    if age_secs > TOLERANCE_SECS {
        return Err(SignatureError::OutsideTolerance { age_secs });
    }
    Ok(Verified {
        timestamp: parsed.t,
    })
}

/// The header value Stripe would send for `body` signed at `t` with `secret`: for tests, local
/// development and benchmarks.
pub fn sign_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", sign_hex(secret, t, body))
}

/// Hex HMAC-SHA256 of `"{t}.{body}"` under `secret`.
pub fn sign_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    to_hex(&mac.finalize().into_bytes())
}

struct ParsedHeader<'a> {
    /// `t` exactly as sent: the signed payload uses these bytes.
    t_raw: &'a str,
    t: i64,
    v1: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    let mut t: Option<&str> = None;
    let mut v1 = Vec::new();
    let mut saw_v1 = false;
    for part in header.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or(SignatureError::Malformed("every element must be key=value"))?;
        match k.trim() {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed("more than one timestamp"));
                }
                t = Some(v.trim());
            }
            "v1" => {
                saw_v1 = true;
                // A value that is not hex cannot match; the others still may.
                if let Some(bytes) = from_hex(v.trim()) {
                    if v1.len() < MAX_SIGNATURES {
                        v1.push(bytes);
                    }
                }
            }
            _ => {}
        }
    }
    let t_raw = t.ok_or(SignatureError::Malformed("no timestamp (t=)"))?;
    if t_raw.is_empty() || !t_raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed(
            "the timestamp is not a number of seconds",
        ));
    }
    let t_num: i64 = t_raw
        .parse()
        .map_err(|_| SignatureError::Malformed("the timestamp is not a number of seconds"))?;
    if !saw_v1 {
        return Err(SignatureError::NoV1);
    }
    Ok(ParsedHeader {
        t_raw,
        t: t_num,
        v1,
    })
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_current";
    const OLD: &str = "whsec_test_previous";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const T: i64 = 1_741_000_093;
    const NOW: i64 = T * 1000 + 1_500;

    fn secrets(list: &str) -> SigningSecrets {
        SigningSecrets::from_list(list).expect("secrets")
    }

    #[test]
    fn known_vector() {
        // Computed independently: printf '%s' '1741000093.{"id":"evt_1","object":"event"}' |
        //   openssl dgst -sha256 -hmac whsec_test_current
        let hex = sign_hex(SECRET, T, BODY);
        assert_eq!(
            hex,
            "1de3d69dea13d12ec96a8a7345a658da1bdfcaf63f9f3787273aff8ba7c6e8fa"
        );
        assert_eq!(from_hex(&hex).map(|b| to_hex(&b)), Some(hex.clone()));
    }

    #[test]
    fn accepts_a_good_signature() {
        let h = sign_header(SECRET, T, BODY);
        assert_eq!(
            verify(Some(&h), BODY, &secrets(SECRET), NOW),
            Ok(Verified { timestamp: T })
        );
    }

    #[test]
    fn rejects_a_tampered_body() {
        let h = sign_header(SECRET, T, BODY);
        let tampered = br#"{"id":"evt_2","object":"event"}"#;
        assert_eq!(
            verify(Some(&h), tampered, &secrets(SECRET), NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn rejects_a_wrong_secret() {
        let h = sign_header("whsec_someone_else", T, BODY);
        assert_eq!(
            verify(Some(&h), BODY, &secrets(SECRET), NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn tolerance_is_300_seconds_both_ways() {
        let s = secrets(SECRET);
        let h = sign_header(SECRET, T, BODY);
        assert!(verify(Some(&h), BODY, &s, (T + 300) * 1000 + 999).is_ok());
        assert!(verify(Some(&h), BODY, &s, (T - 300) * 1000).is_ok());
        assert_eq!(
            verify(Some(&h), BODY, &s, (T + 301) * 1000),
            Err(SignatureError::OutsideTolerance { age_secs: 301 })
        );
        assert_eq!(
            verify(Some(&h), BODY, &s, (T - 301) * 1000),
            Err(SignatureError::OutsideTolerance { age_secs: 301 })
        );
    }

    #[test]
    fn the_timestamp_is_signed() {
        // Moving t forward to dodge the tolerance check breaks the signature.
        let sig = sign_hex(SECRET, T, BODY);
        let h = format!("t={},v1={sig}", T + 1000);
        assert_eq!(
            verify(Some(&h), BODY, &secrets(SECRET), (T + 1000) * 1000),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn any_v1_may_match() {
        let good = sign_hex(SECRET, T, BODY);
        let bad = sign_hex("whsec_rolled", T, BODY);
        for h in [
            format!("t={T},v1={bad},v1={good}"),
            format!("t={T},v1={good},v1={bad}"),
            format!("t={T}, v0=abcdef, v1={bad}, v1={good}"),
            format!("v1={good},t={T}"),
        ] {
            assert!(verify(Some(&h), BODY, &secrets(SECRET), NOW).is_ok(), "{h}");
        }
    }

    #[test]
    fn rotated_secrets_are_all_tried() {
        let both = secrets(&format!(" {SECRET} , {OLD} ,"));
        assert_eq!(both.len(), 2);
        assert!(verify(Some(&sign_header(OLD, T, BODY)), BODY, &both, NOW).is_ok());
        assert!(verify(Some(&sign_header(SECRET, T, BODY)), BODY, &both, NOW).is_ok());
        assert_eq!(
            verify(
                Some(&sign_header(OLD, T, BODY)),
                BODY,
                &secrets(SECRET),
                NOW
            ),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let s = secrets(SECRET);
        let good = sign_hex(SECRET, T, BODY);
        assert_eq!(verify(None, BODY, &s, NOW), Err(SignatureError::Missing));
        let cases: &[(String, SignatureError)] = &[
            (
                String::new(),
                SignatureError::Malformed("no timestamp (t=)"),
            ),
            (
                "garbage".into(),
                SignatureError::Malformed("every element must be key=value"),
            ),
            (
                format!("v1={good}"),
                SignatureError::Malformed("no timestamp (t=)"),
            ),
            (
                format!("t=abc,v1={good}"),
                SignatureError::Malformed("the timestamp is not a number of seconds"),
            ),
            (
                format!("t=-5,v1={good}"),
                SignatureError::Malformed("the timestamp is not a number of seconds"),
            ),
            (
                format!("t=99999999999999999999,v1={good}"),
                SignatureError::Malformed("the timestamp is not a number of seconds"),
            ),
            (
                format!("t={T},t={T},v1={good}"),
                SignatureError::Malformed("more than one timestamp"),
            ),
            (format!("t={T}"), SignatureError::NoV1),
            (format!("t={T},v0={good}"), SignatureError::NoV1),
            (
                format!("t={T},v1=zz{}", &good[2..]),
                SignatureError::NoMatch,
            ),
            (format!("t={T},v1={}", &good[..62]), SignatureError::NoMatch),
            (format!("t={T},v1="), SignatureError::NoMatch),
        ];
        for (h, want) in cases {
            assert_eq!(verify(Some(h), BODY, &s, NOW).as_ref(), Err(want), "{h:?}");
        }
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let h = format!("t={T},v1={}", sign_hex(SECRET, T, BODY).to_uppercase());
        assert!(verify(Some(&h), BODY, &secrets(SECRET), NOW).is_ok());
    }

    #[test]
    fn secrets_list_and_debug() {
        assert!(SigningSecrets::from_list(" , ,").is_none());
        let s = secrets("whsec_a,whsec_b");
        assert_eq!(format!("{s:?}"), "SigningSecrets(2 redacted)");
    }
}
