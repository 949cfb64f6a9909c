//! Backups: consistent `.tar.gz` archives of the router's state, restored onto the same or a
//! new router, on demand or on a schedule, optionally encrypted.
//!
//! An archive is a gzipped tar whose first member is `manifest.json` (format version, app
//! and schema versions, type, hostname, creation time, and each member's size and SHA-256),
//! then the members of its type:
//!
//! | member                | what                                              | in types          |
//! |-----------------------|---------------------------------------------------|-------------------|
//! | `database/ipv6wgm.db` | a consistent snapshot of the database (`VACUUM INTO`) | full, database |
//! | `config/ipv6wgm.toml` | the configuration file in use, when there is one  | full, config      |
//! | `files/jwt.key`       | the token signing key                             | full, files       |
//!
//! With a passphrase the whole `.tar.gz` is encrypted in the age format (scrypt recipient).
//!
//! - [`archive`]: writing an archive, and reading one back into a staging directory with
//!   every check (manifest first, names from the table above only, regular files only, size
//!   and count caps, every checksum) — never the tar crate's `unpack`.
//! - [`crypt`]: the age v1 format with one scrypt (passphrase) stanza, streamed in 64 KiB
//!   chunks; `age -d` reads what it writes and `age -p` files restore (work factor: see there).
//! - [`schedule`]: when scheduled backups are due (pure, time as a parameter), and which
//!   backups retention removes.

pub mod crypt;
