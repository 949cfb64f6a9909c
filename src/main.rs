//! `ipv6wgm`: parse the command line, load the configuration, run. Nothing else lives here.

use ipv6wgm::app::Exit;
use ipv6wgm::cli::{self, Command};
use ipv6wgm::config::{Config, Overrides};
use ipv6wgm::wireguard::keys::{PresharedKey, PrivateKey};
use std::process::ExitCode;

fn main() -> ExitCode {
    // The database and keys hold password hashes and private keys: nothing this process
    // creates is readable by other local users.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe { libc::umask(0o077) };
    let cli = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let overrides = Overrides::from_env(|k| std::env::var(k).ok()).then(cli.overrides);
    match cli.command {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("ipv6wgm {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Serve => match Config::load(&overrides) {
            Ok(cfg) => exit(serve(cfg)),
            Err(e) => fail(&e),
        },
        Command::GenKey => {
            println!("{}", PrivateKey::generate().to_base64());
            ExitCode::SUCCESS
        }
        Command::GenPsk => {
            println!("{}", PresharedKey::generate().to_base64());
            ExitCode::SUCCESS
        }
        Command::PubKey => exit(pubkey()),
        Command::Backup(b) => match Config::load(&overrides) {
            Ok(cfg) => exit(backup(cfg, b)),
            Err(e) => fail(&e),
        },
        Command::SelfTest => {
            exit(ipv6wgm::wireguard::device::selftest::run().map(|r| println!("{r}")))
        }
        Command::ResetPassword {
            username,
            from_stdin,
        } => match Config::load(&overrides) {
            Ok(cfg) => exit(reset_password(&cfg, &username, from_stdin)),
            Err(e) => fail(&e),
        },
    }
}

/// `ipv6wgm backup …`: on a runtime of its own, with the service stopped.
fn backup(cfg: Config, cmd: cli::BackupCommand) -> Result<(), String> {
    ipv6wgm::logging::init(&cfg.log);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    rt.block_on(async {
        match cmd {
            cli::BackupCommand::Create { name, kind } => {
                ipv6wgm::backup::cli::create(&cfg, &name, &kind).await
            }
            cli::BackupCommand::List => ipv6wgm::backup::cli::list(&cfg),
            cli::BackupCommand::Verify { file } => ipv6wgm::backup::cli::verify(&file),
            cli::BackupCommand::Restore {
                file,
                keep_local_settings,
                passphrase_file,
            } => {
                ipv6wgm::backup::cli::restore(
                    &cfg,
                    &file,
                    keep_local_settings,
                    passphrase_file.as_deref(),
                )
                .await
            }
        }
    })
}

fn serve(cfg: Config) -> Result<(), String> {
    ipv6wgm::logging::init(&cfg.log);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(8)
        .thread_stack_size(256 * 1024)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    let exit = rt.block_on(async {
        // Registered before start-up, so a SIGTERM that arrives while the database opens
        // still means "stop cleanly", not the default instant death.
        let stop = shutdown_signal()?;
        ipv6wgm::app::run(cfg, stop).await
    })?;
    // Every task and worker thread ends here, before a restart replaces the process.
    drop(rt);
    match exit {
        Exit::Stop => Ok(()),
        Exit::Restart => Err(restart()),
    }
}

/// Executes this binary again with the same arguments and environment (same pid, so procd
/// and systemd keep tracking it). The path the binary was started from is preferred, so an
/// upgraded binary is what comes back; returns only on failure.
fn restart() -> String {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()
        .ok()
        .map(|p| {
            let s = p.to_string_lossy();
            std::path::PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s))
        })
        .filter(|p| p.exists())
        .unwrap_or_else(|| "/proc/self/exe".into());
    log::info!("restarting: {}", exe.display());
    let err = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .exec();
    format!("restart failed: cannot execute {}: {err}", exe.display())
}

/// A future resolving on SIGINT or SIGTERM (procd stops services with SIGTERM). The
/// handlers are installed when this is called, not when the future is first polled.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |k| signal(k).map_err(|e| format!("cannot install signal handler: {e}"));
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => log::info!("SIGTERM received"),
            _ = int.recv() => log::info!("SIGINT received"),
        }
    })
}

fn reset_password(cfg: &Config, username: &str, from_stdin: bool) -> Result<(), String> {
    let given = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("reading password from stdin: {e}"))?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        None
    };
    let pw = ipv6wgm::users::admin_reset_password(&cfg.data_dir, username, given.clone())?;
    if given.is_some() {
        println!("password of {username:?} changed; its sessions were signed out");
    } else {
        println!("new password of {username:?}: {pw}");
    }
    Ok(())
}

/// `wg pubkey`: a private key on stdin, its public key on stdout.
fn pubkey() -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the private key from stdin: {e}"))?;
    let key = PrivateKey::from_base64(&line).map_err(|e| e.to_string())?;
    println!("{}", key.public_key().to_base64());
    Ok(())
}

fn exit(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("ipv6wgm: {msg}");
    ExitCode::FAILURE
}
