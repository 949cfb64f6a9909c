//! The 19-byte message header (RFC 4271 §4.1): stream framing and header validation.

use super::notification::*;
use super::{HEADER_LEN, MAX_MESSAGE_LEN};

pub const TYPE_OPEN: u8 = 1;
pub const TYPE_UPDATE: u8 = 2;
pub const TYPE_NOTIFICATION: u8 = 3;
pub const TYPE_KEEPALIVE: u8 = 4;
pub const TYPE_ROUTE_REFRESH: u8 = 5;

const MARKER: [u8; 16] = [0xff; 16];

/// Stream framing: `Ok(None)` if `buf` does not hold a whole message yet; `Ok(Some(len))`
/// the length of the first message; `Err` = Message Header Error NOTIFICATION (connection
/// not synchronized: marker not all ones; bad message length: <19, >4096, or wrong minimum
/// for the type, data = the 2-byte length; bad message type, data = the type byte).
///
/// The marker is checked on however many of its bytes have arrived, so a desynchronized
/// stream is rejected as soon as possible instead of waiting for a bogus length.
pub fn frame(buf: &[u8]) -> Result<Option<usize>, Notification> {
    let seen = buf.len().min(MARKER.len());
    if buf.get(..seen) != MARKER.get(..seen) {
        return Err(Notification::new(
            MESSAGE_HEADER_ERROR,
            CONNECTION_NOT_SYNCHRONIZED,
        ));
    }
    let Some(&[len_hi, len_lo, kind]) = buf.get(16..HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    let bad_length = || {
        Notification::with_data(
            MESSAGE_HEADER_ERROR,
            BAD_MESSAGE_LENGTH,
            vec![len_hi, len_lo],
        )
    };
    // RFC 4271 §6.1 checks the length range first, then the type, then the type's minimum.
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_length());
    }
    let fits = match kind {
        TYPE_OPEN => len >= HEADER_LEN + 10,
        TYPE_UPDATE => len >= HEADER_LEN + 4,
        TYPE_NOTIFICATION => len >= HEADER_LEN + 2,
        TYPE_KEEPALIVE => len == HEADER_LEN,
        // RFC 2918 fixes 23; RFC 7313/5291 allow ORF entries after it for subtype 0.
        TYPE_ROUTE_REFRESH => len >= HEADER_LEN + 4,
        _ => {
            return Err(Notification::with_data(
                MESSAGE_HEADER_ERROR,
                BAD_MESSAGE_TYPE,
                vec![kind],
            ))
        }
    };
    if !fits {
        return Err(bad_length());
    }
    Ok(if buf.len() >= len { Some(len) } else { None })
}

/// Starts a message: writes the marker, a length placeholder and the type; returns the
/// offset to hand to [`finish_message`].
pub(super) fn begin_message(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, kind]);
    start
}

/// Patches the length of the message begun at `start`. Messages longer than the 16-bit
/// field can say are a caller bug (the splitting encoders never build them); the length
/// saturates instead of panicking.
pub(super) fn finish_message(out: &mut [u8], start: usize) {
    let len = out.len().saturating_sub(start);
    let len = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(field) = out.get_mut(start + 16..start + 18) {
        field.copy_from_slice(&len);
    }
}
