//! AS_PATH / AS4_PATH segments (RFC 4271 §4.3, RFC 5065, RFC 6793).

use super::reader::Reader;
use super::AS_TRANS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    Set,
    Sequence,
    ConfedSequence,
    ConfedSet,
}

impl SegmentKind {
    fn from_wire(t: u8) -> Option<SegmentKind> {
        Some(match t {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            _ => return None,
        })
    }

    fn to_wire(self) -> u8 {
        match self {
            SegmentKind::Set => 1,
            SegmentKind::Sequence => 2,
            SegmentKind::ConfedSequence => 3,
            SegmentKind::ConfedSet => 4,
        }
    }

    fn is_confed(self) -> bool {
        matches!(self, SegmentKind::ConfedSequence | SegmentKind::ConfedSet)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

/// Decodes segments of `width`-byte ASNs (2 or 4). `None` = malformed in the sense of
/// RFC 7606 §7.2: unknown segment type, a zero segment length, a segment overrunning the
/// attribute, or a lone trailing byte.
pub(super) fn decode(bytes: &[u8], width: usize) -> Option<Vec<Segment>> {
    let mut r = Reader::new(bytes);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let kind = SegmentKind::from_wire(r.u8()?)?;
        let count = usize::from(r.u8()?);
        if count == 0 {
            return None;
        }
        let raw = r.take(count * width)?;
        let mut raw = Reader::new(raw);
        let mut asns = Vec::with_capacity(count);
        while let Some(asn) = if width == 2 {
            raw.u16().map(u32::from)
        } else {
            raw.u32()
        } {
            asns.push(asn);
        }
        segments.push(Segment { kind, asns });
    }
    Some(segments)
}

/// Path length as RFC 6793 §4.2.3 counts it: an AS_SET is one, confederation segments
/// are zero.
fn count(path: &[Segment]) -> usize {
    path.iter()
        .map(|s| match s.kind {
            SegmentKind::Sequence => s.asns.len(),
            SegmentKind::Set => 1,
            _ => 0,
        })
        .sum()
}

/// RFC 6793 §4.2.3: rebuilds the 4-octet path from a 2-octet AS_PATH and an AS4_PATH.
/// The AS4_PATH is ignored if it is longer than the AS_PATH (an OLD speaker must have
/// dropped it or aggregated); otherwise the leading ASes that only the AS_PATH has
/// (prepended by OLD speakers) are kept in front of the AS4_PATH. Confederation segments
/// in AS4_PATH are not allowed there and are dropped (RFC 6793 §6).
pub(super) fn merge_as4(as_path: Vec<Segment>, as4_path: Vec<Segment>) -> Vec<Segment> {
    let as4: Vec<Segment> = as4_path
        .into_iter()
        .filter(|s| !s.kind.is_confed())
        .collect();
    let (n2, n4) = (count(&as_path), count(&as4));
    if n2 < n4 {
        return as_path;
    }
    let mut need = n2 - n4;
    let mut merged = Vec::with_capacity(as_path.len() + as4.len());
    for seg in as_path {
        match seg.kind {
            // Leading confederation segments belong to our side of the path: keep them.
            SegmentKind::ConfedSequence | SegmentKind::ConfedSet => merged.push(seg),
            _ if need == 0 => break,
            SegmentKind::Set => {
                need -= 1;
                merged.push(seg);
            }
            SegmentKind::Sequence => {
                let take = need.min(seg.asns.len());
                need -= take;
                merged.push(Segment {
                    kind: SegmentKind::Sequence,
                    asns: seg.asns.into_iter().take(take).collect(),
                });
            }
        }
    }
    let mut as4 = as4.into_iter();
    // Glue the kept 2-octet head onto the first AS4 sequence so that the path reads as
    // one sequence, as the OLD speakers that prepended to it wrote it.
    match (merged.last_mut(), as4.next()) {
        (Some(last), Some(first))
            if last.kind == SegmentKind::Sequence && first.kind == SegmentKind::Sequence =>
        {
            last.asns.extend(first.asns)
        }
        (_, Some(first)) => merged.push(first),
        (_, None) => {}
    }
    merged.extend(as4);
    merged
}

/// True if the path has an ASN a 2-octet peer cannot see (so AS4_PATH is needed).
pub(super) fn has_four_octet(path: &[Segment]) -> bool {
    path.iter().flat_map(|s| &s.asns).any(|&a| a > 0xffff)
}

/// Encodes segments with `width`-byte ASNs, AS_TRANS replacing what does not fit in two.
/// Segments longer than 255 ASes (the count is one byte) are split; empty ones are
/// skipped because receivers treat a zero-length segment as malformed. With
/// `skip_confed` confederation segments are left out (AS4_PATH must not carry them).
pub(super) fn encode(path: &[Segment], width: usize, skip_confed: bool, out: &mut Vec<u8>) {
    for seg in path {
        if skip_confed && seg.kind.is_confed() {
            continue;
        }
        for chunk in seg.asns.chunks(255) {
            out.push(seg.kind.to_wire());
            out.push(chunk.len() as u8);
            for &asn in chunk {
                if width == 2 {
                    let short = u16::try_from(asn).unwrap_or(AS_TRANS as u16);
                    out.extend_from_slice(&short.to_be_bytes());
                } else {
                    out.extend_from_slice(&asn.to_be_bytes());
                }
            }
        }
    }
}
