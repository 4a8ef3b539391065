//! The etcd session: connect, take a lease, register, list the prefix, then watch it
//! from the listing's revision + 1 while renewing the lease every TTL/3 and writing
//! what this instance publishes. Any failure ends the session; the next one starts
//! after a short pause, until the instance stops. A watch cancelled because its start
//! revision was compacted also ends the session, and the next one lists again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, Identity, KeyValue, PutOptions, TlsOptions,
    WatchOptions,
};
use tokio::sync::watch;

use super::keys::{KeyKind, Member, Observation, ServedValue};
use super::{Cluster, Received, admin_store, publish};

/// Bound on connecting and on each etcd call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two sessions.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// An etcd call failed.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// An etcd call took longer than [`CALL_TIMEOUT`].
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    /// The lease expired or a guarded write found another lease on the member key.
    #[error("membership lost: {0}")]
    Lost(&'static str),
    /// The watch was cancelled (compaction) or ended.
    #[error("watch ended: {0}")]
    Watch(String),
}

/// Runs `f` bounded by [`CALL_TIMEOUT`].
pub(crate) async fn call<T>(
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, SessionError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(SessionError::Timeout(CALL_TIMEOUT)),
    }
}

/// Sessions, one after the other, until `stop`.
pub(crate) async fn run(c: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        if c.frozen() {
            // A paused process: nothing at all.
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Duration::from_millis(100)) => continue,
            }
        }
        let mut lease = None;
        let r = session(&c, &mut stop, &mut lease).await;
        match r {
            Ok(()) => {
                // Stopping: leave at once so the others take over the probes now (a
                // frozen instance plays a killed one and leaves by lease expiry).
                if let Some(id) = lease
                    && !c.frozen()
                    && let Ok(mut client) = connect(&c).await
                {
                    let _ = call(client.lease_revoke(id)).await;
                }
                return;
            }
            Err(e) => {
                c.counters.etcd_errors.fetch_add(1, Relaxed);
                c.mode.lost(&e.to_string());
                tracing::debug!(target: "roundel::cluster", error = %e, "cluster session ended");
                if let Some(id) = lease
                    && !c.frozen()
                    && let Ok(mut client) = connect(&c).await
                {
                    let _ = call(client.lease_revoke(id)).await;
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(RETRY_PAUSE) => {}
        }
    }
}

async fn connect(c: &Cluster) -> Result<Client, SessionError> {
    let mut o = ConnectOptions::new()
        .with_connect_timeout(CALL_TIMEOUT)
        .with_timeout(CALL_TIMEOUT)
        .with_keep_alive(c.cfg.lease_ttl / 3, CALL_TIMEOUT)
        .with_require_leader(true);
    if let Some((u, p)) = &c.cfg.auth {
        o = o.with_user(u.clone(), p.clone());
    }
    if c.cfg.tls.ca.is_some() || c.cfg.tls.identity.is_some() {
        let mut t = TlsOptions::new();
        if let Some(ca) = &c.cfg.tls.ca {
            t = t.ca_certificate(etcd_client::Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &c.cfg.tls.identity {
            t = t.identity(Identity::from_pem(cert, key));
        }
        o = o.with_tls(t);
    }
    call(Client::connect(&c.cfg.endpoints, Some(o))).await
}

fn member_value(c: &Cluster) -> Member {
    Member {
        name: c.cfg.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        listen: c.wiring.listen.clone(),
        zone_digest: (c.wiring.zone_digest)(),
    }
}

async fn session(
    c: &Arc<Cluster>,
    stop: &mut watch::Receiver<bool>,
    lease_out: &mut Option<i64>,
) -> Result<(), SessionError> {
    let mut client = connect(c).await?;
    let ttl = c.cfg.lease_ttl.as_secs() as i64;
    let lease = call(client.lease_grant(ttl, None)).await?.id();
    *lease_out = Some(lease);
    let (mut keeper, mut renewals) = call(client.lease_keep_alive(lease)).await?;
    let member_key = c.keys.member(&c.cfg.name);
    let mut me = member_value(c);
    call(client.put(
        member_key.clone(),
        serde_json::to_vec(&me).expect("plain data"),
        Some(PutOptions::new().with_lease(lease)),
    ))
    .await?;
    // Local overrides made while etcd was away go out before the listing replaces the
    // mirror.
    publish::admin(c, &mut client).await?;
    let listing = call(client.get(c.keys.all(), Some(GetOptions::new().with_prefix()))).await?;
    let rev = listing.header().map_or(0, |h| h.revision());
    load(c, listing.kvs());
    let mut stream = call(
        client.watch(
            c.keys.all(),
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(rev + 1),
            ),
        ),
    )
    .await?;
    // Everything this instance observed so far goes out under the new lease.
    for o in c.lock().outbox.values_mut() {
        o.dirty = true;
    }
    c.set_joined();
    publish::observations(c, &mut client, &member_key, lease).await?;
    let mut renew = tokio::time::interval(c.cfg.lease_ttl / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(publish::FLUSH_TICK);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_renewal = Instant::now();
    let mut served = publish::ServedState::default();
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = renew.tick() => {
                if c.frozen() {
                    return Err(SessionError::Lost("frozen"));
                }
                if last_renewal.elapsed() > c.cfg.lease_ttl {
                    return Err(SessionError::Lost("no lease renewal within the TTL"));
                }
                call(keeper.keep_alive()).await?;
                let now = member_value(c);
                if now != me {
                    call(client.put(member_key.clone(), serde_json::to_vec(&now).expect("plain data"), Some(PutOptions::new().with_lease(lease)))).await?;
                    me = now;
                }
                served.publish(c, &mut client).await?;
            }
            r = renewals.message() => {
                match r? {
                    Some(resp) if resp.ttl() > 0 => last_renewal = Instant::now(),
                    Some(_) => return Err(SessionError::Lost("the lease expired")),
                    None => return Err(SessionError::Lost("lease renewal stream ended")),
                }
            }
            m = stream.message() => {
                match m? {
                    Some(w) => {
                        if w.canceled() || w.compact_revision() > 0 {
                            return Err(SessionError::Watch(format!("cancelled ({}), compacted at {}", w.cancel_reason(), w.compact_revision())));
                        }
                        for e in w.events() {
                            if let Some(kv) = e.kv() {
                                apply(c, kv, e.event_type() == EventType::Delete);
                            }
                        }
                        c.view_changed.notify_one();
                    }
                    None => return Err(SessionError::Watch("stream ended".into())),
                }
            }
            () = c.publish.notified() => {
                publish::observations(c, &mut client, &member_key, lease).await?;
            }
            () = c.admin.wake.notified() => {
                publish::admin(c, &mut client).await?;
            }
            _ = flush.tick() => {
                if c.frozen() {
                    return Err(SessionError::Lost("frozen"));
                }
                publish::observations(c, &mut client, &member_key, lease).await?;
            }
        }
    }
}

/// Replaces the local state with a full listing.
fn load(c: &Cluster, kvs: &[KeyValue]) {
    let now = Instant::now();
    let mut admin = BTreeMap::new();
    {
        let mut st = c.lock();
        st.members.clear();
        st.obs.clear();
        st.served.clear();
        for kv in kvs {
            let Ok(key) = kv.key_str() else { continue };
            match c.keys.parse(key) {
                Some(KeyKind::Member(m)) => {
                    if let Ok(v) = serde_json::from_slice::<Member>(kv.value()) {
                        st.members.insert(m.to_owned(), v);
                    }
                }
                Some(KeyKind::Obs(p, m)) => {
                    if let Ok(obs) = serde_json::from_slice::<Observation>(kv.value()) {
                        c.counters.received.fetch_add(1, Relaxed);
                        st.obs
                            .entry(p.to_owned())
                            .or_default()
                            .insert(m.to_owned(), Received { obs, at: now });
                    }
                }
                Some(KeyKind::Served(m)) => {
                    if let Ok(v) = serde_json::from_slice::<ServedValue>(kv.value()) {
                        st.served.insert(m.to_owned(), v);
                    }
                }
                Some(KeyKind::Admin(p, a)) => {
                    if let Some((k, v)) = admin_store::decode(p, a, kv.value()) {
                        admin.insert(k, v);
                    }
                }
                None => {}
            }
        }
    }
    c.admin.replace(admin);
    c.view_changed.notify_one();
}

/// Applies one watched change.
fn apply(c: &Cluster, kv: &KeyValue, deleted: bool) {
    let Ok(key) = kv.key_str() else { return };
    match c.keys.parse(key) {
        Some(KeyKind::Member(m)) => {
            let mut st = c.lock();
            if deleted {
                st.members.remove(m);
                // Its observations went with its lease; drop them now rather than wait
                // for their delete events.
                for per in st.obs.values_mut() {
                    per.remove(m);
                }
            } else if let Ok(v) = serde_json::from_slice::<Member>(kv.value()) {
                st.members.insert(m.to_owned(), v);
            }
        }
        Some(KeyKind::Obs(p, m)) => {
            let mut st = c.lock();
            if deleted {
                if let Some(per) = st.obs.get_mut(p) {
                    per.remove(m);
                }
            } else if let Ok(obs) = serde_json::from_slice::<Observation>(kv.value()) {
                c.counters.received.fetch_add(1, Relaxed);
                st.obs.entry(p.to_owned()).or_default().insert(
                    m.to_owned(),
                    Received {
                        obs,
                        at: Instant::now(),
                    },
                );
            }
        }
        Some(KeyKind::Served(m)) => {
            let mut st = c.lock();
            if deleted {
                st.served.remove(m);
            } else if let Ok(v) = serde_json::from_slice::<ServedValue>(kv.value()) {
                st.served.insert(m.to_owned(), v);
            }
        }
        Some(KeyKind::Admin(p, a)) => {
            if deleted {
                if let Ok(addr) = a.parse() {
                    c.admin.apply_event((p.to_owned(), addr), None);
                }
            } else if let Some((k, v)) = admin_store::decode(p, a, kv.value()) {
                c.admin.apply_event(k, Some(v));
            }
        }
        None => {}
    }
}
