//! The pure half of WireGuard servers and clients: no I/O, so `super` runs all of it
//! inside database closures, and everything is re-exported there (callers name it
//! `crate::wireguard::Name`).
//!
//! - `input`: request bodies, limits and defaults, and validation of one field at a time.
//! - `rules`: a body turned into the fields to store (the first free interface and port,
//!   the lowest free address), the conflict rules checked against rows already loaded
//!   (names, ports, overlapping subnets and routed prefixes), and a new client's keys.
//! - `view`: what rows become: parsed keys and host routes, a peer's AllowedIPs, the
//!   advertised endpoint, a client's wg-quick config, and the JSON views.

mod input;
mod rules;
mod view;

#[cfg(test)]
pub(crate) mod fixtures;

pub use input::*;
pub use rules::*;
pub use view::*;
