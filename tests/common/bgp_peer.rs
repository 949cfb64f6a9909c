//! A scripted BGP peer: plain blocking TCP on 127.0.0.x, messages written as byte
//! vectors, every read bounded by a deadline. No root, no namespaces, no daemons — what
//! our speaker sends is read back byte for byte.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const OPEN: u8 = 1;
pub const UPDATE: u8 = 2;
pub const NOTIFICATION: u8 = 3;
pub const KEEPALIVE: u8 = 4;

/// A whole message: marker, length, type, body.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

pub fn keepalive() -> Vec<u8> {
    message(KEEPALIVE, &[])
}

pub fn notification(code: u8, subcode: u8, data: &[u8]) -> Vec<u8> {
    message(NOTIFICATION, &[&[code, subcode][..], data].concat())
}

/// An OPEN from AS `asn` (2-octet field and the 4-octet capability) with `hold_time` and
/// identifier `id`, offering IPv4 and IPv6 unicast.
pub fn open(asn: u16, hold_time: u16, id: [u8; 4]) -> Vec<u8> {
    let mut body = vec![4];
    body.extend_from_slice(&asn.to_be_bytes());
    body.extend_from_slice(&hold_time.to_be_bytes());
    body.extend_from_slice(&id);
    let [a, b] = asn.to_be_bytes();
    body.extend_from_slice(&[
        20, 2, 18, // one Capabilities parameter of 18 bytes
        1, 4, 0, 1, 0, 1, // Multiprotocol IPv4 unicast
        1, 4, 0, 2, 0, 1, // Multiprotocol IPv6 unicast
        65, 4, 0, 0, a, b, // 4-octet AS
    ]);
    message(OPEN, &body)
}

/// An UPDATE: `withdrawn` IPv4 prefixes, path attributes `attrs` (type, length, value
/// each, written by the caller), IPv4 `nlri`.
pub fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    message(UPDATE, &body)
}

/// The End-of-RIB marker for IPv6 unicast: an UPDATE with only an empty MP_UNREACH_NLRI.
pub fn end_of_rib_ipv6() -> Vec<u8> {
    update(&[], &[0x80, 15, 3, 0, 2, 1], &[])
}

/// The type of a whole message.
pub fn kind(msg: &[u8]) -> u8 {
    msg[18]
}

/// One BGP connection to the speaker under test.
pub struct BgpPeer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl BgpPeer {
    /// The next connection the speaker makes to `listener`, within `secs`.
    pub fn accept(listener: &TcpListener, secs: u64) -> BgpPeer {
        let l = listener.try_clone().expect("clone listener");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(l.accept().map(|(s, _)| s));
        });
        let stream = rx
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("the speaker did not connect within {secs} s"))
            .expect("accept");
        BgpPeer::new(stream)
    }

    /// A connection to the speaker's listener at `to`.
    pub fn connect(to: SocketAddr) -> BgpPeer {
        let stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
        BgpPeer::new(stream)
    }

    fn new(stream: TcpStream) -> BgpPeer {
        stream.set_nodelay(true).expect("nodelay");
        BgpPeer {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, msg: &[u8]) {
        self.stream.write_all(msg).expect("send to the speaker");
    }

    /// The next whole message the speaker sends, waiting at most `secs`; `None` when it
    /// closed the connection.
    pub fn recv(&mut self, secs: u64) -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(len) = self.whole_message() {
                return Some(self.buf.drain(..len).collect());
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .unwrap_or_else(|| panic!("nothing from the speaker within {secs} s"));
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    assert!(self.buf.is_empty(), "closed mid-message: {:?}", self.buf);
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                // A reset after the speaker's last message counts as closed.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next message, which must be there.
    pub fn expect(&mut self, secs: u64) -> Vec<u8> {
        self.recv(secs).expect("the speaker closed the connection")
    }

    /// Messages up to and including the first of type `want`; panics if the connection
    /// closes first.
    pub fn until(&mut self, want: u8, secs: u64) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        loop {
            let m = self
                .recv(secs)
                .unwrap_or_else(|| panic!("closed before a message of type {want}; saw {seen:?}"));
            let done = kind(&m) == want;
            seen.push(m);
            if done {
                return seen;
            }
        }
    }

    /// Asserts that the speaker closes the connection with nothing more to say.
    pub fn expect_closed(&mut self, secs: u64) {
        if let Some(m) = self.recv(secs) {
            panic!("expected the connection closed, got {m:?}");
        }
    }

    /// Our side of a session the speaker opened: reads its OPEN (returned), answers with
    /// `our_open` (which offers IPv4 and IPv6) and a KEEPALIVE, reads its KEEPALIVE and,
    /// once it is Established, its first UPDATEs up to the last End-of-RIB (IPv6's).
    pub fn establish(&mut self, our_open: &[u8]) -> Vec<u8> {
        let theirs = self.expect(10);
        assert_eq!(kind(&theirs), OPEN, "{theirs:?}");
        self.send(our_open);
        self.send(&keepalive());
        let ka = self.expect(10);
        assert_eq!(ka, keepalive());
        loop {
            let m = self.expect(10);
            assert_eq!(kind(&m), UPDATE, "after Established: {m:?}");
            if m == end_of_rib_ipv6() {
                return theirs;
            }
        }
    }

    fn whole_message(&self) -> Option<usize> {
        let len = usize::from(u16::from_be_bytes([*self.buf.get(16)?, *self.buf.get(17)?]));
        assert!(
            (19..=4096).contains(&len),
            "bad length from the speaker: {len}"
        );
        (self.buf.len() >= len).then_some(len)
    }
}
