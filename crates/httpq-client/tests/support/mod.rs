//! Test support for the client's integration tests: scripted raw-socket
//! servers on 127.0.0.1:0, a listener that never accepts, resolvers that are
//! slow or never answer, and a recorder of status notifications built on the
//! session callback.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpq_client::{
    Callback, ClientError, Config, Notification, Payload, Resolver, Status, Timeouts,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How long a test waits for something that should happen promptly before
/// it fails (generous: the machine may be loaded).
pub const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Notification recorder
// ---------------------------------------------------------------------------

type Hook = Arc<dyn Fn(&Notification) + Send + Sync>;

struct RecInner {
    log: Mutex<Vec<Notification>>,
    changed: watch::Sender<u64>,
    hook: Mutex<Option<Hook>>,
}

/// Records every notification the session delivers (via its callback) and
/// lets a test wait for one.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<RecInner>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            inner: Arc::new(RecInner {
                log: Mutex::new(Vec::new()),
                changed: watch::channel(0).0,
                hook: Mutex::new(None),
            }),
        }
    }

    /// The session callback that records into this recorder (then runs the hook, if any).
    pub fn callback(&self) -> Callback {
        let me = self.clone();
        Arc::new(move |n: &Notification| me.record(n))
    }

    /// Something to run (after recording) for every notification, inside
    /// the callback: e.g. close a handle when a status is seen.
    pub fn set_hook(&self, hook: impl Fn(&Notification) + Send + Sync + 'static) {
        *self.inner.hook.lock().unwrap() = Some(Arc::new(hook));
    }

    fn record(&self, n: &Notification) {
        self.inner.log.lock().unwrap().push(n.clone());
        let hook = self.inner.hook.lock().unwrap().clone();
        if let Some(h) = hook {
            h(n);
        }
        self.inner.changed.send_modify(|v| *v += 1);
    }

    /// Everything so far.
    pub fn all(&self) -> Vec<Notification> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Everything so far about `handle`.
    pub fn of(&self, handle: u64) -> Vec<Notification> {
        self.all()
            .into_iter()
            .filter(|n| n.handle == handle)
            .collect()
    }

    /// The status names so far of `handle`, in order.
    pub fn names(&self, handle: u64) -> Vec<&'static str> {
        self.of(handle).iter().map(|n| n.status.name()).collect()
    }

    /// How many notifications of `handle` had status `s`.
    pub fn count(&self, handle: u64, s: Status) -> usize {
        self.of(handle).iter().filter(|n| n.status == s).count()
    }

    /// Waits (at most [`PATIENCE`]) until `pred` holds for the log.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[Notification]) -> bool) {
        let mut rx = self.inner.changed.subscribe();
        let log = &self.inner.log;
        let waited =
            tokio::time::timeout(PATIENCE, rx.wait_for(|_| pred(&log.lock().unwrap()))).await;
        if waited.is_err() {
            panic!("timed out waiting for {what}; log: {:#?}", self.all());
        }
    }

    /// Waits until `handle` has had `n` notifications with status `s`.
    pub async fn wait_for_nth(&self, handle: u64, s: Status, n: usize) {
        self.wait_until(&format!("{n}x {} on handle {handle}", s.name()), |log| {
            log.iter()
                .filter(|x| x.handle == handle && x.status == s)
                .count()
                >= n
        })
        .await
    }

    /// Waits until `handle` has had a notification with status `s`.
    pub async fn wait_for(&self, handle: u64, s: Status) {
        self.wait_for_nth(handle, s, 1).await
    }
}

/// Names of a slice of notifications.
pub fn names(ns: &[Notification]) -> Vec<&'static str> {
    ns.iter().map(|n| n.status.name()).collect()
}

/// The handle rules of DESIGN.md §2 for one handle's notifications:
/// HANDLE_CREATED exactly once and first, HANDLE_CLOSING exactly once and
/// last, every notification carries the handle's context, and time never
/// goes backwards.
pub fn assert_handle_rules(ns: &[Notification], context: u64) {
    let n = names(ns);
    assert!(!ns.is_empty(), "no notifications");
    assert_eq!(n.first(), Some(&"HANDLE_CREATED"), "{n:?}");
    assert_eq!(n.last(), Some(&"HANDLE_CLOSING"), "{n:?}");
    assert_eq!(
        n.iter().filter(|s| **s == "HANDLE_CREATED").count(),
        1,
        "{n:?}"
    );
    assert_eq!(
        n.iter().filter(|s| **s == "HANDLE_CLOSING").count(),
        1,
        "{n:?}"
    );
    for x in ns {
        assert_eq!(x.context, context, "context of {:?}", x);
    }
    for w in ns.windows(2) {
        assert!(
            w[0].elapsed <= w[1].elapsed,
            "time went backwards: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

/// A cancelled operation's end: exactly one REQUEST_COMPLETE carrying
/// Err(Cancelled) after `from`, then HANDLE_CLOSING, and nothing after.
pub fn assert_cancelled_tail(ns: &[Notification]) {
    let n = names(ns);
    assert!(n.len() >= 3, "{n:?}");
    assert_eq!(
        &n[n.len() - 2..],
        &["REQUEST_COMPLETE", "HANDLE_CLOSING"],
        "{n:?}"
    );
    assert_eq!(
        ns[ns.len() - 2].payload,
        Payload::Complete(Err(ClientError::Cancelled)),
        "{n:?}"
    );
}

/// The REQUEST_COMPLETE results of one handle's notifications.
pub fn completions(ns: &[Notification]) -> Vec<Result<(), ClientError>> {
    ns.iter()
        .filter(|n| n.status == Status::RequestComplete)
        .map(|n| match &n.payload {
            Payload::Complete(r) => r.clone(),
            p => panic!("REQUEST_COMPLETE with payload {p:?}"),
        })
        .collect()
}

/// A config that records into `rec`, with `timeouts`.
pub fn config(rec: &Recorder, timeouts: Timeouts) -> Config {
    Config {
        callback: Some(rec.callback()),
        timeouts,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// Scripted raw servers
// ---------------------------------------------------------------------------

/// One request as the raw server read it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Which accepted connection (0, 1, ...) it came on.
    pub conn: usize,
    /// Which request on that connection (0, 1, ...).
    pub nth: usize,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does in answer to a request.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes (in one write call).
    Write(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Write `bytes` `chunk` bytes at a time, waiting `every` after each piece.
    Drip {
        bytes: Vec<u8>,
        chunk: usize,
        every: Duration,
    },
    /// Stop answering, but keep the connection open, reading (and
    /// discarding) until the client closes it.
    Hold,
    /// Wait until the test opens this gate (`notify_one`).
    Gate(Arc<tokio::sync::Notify>),
    /// Close the connection.
    Close,
}

/// A full response with a Content-Length body.
pub fn response(status: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra_headers}\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Just a head announcing `len` body bytes.
pub fn head(len: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes()
}

pub type Handler = Arc<dyn Fn(&Req) -> Vec<Step> + Send + Sync>;

#[derive(Clone)]
enum Mode {
    Script(Handler),
    /// Accept, then never write; read (and discard) or not read at all.
    Silent {
        read: bool,
    },
}

/// A raw server on 127.0.0.1:0; [`stop`](Server::stop) ends it and every
/// connection task it started.
pub struct Server {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    eof: tokio::sync::Mutex<mpsc::UnboundedReceiver<usize>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// A server answering each request with `handler`'s steps (keep-alive:
    /// the connection goes on to the next request after the steps).
    pub async fn script(handler: impl Fn(&Req) -> Vec<Step> + Send + Sync + 'static) -> Server {
        Server::start(Mode::Script(Arc::new(handler))).await
    }

    /// A server answering every request with the same bytes.
    pub async fn fixed(bytes: Vec<u8>) -> Server {
        Server::script(move |_| vec![Step::Write(bytes.clone())]).await
    }

    /// A server that accepts and reads but never answers.
    pub async fn never_answers() -> Server {
        Server::start(Mode::Silent { read: true }).await
    }

    /// A server that accepts and neither reads nor answers.
    pub async fn never_reads() -> Server {
        Server::start(Mode::Silent { read: false }).await
    }

    /// A server that sends a head announcing `len` bytes and `sent` of
    /// them, then stalls with the connection open.
    pub async fn stalls_mid_body(len: usize, sent: usize) -> Server {
        Server::script(move |_| {
            let mut v = head(len);
            v.extend(std::iter::repeat_n(b'x', sent));
            vec![Step::Write(v), Step::Hold]
        })
        .await
    }

    /// A server that sends a head then drips the body `chunk` bytes every `every`.
    pub async fn drips(len: usize, chunk: usize, every: Duration) -> Server {
        Server::script(move |_| {
            vec![
                Step::Write(head(len)),
                Step::Drip {
                    bytes: vec![b'd'; len],
                    chunk,
                    every,
                },
            ]
        })
        .await
    }

    async fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (eof_tx, eof_rx) = mpsc::unbounded_channel();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    r = listener.accept() => {
                        let Ok((s, _)) = r else { continue };
                        let idx = count.fetch_add(1, Ordering::SeqCst);
                        let (mode, eof_tx) = (mode.clone(), eof_tx.clone());
                        conns.spawn(async move {
                            match mode {
                                Mode::Script(h) => serve_script(s, h, idx, eof_tx).await,
                                Mode::Silent { read: true } => {
                                    hold(s).await;
                                    let _ = eof_tx.send(idx);
                                }
                                Mode::Silent { read: false } => {
                                    let _s = s;
                                    std::future::pending::<()>().await;
                                }
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            // Aborts the connection tasks and waits until they are gone
            // (their sockets closed).
            conns.shutdown().await;
        });
        Server {
            addr,
            accepted,
            eof: tokio::sync::Mutex::new(eof_rx),
            shutdown: Some(stop_tx),
            task: Some(task),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits (at most [`PATIENCE`]) until a connection sees the client's
    /// end of file; returns which connection.
    pub async fn wait_eof(&self) -> usize {
        let mut rx = self.eof.lock().await;
        tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("the server never saw the client close the connection")
            .expect("server gone")
    }

    /// Stops accepting and ends every connection task; returns once they are gone.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Reads and discards until the peer closes (or the connection breaks).
async fn hold(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve_script(
    mut s: TcpStream,
    handler: Handler,
    conn: usize,
    eof_tx: mpsc::UnboundedSender<usize>,
) {
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    let mut nth = 0;
    loop {
        // The head.
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut tmp).await {
                Ok(0) | Err(_) => {
                    let _ = eof_tx.send(conn);
                    return;
                }
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let text = String::from_utf8_lossy(&buf[..end - 4]).into_owned();
        buf.drain(..end);
        let mut lines = text.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let path = first.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        // The body (Content-Length only).
        while buf.len() < len {
            match s.read(&mut tmp).await {
                Ok(0) | Err(_) => {
                    let _ = eof_tx.send(conn);
                    return;
                }
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        let req = Req {
            method,
            path,
            headers,
            body,
            conn,
            nth,
        };
        nth += 1;
        for step in handler(&req) {
            match step {
                Step::Write(b) => {
                    if s.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Drip {
                    bytes,
                    chunk,
                    every,
                } => {
                    for piece in bytes.chunks(chunk.max(1)) {
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(every).await;
                    }
                }
                Step::Hold => {
                    hold(s).await;
                    let _ = eof_tx.send(conn);
                    return;
                }
                Step::Gate(g) => g.notified().await,
                Step::Close => return,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A listener that never accepts
// ---------------------------------------------------------------------------

/// A listening socket whose accept queue is full (backlog 0, filled by
/// connections nobody accepts), so further connects hang: the kernel drops
/// their SYNs.
pub struct Unaccepting {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<std::net::TcpStream>,
}

impl Unaccepting {
    pub fn new() -> Unaccepting {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        sock.listen(0).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        // Connect until one hangs: then the queue is full. (With backlog 0
        // Linux queues one connection.)
        loop {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(250)) {
                Ok(s) => fillers.push(s),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the accept queue: {e}"),
            }
            assert!(fillers.len() < 64, "the accept queue never filled");
        }
        Unaccepting {
            addr,
            _listener: sock,
            _fillers: fillers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

// ---------------------------------------------------------------------------
// Resolvers
// ---------------------------------------------------------------------------

/// A resolver that answers `addr` after `delay` (`None`: never), counting
/// lookups started and lookups whose future was dropped unfinished.
#[derive(Clone)]
pub struct SlowResolver {
    pub delay: Option<Duration>,
    pub addr: SocketAddr,
    pub started: Arc<AtomicUsize>,
    pub abandoned: Arc<AtomicUsize>,
}

impl SlowResolver {
    pub fn never() -> SlowResolver {
        SlowResolver::new(None, SocketAddr::from(([127, 0, 0, 1], 9)))
    }

    pub fn new(delay: Option<Duration>, addr: SocketAddr) -> SlowResolver {
        SlowResolver {
            delay,
            addr,
            started: Arc::default(),
            abandoned: Arc::default(),
        }
    }
}

struct Abandon(Arc<AtomicUsize>, bool);

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Resolver for SlowResolver {
    fn resolve(
        &self,
        _host: &str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let (delay, addr, abandoned) = (self.delay, self.addr, self.abandoned.clone());
        // Counted from the call: a future dropped before its first poll
        // is abandoned too.
        let guard = Abandon(abandoned, false);
        Box::pin(async move {
            let mut guard = guard; // the whole guard, not just its flag
            match delay {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
            guard.1 = true;
            Ok(vec![addr])
        })
    }
}

// ---------------------------------------------------------------------------
// Process resources
// ---------------------------------------------------------------------------

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` bytes of the sequence 0, 1, ..., 250, 0, ... starting at `seed`.
pub fn pattern(len: usize, seed: u64) -> &'static [u8] {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| (0..400_000u32).map(|i| (i % 251) as u8).collect());
    let at = (seed % 251) as usize;
    &base[at..at + len]
}

/// A cheap order-sensitive checksum of a body.
pub fn checksum(b: &[u8]) -> u64 {
    b.iter()
        .fold(0u64, |a, &x| a.wrapping_mul(31).wrapping_add(x as u64))
}
