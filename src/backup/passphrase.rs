//! The passphrase of an encrypted backup. It comes from a request (the `passphrase` field of
//! `POST /backup/backups/create`'s JSON body — never a query parameter: URLs end up in access
//! logs, proxy logs and shell history) or from the file `backup.passphrase_file` names. It is
//! never stored, logged or echoed: [`Passphrase`] has no `Display`, its `Debug` shows no
//! content, and its bytes are zeroed when it is dropped (copies the HTTP layer made of the
//! request body are not: that would cost a custom body type).
//!
//! Rules ([`Passphrase::new`]): at least [`MIN_CHARS`] characters, at most [`MAX_BYTES`]
//! bytes, no control characters — `age -d` reads the passphrase at a terminal, where a tab,
//! newline or NUL cannot be typed, so such a passphrase would lock a backup away from the one
//! tool that opens it on a desktop.

use std::path::Path;
use zeroize::Zeroizing;

/// The fewest characters a passphrase may have.
pub const MIN_CHARS: usize = 8;
/// The most bytes a passphrase may have (scrypt takes any length; this bounds the input).
pub const MAX_BYTES: usize = 1024;

/// A passphrase that passed the rules. Cloning copies it (each copy is zeroed on drop).
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

impl Passphrase {
    /// Checks `text` against the rules; the error says which, never the passphrase.
    pub fn new(text: String) -> Result<Passphrase, String> {
        let text = Zeroizing::new(text);
        if text.chars().count() < MIN_CHARS {
            return Err(format!(
                "passphrase must be at least {MIN_CHARS} characters"
            ));
        }
        if text.len() > MAX_BYTES {
            return Err(format!("passphrase must be at most {MAX_BYTES} bytes"));
        }
        if text.chars().any(char::is_control) {
            return Err(
                "passphrase must not contain control characters (age -d could not read it)".into(),
            );
        }
        Ok(Passphrase(text))
    }

    /// The passphrase in `path`: its whole content but one final line end (`\n` or `\r\n`),
    /// checked by [`Passphrase::new`]. Errors name the file, never its content.
    pub fn from_file(path: &Path) -> Result<Passphrase, String> {
        let raw =
            Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
        let text = std::str::from_utf8(&raw)
            .map_err(|_| format!("{}: the passphrase is not UTF-8", path.display()))?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(text);
        Passphrase::new(text.to_string()).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The text, for the encryption only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_length_bytes_and_control_characters() {
        for ok in [
            "12345678",
            "correct horse",
            "ünïcødé!",
            &"x".repeat(MAX_BYTES),
        ] {
            assert!(Passphrase::new(ok.to_string()).is_ok(), "{ok:?}");
        }
        // Eight characters even when more bytes, and seven when fewer.
        assert!(Passphrase::new("ääääääää".into()).is_ok());
        for (bad, why) in [
            ("", "at least 8"),
            ("1234567", "at least 8"),
            ("äääääää", "at least 8"),
            ("line one\nline two", "control"),
            ("tab\tseparated", "control"),
            ("nul\0byte-here", "control"),
        ] {
            let e = Passphrase::new(bad.to_string()).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(bad.is_empty() || !e.contains(bad), "echoed: {e}");
        }
        let long = "x".repeat(MAX_BYTES + 1);
        assert!(Passphrase::new(long)
            .unwrap_err()
            .contains(&format!("{MAX_BYTES} bytes")));
    }

    #[test]
    fn debug_shows_no_content() {
        let p = Passphrase::new("secret passphrase".into()).unwrap();
        assert_eq!(format!("{p:?}"), "Passphrase(..)");
        assert_eq!(format!("{:?}", Some(p.clone())), "Some(Passphrase(..))");
        assert_eq!(p.expose(), "secret passphrase");
    }

    #[test]
    fn a_file_loses_one_line_end_only() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pass");
        for (content, expect) in [
            ("from a file\n", "from a file"),
            ("from a file\r\n", "from a file"),
            ("from a file", "from a file"),
            (" spaced out  \n", " spaced out  "),
        ] {
            std::fs::write(&f, content).unwrap();
            assert_eq!(Passphrase::from_file(&f).unwrap().expose(), expect);
        }
        std::fs::write(&f, "two\nlines\n").unwrap();
        assert!(Passphrase::from_file(&f).unwrap_err().contains("control"));
        std::fs::write(&f, "short\n").unwrap();
        let e = Passphrase::from_file(&f).unwrap_err();
        assert!(
            e.contains("at least") && e.contains("pass") && !e.contains("short"),
            "{e}"
        );
        std::fs::write(&f, [0xff, 0xfe, b'a', b'b', b'c', b'd', b'e', b'f', b'g']).unwrap();
        assert!(Passphrase::from_file(&f).unwrap_err().contains("UTF-8"));
        assert!(Passphrase::from_file(&d.path().join("missing")).is_err());
    }
}
