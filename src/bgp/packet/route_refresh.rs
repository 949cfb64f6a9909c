//! ROUTE-REFRESH messages (RFC 2918, RFC 7313 subtypes).

use super::notification::*;
use super::reader::Reader;

/// RFC 7313 subtypes: 0 normal request, 1 Begin-of-RR, 2 End-of-RR. Other values are
/// decoded too; RFC 7313 §5 says to ignore such messages, which the caller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    pub safi: u8,
    pub subtype: u8,
}

pub const RR_NORMAL: u8 = 0;
pub const RR_BEGIN: u8 = 1;
pub const RR_END: u8 = 2;

/// `msg` is the whole message: RFC 7313 §5 wants it as the data of the length error.
pub(super) fn decode(msg: &[u8], body: &[u8]) -> Result<RouteRefresh, Notification> {
    let bad_length = || {
        Notification::with_data(
            ROUTE_REFRESH_MESSAGE_ERROR,
            INVALID_MESSAGE_LENGTH,
            msg.to_vec(),
        )
    };
    let mut r = Reader::new(body);
    let afi = r.u16().ok_or_else(bad_length)?;
    let subtype = r.u8().ok_or_else(bad_length)?;
    let safi = r.u8().ok_or_else(bad_length)?;
    // Subtype 0 may be followed by ORF entries (RFC 5291), which we do not use; the
    // Begin/End markers must be exactly 4 bytes (RFC 7313 §5).
    if matches!(subtype, RR_BEGIN | RR_END) && !r.is_empty() {
        return Err(bad_length());
    }
    Ok(RouteRefresh { afi, safi, subtype })
}

pub(super) fn encode_body(rr: &RouteRefresh, out: &mut Vec<u8>) {
    out.extend_from_slice(&rr.afi.to_be_bytes());
    out.push(rr.subtype);
    out.push(rr.safi);
}
