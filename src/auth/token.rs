//! Access tokens: HS256 JWTs signed with a per-install random key kept in the data dir
//! (`jwt.key`, mode 0600). Claims: `sub` (user id), `jti` (random id, for revocation),
//! `gen` (the user's token generation: bumping it voids every token of that user), `nce`
//! (the user row's random `token_nonce`: a token never authenticates another row, even one
//! that got the same id), `iat`, `exp`. The role is *not* trusted from the token; it is read from the database on every
//! request so demotions take effect at once.

use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Custom {
    #[serde(rename = "gen")]
    generation: i64,
    /// Required: tokens from before it existed are invalid (their owners log in again).
    #[serde(rename = "nce")]
    nonce: String,
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

pub struct TokenService {
    key: HS256Key,
    /// Lifetime of newly issued tokens; changeable live (`/system/config` `session_timeout`).
    /// 32 bits: MIPS32 has no 64-bit atomics, and the bound (366 days) fits.
    ttl_secs: std::sync::atomic::AtomicU32,
    /// Revocations the database could not take yet (a full disk): refused all the same.
    pub unsaved: super::revocation::Unsaved,
}

fn clamp_ttl(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

pub struct Issued {
    pub token: String,
    pub claims: TokenClaims,
}

impl TokenService {
    pub fn new(key: &[u8], ttl_secs: u64) -> TokenService {
        TokenService {
            key: HS256Key::from_bytes(key),
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
        let jti = super::random_hex::<16>();
        let custom = Custom {
            generation,
            nonce: nonce.to_string(),
        };
        let claims = Claims::with_custom_claims(custom, Duration::from_secs(self.ttl_secs()))
            .with_subject(user_id)
            .with_jwt_id(&jti);
        let expires_at = claims.expires_at.map(|t| t.as_secs() as i64).unwrap_or(0);
        let token = self.key.authenticate(claims).map_err(|e| e.to_string())?;
        Ok(Issued {
            token,
            claims: TokenClaims {
                user_id,
                jti,
                generation,
                nonce: nonce.to_string(),
                expires_at,
            },
        })
    }

    pub fn verify(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let opts = VerificationOptions {
            // Expiry is exact: the contract's TOKEN_EXPIRED must mean what it says.
            time_tolerance: Some(Duration::from_secs(0)),
            max_token_length: Some(2048),
            ..Default::default()
        };
        let claims = self
            .key
            .verify_token::<Custom>(token, Some(opts))
            .map_err(|e| match e.downcast_ref::<JWTError>() {
                Some(JWTError::TokenHasExpired) => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let user_id = claims
            .subject
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or(TokenError::Invalid)?;
        Ok(TokenClaims {
            user_id,
            jti: claims.jwt_id.ok_or(TokenError::Invalid)?,
            generation: claims.custom.generation,
            nonce: claims.custom.nonce,
            expires_at: claims
                .expires_at
                .map(|t| t.as_secs() as i64)
                .ok_or(TokenError::Invalid)?,
        })
    }
}

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

    #[test]
    fn a_token_without_a_nonce_is_invalid() {
        // What releases before the nonce issued: {sub, jti, gen, iat, exp}.
        #[derive(Serialize, Deserialize)]
        struct Old {
            #[serde(rename = "gen")]
            generation: i64,
        }
        let key = HS256Key::from_bytes(&[7u8; 32]);
        let claims = Claims::with_custom_claims(Old { generation: 0 }, Duration::from_secs(60))
            .with_subject(1)
            .with_jwt_id("x");
        let old = key.authenticate(claims).expect("sign");
        let svc = TokenService::new(&[7u8; 32], 60);
        assert_eq!(svc.verify(&old), Err(TokenError::Invalid));
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
