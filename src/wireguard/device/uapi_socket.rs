//! The UAPI socket of a device, `/var/run/wireguard/<iface>.sock`, where `wg` (wireguard-tools)
//! looks for userspace implementations: `wg show`, `wg showconf`, `wg set` work on our
//! interfaces. The text protocol is `uapi`'s; this is only the socket around it.
//!
//! Connections are served one at a time inside the device's UAPI task (a request is a few
//! hundred bytes and answered from memory), each with a deadline and a size cap, so a stuck or
//! hostile client cannot hold the device or its memory, and stopping the device stops this too.

use super::datapath::Inner;
use super::uapi::{self, Request, MAX_REQUEST};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Where wireguard-tools looks (`RUNSTATEDIR "/wireguard"`).
pub const DEFAULT_DIR: &str = "/var/run/wireguard";
const CONNECTION_DEADLINE: Duration = Duration::from_secs(5);

/// Binds `<dir>/<name>.sock`, replacing a stale socket left by a crashed process.
pub fn listen(dir: &Path, name: &str) -> io::Result<(UnixListener, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    // wg needs to traverse it; the socket itself is private to root.
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    let path = dir.join(format!("{name}.sock"));
    if path.exists() {
        // A live socket means another process owns this interface name in this mount
        // namespace; a dead one is left over and can go.
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by another process", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

pub(crate) async fn serve(listener: UnixListener, device: Arc<Inner>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                log::warn!("{}: UAPI accept: {e}", device.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match tokio::time::timeout(CONNECTION_DEADLINE, connection(stream, &device)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("{}: UAPI connection: {e}", device.name()),
            Err(_) => log::debug!("{}: UAPI connection timed out", device.name()),
        }
    }
}

/// Answers requests until the client closes the connection.
async fn connection(mut stream: UnixStream, device: &Arc<Inner>) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        // A request ends with an empty line.
        let end = loop {
            if let Some(i) = find_end(&buf) {
                break i;
            }
            if buf.len() > MAX_REQUEST {
                stream
                    .write_all(uapi::render_errno(uapi::EINVAL).as_bytes())
                    .await?;
                return Ok(());
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let request: Vec<u8> = buf.drain(..end).collect();
        let answer = match std::str::from_utf8(&request)
            .map_err(|_| uapi::EINVAL)
            .and_then(uapi::parse_request)
        {
            Ok(Request::Get) => uapi::render_get(&device.snapshot()),
            Ok(Request::Set(set)) => match device.apply(set) {
                Ok(()) => uapi::render_errno(0),
                Err(errno) => uapi::render_errno(errno),
            },
            Err(errno) => uapi::render_errno(errno),
        };
        stream.write_all(answer.as_bytes()).await?;
    }
}

/// Length of the first request in `buf` (through its `\n\n`), if complete.
fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_boundaries() {
        assert_eq!(find_end(b"get=1\n"), None);
        assert_eq!(find_end(b"get=1\n\n"), Some(7));
        assert_eq!(find_end(b"get=1\n\nget=1\n\n"), Some(7));
    }
}
