//! Access tokens: HS256 JWTs (RFC 7519, RFC 7515 compact form) signed with a per-install
//! random key kept in the data dir (`jwt.key`, mode 0600). Claims: `sub` (user id), `jti`
//! (random id, for revocation), `gen` (the user's token generation: bumping it voids every
//! token of that user), `nce` (the user row's random `token_nonce`: a token never
//! authenticates another row, even one that got the same id), `iat`, `nbf`, `exp`. The role
//! is *not* trusted from the token; it is read from the database on every request so
//! demotions take effect at once.
//!
//! The codec is ours (HMAC-SHA-256 and base64url are `hmac-sha256` and `ct-codecs`): a
//! general JWT library cost ~100 KiB of router flash for the one algorithm we use. Tokens
//! are byte-for-byte what `jwt-simple` 0.12 issued before (header `{"alg":"HS256","typ":"JWT"}`,
//! claims in the order `iat, exp, nbf, sub, jti, gen, nce`), so tokens survive an upgrade
//! either way. [`sign`] and [`decode`] are pure: time is a parameter.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The only header we issue; any `alg` other than HS256 is refused on the way in.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
/// Longer tokens are refused before any decoding (ours are ~300 bytes).
const MAX_TOKEN_LEN: usize = 2048;

/// The claims as they are on the wire. Every field is optional on the way in so that a
/// missing one is an invalid token rather than a parse error of a different kind.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Payload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// The user's token generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gen: Option<i64>,
    /// Required: tokens from before it existed are invalid (their owners log in again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nce: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    /// Critical extensions (RFC 7515 §4.1.11): we understand none.
    #[serde(default)]
    crit: Option<Vec<String>>,
}

/// A verified token's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenClaims {
    pub user_id: i64,
    pub jti: String,
    pub generation: i64,
    pub nonce: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

fn base64url(bytes: &[u8]) -> String {
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

fn unbase64url(text: &str) -> Result<Vec<u8>, TokenError> {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    Base64UrlSafeNoPadding::decode_to_vec(text, None).map_err(|_| TokenError::Invalid)
}

/// The compact JWS of `payload` under `key`: `b64(header).b64(payload).b64(HMAC)`.
fn sign_payload(key: &[u8], payload: &Payload) -> String {
    let json = serde_json::to_vec(payload).unwrap_or_default();
    let mut token = base64url(HEADER.as_bytes());
    token.push('.');
    token.push_str(&base64url(&json));
    let tag = hmac_sha256::HMAC::mac(token.as_bytes(), key);
    token.push('.');
    token.push_str(&base64url(&tag));
    token
}

/// A token for `claims`, issued at `now` (Unix time) and valid from then until
/// `claims.expires_at` inclusive.
pub fn sign(key: &[u8], claims: &TokenClaims, now: Duration) -> String {
    let iat = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    sign_payload(
        key,
        &Payload {
            iat: Some(iat),
            exp: Some(claims.expires_at),
            nbf: Some(iat),
            sub: Some(claims.user_id.to_string()),
            jti: Some(claims.jti.clone()),
            gen: Some(claims.generation),
            nce: Some(claims.nonce.clone()),
        },
    )
}

/// Whether `secs` (a claim) is at or before `now`.
fn not_after(secs: i64, now: Duration) -> bool {
    u64::try_from(secs).is_ok_and(|s| Duration::from_secs(s) <= now)
}

/// Verifies `token` under `key` at `now` (Unix time): the signature first (constant-time),
/// then the claims. `Expired` only for a token we signed whose `exp` has passed (no
/// tolerance: the contract's TOKEN_EXPIRED must mean what it says).
pub fn decode(key: &[u8], token: &str, now: Duration) -> Result<TokenClaims, TokenError> {
    use TokenError::Invalid;
    if token.len() > MAX_TOKEN_LEN {
        return Err(Invalid);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid);
    };
    let header: Header = crate::input::from_json(&unbase64url(header)?).map_err(|_| Invalid)?;
    let typ_ok = header.typ.as_deref().is_none_or(|t| {
        let t = t.to_ascii_uppercase();
        t == "JWT" || t.ends_with("+JWT")
    });
    if header.alg != "HS256" || !typ_ok || header.crit.is_some_and(|c| !c.is_empty()) {
        return Err(Invalid);
    }
    let signed = &token[..token.len() - tag.len() - 1];
    let expected = hmac_sha256::HMAC::mac(signed.as_bytes(), key);
    if !ct_codecs::verify(&expected, &unbase64url(tag)?) {
        return Err(Invalid);
    }
    let claims: Payload = crate::input::from_json(&unbase64url(payload)?).map_err(|_| Invalid)?;
    let (Some(generation), Some(nonce)) = (claims.gen, claims.nce) else {
        return Err(Invalid);
    };
    if claims.iat.is_some_and(|t| !not_after(t, now))
        || claims.nbf.is_some_and(|t| !not_after(t, now))
    {
        return Err(Invalid);
    }
    let expires_at = claims.exp.ok_or(Invalid)?;
    // Valid up to and including the second `exp` itself.
    if u64::try_from(expires_at).map_or(true, |e| now > Duration::from_secs(e)) {
        return Err(TokenError::Expired);
    }
    Ok(TokenClaims {
        user_id: claims.sub.and_then(|s| s.parse().ok()).ok_or(Invalid)?,
        jti: claims.jti.ok_or(Invalid)?,
        generation,
        nonce,
        expires_at,
    })
}

pub struct TokenService {
    /// Replaced only by a restore that brings another router's key ([`TokenService::set_key`]).
    key: std::sync::RwLock<Vec<u8>>,
    /// Lifetime of newly issued tokens; changeable live (`/system/config` `session_timeout`).
    /// 32 bits: MIPS32 has no 64-bit atomics, and the bound (366 days) fits.
    ttl_secs: std::sync::atomic::AtomicU32,
    /// Revocations the database could not take yet (a full disk): refused all the same.
    pub unsaved: super::revocation::Unsaved,
}

fn clamp_ttl(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// Time since the Unix epoch (zero on a clock set before 1970, where nothing verifies).
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

pub struct Issued {
    pub token: String,
    pub claims: TokenClaims,
}

impl TokenService {
    pub fn new(key: &[u8], ttl_secs: u64) -> TokenService {
        TokenService {
            key: std::sync::RwLock::new(key.to_vec()),
            ttl_secs: clamp_ttl(ttl_secs).into(),
            unsaved: Default::default(),
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        u64::from(self.ttl_secs.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Tokens issued from now on live this long; those already issued keep their expiry.
    pub fn set_ttl_secs(&self, secs: u64) {
        self.ttl_secs
            .store(clamp_ttl(secs), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn issue(&self, user_id: i64, generation: i64, nonce: &str) -> Result<Issued, String> {
        let now = unix_now();
        let expires = now.saturating_add(Duration::from_secs(self.ttl_secs()));
        let claims = TokenClaims {
            user_id,
            jti: super::random_hex::<16>(),
            generation,
            nonce: nonce.to_string(),
            expires_at: i64::try_from(expires.as_secs()).map_err(|e| e.to_string())?,
        };
        let token = sign(&self.key(), &claims, now);
        Ok(Issued { token, claims })
    }

    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        decode(&self.key(), token, unix_now())
    }

    fn key(&self) -> std::sync::RwLockReadGuard<'_, Vec<u8>> {
        self.key.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Signs and verifies with `key` from now on: a restored backup brought its router's
    /// key, so tokens that router issued are valid here and those this one issued are not.
    pub fn set_key(&self, key: &[u8]) {
        *self.key.write().unwrap_or_else(|e| e.into_inner()) = key.to_vec();
    }
}

/// The signing key's file in the data directory.
pub const KEY_FILE: &str = "jwt.key";

/// Reads the signing key from `path`, creating a random one (mode 0600) on first start.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(key) if key.len() >= 32 => return Ok(key),
        Ok(_) => return Err(format!("{}: key is shorter than 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let key = super::random_bytes::<32>();
    crate::fsutil::write_private(path, &key)?;
    log::info!("generated a new token signing key in {}", path.display());
    Ok(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];
    /// 2023-11-14T22:13:20Z, the fixtures' issue time.
    const T0: i64 = 1_700_000_000;

    fn at(secs: i64) -> Duration {
        Duration::from_secs(secs as u64)
    }

    fn claims(expires_at: i64) -> TokenClaims {
        TokenClaims {
            user_id: 42,
            jti: "00112233445566778899aabbccddeeff".into(),
            generation: 3,
            nonce: "n1".into(),
            expires_at,
        }
    }

    fn payload(f: impl FnOnce(&mut Payload)) -> Payload {
        let mut p = Payload {
            iat: Some(T0),
            exp: Some(T0 + 3600),
            nbf: Some(T0),
            sub: Some("42".into()),
            jti: Some("x".into()),
            gen: Some(3),
            nce: Some("n1".into()),
        };
        f(&mut p);
        p
    }

    #[test]
    fn issue_verify_round_trip() {
        let svc = TokenService::new(&[7u8; 32], 60);
        let t = svc.issue(42, 3, "n1").expect("issue");
        let c = svc.verify(&t.token).expect("valid");
        assert_eq!(c, t.claims);
        assert_eq!((c.user_id, c.generation, c.nonce.as_str()), (42, 3, "n1"));
        assert_eq!(c.jti.len(), 32);
    }

    #[test]
    fn other_key_or_tampering_is_invalid() {
        let a = TokenService::new(&[1u8; 32], 60);
        let b = TokenService::new(&[2u8; 32], 60);
        let t = a.issue(1, 0, "n").expect("issue").token;
        assert_eq!(b.verify(&t), Err(TokenError::Invalid));
        let mut chars: Vec<char> = t.chars().collect();
        let mid = chars.len() / 2;
        chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(a.verify(&tampered), Err(TokenError::Invalid));
        assert_eq!(a.verify("not.a.jwt"), Err(TokenError::Invalid));
        assert_eq!(a.verify(""), Err(TokenError::Invalid));
    }

    /// Issued by jwt-simple 0.12 (`HS256Key::authenticate`) with KEY at T0 for
    /// `claims(T0 + 3600)`: tokens from before the codec was ours still verify, and ours are
    /// the same bytes.
    const JWT_SIMPLE_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJmIjoxNzAwMDAwMDAwLCJzdWIiOiI0MiIsImp0aSI6IjAwMTEyMjMzNDQ1NTY2Nzc4ODk5YWFiYmNjZGRlZWZmIiwiZ2VuIjozLCJuY2UiOiJuMSJ9.2hs-3aDLZ8kffQETJfjkZD96NXlwNukNy27bqPKB1rg";

    #[test]
    fn same_tokens_as_jwt_simple() {
        assert_eq!(sign(&KEY, &claims(T0 + 3600), at(T0)), JWT_SIMPLE_TOKEN);
        assert_eq!(
            decode(&KEY, JWT_SIMPLE_TOKEN, at(T0 + 10)),
            Ok(claims(T0 + 3600))
        );
    }

    #[test]
    fn a_token_without_a_nonce_is_invalid() {
        // What releases before the nonce issued: {sub, jti, gen, iat, exp} (signed by
        // jwt-simple with KEY at T0, valid for an hour).
        let old = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwibmJmIjoxNzAwMDAwMDAwLCJzdWIiOiIxIiwianRpIjoieCIsImdlbiI6MH0.13y1mcRoCRyzTiukEgOZrZh9PQH1W9Nqm0ocAXLOl04";
        assert_eq!(decode(&KEY, old, at(T0 + 10)), Err(TokenError::Invalid));
        let ours = sign_payload(&KEY, &payload(|p| p.nce = None));
        assert_eq!(decode(&KEY, &ours, at(T0 + 10)), Err(TokenError::Invalid));
    }

    #[test]
    fn expiry_is_exact_and_only_for_genuine_tokens() {
        let t = sign(&KEY, &claims(T0 + 60), at(T0));
        assert!(decode(&KEY, &t, at(T0 + 60)).is_ok());
        let just_after = at(T0 + 60) + Duration::from_nanos(1);
        assert_eq!(decode(&KEY, &t, just_after), Err(TokenError::Expired));
        assert_eq!(
            decode(&[1u8; 32], &t, at(T0 + 61)),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn not_yet_valid_is_invalid() {
        let t = sign(&KEY, &claims(T0 + 60), at(T0));
        assert_eq!(decode(&KEY, &t, at(T0 - 1)), Err(TokenError::Invalid));
        let nbf_later = sign_payload(&KEY, &payload(|p| p.nbf = Some(T0 + 5)));
        assert_eq!(
            decode(&KEY, &nbf_later, at(T0 + 4)),
            Err(TokenError::Invalid)
        );
        assert!(decode(&KEY, &nbf_later, at(T0 + 5)).is_ok());
    }

    #[test]
    fn missing_claims_are_invalid() {
        for strip in [
            |p: &mut Payload| p.sub = None,
            |p: &mut Payload| p.sub = Some("admin".into()),
            |p: &mut Payload| p.jti = None,
            |p: &mut Payload| p.exp = None,
            |p: &mut Payload| p.gen = None,
        ] {
            let t = sign_payload(&KEY, &payload(strip));
            assert_eq!(decode(&KEY, &t, at(T0)), Err(TokenError::Invalid), "{t}");
        }
        // Without iat/nbf (optional in RFC 7519) a token is fine.
        let t = sign_payload(&KEY, &payload(|p| (p.iat, p.nbf) = (None, None)));
        assert!(decode(&KEY, &t, at(T0)).is_ok());
    }

    /// `header.payload` re-signed with KEY under another header.
    fn with_header(header: &str) -> String {
        let payload = JWT_SIMPLE_TOKEN.split('.').nth(1).unwrap_or_default();
        let signed = format!("{}.{payload}", base64url(header.as_bytes()));
        let tag = hmac_sha256::HMAC::mac(signed.as_bytes(), KEY);
        format!("{signed}.{}", base64url(&tag))
    }

    #[test]
    fn only_hs256_jwts_are_accepted() {
        assert!(decode(&KEY, &with_header(r#"{"alg":"HS256"}"#), at(T0)).is_ok());
        assert!(decode(
            &KEY,
            &with_header(r#"{"typ":"at+jwt","alg":"HS256"}"#),
            at(T0)
        )
        .is_ok());
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"hs256","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
            r#"{"alg":"HS256","typ":"JOSE"}"#,
            r#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#,
            "not json",
        ] {
            assert_eq!(
                decode(&KEY, &with_header(header), at(T0)),
                Err(TokenError::Invalid),
                "{header}"
            );
        }
        // `alg: none` with no signature at all.
        let unsigned = format!(
            "{}.{}.",
            base64url(br#"{"alg":"none"}"#),
            JWT_SIMPLE_TOKEN.split('.').nth(1).unwrap_or_default()
        );
        assert_eq!(decode(&KEY, &unsigned, at(T0)), Err(TokenError::Invalid));
    }

    #[test]
    fn malformed_tokens_are_invalid() {
        let long = format!("{JWT_SIMPLE_TOKEN}{}", "A".repeat(MAX_TOKEN_LEN));
        let truncated_tag = &JWT_SIMPLE_TOKEN[..JWT_SIMPLE_TOKEN.len() - 2];
        for t in [
            long.as_str(),
            &format!("{JWT_SIMPLE_TOKEN}.x"),
            truncated_tag,
            "a.b",
            "..",
            "a.b.c",
            "€.€.€",
        ] {
            assert_eq!(decode(&KEY, t, at(T0)), Err(TokenError::Invalid), "{t}");
        }
    }

    #[test]
    fn expired_is_told_apart() {
        let svc = TokenService::new(&[7u8; 32], 1);
        let t = svc.issue(1, 0, "n").expect("issue").token;
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(svc.verify(&t), Err(TokenError::Expired));
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("jwt.key");
        let k1 = load_or_create_key(&p).expect("create");
        let k2 = load_or_create_key(&p).expect("read");
        assert_eq!(k1, k2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
