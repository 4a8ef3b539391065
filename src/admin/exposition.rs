//! Which text format `/metrics` answers: classic Prometheus unless OpenMetrics is asked for.
//!
//! prometheus-client writes OpenMetrics 1.0 only. Most scrapers and `promtool check
//! metrics` expect the classic text format 0.0.4 unless they say otherwise in `Accept`
//! (Prometheus sends `application/openmetrics-text` first when it can read it), so the
//! OpenMetrics text is rewritten: counter families are named after their `_total`
//! samples, `info` becomes a gauge named `_info`, `unknown` becomes `untyped`, and the
//! `# UNIT` and `# EOF` lines go.

/// Content type of the classic text format.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let media = fields.next().unwrap_or_default();
            let q_zero = fields.any(|f| f.replace(' ', "") == "q=0");
            media.eq_ignore_ascii_case("application/openmetrics-text") && !q_zero
        })
    })
}

/// OpenMetrics text as the classic Prometheus text format.
pub fn to_classic(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    // One family at a time: its descriptor lines, then its samples.
    let lines: Vec<&str> = om.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line == "# EOF" || line.starts_with("# UNIT ") {
            i += 1;
            continue;
        }
        let Some(family) = descriptor_name(line) else {
            out.push_str(line);
            out.push('\n');
            i += 1;
            continue;
        };
        // Gather this family's descriptor lines.
        let mut help = None;
        let mut kind = "untyped";
        while i < lines.len() && descriptor_name(lines[i]) == Some(family) {
            let l = lines[i];
            if let Some(rest) = l.strip_prefix("# HELP ") {
                help = Some(rest[family.len()..].trim_start().to_owned());
            } else if let Some(rest) = l.strip_prefix("# TYPE ") {
                kind = rest[family.len()..].trim();
            }
            i += 1;
        }
        let (name, kind) = match kind {
            "counter" => (format!("{family}_total"), "counter"),
            "info" => (format!("{family}_info"), "gauge"),
            "unknown" => (family.to_owned(), "untyped"),
            other => (family.to_owned(), other),
        };
        if let Some(h) = help {
            out.push_str(&format!("# HELP {name} {h}\n"));
        }
        out.push_str(&format!("# TYPE {name} {kind}\n"));
    }
    out
}

/// The family a `# HELP`, `# TYPE` or `# UNIT` line is about.
fn descriptor_name(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .or_else(|| line.strip_prefix("# UNIT "))?;
    rest.split(' ').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        )));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text; q=0, text/plain"
        )));
    }

    #[test]
    fn families_renamed() {
        let om = "# HELP q Queries.\n# TYPE q counter\nq_total{t=\"udp\"} 3\n# HELP b Build.\n# TYPE b info\nb_info{version=\"1\"} 1\n# HELP u Up.\n# TYPE u gauge\n# UNIT u seconds\nu 1\n# EOF\n";
        assert_eq!(
            to_classic(om),
            "# HELP q_total Queries.\n# TYPE q_total counter\nq_total{t=\"udp\"} 3\n# HELP b_info Build.\n# TYPE b_info gauge\nb_info{version=\"1\"} 1\n# HELP u Up.\n# TYPE u gauge\nu 1\n"
        );
    }
}
