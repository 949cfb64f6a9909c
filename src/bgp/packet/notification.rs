//! NOTIFICATION messages (RFC 4271 §4.5) and the error codes used across the codec.

/// A NOTIFICATION: what we send when we close a session because of an error, and what a
/// peer sends us. Decode errors of the codec are values of this type, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    pub fn with_data(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }
}

// Error codes (RFC 4271 §4.5, RFC 6608 for the FSM subcodes).
pub const MESSAGE_HEADER_ERROR: u8 = 1;
pub const OPEN_MESSAGE_ERROR: u8 = 2;
pub const UPDATE_MESSAGE_ERROR: u8 = 3;
pub const HOLD_TIMER_EXPIRED: u8 = 4;
pub const FSM_ERROR: u8 = 5;
pub const CEASE: u8 = 6;
pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;

// Subcodes of Message Header Error (RFC 4271 §6.1).
pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
pub const BAD_MESSAGE_LENGTH: u8 = 2;
pub const BAD_MESSAGE_TYPE: u8 = 3;

// Subcodes of OPEN Message Error (RFC 4271 §6.2, RFC 5492, RFC 9234).
pub const OPEN_UNSPECIFIC: u8 = 0;
pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
pub const BAD_PEER_AS: u8 = 2;
pub const BAD_BGP_IDENTIFIER: u8 = 3;
pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
pub const UNSUPPORTED_CAPABILITY: u8 = 7;
pub const ROLE_MISMATCH: u8 = 11;

// Subcodes of UPDATE Message Error (RFC 4271 §6.3).
pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
pub const INVALID_NETWORK_FIELD: u8 = 10;
pub const MALFORMED_AS_PATH: u8 = 11;

// Subcodes of Finite State Machine Error (RFC 6608).
pub const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
pub const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
pub const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

// Subcodes of Cease (RFC 4486, RFC 8538, RFC 9384).
pub const CEASE_MAX_PREFIXES: u8 = 1;
pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
pub const CEASE_PEER_DECONFIGURED: u8 = 3;
pub const CEASE_ADMIN_RESET: u8 = 4;
pub const CEASE_CONNECTION_REJECTED: u8 = 5;
pub const CEASE_OTHER_CONFIG_CHANGE: u8 = 6;
pub const CEASE_CONNECTION_COLLISION: u8 = 7;
pub const CEASE_OUT_OF_RESOURCES: u8 = 8;
pub const CEASE_HARD_RESET: u8 = 9;
pub const CEASE_BFD_DOWN: u8 = 10;

// Subcode of ROUTE-REFRESH Message Error (RFC 7313).
pub const INVALID_MESSAGE_LENGTH: u8 = 1;

/// Send Hold Timer Expired (RFC 9687): a code without subcodes.
pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;

/// RFC 9003 caps the shutdown communication at 255 bytes (its length is one byte).
const MAX_SHUTDOWN_MESSAGE: usize = 255;

impl Notification {
    /// Cease / Administrative Shutdown with an RFC 9003 shutdown communication.
    pub fn cease_shutdown(msg: &str) -> Notification {
        Notification::with_data(CEASE, CEASE_ADMIN_SHUTDOWN, shutdown_communication(msg))
    }

    /// Cease / Administrative Reset with an RFC 9003 shutdown communication.
    pub fn cease_reset(msg: &str) -> Notification {
        Notification::with_data(CEASE, CEASE_ADMIN_RESET, shutdown_communication(msg))
    }

    /// The RFC 9003 shutdown communication of a Cease / Administrative Shutdown or Reset.
    /// `None` if there is none or its length byte overruns the data (RFC 9003 §4 says to
    /// treat that as no message). Invalid UTF-8 is replaced rather than rejected: the text
    /// is only ever logged.
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != CEASE || !matches!(self.subcode, CEASE_ADMIN_SHUTDOWN | CEASE_ADMIN_RESET) {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        if text.is_empty() {
            return None;
        }
        Some(String::from_utf8_lossy(text).into_owned())
    }

    /// Human-readable decode for logs and the API's `last_error`, e.g.
    /// `Cease / Administrative Shutdown: "maintenance"` or `UPDATE Message Error /
    /// Malformed AS_PATH`. Unknown codes and subcodes are shown as numbers.
    pub fn describe(&self) -> String {
        let (code_name, subcodes): (Option<&str>, &[&str]) = match self.code {
            MESSAGE_HEADER_ERROR => (Some("Message Header Error"), HEADER_SUBCODES),
            OPEN_MESSAGE_ERROR => (Some("OPEN Message Error"), OPEN_SUBCODES),
            UPDATE_MESSAGE_ERROR => (Some("UPDATE Message Error"), UPDATE_SUBCODES),
            HOLD_TIMER_EXPIRED => (Some("Hold Timer Expired"), &[]),
            FSM_ERROR => (Some("Finite State Machine Error"), FSM_SUBCODES),
            CEASE => (Some("Cease"), CEASE_SUBCODES),
            ROUTE_REFRESH_MESSAGE_ERROR => {
                (Some("ROUTE-REFRESH Message Error"), ROUTE_REFRESH_SUBCODES)
            }
            SEND_HOLD_TIMER_EXPIRED => (Some("Send Hold Timer Expired"), &[]),
            _ => (None, &[]),
        };
        let mut s = match code_name {
            Some(name) => name.to_string(),
            None => format!("error code {}", self.code),
        };
        // Subcode 0 without a name (Cease, codes without subcodes) says nothing.
        match subcodes
            .get(usize::from(self.subcode))
            .filter(|n| !n.is_empty())
        {
            Some(name) => {
                s.push_str(" / ");
                s.push_str(name);
            }
            None if self.subcode == 0 => {}
            None => s.push_str(&format!(" / subcode {}", self.subcode)),
        }
        if let Some(msg) = self.shutdown_message() {
            s.push_str(&format!(": {msg:?}"));
        }
        s
    }
}

/// RFC 9003 §2: one length byte then UTF-8, at most 255 bytes, cut at a char boundary.
fn shutdown_communication(msg: &str) -> Vec<u8> {
    let mut end = msg.len().min(MAX_SHUTDOWN_MESSAGE);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    let text = msg.get(..end).unwrap_or_default().as_bytes();
    if text.is_empty() {
        return Vec::new();
    }
    let mut data = Vec::with_capacity(text.len() + 1);
    data.push(text.len() as u8);
    data.extend_from_slice(text);
    data
}

// Subcode names indexed by subcode; "" marks unassigned or deprecated values.
const HEADER_SUBCODES: &[&str] = &[
    "Unspecific",
    "Connection Not Synchronized",
    "Bad Message Length",
    "Bad Message Type",
];
const OPEN_SUBCODES: &[&str] = &[
    "Unspecific",
    "Unsupported Version Number",
    "Bad Peer AS",
    "Bad BGP Identifier",
    "Unsupported Optional Parameter",
    "",
    "Unacceptable Hold Time",
    "Unsupported Capability",
    "",
    "",
    "",
    "Role Mismatch",
];
const UPDATE_SUBCODES: &[&str] = &[
    "Unspecific",
    "Malformed Attribute List",
    "Unrecognized Well-known Attribute",
    "Missing Well-known Attribute",
    "Attribute Flags Error",
    "Attribute Length Error",
    "Invalid ORIGIN Attribute",
    "",
    "Invalid NEXT_HOP Attribute",
    "Optional Attribute Error",
    "Invalid Network Field",
    "Malformed AS_PATH",
];
const FSM_SUBCODES: &[&str] = &[
    "Unspecified Error",
    "Receive Unexpected Message in OpenSent State",
    "Receive Unexpected Message in OpenConfirm State",
    "Receive Unexpected Message in Established State",
];
const CEASE_SUBCODES: &[&str] = &[
    "",
    "Maximum Number of Prefixes Reached",
    "Administrative Shutdown",
    "Peer De-configured",
    "Administrative Reset",
    "Connection Rejected",
    "Other Configuration Change",
    "Connection Collision Resolution",
    "Out of Resources",
    "Hard Reset",
    "BFD Down",
];
const ROUTE_REFRESH_SUBCODES: &[&str] = &["", "Invalid Message Length"];
