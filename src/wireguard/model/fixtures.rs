//! Rows and assertions shared by the unit tests of `input`, `rules` and `view`.

use super::default_allowed_ips;
use crate::store::wireguard::{ClientRow, ServerRow};
use crate::wireguard::error::Error;
use crate::wireguard::keys::PrivateKey;
use ipnet::IpNet;
use std::net::IpAddr;

/// What kind of answer an error becomes (`api::error` maps each kind to one status and
/// code, and tests that mapping): 422, 409, 404, 503, 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Invalid,
    Conflict,
    NotFound,
    Unavailable,
    Internal,
}

pub(crate) fn kind_of(e: &Error) -> Kind {
    match e {
        Error::Invalid(_) => Kind::Invalid,
        Error::Conflict { .. } | Error::Refused(_) => Kind::Conflict,
        Error::NotFound(_) => Kind::NotFound,
        Error::Unavailable(_) => Kind::Unavailable,
        Error::Corrupt(_) | Error::Internal | Error::Store(_) => Kind::Internal,
    }
}

fn error_of<T: std::fmt::Debug, E: Into<Error>>(r: Result<T, E>) -> Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.into(),
    }
}

pub(super) fn field<T: std::fmt::Debug, E: Into<Error>>(r: Result<T, E>) -> String {
    error_of(r).field().unwrap_or_default().to_string()
}

pub(super) fn code<T: std::fmt::Debug, E: Into<Error>>(r: Result<T, E>) -> Kind {
    kind_of(&error_of(r))
}

pub(super) fn msg<T: std::fmt::Debug, E: Into<Error>>(r: Result<T, E>) -> String {
    error_of(r).to_string()
}

pub(super) fn net(s: &str) -> IpNet {
    s.parse().expect("net")
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

pub(super) fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub(super) fn server_row(id: i64, name: &str, v4: Option<&str>, v6: Option<&str>) -> ServerRow {
    let key = PrivateKey::generate();
    ServerRow {
        id,
        name: name.into(),
        interface: format!("wg{id}"),
        description: None,
        listen_port: 51820 + id as u16,
        ipv4_address: v4.map(net),
        ipv6_address: v6.map(net),
        dns_servers: vec![ip("10.0.0.1")],
        mtu: 1420,
        endpoint: None,
        persistent_keepalive: None,
        private_key: key.to_base64(),
        public_key: key.public_key().to_base64(),
        is_active: false,
        created_at: 1_704_067_200,
        updated_at: 1_704_067_200,
    }
}

pub(crate) fn client_row(id: i64, name: &str, v4: Option<&str>, v6: Option<&str>) -> ClientRow {
    let key = PrivateKey::generate();
    ClientRow {
        id,
        server_id: 1,
        name: name.into(),
        description: None,
        enabled: true,
        public_key: key.public_key().to_base64(),
        private_key: Some(key.to_base64()),
        preshared_key: None,
        ipv4_address: v4.map(ip),
        ipv6_address: v6.map(ip),
        allowed_ips: default_allowed_ips(),
        dns_servers: vec![],
        mtu: None,
        persistent_keepalive: None,
        routed_prefixes: vec![],
        created_at: 1_704_067_200,
        updated_at: 1_704_067_200,
    }
}
