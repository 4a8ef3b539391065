//! The smallest valid zone head, and what `parse_zone` says of that head plus a tail: for
//! the tests that check the problems reported of a zone file.
#![allow(dead_code)]

use std::path::Path;

use roundel::zone::file::parse_zone;

/// A zone with its apex NS and the server's address, to which a test adds its tail.
pub const HEAD: &str = r#"origin = "example.test."
[soa]
mname = "ns1"
rname = "hostmaster"
[names."@"]
NS = ["ns1"]
[names.ns1]
A = "192.0.2.1"
"#;

/// The problems of HEAD + `tail`, each as "line:column: key: reason".
pub fn problems(tail: &str) -> Vec<String> {
    match parse_zone(Path::new("t.toml"), &format!("{HEAD}{tail}"), Some(1)) {
        Ok(_) => vec![],
        Err(errors) => errors
            .iter()
            .map(|e| format!("{}:{}: {}: {}", e.line, e.column, e.key, e.reason))
            .collect(),
    }
}
