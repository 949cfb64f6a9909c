//! The backup archive: a gzipped tar whose first member is `manifest.json`, then the members
//! of the backup's [`Kind`], named only from [`MEMBERS`].
//!
//! **Writing** ([`write`]) reads each source file twice, streaming: once for its size and
//! SHA-256 (the manifest comes first, so it must be known before any member), once into the
//! archive, hashed again so that a file changed in between is an error, not a lying manifest.
//! The tar is ours ([`ustar`]): ustar headers (mode 0600, uid/gid 0, no user names, mtime =
//! `created_at`), data padded to 512 bytes, two zero blocks at the end; GNU tar, bsdtar and
//! Python's `tarfile` read it (`reads_with_gnu_tar_and_python` below).
//!
//! **Reading** ([`read`]) trusts nothing in the archive and writes only into a fresh staging
//! directory, which it creates (0700) and removes again on any error:
//! ```text
//!  input ─► Watch ─► BufReader ─► gzip ─► Cap ─► Entries (ustar) ─► one new 0600 file per member
//!           (notes the          (bytes   (inflated                   (create_new, O_NOFOLLOW),
//!            caller's I/O        after    bytes capped:              hashed while written
//!            errors: Io, not     gzip:    a bomb stops
//!            Invalid)            refused) at the cap)
//! ```
//! - `manifest.json` first, at most 64 KiB, parsed strictly and checked against [`Limits`]
//!   ([`Manifest::check`]): format, names from [`MEMBERS`] that the type holds, each once,
//!   sizes and their sum, member count, SHA-256 spelling.
//! - Every header: its checksum right, its size plain octal (no base-256), its name what an
//!   extracting tar would use (a ustar `prefix/` joined) — see [`ustar::parse`].
//! - Every later entry: a regular file (links, devices, fifos, directories and every GNU/PAX
//!   extension header are refused from their header — no extension is ever interpreted, so
//!   a long-name record can never rename the entry after it, nor is one ever buffered); its
//!   name, exactly as its header says, in [`MEMBERS`] and in the manifest, once; its size
//!   equal to the manifest's before a byte is read; its SHA-256 equal after. Every manifest
//!   member present.
//! - The end: a tar end marker, nothing but zero padding after it (at most 20 KiB), then the
//!   end of the gzip stream (its CRC and length checked by flate2), then nothing.
//!
//! Members land at `stage/<name>` (e.g. `stage/database/ipv6wgm.db`). Any failure of the
//! archive is [`ArchiveError::Invalid`] with words a router owner understands; failures of
//! the caller's input stream or of the staging disk are [`ArchiveError::Io`].

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::rc::Rc;

use flate2::Compression;
use hmac_sha256::Hash;
use serde::{Deserialize, Serialize};

use super::ustar;

/// The archive format this code writes and reads (`format` in the manifest).
pub const FORMAT: u32 = 1;
/// The first member of every archive.
pub const MANIFEST: &str = "manifest.json";
/// A consistent snapshot of the database.
pub const DATABASE: &str = "database/ipv6wgm.db";
/// The configuration file in use.
pub const CONFIG: &str = "config/ipv6wgm.toml";
/// The token signing key.
pub const JWT_KEY: &str = "files/jwt.key";
/// Every name a member may have (the allowlist; the table in `backup/mod.rs` says the same).
pub const MEMBERS: [&str; 3] = [DATABASE, CONFIG, JWT_KEY];

/// The manifest is read into memory: this caps it (a real one is well under 1 KiB).
const MANIFEST_MAX: u64 = 64 * 1024;
/// Zero padding allowed after the end marker: tar-rs writes 1 KiB, GNU tar pads to 10 KiB.
const TRAILER_MAX: u64 = 20 * 1024;
const BLOCK: u64 = ustar::BLOCK as u64;
const MODE: u32 = 0o600;
const COPY_BUF: usize = 64 * 1024;

pub use super::catalog::Kind;

/// The members a backup of `kind` may hold (a `config` member only when there is a
/// configuration file: which are present is the writer's choice).
pub fn members_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Full => &MEMBERS,
        Kind::Database => &[DATABASE],
        Kind::Config => &[CONFIG],
        Kind::Files => &[JWT_KEY],
        Kind::Unknown => &[],
    }
}

/// What the caller knows about a backup being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub kind: Kind,
    /// The database's `user_version`.
    pub schema_version: i64,
    pub hostname: String,
    /// Unix seconds; also every member's mtime.
    pub created_at: i64,
}

/// A file to put into an archive under one of the names of [`MEMBERS`].
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub name: &'static str,
    pub path: &'a Path,
}

/// The archive's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub app_version: String,
    pub schema_version: i64,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub hostname: String,
    /// Unix seconds, RFC 3339 in the JSON.
    #[serde(
        serialize_with = "crate::time::ser",
        deserialize_with = "crate::time::de"
    )]
    pub created_at: i64,
    pub members: Vec<ManifestMember>,
}

/// One member as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestMember {
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Caps on what [`read`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Members besides the manifest: the manifest may list no more, and every entry must
    /// be listed once, so the archive holds no more either.
    pub max_members: usize,
    pub max_member_bytes: u64,
    /// All members together, inflated.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    /// Far above a real router's state (a database of 1,000 clients is a few MiB), far below
    /// a 1 GB bomb. Staging writes the members to disk, never to memory.
    fn default() -> Self {
        Limits {
            max_members: MEMBERS.len(),
            max_member_bytes: 256 << 20,
            max_total_bytes: 256 << 20,
        }
    }
}

#[derive(Debug)]
pub enum ArchiveError {
    /// The archive is not a sound backup (the API answers 422): what is wrong, in words.
    Invalid(String),
    /// Reading the input or writing files failed (not the archive's fault).
    Io(io::Error),
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::Invalid(why) => f.write_str(why),
            ArchiveError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ArchiveError {}

fn invalid(why: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid(why.into())
}

// ---------------------------------------------------------------------------------------
// The manifest (pure)

impl Manifest {
    /// The manifest's own rules and the caps of `limits`, in words for the owner.
    pub fn check(&self, limits: &Limits) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "manifest.json: format {} is not one this version reads (it reads {FORMAT})",
                self.format
            ));
        }
        if self.kind == Kind::Unknown {
            // What the catalogue calls an encrypted upload, never a type an archive has.
            return Err("manifest.json: \"unknown\" is not a backup type".into());
        }
        if self.hostname.len() > 255 || self.app_version.len() > 64 {
            return Err("manifest.json: hostname or app_version is too long".into());
        }
        if self.members.len() > limits.max_members {
            return Err(format!(
                "manifest.json lists {} members; a backup holds at most {}",
                self.members.len(),
                limits.max_members
            ));
        }
        let mut names = HashSet::new();
        let mut total: u64 = 0;
        for m in &self.members {
            let name = self.check_member(m, limits)?;
            if !names.insert(name) {
                return Err(format!("manifest.json lists {name} twice"));
            }
            total = total.saturating_add(m.size);
        }
        if total > limits.max_total_bytes {
            return Err(format!(
                "the members add up to {}, more than the {} a backup may hold",
                amount(total),
                amount(limits.max_total_bytes)
            ));
        }
        Ok(())
    }

    fn check_member(&self, m: &ManifestMember, limits: &Limits) -> Result<&'static str, String> {
        let Some(name) = allowed_name(m.name.as_bytes()) else {
            return Err(format!(
                "manifest.json lists {}: not a name a backup holds",
                shown(m.name.as_bytes())
            ));
        };
        if !members_of(self.kind).contains(&name) {
            return Err(format!(
                "manifest.json lists {name}, which a {} backup does not hold",
                self.kind.as_str()
            ));
        }
        if m.size > limits.max_member_bytes {
            return Err(format!(
                "member {name}: {}, more than the {} a member may have",
                amount(m.size),
                amount(limits.max_member_bytes)
            ));
        }
        let hex = m.sha256.as_bytes();
        if hex.len() != 64 || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "member {name}: its SHA-256 in manifest.json is not 64 lowercase hex digits"
            ));
        }
        Ok(name)
    }

    /// The manifest's entry for `name`.
    pub fn member(&self, name: &str) -> Option<&ManifestMember> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// The allowlisted name spelled exactly by `raw`: no `./`, no `//`, no other spelling.
fn allowed_name(raw: &[u8]) -> Option<&'static str> {
    MEMBERS.into_iter().find(|n| n.as_bytes() == raw)
}

/// The member name an entry of type flag `t` named `raw` may be staged as.
fn admit(t: u8, raw: &[u8]) -> Result<&'static str, String> {
    if let Some(what) = ustar::not_regular(t) {
        return Err(format!(
            "member {}: {what}; a backup holds regular files only",
            shown(raw)
        ));
    }
    allowed_name(raw).ok_or_else(|| format!("member {}: not a name a backup holds", shown(raw)))
}

/// A name from the archive, printable in a message: lossy UTF-8, control characters as
/// `?`, at most 100 characters.
fn shown(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out: String = s
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(100).is_some() {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("(no name)");
    }
    out
}

fn amount(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / (1u64 << 10) as f64)
    } else {
        format!("{bytes} bytes")
    }
}

pub(crate) fn hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    digest
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// Bytes the tar stream may inflate to within `limits`: members, manifest, a header and
/// padding per entry, the end marker and its padding.
fn inflated_cap(limits: &Limits) -> u64 {
    let entries = u64::try_from(limits.max_members)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    limits
        .max_total_bytes
        .saturating_add(MANIFEST_MAX)
        .saturating_add(entries.saturating_mul(2 * BLOCK))
        .saturating_add(TRAILER_MAX + BLOCK)
}

// ---------------------------------------------------------------------------------------
// Writing

/// Writes a gzipped tar of `members` for `head` to `out` (finished and flushed; pass `&mut`
/// to keep the writer) and returns its manifest. Every error is `Io`, and leaves `out`
/// unusable: a name not of `head.kind` or given twice (`InvalidInput`), a source file that
/// cannot be read or changes while it is written.
pub fn write<W: Write>(
    out: W,
    head: Head,
    members: &[Member<'_>],
) -> Result<Manifest, ArchiveError> {
    check_sources(head.kind, members).map_err(ArchiveError::Io)?;
    let mut listed = Vec::with_capacity(members.len());
    for m in members {
        let (size, digest) = File::open(m.path)
            .and_then(digest)
            .map_err(|e| ArchiveError::Io(at(m.path, e)))?;
        listed.push(ManifestMember {
            name: m.name.to_string(),
            size,
            sha256: hex(&digest),
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        app_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: head.schema_version,
        kind: head.kind,
        hostname: head.hostname,
        created_at: head.created_at,
        members: listed,
    };
    write_tar(out, &manifest, members).map_err(ArchiveError::Io)?;
    Ok(manifest)
}

fn write_tar<W: Write>(out: W, manifest: &Manifest, members: &[Member<'_>]) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
    let mtime = u64::try_from(manifest.created_at).unwrap_or(0);
    // Level 1: a router's CPU is the bottleneck. miniz_oxide's level 6 took 2.9× as long on
    // the 50 MiB test member; on a SQLite database gzip -6 saves only 4% over -1.
    let mut gz = flate2::write::GzEncoder::new(out, Compression::fast());
    let size = json.len() as u64;
    append(&mut gz, MANIFEST, size, mtime, &mut json.as_slice())?;
    pad(&mut gz, size)?;
    for (m, listed) in members.iter().zip(&manifest.members) {
        append_member(&mut gz, m, listed, mtime)?;
    }
    // The end marker: two zero blocks.
    gz.write_all(&[0; 2 * ustar::BLOCK])?;
    gz.finish()?.flush()
}

fn check_sources(kind: Kind, members: &[Member<'_>]) -> io::Result<()> {
    let mut seen = HashSet::new();
    for m in members {
        if !members_of(kind).contains(&m.name) || !seen.insert(m.name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a member of a {} backup, or given twice",
                    m.name,
                    kind.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// `e`, saying which file.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Size and SHA-256 of everything `r` yields.
fn digest(mut r: impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut hashing = Hashing::new(&mut r);
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(hashing.finish())
}

/// A header for `name` and the data `data` yields (through `dyn`: one copy of the loop in
/// the binary); how many bytes that was. The caller pads, once it knows they are right.
fn append(
    out: &mut dyn Write,
    name: &str,
    size: u64,
    mtime: u64,
    data: &mut dyn Read,
) -> io::Result<u64> {
    let header = ustar::header(name, size, mtime)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {why}")))?;
    out.write_all(&header)?;
    io::copy(data, out)
}

/// Zeros after `size` bytes of data, to the end of their block.
fn pad(out: &mut dyn Write, size: u64) -> io::Result<()> {
    out.write_all(&[0; ustar::BLOCK][..ustar::padding(size)])
}

fn append_member(
    out: &mut dyn Write,
    m: &Member<'_>,
    listed: &ManifestMember,
    mtime: u64,
) -> io::Result<()> {
    let file = File::open(m.path).map_err(|e| at(m.path, e))?;
    let mut data = Hashing::new(file.take(listed.size));
    append(out, m.name, listed.size, mtime, &mut data).map_err(|e| at(m.path, e))?;
    let (size, digest) = data.finish();
    if size != listed.size || hex(&digest) != listed.sha256 {
        return Err(io::Error::other(format!(
            "{}: changed while it was being backed up",
            m.path.display()
        )));
    }
    pad(out, size)
}

/// Counts and hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Hash,
    count: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hash: Hash::new(),
            count: 0,
        }
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.count, self.hash.finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// Validates the archive `input` and writes its members into `stage`, which must not
/// exist (it is created 0700; on any error it is removed again). Returns the manifest.
pub fn read<R: Read>(input: R, stage: &Path, limits: &Limits) -> Result<Manifest, ArchiveError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(stage)
        .map_err(|e| ArchiveError::Io(at(stage, e)))?;
    let result = read_into(input, Some(stage), limits);
    if result.is_err() {
        let _ = fs::remove_dir_all(stage);
    }
    result
}

/// Every check of [`read`], writing nothing: for `backup verify` and for an upload before it
/// is kept.
pub fn verify<R: Read>(input: R, limits: &Limits) -> Result<Manifest, ArchiveError> {
    read_into(input, None, limits)
}

/// What went wrong below the tar reader, which only sees an `io::Error`.
#[derive(Default)]
struct Trouble {
    /// The caller's input failed (not the archive's fault).
    source: RefCell<Option<io::Error>>,
    /// The inflated stream passed its cap.
    inflated: Cell<bool>,
}

impl Trouble {
    fn classify(&self, e: io::Error, cap: u64) -> ArchiveError {
        if let Some(source) = self.source.borrow_mut().take() {
            return ArchiveError::Io(source);
        }
        if self.inflated.get() {
            return invalid(format!(
                "the archive inflates to more than {}, more than a backup may hold",
                amount(cap)
            ));
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof => invalid("the archive is cut short (truncated)"),
            _ => invalid(format!("the archive is damaged ({e})")),
        }
    }
}

/// The caller's input, noting its errors in [`Trouble`].
struct Watch<R> {
    inner: R,
    trouble: Rc<Trouble>,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                let copy = io::Error::new(e.kind(), e.to_string());
                *self.trouble.source.borrow_mut() = Some(copy);
            }
        })
    }
}

/// The inflated stream, failing once more than `left` bytes come out of it.
struct Cap<R> {
    inner: R,
    left: u64,
    /// Bytes passed on so far: the tar stream's position.
    pulled: u64,
    trouble: Rc<Trouble>,
}

impl<R: Read> Read for Cap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the cap is asked for, so a stream ending exactly there still passes.
        let want = buf.len().min(
            usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.trouble.inflated.set(true);
            return Err(io::Error::other("inflated-size cap reached"));
        }
        self.left -= n as u64;
        self.pulled += n as u64;
        Ok(n)
    }
}

/// [`read`] into `stage`, or [`verify`] with `None`.
fn read_into<R: Read>(
    input: R,
    stage: Option<&Path>,
    limits: &Limits,
) -> Result<Manifest, ArchiveError> {
    let trouble = Rc::new(Trouble::default());
    let cap = inflated_cap(limits);
    let fail = |e: io::Error| trouble.classify(e, cap);
    let mut src = BufReader::with_capacity(
        COPY_BUF,
        Watch {
            inner: input,
            trouble: trouble.clone(),
        },
    );
    let mut tar = Entries {
        inflated: Cap {
            inner: flate2::bufread::GzDecoder::new(&mut src),
            left: cap,
            pulled: 0,
            trouble: trouble.clone(),
        },
        next: 0,
    };
    let manifest = read_entries(&mut tar, stage, limits, &fail)?;
    check_end(&mut tar.inflated, tar.next, &fail)?;
    drop(tar);
    if !src.fill_buf().map_err(&fail)?.is_empty() {
        return Err(invalid(
            "the file has data after the end of the compressed archive",
        ));
    }
    Ok(manifest)
}

/// The tar stream, entry by entry ([`ustar`] headers).
struct Entries<R> {
    inflated: Cap<R>,
    /// Where the next header is: after the last entry's data and padding.
    next: u64,
}

impl<R: Read> Entries<R> {
    /// The next entry's header (its data follows: [`Entries::data`]), or `None` at an end
    /// marker or where the stream ends on a block boundary ([`check_end`] tells them apart).
    fn next(
        &mut self,
        fail: &dyn Fn(io::Error) -> ArchiveError,
    ) -> Result<Option<ustar::Header>, ArchiveError> {
        // What the last entry's reader left: the rest of its data, its padding.
        let behind = self.next.saturating_sub(self.inflated.pulled);
        let skipped = io::copy(&mut (&mut self.inflated).take(behind), &mut io::sink());
        if skipped.map_err(fail)? != behind {
            return Err(invalid("the archive is cut short (truncated)"));
        }
        let mut block = [0u8; ustar::BLOCK];
        let got = read_full(&mut self.inflated, &mut block).map_err(fail)?;
        if got == 0 {
            return Ok(None);
        }
        if got < block.len() {
            return Err(invalid(format!(
                "the archive is damaged (its tar stream ends {got} bytes into a header)"
            )));
        }
        match ustar::parse(&block) {
            Ok(ustar::Block::End) => Ok(None),
            Ok(ustar::Block::Entry(h)) => {
                let padded = h.size.saturating_add(ustar::padding(h.size) as u64);
                self.next = self.inflated.pulled.saturating_add(padded);
                Ok(Some(h))
            }
            Err(bad) => Err(invalid(format!("the archive is damaged ({bad})"))),
        }
    }

    /// The data of the entry whose header [`Entries::next`] just gave, at most `size`
    /// bytes (fewer when the stream is cut short).
    fn data(&mut self, size: u64) -> io::Take<&mut Cap<R>> {
        (&mut self.inflated).take(size)
    }
}

/// Reads until `buf` is full or the stream ends; how many bytes that was.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The manifest and every member, staged.
fn read_entries<R: Read>(
    tar: &mut Entries<R>,
    stage: Option<&Path>,
    limits: &Limits,
    fail: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<Manifest, ArchiveError> {
    let Some(first) = tar.next(fail)? else {
        return Err(invalid("the archive is empty: it is not a backup"));
    };
    let manifest = read_manifest(tar, first, limits, fail)?;
    let mut seen = HashSet::new();
    while let Some(header) = tar.next(fail)? {
        stage_member(tar, header, &manifest, &mut seen, stage, fail)?;
    }
    if let Some(missing) = manifest
        .members
        .iter()
        .find(|m| !seen.contains(m.name.as_str()))
    {
        return Err(invalid(format!(
            "member {}: listed in the manifest but not in the archive",
            missing.name
        )));
    }
    Ok(manifest)
}

fn read_manifest<R: Read>(
    tar: &mut Entries<R>,
    header: ustar::Header,
    limits: &Limits,
    fail: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<Manifest, ArchiveError> {
    if let Some(what) = ustar::not_regular(header.kind) {
        return Err(invalid(format!(
            "the archive's first member, {}, is {what}: it is not a backup made by ipv6wgm",
            shown(&header.name)
        )));
    }
    if header.name != MANIFEST.as_bytes() {
        return Err(invalid(format!(
            "the archive begins with {}, not {MANIFEST}: it is not a backup made by ipv6wgm",
            shown(&header.name)
        )));
    }
    if header.size > MANIFEST_MAX {
        return Err(invalid(format!(
            "{MANIFEST} is larger than {} and cannot be one",
            amount(MANIFEST_MAX)
        )));
    }
    let mut json = Vec::new();
    tar.data(header.size).read_to_end(&mut json).map_err(fail)?;
    if json.len() as u64 != header.size {
        return Err(invalid("the archive is cut short (truncated)"));
    }
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| invalid(format!("{MANIFEST} is not a valid manifest: {e}")))?;
    manifest.check(limits).map_err(ArchiveError::Invalid)?;
    Ok(manifest)
}

fn stage_member<R: Read>(
    tar: &mut Entries<R>,
    header: ustar::Header,
    manifest: &Manifest,
    seen: &mut HashSet<&'static str>,
    stage: Option<&Path>,
    fail: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<(), ArchiveError> {
    let name = admit(header.kind, &header.name).map_err(invalid)?;
    let Some(listed) = manifest.member(name) else {
        return Err(invalid(format!(
            "member {name}: not listed in the manifest"
        )));
    };
    if !seen.insert(name) {
        return Err(invalid(format!(
            "member {name}: appears twice in the archive"
        )));
    }
    if header.size != listed.size {
        return Err(invalid(format!(
            "member {name}: {} in the archive, but the manifest says {}",
            amount(header.size),
            amount(listed.size)
        )));
    }
    let to = stage.map(|s| s.join(name));
    let (size, digest) = copy_new(&mut tar.data(header.size), to.as_deref(), fail)?;
    if size != listed.size {
        return Err(invalid("the archive is cut short (truncated)"));
    }
    if hex(&digest) != listed.sha256 {
        return Err(invalid(format!(
            "member {name}: its SHA-256 does not match the manifest (the file is damaged or was altered)"
        )));
    }
    Ok(())
}

/// Copies `from` into the new file `path` (its directory made 0700 if missing), or
/// nowhere, hashing.
fn copy_new(
    from: &mut impl Read,
    path: Option<&Path>,
    fail: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<(u64, [u8; 32]), ArchiveError> {
    let mut file = path.map(create_new).transpose()?;
    let mut data = Hashing::new(from);
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        };
        if let (Some(file), Some(path)) = (file.as_mut(), path) {
            file.write_all(&buf[..n])
                .map_err(|e| ArchiveError::Io(at(path, e)))?;
        }
    }
    if let (Some(file), Some(path)) = (file, path) {
        file.sync_all().map_err(|e| ArchiveError::Io(at(path, e)))?;
    }
    Ok(data.finish())
}

/// A new file at `path`, never following or replacing anything there.
fn create_new(path: &Path) -> Result<File, ArchiveError> {
    if let Some(dir) = path.parent() {
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(ArchiveError::Io(at(dir, e)))
            }
            _ => {}
        }
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| ArchiveError::Io(at(path, e)))
}

/// After the last entry: the end marker (one zero block already read by [`Entries::next`],
/// or none: cut short), zero padding only, then the end of the inflated stream.
fn check_end<R: Read>(
    inflated: &mut Cap<R>,
    ends_at: u64,
    fail: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<(), ArchiveError> {
    if inflated.pulled <= ends_at {
        return Err(invalid("the archive has no end marker: it was cut short"));
    }
    let mut after = inflated.pulled - ends_at;
    let mut buf = [0u8; 4096];
    loop {
        let n = match inflated.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(invalid("the archive has data after its end marker"));
        }
        after += n as u64;
        if after > TRAILER_MAX {
            return Err(invalid(format!(
                "the archive has more than {} of padding after its end marker",
                amount(TRAILER_MAX)
            )));
        }
    }
    if after < 2 * BLOCK || !after.is_multiple_of(BLOCK) {
        return Err(invalid("the archive's end marker is damaged"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    // The hostile archives are made with an independent writer, the `tar` crate.
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use tar::{EntryType, Header};

    const T0: i64 = 1_764_720_000; // 2025-12-03T00:00:00Z

    fn head(kind: Kind) -> Head {
        Head {
            kind,
            schema_version: 7,
            hostname: "router-1".into(),
            created_at: T0,
        }
    }

    /// Bytes that look a little like a database: repetitive but not constant.
    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b' ' + (x % 64) as u8
            })
            .collect()
    }

    struct Sources {
        dir: tempfile::TempDir,
        files: Vec<(&'static str, PathBuf, Vec<u8>)>,
    }

    fn sources(items: &[(&'static str, Vec<u8>)]) -> Sources {
        let dir = tempfile::tempdir().expect("tmp");
        let files = items
            .iter()
            .enumerate()
            .map(|(i, (name, data))| {
                let path = dir.path().join(format!("src{i}"));
                fs::write(&path, data).expect("write source");
                (*name, path, data.clone())
            })
            .collect();
        Sources { dir, files }
    }

    fn archive_of(kind: Kind, items: &[(&'static str, Vec<u8>)]) -> (Vec<u8>, Manifest) {
        let src = sources(items);
        let members: Vec<Member<'_>> = src
            .files
            .iter()
            .map(|(name, path, _)| Member { name, path })
            .collect();
        let mut out = Vec::new();
        let manifest = write(&mut out, head(kind), &members).expect("write");
        (out, manifest)
    }

    fn full_items() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (DATABASE, pattern(300_000, 7)),
            (CONFIG, b"listen = \"[::]:8080\"\n".to_vec()),
            (JWT_KEY, pattern(64, 9)),
        ]
    }

    fn stage_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("stage")
    }

    /// `archive` is refused as Invalid with a message containing `expect`, and the stage
    /// is gone; `verify` refuses it in the same words.
    fn refused_with(archive: &[u8], limits: &Limits, expect: &str) -> String {
        let dir = tempfile::tempdir().expect("tmp");
        let stage = stage_in(&dir);
        let msg = match read(archive, &stage, limits) {
            Err(ArchiveError::Invalid(msg)) => {
                assert!(msg.contains(expect), "{msg:?} does not say {expect:?}");
                assert!(!stage.exists(), "stage left behind for {msg}");
                msg
            }
            other => panic!("expected Invalid({expect}), got {other:?}"),
        };
        match verify(archive, limits) {
            Err(ArchiveError::Invalid(same)) => assert_eq!(same, msg),
            other => panic!("verify: expected Invalid({msg}), got {other:?}"),
        }
        msg
    }

    fn refused(archive: &[u8], expect: &str) -> String {
        refused_with(archive, &Limits::default(), expect)
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).expect("gz");
        e.finish().expect("gz")
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    }

    /// One hand-made tar entry: any name bytes (no validation), any type, any link.
    struct Raw {
        name: Vec<u8>,
        kind: EntryType,
        data: Vec<u8>,
        link: Vec<u8>,
        size: Option<u64>,
    }

    fn raw(name: &str, kind: EntryType, data: &[u8]) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            kind,
            data: data.to_vec(),
            link: Vec::new(),
            size: None,
        }
    }

    fn file(name: &str, data: &[u8]) -> Raw {
        raw(name, EntryType::Regular, data)
    }

    fn raw_header(e: &Raw) -> Header {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(&e.name);
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(&e.link);
        h.set_size(e.size.unwrap_or(e.data.len() as u64));
        h.set_mode(0o600);
        h.set_entry_type(e.kind);
        h.set_cksum();
        h
    }

    /// A tar (not gzipped) of `entries`, with its end marker.
    fn tar_of(entries: &[Raw]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            b.append(&raw_header(e), e.data.as_slice()).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn manifest_json(kind: Kind, members: &[(&str, &[u8])]) -> Vec<u8> {
        let m = Manifest {
            format: FORMAT,
            app_version: "0.1.0".into(),
            schema_version: 7,
            kind,
            hostname: "router-1".into(),
            created_at: T0,
            members: members
                .iter()
                .map(|(name, data)| ManifestMember {
                    name: name.to_string(),
                    size: data.len() as u64,
                    sha256: hex(&Hash::hash(data)),
                })
                .collect(),
        };
        serde_json::to_vec(&m).expect("json")
    }

    const DB: &[u8] = b"SQLite format 3\0 pretend";
    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// A gzipped archive: a manifest of `listed` (kind full), then `entries`.
    fn hostile(listed: &[(&str, &[u8])], entries: Vec<Raw>) -> Vec<u8> {
        let mut all = vec![file(MANIFEST, &manifest_json(Kind::Full, listed))];
        all.extend(entries);
        gz(&tar_of(&all))
    }

    #[test]
    fn round_trip_keeps_bytes_manifest_and_modes() {
        let items = full_items();
        let (archive, written) = archive_of(Kind::Full, &items);
        assert!(archive.len() < 300_000, "compressed: {}", archive.len());
        assert_eq!(written.format, 1);
        assert_eq!(written.app_version, env!("CARGO_PKG_VERSION"));
        assert_eq!((written.schema_version, written.kind), (7, Kind::Full));
        assert_eq!(
            (written.hostname.as_str(), written.created_at),
            ("router-1", T0)
        );
        for ((name, data), m) in items.iter().zip(&written.members) {
            assert_eq!((m.name.as_str(), m.size), (*name, data.len() as u64));
            assert_eq!(m.sha256, hex(&Hash::hash(data)));
        }

        let dir = tempfile::tempdir().expect("tmp");
        let stage = stage_in(&dir);
        let read_back = read(archive.as_slice(), &stage, &Limits::default()).expect("read");
        assert_eq!(read_back, written);
        assert_eq!(
            verify(archive.as_slice(), &Limits::default()).expect("verify"),
            written
        );
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&stage), 0o700);
        for (name, data) in &items {
            let path = stage.join(name);
            assert_eq!(&fs::read(&path).expect("staged"), data, "{name}");
            assert_eq!(mode(&path), 0o600);
        }

        // The archive itself: manifest first, then the members, 0600, root, mtime, no names.
        let tar = gunzip(&archive);
        let json = String::from_utf8(tar[512..512 + 700].to_vec()).unwrap_or_default();
        assert!(
            json.contains("\"created_at\": \"2025-12-03T00:00:00Z\""),
            "{json}"
        );
        assert!(json.contains("\"type\": \"full\""), "{json}");
        let mut ar = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                assert_eq!(h.mode().expect("mode"), 0o600);
                assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (0, 0));
                assert_eq!(h.mtime().expect("mtime"), T0 as u64);
                assert_eq!(h.username_bytes(), Some(&b""[..]));
                assert_eq!(h.groupname_bytes(), Some(&b""[..]));
                assert_eq!(h.entry_type(), EntryType::Regular);
                String::from_utf8_lossy(&e.path_bytes()).into_owned()
            })
            .collect();
        assert_eq!(names, [MANIFEST, DATABASE, CONFIG, JWT_KEY]);
    }

    #[test]
    fn round_trip_of_each_kind_and_of_empty_files() {
        for (kind, items) in [
            (Kind::Database, vec![(DATABASE, Vec::new())]),
            (Kind::Config, vec![(CONFIG, b"x".to_vec())]),
            (Kind::Files, vec![(JWT_KEY, KEY.to_vec())]),
            (Kind::Config, vec![]),
        ] {
            let (archive, written) = archive_of(kind, &items);
            let dir = tempfile::tempdir().expect("tmp");
            let stage = stage_in(&dir);
            let back = read(archive.as_slice(), &stage, &Limits::default()).expect("read");
            assert_eq!(back, written);
            for (name, data) in &items {
                assert_eq!(&fs::read(stage.join(name)).expect("staged"), data);
            }
        }
    }

    #[test]
    fn hand_made_archive_in_the_expected_shape_is_accepted() {
        // The helpers below build the hostile archives: this proves that what they refuse
        // is the one thing each test changes.
        let ok = hostile(
            &[(DATABASE, DB), (JWT_KEY, KEY)],
            vec![file(DATABASE, DB), file(JWT_KEY, KEY)],
        );
        let dir = tempfile::tempdir().expect("tmp");
        let m = read(ok.as_slice(), &stage_in(&dir), &Limits::default()).expect("read");
        assert_eq!(m.members.len(), 2);
        assert_eq!(fs::read(stage_in(&dir).join(DATABASE)).expect("db"), DB);
    }

    #[test]
    fn writer_refuses_members_not_of_its_kind() {
        let src = sources(&[(CONFIG, b"x".to_vec())]);
        let m = [Member {
            name: CONFIG,
            path: &src.files[0].1,
        }];
        let e = write(Vec::new(), head(Kind::Database), &m).expect_err("config in database");
        assert!(matches!(e, ArchiveError::Io(ref io) if io.kind() == io::ErrorKind::InvalidInput));
        let twice = [m[0], m[0]];
        assert!(write(Vec::new(), head(Kind::Full), &twice).is_err());
        let missing = [Member {
            name: CONFIG,
            path: &src.dir.path().join("nope"),
        }];
        let e = write(Vec::new(), head(Kind::Full), &missing).expect_err("missing file");
        assert!(matches!(e, ArchiveError::Io(ref io) if io.kind() == io::ErrorKind::NotFound));
    }

    #[test]
    fn refuses_names_outside_the_allowlist() {
        let listed: &[(&str, &[u8])] = &[(DATABASE, DB)];
        let msg = refused(
            &hostile(listed, vec![file("../etc/passwd", b"root::0:0")]),
            "member ../etc/passwd: not a name a backup holds",
        );
        assert_eq!(msg, "member ../etc/passwd: not a name a backup holds");
        refused(
            &hostile(listed, vec![file("/etc/passwd", b"x")]),
            "member /etc/passwd: not a name a backup holds",
        );
        for spelling in [
            "./database/ipv6wgm.db",
            "database//ipv6wgm.db",
            "database/../database/ipv6wgm.db",
            "database/ipv6wgm.db/",
            "database\\ipv6wgm.db",
        ] {
            refused(
                &hostile(listed, vec![file(spelling, DB)]),
                "not a name a backup holds",
            );
        }
        // A ustar prefix that puts `..` in front of an allowed name.
        let mut h = Header::new_ustar();
        h.set_path(DATABASE).expect("path");
        if let Some(u) = h.as_ustar_mut() {
            u.prefix[..2].copy_from_slice(b"..");
        }
        h.set_size(DB.len() as u64);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        let json = manifest_json(Kind::Full, listed);
        b.append(&raw_header(&file(MANIFEST, &json)), json.as_slice())
            .expect("manifest");
        b.append(&h, DB).expect("member");
        let archive = gz(&b.into_inner().expect("tar"));
        refused(&archive, "member ../database/ipv6wgm.db: not a name");
    }

    #[test]
    fn refuses_links_devices_fifos_and_directories() {
        let listed: &[(&str, &[u8])] = &[(DATABASE, DB)];
        let link = |kind| Raw {
            link: b"/etc/shadow".to_vec(),
            ..raw(DATABASE, kind, b"")
        };
        for (entry, what) in [
            (link(EntryType::Symlink), "a symbolic link"),
            (link(EntryType::Link), "a hard link"),
            (raw(DATABASE, EntryType::Char, b""), "a character device"),
            (raw(DATABASE, EntryType::Block, b""), "a block device"),
            (raw(DATABASE, EntryType::Fifo, b""), "a named pipe (fifo)"),
            (raw("database/", EntryType::Directory, b""), "a directory"),
            (raw(DATABASE, EntryType::new(b'Z'), DB), "unknown kind"),
        ] {
            let msg = refused(&hostile(listed, vec![entry]), what);
            assert!(msg.ends_with("a backup holds regular files only"), "{msg}");
        }
    }

    #[test]
    fn refuses_gnu_long_names_and_pax_paths() {
        let listed: &[(&str, &[u8])] = &[(DATABASE, DB)];
        // A GNU long-name record that would rename the next entry to ../etc/passwd.
        let long = raw("././@LongLink", EntryType::GNULongName, b"../etc/passwd\0");
        refused(
            &hostile(listed, vec![long, file(DATABASE, DB)]),
            "member ././@LongLink: a GNU long-name record",
        );
        // A PAX header whose path does the same.
        let record = b"30 path=../../../etc/passwd\n";
        let pax = raw("PaxHeaders/x", EntryType::XHeader, record);
        refused(
            &hostile(listed, vec![pax, file(DATABASE, DB)]),
            "a PAX extended header",
        );
        let global = raw("pax_global_header", EntryType::XGlobalHeader, record);
        refused(
            &hostile(listed, vec![global, file(DATABASE, DB)]),
            "a PAX global header",
        );
        // Even one claiming a gigabyte is refused from its header, before its data.
        let mut huge = raw("././@LongLink", EntryType::GNULongName, b"");
        huge.size = Some(1 << 30);
        let mut t = tar_of(&[file(MANIFEST, &manifest_json(Kind::Full, listed))]);
        t.truncate(t.len() - 1024);
        t.extend_from_slice(raw_header(&huge).as_bytes());
        refused(&gz(&t), "a GNU long-name record");
    }

    #[test]
    fn refuses_members_and_manifest_that_disagree() {
        let both: &[(&str, &[u8])] = &[(DATABASE, DB), (JWT_KEY, KEY)];
        refused(
            &hostile(
                &[(DATABASE, DB)],
                vec![file(DATABASE, DB), file(JWT_KEY, KEY)],
            ),
            "member files/jwt.key: not listed in the manifest",
        );
        refused(
            &hostile(both, vec![file(DATABASE, DB)]),
            "member files/jwt.key: listed in the manifest but not in the archive",
        );
        refused(
            &hostile(
                &[(DATABASE, DB)],
                vec![file(DATABASE, DB), file(DATABASE, DB)],
            ),
            "member database/ipv6wgm.db: appears twice",
        );
        let mut altered = DB.to_vec();
        altered[0] ^= 1;
        refused(
            &hostile(&[(DATABASE, DB)], vec![file(DATABASE, &altered)]),
            "member database/ipv6wgm.db: its SHA-256 does not match the manifest",
        );
        refused(
            &hostile(&[(DATABASE, DB)], vec![file(DATABASE, &DB[1..])]),
            "member database/ipv6wgm.db: 23 bytes in the archive, but the manifest says 24",
        );
    }

    #[test]
    fn refuses_an_archive_not_beginning_with_its_manifest() {
        let json = manifest_json(Kind::Full, &[(DATABASE, DB)]);
        let late = gz(&tar_of(&[file(DATABASE, DB), file(MANIFEST, &json)]));
        refused(
            &late,
            "the archive begins with database/ipv6wgm.db, not manifest.json",
        );
        refused(&gz(&tar_of(&[])), "the archive is empty");
        let dir = raw(MANIFEST, EntryType::Directory, b"");
        refused(
            &gz(&tar_of(&[dir])),
            "first member, manifest.json, is a directory",
        );
        refused(&gz(b"not a tar at all"), "the archive is damaged");
        refused(b"not even gzip", "the archive is damaged");
    }

    #[test]
    fn refuses_a_bad_manifest() {
        let with = |json: &[u8]| gz(&tar_of(&[file(MANIFEST, json), file(DATABASE, DB)]));
        refused(
            &with(b"{\"format\": 1"),
            "manifest.json is not a valid manifest",
        );
        let good =
            String::from_utf8(manifest_json(Kind::Full, &[(DATABASE, DB)])).unwrap_or_default();
        for (from, to, says) in [
            (
                "\"format\":1",
                "\"format\":2",
                "format 2 is not one this version reads",
            ),
            (
                "\"type\":\"full\"",
                "\"type\":\"all\"",
                "not a valid manifest",
            ),
            (
                "\"type\":\"full\"",
                "\"type\":\"config\"",
                "which a config backup does not hold",
            ),
            (
                "\"hostname\"",
                "\"extra\":1,\"hostname\"",
                "unknown field `extra`",
            ),
            ("2025-12-03T00:00:00Z", "yesterday", "is not a time"),
            (
                "database/ipv6wgm.db",
                "../ipv6wgm.db",
                "lists ../ipv6wgm.db: not a name",
            ),
        ] {
            assert!(good.contains(from), "{from}");
            refused(&with(good.replace(from, to).as_bytes()), says);
        }
        let sha = hex(&Hash::hash(DB));
        refused(
            &with(good.replace(&sha, &sha.to_uppercase()).as_bytes()),
            "not 64 lowercase hex digits",
        );
        let big = vec![b' '; MANIFEST_MAX as usize + 1];
        refused(&with(&big), "manifest.json is larger than 64.0 KiB");
    }

    #[test]
    fn manifest_check_caps_members_and_sizes() {
        let m = |members: Vec<(&str, u64)>| Manifest {
            format: FORMAT,
            app_version: "0.1.0".into(),
            schema_version: 1,
            kind: Kind::Full,
            hostname: "h".into(),
            created_at: 0,
            members: members
                .into_iter()
                .map(|(name, size)| ManifestMember {
                    name: name.into(),
                    size,
                    sha256: "0".repeat(64),
                })
                .collect(),
        };
        let limits = Limits {
            max_members: 2,
            max_member_bytes: 100,
            max_total_bytes: 150,
        };
        assert_eq!(
            m(vec![(DATABASE, 100), (CONFIG, 50)]).check(&limits),
            Ok(())
        );
        let err = |members| m(members).check(&limits).expect_err("refused");
        assert!(err(vec![(DATABASE, 1), (CONFIG, 1), (JWT_KEY, 1)]).contains("at most 2"));
        assert!(err(vec![(DATABASE, 101)]).contains("more than the 100 bytes a member may have"));
        assert!(err(vec![(DATABASE, 100), (CONFIG, 51)]).contains("add up to 151 bytes"));
        assert!(err(vec![(DATABASE, 1), (DATABASE, 1)]).contains("lists database/ipv6wgm.db twice"));
        let mut unknown = m(vec![]);
        unknown.kind = Kind::Unknown;
        assert!(unknown
            .check(&limits)
            .expect_err("refused")
            .contains("not a backup type"));
    }

    #[test]
    fn refuses_a_truncated_archive_at_every_cut() {
        let (archive, _) = archive_of(Kind::Full, &full_items());
        let n = archive.len();
        for cut in [0, 1, 10, 100, n / 4, n / 2, n - 100, n - 8, n - 4, n - 1] {
            let msg = refused(&archive[..cut], "");
            assert!(
                msg.contains("cut short") || msg.contains("damaged") || msg.contains("empty"),
                "cut at {cut}: {msg}"
            );
        }
        // A tar without its end marker, in a sound gzip stream.
        let json = manifest_json(Kind::Full, &[(DATABASE, DB)]);
        let mut t = tar_of(&[file(MANIFEST, &json), file(DATABASE, DB)]);
        t.truncate(t.len() - 1024);
        refused(&gz(&t), "no end marker");
        // Cut inside the data of a member, in a sound gzip stream.
        t.truncate(t.len() - 512 + 10);
        refused(&gz(&t), "cut short");
    }

    #[test]
    fn refuses_a_corrupt_header() {
        let (archive, _) = archive_of(Kind::Full, &full_items());
        let mut t = gunzip(&archive);
        t[0] ^= 0x20; // the manifest's name, under an unchanged checksum
        refused(&gz(&t), "checksum mismatch");
        let mut bad_gzip = archive.clone();
        let at = bad_gzip.len() / 2;
        bad_gzip[at] ^= 0xff;
        refused(&bad_gzip, "");
        let mut bad_crc = archive;
        let at = bad_crc.len() - 6;
        bad_crc[at] ^= 1;
        refused(&bad_crc, "damaged");
    }

    #[test]
    fn refuses_anything_after_the_end() {
        let (archive, _) = archive_of(Kind::Full, &full_items());
        let mut garbage = archive.clone();
        garbage.extend_from_slice(b"hello");
        refused(&garbage, "data after the end of the compressed archive");
        let mut second = archive.clone();
        second.extend_from_slice(&gz(b"a second gzip member"));
        refused(&second, "data after the end of the compressed archive");

        // Inside the gzip stream: an entry hidden behind the end marker, a blob, padding.
        let json = manifest_json(Kind::Full, &[(DATABASE, DB)]);
        let t = tar_of(&[file(MANIFEST, &json), file(DATABASE, DB)]);
        let mut hidden = t.clone();
        hidden.extend_from_slice(&tar_of(&[file(CONFIG, b"x")]));
        refused(&gz(&hidden), "data after its end marker");
        let mut padded = t.clone();
        padded.extend_from_slice(&[0; 8 * 1024]);
        let dir = tempfile::tempdir().expect("tmp");
        read(gz(&padded).as_slice(), &stage_in(&dir), &Limits::default()).expect("GNU padding");
        padded.extend_from_slice(&[0; 16 * 1024]);
        refused(&gz(&padded), "more than 20.0 KiB of padding");
        let mut one_block = t;
        one_block.truncate(one_block.len() - 512);
        refused(&gz(&one_block), "end marker is damaged");
    }

    /// Input that counts what is taken from it.
    struct Counted<'a> {
        data: &'a [u8],
        taken: usize,
    }

    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data[self.taken..].len().min(buf.len());
            buf[..n].copy_from_slice(&self.data[self.taken..self.taken + n]);
            self.taken += n;
            Ok(n)
        }
    }

    /// Raw deflate of `input` continuing `c`'s stream, flushed to a byte boundary.
    fn deflate_step(
        c: &mut flate2::Compress,
        input: &[u8],
        flush: flate2::FlushCompress,
    ) -> Vec<u8> {
        let start = c.total_in();
        let mut out = Vec::new();
        loop {
            let done = (c.total_in() - start) as usize;
            out.reserve(64 * 1024);
            let status = c
                .compress_vec(&input[done..], &mut out, flush)
                .expect("deflate");
            let all_in = (c.total_in() - start) as usize == input.len();
            if status == flate2::Status::StreamEnd || (all_in && out.len() < out.capacity()) {
                return out;
            }
        }
    }

    /// A gzip stream of `head`, then `zeros` zero bytes, then `tail`, that is about a
    /// thousandth of its inflated size: a 1 MiB chunk of zeros deflated once, with the
    /// window already all zeros, is valid anywhere after such a window and is repeated.
    fn bomb(head: &[u8], zeros: u64, tail: &[u8]) -> Vec<u8> {
        use flate2::FlushCompress::{Finish, Sync};
        const MIB: usize = 1 << 20;
        assert_eq!(zeros % MIB as u64, 0);
        let chunks = zeros / MIB as u64;
        assert!(chunks >= 2);
        let chunk = vec![0u8; MIB];
        let mut c = flate2::Compress::new(Compression::best(), false);
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        out.extend(deflate_step(&mut c, head, Sync));
        out.extend(deflate_step(&mut c, &chunk, Sync));
        let steady = deflate_step(&mut c, &chunk, Sync);
        for _ in 1..chunks {
            out.extend_from_slice(&steady);
        }
        out.extend(deflate_step(&mut c, tail, Finish));
        let mut crc = flate2::Crc::new();
        crc.update(head);
        for _ in 0..chunks {
            crc.update(&chunk);
        }
        crc.update(tail);
        let len = head.len() as u64 + zeros + tail.len() as u64;
        out.extend(crc.sum().to_le_bytes());
        out.extend((len as u32).to_le_bytes());
        out
    }

    #[test]
    fn bomb_helper_makes_a_valid_gzip_stream() {
        let b = bomb(b"head", 4 << 20, b"tail");
        let all = gunzip(&b);
        assert_eq!(all.len(), 8 + (4 << 20));
        assert!(all.starts_with(b"head") && all.ends_with(b"tail"));
        assert!(all[4..all.len() - 4].iter().all(|&x| x == 0));
    }

    /// Refused as Invalid having taken at most two buffers of input (128 KiB) from a bomb of
    /// about 1 MB.
    fn refused_early(bomb: &[u8], limits: &Limits, expect: &str) {
        let dir = tempfile::tempdir().expect("tmp");
        let stage = stage_in(&dir);
        let mut input = Counted {
            data: bomb,
            taken: 0,
        };
        match read(&mut input, &stage, limits) {
            Err(ArchiveError::Invalid(msg)) => assert!(msg.contains(expect), "{msg}"),
            other => panic!("expected Invalid({expect}), got {other:?}"),
        }
        assert!(!stage.exists());
        assert!(bomb.len() > 8 * COPY_BUF);
        assert!(
            input.taken <= 2 * COPY_BUF,
            "read {} of {}",
            input.taken,
            bomb.len()
        );
    }

    const GB_ZEROS: u64 = 1000 << 20;

    #[test]
    fn refuses_a_gigabyte_bomb_before_inflating_it() {
        // A member claiming, and inflating to, ~1 GB: the manifest that lists it honestly is
        // refused for its size; one that lies is refused at the member's header.
        let big_member = |listed_size: u64| {
            let mut m: Manifest =
                serde_json::from_slice(&manifest_json(Kind::Full, &[(DATABASE, b"")])).expect("m");
            m.members[0].size = listed_size;
            let json = serde_json::to_vec(&m).expect("json");
            let mut t = tar_of(&[file(MANIFEST, &json)]);
            t.truncate(t.len() - 1024);
            let mut h = raw(DATABASE, EntryType::Regular, b"");
            h.size = Some(GB_ZEROS);
            t.extend_from_slice(raw_header(&h).as_bytes());
            bomb(&t, GB_ZEROS, &[0; 1024])
        };
        let b = big_member(GB_ZEROS);
        assert!(b.len() < 2 << 20, "the bomb is small on disk: {}", b.len());
        refused_early(
            &b,
            &Limits::default(),
            "1000.0 MiB, more than the 256.0 MiB a member",
        );
        refused_early(
            &big_member(1000),
            &Limits::default(),
            "1000.0 MiB in the archive, but the manifest says 1000 bytes",
        );
    }

    #[test]
    fn refuses_a_bomb_of_padding_after_the_end_marker() {
        let json = manifest_json(Kind::Full, &[(DATABASE, DB)]);
        let t = tar_of(&[file(MANIFEST, &json), file(DATABASE, DB)]);
        refused_early(
            &bomb(&t, GB_ZEROS, b""),
            &Limits::default(),
            "of padding after its end",
        );
    }

    #[test]
    fn inflated_bytes_stop_at_the_cap() {
        let b = bomb(b"", GB_ZEROS, b"");
        let trouble = Rc::new(Trouble::default());
        let mut capped = Cap {
            inner: flate2::read::GzDecoder::new(b.as_slice()),
            left: 8 << 20,
            pulled: 0,
            trouble: trouble.clone(),
        };
        let e = io::copy(&mut capped, &mut io::sink()).expect_err("capped");
        assert!(trouble.inflated.get());
        assert!(capped.pulled <= 8 << 20);
        let msg = trouble.classify(e, 8 << 20).to_string();
        assert_eq!(
            msg,
            "the archive inflates to more than 8.0 MiB, more than a backup may hold"
        );
        // A stream of exactly the cap passes.
        let exact = gz(&[7; 1000]);
        let mut capped = Cap {
            inner: flate2::read::GzDecoder::new(exact.as_slice()),
            left: 1000,
            pulled: 0,
            trouble: Rc::new(Trouble::default()),
        };
        assert_eq!(io::copy(&mut capped, &mut io::sink()).expect("exact"), 1000);
    }

    #[test]
    fn a_failing_input_is_io_and_an_existing_stage_is_left_alone() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::ConnectionReset, "peer gone"));
                }
                let n = self.0.min(buf.len()).min(10);
                buf[..n].copy_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff][..n]);
                self.0 -= n;
                Ok(n)
            }
        }
        let dir = tempfile::tempdir().expect("tmp");
        let stage = stage_in(&dir);
        let e = read(Failing(10), &stage, &Limits::default()).expect_err("fails");
        assert!(
            matches!(e, ArchiveError::Io(ref io) if io.kind() == io::ErrorKind::ConnectionReset)
        );
        assert!(!stage.exists());

        fs::create_dir(&stage).expect("mkdir");
        fs::write(stage.join("mine"), b"keep").expect("write");
        let (archive, _) = archive_of(Kind::Full, &full_items());
        let e = read(archive.as_slice(), &stage, &Limits::default()).expect_err("exists");
        assert!(matches!(e, ArchiveError::Io(ref io) if io.kind() == io::ErrorKind::AlreadyExists));
        assert_eq!(fs::read(stage.join("mine")).expect("kept"), b"keep");
    }

    /// Runs `cmd` and returns its stdout; it must succeed and say nothing on stderr (a
    /// warning of tar's about the archive fails the test).
    fn run(cmd: &mut std::process::Command) -> String {
        let out = cmd.output().expect("run (GNU tar and python3 are needed)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{cmd:?}: {stderr}"
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn reads_with_gnu_tar_and_python() {
        let items = full_items();
        let (archive, written) = archive_of(Kind::Full, &items);
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("backup.tar.gz");
        fs::write(&path, &archive).expect("write");

        let listing = run(std::process::Command::new("tar")
            .args(["--numeric-owner", "--utc", "-tzvf"])
            .arg(&path));
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 4, "{listing}");
        let names = [MANIFEST, DATABASE, CONFIG, JWT_KEY];
        let sizes = std::iter::once(serde_json::to_vec_pretty(&written).expect("json").len())
            .chain(items.iter().map(|(_, d)| d.len()));
        for ((line, name), size) in lines.iter().zip(names).zip(sizes) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                fields,
                [
                    "-rw-------",
                    "0/0",
                    &size.to_string(),
                    "2025-12-03",
                    "00:00",
                    name
                ],
                "{line}"
            );
        }
        // Extracted by GNU tar: the same bytes.
        let out = dir.path().join("x");
        fs::create_dir(&out).expect("mkdir");
        run(std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&path)
            .arg("-C")
            .arg(&out));
        for (name, data) in &items {
            assert_eq!(
                &fs::read(out.join(name)).expect("extracted"),
                data,
                "{name}"
            );
        }

        // Python's tarfile checks every header's checksum and reads the format it is in.
        let script = "import sys, tarfile\n\
            t = tarfile.open(sys.argv[1], 'r:gz')\n\
            for m in t.getmembers():\n\
            \x20   data = t.extractfile(m).read()\n\
            \x20   assert len(data) == m.size\n\
            \x20   print(m.name, m.size, oct(m.mode), m.uid, m.gid, repr(m.uname), m.mtime, m.isreg())\n";
        let listing = run(std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path));
        let expected: Vec<String> = lines
            .iter()
            .zip(names)
            .map(|(line, name)| {
                let size = line.split_whitespace().nth(2).unwrap_or_default();
                format!("{name} {size} 0o600 0 0 '' {T0} True")
            })
            .collect();
        assert_eq!(listing.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn members_of_each_kind_and_shown_names() {
        for k in Kind::ALL {
            let of = members_of(k);
            assert_eq!(of.contains(&DATABASE), k.has_database(), "{k}");
            assert_eq!(of.contains(&CONFIG), k.has_config(), "{k}");
            assert_eq!(of.contains(&JWT_KEY), k.has_files(), "{k}");
        }
        assert_eq!(shown(b"a\nb"), "a?b");
        assert_eq!(shown(&[b'x'; 150]).chars().count(), 101);
    }

    /// Time and memory for a 50 MiB member, for the numbers of the issue (the source is
    /// written in 1 MiB chunks, so the peak RSS is the archive code's):
    /// `/usr/bin/time -v target/debug/deps/ipv6wgm-<hash> backup::archive::tests::fifty_mib
    /// --ignored --exact --nocapture`.
    #[test]
    #[ignore]
    fn fifty_mib() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("db");
        let mut f = io::BufWriter::new(File::create(&db).expect("create"));
        for seed in 0..50 {
            f.write_all(&pattern(1 << 20, seed)).expect("fill");
        }
        f.into_inner().expect("flush").sync_all().expect("sync");
        let members = [Member {
            name: DATABASE,
            path: &db,
        }];
        let out_path = dir.path().join("backup.tar.gz");
        let t = std::time::Instant::now();
        let out = File::create(&out_path).expect("create");
        write(io::BufWriter::new(out), head(Kind::Database), &members).expect("write");
        let wrote = t.elapsed();
        let t = std::time::Instant::now();
        let input = io::BufReader::new(File::open(&out_path).expect("open"));
        read(input, &dir.path().join("stage"), &Limits::default()).expect("read");
        let size = fs::metadata(&out_path).expect("meta").len();
        println!(
            "50 MiB member: write {wrote:?}, read {:?}, archive {size} bytes",
            t.elapsed()
        );
    }
}
