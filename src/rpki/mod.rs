//! RPKI route origin validation. [`vrp`] is the pure part: the VRP table and RFC 6811
//! validation; [`file`] reads the JSON VRP exports and SLURM exceptions; [`source`] holds
//! the live table and reloads it from a file; [`rtr`] keeps it in step with an RTR cache.
//!
//! ## RTR client: what was measured (2026-11-21), for the choice still to be made
//! NLnet Labs' `rpki` crate with `default-features = false, features = ["rtr", "crypto"]`
//! (`rtr` alone does not compile in 0.19.1 or 0.20.1):
//! - 0.19.1 adds 7 crates (bcder, chrono, uuid, …; ring is already ours); 0.20.1 adds 15,
//!   including aws-lc-sys, which compiles for mipsel through zig (~2 min per target) but
//!   links nothing into the binary. Both build, link and sync with stayrtr under
//!   qemu-mipsel and qemu-mips (incremental Serial Notify updates included).
//! - Cost on mipsel: ≈ 52 KiB stripped for the client code path.
//! - 0.19.1's PDU parser trusts header lengths (Router Key PDUs allocate up to 4 GiB) and can
//!   spin on an Error PDU cut short; 0.20.1 caps PDUs at 64 KiB and fixes the loop. A
//!   hostile cache must not abort the process, which favours 0.20.1 (MSRV 1.87).
//! - The crate does not reconnect, expire the table, or recover from a session-id mismatch
//!   (it reports "server reported error 0"; retry with no saved state) — ours to do.
//! - Its `Vec<(Action, Payload)>` + `HashSet<RouteOrigin>` example costs ~59 MiB RSS for 300k
//!   VRPs on mipsel; our `PayloadUpdate` should feed [`vrp::VrpTable`]'s compact entries.

pub mod file;
pub mod rtr;
pub mod source;
pub mod vrp;

pub use source::{Rpki, SourceInfo};

/// The RFC 6811 verdict on `prefix` originated by `asn` as (state, reason) for the API;
/// `None` without a table or without an AS to check (0).
pub fn verdict(
    table: Option<&vrp::VrpTable>,
    prefix: ipnet::IpNet,
    asn: u32,
) -> (Option<&'static str>, Option<&'static str>) {
    match table {
        Some(t) if asn != 0 => {
            let s = t.validate(prefix, asn).state;
            (Some(s.as_str()), s.reason())
        }
        _ => (None, None),
    }
}
