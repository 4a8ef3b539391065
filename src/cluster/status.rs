//! What the admin API, `roundel ctl status`, the status page and the metrics show of the
//! cluster: members (with zone digest drift flagged), and for every node which members
//! observe it and what each one reports.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::keys::probe_id;
use super::view::fresh_window;
use super::{Cluster, rendezvous};
use std::sync::atomic::Ordering::Relaxed;

/// One member.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Name.
    pub name: String,
    /// Roundel version.
    pub version: String,
    /// DNS listen addresses.
    pub listen: Vec<String>,
    /// Digest of its zones.
    pub zone_digest: String,
    /// Its zones differ from this instance's (configuration drift).
    pub drift: bool,
    /// This instance.
    pub me: bool,
}

/// One observer's report on a node.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    /// Member name.
    pub member: String,
    /// `up` or `down`.
    pub state: String,
    /// `ok` or the failure.
    pub reason: String,
    /// Smoothed RTT, milliseconds.
    pub srtt_ms: Option<f64>,
    /// Seconds since it was received.
    pub age_s: f64,
    /// Counts in the rule.
    pub fresh: bool,
}

/// One (target, check).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeView {
    /// Stable probe name (address:port:kind:hash).
    pub probe: String,
    /// Members chosen to observe it.
    pub observers: Vec<String>,
    /// What they report.
    pub reports: Vec<ReportView>,
    /// The state this instance serves.
    pub view: &'static str,
}

/// The cluster as seen by this instance.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// This member.
    pub name: String,
    /// `joining`, `joined`, `degraded` or `fallback`.
    pub mode: &'static str,
    /// Not in sync with etcd (degraded or fallback).
    pub degraded: bool,
    /// The health rule.
    pub health_rule: &'static str,
    /// Observers per probe.
    pub observers: usize,
    /// Lease TTL, seconds.
    pub lease_ttl_s: f64,
    /// Grace period, seconds.
    pub grace_s: f64,
    /// Members.
    pub members: Vec<MemberView>,
    /// Some member's zones differ.
    pub drift: bool,
    /// Probes.
    pub probes: Vec<ProbeView>,
    /// Probes this instance runs now.
    pub probing: usize,
    /// Counters.
    pub published: u64,
    /// Observations received.
    pub received: u64,
    /// etcd errors.
    pub etcd_errors: u64,
    /// Checks run here.
    pub probes_run: u64,
}

impl Cluster {
    /// The cluster as seen by this instance.
    pub fn view(&self) -> ClusterView {
        let digest = (self.wiring.zone_digest)();
        let handles = self.handles();
        let now = Instant::now();
        let st = self.lock();
        let members: Vec<MemberView> = st
            .members
            .values()
            .map(|m| MemberView {
                name: m.name.clone(),
                version: m.version.clone(),
                listen: m.listen.clone(),
                zone_digest: m.zone_digest.clone(),
                drift: m.zone_digest != digest,
                me: m.name == self.cfg.name,
            })
            .collect();
        let mut probes = BTreeMap::new();
        let mut probing = 0;
        for (key, health) in &handles {
            if key.check.kind == crate::pool::CheckKind::None {
                continue;
            }
            let id = probe_id(key);
            let observers: Vec<String> = rendezvous::observers(
                st.members.keys().map(String::as_str),
                &id,
                self.cfg.observers,
            )
            .into_iter()
            .map(str::to_owned)
            .collect();
            if observers.contains(&self.cfg.name) {
                probing += 1;
            }
            let window = fresh_window(self.cfg.lease_ttl, key.check.interval);
            let reports = st
                .obs
                .get(&id)
                .map(|per| {
                    per.iter()
                        .map(|(m, r)| {
                            let age = now.duration_since(r.at);
                            ReportView {
                                member: m.clone(),
                                state: r.obs.state.clone(),
                                reason: r.obs.reason.clone(),
                                srtt_ms: r.obs.srtt_us.map(|u| u as f64 / 1000.0),
                                age_s: age.as_secs_f64(),
                                fresh: age <= window && st.members.contains_key(m),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            probes.insert(
                id.clone(),
                ProbeView {
                    probe: id,
                    observers,
                    reports,
                    view: health.health().as_str(),
                },
            );
        }
        ClusterView {
            name: self.cfg.name.clone(),
            mode: self.mode.get().as_str(),
            degraded: self.mode.degraded(),
            health_rule: self.cfg.health_rule.as_str(),
            observers: self.cfg.observers,
            lease_ttl_s: self.cfg.lease_ttl.as_secs_f64(),
            grace_s: self.cfg.grace.as_secs_f64(),
            drift: members.iter().any(|m| m.drift),
            members,
            probes: probes.into_values().collect(),
            probing,
            published: self.counters.published.load(Relaxed),
            received: self.counters.received.load(Relaxed),
            etcd_errors: self.counters.etcd_errors.load(Relaxed),
            probes_run: self.counters.probes_run.load(Relaxed),
        }
    }
}
