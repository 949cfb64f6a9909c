//! The tar format of backup archives: POSIX ustar headers (`tar --format=ustar`), the
//! subset a backup needs, written and parsed here instead of by the `tar` crate (its
//! generic builder and reader cost ~20–30 KB on mipsel; this is pure code over bytes).
//!
//! - **Written** ([`header`]): a regular file (type `0`), mode 0600, uid/gid 0, empty user
//!   and group names, magic `ustar\0` version `00`; numbers in octal, NUL-terminated (the
//!   checksum as six digits, NUL, space), as GNU tar and bsdtar write them. Names of at most
//!   100 bytes (no prefix), sizes below 8 GiB: no GNU or PAX extension is ever needed.
//! - **Parsed** ([`parse`]): an all-zero block is an end marker; any other block must have
//!   the unsigned checksum tar writes, and a size of plain octal digits (a GNU base-256
//!   number or anything not octal is refused, not guessed at). The name is what an
//!   extracting tar would use: `prefix/name` when the magic is `ustar\0` and the prefix is
//!   not empty (GNU tar, bsdtar, Python and the `tar` crate all join it so); a prefix in any
//!   other header is refused, because tar programs disagree on it. The type flag is
//!   returned as it is: [`not_regular`] names every type but a regular file (`0` or NUL) —
//!   links, devices, fifos, directories, GNU `L`/`K`, PAX `x`/`g`, … — for the caller to
//!   refuse, so that an extension record never renames the entry after it.
//!
//! The stream around the headers (data padded to 512 bytes, two zero blocks at the end) is
//! `archive`'s: see there.

use std::fmt;
use std::ops::Range;

/// A tar block: a header, or a unit of data and padding.
pub const BLOCK: usize = 512;
/// The largest size [`header`] writes: eleven octal digits.
pub const MAX_SIZE: u64 = 0o77_777_777_777;

const NAME: Range<usize> = 0..100;
const MODE: Range<usize> = 100..108;
const UID: Range<usize> = 108..116;
const GID: Range<usize> = 116..124;
const SIZE: Range<usize> = 124..136;
const MTIME: Range<usize> = 136..148;
const CHKSUM: Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const MAGIC: Range<usize> = 257..263;
const VERSION: Range<usize> = 263..265;
const DEVMAJOR: Range<usize> = 329..337;
const DEVMINOR: Range<usize> = 337..345;
const PREFIX: Range<usize> = 345..500;

const USTAR_MAGIC: &[u8; 6] = b"ustar\0";

/// A regular file's type flag, as written (`\0` is read as one too).
pub const REGULAR: u8 = b'0';

/// The header of a regular file `name` of `size` bytes, modified at `mtime` (Unix seconds;
/// past year 2242 it is clamped). Refused: an empty name or one over 100 bytes, a size over
/// [`MAX_SIZE`].
pub fn header(name: &str, size: u64, mtime: u64) -> Result<[u8; BLOCK], &'static str> {
    if name.is_empty() || name.len() > NAME.len() {
        return Err("a member's name must be 1 to 100 bytes");
    }
    if size > MAX_SIZE {
        return Err("a member must be smaller than 8 GiB");
    }
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut b[MODE], 0o600);
    octal(&mut b[UID], 0);
    octal(&mut b[GID], 0);
    octal(&mut b[SIZE], size);
    octal(&mut b[MTIME], mtime.min(MAX_SIZE));
    b[TYPEFLAG] = REGULAR;
    b[MAGIC].copy_from_slice(USTAR_MAGIC);
    b[VERSION].copy_from_slice(b"00");
    octal(&mut b[DEVMAJOR], 0);
    octal(&mut b[DEVMINOR], 0);
    let sum = u64::from(checksum(&b));
    octal(&mut b[CHKSUM.start..CHKSUM.end - 1], sum);
    b[CHKSUM.end - 1] = b' ';
    Ok(b)
}

/// Zero bytes after `size` bytes of data, to the end of their last block.
pub fn padding(size: u64) -> usize {
    // The remainder is below 512: the cast cannot truncate.
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// `value` in octal digits filling `field` but its last byte, a NUL (callers keep `value`
/// within the digits).
fn octal(field: &mut [u8], value: u64) {
    let Some((nul, digits)) = field.split_last_mut() else {
        return;
    };
    *nul = 0;
    let mut v = value;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
}

/// The sum of the header's bytes, its checksum field counted as eight spaces.
fn checksum(b: &[u8; BLOCK]) -> u32 {
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let field: u32 = b[CHKSUM].iter().map(|&x| u32::from(x)).sum();
    sum - field + 8 * u32::from(b' ')
}

/// A parsed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// All zeros: the end marker.
    End,
    Entry(Header),
}

/// An entry's header, as far as a backup cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name an extracting tar would use (raw bytes, unchecked: the caller's allowlist
    /// decides).
    pub name: Vec<u8>,
    /// Bytes of data after the header (then padding to a block).
    pub size: u64,
    /// The type flag, as it is.
    pub kind: u8,
}

/// Why a block is not a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    Checksum,
    /// A number field (named) that is not plain octal digits.
    Number(&'static str),
    /// A number field (named) in GNU base-256.
    Base256(&'static str),
    /// A name prefix in a header that is not ustar.
    Prefix,
}

impl fmt::Display for Bad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bad::Checksum => f.write_str("archive header checksum mismatch"),
            Bad::Number(field) => write!(f, "a header's {field} is not an octal number"),
            Bad::Base256(field) => {
                write!(
                    f,
                    "a header's {field} is in base-256, which a backup never has"
                )
            }
            Bad::Prefix => f.write_str("a name prefix in a header that is not ustar"),
        }
    }
}

/// The block `b`: an end marker, or a header with a sound checksum and size.
pub fn parse(b: &[u8; BLOCK]) -> Result<Block, Bad> {
    if b.iter().all(|&x| x == 0) {
        return Ok(Block::End);
    }
    let stored = number(&b[CHKSUM]).ok_or(Bad::Number("checksum"))?;
    if stored != u64::from(checksum(b)) {
        return Err(Bad::Checksum);
    }
    if b[SIZE.start] & 0x80 != 0 {
        return Err(Bad::Base256("size"));
    }
    let size = number(&b[SIZE]).ok_or(Bad::Number("size"))?;
    Ok(Block::Entry(Header {
        name: name(b)?,
        size,
        kind: b[TYPEFLAG],
    }))
}

/// The name field, after the prefix and a `/` when there is one.
fn name(b: &[u8; BLOCK]) -> Result<Vec<u8>, Bad> {
    let prefix = until_nul(&b[PREFIX]);
    let name = until_nul(&b[NAME]);
    if prefix.is_empty() {
        return Ok(name.to_vec());
    }
    if &b[MAGIC] != USTAR_MAGIC {
        return Err(Bad::Prefix);
    }
    Ok([prefix, b"/", name].concat())
}

fn until_nul(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&x| x == 0).unwrap_or(field.len());
    &field[..end]
}

/// An octal number field: optional leading spaces, at least one octal digit, then only
/// NULs and spaces.
fn number(field: &[u8]) -> Option<u64> {
    let start = field.iter().position(|&x| x != b' ')?;
    let digits = &field[start..];
    let len = digits
        .iter()
        .position(|x| !(b'0'..=b'7').contains(x))
        .unwrap_or(digits.len());
    let (digits, rest) = digits.split_at(len);
    if digits.is_empty() || !rest.iter().all(|&x| x == 0 || x == b' ') {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

/// What an entry of type flag `kind` is when it is not a regular file (`None` for one).
pub fn not_regular(kind: u8) -> Option<&'static str> {
    Some(match kind {
        0 | REGULAR => return None,
        b'1' => "a hard link",
        b'2' => "a symbolic link",
        b'3' => "a character device",
        b'4' => "a block device",
        b'5' => "a directory",
        b'6' => "a named pipe (fifo)",
        b'7' => "a contiguous file",
        b'L' => "a GNU long-name record",
        b'K' => "a GNU long-link record",
        b'S' => "a sparse file",
        b'x' => "a PAX extended header",
        b'g' => "a PAX global header",
        _ => "an entry of an unknown kind",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_764_720_000;

    fn entry(b: &[u8; BLOCK]) -> Header {
        match parse(b) {
            Ok(Block::Entry(h)) => h,
            other => panic!("expected an entry, got {other:?}"),
        }
    }

    /// `b` with its checksum recomputed the way tar does (after an edit of a field).
    fn resum(mut b: [u8; BLOCK]) -> [u8; BLOCK] {
        let sum = u64::from(checksum(&b));
        octal(&mut b[CHKSUM.start..CHKSUM.end - 1], sum);
        b
    }

    #[test]
    fn header_fields_are_those_gnu_tar_writes() {
        let b = header("database/ipv6wgm.db", 1234, T0).expect("header");
        assert_eq!(&b[..20], b"database/ipv6wgm.db\0");
        assert_eq!(&b[MODE], b"0000600\0");
        assert_eq!((&b[UID], &b[GID]), (&b"0000000\0"[..], &b"0000000\0"[..]));
        assert_eq!(&b[SIZE], b"00000002322\0");
        assert_eq!(&b[MTIME], format!("{T0:011o}\0").as_bytes());
        assert_eq!(b[TYPEFLAG], b'0');
        assert_eq!(&b[MAGIC], b"ustar\0");
        assert_eq!(&b[VERSION], b"00");
        assert!(b[265..329].iter().all(|&x| x == 0), "empty uname and gname");
        assert!(b[PREFIX].iter().all(|&x| x == 0));
        assert_eq!(&b[CHKSUM][6..], b"\0 ");
        // The checksum, computed independently: every byte, the field as spaces.
        let mut spaces = b;
        spaces[CHKSUM].fill(b' ');
        let sum: u32 = spaces.iter().map(|&x| u32::from(x)).sum();
        assert_eq!(&b[CHKSUM][..6], format!("{sum:06o}").as_bytes());
    }

    #[test]
    fn round_trip() {
        for (name, size, mtime) in [
            ("manifest.json", 0, 0),
            ("files/jwt.key", 32, T0),
            ("a", MAX_SIZE, u64::MAX),
            (&*"n".repeat(100), 512, 1),
        ] {
            let b = header(name, size, mtime).expect("header");
            let h = entry(&b);
            assert_eq!((h.name.as_slice(), h.size), (name.as_bytes(), size));
            assert_eq!(h.kind, REGULAR);
            assert_eq!(not_regular(h.kind), None);
        }
        let clamped = header("a", 0, u64::MAX).expect("header");
        assert_eq!(&clamped[MTIME], b"77777777777\0");
    }

    #[test]
    fn header_refuses_what_ustar_cannot_say() {
        assert!(header("", 0, 0).is_err());
        assert!(header(&"n".repeat(101), 0, 0).is_err());
        assert!(header("a", MAX_SIZE + 1, 0).is_err());
    }

    #[test]
    fn padding_to_a_block() {
        assert_eq!([0, 1, 511, 512, 513].map(padding), [0, 511, 1, 0, 511],);
    }

    #[test]
    fn zero_block_is_the_end_marker() {
        assert_eq!(parse(&[0; BLOCK]), Ok(Block::End));
        // One non-zero byte anywhere makes it a header, checked as one.
        let mut b = [0; BLOCK];
        b[511] = 1;
        assert_eq!(parse(&b), Err(Bad::Number("checksum")));
    }

    #[test]
    fn checksum_mismatch_is_refused() {
        let good = header("manifest.json", 10, T0).expect("header");
        for at in [0, 100, 124, 156, 257, 300, 511] {
            let mut b = good;
            b[at] ^= 0x20;
            assert_eq!(parse(&b), Err(Bad::Checksum), "byte {at}");
        }
        // The signed-byte sum of some old tars: refused, never guessed at.
        let mut b = good;
        b[300] = 0xff;
        let signed: i64 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if CHKSUM.contains(&i) {
                    32
                } else {
                    i64::from(x as i8)
                }
            })
            .sum();
        octal(&mut b[CHKSUM.start..CHKSUM.end - 1], signed as u64);
        assert_eq!(parse(&b), Err(Bad::Checksum));
        assert_eq!(
            Bad::Checksum.to_string(),
            "archive header checksum mismatch"
        );
    }

    #[test]
    fn numbers_are_strictly_octal() {
        let spelled = |field: &[u8]| {
            let mut b = header("a", 0, 0).expect("header");
            b[SIZE].fill(0);
            b[SIZE][..field.len()].copy_from_slice(field);
            parse(&resum(b)).map(|x| match x {
                Block::Entry(h) => h.size,
                Block::End => panic!("end"),
            })
        };
        // How tars spell 493: GNU/bsdtar, tar-rs, old tars (leading spaces, space end), full.
        for ok in [
            &b"00000000755\0"[..],
            b"755\0",
            b"   755 \0",
            b"000000000755",
            b"755 ",
        ] {
            assert_eq!(spelled(ok), Ok(0o755), "{ok:?}");
        }
        for bad in [
            &b""[..],
            b"        ",
            b"00000000758\0",
            b"0x1ed\0",
            b"-1\0",
            b"7 5\0",
            b"755\0junk",
        ] {
            assert_eq!(spelled(bad), Err(Bad::Number("size")), "{bad:?}");
        }
        // GNU base-256 (a size of 8 GiB and more): refused, never decoded.
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 1;
        assert_eq!(spelled(&b256), Err(Bad::Base256("size")));
        let mut b = header("a", 0, 0).expect("header");
        b[CHKSUM].copy_from_slice(b"12345x\0 ");
        assert_eq!(parse(&b), Err(Bad::Number("checksum")));
    }

    #[test]
    fn prefix_is_joined_as_tar_joins_it() {
        let with_prefix = |prefix: &[u8], magic: &[u8; 8]| {
            let mut b = header("database/ipv6wgm.db", 1, 0).expect("header");
            b[PREFIX.start..PREFIX.start + prefix.len()].copy_from_slice(prefix);
            b[MAGIC.start..VERSION.end].copy_from_slice(magic);
            parse(&resum(b))
        };
        let ustar = b"ustar\x0000";
        let name = |r: Result<Block, Bad>| match r {
            Ok(Block::Entry(h)) => Ok(h.name),
            Ok(Block::End) => panic!("end"),
            Err(e) => Err(e),
        };
        assert_eq!(
            name(with_prefix(b"..", ustar)),
            Ok(b"../database/ipv6wgm.db".to_vec())
        );
        assert_eq!(
            name(with_prefix(&[b'p'; 155], ustar)),
            Ok([&[b'p'; 155][..], b"/database/ipv6wgm.db"].concat())
        );
        // GNU tar joins whatever the version field says; so does this.
        assert_eq!(
            name(with_prefix(b"x", b"ustar\0  ")),
            Ok(b"x/database/ipv6wgm.db".to_vec())
        );
        // GNU format keeps times there (and Python would join them): refused.
        assert_eq!(name(with_prefix(b"x", b"ustar  \0")), Err(Bad::Prefix));
        assert_eq!(name(with_prefix(b"x", &[0; 8])), Err(Bad::Prefix));
        // No prefix: the name field up to its first NUL, whatever the magic.
        assert_eq!(
            name(with_prefix(b"", b"ustar  \0")),
            Ok(b"database/ipv6wgm.db".to_vec())
        );
        let mut full = header(&"n".repeat(100), 0, 0).expect("header");
        full[10] = 0;
        assert_eq!(name(parse(&resum(full))), Ok(b"nnnnnnnnnn".to_vec()));
    }

    #[test]
    fn every_type_but_a_regular_file_is_named() {
        let kind_of = |flag: u8| {
            let mut b = header("database/ipv6wgm.db", 0, 0).expect("header");
            b[TYPEFLAG] = flag;
            not_regular(entry(&resum(b)).kind)
        };
        assert_eq!(kind_of(b'0'), None);
        assert_eq!(kind_of(0), None);
        for (flag, what) in [
            (b'1', "a hard link"),
            (b'2', "a symbolic link"),
            (b'3', "a character device"),
            (b'4', "a block device"),
            (b'5', "a directory"),
            (b'6', "a named pipe (fifo)"),
            (b'7', "a contiguous file"),
            (b'L', "a GNU long-name record"),
            (b'K', "a GNU long-link record"),
            (b'S', "a sparse file"),
            (b'x', "a PAX extended header"),
            (b'g', "a PAX global header"),
            (b'X', "an entry of an unknown kind"),
            (b'V', "an entry of an unknown kind"),
            (b'Z', "an entry of an unknown kind"),
            (0xff, "an entry of an unknown kind"),
        ] {
            assert_eq!(kind_of(flag), Some(what), "{}", flag as char);
        }
    }

    #[test]
    fn parses_what_the_tar_crate_writes() {
        // An independent writer (tar-rs, GNU and ustar headers), as the hostile tests use.
        for mut h in [tar::Header::new_gnu(), tar::Header::new_ustar()] {
            h.set_path("config/ipv6wgm.toml").expect("path");
            h.set_size(0o1234567);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_cksum();
            let mut b = [0u8; BLOCK];
            b.copy_from_slice(h.as_bytes());
            let parsed = entry(&b);
            assert_eq!(parsed.name, b"config/ipv6wgm.toml");
            assert_eq!(parsed.size, 0o1234567);
            assert_eq!(not_regular(parsed.kind), Some("a symbolic link"));
        }
    }
}
