//! Dependency-free fuzzing and property tests that run with `cargo test`: random and
//! mutated input must never panic, and random structured messages must survive
//! encode -> decode unchanged. The PRNG is seeded, so failures reproduce.

use super::test_vectors::ALL;
use super::tests::{FOUR, TWO};
use super::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// xorshift64*: tiny, fast enough in debug builds, good enough for fuzzing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
    fn bytes_below(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Frames and decodes `buf` under both contexts. Neither may panic; a decoded message
/// must re-encode to something that decodes to the same value, except where RFC 7606
/// handling made the decode lossy on purpose.
fn check(buf: &[u8]) {
    let Ok(Some(len)) = frame(buf) else { return };
    let msg = &buf[..len];
    for ctx in [FOUR, TWO] {
        let Ok(m) = decode(msg, &ctx) else { continue };
        if let Message::Update(u) = &m {
            if u.treat_as_withdraw.is_some() || !u.discarded.is_empty() {
                continue;
            }
        }
        let mut out = Vec::new();
        m.encode(&ctx, &mut out);
        if out.len() <= MAX_MESSAGE_LEN {
            assert_eq!(decode(&out, &ctx), Ok(m), "{msg:02x?}");
        }
    }
}

fn header(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An UPDATE body with consistent outer lengths and random attributes, so that the
/// attribute parsers (not just the length checks) see garbage.
fn random_update_body(rng: &mut Rng) -> Vec<u8> {
    let codes = [1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 17, 18, 32, 9, 99, 255];
    let mut attrs = Vec::new();
    for _ in 0..rng.below(8) {
        let any = rng.byte();
        let flags = rng.pick(&[0x40, 0x80, 0xc0, 0x50, 0xd0, 0x90, any]);
        let any = rng.below(64);
        let len = rng.pick(&[0, 1, 2, 3, 4, 6, 8, 12, any]);
        let value = rng.bytes(len);
        attrs.extend_from_slice(&[flags, rng.pick(&codes)]);
        if flags & FLAG_EXTENDED_LENGTH != 0 {
            attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            attrs.push(value.len() as u8);
        }
        attrs.extend_from_slice(&value);
    }
    let withdrawn = random_prefixes(rng);
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(&withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&random_prefixes(rng));
    body
}

/// Mostly well-formed IPv4 prefixes, so that decoding gets past them to the attributes.
fn random_prefixes(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(10) {
        return rng.bytes_below(12);
    }
    let mut out = Vec::new();
    for _ in 0..rng.below(3) {
        let len = rng.below(33);
        out.push(len as u8);
        out.extend_from_slice(&rng.bytes(len.div_ceil(8)));
    }
    out
}

#[test]
fn random_messages_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..100_000 {
        let kind = if rng.chance(95) {
            1 + rng.below(5) as u8
        } else {
            rng.byte()
        };
        let body = if kind == TYPE_UPDATE && rng.chance(70) {
            random_update_body(&mut rng)
        } else {
            let n = if rng.chance(98) {
                rng.below(64)
            } else {
                rng.below(4078)
            };
            rng.bytes(n)
        };
        let mut msg = header(kind, &body);
        if i % 16 == 0 {
            // Garbage headers too, and truncated buffers.
            let at = rng.below(19);
            msg[at] = rng.byte();
            msg.truncate(rng.below(msg.len() + 1));
        }
        check(&msg);
        // decode on its own must cope with whatever it is handed.
        let _ = decode(&msg, &FOUR);
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut m = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 | 1 => {
                // Mostly past the marker, where the interesting parsing is.
                let at = if rng.chance(90) && m.len() > 16 {
                    16 + rng.below(m.len() - 16)
                } else {
                    rng.below(m.len())
                };
                m[at] ^= 1 << rng.below(8);
            }
            2 => {
                let at = 16 + rng.below(m.len().saturating_sub(16));
                let any = rng.byte();
                m[at] = rng.pick(&[0, 1, 2, 0x7f, 0x80, 0xff, any]);
            }
            3 => m.truncate(rng.below(m.len() + 1).max(19)),
            4 => {
                // Splice: our head, another message's tail.
                let other = &seeds[rng.below(seeds.len())];
                let (a, b) = (rng.below(m.len()), rng.below(other.len()));
                m.truncate(a.max(19));
                m.extend_from_slice(&other[b..]);
            }
            _ => {
                let at = rng.below(m.len() + 1).max(19);
                m.insert(at.min(m.len()), rng.byte());
            }
        }
    }
    // Usually repair the length field so that the body parsers get the damage.
    if rng.chance(80) && m.len() >= 19 && m.len() <= MAX_MESSAGE_LEN {
        let len = (m.len() as u16).to_be_bytes();
        m[16..18].copy_from_slice(&len);
    }
    m
}

#[test]
fn mutated_peer_messages_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut seeds: Vec<Vec<u8>> = ALL.iter().map(|m| m.to_vec()).collect();
    for _ in 0..20 {
        let mut out = Vec::new();
        Message::Update(random_update(&mut rng)).encode(&FOUR, &mut out);
        seeds.push(out);
    }
    for _ in 0..100_000 {
        let m = mutate(&mut rng, &seeds);
        check(&m);
    }
}

fn v4net(rng: &mut Rng) -> Ipv4Net {
    let len = rng.below(33) as u8;
    Ipv4Net::new(Ipv4Addr::from(rng.next() as u32), len)
        .expect("len <= 32")
        .trunc()
}

fn v6net(rng: &mut Rng) -> Ipv6Net {
    let len = rng.below(129) as u8;
    let addr = Ipv6Addr::from((u128::from(rng.next()) << 64) | u128::from(rng.next()));
    Ipv6Net::new(addr, len).expect("len <= 128").trunc()
}

fn asn(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => rng.below(65536) as u32,
        1 => 64512 + rng.below(1024) as u32,
        2 => AS_TRANS,
        _ => rng.next() as u32,
    }
}

fn as_path(rng: &mut Rng) -> Vec<Segment> {
    let mut path = Vec::new();
    // Confederation segments only lead (where RFC 6793 merging keeps them) and hold
    // 2-octet ASNs, so that 2-octet sessions round-trip exactly.
    if rng.chance(20) {
        let kind = rng.pick(&[SegmentKind::ConfedSequence, SegmentKind::ConfedSet]);
        let asns = (0..1 + rng.below(3))
            .map(|_| rng.below(65536) as u32)
            .collect();
        path.push(Segment { kind, asns });
    }
    for _ in 0..rng.below(4) {
        let kind = rng.pick(&[SegmentKind::Sequence, SegmentKind::Set]);
        let asns = (0..1 + rng.below(8)).map(|_| asn(rng)).collect();
        path.push(Segment { kind, asns });
    }
    path
}

fn next_hop(rng: &mut Rng, afi: u16) -> NextHop {
    let v6 =
        |rng: &mut Rng| Ipv6Addr::from((u128::from(rng.next()) << 64) | u128::from(rng.next()));
    match rng.below(4) {
        0 if afi == AFI_IPV4 => NextHop::V4(Ipv4Addr::from(rng.next() as u32)),
        0 => NextHop::V6 {
            global: Ipv4Addr::from(rng.next() as u32).to_ipv6_mapped(),
            link_local: None,
        },
        1 => NextHop::V6 {
            global: v6(rng),
            link_local: Some(v6(rng)),
        },
        _ => NextHop::V6 {
            global: v6(rng),
            link_local: None,
        },
    }
}

fn prefixes(rng: &mut Rng, afi: u16, max: usize) -> Vec<IpNet> {
    (0..rng.below(max + 1))
        .map(|_| match afi {
            AFI_IPV4 => IpNet::V4(v4net(rng)),
            _ => IpNet::V6(v6net(rng)),
        })
        .collect()
}

fn random_update(rng: &mut Rng) -> Update {
    let mut u = Update {
        withdrawn: (0..rng.below(5)).map(|_| v4net(rng)).collect(),
        nlri: (0..rng.below(5)).map(|_| v4net(rng)).collect(),
        ..Update::default()
    };
    let a = &mut u.attributes;
    if rng.chance(50) {
        let afi = rng.pick(&[AFI_IPV4, AFI_IPV6, AFI_IPV6]);
        // Mostly unicast; sometimes a family we do not decode (NLRI stays empty).
        let (safi, nlri) = if rng.chance(90) {
            (SAFI_UNICAST, prefixes(rng, afi, 6))
        } else {
            (rng.pick(&[2, 4, 128]), Vec::new())
        };
        let next_hop = next_hop(rng, afi);
        a.mp_reach = Some(MpReach {
            afi,
            safi,
            next_hop,
            nlri,
        });
    }
    if rng.chance(30) {
        let afi = rng.pick(&[AFI_IPV4, AFI_IPV6]);
        let withdrawn = prefixes(rng, afi, 6);
        a.mp_unreach = Some(MpUnreach {
            afi,
            safi: SAFI_UNICAST,
            withdrawn,
        });
    }
    let announces = !u.nlri.is_empty() || a.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
    if announces || rng.chance(50) {
        a.origin = Some(rng.pick(&[Origin::Igp, Origin::Egp, Origin::Incomplete]));
        a.as_path = Some(as_path(rng));
    }
    if !u.nlri.is_empty() || rng.chance(30) {
        a.next_hop = Some(Ipv4Addr::from(rng.next() as u32));
    }
    a.med = rng.chance(30).then(|| rng.next() as u32);
    a.local_pref = rng.chance(30).then(|| rng.next() as u32);
    a.atomic_aggregate = rng.chance(20);
    a.aggregator = rng
        .chance(20)
        .then(|| (asn(rng), Ipv4Addr::from(rng.next() as u32)));
    a.communities = (0..rng.below(6)).map(|_| rng.next() as u32).collect();
    a.large_communities = (0..rng.below(4))
        .map(|_| [rng.next() as u32, rng.next() as u32, rng.next() as u32])
        .collect();
    // Unknown optional attributes with distinct codes (duplicates would be dropped),
    // some long enough to need the extended length.
    let mut codes = vec![9u8, 10, 16, 22, 26, 35, 40, 128, 200, 255];
    for _ in 0..rng.below(4) {
        let code = codes.swap_remove(rng.below(codes.len()));
        let flags = rng.pick(&[0x80, 0xc0, 0xe0, 0xa0]);
        let len = if rng.chance(20) {
            256 + rng.below(300)
        } else {
            rng.below(20)
        };
        a.other.push(RawAttribute {
            flags,
            code,
            value: rng.bytes(len),
        });
    }
    a.other.sort_by_key(|o| o.code);
    u
}

fn random_open(rng: &mut Rng) -> Open {
    let asn = asn(rng);
    let mut capabilities = Vec::new();
    let many = rng.chance(10);
    for _ in 0..rng.below(10) {
        capabilities.push(match rng.below(8) {
            0 => Capability::Multiprotocol {
                afi: rng.next() as u16,
                safi: rng.byte(),
            },
            1 => Capability::RouteRefresh,
            2 => Capability::EnhancedRouteRefresh,
            3 => Capability::GracefulRestart(rng.bytes_below(10)),
            4 => {
                let n = 4 * rng.below(3);
                Capability::AddPath(rng.bytes(n))
            }
            5 => Capability::ExtendedMessage,
            _ => Capability::Unknown {
                code: rng.pick(&[3, 5, 71, 73, 128, 255]),
                value: if many {
                    rng.bytes(200)
                } else {
                    rng.bytes_below(30)
                },
            },
        });
    }
    // The decoded ASN comes from the capability when there is one, so it must agree.
    if asn > 0xffff || rng.chance(50) {
        capabilities.insert(
            rng.below(capabilities.len() + 1),
            Capability::FourOctetAs(asn),
        );
    }
    Open {
        version: 4,
        asn,
        hold_time: rng.next() as u16,
        bgp_id: Ipv4Addr::from(rng.next() as u32),
        capabilities,
    }
}

#[test]
fn structured_messages_round_trip() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for i in 0..20_000 {
        let ctx = if i % 2 == 0 { FOUR } else { TWO };
        let m = match rng.below(10) {
            0..=5 => Message::Update(random_update(&mut rng)),
            6 | 7 => Message::Open(random_open(&mut rng)),
            8 => Message::Notification(Notification::with_data(
                rng.byte(),
                rng.byte(),
                rng.bytes_below(40),
            )),
            _ => Message::RouteRefresh(RouteRefresh {
                afi: rng.next() as u16,
                safi: rng.byte(),
                subtype: rng.byte(),
            }),
        };
        let mut out = Vec::new();
        m.encode(&ctx, &mut out);
        assert!(out.len() <= MAX_MESSAGE_LEN, "generator too generous");
        assert_eq!(frame(&out), Ok(Some(out.len())));
        assert_eq!(decode(&out, &ctx), Ok(m), "{out:02x?}");
    }
}
