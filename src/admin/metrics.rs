//! `/metrics`: Prometheus / OpenMetrics text, built at scrape time.
//!
//! A [`prometheus_client`] [`Collector`](prometheus_client::collector::Collector) reads
//! the sharded atomics the DNS paths already keep ([`crate::dns::stats`]), the node states
//! of the served pools, the probes' check counters and the reload status. Nothing is
//! added to the query path: a scrape sums the shards.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `roundel_build_info` | info | `version` |
//! | `roundel_start_time_seconds` | gauge | |
//! | `roundel_uptime_seconds` | gauge | |
//! | `roundel_dns_queries_total` | counter | `zone`, `qtype`, `rcode` |
//! | `roundel_dns_queries_by_transport_total` | counter | `transport` |
//! | `roundel_dns_answer_duration_seconds` | histogram | |
//! | `roundel_dns_udp_truncated_total` | counter | |
//! | `roundel_dns_tcp_connections_total` | counter | |
//! | `roundel_dns_dropped_total` | counter | |
//! | `roundel_dns_udp_receive_drops_total` | counter | |
//! | `roundel_dns_rrl_limited_total` | counter | `action` (`dropped`, `slipped`) |
//! | `roundel_dns_cookies_total` | counter | `result` (`valid`, `client_only`, `invalid`) |
//! | `roundel_dns_tcp_connections_open` | gauge | |
//! | `roundel_dns_tcp_refused_global_total`, `_refused_per_address_total`, `_evicted_total`, `_idle_timeouts_total`, `_io_timeouts_total`, `_query_cap_total`, `_accept_errors_total` | counter | |
//! | `roundel_admin_connections_refused_total`, `_evicted_total`, `roundel_admin_accept_errors_total` | counter | |
//! | `roundel_probe_local_errors_total` | counter | |
//! | `roundel_zone_serial` | gauge | `zone` |
//! | `roundel_zone_names` | gauge | `zone` |
//! | `roundel_node_state` | gauge (1 for the current state) | `pool`, `node`, `addr`, `state` |
//! | `roundel_node_up` | gauge | `pool`, `node`, `addr` |
//! | `roundel_node_weight` | gauge | `pool`, `node`, `addr` |
//! | `roundel_node_check_rtt_seconds` | gauge | `pool`, `node`, `addr` |
//! | `roundel_pool_serving_nodes` | gauge | `pool` |
//! | `roundel_pool_answering` | gauge (1 for the current state) | `pool`, `state` (`normal`, `degraded`, `failover`, `all-down`) |
//! | `roundel_pool_answer_ttl_seconds` | gauge | `pool` |
//! | `roundel_check_duration_seconds` | histogram, count and sum only | `target`, `check` |
//! | `roundel_check_kind_duration_seconds` | histogram | `check` |
//! | `roundel_check_failures_total` | counter | `target`, `check`, `reason` (those of the kind) |
//! | `roundel_check_transitions_total` | counter | `target`, `check` |
//! | `roundel_probe_panics_total` | counter | |
//! | `roundel_probe_tasks` | gauge | |
//! | `roundel_check_connections_kept`, `_kept_max` | gauge | |
//! | `roundel_reloads_total` | counter | |
//! | `roundel_reloads_failed_total` | counter | |
//! | `roundel_reload_last_success_timestamp_seconds` | gauge | |
//! | `roundel_reload_last_ok` | gauge | |
//! | `roundel_snapshot_generation` | gauge | |
//! | `roundel_query_log_enabled` | gauge | |

use std::sync::{Arc, Weak};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::Admin;
use crate::dns::stats::{self, LATENCY_BUCKETS, QTYPES, RCODES};
use crate::node::{AdminState, Health};

/// Collects every metric at scrape time from the admin context.
#[derive(Debug)]
pub struct Collector {
    admin: Weak<Admin>,
}

impl Collector {
    /// A collector over `admin` (weak: the registry lives inside the admin context).
    pub fn new(admin: Weak<Admin>) -> Self {
        Self { admin }
    }
}

type Fmt = Result<(), std::fmt::Error>;

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    let c = ConstCounter::new(v);
    c.encode(enc.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Fmt {
    let g = ConstGauge::new(v);
    g.encode(enc.encode_descriptor(name, help, None, g.metric_type())?)
}

/// Connection caps, timeouts, accept errors and local probe errors ([`crate::limits`]).
fn limits(enc: &mut DescriptorEncoder) -> Fmt {
    use crate::limits::counters as c;
    gauge(
        enc,
        "roundel_dns_tcp_connections_open",
        "DNS-over-TCP connections open now",
        c::TCP_OPEN.load(std::sync::atomic::Ordering::Relaxed) as f64,
    )?;
    for (name, help, v) in [
        (
            "roundel_dns_tcp_refused_global",
            "TCP connections refused at the global cap (none idle)",
            &c::TCP_REFUSED_GLOBAL,
        ),
        (
            "roundel_dns_tcp_refused_per_address",
            "TCP connections refused at the per-address cap",
            &c::TCP_REFUSED_PER_ADDRESS,
        ),
        (
            "roundel_dns_tcp_evicted",
            "Idle TCP connections closed to make room at the global cap",
            &c::TCP_EVICTED,
        ),
        (
            "roundel_dns_tcp_idle_timeouts",
            "TCP connections closed after the idle timeout",
            &c::TCP_IDLE_TIMEOUTS,
        ),
        (
            "roundel_dns_tcp_io_timeouts",
            "TCP connections closed after the I/O timeout",
            &c::TCP_IO_TIMEOUTS,
        ),
        (
            "roundel_dns_tcp_query_cap",
            "TCP connections closed after their query cap",
            &c::TCP_QUERY_CAP,
        ),
        (
            "roundel_dns_tcp_accept_errors",
            "accept() errors on the DNS TCP listeners",
            &c::TCP_ACCEPT_ERRORS,
        ),
        (
            "roundel_admin_connections_refused",
            "Admin connections refused at the cap (every connection answering)",
            &c::ADMIN_REFUSED,
        ),
        (
            "roundel_admin_connections_evicted",
            "Idle admin connections closed to make room at the cap",
            &c::ADMIN_EVICTED,
        ),
        (
            "roundel_admin_accept_errors",
            "accept() errors on the admin listener",
            &c::ADMIN_ACCEPT_ERRORS,
        ),
        (
            "roundel_probe_local_errors",
            "Health checks failed for a local reason (not counted against the node)",
            &c::PROBE_LOCAL_ERRORS,
        ),
    ] {
        counter(enc, name, help, v.get())?;
    }
    Ok(())
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Fmt {
        let Some(admin) = self.admin.upgrade() else {
            return Ok(());
        };
        let enc = &mut enc;
        let snapshot = admin.reloader.cell().load_full();

        // Process.
        enc.encode_descriptor(
            "roundel_build",
            "Roundel build information",
            None,
            MetricType::Info,
        )?
        .encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        gauge(
            enc,
            "roundel_start_time_seconds",
            "Start time of the server, Unix seconds",
            super::time::unix(admin.started),
        )?;
        gauge(
            enc,
            "roundel_uptime_seconds",
            "Seconds since the server started",
            admin.started_instant.elapsed().as_secs_f64(),
        )?;
        gauge(
            enc,
            "roundel_query_log_enabled",
            "1 when per-query logging is on",
            f64::from(u8::from(crate::dns::query_log())),
        )?;

        if let Some(c) = admin.cluster.get() {
            cluster(enc, c)?;
        }

        // Queries by zone, type and rcode.
        {
            let mut zones: Vec<(String, _)> = snapshot
                .sorted_zones()
                .iter()
                .filter_map(|z| Some((z.origin.to_ascii(), admin.stats.zone_totals(z.index)?)))
                .collect();
            zones.push(("unmatched".to_owned(), admin.stats.unmatched.totals()));
            let mut m = enc.encode_descriptor(
                "roundel_dns_queries",
                "DNS queries answered, by zone (unmatched: no zone or unparsed), query type and response code",
                None,
                MetricType::Counter,
            )?;
            for (zone, totals) in &zones {
                for (t, row) in totals.iter().enumerate() {
                    for (r, &n) in row.iter().enumerate() {
                        if n == 0 {
                            continue;
                        }
                        let labels = [
                            ("zone", zone.as_str()),
                            ("qtype", stats::qtype_label(t)),
                            ("rcode", stats::rcode_label(r)),
                        ];
                        ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                    }
                }
            }
            debug_assert!(QTYPES.len() + RCODES.len() > 0);
        }

        let w = admin.stats.wire_totals();
        {
            let mut m = enc.encode_descriptor(
                "roundel_dns_queries_by_transport",
                "DNS queries answered, by transport",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(w.udp).encode(m.encode_family(&[("transport", "udp")])?)?;
            ConstCounter::new(w.tcp).encode(m.encode_family(&[("transport", "tcp")])?)?;
        }
        {
            let count: u64 = w.latency.iter().sum();
            let buckets: Vec<(f64, u64)> = (0..LATENCY_BUCKETS.len())
                .map(stats::latency_bound_seconds)
                .chain([f64::INFINITY])
                .zip(w.latency.iter().copied())
                .collect();
            enc.encode_descriptor(
                "roundel_dns_answer_duration_seconds",
                "Time from a request's arrival to its encoded response",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                w.latency_sum,
                count,
                &buckets,
                None,
            )?;
        }
        counter(
            enc,
            "roundel_dns_udp_truncated",
            "UDP responses sent truncated (TC set)",
            w.truncated,
        )?;
        counter(
            enc,
            "roundel_dns_tcp_connections",
            "TCP connections accepted (within the caps)",
            w.tcp_connections,
        )?;
        limits(enc)?;
        counter(
            enc,
            "roundel_dns_dropped",
            "Messages dropped without an answer (too short, or responses)",
            w.dropped,
        )?;
        counter(
            enc,
            "roundel_dns_udp_receive_drops",
            "UDP queries the kernel dropped because a worker's socket receive buffer was full (see [limits] udp_receive_buffer)",
            admin.stats.udp_sockets.total(),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "roundel_dns_rrl_limited",
                "UDP responses held back by response rate limiting: dropped, or slipped (sent truncated so that the client retries over TCP)",
                None,
                MetricType::Counter,
            )?;
            for (action, n) in [("dropped", w.rrl_dropped), ("slipped", w.rrl_slipped)] {
                ConstCounter::new(n).encode(m.encode_family(&[("action", action)])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "roundel_dns_cookies",
                "Requests with a DNS cookie, by result: valid server cookie, client cookie only, invalid server cookie",
                None,
                MetricType::Counter,
            )?;
            for (result, n) in stats::COOKIE_RESULTS.iter().zip(w.cookies) {
                ConstCounter::new(n).encode(m.encode_family(&[("result", *result)])?)?;
            }
        }

        // Zones.
        {
            let mut serial = enc.encode_descriptor(
                "roundel_zone_serial",
                "SOA serial of each served zone",
                None,
                MetricType::Gauge,
            )?;
            for z in snapshot.sorted_zones() {
                let origin = z.origin.to_ascii();
                ConstGauge::new(z.serial() as i64)
                    .encode(serial.encode_family(&[("zone", origin.as_str())])?)?;
            }
        }
        {
            let mut names = enc.encode_descriptor(
                "roundel_zone_names",
                "Owner names of each served zone",
                None,
                MetricType::Gauge,
            )?;
            for z in snapshot.sorted_zones() {
                let origin = z.origin.to_ascii();
                ConstGauge::new(z.nodes.len() as i64)
                    .encode(names.encode_family(&[("zone", origin.as_str())])?)?;
            }
        }

        // Pools and nodes.
        let pools = super::api::all_pools(&snapshot);
        struct NodeRow {
            pool: String,
            node: String,
            addr: String,
            state: &'static str,
            up: bool,
            weight: u32,
            srtt: Option<f64>,
        }
        let mut rows = Vec::new();
        let mut serving = Vec::new();
        for (_, p) in &pools {
            let pool = p.name().to_ascii();
            let mut n_serving = 0;
            for n in p.nodes() {
                let health = n.health.health();
                let a = n.admin.state();
                let state = if n.spec.maint || a == AdminState::Maint {
                    "maint"
                } else if a == AdminState::Drain {
                    "drain"
                } else {
                    health.as_str()
                };
                n_serving += usize::from(state == "up");
                rows.push(NodeRow {
                    pool: pool.clone(),
                    node: n.spec.label.clone(),
                    addr: n.spec.addr.to_string(),
                    state,
                    up: health == Health::Up,
                    weight: n.admin.weight().unwrap_or_else(|| {
                        n.health
                            .reported()
                            .map_or(n.spec.weight, |r| r.apply(n.spec.weight))
                    }),
                    // A down node's last RTT is history, not a current figure.
                    srtt: n
                        .health
                        .srtt()
                        .filter(|_| health == Health::Up)
                        .map(|d| d.as_secs_f64()),
                });
            }
            serving.push((pool, n_serving));
        }
        {
            let mut m = enc.encode_descriptor(
                "roundel_node_state",
                "Node state: 1 for the current one of up, down, unknown, drain, maint",
                None,
                MetricType::Gauge,
            )?;
            for r in &rows {
                for s in ["up", "down", "unknown", "drain", "maint"] {
                    let labels = [
                        ("pool", r.pool.as_str()),
                        ("node", r.node.as_str()),
                        ("addr", r.addr.as_str()),
                        ("state", s),
                    ];
                    ConstGauge::new(i64::from(r.state == s)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        for (name, help) in [
            (
                "roundel_node_up",
                "1 when the node's health checks pass (whatever admin overrides say)",
            ),
            (
                "roundel_node_weight",
                "Effective weight of the node (override, else reported, else configured)",
            ),
        ] {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for r in &rows {
                let labels = [
                    ("pool", r.pool.as_str()),
                    ("node", r.node.as_str()),
                    ("addr", r.addr.as_str()),
                ];
                let v = if name == "roundel_node_up" {
                    i64::from(r.up)
                } else {
                    i64::from(r.weight)
                };
                ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "roundel_node_check_rtt_seconds",
                "Smoothed round-trip time of the node's successful checks",
                None,
                MetricType::Gauge,
            )?;
            for r in &rows {
                let Some(s) = r.srtt else { continue };
                let labels = [
                    ("pool", r.pool.as_str()),
                    ("node", r.node.as_str()),
                    ("addr", r.addr.as_str()),
                ];
                ConstGauge::new(s).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let now = std::time::Instant::now();
            let states: Vec<(String, crate::policy::answering::Answering)> = pools
                .iter()
                .map(|(_, p)| {
                    (
                        p.name().to_ascii(),
                        crate::policy::answering::answering(p, now),
                    )
                })
                .collect();
            let mut m = enc.encode_descriptor(
                "roundel_pool_answering",
                "How the pool answers: 1 for the current one of normal, degraded, failover, all-down",
                None,
                MetricType::Gauge,
            )?;
            for (pool, a) in &states {
                for st in crate::policy::answering::State::ALL {
                    let labels = [("pool", pool.as_str()), ("state", st.as_str())];
                    ConstGauge::new(i64::from(a.value == st)).encode(m.encode_family(&labels)?)?;
                }
            }
            let mut m = enc.encode_descriptor(
                "roundel_pool_answer_ttl_seconds",
                "TTL the pool's answers carry now (the degraded TTL while degraded or all down)",
                None,
                MetricType::Gauge,
            )?;
            for (pool, a) in &states {
                ConstGauge::new(i64::from(a.ttl))
                    .encode(m.encode_family(&[("pool", pool.as_str())])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "roundel_pool_serving_nodes",
                "Nodes of the pool that are up and not drained or in maintenance",
                None,
                MetricType::Gauge,
            )?;
            for (pool, n) in &serving {
                ConstGauge::new(*n as i64).encode(m.encode_family(&[("pool", pool.as_str())])?)?;
            }
        }

        super::check_metrics::encode(enc, &pools)?;

        // Reloads.
        let monitor = admin.reloader.monitor();
        counter(
            enc,
            "roundel_probe_panics",
            "Probe tasks restarted after a panic",
            monitor.probe_panics(),
        )?;
        gauge(
            enc,
            "roundel_probe_tasks",
            "Probe tasks running (none checks need none)",
            monitor.probe_tasks() as f64,
        )?;
        let (kept, kept_max) = monitor.kept_connections();
        gauge(
            enc,
            "roundel_check_connections_kept",
            "Check connections kept open between checks now (reuse_connection)",
            kept as f64,
        )?;
        gauge(
            enc,
            "roundel_check_connections_kept_max",
            "Most check connections that may be kept (the probe descriptor reserve less the checks in flight)",
            kept_max as f64,
        )?;
        let r = admin.reloader.status();
        counter(
            enc,
            "roundel_reloads",
            "Zone loads attempted (the startup load included)",
            r.total,
        )?;
        counter(
            enc,
            "roundel_reloads_failed",
            "Zone reloads rejected (the previous zones kept serving)",
            r.failed,
        )?;
        gauge(
            enc,
            "roundel_reload_last_success_timestamp_seconds",
            "When the zones were last loaded successfully, Unix seconds",
            r.last_success.map_or(0.0, super::time::unix),
        )?;
        gauge(
            enc,
            "roundel_reload_last_ok",
            "1 when the last reload succeeded",
            f64::from(u8::from(
                r.last.as_ref().is_none_or(|l| l.errors.is_empty()),
            )),
        )?;
        gauge(
            enc,
            "roundel_snapshot_generation",
            "Generation of the served zone snapshot (one per successful load)",
            snapshot.generation as f64,
        )?;
        Ok(())
    }
}

/// `GET /metrics`.
pub async fn handler(State(admin): State<Arc<Admin>>, headers: axum::http::HeaderMap) -> Response {
    let mut out = String::with_capacity(16 * 1024);
    if prometheus_client::encoding::text::encode(&mut out, &admin.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed").into_response();
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if super::exposition::wants_openmetrics(accept) {
        (
            [(header::CONTENT_TYPE, super::exposition::OPENMETRICS)],
            out,
        )
            .into_response()
    } else {
        let classic = super::exposition::to_classic(&out);
        (
            [(header::CONTENT_TYPE, super::exposition::CLASSIC)],
            classic,
        )
            .into_response()
    }
}

/// Cluster mode: membership, sync state and traffic with etcd.
fn cluster(enc: &mut DescriptorEncoder, c: &crate::cluster::Cluster) -> Fmt {
    let v = c.view();
    let mode = c.mode.get();
    gauge(
        enc,
        "roundel_cluster_members",
        "Live members of the cluster, as this instance sees them",
        v.members.len() as f64,
    )?;
    gauge(
        enc,
        "roundel_cluster_degraded",
        "1 while this instance is not in sync with etcd (answering from the last view or from local probes)",
        f64::from(u8::from(v.degraded)),
    )?;
    gauge(
        enc,
        "roundel_cluster_fallback",
        "1 while this instance probes every node itself because etcd is unreachable beyond the grace period",
        f64::from(u8::from(mode == crate::cluster::Mode::Fallback)),
    )?;
    gauge(
        enc,
        "roundel_cluster_zone_drift",
        "1 when some member's zones differ from this instance's",
        f64::from(u8::from(v.drift)),
    )?;
    gauge(
        enc,
        "roundel_cluster_probes_owned",
        "Probes (target, check) this instance observes for the cluster",
        v.probing as f64,
    )?;
    counter(
        enc,
        "roundel_cluster_observations_published",
        "Observations written to etcd by this instance",
        v.published,
    )?;
    counter(
        enc,
        "roundel_cluster_observations_received",
        "Observations received from etcd (all members)",
        v.received,
    )?;
    counter(
        enc,
        "roundel_cluster_etcd_errors",
        "Failed etcd calls and lost sessions",
        v.etcd_errors,
    )?;
    counter(
        enc,
        "roundel_cluster_checks",
        "Health checks run by this instance",
        v.probes_run,
    )
}
