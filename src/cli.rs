//! Command line. Hand-rolled: a handful of flags does not earn an argument-parser crate on a
//! router with 8 MiB of flash.

use crate::config::Overrides;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve,
    /// Reset a user's password with the service stopped (or running), e.g. over SSH.
    ResetPassword {
        username: String,
        from_stdin: bool,
    },
    /// WireGuard keys, like `wg genkey` / `wg pubkey` / `wg genpsk`.
    GenKey,
    PubKey,
    GenPsk,
    /// An in-memory WireGuard handshake and data exchange: does the crypto work on this CPU?
    SelfTest,
    /// Backups over SSH, with the service stopped (it owns the backup directory while it runs).
    Backup(BackupCommand),
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BackupCommand {
    Create {
        name: String,
        kind: String,
    },
    List,
    Verify {
        file: PathBuf,
    },
    Restore {
        file: PathBuf,
        keep_local_settings: bool,
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Debug, PartialEq)]
pub struct Cli {
    pub command: Command,
    pub overrides: Overrides,
}

pub const USAGE: &str = "\
ipv6wgm — IPv6-over-WireGuard access concentrator (REST API on /api/v1)

USAGE:
    ipv6wgm [serve] [OPTIONS]                      run the service (default)
    ipv6wgm reset-password USER [--password-stdin] [OPTIONS]
                                                   set a new password for USER (printed,
                                                   or read from stdin), re-enable the account
                                                   and sign out its sessions
    ipv6wgm backup create [--name NAME] [--type TYPE]
                                                   make a backup now (TYPE: full, database,
                                                   config or files; default full), with the
                                                   service stopped (else use the API)
    ipv6wgm backup list                            the backups, newest first
    ipv6wgm backup verify FILE                     check an archive (manifest, names, types,
                                                   sizes, checksums) without unpacking it
    ipv6wgm backup restore FILE [--keep-local-settings] [--passphrase-file F]
                                                   restore an archive, with the service stopped
                                                   (else use the API); keep this host's config
                                                   file, token key, endpoints and BGP local
                                                   addresses with --keep-local-settings
    ipv6wgm genkey | pubkey | genpsk               WireGuard keys, as `wg genkey` etc.
                                                   (pubkey reads a private key on stdin)
    ipv6wgm selftest                               a WireGuard handshake and data exchange in
                                                   memory: checks the crypto on this CPU
    ipv6wgm --help | --version

OPTIONS:
    --listen ADDR       API address, e.g. [::]:8000, 127.0.0.1:8000 or 8000  [env IPV6WGM_LISTEN]
    --data-dir DIR      database, keys, initial admin password (default ./data)  [env IPV6WGM_DATA_DIR]
    --config FILE       TOML configuration (see config/ipv6wgm.toml)  [env IPV6WGM_CONFIG]
    --log FILTER        log filter: error|warn|info|debug|trace  [env IPV6WGM_LOG]
    --log-dir DIR       high-churn files (log store, log exports); RAM on routers
                        (default DATA_DIR/run)  [env IPV6WGM_LOG_DIR]
    --public-host HOST  name/address VPN clients use to reach this host  [env IPV6WGM_PUBLIC_HOST]
    --tls-cert FILE     PEM certificate chain for HTTPS (build feature `tls`)  [env IPV6WGM_TLS_CERT]
    --tls-key FILE      PEM private key for HTTPS  [env IPV6WGM_TLS_KEY]

ENVIRONMENT:
    IPV6WGM_ADMIN_PASSWORD   password of the 'admin' user created on first start; without it
                             a random one is printed once and saved to DATA_DIR/initial-admin-password
";

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, String> {
    let mut ov = Overrides::default();
    let mut positional = Vec::new();
    let mut from_stdin = false;
    let (mut name, mut kind) = (None, None);
    let (mut keep_local, mut passphrase_file) = (false, None);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                return Ok(Cli {
                    command: Command::Help,
                    overrides: ov,
                })
            }
            "-V" | "--version" => {
                return Ok(Cli {
                    command: Command::Version,
                    overrides: ov,
                })
            }
            "--listen" => ov.listen = Some(value("--listen")?),
            "--data-dir" => ov.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--config" => ov.config = Some(PathBuf::from(value("--config")?)),
            "--log" => ov.log = Some(value("--log")?),
            "--log-dir" => ov.log_dir = Some(PathBuf::from(value("--log-dir")?)),
            "--public-host" => ov.public_host = Some(value("--public-host")?),
            "--tls-cert" => ov.tls_cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => ov.tls_key = Some(PathBuf::from(value("--tls-key")?)),
            "--password-stdin" => from_stdin = true,
            "--name" => name = Some(value("--name")?),
            "--type" => kind = Some(value("--type")?),
            "--keep-local-settings" => keep_local = true,
            "--passphrase-file" => {
                passphrase_file = Some(PathBuf::from(value("--passphrase-file")?))
            }
            f if f.starts_with('-') => return Err(format!("unknown option {f} (see --help)")),
            _ => positional.push(arg),
        }
    }
    let command = match positional.first().map(String::as_str) {
        None | Some("serve") if positional.len() <= 1 && !from_stdin => Command::Serve,
        Some("reset-password") if positional.len() == 2 => Command::ResetPassword {
            username: positional[1].clone(),
            from_stdin,
        },
        Some("reset-password") => return Err("usage: ipv6wgm reset-password USER".into()),
        Some("genkey") if positional.len() == 1 => Command::GenKey,
        Some("pubkey") if positional.len() == 1 => Command::PubKey,
        Some("genpsk") if positional.len() == 1 => Command::GenPsk,
        Some("selftest") if positional.len() == 1 => Command::SelfTest,
        Some("backup") => match positional.get(1).map(String::as_str) {
            Some("create") if positional.len() == 2 => Command::Backup(BackupCommand::Create {
                name: name.take().unwrap_or_else(|| "Manual backup (CLI)".into()),
                kind: kind.take().unwrap_or_else(|| "full".into()),
            }),
            Some("list") if positional.len() == 2 => Command::Backup(BackupCommand::List),
            Some("verify") if positional.len() == 3 => Command::Backup(BackupCommand::Verify {
                file: PathBuf::from(&positional[2]),
            }),
            Some("restore") if positional.len() == 3 => Command::Backup(BackupCommand::Restore {
                file: PathBuf::from(&positional[2]),
                keep_local_settings: std::mem::take(&mut keep_local),
                passphrase_file: passphrase_file.take(),
            }),
            _ => return Err(
                "usage: ipv6wgm backup create [--name NAME] [--type TYPE] | list | verify FILE \
                     | restore FILE [--keep-local-settings] [--passphrase-file F]"
                    .into(),
            ),
        },
        _ => return Err(format!("unexpected arguments {positional:?} (see --help)")),
    };
    if name.is_some() || kind.is_some() {
        return Err("--name and --type belong to `backup create`".into());
    }
    if keep_local || passphrase_file.is_some() {
        return Err(
            "--keep-local-settings and --passphrase-file belong to `backup restore`".into(),
        );
    }
    Ok(Cli {
        command,
        overrides: ov,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn serve_is_default_and_flags_parse_both_ways() {
        let c = p(&[]).expect("ok");
        assert_eq!(c.command, Command::Serve);
        let c = p(&["--listen", "127.0.0.1:1", "--data-dir=/tmp/x", "serve"]).expect("ok");
        assert_eq!(c.command, Command::Serve);
        assert_eq!(c.overrides.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(c.overrides.data_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn subcommands_and_errors() {
        assert_eq!(p(&["--version"]).expect("ok").command, Command::Version);
        assert_eq!(p(&["serve", "-h"]).expect("ok").command, Command::Help);
        assert_eq!(
            p(&["reset-password", "admin", "--password-stdin"])
                .expect("ok")
                .command,
            Command::ResetPassword {
                username: "admin".into(),
                from_stdin: true
            }
        );
        assert!(p(&["--listen"]).unwrap_err().contains("needs a value"));
        assert!(p(&["--bogus"]).unwrap_err().contains("--bogus"));
        assert!(p(&["frobnicate"]).is_err());
        assert!(p(&["reset-password"]).is_err());
        assert_eq!(
            p(&["backup", "create", "--type", "database", "--name=nightly"])
                .expect("ok")
                .command,
            Command::Backup(BackupCommand::Create {
                name: "nightly".into(),
                kind: "database".into()
            })
        );
        assert_eq!(
            p(&["backup", "list"]).expect("ok").command,
            Command::Backup(BackupCommand::List)
        );
        assert!(p(&["backup"]).is_err());
        assert_eq!(
            p(&["backup", "verify", "/tmp/b.tar.gz"])
                .expect("ok")
                .command,
            Command::Backup(BackupCommand::Verify {
                file: PathBuf::from("/tmp/b.tar.gz")
            })
        );
        assert!(p(&["backup", "verify"]).is_err());
        assert_eq!(
            p(&["backup", "restore", "/b.tar.gz", "--keep-local-settings"])
                .expect("ok")
                .command,
            Command::Backup(BackupCommand::Restore {
                file: PathBuf::from("/b.tar.gz"),
                keep_local_settings: true,
                passphrase_file: None,
            })
        );
        assert!(p(&["backup", "list", "--keep-local-settings"]).is_err());
        assert!(p(&["backup", "list", "x"]).is_err());
        assert!(
            p(&["serve", "--type", "full"]).is_err(),
            "only for backup create"
        );
        assert_eq!(p(&["pubkey"]).expect("ok").command, Command::PubKey);
        assert!(p(&["genkey", "x"]).is_err());
    }
}
