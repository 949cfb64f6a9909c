//! Passphrase encryption of backup archives in the age v1 format (age-encryption.org/v1) with
//! exactly one scrypt recipient, streamed: an archive is never whole in memory (one 64 KiB
//! chunk buffer and an 8 KiB read buffer), and `age -d` / `age -p` on a desktop read and
//! write the same files (`tests/backup_age.rs`). Armored (PEM) age files are not read.
//!
//! ```text
//! age-encryption.org/v1\n
//! -> scrypt <salt: 16 B, base64> <log2 N>\n      the only stanza (age requires it for scrypt)
//! <ChaCha20-Poly1305(scrypt key, zero nonce, file key): 32 B, base64>\n
//! --- <HMAC-SHA-256(HKDF(file key, "header"), everything up to "---"), base64>\n
//! <nonce: 16 B><chunk 0>…<last chunk>                payload, binary
//! ```
//! The payload key is HKDF-SHA-256(salt = nonce, ikm = file key, info = "payload"); each
//! chunk is 64 KiB of plaintext (the last may be shorter, and is empty only when the whole
//! payload is) sealed with ChaCha20-Poly1305 under the nonce `counter (11 B, big endian) ||
//! last flag (1 B)`. The flag makes a cut at a chunk boundary detectable.
//!
//! Decrypting authenticates every chunk before writing it and fails on a cut, an altered
//! byte or trailing data; the caller still decrypts into a temporary file and reads that
//! only after success, because chunks before the damaged one have been written by then.
//!
//! Errors: a file key that does not unwrap is [`CryptError::WrongPassphrase`] (scrypt's
//! AEAD cannot tell a wrong passphrase from an altered salt or body); a file key that
//! unwraps but a header MAC that does not match is an altered header, [`CryptError::Invalid`].
//!
//! ## Work factor
//! scrypt with r = 8 needs 2^logN KiB of memory, all of it touched, for one passphrase
//! check. Measured on the development machine (x86-64, 2 shared cores, under load;
//! `tests::timing`): log2 N 14 / 15 / 16 / 18 take 0.07 / 0.15–0.18 / 0.3 / 1.2–1.4 s.
//! [`WORK_FACTOR`] = 15 is 32 MiB and, estimated at 20–40× slower on a 600 MHz MIPS
//! (scalar 32-bit Salsa20/8, DDR2 bandwidth, in-order core), 3–6 s there: acceptable once
//! per backup or restore. 16 (64 MiB) cannot run on a 64 MiB router beside the service,
//! and age's own default, 18 (256 MiB, 20–50 s), on none of the small ones. Against a
//! stolen backup 2^15 is 8× cheaper to attack than age's default, so the passphrase should
//! be long (a random one from a password manager loses nothing to this).
//!
//! Payload throughput there (64 MiB in memory, same test): encrypt ~380 MiB/s, decrypt
//! ~520 MiB/s, so a backup's cost is scrypt, not its size.
//!
//! Decrypting accepts up to [`MAX_WORK_FACTOR`] = 18 — what `age -p` writes (rage tunes to
//! ~1 s, 17–18 on a desktop) —
//! so a file encrypted on a desktop restores on a host with the memory for it (256 MiB);
//! anything above is refused before any memory is allocated, so a hostile header cannot
//! make us allocate GiBs. [`decrypt_with_cap`] takes a lower cap for a small router.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use ct_codecs::{Base64NoPadding, Decoder, Encoder};
use hmac_sha256::{HKDF, HMAC};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

/// The first line of every age v1 file.
pub const MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// log2 N of the scrypt stanzas we write (see the module doc for why 15).
pub const WORK_FACTOR: u8 = 15;
/// The largest log2 N [`decrypt`] accepts: age's default, 256 MiB.
pub const MAX_WORK_FACTOR: u8 = 18;

const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const FILE_KEY_LEN: usize = 16;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 16;
const SCRYPT_LABEL: &[u8] = b"age-encryption.org/v1/scrypt";
/// Base64 columns of a stanza body line; a shorter line ends the body.
const BODY_COLUMNS: usize = 64;
/// A header with one scrypt stanza is ~150 bytes; this bounds what a hostile one makes us read.
const MAX_HEADER: usize = 4096;

/// Why a file could not be encrypted or decrypted.
#[derive(Debug)]
pub enum CryptError {
    /// The passphrase does not unwrap the file key.
    WrongPassphrase,
    /// Not an age file we accept, or altered or truncated (says what, never secrets).
    Invalid(String),
    /// Reading the input or writing the output failed.
    Io(io::Error),
}

impl fmt::Display for CryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptError::WrongPassphrase => f.write_str("wrong passphrase"),
            CryptError::Invalid(why) => write!(f, "invalid encrypted backup: {why}"),
            CryptError::Io(e) => write!(f, "encrypted backup I/O: {e}"),
        }
    }
}

impl std::error::Error for CryptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CryptError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for CryptError {
    fn from(e: io::Error) -> Self {
        CryptError::Io(e)
    }
}

fn invalid(why: impl Into<String>) -> CryptError {
    CryptError::Invalid(why.into())
}

/// Whether a file starts like an age v1 file (binary, not armored).
pub fn is_encrypted(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(MAGIC)
}

/// Encrypts `input` to `out` for `passphrase` with [`WORK_FACTOR`].
pub fn encrypt(input: impl Read, out: impl Write, passphrase: &str) -> Result<(), CryptError> {
    encrypt_with_work_factor(input, out, passphrase, WORK_FACTOR)
}

/// Encrypts with a chosen log2 N (1..=[`MAX_WORK_FACTOR`]); tests use small ones for speed.
pub fn encrypt_with_work_factor(
    mut input: impl Read,
    out: impl Write,
    passphrase: &str,
    log_n: u8,
) -> Result<(), CryptError> {
    let mut sealing = Encryptor::with_work_factor(out, passphrase, log_n)?;
    io::copy(&mut input, &mut sealing)?;
    sealing.finish()?;
    Ok(())
}

/// The writing side of [`encrypt`], for a producer that writes (the archive writer) rather
/// than one to read from: what is written is sealed in 64 KiB chunks to `out`, one chunk
/// buffered. [`Encryptor::finish`] seals the last chunk; a stream dropped without it is a
/// file that decrypts to an error ("without a last chunk"), never to a shorter plaintext.
pub struct Encryptor<W: Write> {
    out: W,
    cipher: ChaCha20Poly1305,
    /// Plaintext of the chunk being filled; it is sealed when full and more arrives (only
    /// then is it known not to be the last).
    chunk: Vec<u8>,
    counter: u64,
}

impl<W: Write> Encryptor<W> {
    /// Writes the header for `passphrase` with [`WORK_FACTOR`] (scrypt runs here).
    pub fn new(out: W, passphrase: &str) -> Result<Encryptor<W>, CryptError> {
        Encryptor::with_work_factor(out, passphrase, WORK_FACTOR)
    }

    /// [`Encryptor::new`] with a chosen log2 N (1..=[`MAX_WORK_FACTOR`]).
    pub fn with_work_factor(
        mut out: W,
        passphrase: &str,
        log_n: u8,
    ) -> Result<Encryptor<W>, CryptError> {
        if log_n == 0 || log_n > MAX_WORK_FACTOR {
            return Err(invalid(format!(
                "work factor {log_n} is outside 1..={MAX_WORK_FACTOR}"
            )));
        }
        let mut file_key = [0u8; FILE_KEY_LEN];
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        for buf in [&mut file_key[..], &mut salt[..], &mut nonce[..]] {
            getrandom::getrandom(buf).map_err(|e| io::Error::other(format!("random: {e}")))?;
        }
        out.write_all(&emit_header(&file_key, &salt, log_n, passphrase)?)?;
        out.write_all(&nonce)?;
        Ok(Encryptor {
            out,
            cipher: payload_cipher(&file_key, &nonce),
            chunk: Vec::with_capacity(CHUNK),
            counter: 0,
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let tag = self
            .cipher
            .encrypt_in_place_detached(&chunk_nonce(self.counter, last), b"", &mut self.chunk)
            .map_err(|_| io::Error::other("chunk encryption failed"))?;
        self.out.write_all(&self.chunk)?;
        self.out.write_all(&tag)?;
        self.chunk.clear();
        self.counter += 1;
        Ok(())
    }

    /// Seals the last chunk (empty only when nothing was written), flushes, and returns `out`.
    pub fn finish(mut self) -> Result<W, CryptError> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.chunk.len() == CHUNK {
            self.seal(false)?;
        }
        let n = data.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Flushes `out` only: a partial chunk stays buffered until it is full or finished.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Decrypts `input` to `out` with `passphrase`, accepting work factors up to [`MAX_WORK_FACTOR`].
pub fn decrypt(input: impl Read, out: impl Write, passphrase: &str) -> Result<(), CryptError> {
    decrypt_with_cap(input, out, passphrase, MAX_WORK_FACTOR)
}

/// Decrypts, refusing a stanza whose log2 N is above `max_log_n` (a router sets it from its
/// memory: 2^log2 N KiB) or above [`MAX_WORK_FACTOR`].
pub fn decrypt_with_cap(
    input: impl Read,
    mut out: impl Write,
    passphrase: &str,
    max_log_n: u8,
) -> Result<(), CryptError> {
    let mut input = BufReader::new(input);
    let raw = read_header(&mut input)?;
    let header = parse_header(&raw)?;
    let file_key = header.unwrap_file_key(passphrase, max_log_n.min(MAX_WORK_FACTOR))?;
    let mac_key = hkdf(&[], &file_key, b"header");
    if !HMAC::verify(header.mac_input, mac_key, &header.mac) {
        return Err(invalid("header MAC mismatch: the header was altered"));
    }
    let mut nonce = [0u8; NONCE_LEN];
    if read_full(&mut input, &mut nonce)? < NONCE_LEN {
        return Err(invalid("truncated: the payload nonce is missing"));
    }
    open_payload(&payload_cipher(&file_key, &nonce), input, &mut out)?;
    out.flush()?;
    Ok(())
}

/// What can be checked of an encrypted file without its passphrase: a header we would try
/// to decrypt (the version line, exactly one well-formed scrypt stanza with a work factor
/// up to [`MAX_WORK_FACTOR`], a MAC line), the payload nonce and at least one chunk's tag
/// after it. Runs no scrypt, and cannot check the header's MAC or any chunk (only the
/// passphrase can): an upload is accepted on this, and a restore decrypts. Returns the
/// work factor (log2 N: decrypting needs 2^log2 N KiB of memory).
pub fn check_header(input: impl Read) -> Result<u8, CryptError> {
    let mut input = BufReader::new(input);
    let raw = read_header(&mut input)?;
    let (_, log_n, _) = parse_header(&raw)?.scrypt_stanza(MAX_WORK_FACTOR)?;
    let mut first = [0u8; NONCE_LEN + TAG];
    if read_full(&mut input, &mut first)? < first.len() {
        return Err(invalid("truncated: no payload after the header"));
    }
    Ok(log_n)
}

// ---- header (pure) ----

/// A parsed header: its stanzas, the MAC, and the bytes the MAC covers (borrowed from the input).
#[derive(Debug)]
struct Header<'a> {
    stanzas: Vec<Stanza>,
    mac: [u8; 32],
    mac_input: &'a [u8],
}

#[derive(Debug, PartialEq)]
struct Stanza {
    args: Vec<String>,
    body: Vec<u8>,
}

fn emit_header(
    file_key: &[u8; FILE_KEY_LEN],
    salt: &[u8; SALT_LEN],
    log_n: u8,
    passphrase: &str,
) -> Result<Vec<u8>, CryptError> {
    let mut body = file_key.to_vec();
    let tag = wrap_cipher(passphrase, salt, log_n)?
        .encrypt_in_place_detached(&Nonce::default(), b"", &mut body)
        .map_err(|_| invalid("file key wrap failed"))?;
    body.extend_from_slice(&tag);
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(format!("-> scrypt {} {log_n}\n", b64(salt)).as_bytes());
    // 32 bytes are 43 base64 columns: one body line, shorter than 64, so it ends the body.
    h.extend_from_slice(format!("{}\n---", b64(&body)).as_bytes());
    let mac = HMAC::mac(&h, hkdf(&[], file_key, b"header"));
    h.extend_from_slice(format!(" {}\n", b64(&mac)).as_bytes());
    Ok(h)
}

/// Parses a header read by [`read_header`]: the version line, stanzas, and the MAC line.
fn parse_header(raw: &[u8]) -> Result<Header<'_>, CryptError> {
    let rest = raw
        .strip_prefix(MAGIC)
        .ok_or_else(|| invalid("not an age v1 file (armored files are not supported)"))?;
    let mut lines = rest.split_inclusive(|&b| b == b'\n').peekable();
    let mut stanzas = Vec::new();
    let mut offset = MAGIC.len();
    while let Some(line) = lines.next() {
        let text = line
            .strip_suffix(b"\n")
            .ok_or_else(|| invalid("header line without newline"))?;
        if let Some(mac) = text.strip_prefix(b"--- ") {
            if lines.peek().is_some() {
                return Err(invalid("data after the header MAC line"));
            }
            let mac = decode_b64(mac)?
                .try_into()
                .map_err(|_| invalid("header MAC is not 32 bytes"))?;
            let mac_input = &raw[..offset + 3];
            return Ok(Header {
                stanzas,
                mac,
                mac_input,
            });
        }
        offset += line.len();
        let args = parse_stanza_line(text)?;
        let mut body = Vec::new();
        loop {
            let l = lines
                .next()
                .ok_or_else(|| invalid("truncated stanza body"))?;
            offset += l.len();
            let l = l
                .strip_suffix(b"\n")
                .ok_or_else(|| invalid("truncated stanza body"))?;
            if l.len() > BODY_COLUMNS {
                return Err(invalid("stanza body line longer than 64 columns"));
            }
            body.extend_from_slice(l);
            if l.len() < BODY_COLUMNS {
                break;
            }
        }
        stanzas.push(Stanza {
            args,
            body: decode_b64(&body)?,
        });
    }
    Err(invalid("truncated header: no MAC line"))
}

/// `-> type arg…`: at least a type, every argument non-empty printable ASCII.
fn parse_stanza_line(text: &[u8]) -> Result<Vec<String>, CryptError> {
    let rest = text
        .strip_prefix(b"-> ")
        .ok_or_else(|| invalid("malformed header line"))?;
    rest.split(|&b| b == b' ')
        .map(|arg| {
            if arg.is_empty() || !arg.iter().all(|b| (0x21..=0x7e).contains(b)) {
                return Err(invalid("malformed stanza argument"));
            }
            Ok(String::from_utf8_lossy(arg).into_owned())
        })
        .collect()
}

impl Header<'_> {
    /// The file key from the one scrypt stanza; refuses anything else before running scrypt.
    fn unwrap_file_key(
        &self,
        passphrase: &str,
        max_log_n: u8,
    ) -> Result<[u8; FILE_KEY_LEN], CryptError> {
        let (salt, log_n, body) = self.scrypt_stanza(max_log_n)?;
        let (key, tag) = body.split_at(FILE_KEY_LEN);
        let mut file_key = [0u8; FILE_KEY_LEN];
        file_key.copy_from_slice(key);
        wrap_cipher(passphrase, &salt, log_n)?
            .decrypt_in_place_detached(&Nonce::default(), b"", &mut file_key, &tag_of(tag)?)
            .map_err(|_| CryptError::WrongPassphrase)?;
        Ok(file_key)
    }

    /// The salt, work factor and wrapped key of the only stanza, which must be scrypt with
    /// a work factor up to `max_log_n`.
    fn scrypt_stanza(&self, max_log_n: u8) -> Result<([u8; SALT_LEN], u8, &[u8]), CryptError> {
        let stanza = match self.stanzas.as_slice() {
            [only] => only,
            [] => return Err(invalid("no recipient stanza")),
            _ => {
                return Err(invalid(
                    "an scrypt stanza must be the only one (more than one stanza)",
                ))
            }
        };
        let (salt, log_n) = match stanza.args.as_slice() {
            [kind, salt, log_n] if kind == "scrypt" => (salt, log_n),
            [kind, ..] if kind == "scrypt" => {
                return Err(invalid("scrypt stanza needs a salt and a work factor"))
            }
            [kind, ..] => {
                return Err(invalid(format!(
                    "recipient type {kind:?} is not supported: passphrase (scrypt) only"
                )))
            }
            [] => return Err(invalid("stanza without a type")),
        };
        let salt: [u8; SALT_LEN] = decode_b64(salt.as_bytes())?
            .try_into()
            .map_err(|_| invalid("scrypt salt is not 16 bytes"))?;
        let log_n = parse_work_factor(log_n)?;
        if log_n > max_log_n {
            return Err(invalid(format!(
                "scrypt work factor {log_n} is above the accepted {max_log_n}"
            )));
        }
        if stanza.body.len() != FILE_KEY_LEN + TAG {
            return Err(invalid("scrypt stanza body is not 32 bytes"));
        }
        Ok((salt, log_n, &stanza.body))
    }
}

/// Decimal 1..=99 without leading zeros (the spec's canonical form); the cap is checked after.
fn parse_work_factor(s: &str) -> Result<u8, CryptError> {
    let canonical = !s.is_empty()
        && s.len() <= 2
        && !s.starts_with('0')
        && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u8>() {
        Ok(n) if canonical => Ok(n),
        _ => Err(invalid("malformed scrypt work factor")),
    }
}

fn b64(bytes: &[u8]) -> String {
    // Encoding into a String cannot fail for in-memory input of these sizes.
    Base64NoPadding::encode_to_string(bytes).unwrap_or_default()
}

/// Unpadded standard base64, canonical only (re-encoding must give the same text).
fn decode_b64(text: &[u8]) -> Result<Vec<u8>, CryptError> {
    let bytes = Base64NoPadding::decode_to_vec(text, None)
        .map_err(|_| invalid("malformed base64 in header"))?;
    if b64(&bytes).as_bytes() != text {
        return Err(invalid("non-canonical base64 in header"));
    }
    Ok(bytes)
}

// ---- keys ----

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = HKDF::extract(salt, ikm);
    let mut out = [0u8; 32];
    HKDF::expand(&mut out, prk, info);
    out
}

/// The cipher wrapping the file key: keyed by scrypt(passphrase, label || salt, 2^log_n, 8, 1).
fn wrap_cipher(
    passphrase: &str,
    salt: &[u8; SALT_LEN],
    log_n: u8,
) -> Result<ChaCha20Poly1305, CryptError> {
    let params =
        scrypt::Params::new(log_n, 8, 1, 32).map_err(|_| invalid("bad scrypt parameters"))?;
    let mut s = SCRYPT_LABEL.to_vec();
    s.extend_from_slice(salt);
    let mut key = [0u8; 32];
    scrypt::scrypt(passphrase.as_bytes(), &s, &params, &mut key)
        .map_err(|_| invalid("scrypt failed"))?;
    Ok(ChaCha20Poly1305::new(&Key::from(key)))
}

fn payload_cipher(file_key: &[u8; FILE_KEY_LEN], nonce: &[u8; NONCE_LEN]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&Key::from(hkdf(nonce, file_key, b"payload")))
}

fn tag_of(bytes: &[u8]) -> Result<Tag, CryptError> {
    let tag: [u8; TAG] = bytes.try_into().map_err(|_| invalid("short tag"))?;
    Ok(Tag::from(tag))
}

/// `counter (11 bytes, big endian) || last flag`.
fn chunk_nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::from(n)
}

// ---- streams ----

/// Reads the header through its MAC line, never past it, and at most [`MAX_HEADER`] bytes.
fn read_header(r: &mut impl BufRead) -> Result<Vec<u8>, CryptError> {
    let mut raw = Vec::new();
    loop {
        let start = raw.len();
        loop {
            let avail = r.fill_buf()?;
            if avail.is_empty() {
                return Err(invalid("truncated header"));
            }
            let (take, done) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            raw.extend_from_slice(&avail[..take]);
            r.consume(take);
            if raw.len() > MAX_HEADER {
                return Err(invalid("header too long"));
            }
            if done {
                break;
            }
        }
        if start == 0 && raw != MAGIC {
            return Err(invalid("not an age v1 file"));
        }
        if raw[start..].starts_with(b"---") {
            return Ok(raw);
        }
    }
}

/// Fills `buf` from `r` until it is full or the input ends; returns how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Authenticates each chunk before writing it; the last one must carry the last flag.
fn open_payload(
    cipher: &ChaCha20Poly1305,
    mut input: impl BufRead,
    out: &mut impl Write,
) -> Result<(), CryptError> {
    let mut buf = vec![0u8; CHUNK + TAG];
    for counter in 0u64.. {
        let n = read_full(&mut input, &mut buf)?;
        let last = n < buf.len() || input.fill_buf()?.is_empty();
        if n < TAG {
            return Err(invalid(format!(
                "truncated: chunk {counter} is missing or cut"
            )));
        }
        let (data, tag) = buf[..n].split_at_mut(n - TAG);
        if last && data.is_empty() && counter > 0 {
            return Err(invalid("empty last chunk"));
        }
        let tag = &tag_of(tag)?;
        if cipher
            .decrypt_in_place_detached(&chunk_nonce(counter, last), b"", data, tag)
            .is_err()
        {
            // A full chunk that opens as a middle one: the file was cut at a chunk boundary.
            // (A failed open leaves `data` as it was: the tag is checked before decrypting.)
            let cut = last
                && cipher
                    .decrypt_in_place_detached(&chunk_nonce(counter, false), b"", data, tag)
                    .is_ok();
            return Err(invalid(if cut {
                format!("truncated: the file ends after chunk {counter} without a last chunk")
            } else {
                format!("chunk {counter} failed authentication (altered or cut)")
            }));
        }
        out.write_all(data)?;
        if last {
            return Ok(());
        }
    }
    Err(invalid("payload too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small enough that every test runs scrypt in about a millisecond.
    const FAST: u8 = 10;
    const PASS: &str = "correct horse battery staple";

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn seal(plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encrypt_with_work_factor(plain, &mut out, PASS, FAST).unwrap();
        out
    }

    fn open(file: &[u8], pass: &str) -> Result<Vec<u8>, CryptError> {
        let mut out = Vec::new();
        decrypt(file, &mut out, pass).map(|()| out)
    }

    fn header_len(file: &[u8]) -> usize {
        let mut r = file;
        read_header(&mut r).unwrap().len()
    }

    fn invalid_containing(r: Result<Vec<u8>, CryptError>, what: &str) {
        match r {
            Err(CryptError::Invalid(why)) => assert!(why.contains(what), "{why:?} lacks {what:?}"),
            other => panic!("expected Invalid({what}), got {other:?}"),
        }
    }

    /// A header with other stanzas, MACed with the right key so only the stanza rule refuses it.
    fn forge(file_key: &[u8; 16], stanzas: &str) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(stanzas.as_bytes());
        h.extend_from_slice(b"---");
        let mac = HMAC::mac(&h, hkdf(&[], file_key, b"header"));
        h.extend_from_slice(format!(" {}\n", b64(&mac)).as_bytes());
        h
    }

    #[test]
    fn round_trips_at_chunk_edges() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 1 << 20] {
            let plain = data(len);
            let file = seal(&plain);
            assert!(is_encrypted(&file));
            let chunks = len.div_ceil(CHUNK).max(1);
            assert_eq!(
                file.len(),
                header_len(&file) + NONCE_LEN + len + chunks * TAG,
                "len {len}"
            );
            assert_eq!(open(&file, PASS).unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn header_is_the_spec_layout() {
        let file = seal(b"x");
        let text = String::from_utf8_lossy(&file[..header_len(&file)]).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "age-encryption.org/v1");
        let args: Vec<&str> = lines[1].split(' ').collect();
        assert_eq!((args[0], args[1], args[3]), ("->", "scrypt", "10"));
        assert_eq!((args[2].len(), lines[2].len()), (22, 43)); // 16 and 32 bytes, unpadded
        assert!(lines[3].starts_with("--- ") && lines[3].len() == 4 + 43);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn default_work_factor_is_written() {
        let mut out = Vec::new();
        encrypt(&b"k"[..], &mut out, PASS).unwrap();
        let text = String::from_utf8_lossy(&out[..header_len(&out)]).into_owned();
        assert!(text.contains(&format!(" {WORK_FACTOR}\n")));
        assert_eq!(open(&out, PASS).unwrap(), b"k");
    }

    #[test]
    fn wrong_passphrase_is_its_own_error() {
        let file = seal(&data(1000));
        assert!(matches!(
            open(&file, "hunter2"),
            Err(CryptError::WrongPassphrase)
        ));
        assert!(matches!(open(&file, ""), Err(CryptError::WrongPassphrase)));
    }

    #[test]
    fn every_cut_is_an_error() {
        let file = seal(&data(2 * CHUNK + 100));
        let h = header_len(&file);
        let boundary = h + NONCE_LEN + 2 * (CHUNK + TAG); // after two full chunks: no last chunk
        for cut in [
            0,
            10,
            h - 1,
            h,
            h + NONCE_LEN,
            h + NONCE_LEN + 5,
            boundary,
            boundary + 50,
            file.len() - 1,
        ] {
            assert!(open(&file[..cut], PASS).is_err(), "cut at {cut} accepted");
        }
        invalid_containing(open(&file[..boundary], PASS), "without a last chunk");
        invalid_containing(open(&file[..h + NONCE_LEN], PASS), "truncated");
    }

    #[test]
    fn flipped_bytes_are_errors() {
        let file = seal(&data(CHUNK + 500));
        let h = header_len(&file);
        // In the header: the salt or body makes the key unwrap fail (indistinguishable from a
        // wrong passphrase); the MAC, the work factor or the version line are refused as altered.
        let salt_at = MAGIC.len() + 10;
        let mac_at = h - 10;
        for (at, expect_wrong_pass) in [(salt_at, true), (mac_at, false), (3, false)] {
            let mut f = file.clone();
            f[at] ^= 0x01;
            let r = open(&f, PASS);
            assert!(r.is_err(), "flip at {at} accepted");
            assert_eq!(
                matches!(r, Err(CryptError::WrongPassphrase)),
                expect_wrong_pass,
                "flip at {at}"
            );
        }
        // Nonce, first chunk, last chunk, last tag byte.
        for at in [h + 1, h + NONCE_LEN + 7, file.len() - 100, file.len() - 1] {
            let mut f = file.clone();
            f[at] ^= 0x80;
            invalid_containing(
                open(&f, PASS),
                if at == h + 1 {
                    "chunk 0"
                } else {
                    "authentication"
                },
            );
        }
    }

    #[test]
    fn nothing_of_a_bad_chunk_is_written() {
        let plain = data(2 * CHUNK + 10);
        let mut file = seal(&plain);
        let second = header_len(&file) + NONCE_LEN + CHUNK + TAG + 3;
        file[second] ^= 1;
        let mut out = Vec::new();
        assert!(decrypt(&file[..], &mut out, PASS).is_err());
        assert_eq!(out, &plain[..CHUNK], "only the authenticated first chunk");
    }

    #[test]
    fn trailing_data_is_refused() {
        let mut file = seal(b"abc");
        file.push(0);
        assert!(open(&file, PASS).is_err());
    }

    #[test]
    fn extra_and_foreign_stanzas_are_refused() {
        let key = [7u8; 16];
        let scrypt =
            "-> scrypt rF0/NwblUHHTpgQgRpe5CQ 10\ngUjEymFKMVXQEKdMMHL24oYexjE3TIC0O0zGSqJ2aUY\n";
        let x25519 = "-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\nhjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE\n";
        let mut two = forge(&key, &format!("{scrypt}{scrypt}"));
        two.extend_from_slice(&[0; 40]);
        invalid_containing(open(&two, PASS), "only one");
        let mut mixed = forge(&key, &format!("{x25519}{scrypt}"));
        mixed.extend_from_slice(&[0; 40]);
        invalid_containing(open(&mixed, PASS), "only one");
        let mut foreign = forge(&key, x25519);
        foreign.extend_from_slice(&[0; 40]);
        invalid_containing(open(&foreign, PASS), "not supported");
        let mut none = forge(&key, "");
        none.extend_from_slice(&[0; 40]);
        invalid_containing(open(&none, PASS), "no recipient");
    }

    #[test]
    fn work_factor_over_the_cap_is_refused_before_scrypt() {
        let key = [7u8; 16];
        // 2^40 KiB would be a TiB of memory: refused at once.
        for (wf, what) in [
            ("40", "above"),
            ("19", "above"),
            ("0", "malformed"),
            ("010", "malformed"),
            ("+9", "malformed"),
        ] {
            let stanza = format!("-> scrypt rF0/NwblUHHTpgQgRpe5CQ {wf}\ngUjEymFKMVXQEKdMMHL24oYexjE3TIC0O0zGSqJ2aUY\n");
            let mut f = forge(&key, &stanza);
            f.extend_from_slice(&[0; 40]);
            invalid_containing(open(&f, PASS), what);
        }
        let file = seal(b"x"); // log N = 10
        let mut out = Vec::new();
        let r = decrypt_with_cap(&file[..], &mut out, PASS, 9);
        assert!(matches!(r, Err(CryptError::Invalid(w)) if w.contains("above")));
        let mut out = Vec::new();
        assert!(matches!(
            encrypt_with_work_factor(&b""[..], &mut out, PASS, 19),
            Err(CryptError::Invalid(_))
        ));
    }

    #[test]
    fn malformed_headers_are_invalid_not_panics() {
        let file = seal(b"payload");
        let h = header_len(&file);
        let cases: Vec<Vec<u8>> = vec![
            b"age-encryption.org/v2\n".to_vec(),
            b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec(),
            [MAGIC, b"-> \n"].concat(),
            [MAGIC, b"-> scrypt  10\nAAAA\n--- AAAA\n"].concat(),
            [MAGIC, b"garbage\n--- x\n"].concat(),
            [MAGIC, &[b'A'; 5000][..]].concat(),
            // The body padded with '=' (non-canonical for age).
            String::from_utf8_lossy(&file[..h])
                .replacen("\n---", "=\n---", 1)
                .into_bytes(),
        ];
        for (i, c) in cases.into_iter().enumerate() {
            assert!(
                matches!(open(&c, PASS), Err(CryptError::Invalid(_))),
                "case {i}"
            );
        }
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        // "AB" decodes to one byte whose last 4 bits are dropped: only "AA" is canonical for 0x00.
        assert!(decode_b64(b"AA").is_ok());
        assert!(decode_b64(b"AB").is_err());
        assert!(decode_b64(b"AA==").is_err());
    }

    #[test]
    fn the_writer_seals_as_encrypt_does_whatever_the_write_sizes() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let plain = data(len);
            for step in [1, 1000, CHUNK, CHUNK + 7] {
                let mut w = Encryptor::with_work_factor(Vec::new(), PASS, FAST).unwrap();
                for piece in plain.chunks(step) {
                    w.write_all(piece).unwrap();
                    w.flush().unwrap();
                }
                assert_eq!(w.write(&[]).unwrap(), 0);
                let file = w.finish().unwrap();
                let chunks = len.div_ceil(CHUNK).max(1);
                assert_eq!(
                    file.len(),
                    header_len(&file) + NONCE_LEN + len + chunks * TAG,
                    "len {len} step {step}"
                );
                assert_eq!(open(&file, PASS).unwrap(), plain, "len {len} step {step}");
            }
        }
    }

    #[test]
    fn a_writer_dropped_unfinished_leaves_a_file_that_does_not_decrypt() {
        for len in [10, CHUNK, 2 * CHUNK + 5] {
            let mut out = Vec::new();
            let mut w = Encryptor::with_work_factor(&mut out, PASS, FAST).unwrap();
            w.write_all(&data(len)).unwrap();
            drop(w);
            assert!(open(&out, PASS).is_err(), "len {len}");
        }
    }

    #[test]
    fn check_header_needs_no_passphrase_and_refuses_what_decrypt_would() {
        let file = seal(&data(100));
        assert_eq!(check_header(&file[..]).unwrap(), FAST);
        let h = header_len(&file);
        for cut in [0, h - 1, h, h + NONCE_LEN + TAG - 1] {
            assert!(check_header(&file[..cut]).is_err(), "cut at {cut}");
        }
        assert!(check_header(&file[..h + NONCE_LEN + TAG]).is_ok());
        let key = [7u8; 16];
        let x25519 = "-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\nhjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE\n";
        let too_hard =
            "-> scrypt rF0/NwblUHHTpgQgRpe5CQ 19\ngUjEymFKMVXQEKdMMHL24oYexjE3TIC0O0zGSqJ2aUY\n";
        for (stanza, what) in [(x25519, "not supported"), (too_hard, "above")] {
            let mut f = forge(&key, stanza);
            f.extend_from_slice(&[0; 40]);
            match check_header(&f[..]) {
                Err(CryptError::Invalid(why)) => assert!(why.contains(what), "{why}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(check_header(&[0x1f, 0x8b, 8, 0][..]).is_err());
    }

    #[test]
    fn is_encrypted_checks_the_version_line() {
        assert!(is_encrypted(b"age-encryption.org/v1\n-> scrypt"));
        assert!(!is_encrypted(b"age-encryption.org/v1"));
        assert!(!is_encrypted(&[0x1f, 0x8b, 8, 0]));
    }

    /// Prints the scrypt and streaming numbers quoted in the module doc. The cipher's generic
    /// code is compiled in this crate, so measure with it optimised:
    /// `CARGO_PROFILE_DEV_OPT_LEVEL=2 cargo test --lib backup::crypt::tests::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing() {
        let salt = [1u8; SALT_LEN];
        for log_n in [14, 15, 16, 18] {
            let t = std::time::Instant::now();
            wrap_cipher(PASS, &salt, log_n).unwrap();
            println!("scrypt log2 N = {log_n}: {:?}", t.elapsed());
        }
        let plain = data(64 << 20);
        let t = std::time::Instant::now();
        let mut file = Vec::with_capacity(plain.len() + (1 << 20));
        encrypt_with_work_factor(&plain[..], &mut file, PASS, FAST).unwrap();
        println!("encrypt: {:.0} MiB/s", 64.0 / t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        let mut out = Vec::with_capacity(plain.len());
        decrypt(&file[..], &mut out, PASS).unwrap();
        println!("decrypt: {:.0} MiB/s", 64.0 / t.elapsed().as_secs_f64());
        assert_eq!(out, plain);
    }
}
