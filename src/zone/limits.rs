//! Wire-size limits of zone data, checked at load so that nothing is accepted that could
//! not be sent.
//!
//! A record's data is at most 65,535 bytes (RDLENGTH is 16 bits, RFC 1035 section 3.2.1;
//! enforced by [`Rdata::try_new`](super::Rdata::try_new)), and a whole RRset must fit in
//! one DNS message, which over TCP is at most 65,535 bytes (RFC 1035 section 4.2.2). An
//! RRset that does not fit could never be answered, not even truncated, so it is an error
//! of the zone file, reported with its file, line and key.

use super::model::Rdata;

/// Largest DNS message: the TCP length prefix is 16 bits (RFC 1035 section 4.2.2).
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Header (12 bytes) plus a question for the owner name (name, type, class).
const fn message_overhead(owner_wire_len: usize) -> usize {
    12 + owner_wire_len + 4
}

/// Bytes one record of the RRset takes in an answer: a compression pointer to the owner
/// name (2), type, class, TTL and RDLENGTH (10), then the data.
fn record_len(r: &Rdata) -> usize {
    2 + 10 + r.wire.len()
}

/// Checks that an answer holding the whole RRset fits in one message.
pub fn check_rrset(owner_wire_len: usize, records: &[Rdata]) -> Result<(), String> {
    let total = message_overhead(owner_wire_len) + records.iter().map(record_len).sum::<usize>();
    if total > MAX_MESSAGE_LEN {
        return Err(format!(
            "the record set is {total} bytes in an answer, more than the {MAX_MESSAGE_LEN} bytes of a DNS message (RFC 1035 section 4.2.2): split it or shorten it"
        ));
    }
    Ok(())
}

/// Checks that the zones need at most `max_probes` probes (distinct check target and
/// check; `none` checks excluded), counting in file order; the pool that goes over the
/// cap is named with its file, line and key.
pub fn check_probes(zones: &[super::Zone], max_probes: usize) -> Result<(), super::ZoneError> {
    use crate::pool::CheckKind;
    let mut seen = std::collections::HashSet::new();
    for zone in zones {
        for pool in &zone.pools {
            if pool.spec.check.kind == CheckKind::None {
                continue;
            }
            for node in &pool.spec.nodes {
                seen.insert((&node.probe, &pool.spec.check));
            }
            if seen.len() > max_probes {
                return Err(super::ZoneError {
                    file: zone.file.clone(),
                    line: pool.position.0,
                    column: pool.position.1,
                    key: format!("pools.{}", pool.spec.key),
                    reason: format!(
                        "this pool brings the health probes (distinct check target and check) over the limit of {max_probes}: {} so far. Share checks and targets between pools, use fewer nodes, or raise [health] max_probes in the server configuration",
                        seen.len()
                    ),
                });
            }
        }
    }
    Ok(())
}
