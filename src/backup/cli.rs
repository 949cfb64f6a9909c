//! `ipv6wgm backup …`: backups over SSH. Making one opens the database and the backup
//! directory as the service would, so it refuses while the service runs (the service owns
//! the directory; use the API then). Listing only reads the directory and works either way.

use super::catalog::{Catalog, Kind, Status, IN_USE};
use super::{NewBackup, Service, Sources};
use crate::config::Config;
use crate::store::{Store, DB_FILE, LOGS_FILE};

/// The backup service as the running service would open it: the directory's lock first
/// (held by the service while it runs, so this refuses then), then the recovery of an
/// interrupted restore, then the database.
async fn open(cfg: &Config, use_the_api: &str) -> Result<Service, String> {
    let dir = cfg.backup_dir();
    let catalog = Catalog::open(&dir).map_err(|e| match e.contains(IN_USE) {
        true => format!("the service is running: {use_the_api}, or stop the service first"),
        false => e,
    })?;
    crate::fsutil::ensure_private_dir(&cfg.data_dir)?;
    crate::fsutil::ensure_private_dir(&cfg.run_dir())?;
    let interrupted = super::restore::recover(&cfg.data_dir)?;
    let store = Store::open(&cfg.data_dir.join(DB_FILE), &cfg.run_dir().join(LOGS_FILE))?;
    let svc = Service::with_catalog(
        catalog,
        store,
        Sources {
            data_dir: cfg.data_dir.clone(),
            config_file: cfg.origin.config.clone(),
            logs_file: cfg.run_dir().join(LOGS_FILE),
        },
    )?;
    svc.note_recovered(interrupted)?;
    Ok(svc)
}

/// `backup create`: makes the backup and waits for it; prints its id, file and checksum.
pub async fn create(cfg: &Config, name: &str, kind: &str) -> Result<(), String> {
    let kind = Kind::parse(kind)
        .ok_or_else(|| format!("unknown backup type {kind:?}: full, database, config or files"))?;
    let b = NewBackup::new(name, kind, None).map_err(|e| e.to_string())?;
    let dir = cfg.backup_dir();
    let svc = open(
        cfg,
        "make the backup through the API (POST /api/v1/backup/backups/create)",
    )
    .await?
    .configure(&cfg.backup)?;
    let started = svc.create(b).await.map_err(|e| e.to_string())?;
    svc.wait_idle().await;
    let done = svc.get(started.id).await.map_err(|e| e.to_string())?;
    match done.status {
        Status::Completed => {
            println!(
                "backup {} completed: {} ({} bytes, sha256 {})",
                done.id,
                dir.join(&done.file_path).display(),
                done.size_bytes.unwrap_or(0),
                done.checksum.as_deref().unwrap_or("")
            );
            Ok(())
        }
        _ => Err(format!(
            "backup {} failed: {}",
            done.id,
            done.error.as_deref().unwrap_or("unknown error")
        )),
    }
}

/// `backup list`: one line per backup, newest first.
pub fn list(cfg: &Config) -> Result<(), String> {
    let dir = cfg.backup_dir();
    if !dir.is_dir() {
        println!("no backups ({} does not exist)", dir.display());
        return Ok(());
    }
    let entries = Catalog::read_only(&dir).entries()?;
    println!(
        "{:>5}  {:<9}  {:<8}  {:>12}  {:<20}  name",
        "id", "status", "type", "bytes", "created"
    );
    for e in &entries {
        println!(
            "{:>5}  {:<9}  {:<8}  {:>12}  {:<20}  {}",
            e.id,
            format!("{:?}", e.status).to_lowercase(),
            e.kind.as_str(),
            e.size_bytes.map(|s| s.to_string()).unwrap_or_default(),
            crate::time::rfc3339(e.created_at),
            e.name
        );
    }
    println!("{} backup(s) in {}", entries.len(), dir.display());
    Ok(())
}

/// `backup verify FILE`: every check a restore makes of an archive (manifest, names, entry
/// types, sizes, checksums, caps), without writing anything; prints what it holds.
pub fn verify(file: &std::path::Path) -> Result<(), String> {
    let f =
        std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let m = super::archive::verify(
        std::io::BufReader::new(f),
        &super::archive::Limits::default(),
    )
    .map_err(|e| format!("{}: {e}", file.display()))?;
    println!(
        "{}: a {} backup of {} made {} (ipv6wgm {}, schema {}), intact:",
        file.display(),
        m.kind,
        if m.hostname.is_empty() {
            "?"
        } else {
            &m.hostname
        },
        crate::time::rfc3339(m.created_at),
        m.app_version,
        m.schema_version
    );
    for member in &m.members {
        println!(
            "  {:<22} {:>12} bytes  sha256 {}",
            member.name, member.size, member.sha256
        );
    }
    Ok(())
}

/// `backup restore FILE`: every check first (nothing changes if one fails), then the
/// automatic backup of the current state, the swap, and the outcome printed.
pub async fn restore(
    cfg: &Config,
    file: &std::path::Path,
    keep_local_settings: bool,
    passphrase_file: Option<&std::path::Path>,
) -> Result<(), String> {
    let passphrase = passphrase_file
        .map(|p| {
            std::fs::read_to_string(p)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("cannot read {}: {e}", p.display()))
        })
        .transpose()?;
    let file = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if !file.is_file() {
        return Err(format!("{}: no such archive", file.display()));
    }
    let svc = open(
        cfg,
        "restore through the API (upload it, then POST /api/v1/backup/backups/{id}/restore)",
    )
    .await?;
    let opts = super::restore::Options {
        keep_local_settings,
        passphrase,
    };
    let started = svc
        .restore_file(file.clone(), None, opts)
        .await
        .map_err(|e| format!("{}: refused: {e}", file.display()))?;
    svc.wait_idle().await;
    let done = svc
        .restore_status(started.id)
        .await
        .map_err(|e| e.to_string())?;
    match done.status {
        Status::Completed => {
            println!(
                "restored {} ({}); the state before it is backup {}",
                file.display(),
                done.restored.join(", "),
                done.pre_restore_backup_id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into())
            );
            Ok(())
        }
        _ => Err(format!(
            "restore of {} failed: {}",
            file.display(),
            done.error.as_deref().unwrap_or("unknown error")
        )),
    }
}
