//! Rows and assertions shared by the unit tests of `input`, `rules` and `view`.

use super::default_allowed_ips;
use crate::error::{ApiResult, ErrorCode};
use crate::store::wireguard::{ClientRow, ServerRow};
use crate::wireguard::keys::PrivateKey;
use ipnet::IpNet;
use std::net::IpAddr;

pub(super) fn field<T: std::fmt::Debug>(r: ApiResult<T>) -> String {
    r.unwrap_err().details.map(|d| d.field).unwrap_or_default()
}

pub(super) fn code<T: std::fmt::Debug>(r: ApiResult<T>) -> ErrorCode {
    r.unwrap_err().code
}

pub(super) fn msg<T: std::fmt::Debug>(r: ApiResult<T>) -> String {
    r.unwrap_err().message
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

pub(super) fn client_row(id: i64, name: &str, v4: Option<&str>, v6: Option<&str>) -> ClientRow {
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
