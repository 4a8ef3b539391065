//! `roundel ctl`: the admin API from the shell.
//!
//! ```text
//! roundel ctl status
//! roundel ctl drain web.example.test web1
//! roundel ctl drain 192.0.2.11                         # in every pool listing it
//! roundel ctl weight web.example.test 192.0.2.11 5      # or: clear
//! roundel ctl explain web.example.test AAAA --client 198.51.100.7
//! roundel ctl --json status | jq .
//! ```
//!
//! Readable tables by default, the API's JSON with `--json`. The server is
//! `--server URL` (default `http://127.0.0.1:8053`); every request sends the admin token
//! from `--token`, `--token-file` or `ROUNDEL_ADMIN_TOKEN` (needed to change state), else
//! the read token from `--read-token` or `ROUNDEL_READ_TOKEN` (for servers whose reads
//! need a token).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

/// Environment variable holding the read token for `roundel ctl`.
pub const READ_TOKEN_ENV: &str = "ROUNDEL_READ_TOKEN";

/// How long one API call may take (a reload waits for new nodes' first checks).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `roundel ctl`.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// Admin API base URL.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8053",
        env = "ROUNDEL_ADMIN_URL"
    )]
    pub server: String,
    /// Admin token for state-changing commands.
    #[arg(long, global = true, env = crate::admin::TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
    /// Read token, for servers whose reads need one (used when no admin token is given).
    #[arg(long, global = true, env = READ_TOKEN_ENV, hide_env_values = true)]
    pub read_token: Option<String>,
    /// File holding the admin token (a systemd credential: `%d/admin.token`).
    #[arg(long, global = true, conflicts_with = "token")]
    pub token_file: Option<std::path::PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// One `roundel ctl` command.
#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// Zones, pools and every node's state.
    Status,
    /// Stop handing a node out; says when it is safe to stop it. With only an address, in every pool that lists it.
    Drain {
        /// Pool name (`web.example.test`), or a node address alone: every pool listing it.
        pool: String,
        /// Node label or address (omit to give an address in `pool`'s place).
        node: Option<String>,
    },
    /// Take a node out of service whatever its checks say. With only an address, in every pool that lists it.
    Maint {
        /// Pool name (`web.example.test`), or a node address alone: every pool listing it.
        pool: String,
        /// Node label or address (omit to give an address in `pool`'s place).
        node: Option<String>,
    },
    /// Clear drain / maint: the node follows its checks again. With only an address, in every pool that lists it.
    Ready {
        /// Pool name (`web.example.test`), or a node address alone: every pool listing it.
        pool: String,
        /// Node label or address (omit to give an address in `pool`'s place).
        node: Option<String>,
    },
    /// Set a node's weight override, or `clear` it.
    Weight {
        /// Pool name.
        pool: String,
        /// Node label or address.
        node: String,
        /// A weight (0 takes the node out) or `clear`.
        weight: String,
    },
    /// Reload the zone files now; prints every problem if the new files are rejected.
    Reload,
    /// The answer Roundel gives to a question, and why.
    Explain {
        /// Question name.
        name: String,
        /// Question type.
        #[arg(default_value = "A")]
        qtype: String,
        /// Client address to assume.
        #[arg(long)]
        client: Option<String>,
        /// EDNS Client Subnet to assume (`198.51.100.0/24`).
        #[arg(long)]
        ecs: Option<String>,
    },
    /// Turn per-query logging on or off.
    QueryLog {
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The server could not be reached or the request failed.
    #[error("cannot reach the admin API at {url}: {reason}")]
    Connect {
        /// URL called.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    #[error("{status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
        /// The body, for `--json`.
        body: Value,
    },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), CtlError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let connect = |e: reqwest::Error| CtlError::Connect {
            url: url.clone(),
            reason: {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(x) = src {
                    let _ = write!(s, ": {x}");
                    src = x.source();
                }
                s
            },
        };
        let resp = req.send().await.map_err(connect)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(connect)?;
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, body))
    }

    /// A call whose non-2xx answers are errors.
    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CtlError> {
        let (status, body) = self.call(method, path, body).await?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            let message = body["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string());
            Err(CtlError::Api {
                status,
                message,
                body,
            })
        }
    }
}

/// Runs `roundel ctl` and returns the exit code: 0 done, 1 the server refused or reported
/// a failure, 2 the server could not be reached or the arguments are wrong.
pub fn main(args: CtlArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roundel ctl: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let json = args.json;
    match rt.block_on(run(args)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(CtlError::Api { body, .. }) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
            ExitCode::FAILURE
        }
        Err(e @ CtlError::Api { .. }) => {
            eprintln!("roundel ctl: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("roundel ctl: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs one command and returns what to print.
pub async fn run(args: CtlArgs) -> Result<String, CtlError> {
    // reqwest is built without a default TLS provider (see Cargo.toml); give it ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| CtlError::Connect {
            url: args.server.clone(),
            reason: e.to_string(),
        })?;
    let api = Api {
        client,
        base: args.server.trim_end_matches('/').to_owned(),
        token: match &args.token_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| CtlError::Usage(format!("--token-file {}: {e}", f.display())))?,
            ),
            None => args.token.clone(),
        }
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .or_else(|| args.read_token.clone().filter(|t| !t.trim().is_empty())),
    };
    use reqwest::Method;
    let node_path =
        |pool: &str, node: &str| format!("/api/v1/pools/{}/nodes/{}", encode(pool), encode(node));
    // `drain ADDR` is the address in every pool; `drain POOL NODE` one pool's node.
    let target_path = |pool: &str, node: Option<&str>| match node {
        Some(node) => node_path(pool, node),
        None => format!("/api/v1/nodes/{}", encode(pool)),
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    match args.command {
        CtlCommand::Status => {
            let v = api.ok(Method::GET, "/api/v1/status", None).await?;
            Ok(if args.json {
                pretty(&v)
            } else {
                status_table(&v)
            })
        }
        CtlCommand::Drain { pool, node } => {
            action(
                &api,
                &target_path(&pool, node.as_deref()),
                "drain",
                args.json,
            )
            .await
        }
        CtlCommand::Maint { pool, node } => {
            action(
                &api,
                &target_path(&pool, node.as_deref()),
                "maint",
                args.json,
            )
            .await
        }
        CtlCommand::Ready { pool, node } => {
            action(
                &api,
                &target_path(&pool, node.as_deref()),
                "ready",
                args.json,
            )
            .await
        }
        CtlCommand::Weight { pool, node, weight } => {
            let path = format!("{}/weight", node_path(&pool, &node));
            let v = if weight == "clear" {
                api.ok(Method::DELETE, &path, None).await?
            } else {
                let w: u32 = weight.parse().map_err(|_| {
                    CtlError::Usage(format!("weight: {weight:?} is not a number or \"clear\""))
                })?;
                api.ok(Method::PUT, &path, Some(serde_json::json!({ "weight": w })))
                    .await?
            };
            Ok(if args.json {
                pretty(&v)
            } else {
                format!("{}\n", v["message"].as_str().unwrap_or_default())
            })
        }
        CtlCommand::Reload => {
            let (status, v) = api.call(Method::POST, "/api/v1/reload", None).await?;
            if args.json && (status == 200 || status == 422) {
                return if status == 200 {
                    Ok(pretty(&v))
                } else {
                    Err(CtlError::Api {
                        status,
                        message: "reload rejected".into(),
                        body: v,
                    })
                };
            }
            match status {
                200 => Ok(format!(
                    "reloaded: serving generation {}\n",
                    v["last"]["generation"]
                )),
                422 => {
                    let mut msg = format!(
                        "reload rejected, still serving generation {}:",
                        v["last"]["generation"]
                    );
                    for e in v["last"]["errors"].as_array().into_iter().flatten() {
                        let _ = write!(msg, "\n  {}", e["text"].as_str().unwrap_or_default());
                    }
                    Err(CtlError::Api {
                        status,
                        message: msg,
                        body: v,
                    })
                }
                _ => Err(CtlError::Api {
                    status,
                    message: v["error"].as_str().unwrap_or_default().to_owned(),
                    body: v,
                }),
            }
        }
        CtlCommand::Explain {
            name,
            qtype,
            client,
            ecs,
        } => {
            let mut path = format!(
                "/api/v1/explain?name={}&type={}",
                encode(&name),
                encode(&qtype)
            );
            if let Some(c) = client {
                let _ = write!(path, "&client={}", encode(&c));
            }
            if let Some(e) = ecs {
                let _ = write!(path, "&ecs={}", encode(&e));
            }
            let v = api.ok(Method::GET, &path, None).await?;
            Ok(if args.json {
                pretty(&v)
            } else {
                explain_text(&v)
            })
        }
        CtlCommand::QueryLog { state } => {
            let v = api
                .ok(
                    Method::PUT,
                    "/api/v1/query-log",
                    Some(serde_json::json!({ "enabled": state == "on" })),
                )
                .await?;
            Ok(if args.json {
                pretty(&v)
            } else {
                format!(
                    "per-query logging {}\n",
                    if v["enabled"] == Value::Bool(true) {
                        "on"
                    } else {
                        "off"
                    }
                )
            })
        }
    }
}

async fn action(api: &Api, node: &str, what: &str, json: bool) -> Result<String, CtlError> {
    let v = api
        .ok(reqwest::Method::POST, &format!("{node}/{what}"), None)
        .await?;
    Ok(if json {
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    } else {
        format!("{}\n", v["message"].as_str().unwrap_or_default())
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |x| x.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The cluster part of `roundel ctl status`: mode, members (drift flagged), and who
/// observes each probe and what each one reports.
fn cluster_table(c: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster: {} is {}{}  rule {}  observers {}  lease {} s",
        s(&c["name"]),
        s(&c["mode"]),
        if c["degraded"] == Value::Bool(true) {
            " (DEGRADED)"
        } else {
            ""
        },
        s(&c["health_rule"]),
        s(&c["observers"]),
        s(&c["lease_ttl_s"]),
    );
    let mut rows = vec![
        ["MEMBER", "VERSION", "LISTEN", "ZONES"]
            .map(String::from)
            .to_vec(),
    ];
    for m in c["members"].as_array().into_iter().flatten() {
        let listen: Vec<String> = m["listen"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        rows.push(vec![
            format!(
                "{}{}",
                s(&m["name"]),
                if m["me"] == Value::Bool(true) {
                    " (this)"
                } else {
                    ""
                }
            ),
            s(&m["version"]),
            listen.join(","),
            if m["drift"] == Value::Bool(true) {
                format!("{} DRIFT", s(&m["zone_digest"]))
            } else {
                s(&m["zone_digest"])
            },
        ]);
    }
    out.push_str(&table(&rows));
    let mut rows = vec![
        ["PROBE", "VIEW", "OBSERVERS", "REPORTS"]
            .map(String::from)
            .to_vec(),
    ];
    for p in c["probes"].as_array().into_iter().flatten() {
        let obs: Vec<String> = p["observers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        let reports: Vec<String> = p["reports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}={}{}",
                    s(&r["member"]),
                    s(&r["state"]),
                    if r["fresh"] == Value::Bool(true) {
                        ""
                    } else {
                        "(stale)"
                    }
                )
            })
            .collect();
        rows.push(vec![
            s(&p["probe"]),
            s(&p["view"]),
            obs.join(","),
            reports.join(" "),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    out
}

/// `roundel ctl status` as text.
pub fn status_table(v: &Value) -> String {
    let mut out = String::new();
    let r = &v["reload"];
    let _ = writeln!(
        out,
        "roundel {}  up {:.0} s  generation {}  reloads {} ({} failed)  query log {}  admin {}",
        s(&v["version"]),
        v["uptime_seconds"].as_f64().unwrap_or(0.0),
        s(&v["generation"]),
        s(&r["total"]),
        s(&r["failed"]),
        if v["query_log"] == Value::Bool(true) {
            "on"
        } else {
            "off"
        },
        if v["writable"] == Value::Bool(true) {
            "read-write"
        } else {
            "read-only (no token configured)"
        },
    );
    if r["last"]["ok"] == Value::Bool(false) {
        let _ = writeln!(
            out,
            "LAST RELOAD FAILED ({}, {}): still serving generation {}",
            s(&r["last"]["trigger"]),
            s(&r["last"]["at"]),
            s(&r["last"]["generation"])
        );
        for e in r["last"]["errors"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  {}", s(&e["text"]));
        }
    }
    if v["cluster"].is_object() {
        out.push_str(&cluster_table(&v["cluster"]));
    }
    out.push('\n');
    let mut rows = vec![
        ["ZONE", "SERIAL", "NAMES", "POOLS", "FILE"]
            .map(String::from)
            .to_vec(),
    ];
    for z in v["zones"].as_array().into_iter().flatten() {
        rows.push(vec![
            s(&z["origin"]),
            s(&z["serial"]),
            s(&z["names"]),
            z["pools"].as_array().map_or(0, Vec::len).to_string(),
            s(&z["file"]),
        ]);
    }
    out.push_str(&table(&rows));
    // How each pool answers: "0/3 serving" alone hides a serve-all pool handing out dead
    // addresses.
    let mut rows = vec![
        ["POOL", "ANSWERING", "TTL", "SERVING"]
            .map(String::from)
            .to_vec(),
    ];
    for p in v["pools"].as_array().into_iter().flatten() {
        let a = &p["answering"];
        let state = s(&a["state"]);
        let detail = s(&a["detail"]);
        rows.push(vec![
            s(&p["name"]),
            if state == "all-down" {
                detail.to_uppercase()
            } else {
                detail
            },
            format!("{} s", s(&a["ttl"])),
            format!(
                "{}/{}",
                s(&p["serving"]),
                p["nodes"].as_array().map_or(0, Vec::len)
            ),
        ]);
    }
    if rows.len() > 1 {
        out.push('\n');
        out.push_str(&table(&rows));
    }
    let mut rows = vec![
        [
            "POOL",
            "NODE",
            "ADDRESS",
            "STATE",
            "WEIGHT",
            "RTT",
            "SINCE",
            "LAST CHECK / REASON",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in v["pools"].as_array().into_iter().flatten() {
        for n in p["nodes"].as_array().into_iter().flatten() {
            let mut weight = s(&n["effective_weight"]);
            if !n["weight_override"].is_null() {
                weight.push('*');
            }
            let reason = match n["state"].as_str() {
                Some("drain" | "maint") if n["safe_to_stop"] == Value::Bool(true) => {
                    "safe to stop".to_owned()
                }
                Some("drain" | "maint") => format!("cached until {}", s(&n["cached_until"])),
                _ => match &n["last_failure"] {
                    Value::Null => "ok".to_owned(),
                    f => s(f),
                },
            };
            rows.push(vec![
                s(&p["name"]),
                s(&n["label"]),
                s(&n["addr"]),
                // Maint / drain still say what the checks see.
                match n["state"].as_str() {
                    Some(st @ ("drain" | "maint")) => format!("{st} (check {})", s(&n["health"])),
                    _ => s(&n["state"]),
                },
                weight,
                n["srtt_ms"]
                    .as_f64()
                    .map_or("-".into(), |ms| format!("{ms:.2}ms")),
                s(&n["since"]),
                reason,
            ]);
        }
    }
    if rows.len() > 1 {
        out.push('\n');
        out.push_str(&table(&rows));
    }
    if v["summary"] == Value::Bool(true) {
        out.push_str(&summary_table(v));
    }
    out
}

/// The pool summaries of a large deployment's status (`summary: true`).
fn summary_table(v: &Value) -> String {
    let t = &v["totals"];
    let mut out = format!(
        "\n{} pools, {} nodes: {} serving, {} down, {} unknown, {} drain, {} maint (page {} of {}; one pool: GET /api/v1/status?pool=NAME)\n",
        s(&v["pools_total"]),
        s(&t["nodes"]),
        s(&t["serving"]),
        s(&t["down"]),
        s(&t["unknown"]),
        s(&t["drain"]),
        s(&t["maint"]),
        v["page"].as_u64().map_or(1, |p| p + 1),
        s(&v["pages"]),
    );
    let mut rows = vec![
        [
            "POOL", "ZONE", "POLICY", "SERVING", "DOWN", "DRAIN", "MAINT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in v["pool_summaries"].as_array().into_iter().flatten() {
        rows.push(vec![
            s(&p["name"]),
            s(&p["zone"]),
            s(&p["policy"]),
            format!("{}/{}", s(&p["serving"]), s(&p["nodes"])),
            s(&p["down"]),
            s(&p["drain"]),
            s(&p["maint"]),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// `roundel ctl explain` as text.
pub fn explain_text(v: &Value) -> String {
    let mut out = String::new();
    let r = &v["response"];
    let _ = writeln!(
        out,
        "{} {} from {}{}: {}{}",
        s(&v["name"]),
        s(&v["type"]),
        s(&v["client"]),
        v["ecs"]
            .as_str()
            .map_or(String::new(), |e| format!(" (ECS {e})")),
        s(&r["rcode"]),
        if r["aa"] == Value::Bool(true) {
            ", authoritative"
        } else {
            ""
        },
    );
    for section in ["answer", "authority", "additional"] {
        let recs = r[section].as_array().cloned().unwrap_or_default();
        if recs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n;; {}", section.to_uppercase());
        let rows: Vec<Vec<String>> = recs
            .iter()
            .map(|x| {
                vec![
                    s(&x["name"]),
                    s(&x["ttl"]),
                    "IN".into(),
                    s(&x["type"]),
                    s(&x["data"]),
                ]
            })
            .collect();
        out.push_str(&table(&rows));
    }
    for p in v["pools"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "\npool {} ({}, {}): {}, tier {}, TTL {}{}{}",
            s(&p["pool"]),
            s(&p["policy"]),
            s(&p["family"]),
            s(&p["outcome"]),
            s(&p["tier"]),
            s(&p["ttl"]),
            if p["degraded"] == Value::Bool(true) {
                ", degraded"
            } else {
                ""
            },
            if p["all_down"] == Value::Bool(true) {
                format!(", ALL DOWN ({})", s(&p["all_down_mode"]))
            } else {
                String::new()
            },
        );
        let mut rows = vec![
            ["NODE", "ADDRESS", "TIER", "STATE", "VERDICT", "WHY"]
                .map(String::from)
                .to_vec(),
        ];
        for n in p["nodes"].as_array().into_iter().flatten() {
            rows.push(vec![
                s(&n["label"]),
                s(&n["addr"]),
                s(&n["tier"]),
                s(&n["state"]),
                s(&n["verdict"]),
                s(&n["reason"]),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("web.example.test."), "web.example.test.");
        assert_eq!(encode("2001:db8::1"), "2001:db8::1");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn tables_align() {
        let t = table(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["aaa".into(), "b".into(), "c c".into()],
        ]);
        assert_eq!(t, "A    BB  C\naaa  b   c c\n");
    }
}
