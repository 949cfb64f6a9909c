//! VRPs from files: the JSON export that rpki-client, Routinator and stayrtr share
//! (`{"roas":[{"prefix":"192.0.2.0/24","maxLength":24,"asn":"AS65001"},…]}`; `asn` as
//! `"AS65001"` or `65001`; other keys such as `ta`, `expires` or `metadata` are ignored), and
//! SLURM local exceptions (RFC 8416): filters that drop VRPs and assertions that add them.
//!
//! The export is streamed: each ROA becomes a [`Vrp`] as it is read, borrowing its strings
//! from the input, so loading 500k VRPs allocates the result and nothing per entry.

use super::vrp::Vrp;
use ipnet::IpNet;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::io::Read;

/// An AS number written as `65001`, `"65001"` or `"AS65001"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asn(u32);

impl<'de> Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Asn, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Asn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS number (65001 or \"AS65001\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Asn, E> {
                u32::try_from(v)
                    .map(Asn)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Asn, E> {
                let digits = v
                    .strip_prefix("AS")
                    .or_else(|| v.strip_prefix("as"))
                    .unwrap_or(v);
                digits
                    .parse()
                    .map(Asn)
                    .map_err(|_| E::custom(format!("{v:?} is not an AS number")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a prefix and checks `max_length` against it (RFC 6482: len ≤ maxLength ≤ 32/128).
fn vrp(prefix: &str, max_length: Option<u8>, asn: u32) -> Result<Vrp, String> {
    let net: IpNet = prefix
        .parse()
        .map_err(|_| format!("{prefix:?} is not a prefix"))?;
    if net.trunc() != net {
        return Err(format!("{prefix} has host bits set"));
    }
    let max_length = max_length.unwrap_or(net.prefix_len());
    if max_length < net.prefix_len() || max_length > net.max_prefix_len() {
        return Err(format!("maxLength {max_length} is invalid for {prefix}"));
    }
    Ok(Vrp {
        prefix: net,
        max_length,
        asn,
    })
}

#[derive(Deserialize)]
struct RawRoa<'a> {
    /// Borrowed when parsing a slice; a short-lived copy when streaming from a file.
    #[serde(borrow)]
    prefix: Cow<'a, str>,
    #[serde(rename = "maxLength")]
    max_length: Option<u8>,
    asn: Asn,
}

/// The `roas` array, each ROA handed to the sink as it is read.
struct Roas<'s>(&'s mut dyn FnMut(Vrp));

impl<'de> DeserializeSeed<'de> for Roas<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Roas<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of ROAs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let next = seq
                .next_element::<RawRoa<'de>>()
                .map_err(|e| de::Error::custom(format!("roas[{i}]: {e}")))?;
            let Some(r) = next else { return Ok(()) };
            let v = vrp(&r.prefix, r.max_length, r.asn.0)
                .map_err(|e| de::Error::custom(format!("roas[{i}]: {e}")))?;
            (self.0)(v);
            i += 1;
        }
    }
}

/// The export object: `roas` goes to the sink, every other member is skipped unread.
struct Export<'s>(&'s mut dyn FnMut(Vrp));

impl<'de> DeserializeSeed<'de> for Export<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Export<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a VRP export object with a \"roas\" array")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "roas" && !seen {
                map.next_value_seed(Roas(&mut *self.0))?;
                seen = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::missing_field("roas"))
        }
    }
}

/// Reads a JSON VRP export held in memory. Errors name the entry and, for syntax errors,
/// the line.
pub fn parse_export(json: &[u8]) -> Result<Vec<Vrp>, String> {
    let mut out = Vec::new();
    let mut push = |v: Vrp| out.push(v);
    let mut de = serde_json::Deserializer::from_slice(json);
    Export(&mut push)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("VRP file: {e}"))?;
    Ok(out)
}

/// Streams a JSON VRP export from `reader` into `sink`, one VRP at a time: memory stays at
/// what the sink keeps (no copy of the file, no list of all entries).
pub fn read_export(reader: impl Read, sink: &mut dyn FnMut(Vrp)) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    Export(sink)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("VRP file: {e}"))
}

/// SLURM (RFC 8416) local exceptions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slurm {
    /// Drop VRPs matching these: a prefix (covering the VRP's prefix), an ASN, or both.
    pub filters: Vec<(Option<IpNet>, Option<u32>)>,
    /// Add these.
    pub assertions: Vec<Vrp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSlurm {
    slurm_version: u32,
    validation_output_filters: RawFilters,
    locally_added_assertions: RawAssertions,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFilters {
    prefix_filters: Vec<RawPrefixFilter>,
    #[allow(dead_code)]
    bgpsec_filters: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPrefixFilter {
    prefix: Option<String>,
    asn: Option<Asn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAssertions {
    prefix_assertions: Vec<RawPrefixAssertion>,
    #[allow(dead_code)]
    bgpsec_assertions: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPrefixAssertion {
    prefix: String,
    asn: Asn,
    max_prefix_length: Option<u8>,
}

/// Reads a SLURM file (version 1; all four members are required by RFC 8416 §3.2).
pub fn parse_slurm(json: &[u8]) -> Result<Slurm, String> {
    let raw: RawSlurm = crate::input::from_json(json).map_err(|e| format!("SLURM file: {e}"))?;
    if raw.slurm_version != 1 {
        return Err(format!(
            "SLURM file: slurmVersion {} is not supported (only 1)",
            raw.slurm_version
        ));
    }
    let mut s = Slurm::default();
    for (i, f) in raw
        .validation_output_filters
        .prefix_filters
        .iter()
        .enumerate()
    {
        let prefix =
            match &f.prefix {
                Some(p) => Some(p.parse::<IpNet>().map_err(|_| {
                    format!("SLURM file: prefixFilters[{i}]: {p:?} is not a prefix")
                })?),
                None => None,
            };
        if prefix.is_none() && f.asn.is_none() {
            return Err(format!(
                "SLURM file: prefixFilters[{i}] needs a prefix, an asn or both"
            ));
        }
        s.filters.push((prefix, f.asn.map(|a| a.0)));
    }
    for (i, a) in raw
        .locally_added_assertions
        .prefix_assertions
        .iter()
        .enumerate()
    {
        let v = vrp(&a.prefix, a.max_prefix_length, a.asn.0)
            .map_err(|e| format!("SLURM file: prefixAssertions[{i}]: {e}"))?;
        s.assertions.push(v);
    }
    Ok(s)
}

impl Slurm {
    /// Whether a VRP survives the filters (RFC 8416 §4.1).
    pub fn keeps(&self, v: &Vrp) -> bool {
        !self.filters.iter().any(|(p, asn)| {
            p.is_none_or(|p| p.contains(&v.prefix)) && asn.is_none_or(|a| a == v.asn)
        })
    }

    /// RFC 8416 §4: filters remove matching VRPs, then assertions are added.
    pub fn apply(&self, vrps: &mut Vec<Vrp>) {
        vrps.retain(|v| self.keeps(v));
        vrps.extend(self.assertions.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &str, max: u8, asn: u32) -> Vrp {
        Vrp {
            prefix: p.parse().expect("prefix"),
            max_length: max,
            asn,
        }
    }

    #[test]
    fn reads_the_three_exporters_formats() {
        // stayrtr / Routinator style
        let a = br#"{"roas":[{"prefix":"2001:db8:100::/48","maxLength":56,"asn":"AS65001","ta":"test"},
                             {"prefix":"192.0.2.0/24","maxLength":24,"asn":"AS65002","ta":"test"}]}"#;
        // rpki-client style: numeric asn, metadata, expires
        let b = br#"{"metadata":{"buildtime":"2026-01-01T00:00:00Z"},
                     "roas":[{"asn":65001,"prefix":"2001:db8:100::/48","maxLength":56,"ta":"x","expires":1}]}"#;
        assert_eq!(
            parse_export(a).expect("a"),
            vec![
                v("2001:db8:100::/48", 56, 65001),
                v("192.0.2.0/24", 24, 65002)
            ]
        );
        assert_eq!(
            parse_export(b).expect("b"),
            vec![v("2001:db8:100::/48", 56, 65001)]
        );
    }

    #[test]
    fn streams_from_a_reader_skipping_other_members() {
        let json: &[u8] = br#"{"metadata":{"counts":{"vrps":2},"list":[1,2,{"x":"y"}]},
            "roas":[{"prefix":"192.0.2.0/24","maxLength":24,"asn":"AS65002"},
                    {"prefix":"2001:db8::/32","maxLength":48,"asn":65001}],"trailer":null}"#;
        let mut got = Vec::new();
        read_export(json, &mut |v| got.push(v)).expect("read");
        assert_eq!(
            got,
            vec![v("192.0.2.0/24", 24, 65002), v("2001:db8::/32", 48, 65001)]
        );
        let e = read_export(&br#"{"metadata":{}}"#[..], &mut |_| {}).unwrap_err();
        assert!(e.contains("roas"), "{e}");
        let e = read_export(&br#"{"roas":[]} trailing"#[..], &mut |_| {}).unwrap_err();
        assert!(e.contains("trailing"), "{e}");
    }

    #[test]
    fn bad_entries_are_named() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"roas":[{"prefix":"nope","maxLength":24,"asn":1}]}"#,
                "roas[0]",
            ),
            (
                br#"{"roas":[{"prefix":"192.0.2.1/24","maxLength":24,"asn":1}]}"#,
                "host bits",
            ),
            (
                br#"{"roas":[{"prefix":"192.0.2.0/24","maxLength":23,"asn":1}]}"#,
                "maxLength 23",
            ),
            (
                br#"{"roas":[{"prefix":"192.0.2.0/24","maxLength":24,"asn":"ASx"}]}"#,
                "AS number",
            ),
            (b"{\"roas\":[", "VRP file"),
        ];
        for (json, want) in cases {
            let e = parse_export(json).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn slurm_filters_then_adds() {
        let s = parse_slurm(
            br#"{"slurmVersion":1,
                 "validationOutputFilters":{"prefixFilters":[
                    {"prefix":"192.0.2.0/24","comment":"all VRPs inside"},
                    {"asn":65009},
                    {"prefix":"198.51.100.0/24","asn":65003}],
                  "bgpsecFilters":[]},
                 "locallyAddedAssertions":{"prefixAssertions":[
                    {"asn":65010,"prefix":"203.0.113.0/24","maxPrefixLength":25,"comment":"ours"}],
                  "bgpsecAssertions":[]}}"#,
        )
        .expect("slurm");
        let mut vrps = vec![
            v("192.0.2.128/25", 25, 65001),  // inside the filtered prefix
            v("10.0.0.0/8", 8, 65009),       // filtered ASN
            v("198.51.100.0/24", 24, 65003), // prefix+asn filter
            v("198.51.100.0/24", 24, 65004), // same prefix, other ASN: kept
        ];
        s.apply(&mut vrps);
        assert_eq!(
            vrps,
            vec![
                v("198.51.100.0/24", 24, 65004),
                v("203.0.113.0/24", 25, 65010)
            ]
        );
        assert!(parse_slurm(br#"{"slurmVersion":2,"validationOutputFilters":{"prefixFilters":[],"bgpsecFilters":[]},"locallyAddedAssertions":{"prefixAssertions":[],"bgpsecAssertions":[]}}"#).unwrap_err().contains("slurmVersion 2"));
        assert!(
            parse_slurm(br#"{"slurmVersion":1}"#).is_err(),
            "members are required"
        );
    }
}
