//! Record data of a master-file entry, read field by field into exact values.
//!
//! Only the types a Roundel zone file can hold are read; any other type is refused by name.
//! Each value also knows its wire form ([`Data::wire`]), which the conversion compares with
//! what Roundel makes of the written zone file, so nothing can change on the way.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SOA, SRV, TXT};

use super::dname::DName;
use super::lexer::{Token, decode};
use crate::zone::model::Rdata;

/// Longest character-string (RFC 1035 section 3.3).
pub const MAX_CHARACTER_STRING: usize = 255;

/// The SOA fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaData {
    /// Primary server.
    pub mname: DName,
    /// Responsible mailbox.
    pub rname: DName,
    /// Serial.
    pub serial: u32,
    /// Refresh, retry, expire, minimum.
    pub timers: [u32; 4],
}

/// One record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// SOA.
    Soa(SoaData),
    /// A.
    A(Ipv4Addr),
    /// AAAA.
    Aaaa(Ipv6Addr),
    /// NS.
    Ns(DName),
    /// CNAME.
    Cname(DName),
    /// PTR.
    Ptr(DName),
    /// MX: preference, exchange.
    Mx(u16, DName),
    /// SRV: priority, weight, port, target.
    Srv(u16, u16, u16, DName),
    /// TXT: its character-strings.
    Txt(Vec<Vec<u8>>),
    /// CAA: flags, tag, value (RFC 8659 section 4.1).
    Caa(u8, Vec<u8>, Vec<u8>),
}

/// Types known to exist that Roundel zone files do not hold, for a clear message.
const OTHER_TYPES: &[&str] = &[
    "DNAME",
    "DS",
    "DNSKEY",
    "RRSIG",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "CDS",
    "CDNSKEY",
    "HINFO",
    "RP",
    "AFSDB",
    "LOC",
    "NAPTR",
    "SSHFP",
    "TLSA",
    "SMIMEA",
    "SVCB",
    "HTTPS",
    "SPF",
    "CERT",
    "OPENPGPKEY",
    "URI",
    "ZONEMD",
    "CSYNC",
    "DHCID",
    "KX",
    "IPSECKEY",
    "APL",
    "EUI48",
    "EUI64",
    "NID",
    "L32",
    "L64",
    "LP",
    "MINFO",
    "MB",
    "MG",
    "MR",
    "WKS",
    "NULL",
    "X25",
    "ISDN",
    "RT",
    "NSAP",
    "PX",
    "GPOS",
    "A6",
    "SIG",
    "KEY",
    "NXT",
    "TKEY",
    "TSIG",
    "HIP",
    "TALINK",
];

/// Whether `t` is a record type mnemonic (or `TYPEnnn`), as opposed to a TTL or class.
pub fn is_type(t: &str) -> bool {
    let u = t.to_ascii_uppercase();
    matches!(
        u.as_str(),
        "SOA" | "A" | "AAAA" | "NS" | "CNAME" | "PTR" | "MX" | "SRV" | "TXT" | "CAA"
    ) || OTHER_TYPES.contains(&u.as_str())
        || u.strip_prefix("TYPE")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads the data of a record of type `rtype` (uppercase) from `fields`; names are
/// relative to `origin`.
pub fn parse(rtype: &str, fields: &[Token], origin: Option<&DName>) -> Result<Data, String> {
    if fields.first().is_some_and(|t| !t.quoted && t.text == "\\#") {
        return Err(format!(
            "{rtype}: the generic form \\# (RFC 3597) is not supported by `roundel import`; write the data in the type's own form"
        ));
    }
    let count = |n: usize, form: &str| -> Result<(), String> {
        if fields.len() == n {
            Ok(())
        } else {
            Err(format!(
                "{rtype} data is \"{form}\": {n} field(s), found {}",
                fields.len()
            ))
        }
    };
    let name = |t: &Token| DName::parse(&t.text, origin);
    Ok(match rtype {
        "A" => {
            count(1, "address")?;
            Data::A(address(&fields[0])?)
        }
        "AAAA" => {
            count(1, "address")?;
            Data::Aaaa(address(&fields[0])?)
        }
        "NS" => {
            count(1, "name")?;
            Data::Ns(name(&fields[0])?)
        }
        "CNAME" => {
            count(1, "name")?;
            Data::Cname(name(&fields[0])?)
        }
        "PTR" => {
            count(1, "name")?;
            Data::Ptr(name(&fields[0])?)
        }
        "MX" => {
            count(2, "preference exchange")?;
            Data::Mx(number(&fields[0], "MX preference")?, name(&fields[1])?)
        }
        "SRV" => {
            count(4, "priority weight port target")?;
            Data::Srv(
                number(&fields[0], "SRV priority")?,
                number(&fields[1], "SRV weight")?,
                number(&fields[2], "SRV port")?,
                name(&fields[3])?,
            )
        }
        "TXT" => {
            if fields.is_empty() {
                return Err("TXT needs at least one character-string".into());
            }
            let mut parts = Vec::with_capacity(fields.len());
            for f in fields {
                let b = decode(&f.text)?;
                if b.len() > MAX_CHARACTER_STRING {
                    return Err(format!(
                        "a TXT character-string is at most {MAX_CHARACTER_STRING} bytes (RFC 1035 section 3.3), this one is {}: split it into several quoted strings",
                        b.len()
                    ));
                }
                parts.push(b);
            }
            Data::Txt(parts)
        }
        "CAA" => {
            count(3, "flags tag value")?;
            let flags = number(&fields[0], "CAA flags")?;
            let tag = decode(&fields[1].text)?;
            if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return Err(format!(
                    "CAA tag {:?}: 1 to 15 letters and digits (RFC 8659 section 4.1)",
                    fields[1].text
                ));
            }
            Data::Caa(flags, tag, decode(&fields[2].text)?)
        }
        "SOA" => {
            count(7, "mname rname serial refresh retry expire minimum")?;
            let mut timers = [0u32; 4];
            for (i, t) in timers.iter_mut().enumerate() {
                *t = ttl_value(&fields[3 + i].text)?;
            }
            Data::Soa(SoaData {
                mname: name(&fields[0])?,
                rname: name(&fields[1])?,
                serial: number(&fields[2], "SOA serial")?,
                timers,
            })
        }
        other => {
            return Err(format!(
                "record type {other} is not supported by Roundel zone files (supported: SOA, A, AAAA, NS, CNAME, PTR, MX, SRV, TXT, CAA)"
            ));
        }
    })
}

fn address<T: FromStr>(t: &Token) -> Result<T, String> {
    T::from_str(&t.text).map_err(|_| format!("not an address: {:?}", t.text))
}

fn number<T: FromStr>(t: &Token, what: &str) -> Result<T, String> {
    if t.quoted || !t.text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} must be a decimal number, not {:?}", t.text));
    }
    t.text
        .parse()
        .map_err(|_| format!("{what} {:?} is out of range", t.text))
}

/// A TTL: seconds, or BIND's units (`1w2d3h4m5s`, case-insensitive).
pub fn ttl_value(text: &str) -> Result<u32, String> {
    let bad = || format!("not a TTL: {text:?} (seconds, or units like 1h30m)");
    if text.is_empty() {
        return Err(bad());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("TTL {text} is out of range"));
    }
    let mut total: u64 = 0;
    let mut n: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            n = Some(n.unwrap_or(0) * 10 + u64::from(d));
            if n > Some(u64::from(u32::MAX)) {
                return Err(bad());
            }
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        total += n.take().ok_or_else(bad)? * unit;
    }
    if n.is_some() {
        return Err(bad());
    }
    u32::try_from(total).map_err(|_| format!("TTL {text} is out of range"))
}

impl Data {
    /// The record type mnemonic.
    pub fn rtype(&self) -> &'static str {
        match self {
            Data::Soa(_) => "SOA",
            Data::A(_) => "A",
            Data::Aaaa(_) => "AAAA",
            Data::Ns(_) => "NS",
            Data::Cname(_) => "CNAME",
            Data::Ptr(_) => "PTR",
            Data::Mx(..) => "MX",
            Data::Srv(..) => "SRV",
            Data::Txt(_) => "TXT",
            Data::Caa(..) => "CAA",
        }
    }

    /// Uncompressed wire-format RDATA, names in their case as written: what a server
    /// loading this record sends.
    pub fn wire(&self) -> Vec<u8> {
        let hickory = match self {
            Data::Soa(s) => RData::SOA(SOA::new(
                s.mname.to_hickory(),
                s.rname.to_hickory(),
                s.serial,
                s.timers[0] as i32,
                s.timers[1] as i32,
                s.timers[2] as i32,
                s.timers[3],
            )),
            Data::A(a) => RData::A((*a).into()),
            Data::Aaaa(a) => RData::AAAA((*a).into()),
            Data::Ns(n) => RData::NS(NS(n.to_hickory())),
            Data::Cname(n) => RData::CNAME(CNAME(n.to_hickory())),
            Data::Ptr(n) => RData::PTR(PTR(n.to_hickory())),
            Data::Mx(p, n) => RData::MX(MX::new(*p, n.to_hickory())),
            Data::Srv(p, w, port, n) => RData::SRV(SRV::new(*p, *w, *port, n.to_hickory())),
            Data::Txt(parts) => {
                RData::TXT(TXT::from_bytes(parts.iter().map(Vec::as_slice).collect()))
            }
            Data::Caa(flags, tag, value) => {
                let mut w = vec![*flags, tag.len() as u8];
                w.extend_from_slice(tag);
                w.extend_from_slice(value);
                return w;
            }
        };
        Rdata::new(hickory).wire.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::master::lexer::entries;

    fn data(line: &str) -> Result<Data, String> {
        let e = entries(line).unwrap();
        let o = DName::parse("example.test.", None).unwrap();
        parse(&e[0].tokens[0].text, &e[0].tokens[1..], Some(&o))
    }

    #[test]
    fn txt_escapes_are_decimal_bytes() {
        assert_eq!(
            data(r#"TXT "\065BC" "caf\195\169""#).unwrap(),
            Data::Txt(vec![b"ABC".to_vec(), "café".as_bytes().to_vec()])
        );
        match data(r#"TXT "caf\195\169""#).unwrap() {
            Data::Txt(p) => assert_eq!(p[0].len(), 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn txt_of_many_strings_and_the_255_byte_limit() {
        let s255 = "x".repeat(255);
        let e = data(&format!("TXT ( \"{s255}\"\n \"{s255}\" \"end\" )")).unwrap();
        assert_eq!(
            e,
            Data::Txt(vec![
                s255.clone().into(),
                s255.clone().into(),
                b"end".to_vec()
            ])
        );
        let err = data(&format!("TXT \"{s255}y\"")).unwrap_err();
        assert!(err.contains("at most 255"), "{err}");
    }

    #[test]
    fn unsupported_types_are_named() {
        let err = data("HINFO \"pc\" \"unix\"").unwrap_err();
        assert!(err.contains("HINFO is not supported"), "{err}");
        assert!(data("A \\# 4 c0000201").is_err());
    }

    #[test]
    fn ttl_units() {
        assert_eq!(ttl_value("1h30m").unwrap(), 5400);
        assert_eq!(ttl_value("2W").unwrap(), 1_209_600);
        assert_eq!(ttl_value("300").unwrap(), 300);
        assert!(ttl_value("1x").is_err());
        assert!(ttl_value("h").is_err());
    }
}
