//! Test support for the hostile-server tests (protocol.rs, tls_proxy.rs):
//!
//! - [`ScriptServer`]: a raw-socket server on 127.0.0.1:0 (optionally TLS)
//!   whose every connection parses requests itself, records them, and
//!   answers each from a script of [`Action`]s chosen by a handler;
//! - [`TestProxy`]: an HTTP proxy handling absolute-form requests and
//!   CONNECT tunnels, recording each request line and Proxy-Authorization;
//! - a self-signed "localhost" certificate, a notification recorder, and a
//!   resolver that sends every name to 127.0.0.1.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpq_client::{Callback, Notification, Resolver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

/// Upper bound for anything a test waits for (a hang fails instead of blocking).
pub const LIMIT: Duration = Duration::from_secs(10);

/// Runs `fut`, failing the test if it takes longer than [`LIMIT`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("test step took longer than the limit")
}

// ---------------------------------------------------------------- requests

/// A request as a test server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Index of the connection on its server (0 = first accepted).
    pub conn: usize,
    /// Index of the request on its connection.
    pub seq: usize,
    pub method: String,
    pub target: String,
    /// The head as text (request line and header lines).
    pub head: String,
    /// Header fields, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The body came chunked.
    pub chunked: bool,
}

impl Received {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds `\r\n\r\n`; returns the head's length, or `None` at EOF.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Some(i + 4);
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let mut tmp = [0u8; 8192];
        match s.read(&mut tmp).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

async fn fill<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; 16384];
    match s.read(&mut tmp).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            true
        }
    }
}

struct ParsedHead {
    method: String,
    target: String,
    head: String,
    headers: Vec<(String, String)>,
}

fn parse_head(raw: &[u8]) -> ParsedHead {
    let head = String::from_utf8_lossy(raw).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    ParsedHead {
        method,
        target,
        head: head.trim_end().to_string(),
        headers,
    }
}

/// Reads one request (head and body) from `s`; `None` when the peer closed.
async fn read_request<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Option<(ParsedHead, Vec<u8>, bool)> {
    let end = read_head(s, buf).await?;
    let head = parse_head(&buf[..end]);
    buf.drain(..end);
    let get = |n: &str| {
        head.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                if !fill(s, buf).await {
                    return None;
                }
            };
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size =
                usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers: up to the empty line.
                loop {
                    if buf.starts_with(b"\r\n") {
                        buf.drain(..2);
                        break;
                    }
                    if let Some(i) = find(buf, b"\r\n\r\n") {
                        buf.drain(..i + 4);
                        break;
                    }
                    if !fill(s, buf).await {
                        return None;
                    }
                }
                break;
            }
            while buf.len() < size + 2 {
                if !fill(s, buf).await {
                    return None;
                }
            }
            if &buf[size..size + 2] != b"\r\n" {
                return None; // chunk data not followed by CRLF: not a request we record
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().ok()?;
        while buf.len() < len {
            if !fill(s, buf).await {
                return None;
            }
        }
        body = buf.drain(..len).collect();
    }
    Some((head, body, chunked))
}

// ---------------------------------------------------------------- scripts

/// One step of a connection's answer to a request.
#[derive(Clone)]
pub enum Action {
    /// Writes bytes (errors ignored: the client may be gone).
    Write(Vec<u8>),
    /// Waits for this notification (e.g. for the test to say "go on").
    Wait(Arc<Notify>),
    /// Signals this notification (one permit) once the steps before are done.
    Signal(Arc<Notify>),
    /// Pauses (only to make a server slow; never used as synchronisation).
    Sleep(Duration),
    /// Closes the connection (after a graceful shutdown of the write side).
    Close,
}

/// Builds the answer to each request: called with the request, returns
/// the steps to play on its connection.
pub type Handler = Arc<dyn Fn(&Received) -> Vec<Action> + Send + Sync>;

/// A whole response with a Content-Length body and extra header lines.
pub fn response(status: u16, extra_headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in extra_headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A redirect with `status` to `location` (empty body).
pub fn redirect(status: u16, location: &str) -> Vec<u8> {
    response(status, &[("Location", location)], b"")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        407 => "Proxy Authentication Required",
        _ => "Whatever",
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    connections: usize,
    live: usize,
    max_live: usize,
}

/// A scripted raw-socket server on 127.0.0.1 (plain or TLS).
pub struct ScriptServer {
    pub addr: SocketAddr,
    pub port: u16,
    state: Arc<Mutex<State>>,
    /// Bumped on every event (request, connection opened or closed).
    events: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

impl ScriptServer {
    /// A plain-TCP server answering with `handler`.
    pub async fn start(
        handler: impl Fn(&Received) -> Vec<Action> + Send + Sync + 'static,
    ) -> ScriptServer {
        Self::start_inner(Arc::new(handler), None).await
    }

    /// The same answering every request with the same bytes (keep-alive).
    pub async fn fixed(bytes: Vec<u8>) -> ScriptServer {
        Self::start(move |_| vec![Action::Write(bytes.clone())]).await
    }

    /// A TLS server (certificate and key from [`localhost_cert`]).
    pub async fn start_tls(
        cert: &TestCert,
        handler: impl Fn(&Received) -> Vec<Action> + Send + Sync + 'static,
    ) -> ScriptServer {
        Self::start_inner(Arc::new(handler), Some(cert.acceptor())).await
    }

    async fn start_inner(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, events) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let (tcp, _) = match listener.accept().await {
                    Ok(c) => c,
                    Err(_) => continue,
                };
                let _ = tcp.set_nodelay(true);
                let index = {
                    let mut s = st.lock().unwrap();
                    s.connections += 1;
                    s.live += 1;
                    s.max_live = s.max_live.max(s.live);
                    s.connections - 1
                };
                tx.send_modify(|n| *n += 1);
                let conn = Conn {
                    index,
                    state: st.clone(),
                    events: tx.clone(),
                    handler: handler.clone(),
                    live: true,
                };
                let tls = tls.clone();
                conns.spawn(async move {
                    match tls {
                        None => conn.serve(tcp).await,
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => conn.serve(stream).await,
                            Err(_) => drop(conn),
                        },
                    }
                });
                // Reap finished connections as we go.
                while conns.try_join_next().is_some() {}
            }
        });
        ScriptServer {
            addr,
            port: addr.port(),
            state,
            events,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// The most connections open at once (see [`Conn::serve`] for when one stops counting).
    pub fn max_live(&self) -> usize {
        self.state.lock().unwrap().max_live
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.state.lock().unwrap().live
    }

    /// Waits (up to [`LIMIT`]) until `pred` holds of the recorded state.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[Received], usize, usize) -> bool) {
        let mut ev = self.events.clone();
        let ok = tokio::time::timeout(LIMIT, async {
            loop {
                {
                    let s = self.state.lock().unwrap();
                    if pred(&s.received, s.connections, s.live) {
                        return;
                    }
                }
                if ev.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(ok.is_ok(), "timed out waiting until {what}");
    }
}

struct Conn {
    index: usize,
    state: Arc<Mutex<State>>,
    events: Arc<watch::Sender<u64>>,
    handler: Handler,
    live: bool,
}

impl Conn {
    /// Stops counting this connection as open.
    fn leave(&mut self) {
        if std::mem::take(&mut self.live) {
            self.state.lock().unwrap().live -= 1;
            self.events.send_modify(|n| *n += 1);
        }
    }

    /// Serves requests until the client closes or a script closes. A
    /// connection counts as open from accept until the client closes it or
    /// the server starts the reply that ends with [`Action::Close`] (so a
    /// client that opens its next connection after that reply is never
    /// counted twice).
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut self, mut stream: S) {
        let mut buf = Vec::new();
        let mut seq = 0;
        loop {
            let Some((head, body, chunked)) = read_request(&mut stream, &mut buf).await else {
                break;
            };
            let req = Received {
                conn: self.index,
                seq,
                method: head.method,
                target: head.target,
                head: head.head,
                headers: head.headers,
                body,
                chunked,
            };
            seq += 1;
            let actions = (self.handler)(&req);
            self.state.lock().unwrap().received.push(req);
            self.events.send_modify(|n| *n += 1);
            if actions.iter().any(|a| matches!(a, Action::Close)) {
                self.leave();
            }
            for a in actions {
                match a {
                    Action::Write(b) => {
                        let _ = stream.write_all(&b).await;
                        let _ = stream.flush().await;
                    }
                    Action::Wait(n) => n.notified().await,
                    Action::Signal(n) => n.notify_one(),
                    Action::Sleep(d) => tokio::time::sleep(d).await,
                    Action::Close => {
                        let _ = stream.shutdown().await;
                        return;
                    }
                }
            }
        }
        self.leave();
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.leave();
    }
}

// ---------------------------------------------------------------- TLS

/// A self-signed certificate for "localhost" (no CA) and its key.
pub struct TestCert {
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

/// Generates a fresh self-signed certificate for `localhost`.
pub fn localhost_cert() -> TestCert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    TestCert {
        cert_der: ck.cert.der().to_vec(),
        key_der: ck.signing_key.serialize_der(),
    }
}

impl TestCert {
    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Resolves every name to 127.0.0.1 (so "localhost" means the test server
/// whatever the system's hosts file says about ::1).
pub struct Loopback;

impl Resolver for Loopback {
    fn resolve(
        &self,
        _host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
        Box::pin(async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) })
    }
}

// ---------------------------------------------------------------- notifications

/// A callback recording every notification, and the record.
pub fn recorder() -> (Callback, Arc<Mutex<Vec<Notification>>>) {
    let log: Arc<Mutex<Vec<Notification>>> = Arc::default();
    let l = log.clone();
    (
        Arc::new(move |n: &Notification| l.lock().unwrap().push(n.clone())),
        log,
    )
}

// ---------------------------------------------------------------- proxy

/// What the test proxy saw on one client connection.
#[derive(Debug, Clone)]
pub struct ProxySeen {
    /// The request line (`GET http://... HTTP/1.1`, `CONNECT host:port HTTP/1.1`).
    pub request_line: String,
    pub proxy_authorization: Option<String>,
    pub host: Option<String>,
}

/// An HTTP proxy on 127.0.0.1: absolute-form requests are forwarded to
/// the origin (in origin form, without Proxy-Authorization) and the rest of
/// the connection is spliced; CONNECT gets `connect_status` and, on 200, a
/// tunnel to the named host (names resolve to 127.0.0.1).
pub struct TestProxy {
    pub port: u16,
    seen: Arc<Mutex<Vec<ProxySeen>>>,
    task: JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProxy {
    pub async fn start(connect_status: u16) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<ProxySeen>>> = Arc::default();
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                conns.spawn(async move { proxy_conn(client, s, connect_status).await });
                while conns.try_join_next().is_some() {}
            }
        });
        TestProxy { port, seen, task }
    }

    /// `http://user:pass@127.0.0.1:PORT`.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("http://{userinfo}@127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<ProxySeen> {
        self.seen.lock().unwrap().clone()
    }
}

/// `host:port` → an address on 127.0.0.1.
fn loopback_target(authority: &str) -> Option<SocketAddr> {
    let (_, port) = authority.rsplit_once(':')?;
    Some(SocketAddr::from(([127, 0, 0, 1], port.parse().ok()?)))
}

async fn proxy_conn(mut client: TcpStream, seen: Arc<Mutex<Vec<ProxySeen>>>, connect_status: u16) {
    let mut buf = Vec::new();
    let Some(end) = read_head(&mut client, &mut buf).await else {
        return;
    };
    let head = parse_head(&buf[..end]);
    let rest = buf.split_off(end);
    let get = |n: &str| {
        head.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let request_line = head.head.lines().next().unwrap_or_default().to_string();
    seen.lock().unwrap().push(ProxySeen {
        request_line: request_line.clone(),
        proxy_authorization: get("proxy-authorization"),
        host: get("host"),
    });
    if head.method == "CONNECT" {
        if connect_status != 200 {
            let r = response(
                connect_status,
                &[("Proxy-Authenticate", "Basic realm=\"test\"")],
                b"",
            );
            let _ = client.write_all(&r).await;
            return;
        }
        let Some(addr) = loopback_target(&head.target) else {
            return;
        };
        let Ok(mut origin) = TcpStream::connect(addr).await else {
            let _ = client.write_all(&response(502, &[], b"")).await;
            return;
        };
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
        return;
    }
    // Absolute form: http://authority/path.
    let Some(after) = head.target.strip_prefix("http://") else {
        let _ = client
            .write_all(&response(400, &[], b"not absolute form"))
            .await;
        return;
    };
    let (authority, path) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    let Some(addr) = loopback_target(authority) else {
        return;
    };
    let Ok(mut origin) = TcpStream::connect(addr).await else {
        let _ = client.write_all(&response(502, &[], b"")).await;
        return;
    };
    let mut out = format!("{} {} HTTP/1.1\r\n", head.method, path);
    for line in head.head.lines().skip(1) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("proxy-authorization:") || lower.starts_with("proxy-connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&rest);
    if origin.write_all(&out).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
}
