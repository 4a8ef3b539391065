//! The plain-HTTP check reads responses however the server frames them (RFC 9112 section 6):
//! chunked, `Content-Length`, or until the server closes; interim 1xx responses are skipped;
//! a short or malformed response fails the check. Each backend here is a real TCP server on
//! 127.0.0.x that writes a fixed byte string, in several writes, and closes.

mod support_backends;

use std::net::SocketAddr;
use std::time::Duration;

use roundel::health::HealthMonitor;
use roundel::node::{Failure, Health, PoolRuntime, Reported};
use support_backends::pools;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server answering every connection with `parts`, written one by one a little apart
/// (so the check sees them in separate reads), then closing (after `hold`, if set).
struct RawBackend {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RawBackend {
    async fn start(ip: &str, parts: &[&str]) -> Self {
        Self::start_holding(ip, parts, Duration::ZERO).await
    }

    async fn start_holding(ip: &str, parts: &[&str], hold: Duration) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.as_bytes().to_vec()).collect();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let parts = parts.clone();
                tokio::spawn(async move {
                    // Read the request head (bounded in size and time).
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await
                        {
                            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    for p in parts {
                        if s.write_all(&p).await.is_err() {
                            return;
                        }
                        let _ = s.flush().await;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    tokio::time::sleep(hold).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One pool per backend, each checked over HTTP with `extra` check keys.
fn zone(backends: &[&RawBackend], extra: &str) -> String {
    let mut z = String::new();
    for (i, b) in backends.iter().enumerate() {
        z.push_str(&format!(
            "[pools.p{i}]\ncheck = {{ http = {{ port = {}{extra} }}, interval = \"2s\", timeout = \"1s\" }}\nnodes = [\"{}\"]\n",
            b.addr.port(),
            b.addr.ip()
        ));
    }
    z
}

fn state(p: &PoolRuntime) -> (Health, Option<Failure>) {
    let h = &p.nodes()[0].health;
    (h.health(), h.detail().last_failure)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_substring_is_found_in_every_framing() {
    let chunked = RawBackend::start(
        "127.0.0.151",
        &[
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\r\nstatu\r\n",
            "4;x=y\r\ns: o\r\n1\r\nk\r\n",
            "0\r\n\r\n",
        ],
    )
    .await;
    let until_close = RawBackend::start(
        "127.0.0.152",
        &[
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstatus",
            ": ok\n",
        ],
    )
    .await;
    let length = RawBackend::start(
        "127.0.0.153",
        &[
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n",
            "\r\nstatus",
            ": ok",
        ],
    )
    .await;
    let interim = RawBackend::start(
        "127.0.0.154",
        &[
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nstatus: ok",
        ],
    )
    .await;
    let all = [&chunked, &until_close, &length, &interim];
    let mon = HealthMonitor::new();
    let r = mon
        .reconcile(&pools(&zone(&all, ", body = \"status: ok\"")))
        .await;
    for (i, p) in r.pools.iter().enumerate() {
        assert_eq!(state(p), (Health::Up, None), "backend {i}");
    }
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_weight_and_missing_substring() {
    let b = RawBackend::start(
        "127.0.0.155",
        &[
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "6\r\nload 3\r\n3\r\n0%\n\r\n0\r\n\r\n",
        ],
    )
    .await;
    let mon = HealthMonitor::new();
    let weight = mon
        .reconcile(&pools(&zone(&[&b], ", weight_body = true")))
        .await;
    assert_eq!(state(&weight.pools[0]).0, Health::Up);
    assert_eq!(
        weight.pools[0].nodes()[0].health.reported(),
        Some(Reported::Percent(30))
    );
    mon.shutdown().await;
    let mon = HealthMonitor::new();
    let missing = mon.reconcile(&pools(&zone(&[&b], ", body = \"ok\""))).await;
    assert_eq!(
        state(&missing.pools[0]),
        (Health::Down, Some(Failure::BodyMismatch))
    );
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_or_malformed_responses_fail() {
    let short = RawBackend::start(
        "127.0.0.156",
        &["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstatus: o"],
    )
    .await;
    let no_head = RawBackend::start("127.0.0.157", &["HTTP/1.1 200 OK\r\nContent-"]).await;
    let garbage = RawBackend::start("127.0.0.158", &["SSH-2.0-OpenSSH_9.6\r\n\r\n"]).await;
    let bad_chunk = RawBackend::start(
        "127.0.0.159",
        &["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"],
    )
    .await;
    let all = [&short, &no_head, &garbage, &bad_chunk];
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone(&all, ", body = \"ok\""))).await;
    for (i, p) in r.pools.iter().enumerate() {
        let (h, f) = state(p);
        assert_eq!(h, Health::Down, "backend {i}");
        assert!(matches!(f, Some(Failure::Http(_))), "backend {i}: {f:?}");
    }
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_host_names_the_address_and_the_checker() {
    let a = support_backends::Backend::http("127.0.0.160", support_backends::Mode::ok()).await;
    let zone = format!(
        "[pools.p]\ncheck = {{ http = {{ port = {}, method = \"HEAD\", headers = {{ \"User-Agent\" = \"probe/1\" }} }} }}\nnodes = [\"{}\"]\n",
        a.port(),
        a.addr.ip()
    );
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone)).await;
    // HEAD: the Content-Length of the answer announces a body that never comes.
    assert_eq!(state(&r.pools[0]), (Health::Up, None));
    let s = a.seen().remove(0);
    assert_eq!(s.request_line, "HEAD / HTTP/1.1");
    assert_eq!(s.header("host"), Some(a.addr.to_string().as_str()));
    assert_eq!(
        s.header("user-agent"),
        Some("probe/1"),
        "configured header wins"
    );
    assert_eq!(s.header("connection"), Some("close"));
    mon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_after_an_interim_one_in_the_same_read_is_not_waited_for() {
    // Interim and final answers in one write, and the connection left open: the final
    // answer is already buffered, so the check passes without reading more (else it would
    // wait for the timeout).
    let b = RawBackend::start_holding(
        "127.0.0.161",
        &["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"],
        Duration::from_secs(5),
    )
    .await;
    let mon = HealthMonitor::new();
    let r = mon.reconcile(&pools(&zone(&[&b], ""))).await;
    assert_eq!(state(&r.pools[0]), (Health::Up, None));
    mon.shutdown().await;
}
