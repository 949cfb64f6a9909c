//! WireGuard keys: X25519 private and public keys and optional preshared keys, 32 bytes each,
//! written in standard base64 (44 characters) exactly as `wg genkey` / `wg pubkey` /
//! `wg genpsk` print them. Keys are generated on the device from the OS CSPRNG.

use boringtun::x25519;
use ct_codecs::{Base64, Decoder, Encoder};
use std::fmt;

pub const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not base64, or not 32 bytes once decoded.
    Malformed,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a WireGuard key is 32 bytes in base64 (44 characters ending in '=')")
    }
}

impl std::error::Error for KeyError {}

fn decode(s: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let s = s.trim();
    if s.len() != 44 {
        return Err(KeyError::Malformed);
    }
    let bytes = Base64::decode_to_vec(s, None).map_err(|_| KeyError::Malformed)?;
    bytes.try_into().map_err(|_| KeyError::Malformed)
}

fn encode(b: &[u8; KEY_LEN]) -> String {
    Base64::encode_to_string(b).unwrap_or_default()
}

/// Lower-case hex, the key encoding of the UAPI protocol.
pub fn to_hex(b: &[u8; KEY_LEN]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn from_hex(s: &str) -> Result<[u8; KEY_LEN], KeyError> {
    if s.len() != 2 * KEY_LEN || !s.is_ascii() {
        return Err(KeyError::Malformed);
    }
    let mut out = [0u8; KEY_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| KeyError::Malformed)?;
    }
    Ok(out)
}

/// A private key. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; KEY_LEN]);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

/// An optional symmetric key mixed into the handshake (post-quantum hedge).
#[derive(Clone, PartialEq, Eq)]
pub struct PresharedKey([u8; KEY_LEN]);

impl PrivateKey {
    /// A fresh key, clamped as X25519 requires (what `wg genkey` does).
    pub fn generate() -> PrivateKey {
        let mut b = crate::auth::random_bytes::<KEY_LEN>();
        b[0] &= 248;
        b[31] &= 127;
        b[31] |= 64;
        PrivateKey(b)
    }

    pub fn from_base64(s: &str) -> Result<PrivateKey, KeyError> {
        decode(s).map(PrivateKey)
    }

    pub fn to_base64(&self) -> String {
        encode(&self.0)
    }

    pub fn public_key(&self) -> PublicKey {
        let secret = x25519::StaticSecret::from(self.0);
        PublicKey(x25519::PublicKey::from(&secret).to_bytes())
    }

    pub fn from_bytes(b: [u8; KEY_LEN]) -> PrivateKey {
        PrivateKey(b)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// For the noise layer.
    pub fn to_static_secret(&self) -> x25519::StaticSecret {
        x25519::StaticSecret::from(self.0)
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        // Best effort: do not leave key bytes in freed memory.
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(…)")
    }
}

impl PublicKey {
    pub fn from_base64(s: &str) -> Result<PublicKey, KeyError> {
        decode(s).map(PublicKey)
    }

    pub fn to_base64(&self) -> String {
        encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn from_bytes(b: [u8; KEY_LEN]) -> PublicKey {
        PublicKey(b)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn to_x25519(&self) -> x25519::PublicKey {
        x25519::PublicKey::from(self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl PresharedKey {
    pub fn generate() -> PresharedKey {
        PresharedKey(crate::auth::random_bytes::<KEY_LEN>())
    }

    pub fn from_base64(s: &str) -> Result<PresharedKey, KeyError> {
        decode(s).map(PresharedKey)
    }

    pub fn to_base64(&self) -> String {
        encode(&self.0)
    }

    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    pub fn from_bytes(b: [u8; KEY_LEN]) -> PresharedKey {
        PresharedKey(b)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl Drop for PresharedKey {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        v.try_into().expect("32 bytes")
    }

    #[test]
    fn rfc7748_public_key() {
        // RFC 7748 §6.1, Alice.
        let private = PrivateKey(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            private.public_key().as_bytes(),
            &hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
    }

    #[test]
    fn base64_round_trip_and_wg_format() {
        let k = PrivateKey::generate();
        let text = k.to_base64();
        assert_eq!(text.len(), 44);
        assert!(text.ends_with('='));
        assert_eq!(PrivateKey::from_base64(&text).expect("parse"), k);
        let p = k.public_key();
        assert_eq!(PublicKey::from_base64(&p.to_base64()).expect("parse"), p);
        assert_eq!(
            PublicKey::from_base64(" hFIOnmk0BOeKmP7bR7DYq3Lq/MVWsAgVdVP8FpYzDGo= \n")
                .expect("whitespace is trimmed")
                .to_base64(),
            "hFIOnmk0BOeKmP7bR7DYq3Lq/MVWsAgVdVP8FpYzDGo="
        );
    }

    #[test]
    fn generated_keys_are_clamped_and_distinct() {
        let a = PrivateKey::generate();
        assert_eq!(a.0[0] & 7, 0);
        assert_eq!(a.0[31] & 0xc0, 0x40);
        assert_ne!(a, PrivateKey::generate());
        assert_ne!(
            PresharedKey::generate().to_base64(),
            PresharedKey::generate().to_base64()
        );
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in [
            "",
            "abc",
            "hFIOnmk0BOeKmP7bR7DYq3Lq/MVWsAgVdVP8FpYzDG==",
            "hFIOnmk0BOeKmP7bR7DYq3Lq/MVWsAgVdVP8FpYzDGo",
            "!FIOnmk0BOeKmP7bR7DYq3Lq/MVWsAgVdVP8FpYzDGo=",
            "hFIOnmk0BOeKmP7bR7DYq3Lq/MVWsAgVdVP8FpYzDGoAAAA=",
        ] {
            assert_eq!(
                PublicKey::from_base64(bad),
                Err(KeyError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hex_round_trip() {
        let k = PrivateKey::generate().public_key();
        assert_eq!(from_hex(&k.to_hex()), Ok(*k.as_bytes()));
        assert_eq!(from_hex("zz"), Err(KeyError::Malformed));
        assert_eq!(from_hex(&"g".repeat(64)), Err(KeyError::Malformed));
        assert_eq!(from_hex(&"é".repeat(32)), Err(KeyError::Malformed));
    }

    #[test]
    fn debug_hides_secrets() {
        let k = PrivateKey::generate();
        assert!(!format!("{k:?}").contains(&k.to_base64()));
        let p = PresharedKey::generate();
        assert!(!format!("{p:?}").contains(&p.to_base64()));
    }
}
