//! Password hashing: PBKDF2-HMAC-SHA256 (RFC 8018), salted, stored self-describing as
//! `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>` (unpadded base64), so the cost can be raised
//! later without invalidating stored hashes.
//!
//! Why PBKDF2 and not Argon2/scrypt: a memory-hard hash wants megabytes per login, which a
//! 64 MiB router cannot spare under a burst of attempts, and SHA-256 is already in the binary
//! (the access tokens' HMAC), so this costs no extra flash. The iteration count is chosen for
//! a ~500 MHz MIPS 24Kc: see BENCHMARKS.md for the measured x86 time and the router
//! estimate. Hashing is CPU-bound: callers run it on the blocking pool, never on an async worker.

use ct_codecs::{Base64NoPadding, Decoder, Encoder};
use hmac_sha256::Hash;

/// Iterations for new hashes.
pub const ITERATIONS: u32 = 40_000;
/// Hashes claiming more are refused rather than letting a tampered row stall a login.
const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_LEN: usize = 16;

/// HMAC-SHA256 keyed once: the inner and outer pads are absorbed up front, so each PBKDF2
/// iteration costs two compression-function calls instead of four.
#[derive(Clone, Copy)]
struct Prf {
    inner: Hash,
    outer: Hash,
}

impl Prf {
    fn new(key: &[u8]) -> Prf {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Hash::hash(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut h = Hash::new();
            h.update(k.map(|b| b ^ byte));
            h
        };
        Prf {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut inner = self.inner;
        for p in parts {
            inner.update(p);
        }
        let mut outer = self.outer;
        outer.update(inner.finalize());
        outer.finalize()
    }
}

/// PBKDF2-HMAC-SHA256 with a 32-byte output (one block).
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let prf = Prf::new(password);
    let mut u = prf.mac(&[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = prf.mac(&[&u]);
        for (o, b) in out.iter_mut().zip(u) {
            *o ^= b;
        }
    }
    out
}

pub fn hash(password: &str) -> String {
    hash_with(password, &super::random_bytes::<SALT_LEN>(), ITERATIONS)
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let dk = pbkdf2_sha256(password.as_bytes(), salt, iterations);
    format!("$pbkdf2-sha256$i={iterations}${}${}", b64(salt), b64(&dk))
}

/// Constant-time check of `password` against a stored hash. A malformed stored hash never
/// matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let Some((iterations, salt, expected)) = parse(stored) else {
        return false;
    };
    let dk = pbkdf2_sha256(password.as_bytes(), &salt, iterations);
    ct_codecs::verify(&dk, &expected)
}

/// Burn the same time as a real check, for unknown usernames (no timing oracle).
pub fn verify_dummy(password: &str) {
    let _ = pbkdf2_sha256(password.as_bytes(), &[0u8; SALT_LEN], ITERATIONS);
}

fn parse(stored: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.strip_prefix("$pbkdf2-sha256$i=")?.split('$');
    let iterations: u32 = parts.next()?.parse().ok()?;
    let salt = unb64(parts.next()?)?;
    let dk = unb64(parts.next()?)?;
    if parts.next().is_some() || !(1..=MAX_ITERATIONS).contains(&iterations) || dk.len() != 32 {
        return None;
    }
    Some((iterations, salt, dk))
}

fn b64(bytes: &[u8]) -> String {
    Base64NoPadding::encode_to_string(bytes).unwrap_or_default()
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    Base64NoPadding::decode_to_vec(s, None).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn pbkdf2_known_answers() {
        // Widely published PBKDF2-HMAC-SHA256 vectors (same inputs as RFC 6070's SHA-1 ones).
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 1)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 2)),
            "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        // A key longer than the SHA-256 block is hashed first.
        let long = [b'k'; 100];
        assert_eq!(
            pbkdf2_sha256(&long, b"s", 3),
            pbkdf2_sha256(&Hash::hash(&long), b"s", 3)
        );
    }

    #[test]
    fn hash_then_verify() {
        let h = hash_with("correct horse", b"0123456789abcdef", 10);
        assert!(h.starts_with("$pbkdf2-sha256$i=10$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsE", &h));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash("same"), hash("same"));
    }

    #[test]
    fn malformed_hashes_never_match() {
        for bad in [
            "",
            "plain",
            "$pbkdf2-sha256$i=0$AAAA$AAAA",
            "$pbkdf2-sha256$i=99999999999$AAAA$AAAA",
            "$pbkdf2-sha256$i=10$!!$AAAA",
            "$pbkdf2-sha256$i=10$AAAA$AAAA",
            "$pbkdf2-sha256$i=10$AAAA$AAAA$extra",
        ] {
            assert!(!verify("x", bad), "{bad}");
        }
    }
}
