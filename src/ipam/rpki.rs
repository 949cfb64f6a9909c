//! `POST /ipv6/pools/{id}/validate-rpki`: RFC 6811 origin validation of a prefix of the pool
//! (default: the pool itself) as announced by an AS (default: `bgp.local_asn`), against the
//! live VRP table.

use super::error::{Error, Result};
use super::model::parse_prefix;
use crate::rpki::vrp::{State, Validation};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// Default: the pool's prefix.
    pub prefix: Option<String>,
    /// The origin AS to check. Default: `bgp.local_asn`.
    pub asn: Option<u32>,
}

/// The verdict: `state` valid / invalid / not_found, `reason` (the seed's field) adding
/// `invalid_asn` / `invalid_length`, and the matching or closest VRP (`asn`, `max_length`,
/// `vrp_prefix`), which is absent for not_found.
#[derive(Debug, Serialize, PartialEq)]
pub struct RpkiVerdict {
    pub prefix: String,
    pub origin_asn: u32,
    pub state: &'static str,
    pub valid: bool,
    pub reason: &'static str,
    pub asn: Option<u32>,
    pub max_length: Option<u8>,
    pub vrp_prefix: Option<String>,
    /// How many VRPs the answer was computed from.
    pub vrp_count: usize,
}

pub fn verdict(prefix: IpNet, origin: u32, v: Validation, vrp_count: usize) -> RpkiVerdict {
    RpkiVerdict {
        prefix: prefix.to_string(),
        origin_asn: origin,
        state: v.state.as_str(),
        valid: v.state == State::Valid,
        reason: v.state.reason().unwrap_or(v.state.as_str()),
        asn: v.vrp.map(|x| x.asn),
        max_length: v.vrp.map(|x| x.max_length),
        vrp_prefix: v.vrp.map(|x| x.prefix.to_string()),
        vrp_count,
    }
}

impl super::Service {
    /// The verdict on a prefix of pool `pool_id` (default: the pool's own) for an origin
    /// AS (default: `[bgp] local_asn`), from the live VRP table.
    pub async fn validate_rpki(&self, pool_id: i64, req: ValidateRequest) -> Result<RpkiVerdict> {
        let pool = self.get_pool(pool_id).await?;
        let pool_prefix = parse_prefix("prefix", &pool.prefix)?;
        let prefix = match req.prefix {
            None => pool_prefix,
            Some(p) => {
                let p = parse_prefix("prefix", &p)?;
                if !pool_prefix.contains(&p) {
                    return Err(Error::invalid(
                        "prefix",
                        format!("{p} is not inside pool {pool_prefix}"),
                    ));
                }
                p
            }
        };
        let Some(origin) = req.asn.or(Some(self.local_asn).filter(|a| *a != 0)) else {
            return Err(Error::invalid(
                "asn",
                "no origin AS: send \"asn\" or set bgp.local_asn in the configuration",
            ));
        };
        if !self.rpki.loaded() {
            return Err(Error::Unavailable(match self.rpki.info().last_error {
                Some(e) => format!("no RPKI data: {e}"),
                None => {
                    "no RPKI data loaded (configure rpki.vrp_file or rpki.rtr_server)".to_string()
                }
            }));
        }
        let table = self.rpki.table();
        let v = table.validate(IpNet::V6(prefix), origin);
        Ok(verdict(IpNet::V6(prefix), origin, v, table.len()))
    }
}
