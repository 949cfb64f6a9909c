//! The link to WireGuard clients: an allocation for a client (`client_id`) is also one of
//! that client's `routed_prefixes`, written in the same transaction as the allocation, so
//! the server routes the prefix into the tunnel (`wireguard::peer_allowed_ips`). The
//! caller publishes the change after the commit (`Change::Allocation` naming the client), and
//! the WireGuard reconciler brings the running peer in line.
//!
//! These run inside the pools' transactions, so they fail in the store's words
//! ([`StoreError`]; a clash is a `Conflict` naming its field), which every domain converts.

use crate::ipam::Released;
use crate::store::ipam as q;
use crate::store::wireguard::{self as wgq, ClientFields, ClientRow};
use crate::store::{StoreError, StoreResult};
use crate::wireguard::Error;
use crate::wireguard::{check_routed, MAX_PREFIXES};
use ipnet::{IpNet, Ipv6Net};
use rusqlite::Connection;

/// A client before and after a change of its routed prefixes.
pub type ClientChange = (ClientRow, ClientRow);

fn fields_of(c: &ClientRow) -> ClientFields {
    ClientFields {
        name: c.name.clone(),
        description: c.description.clone(),
        enabled: c.enabled,
        preshared_key: c.preshared_key.clone(),
        ipv4_address: c.ipv4_address,
        ipv6_address: c.ipv6_address,
        allowed_ips: c.allowed_ips.clone(),
        dns_servers: c.dns_servers.clone(),
        mtu: c.mtu,
        persistent_keepalive: c.persistent_keepalive,
        routed_prefixes: c.routed_prefixes.clone(),
    }
}

/// Adds `prefix` to the client's routed prefixes, under the same rules as the WireGuard
/// API (no overlap with another client's prefixes or a server's subnet; at most 64).
pub(crate) fn route(
    tx: &Connection,
    client: ClientRow,
    prefix: Ipv6Net,
    now: i64,
) -> StoreResult<ClientChange> {
    let p = IpNet::V6(prefix);
    if client.routed_prefixes.len() >= MAX_PREFIXES {
        return Err(StoreError::Conflict {
            field: "client_id".into(),
            message: format!(
                "client {:?} already has {MAX_PREFIXES} routed prefixes",
                client.name
            ),
        });
    }
    check_routed(
        &[p],
        Some(client.id),
        &wgq::all_servers(tx)?,
        &wgq::all_routed(tx)?,
    )
    .map_err(|e: Error| StoreError::from(e.refield("prefix", "")))?;
    let mut f = fields_of(&client);
    f.routed_prefixes.push(p);
    let new = wgq::update_client(tx, client.id, &f, now)?;
    Ok((client, new))
}

/// Removes `prefix` from client `client_id`'s routed prefixes, if it is there.
pub(crate) fn unroute(
    tx: &Connection,
    client_id: i64,
    prefix: Ipv6Net,
    now: i64,
) -> StoreResult<Option<ClientChange>> {
    let Some(client) = wgq::get_client(tx, client_id)? else {
        return Ok(None);
    };
    let p = IpNet::V6(prefix);
    if !client.routed_prefixes.contains(&p) {
        return Ok(None);
    }
    let mut f = fields_of(&client);
    f.routed_prefixes.retain(|r| *r != p);
    let new = wgq::update_client(tx, client_id, &f, now)?;
    Ok(Some((client, new)))
}

/// Deletes the allocations of WireGuard clients that are being deleted in `tx`. Apply the
/// result to the pools' allocators (`ipam::Pools::apply`) after the commit, in the same
/// database closure.
pub fn release_for_clients(tx: &Connection, client_ids: &[i64]) -> StoreResult<Released> {
    let rows = q::allocations_of_clients(tx, client_ids)?;
    for r in &rows {
        q::delete_allocation(tx, r.id)?;
    }
    Ok(Released(
        rows.into_iter().map(|r| (r.pool_id, r.prefix)).collect(),
    ))
}
