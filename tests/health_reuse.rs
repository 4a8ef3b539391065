//! `reuse_connection = true` on plain-HTTP checks, against real keep-alive HTTP servers on
//! 127.0.0.x that count the connections they accept and the requests they answer: one
//! connection carries every check; a server that closes idle connections, answers
//! `Connection: close`, or closes a kept connection as a request arrives still passes
//! every check; a stopped or hanging server still fails the node in the usual time; the
//! bound on kept connections and its share of the descriptor budget; the configuration
//! errors.

mod support_backends;
mod zone_text;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use roundel::health::HealthMonitor;
use roundel::node::{Health, PoolRuntime};
use support_backends::{pools, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use zone_text::problems;

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 150;
/// Bound on waiting for a number of checks (12 checks take 2.4 s at this interval).
const WAIT: Duration = Duration::from_secs(10);
/// Scheduling slack on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(400);

/// How the server treats a connection after answering a request on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    /// Keeps it for the next request (HTTP/1.1 default).
    KeepAlive,
    /// Closes it right after the response, without saying so (an idle timeout of zero).
    CloseAfter,
    /// Answers with `Connection: close`, and keeps the connection open anyway: the client
    /// must not use it again.
    SaysClose,
    /// Answers the first request of a connection; closes the connection when a second one
    /// arrives on it, without answering (an idle close racing the next request).
    CloseOnSecond,
    /// Answers the first request of a connection, never the ones after it.
    HangOnSecond,
    /// Sends a `408 Request Timeout` after its answer and closes, as some servers do when
    /// they close an idle connection.
    Sends408,
    /// Answers every request with these bytes, and keeps the connection.
    Respond(&'static str),
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    answered: AtomicU64,
    /// Requests that arrived on a connection that had carried one before.
    on_kept: AtomicU64,
    /// Requests with a `Connection: close` header.
    asked_close: AtomicU64,
}

/// A keep-alive HTTP/1.1 server answering `200 ok` with a `Content-Length` body.
struct Server {
    addr: SocketAddr,
    counts: Arc<Counts>,
    tasks: JoinSet<()>,
}

impl Server {
    async fn start(ip: &str, style: Style) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let mut tasks = JoinSet::new();
        let c = counts.clone();
        tasks.spawn(async move {
            // Connections are served in this task's own set, so that aborting the
            // server closes every connection it holds.
            let mut conns = JoinSet::new();
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                c.accepted.fetch_add(1, SeqCst);
                conns.spawn(serve(s, style, c.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            counts,
            tasks,
        }
    }

    fn accepted(&self) -> u64 {
        self.counts.accepted.load(SeqCst)
    }
    fn answered(&self) -> u64 {
        self.counts.answered.load(SeqCst)
    }
    fn on_kept(&self) -> u64 {
        self.counts.on_kept.load(SeqCst)
    }
    fn asked_close(&self) -> u64 {
        self.counts.asked_close.load(SeqCst)
    }

    /// Stops listening and closes every connection.
    async fn stop(&mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn serve(mut s: TcpStream, style: Style, c: Arc<Counts>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let mut served = 0u32;
    loop {
        // One request head (bounded in size); EOF or an error ends the connection.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 {
                return;
            }
            match s.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end);
        if head.contains("\r\nconnection: close\r\n") {
            c.asked_close.fetch_add(1, SeqCst);
        }
        if served > 0 {
            c.on_kept.fetch_add(1, SeqCst);
            match style {
                Style::CloseOnSecond => return,
                Style::HangOnSecond => {
                    // Hold the connection open until the peer closes it.
                    while matches!(s.read(&mut chunk).await, Ok(n) if n > 0) {}
                    return;
                }
                _ => {}
            }
        }
        let close = if style == Style::SaysClose {
            "Connection: close\r\n"
        } else {
            ""
        };
        let resp = match style {
            Style::Respond(r) => r.to_owned(),
            _ => format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{close}\r\nok"),
        };
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        c.answered.fetch_add(1, SeqCst);
        served += 1;
        match style {
            Style::CloseAfter => return,
            Style::Sends408 => {
                let bye = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = s.write_all(bye.as_bytes()).await;
                return;
            }
            _ => {}
        }
    }
}

/// One pool per server, each checked over HTTP with `reuse` and `fall = 1`, so that any
/// single failed check would take its node down.
fn zone(servers: &[&Server], reuse: bool) -> String {
    let mut z = String::new();
    for (i, s) in servers.iter().enumerate() {
        z.push_str(&format!(
            "[pools.p{i}]\ncheck = {{ http = {{ port = {}, path = \"/health\", reuse_connection = {reuse} }}, interval = \"{INTERVAL_MS}ms\", timeout = \"{TIMEOUT_MS}ms\", fall = 1, rise = 1 }}\nnodes = [\"{}\"]\n",
            s.addr.port(),
            s.addr.ip()
        ));
    }
    z
}

fn node(p: &PoolRuntime) -> &roundel::node::NodeHealth {
    &p.nodes()[0].health
}

/// Waits until `server` has answered `n` checks, and returns the node's failed checks.
async fn after_checks(server: &Server, n: u64, p: &PoolRuntime) -> u64 {
    assert!(
        wait_for(WAIT, || server.answered() >= n).await.is_some(),
        "{n} checks not answered within {WAIT:?} (answered {})",
        server.answered()
    );
    node(p).detail().failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reuse_one_connection_carries_every_check_without_it_one_each() {
    let kept = Server::start("127.0.0.81", Style::KeepAlive).await;
    let fresh = Server::start("127.0.0.82", Style::KeepAlive).await;
    let mon = HealthMonitor::new();
    let mut spec = pools(&zone(&[&kept], true));
    spec.extend(pools(&zone(&[&fresh], false).replace("p0", "q0")));
    let r = mon.reconcile(&spec).await;
    assert_eq!(node(&r.pools[0]).health(), Health::Up);
    assert_eq!(after_checks(&kept, 12, &r.pools[0]).await, 0);
    assert_eq!(after_checks(&fresh, 12, &r.pools[1]).await, 0);
    // Reuse: one connection, no `Connection: close` asked for.
    assert_eq!(kept.accepted(), 1, "connections accepted with reuse");
    assert_eq!(kept.on_kept(), kept.answered() - 1);
    assert_eq!(kept.asked_close(), 0);
    // Without: a connection per check, each asking to be closed.
    let (answered, accepted) = (fresh.answered(), fresh.accepted());
    assert!(accepted >= answered, "{accepted} < {answered}");
    assert_eq!(fresh.on_kept(), 0);
    assert_eq!(fresh.asked_close(), fresh.answered());
    assert_eq!(mon.kept_connections().0, 1);
    // Stopping the probes closes the kept connection and gives its slot back.
    mon.reconcile(&[]).await;
    assert!(
        wait_for(WAIT, || mon.kept_connections().0 == 0)
            .await
            .is_some()
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_close_kept_connections_pass_every_check() {
    // Closes after each answer: the next check sees the close and connects afresh.
    let after = Server::start("127.0.0.83", Style::CloseAfter).await;
    // Says `Connection: close`: the check must not reuse the connection.
    let says = Server::start("127.0.0.84", Style::SaysClose).await;
    // Closes a kept connection when the next request arrives: the check is retried on a
    // fresh connection, within its timeout (RFC 9112 section 9.3.1).
    let racing = Server::start("127.0.0.85", Style::CloseOnSecond).await;
    // Leaves a 408 on the kept connection: a response to no request, never read as one.
    let bye = Server::start("127.0.0.92", Style::Sends408).await;
    let mon = HealthMonitor::new();
    let all = [&after, &says, &racing, &bye];
    let r = mon.reconcile(&pools(&zone(&all, true))).await;
    // The first check brought every node up: one transition each, and no more after it.
    let first: Vec<u64> = r
        .pools
        .iter()
        .map(|p| node(p).detail().transitions)
        .collect();
    assert_eq!(first, [1, 1, 1, 1]);
    for (i, s) in all.into_iter().enumerate() {
        let p = &r.pools[i];
        assert_eq!(after_checks(s, 12, p).await, 0, "failed checks of p{i}");
        let d = node(p).detail();
        assert_eq!(
            (node(p).health(), d.transitions),
            (Health::Up, 1),
            "p{i} must not flap"
        );
        assert_eq!(s.asked_close(), 0, "p{i}: reuse asks for keep-alive");
    }
    // Nothing was sent on a connection the server had closed or asked to close...
    assert_eq!(after.on_kept(), 0);
    assert_eq!(says.on_kept(), 0);
    assert_eq!(bye.on_kept(), 0);
    // ... but the racing server's kept connections were tried, and each cost a retry.
    let (tried, answered) = (racing.on_kept(), racing.answered());
    assert!(tried >= answered - 1 && tried > 0, "{tried} of {answered}");
    assert!(
        racing.accepted() - answered <= 1,
        "one connection per answer"
    );
    // At most the racing server's and the closing ones' (until their close is seen).
    assert!(
        mon.kept_connections().0 <= 3,
        "{:?}",
        mon.kept_connections()
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reuse_a_stopped_or_hanging_server_fails_its_node_in_the_usual_time() {
    let mut stopped = Server::start("127.0.0.86", Style::KeepAlive).await;
    let hanging = Server::start("127.0.0.87", Style::HangOnSecond).await;
    let mon = HealthMonitor::new();
    let r = mon
        .reconcile(&pools(&zone(&[&stopped, &hanging], true)))
        .await;
    let (a, b) = (&r.pools[0], &r.pools[1]);
    assert_eq!(after_checks(&stopped, 5, a).await, 0);
    assert_eq!(stopped.accepted(), 1, "the check reuses its connection");
    assert_eq!(node(a).health(), Health::Up);
    // fall = 1: down within one interval and one timeout (plus a retry's connect).
    let bound = Duration::from_millis(INTERVAL_MS + TIMEOUT_MS) + MARGIN;
    stopped.stop().await;
    let took = wait_for(bound * 2, || node(a).health() == Health::Down).await;
    assert!(
        took.is_some_and(|t| t <= bound),
        "stopped server: down after {took:?}, bound {bound:?}"
    );
    // The hanging server answers the first check of each connection only: every check on
    // a kept connection times out, which closes it, so the node goes down and up again
    // and each answered check came on a fresh connection.
    assert!(
        wait_for(WAIT, || node(b).detail().failures >= 3)
            .await
            .is_some(),
        "the hanging server never failed a check"
    );
    assert!(node(b).detail().transitions >= 2);
    assert!(hanging.accepted() - hanging.answered() <= 1);
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_connections_are_bounded_and_the_rest_open_one_per_check() {
    let servers = [
        Server::start("127.0.0.88", Style::KeepAlive).await,
        Server::start("127.0.0.89", Style::KeepAlive).await,
        Server::start("127.0.0.90", Style::KeepAlive).await,
    ];
    let refs: Vec<&Server> = servers.iter().collect();
    // Room for one kept connection.
    let mon = HealthMonitor::with_caps(16, 1);
    let r = mon.reconcile(&pools(&zone(&refs, true))).await;
    for (i, s) in servers.iter().enumerate() {
        assert_eq!(after_checks(s, 15, &r.pools[i]).await, 0);
    }
    assert_eq!(mon.kept_connections(), (1, 1));
    let mut accepted: Vec<(u64, u64)> = servers
        .iter()
        .map(|s| (s.accepted(), s.answered()))
        .collect();
    accepted.sort();
    // One server holds the kept connection; the others got a connection per check.
    assert_eq!(accepted[0].0, 1, "{accepted:?}");
    for (acc, ans) in &accepted[1..] {
        assert!(acc >= ans, "{accepted:?}");
    }
    mon.shutdown().await;

    // No room at all: reuse changes nothing.
    let mon = HealthMonitor::with_caps(16, 0);
    let s = Server::start("127.0.0.91", Style::KeepAlive).await;
    let r = mon.reconcile(&pools(&zone(&[&s], true))).await;
    assert_eq!(after_checks(&s, 10, &r.pools[0]).await, 0);
    assert!(s.accepted() >= s.answered());
    assert_eq!(s.on_kept(), 0);
    mon.shutdown().await;
}

#[test]
fn reuse_connection_is_an_http_key_only() {
    let nodes = "nodes = [\"192.0.2.10\"]\n";
    assert_eq!(
        problems(&format!(
            "[checks.c]\nhttp = {{ port = 8080, reuse_connection = true }}\n[pools.www]\ncheck = \"c\"\n{nodes}"
        )),
        Vec::<String>::new()
    );
    let got = problems(&format!(
        "[checks.c]\nhttps = {{ reuse_connection = true }}\n[pools.www]\ncheck = \"c\"\n{nodes}"
    ));
    assert_eq!(
        got,
        [
            "10:30: checks.c.https.reuse_connection: reuse_connection applies to http checks only (https checks open a connection per check)"
        ]
    );
    let got = problems(&format!(
        "[pools.www]\ncheck = {{ tcp = {{ port = 22, reuse_connection = false }} }}\n{nodes}"
    ));
    assert_eq!(
        got,
        [
            "10:49: pools.www.check.tcp.reuse_connection: reuse_connection applies to http checks only (a tcp check only connects)"
        ]
    );
    // Beside the kind, or misspelt, it is an unknown key.
    let got = problems(&format!(
        "[checks.c]\nhttp = {{ port = 80 }}\nreuse_connection = true\n[pools.www]\ncheck = \"c\"\n{nodes}"
    ));
    assert!(
        got.iter()
            .any(|g| g.starts_with("11:1: checks.c.reuse_connection: unknown key")),
        "{got:?}"
    );
    let got = problems(&format!(
        "[checks.c]\nhttp = {{ reuse_connections = true }}\n[pools.www]\ncheck = \"c\"\n{nodes}"
    ));
    assert!(
        got.iter().any(|g| g.starts_with(
            "10:10: checks.c.http.reuse_connections: unknown key `reuse_connections`; did you mean `reuse_connection`?"
        )),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_responses_read_to_their_end_by_their_framing_keep_the_connection() {
    let big = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{}",
            "x".repeat(5000)
        )
        .into_boxed_str(),
    );
    let cases: [(&str, &'static str, bool); 6] = [
        (
            "chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            true,
        ),
        ("no body", "HTTP/1.1 204 No Content\r\n\r\n", true),
        (
            "chunked with a trailer",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
            false,
        ),
        ("a body over max_body (4096)", big, false),
        (
            "HTTP/1.0",
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
        ),
        (
            "framed by close",
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok",
            false,
        ),
    ];
    let mut servers = Vec::new();
    for (i, (_, resp, _)) in cases.iter().enumerate() {
        servers.push(Server::start(&format!("127.0.0.{}", 100 + i), Style::Respond(resp)).await);
    }
    let refs: Vec<&Server> = servers.iter().collect();
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone(&refs, true))).await;
    for (i, (what, _, kept)) in cases.iter().enumerate() {
        let s = &servers[i];
        assert_eq!(after_checks(s, 8, &r.pools[i]).await, 0, "{what}");
        if *kept {
            assert_eq!(s.accepted(), 1, "{what}: one connection");
        } else {
            assert!(
                s.accepted() >= s.answered(),
                "{what}: one connection per check"
            );
            assert_eq!(s.on_kept(), 0, "{what}");
        }
    }
    mon.shutdown().await;
}

#[test]
fn roundel_check_prints_the_kept_connection_share_of_the_probe_reserve() {
    let dir = std::env::temp_dir().join(format!("roundel-reuse-check-{}", std::process::id()));
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let config = dir.join("roundel.toml");
    std::fs::write(&config, "[health]\nmax_probes_in_flight = 100\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roundel"))
        .args(["check", "--config"])
        .arg(&config)
        .arg(&zones)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // The same split as the server's: the reserve less the checks in flight.
    let hard = roundel::limits::nofile::current().unwrap().hard;
    let b = roundel::limits::Budget::derive(hard, &roundel::limits::Limits::default());
    let kept = b.kept_connections(100);
    assert_eq!(kept as u64, b.probes.saturating_sub(100));
    assert!(
        text.contains(&format!(
            "{} kept for probes, of which {kept} for check connections kept open by reuse_connection",
            b.probes
        )),
        "{text}"
    );
}
