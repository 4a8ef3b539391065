//! The cluster's side of [`ProbeHook`]: the share of the probes this instance runs, and
//! its results queued for publication.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime};

use super::keys::{Observation, probe_id};
use super::mode::Mode;
use super::{Cluster, Outgoing, rendezvous};
use crate::health::{LocalObservation, ProbeHook, ProbeKey};
use crate::node::{Health, Reported};

impl ProbeHook for Cluster {
    fn source(&self) -> Option<IpAddr> {
        self.cfg.probe_source
    }

    fn should_probe(&self, key: &ProbeKey) -> bool {
        if self.frozen() {
            return false;
        }
        match self.mode.get() {
            Mode::Fallback => true,
            Mode::Joining => false,
            Mode::Joined | Mode::Degraded => {
                let id = probe_id(key);
                let st = self.lock();
                rendezvous::is_observer(
                    &self.cfg.name,
                    st.members.keys().map(String::as_str),
                    &id,
                    self.cfg.observers,
                )
            }
        }
    }

    fn observed(&self, key: &ProbeKey, o: &LocalObservation) -> bool {
        self.counters.probes_run.fetch_add(1, Relaxed);
        if o.health == Health::Unknown {
            return self.mode.get() == Mode::Fallback;
        }
        let value = Observation {
            state: o.health.as_str().to_owned(),
            reason: o.reason.clone(),
            rtt_us: o.rtt.as_micros() as u64,
            srtt_us: o.srtt.map(|d| d.as_micros() as u64),
            reported: o.reported.map(|r| match r {
                Reported::Weight(w) => w.to_string(),
                Reported::Percent(p) => format!("{p}%"),
            }),
            at_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let id = probe_id(key);
        let now = Instant::now();
        let refresh = self.refresh();
        let wake = {
            let mut st = self.lock();
            let e = st.outbox.entry(id).or_insert_with(|| Outgoing {
                value: value.clone(),
                dirty: true,
                written: None,
                checked: now,
                interval: key.check.interval,
            });
            let state_changed = e.value.state != value.state;
            let due = e.written.is_none_or(|w| now.duration_since(w) >= refresh);
            e.dirty |= state_changed || o.changed || due;
            e.value = value;
            e.checked = now;
            e.dirty
        };
        if wake {
            self.publish.notify_one();
        }
        self.mode.get() == Mode::Fallback
    }
}
