//! Connection-level guards, before any request reaches the pipeline:
//! - [`PerAddress`]: at most `http.max_connections_per_ip` connections per source (an IPv4
//!   address or an IPv6 /64 — one host or one customer's LAN), so that one source cannot
//!   hold every slot of `http.max_connections`;
//! - [`EnvelopeParseErrors`]: hyper answers requests it cannot parse (400, 414, 431) itself,
//!   with an empty body; this I/O wrapper swaps that answer for the contract's envelope.

use super::response::error_bytes;
use crate::api::error::{ApiError, ErrorCode};
use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Connections held per source. Entries exist only while a connection does, so the map
/// has at most `http.max_connections` entries.
pub struct PerAddress {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerAddress`]; dropping it frees the place.
pub struct AddressSlot {
    owner: Arc<PerAddress>,
    source: IpAddr,
}

impl PerAddress {
    pub fn new(limit: usize) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            limit,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `peer`, or `None` if its source holds the limit.
    pub fn try_take(self: &Arc<Self>, peer: IpAddr) -> Option<AddressSlot> {
        let source = source_of(peer);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(source).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            owner: self.clone(),
            source,
        })
    }

    #[cfg(test)]
    fn sources(&self) -> usize {
        self.held.lock().map(|h| h.len()).unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.source);
            }
        }
    }
}

/// What counts as one source: an IPv4 address (also when it arrives IPv4-mapped on a
/// dual-stack socket), or an IPv6 /64 — a single host can use a whole /64.
pub fn source_of(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The envelope answer for one of hyper's automatic error responses, if `head` is one:
/// status 400, 414 or 431 with no `Content-Type` (every answer of ours has one).
fn replacement(head: &[u8]) -> Option<Bytes> {
    let code = match head.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => ErrorCode::BadRequest,
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => ErrorCode::UriTooLong,
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => ErrorCode::HeadersTooLarge,
        _ => return None,
    };
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let has_type = head
        .split(|b| *b == b'\n')
        .any(|line| line.len() >= 13 && line[..13].eq_ignore_ascii_case(b"content-type:"));
    if has_type {
        return None;
    }
    let message = match code {
        ErrorCode::UriTooLong => "the request target is too long",
        ErrorCode::HeadersTooLarge => "the request head is too large (http.max_header_bytes)",
        _ => "malformed HTTP request",
    };
    Some(error_bytes(&ApiError::new(code, message)))
}

/// Passes everything through, except hyper's automatic answers to requests it could not
/// parse, which it writes as one head-only write and then closes: those are replaced by
/// the same status with an envelope body ([`replacement`]).
pub struct EnvelopeParseErrors<IO> {
    io: IO,
    /// The answer being written instead, how far, and how many bytes of hyper's it replaces.
    swap: Option<(Bytes, usize, usize)>,
}

impl<IO> EnvelopeParseErrors<IO> {
    pub fn new(io: IO) -> Self {
        EnvelopeParseErrors { io, swap: None }
    }
}

impl<IO: AsyncWrite + Unpin> EnvelopeParseErrors<IO> {
    /// Writes the pending replacement; `Ready(n)` = done, report `n` bytes of hyper's written.
    fn poll_swap(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, done, replaces)) = &mut self.swap {
            if *done == bytes.len() {
                let n = *replaces;
                self.swap = None;
                return Poll::Ready(Ok(n));
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for EnvelopeParseErrors<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for EnvelopeParseErrors<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.swap.is_none() {
            match replacement(buf) {
                Some(r) => this.swap = Some((r, 0, buf.len())),
                None => return Pin::new(&mut this.io).poll_write(cx, buf),
            }
        }
        this.poll_swap(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        if this.swap.is_some() || replacement(first).is_some() {
            return Pin::new(this).poll_write(cx, first);
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_swap(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_is_capped_and_freed() {
        let per = PerAddress::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let s1 = per.try_take(a).expect("first");
        let _s2 = per.try_take(a).expect("second");
        assert!(per.try_take(a).is_none(), "third from the same address");
        let sb = per.try_take(b).expect("another address is not affected");
        drop(s1);
        assert!(per.try_take(a).is_some(), "a place is freed on drop");
        drop(sb);
        assert_eq!(per.sources(), 1, "empty entries are removed");
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(source_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(source_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        let per = PerAddress::new(1);
        let _x = per.try_take(ip("2001:db8::1")).expect("first");
        assert!(per.try_take(ip("2001:db8::ffff:2")).is_none(), "same /64");
        assert!(per.try_take(ip("2001:db8:0:1::1")).is_some(), "next /64");
    }

    #[test]
    fn only_hypers_bodyless_error_heads_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        let r = replacement(hyper).expect("replaced");
        let text = String::from_utf8_lossy(&r);
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.contains("\"HEADERS_TOO_LARGE\""), "{text}");
        assert!(replacement(&hyper[..40]).is_none(), "not a whole head");
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n";
        assert!(replacement(ours).is_none(), "our own 400");
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        let code = |h: &[u8]| {
            let r = replacement(h).expect("replaced");
            String::from_utf8_lossy(&r).into_owned()
        };
        assert!(
            code(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .contains("\"BAD_REQUEST\"")
        );
        assert!(
            code(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n")
                .contains("\"URI_TOO_LONG\"")
        );
    }
}
