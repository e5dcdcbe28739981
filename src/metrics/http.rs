//! A small HTTP/1.1 endpoint for Prometheus and probes: `GET /metrics` (text exposition format 0.0.4),
//! `GET /healthz` (the process is alive), `GET /readyz` (in the room and receiving media; 503 otherwise).
//!
//! One request per connection, headers capped at 8 KiB and read within 5 s: a scraper or a probe needs no
//! more, and nothing a client sends can hold memory or a task for long.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Metrics;

const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Bind the metrics address (fails at start, with the address, when it is taken).
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot serve metrics on {addr}: {e} (set [metrics] listen in the config or --metrics-listen)")
    })
}

/// Serve until `shutdown` fires.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let m = metrics.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &m).await {
                            log::debug!("metrics request: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    log::warn!("metrics endpoint: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn handle(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(Some(i));
            }
            if buf.len() >= MAX_REQUEST {
                return Ok(None);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before the request ended"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request not received in time"))??;
    let Some(head_end) = head_end else {
        return respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            "text/plain",
            b"request too large\n",
            false,
        )
        .await;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"only GET and HEAD\n", false).await;
    }
    match path {
        "/metrics" => {
            let body = metrics.render();
            let ct = "text/plain; version=0.0.4; charset=utf-8";
            respond(&mut stream, "200 OK", ct, body.as_bytes(), head_only).await
        }
        "/healthz" => respond(&mut stream, "200 OK", "text/plain", b"ok\n", head_only).await,
        "/readyz" => match metrics.readiness() {
            Ok(why) => {
                respond(&mut stream, "200 OK", "text/plain", format!("ready: {why}\n").as_bytes(), head_only).await
            }
            Err(why) => {
                let body = format!("not ready: {why}\n");
                respond(&mut stream, "503 Service Unavailable", "text/plain", body.as_bytes(), head_only).await
            }
        },
        _ => {
            let body = b"not found: try /metrics, /healthz or /readyz\n";
            respond(&mut stream, "404 Not Found", "text/plain", body, head_only).await
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, ct: &str, body: &[u8], head_only: bool) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_and_probes() {
        let metrics = Metrics::new();
        let listener = bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve(listener, metrics.clone(), stopped));

        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("text/plain; version=0.0.4"));
        assert!(r.contains("\r\n\r\n# HELP deepfake_guard_"), "{r}");
        let len: usize = r.split("Content-Length: ").nth(1).unwrap().split("\r\n").next().unwrap().parse().unwrap();
        assert_eq!(len, r.split_once("\r\n\r\n").unwrap().1.len(), "Content-Length matches the body");

        assert!(get(addr, "GET /healthz HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200"));
        let r = get(addr, "GET /readyz HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 503") && r.contains("not in the room"), "{r}");
        metrics.sfu_joined.set(1);
        assert!(get(addr, "GET /readyz HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200"));

        assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_REQUEST));
        assert!(get(addr, &huge).await.starts_with("HTTP/1.1 431"));
        let r = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n"), "HEAD has no body");

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), server).await.expect("the server stops").unwrap();
    }
}
