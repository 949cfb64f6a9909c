//! Interop of `backup::crypt` with the reference `age` CLI (Debian package `age`, installed
//! by .ci/run): what we encrypt `age -d` decrypts, and what `age -p` encrypts we decrypt.
//!
//! age runs on a pty (`common::age`); skips with a reason when `age` or `script` is missing
//! locally; under CI (`CI` set) a missing tool fails instead.

mod common;

use common::age::{age_on_pty, tools_present};
use ipv6wgm::backup::crypt::{self, CryptError};

const PASS: &str = "interop passphrase 14";

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

#[test]
fn age_decrypts_what_we_encrypt() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Empty, one full chunk exactly, and several chunks with a short last one.
    for len in [0, 64 * 1024, 200_001] {
        let plain = data(len);
        let (enc, out) = (
            dir.path().join(format!("{len}.age")),
            dir.path().join(format!("{len}.out")),
        );
        let mut file = Vec::new();
        crypt::encrypt(&plain[..], &mut file, PASS).unwrap();
        std::fs::write(&enc, &file).unwrap();
        let run = age_on_pty(&[&enc], &["-d", "-o", &out.to_string_lossy()], &[PASS]);
        assert!(
            run.status.success(),
            "age -d failed for {len} bytes: {run:?}"
        );
        // age opens `-o` on its first write: an empty plaintext leaves no file.
        let got = match std::fs::read(&out) {
            Err(e) if len == 0 && e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            r => r.unwrap(),
        };
        assert_eq!(got, plain, "{len} bytes");
    }
    // And age refuses it with another passphrase: the file key is really bound to ours.
    let (enc, out) = (dir.path().join("0.age"), dir.path().join("wrong.out"));
    let run = age_on_pty(&[&enc], &["-d", "-o", &out.to_string_lossy()], &["not it"]);
    assert!(!run.status.success(), "age -d accepted a wrong passphrase");
}

#[test]
fn we_decrypt_what_age_encrypts() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = data(150_000);
    let (input, enc) = (dir.path().join("plain"), dir.path().join("plain.age"));
    std::fs::write(&input, &plain).unwrap();
    // age -p asks twice (passphrase, confirmation) and writes its default work factor.
    let run = age_on_pty(
        &[&input],
        &["-p", "-o", &enc.to_string_lossy()],
        &[PASS, PASS],
    );
    assert!(run.status.success(), "age -p failed: {run:?}");
    let file = std::fs::read(&enc).unwrap();
    assert!(crypt::is_encrypted(&file));

    let mut out = Vec::new();
    crypt::decrypt(&file[..], &mut out, PASS).unwrap();
    assert_eq!(out, plain);

    let r = crypt::decrypt(&file[..], &mut Vec::new(), "not it");
    assert!(matches!(r, Err(CryptError::WrongPassphrase)), "{r:?}");
    // A router with a lower cap refuses age's default work factor without running scrypt.
    let r = crypt::decrypt_with_cap(&file[..], &mut Vec::new(), PASS, crypt::WORK_FACTOR);
    assert!(
        matches!(r, Err(CryptError::Invalid(ref w)) if w.contains("above")),
        "{r:?}"
    );
}
