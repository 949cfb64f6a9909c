//! The session's TCP side: the connection and what its OPEN exchange settled, connecting
//! out, reading, writing with a deadline, and closing so the peer can read our last words.

use super::Session;
use crate::bgp::fsm::Event;
use crate::bgp::open::{self, Families};
use crate::bgp::packet::{self as pkt, Context, Message, Notification, Open};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a write may take before the peer is considered gone.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection waits for the peer's FIN (`close_gracefully`).
const CLOSE_LINGER: Duration = Duration::from_secs(3);

pub(super) type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>>;

/// An open connection and what its OPEN exchange settled.
pub(super) struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub ctx: Context,
    local: SocketAddr,
    /// We connected out (vs. the peer connected to us).
    pub outgoing: bool,
    /// The peer's OPEN, once accepted.
    pub peer: Option<Open>,
}

impl Conn {
    pub fn new(stream: TcpStream, outgoing: bool) -> Option<Conn> {
        let local = stream.local_addr().ok()?;
        Some(Conn {
            stream,
            buf: Vec::with_capacity(pkt::MAX_MESSAGE_LEN),
            ctx: Context::default(),
            local,
            outgoing,
            peer: None,
        })
    }

    /// Address families both sides announced (none before the peer's OPEN).
    pub fn families(&self) -> Families {
        self.peer.as_ref().map(open::families).unwrap_or_default()
    }

    pub fn local_ip(&self) -> IpAddr {
        self.local.ip().to_canonical()
    }
}

/// Closes a connection the way a peer can read to the end: our FIN goes after what we
/// wrote (a NOTIFICATION), and what the peer still sends is read and discarded until its
/// FIN. Closing with unread input would send a RST instead, and a peer that sees the RST
/// first loses the NOTIFICATION (ExaBGP did). Bounded by `CLOSE_LINGER`.
pub(super) async fn close_gracefully(mut stream: TcpStream) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// Closes a connection we do not take with a Cease (5 Connection Rejected, 7 Connection
/// Collision Resolution), best effort.
pub(super) async fn refuse(mut conn: Conn, subcode: u8) {
    let mut b = Vec::new();
    Message::Notification(Notification::new(pkt::CEASE, subcode)).encode(&conn.ctx, &mut b);
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.stream.write_all(&b)).await;
}

/// Reads more bytes; pending forever without a connection.
pub(super) async fn read(conn: &mut Option<Conn>) -> std::io::Result<usize> {
    match conn {
        Some(c) => {
            c.buf.reserve(pkt::MAX_MESSAGE_LEN);
            c.stream.read_buf(&mut c.buf).await
        }
        None => std::future::pending().await,
    }
}

/// The outgoing connection attempt; pending forever without one.
pub(super) async fn connect_done(c: &mut Option<Connecting>) -> std::io::Result<TcpStream> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

impl Session {
    pub(super) fn connect(&self) -> Connecting {
        let f = &self.cfg.f;
        let peer = SocketAddr::new(f.neighbor, f.remote_port);
        let local = f.local_address;
        let key = f.password.clone();
        let timeout = self.cfg.connect_retry.max(Duration::from_secs(1));
        Box::pin(async move {
            crate::bgp::net::connect(peer, local, key.as_deref().map(str::as_bytes), timeout).await
        })
    }

    pub(super) async fn connected(&mut self, r: std::io::Result<TcpStream>) {
        match r.map(|s| Conn::new(s, true)) {
            Ok(Some(conn)) if self.conn.is_none() => {
                self.conn = Some(conn);
                self.event(Event::TcpConnected).await;
            }
            // An incoming connection got there first.
            Ok(_) => {}
            Err(e) => {
                let f = &self.cfg.f;
                self.set_error(format!(
                    "connect to {}: {e}",
                    SocketAddr::new(f.neighbor, f.remote_port)
                ));
                self.event(Event::TcpFailed).await;
            }
        }
    }

    /// Writes one message; a failed or stuck write is a TCP failure.
    pub(super) async fn send(&mut self, m: &Message) -> Option<Event> {
        let conn = self.conn.as_mut()?;
        let mut buf = Vec::with_capacity(64);
        m.encode(&conn.ctx, &mut buf);
        self.write(&[buf]).await
    }

    pub(super) async fn write(&mut self, msgs: &[Vec<u8>]) -> Option<Event> {
        let conn = self.conn.as_mut()?;
        let r = tokio::time::timeout(WRITE_TIMEOUT, async {
            for m in msgs {
                conn.stream.write_all(m).await?;
            }
            conn.stream.flush().await
        })
        .await;
        let e = match r {
            Ok(Ok(())) => {
                self.fsm.message_sent(Instant::now());
                return None;
            }
            Ok(Err(e)) => format!("write: {e}"),
            Err(_) => "write: the peer stopped reading".into(),
        };
        self.set_error(e);
        self.conn = None;
        Some(Event::TcpFailed)
    }
}
