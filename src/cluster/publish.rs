//! What this instance writes: its observations (on its lease, each write guarded by a
//! transaction that compares the member key's lease, so an instance whose lease has
//! expired cannot overwrite the view), admin overrides, and when it last served each
//! node (rate-limited).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};

use super::Cluster;
use super::keys::ServedValue;
use super::session::{SessionError, call};

/// How often the outbox is looked at for refreshes and stale entries.
pub const FLUSH_TICK: Duration = Duration::from_millis(250);
/// Served times are published at most this often.
pub const SERVED_EVERY: Duration = Duration::from_secs(1);

/// Writes the dirty and due observations; deletes those of probes this instance no
/// longer runs.
pub(crate) async fn observations(
    c: &Cluster,
    client: &mut Client,
    member_key: &str,
    lease: i64,
) -> Result<(), SessionError> {
    let now = Instant::now();
    let refresh = c.refresh();
    let (writes, deletes) = {
        let mut st = c.lock();
        let mut writes = Vec::new();
        let mut deletes = Vec::new();
        st.outbox.retain(|id, o| {
            // Not checked for a while: this instance no longer observes it.
            if now.duration_since(o.checked) > refresh + o.interval * 2 {
                if o.written.is_some() {
                    deletes.push(id.clone());
                }
                return false;
            }
            if o.dirty || o.written.is_none_or(|w| now.duration_since(w) >= refresh) {
                writes.push((
                    id.clone(),
                    serde_json::to_vec(&o.value).expect("plain data"),
                ));
                o.dirty = false;
                o.written = Some(now);
            }
            true
        });
        (writes, deletes)
    };
    let guard = || Compare::lease(member_key, CompareOp::Equal, lease);
    for (id, value) in writes {
        let key = c.keys.obs(&id, &c.cfg.name);
        let txn = Txn::new().when([guard()]).and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )]);
        let r = call(client.txn(txn)).await;
        match r {
            Ok(r) if r.succeeded() => {
                c.counters.published.fetch_add(1, Relaxed);
            }
            other => {
                if let Some(o) = c.lock().outbox.get_mut(&id) {
                    o.dirty = true;
                }
                other?;
                return Err(SessionError::Lost(
                    "the member key is no longer on this lease",
                ));
            }
        }
    }
    for id in deletes {
        let key = c.keys.obs(&id, &c.cfg.name);
        let txn = Txn::new()
            .when([guard()])
            .and_then([TxnOp::delete(key, None)]);
        call(client.txn(txn)).await?;
    }
    Ok(())
}

/// Writes the admin overrides changed here.
pub(crate) async fn admin(c: &Cluster, client: &mut Client) -> Result<(), SessionError> {
    let writes = c.admin.take_pending();
    for (i, (k, v)) in writes.iter().enumerate() {
        let key = c.keys.admin(&k.0, &k.1.to_string());
        let r = match v {
            Some(o) => call(client.put(key, super::admin_store::encode(o), None))
                .await
                .map(|_| ()),
            None => call(client.delete(key, None)).await.map(|_| ()),
        };
        if let Err(e) = r {
            c.admin.requeue(writes[i..].to_vec());
            return Err(e);
        }
    }
    Ok(())
}

/// The last served times published.
#[derive(Debug, Default)]
pub(crate) struct ServedState {
    last: Option<(Instant, ServedValue)>,
}

impl ServedState {
    /// Publishes this instance's served times when they changed, at most every
    /// [`SERVED_EVERY`].
    pub(crate) async fn publish(
        &mut self,
        c: &Cluster,
        client: &mut Client,
    ) -> Result<(), SessionError> {
        if self
            .last
            .as_ref()
            .is_some_and(|(t, _)| t.elapsed() < SERVED_EVERY)
        {
            return Ok(());
        }
        let now: ServedValue = (c.wiring.served)()
            .into_iter()
            .map(|(pool, addr, until)| {
                let ms = until
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                (format!("{pool}|{addr}"), ms)
            })
            .collect::<BTreeMap<_, _>>();
        if self.last.as_ref().is_some_and(|(_, v)| *v == now) {
            return Ok(());
        }
        let key = c.keys.served(&c.cfg.name);
        call(client.put(key, serde_json::to_vec(&now).expect("plain data"), None)).await?;
        self.last = Some((Instant::now(), now));
        Ok(())
    }
}
