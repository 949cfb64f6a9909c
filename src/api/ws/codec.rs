//! The server side of the WebSocket wire format (RFC 6455 §5), sans I/O: [`decode`] takes
//! bytes received from a client and returns one frame, [`Assembler`] turns frames into
//! messages (fragmentation, control frames in between, size cap, UTF-8), [`encode`] writes a
//! server frame. The socket loop in `ws.rs` only moves bytes.
//!
//! Ours rather than tungstenite's: the channels need text out, small text in, ping/pong and
//! close — a general client+server library with its RNG, SHA-1 and HTTP types cost ~60 KiB
//! of router flash. No extensions are negotiated, so the RSV bits must be zero.

use sha1::{Digest, Sha1};

/// Close codes we send or check (RFC 6455 §7.4.1).
pub const NORMAL: u16 = 1000;
pub const AWAY: u16 = 1001;
pub const PROTOCOL: u16 = 1002;
pub const INVALID_DATA: u16 = 1007;
pub const POLICY: u16 = 1008;
pub const TOO_BIG: u16 = 1009;
pub const TRY_AGAIN: u16 = 1013;

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(b: u8) -> Option<Opcode> {
        Some(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// One frame from a client, unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload: Vec<u8>,
}

/// A complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The peer's close code and reason, if it sent one.
    Close(Option<(u16, String)>),
}

/// Why the connection must end: the close code to send (1002, 1007 or 1009).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation(pub u16);

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    use ct_codecs::{Base64, Encoder};
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    Base64::encode_to_string(sha.finalize()).unwrap_or_default()
}

/// Decodes the first frame in `buf`, a client's bytes: `Ok(None)` until it is complete, then
/// the frame and how many bytes it took. A payload over `max_payload` is refused from its
/// header alone, before it is buffered.
pub fn decode(buf: &[u8], max_payload: usize) -> Result<Option<(Frame, usize)>, Violation> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(Violation(PROTOCOL))?;
    // RSV1-3 without a negotiated extension, or an unmasked client frame (§5.1).
    if b0 & 0x70 != 0 || b1 & 0x80 == 0 {
        return Err(Violation(PROTOCOL));
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    // Control frames are never fragmented and carry at most 125 bytes (§5.5).
    if opcode.is_control() && (!fin || len > 125) {
        return Err(Violation(PROTOCOL));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= max_payload)
        .ok_or(Violation(TOO_BIG))?;
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    let Some(masked) = buf.get(at..at + len) else {
        return Ok(None);
    };
    let payload = masked
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Ok(Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        at + len,
    )))
}

/// A server frame (unmasked, never fragmented) carrying `payload`, appended to `out`.
pub fn encode(opcode: Opcode, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | opcode.bits());
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A close frame's payload: the code and at most 120 bytes of `reason` (the frame's limit is
/// 123), cut at a character boundary.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..end]);
    p
}

/// Whether a client may send `code` in a close frame (§7.4.1–7.4.2): the defined codes that
/// are meant for the wire, and the registered and private ranges.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn parse_close(p: &[u8]) -> Result<Option<(u16, String)>, Violation> {
    match p {
        [] => Ok(None),
        [_] => Err(Violation(PROTOCOL)),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(Violation(PROTOCOL));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Violation(INVALID_DATA))?;
            Ok(Some((code, reason.to_string())))
        }
    }
}

/// Joins data frames into messages (§5.4): at most `max` bytes a message; control frames
/// may arrive between the fragments of one.
#[derive(Debug)]
pub struct Assembler {
    max: usize,
    /// The opcode of the message being assembled, if its first frame had no FIN.
    partial: Option<Opcode>,
    buf: Vec<u8>,
}

impl Assembler {
    pub fn new(max: usize) -> Assembler {
        Assembler {
            max,
            partial: None,
            buf: Vec::new(),
        }
    }

    /// The message `frame` completes, if any.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Message>, Violation> {
        let opcode = match (frame.opcode, self.partial) {
            (Opcode::Close, _) => return Ok(Some(Message::Close(parse_close(&frame.payload)?))),
            (Opcode::Ping, _) => return Ok(Some(Message::Ping(frame.payload))),
            (Opcode::Pong, _) => return Ok(Some(Message::Pong(frame.payload))),
            (Opcode::Continuation, Some(first)) => first,
            (Opcode::Text | Opcode::Binary, None) => frame.opcode,
            // A continuation of nothing, or a new message inside a fragmented one.
            _ => return Err(Violation(PROTOCOL)),
        };
        if self.buf.len() + frame.payload.len() > self.max {
            return Err(Violation(TOO_BIG));
        }
        self.buf.extend_from_slice(&frame.payload);
        if !frame.fin {
            self.partial = Some(opcode);
            return Ok(None);
        }
        self.partial = None;
        let data = std::mem::take(&mut self.buf);
        Ok(Some(match opcode {
            Opcode::Text => {
                Message::Text(String::from_utf8(data).map_err(|_| Violation(INVALID_DATA))?)
            }
            _ => Message::Binary(data),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame: header bits `b0`, masked with MASK.
    fn client(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        out
    }

    fn one(bytes: &[u8]) -> Result<Option<(Frame, usize)>, Violation> {
        decode(bytes, 1 << 16)
    }

    #[test]
    fn rfc_6455_examples() {
        // §5.7: a masked "Hello" from a client.
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (f, used) = one(&hello).expect("valid").expect("complete");
        assert_eq!(
            (f.fin, f.opcode, &f.payload[..]),
            (true, Opcode::Text, &b"Hello"[..])
        );
        assert_eq!(used, hello.len());
        // §5.7: unmasked "Hello" from a server, and a 256-byte binary message's header.
        let mut out = Vec::new();
        encode(Opcode::Text, b"Hello", &mut out);
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode(Opcode::Binary, &[0; 256], &mut out);
        assert_eq!(&out[..4], [0x82, 0x7E, 0x01, 0x00]);
        out.clear();
        encode(Opcode::Binary, &[0; 65536], &mut out);
        assert_eq!(&out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        // §1.3: the handshake's example key.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn partial_input_waits_for_more() {
        for payload in [&b"hi"[..], &[7u8; 300], &[9u8; 70_000]] {
            let frame = client(0x82, payload);
            for cut in [0, 1, 2, 3, 5, frame.len() - 1] {
                assert_eq!(decode(&frame[..cut], 1 << 17), Ok(None), "cut at {cut}");
            }
            let mut two = frame.clone();
            two.extend_from_slice(&client(0x89, b"x"));
            let (f, used) = decode(&two, 1 << 17).expect("valid").expect("complete");
            assert_eq!((used, &f.payload[..]), (frame.len(), payload));
        }
    }

    #[test]
    fn protocol_violations() {
        let cases: [(&[u8], u16); 8] = [
            (&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'], PROTOCOL), // unmasked
            (&client(0xC1, b"x"), PROTOCOL),                         // RSV1
            (&client(0x83, b"x"), PROTOCOL),                         // reserved opcode
            (&client(0x8B, b""), PROTOCOL),                          // reserved control opcode
            (&client(0x09, b""), PROTOCOL),                          // fragmented ping
            (&client(0x89, &[0; 126]), PROTOCOL),                    // ping over 125 bytes
            (&client(0x82, &[0; 101]), TOO_BIG),
            (&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0], TOO_BIG), // 2^63 bytes announced
        ];
        for (bytes, code) in cases {
            assert_eq!(decode(bytes, 100), Err(Violation(code)), "{bytes:02x?}");
        }
    }

    fn frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Frame {
        Frame {
            fin,
            opcode,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn fragments_with_control_frames_between() {
        let mut a = Assembler::new(16);
        assert_eq!(a.push(frame(false, Opcode::Text, b"Hel")), Ok(None));
        assert_eq!(
            a.push(frame(true, Opcode::Ping, b"p")),
            Ok(Some(Message::Ping(b"p".to_vec())))
        );
        assert_eq!(a.push(frame(false, Opcode::Continuation, b"l")), Ok(None));
        assert_eq!(
            a.push(frame(true, Opcode::Continuation, b"o")),
            Ok(Some(Message::Text("Hello".into())))
        );
        // The next message starts afresh.
        assert_eq!(
            a.push(frame(true, Opcode::Binary, &[1, 2])),
            Ok(Some(Message::Binary(vec![1, 2])))
        );
        assert_eq!(
            a.push(frame(true, Opcode::Pong, b"")),
            Ok(Some(Message::Pong(Vec::new())))
        );
    }

    #[test]
    fn message_violations() {
        let mut a = Assembler::new(4);
        assert_eq!(
            a.push(frame(true, Opcode::Continuation, b"x")),
            Err(Violation(PROTOCOL))
        );
        let mut a = Assembler::new(4);
        assert_eq!(a.push(frame(false, Opcode::Text, b"ab")), Ok(None));
        assert_eq!(
            a.push(frame(true, Opcode::Text, b"c")),
            Err(Violation(PROTOCOL))
        );
        let mut a = Assembler::new(4);
        assert_eq!(a.push(frame(false, Opcode::Binary, b"abc")), Ok(None));
        assert_eq!(
            a.push(frame(true, Opcode::Continuation, b"de")),
            Err(Violation(TOO_BIG))
        );
        let mut a = Assembler::new(4);
        // UTF-8 split across fragments is fine; invalid UTF-8 is 1007.
        assert_eq!(a.push(frame(false, Opcode::Text, &[0xC3])), Ok(None));
        assert_eq!(
            a.push(frame(true, Opcode::Continuation, &[0xA9])),
            Ok(Some(Message::Text("é".into())))
        );
        assert_eq!(
            a.push(frame(true, Opcode::Text, &[0xFF])),
            Err(Violation(INVALID_DATA))
        );
    }

    #[test]
    fn close_frames() {
        let mut a = Assembler::new(4);
        let close = |p: &[u8]| Assembler::new(4).push(frame(true, Opcode::Close, p));
        assert_eq!(close(b""), Ok(Some(Message::Close(None))));
        assert_eq!(
            close(&close_payload(NORMAL, "bye")),
            Ok(Some(Message::Close(Some((1000, "bye".into())))))
        );
        assert_eq!(
            close(&close_payload(4000, "")),
            Ok(Some(Message::Close(Some((4000, String::new())))))
        );
        for bad in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(close(&bad.to_be_bytes()), Err(Violation(PROTOCOL)), "{bad}");
        }
        assert_eq!(close(&[0x03]), Err(Violation(PROTOCOL)));
        assert_eq!(close(&[0x03, 0xE8, 0xFF]), Err(Violation(INVALID_DATA)));
        // A close between fragments is still a close.
        assert_eq!(a.push(frame(false, Opcode::Text, b"a")), Ok(None));
        assert_eq!(
            a.push(frame(true, Opcode::Close, b"")),
            Ok(Some(Message::Close(None)))
        );
        // The reason is cut to 120 bytes at a character boundary.
        let p = close_payload(POLICY, &format!("a{}", "é".repeat(100)));
        assert_eq!((p.len(), &p[..2]), (2 + 119, &[0x03, 0xF0][..]));
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }
}
