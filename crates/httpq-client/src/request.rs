//! Connect and request handles: sending a request (in one step or as
//! headers, body chunks and an end), receiving its head through 1xx and
//! redirects, then reading the body into caller buffers — every phase
//! notified, every wait under its timeout and cancellable by close.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;
use httpq_proto::{BodyDecoder, BodyLength, ResponseHead, ResponseParser, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::connect::{establish, Connection};
use crate::decode::ContentDecoder;
use crate::error::Violation;
use crate::handle::HandleCore;
use crate::pool::{Checkout, PoolKey};
use crate::session::{Proxy, SessionInner};
use crate::status::{Payload, Status, Timings};
use crate::url::{Scheme, Url};
use crate::{ClientError, TimeoutKind};

/// The body of a redirect response is read (to keep the connection) up to this.
const REDIRECT_DRAIN_MAX: u64 = 64 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 256 * 1024;

/// A request's clock: per-phase timings, the total deadline, and running
/// waits under a timeout and the handle's cancellation.
pub(crate) struct Clock {
    start: Instant,
    total: Option<Instant>,
    pub timings: Timings,
}

impl Clock {
    fn new(total: Option<Duration>) -> Clock {
        let start = Instant::now();
        Clock {
            start,
            total: total.map(|d| start + d),
            timings: Timings::default(),
        }
    }

    fn since(&self) -> Option<Duration> {
        Some(self.start.elapsed())
    }

    pub(crate) fn mark_lookup(&mut self) {
        self.timings.name_lookup = self.since();
    }

    pub(crate) fn mark_connect(&mut self) {
        self.timings.connect = self.since();
    }

    pub(crate) fn mark_tls(&mut self) {
        self.timings.tls = self.since();
    }

    /// Runs `fut` for at most `limit` (timeout `kind`), within the total
    /// deadline, and until the handle is closed.
    pub(crate) async fn run<F: Future>(
        &self,
        core: &HandleCore,
        kind: TimeoutKind,
        limit: Option<Duration>,
        fut: F,
    ) -> Result<F::Output, ClientError> {
        self.run_until(core, kind, limit.map(|d| Instant::now() + d), fut)
            .await
    }

    /// Like [`run`](Self::run) with an absolute deadline.
    pub(crate) async fn run_until<F: Future>(
        &self,
        core: &HandleCore,
        kind: TimeoutKind,
        deadline: Option<Instant>,
        fut: F,
    ) -> Result<F::Output, ClientError> {
        let (at, which) = match (deadline, self.total) {
            (Some(d), Some(t)) if t < d => (Some(t), TimeoutKind::Total),
            (Some(d), _) => (Some(d), kind),
            (None, Some(t)) => (Some(t), TimeoutKind::Total),
            (None, None) => (None, kind),
        };
        let sleep = async {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = core.cancelled() => Err(ClientError::Cancelled),
            r = fut => Ok(r),
            _ = sleep => Err(ClientError::Timeout(which)),
        }
    }
}

/// `Basic` credentials for a proxy, if it has any.
pub(crate) fn proxy_authorization(p: &Proxy) -> Option<String> {
    p.credentials.as_ref().map(|(u, pw)| basic(u, pw))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A connect handle (`InternetConnect`): a server to open requests on. No
/// I/O happens until a request is sent. Dropping it closes it and its requests.
pub struct ConnectHandle {
    core: Arc<HandleCore>,
    session: Arc<SessionInner>,
    scheme: Scheme,
    host: String,
    port: u16,
}

impl ConnectHandle {
    pub(crate) fn create(
        session: &Arc<SessionInner>,
        parent: &Arc<HandleCore>,
        scheme: Scheme,
        host: &str,
        port: u16,
        context: u64,
    ) -> Result<ConnectHandle, ClientError> {
        // Validated as a URL would be.
        let url = Url::parse(&format!("{}://{}:{port}/", scheme.as_str(), bracket(host)))?;
        Ok(ConnectHandle {
            core: HandleCore::new(session, Some(parent), context)?,
            session: session.clone(),
            scheme,
            host: url.host().to_string(),
            port,
        })
    }

    /// The handle id.
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// A request handle for `method target` on this server (`HttpOpenRequest`).
    ///
    /// ```no_run
    /// # async fn f(s: httpq_client::Session) -> Result<(), httpq_client::ClientError> {
    /// use httpq_client::Scheme;
    /// let server = s.connect(Scheme::Http, "127.0.0.1", 8080, 1)?;
    /// let mut req = server.open_request("PUT", "/upload", 2)?;
    /// req.send_headers(Some(6)).await?;
    /// req.write(b"hello\n").await?;
    /// req.end_request().await?;
    /// assert!(req.status() < 500);
    /// # Ok(()) }
    /// ```
    pub fn open_request(
        &self,
        method: &str,
        target: &str,
        context: u64,
    ) -> Result<RequestHandle, ClientError> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("bad method {method:?}")))?;
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("/{target}")
        };
        let url = Url::parse(&format!(
            "{}://{}:{}{}",
            self.scheme.as_str(),
            bracket(&self.host),
            self.port,
            target
        ))?;
        RequestHandle::create(&self.session, &self.core, method, url, context)
    }

    /// A handle that can close this one from elsewhere.
    pub fn closer(&self) -> Closer {
        Closer(self.core.clone())
    }

    /// Closes the handle and every request opened on it.
    pub fn close(self) {}
}

impl Drop for ConnectHandle {
    fn drop(&mut self) {
        self.core.close();
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Closes a handle from another task, a callback, or a signal handler:
/// a pending operation completes as cancelled, then HANDLE_CLOSING.
#[derive(Clone)]
pub struct Closer(Arc<HandleCore>);

impl Closer {
    /// Closes the handle (and its children). Idempotent.
    pub fn close(&self) {
        self.0.close();
    }

    /// The handle's id.
    pub fn id(&self) -> u64 {
        self.0.id
    }
}

/// What [`RequestHandle::query_info`] can be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// The status code.
    StatusCode,
    /// The reason phrase.
    StatusText,
    /// Content-Length, if the response has one.
    ContentLength,
    /// All header lines as received (status line included).
    RawHeaders,
    /// One header's value (the first, if repeated).
    Header(String),
}

enum State {
    Created,
    Uploading(Box<Upload>),
    Receiving(Box<Receiving>),
    Failed,
}

struct Upload {
    conn: Connection,
    chunked: bool,
    remaining: Option<u64>,
}

struct Receiving {
    head: ResponseHead,
    conn: Option<Connection>,
    body: BodyDecoder,
    content: ContentDecoder,
    /// Decoded body bytes ready for the caller.
    ready: BytesMut,
    scratch: Vec<u8>,
    decoded_total: u64,
    done: bool,
    /// The connection may go back to the pool once the body is read.
    keep_alive: bool,
    low_speed_start: Instant,
    low_speed_bytes: u64,
    /// When the last socket read returned: the time from then until the
    /// next wait is the caller's, not the server's, so no low-speed window
    /// counts it.
    last_read: Instant,
}

impl Receiving {
    /// A socket read is about to wait: the low-speed window skips the time
    /// since the last one. Returns when this read started (its receive
    /// timeout runs from then, across low-speed window checks).
    fn begin_wait(&mut self) -> Instant {
        let now = Instant::now();
        self.low_speed_start += now.saturating_duration_since(self.last_read);
        now
    }
}

/// A request handle (`HttpOpenRequest` / `InternetOpenUrl`): send, then
/// query the response and read its body. Closing or dropping it cancels
/// what is pending; after that nothing of it remains (its connection is
/// closed unless the body was read to the end, when it is pooled).
pub struct RequestHandle {
    core: Arc<HandleCore>,
    session: Arc<SessionInner>,
    method: Method,
    url: Url,
    headers: HeaderMap,
    state: State,
    clock: Clock,
    redirects: u32,
    reused: bool,
    remote: Option<std::net::SocketAddr>,
    /// Default fields the caller removed (Host, User-Agent, Accept, ...).
    removed: Vec<HeaderName>,
    /// The heads of the redirect responses followed, in order.
    redirect_heads: Vec<Bytes>,
}

impl RequestHandle {
    pub(crate) fn create(
        session: &Arc<SessionInner>,
        parent: &Arc<HandleCore>,
        method: Method,
        url: Url,
        context: u64,
    ) -> Result<RequestHandle, ClientError> {
        Ok(RequestHandle {
            core: HandleCore::new(session, Some(parent), context)?,
            session: session.clone(),
            method,
            url,
            headers: HeaderMap::new(),
            state: State::Created,
            clock: Clock::new(session.config.timeouts.total),
            redirects: 0,
            reused: false,
            remote: None,
            removed: Vec::new(),
            redirect_heads: Vec::new(),
        })
    }

    /// The handle id.
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// The context value given when the handle was made.
    pub fn context(&self) -> u64 {
        self.core.context
    }

    /// A handle that can close this one from another task or a callback.
    pub fn closer(&self) -> Closer {
        Closer(self.core.clone())
    }

    /// The URL now (after redirects, the last one).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Redirects followed.
    pub fn redirect_count(&self) -> u32 {
        self.redirects
    }

    /// Whether the (last) request went over a pooled connection.
    pub fn connection_reused(&self) -> bool {
        self.reused
    }

    /// The address the (last) request went to (the proxy's, through one).
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.remote
    }

    /// Per-phase timings so far.
    pub fn timings(&self) -> Timings {
        self.clock.timings
    }

    /// Adds a request header (before sending).
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<(), ClientError> {
        if !matches!(self.state, State::Created) {
            return Err(ClientError::InvalidState("headers after send"));
        }
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("bad header name {name:?}")))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| ClientError::InvalidRequest(format!("bad value for {name}")))?;
        self.headers.append(n, v);
        Ok(())
    }

    /// Removes a request header: any value added for it, and the one the
    /// client would send by default (`Host`, `User-Agent`, `Accept`,
    /// `Accept-Encoding`, `Authorization` from URL credentials) — as
    /// WinInet's replace-with-nothing and curl's `-H 'Name:'` do.
    ///
    /// ```no_run
    /// # async fn f(s: httpq_client::Session) -> Result<(), httpq_client::ClientError> {
    /// let mut req = s.request("GET", "http://127.0.0.1:8080/", 0)?;
    /// req.remove_header("accept")?;
    /// req.send(None).await?;
    /// # Ok(()) }
    /// ```
    pub fn remove_header(&mut self, name: &str) -> Result<(), ClientError> {
        if !matches!(self.state, State::Created) {
            return Err(ClientError::InvalidState("headers after send"));
        }
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("bad header name {name:?}")))?;
        self.headers.remove(&n);
        if !self.removed.contains(&n) {
            self.removed.push(n);
        }
        Ok(())
    }

    /// The raw heads of the redirect responses followed to get here, oldest first.
    pub fn redirect_heads(&self) -> &[Bytes] {
        &self.redirect_heads
    }

    /// Sends the request with an optional body and waits for the response
    /// head (following redirects per the session config). Pending: ends
    /// with REQUEST_COMPLETE.
    pub async fn send(&mut self, body: Option<Bytes>) -> Result<(), ClientError> {
        self.pending_op(async |h| h.send_inner(body).await).await
    }

    /// Runs a send-side operation that always waits on the network: one
    /// REQUEST_COMPLETE at its end; after a failure the request is spent.
    async fn pending_op<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Self) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut op = self.core.begin()?;
        op.set_pending();
        let r = f(self).await;
        if r.is_err() {
            self.state = State::Failed;
        }
        let r = op.finish(r);
        if r.is_err() {
            // Cancelled by a close after it succeeded: spent all the same,
            // and a closed handle keeps no connection.
            self.state = State::Failed;
        }
        r
    }

    /// Sends the head only (`HttpSendRequestEx`): `Some(n)` announces a
    /// Content-Length, `None` sends the body chunked. Follow with
    /// [`write`](Self::write) and [`end_request`](Self::end_request).
    pub async fn send_headers(&mut self, length: Option<u64>) -> Result<(), ClientError> {
        self.pending_op(async |h| h.send_headers_inner(length).await)
            .await
    }

    /// Writes body bytes after [`send_headers`](Self::send_headers).
    pub async fn write(&mut self, data: &[u8]) -> Result<usize, ClientError> {
        self.pending_op(async |h| h.write_inner(data).await.map(|()| data.len()))
            .await
    }

    /// Ends the body (`HttpEndRequest`) and waits for the response head.
    pub async fn end_request(&mut self) -> Result<(), ClientError> {
        self.pending_op(async |h| h.end_request_inner().await).await
    }

    fn receiving(&self) -> Option<&Receiving> {
        match &self.state {
            State::Receiving(r) => Some(r),
            _ => None,
        }
    }

    /// The status code (0 before the response).
    pub fn status(&self) -> u16 {
        self.receiving().map_or(0, |r| r.head.status())
    }

    /// The response headers.
    pub fn headers(&self) -> HeaderMap {
        self.receiving()
            .map(|r| r.head.header_map())
            .unwrap_or_default()
    }

    /// `HttpQueryInfo`: one fact about the response, as text.
    pub fn query_info(&self, q: Query) -> Option<String> {
        let r = self.receiving()?;
        match q {
            Query::StatusCode => Some(r.head.status().to_string()),
            Query::StatusText => Some(String::from_utf8_lossy(r.head.reason()).into_owned()),
            Query::ContentLength => match r.head.body() {
                BodyLength::Length(n) => Some(n.to_string()),
                _ => r
                    .head
                    .header("content-length")
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            },
            Query::RawHeaders => Some(String::from_utf8_lossy(r.head.as_bytes()).into_owned()),
            Query::Header(name) => r
                .head
                .header(&name)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
        }
    }

    /// The body length announced by the server, if any.
    pub fn content_length(&self) -> Option<u64> {
        match self.receiving()?.head.body() {
            BodyLength::Length(n) if self.receiving()?.content.is_identity() => Some(n),
            BodyLength::Empty => Some(0),
            _ => None,
        }
    }

    /// Reads body bytes into `buf`; 0 at the end. Completes at once from
    /// buffered bytes, else is pending (REQUEST_COMPLETE when done).
    ///
    /// Dropping a pending read's future (a `select!` or `timeout` around
    /// it) cancels the request, as closing would: REQUEST_COMPLETE reports
    /// it cancelled, its connection closes, and later calls on the handle
    /// fail. Use the session's timeouts to bound a read instead.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(n) = self.try_read(buf)? {
            return Ok(n);
        }
        let mut op = self.core.begin()?;
        op.set_pending();
        let r = if self.direct_ok() {
            self.read_direct(buf).await
        } else {
            let r = self.fill().await;
            r.map(|()| self.take_ready(buf))
        };
        let r = op.finish(r);
        self.release_if_closed();
        r
    }

    /// A handle closed while a read was pending keeps no connection (the
    /// read may have got its bytes just before it was cancelled).
    fn release_if_closed(&mut self) {
        if let State::Receiving(r) = &mut self.state {
            if r.conn.is_some() && self.core.is_closed() {
                r.conn = None;
            }
        }
    }

    /// Whether a read may go from the socket straight into the caller's
    /// buffer: an identity body of known length or up to close, nothing
    /// buffered. (Chunked and compressed bodies go through the decoders.)
    fn direct_ok(&self) -> bool {
        let Some(r) = self.receiving() else {
            return false;
        };
        r.ready.is_empty()
            && !r.done
            && r.content.is_identity()
            && r.conn.as_ref().is_some_and(|c| c.rbuf.is_empty())
            && matches!(
                r.head.body(),
                BodyLength::Length(_) | BodyLength::CloseDelimited
            )
    }

    async fn read_direct(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        let result = self.read_direct_into(&mut r, buf).await;
        if result.is_err() {
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        self.state = State::Receiving(r);
        result
    }

    /// One read from the socket into `buf`, never past the body's end (so
    /// the next response's bytes stay in the socket): no extra copy.
    async fn read_direct_into(
        &mut self,
        r: &mut Receiving,
        buf: &mut [u8],
    ) -> Result<usize, ClientError> {
        let started = r.begin_wait();
        loop {
            let (deadline, kind) = self.wait_plan(r, started)?;
            let cap = match r.body.remaining() {
                Some(n) => (n.min(buf.len() as u64)) as usize,
                None => buf.len(),
            };
            let conn = r
                .conn
                .as_mut()
                .expect("a body in progress has its connection");
            self.core.emit(Status::ReceivingResponse, Payload::None);
            let read = self
                .clock
                .run_until(
                    &self.core,
                    kind,
                    deadline,
                    conn.stream.read(&mut buf[..cap]),
                )
                .await;
            let Some(n) = self.body_read_outcome(r, read)? else {
                continue;
            };
            if n == 0 {
                return Ok(0);
            }
            let d = r.body.decode(&buf[..n])?;
            debug_assert_eq!((d.consumed, d.data.clone()), (n, 0..n));
            if d.done {
                self.finish_body(r)?;
            }
            return Ok(n);
        }
    }

    /// The deadline for the next socket read and which timeout it is: the
    /// receive timeout per read (counted from `started`, when the read
    /// began), or the end of the low-speed window when sooner (judged here:
    /// too few bytes in a finished window fail).
    fn wait_plan(
        &self,
        r: &mut Receiving,
        started: Instant,
    ) -> Result<(Option<Instant>, TimeoutKind), ClientError> {
        let timeouts = &self.session.config.timeouts;
        let now = Instant::now();
        let mut deadline = timeouts.receive.map(|d| started + d);
        let mut kind = TimeoutKind::Receive;
        if let Some(ls) = timeouts.low_speed {
            let mut window_end = r.low_speed_start + ls.window;
            if now >= window_end {
                let needed = (ls.bytes_per_sec as f64 * ls.window.as_secs_f64()) as u64;
                if r.low_speed_bytes < needed {
                    return Err(ClientError::Timeout(TimeoutKind::LowSpeed));
                }
                r.low_speed_start = now;
                r.low_speed_bytes = 0;
                window_end = now + ls.window;
            }
            if deadline.is_none_or(|d| window_end < d) {
                deadline = Some(window_end);
                kind = TimeoutKind::LowSpeed;
            }
        }
        Ok((deadline, kind))
    }

    fn check_open(&self) -> Result<(), ClientError> {
        if self.core.is_closed() {
            return Err(ClientError::InvalidState("handle is closed"));
        }
        Ok(())
    }

    /// Reads without waiting: `Some(n)` bytes (0 at the end of the body),
    /// `None` when nothing is buffered yet.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, ClientError> {
        self.check_open()?;
        if self
            .receiving()
            .is_some_and(|r| r.content.is_identity() && r.ready.is_empty())
        {
            return self.copy_buffered(buf);
        }
        self.pump()?;
        let Some(r) = self.receiving() else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        if !r.ready.is_empty() {
            return Ok(Some(self.take_ready(buf)));
        }
        Ok(r.done.then_some(0))
    }

    /// How many bytes a read would return without waiting; waits for some
    /// if none are buffered (`InternetQueryDataAvailable`); 0 at the end.
    pub async fn data_available(&mut self) -> Result<usize, ClientError> {
        self.check_open()?;
        self.pump()?;
        let Some(r) = self.receiving() else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        if !r.ready.is_empty() || r.done {
            return Ok(r.ready.len());
        }
        let mut op = self.core.begin()?;
        op.set_pending();
        let r = self.fill().await;
        let r = r.map(|()| self.receiving().map_or(0, |r| r.ready.len()));
        let r = op.finish(r);
        self.release_if_closed();
        r
    }

    /// The next piece of the body as `Bytes` (no copy into a caller
    /// buffer); `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        self.check_open()?;
        self.pump()?;
        if self
            .receiving()
            .is_some_and(|r| r.ready.is_empty() && !r.done)
        {
            let mut op = self.core.begin()?;
            op.set_pending();
            let r = self.fill().await;
            let r = op.finish(r);
            self.release_if_closed();
            r?;
        }
        match &mut self.state {
            State::Receiving(r) if !r.ready.is_empty() => Ok(Some(r.ready.split().freeze())),
            State::Receiving(_) => Ok(None),
            _ => Err(ClientError::InvalidState("no response to read")),
        }
    }

    /// Reads the rest of the body into one buffer.
    pub async fn bytes(&mut self) -> Result<Bytes, ClientError> {
        let mut all = BytesMut::new();
        while let Some(c) = self.chunk().await? {
            all.extend_from_slice(&c);
        }
        Ok(all.freeze())
    }

    /// Closes the handle: a pending operation completes as cancelled, then
    /// HANDLE_CLOSING; the connection closes unless the body was read.
    pub fn close(self) {}

    fn take_ready(&mut self, buf: &mut [u8]) -> usize {
        let State::Receiving(r) = &mut self.state else {
            return 0;
        };
        let n = r.ready.len().min(buf.len());
        buf[..n].copy_from_slice(&r.ready[..n]);
        r.ready.advance(n);
        n
    }

    fn pool_key(&self) -> PoolKey {
        PoolKey {
            https: self.url.scheme() == Scheme::Https,
            host: self.url.host().to_string(),
            port: self.url.port(),
            proxy: self
                .session
                .config
                .proxy
                .as_ref()
                .map(|p| (p.host.clone(), p.port)),
        }
    }

    /// A pooled connection, or a new one (notified phase by phase).
    async fn acquire(&mut self) -> Result<Connection, ClientError> {
        let key = self.pool_key();
        let core = self.core.clone();
        let pool = self.session.pool.clone();
        // Waiting for a slot under the per-server limit is part of getting
        // a connection: the connect timeout covers it (it starts afresh
        // for a new connection's own connect).
        let connect = self.session.config.timeouts.connect;
        let checkout = self
            .clock
            .run(&core, TimeoutKind::Connect, connect, pool.checkout(&key))
            .await?;
        match checkout {
            Checkout::Reused(c) => {
                self.reused = true;
                self.remote = Some(c.peer);
                core.emit(Status::ConnectionReused, Payload::Connection(c.id));
                Ok(c)
            }
            Checkout::New(slot) => {
                self.reused = false;
                let c = establish(&core, &key, slot, &mut self.clock).await?;
                self.remote = Some(c.peer);
                core.emit(Status::ConnectionNew, Payload::Connection(c.id));
                Ok(c)
            }
        }
    }

    /// The request head for the current URL and method.
    fn encode_head(&self, conn: &Connection, body: Framing) -> Result<Vec<u8>, ClientError> {
        let cfg = &self.session.config;
        let target = if conn.via_proxy {
            self.url.to_string()
        } else {
            self.url.path_and_query().to_string()
        };
        let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(8 + self.headers.len());
        // A field the caller set, or removed, gets no default.
        let has = |n: &HeaderName| self.headers.contains_key(n) || self.removed.contains(n);
        if !has(&header::HOST) {
            fields.push((b"Host", self.url.authority().into_bytes()));
        }
        if !has(&header::USER_AGENT) && !cfg.user_agent.is_empty() {
            fields.push((b"User-Agent", cfg.user_agent.clone().into_bytes()));
        }
        if !has(&header::ACCEPT) {
            fields.push((b"Accept", b"*/*".to_vec()));
        }
        if cfg.decompress && !has(&header::ACCEPT_ENCODING) {
            fields.push((b"Accept-Encoding", b"gzip, deflate, br".to_vec()));
        }
        if let (Some((u, p)), false) = (self.url.credentials(), has(&header::AUTHORIZATION)) {
            fields.push((b"Authorization", basic(u, p).into_bytes()));
        }
        if conn.via_proxy {
            if let Some(auth) = cfg.proxy.as_ref().and_then(proxy_authorization) {
                fields.push((b"Proxy-Authorization", auth.into_bytes()));
            }
        }
        match body {
            Framing::None => {}
            Framing::Length(n) => {
                if n > 0 || !matches!(self.method, Method::GET | Method::HEAD) {
                    fields.push((b"Content-Length", n.to_string().into_bytes()));
                }
            }
            Framing::Chunked => fields.push((b"Transfer-Encoding", b"chunked".to_vec())),
        }
        for (k, v) in &self.headers {
            if body != Framing::None
                && (k == header::CONTENT_LENGTH || k == header::TRANSFER_ENCODING)
            {
                continue;
            }
            fields.push((k.as_str().as_bytes(), v.as_bytes().to_vec()));
        }
        let mut out = Vec::with_capacity(256);
        httpq_proto::encode_request_head(
            &mut out,
            self.method.as_str(),
            &target,
            Version::Http11,
            fields.iter().map(|(k, v)| (*k, v.as_slice())),
        )
        .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        Ok(out)
    }

    async fn write_all(&self, conn: &mut Connection, parts: &[&[u8]]) -> Result<u64, ClientError> {
        let limit = self.session.config.timeouts.send;
        let mut n = 0u64;
        for part in parts.iter().filter(|p| !p.is_empty()) {
            // The send timeout is for progress: one write call's wait.
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                let w = self
                    .clock
                    .run(
                        &self.core,
                        TimeoutKind::Send,
                        limit,
                        conn.stream.write(rest),
                    )
                    .await?
                    .map_err(|e| ClientError::Send(e.to_string()))?;
                if w == 0 {
                    return Err(ClientError::Send("connection closed".into()));
                }
                rest = &rest[w..];
                n += w as u64;
            }
        }
        Ok(n)
    }

    async fn send_inner(&mut self, body: Option<Bytes>) -> Result<(), ClientError> {
        // Sent again (as HttpSendRequest may be): the previous response's
        // or upload's connection goes first, or under the per-server limit
        // this request could wait for its own slot.
        match std::mem::replace(&mut self.state, State::Created) {
            State::Receiving(mut r) => {
                if let Some(c) = r.conn.take() {
                    self.close_connection(c);
                }
            }
            State::Uploading(up) => self.close_connection(up.conn),
            State::Created | State::Failed => {}
        }
        let mut body = body;
        let redirect_started = Instant::now();
        loop {
            self.clock.timings = Timings {
                redirect: self.clock.timings.redirect,
                ..Timings::default()
            };
            let mut attempt = 0;
            let (conn, head) = loop {
                attempt += 1;
                let mut conn = self.acquire().await?;
                let framing = match &body {
                    Some(b) => Framing::Length(b.len() as u64),
                    None if matches!(self.method, Method::POST | Method::PUT | Method::PATCH) => {
                        Framing::Length(0)
                    }
                    None => Framing::None,
                };
                let head = self.encode_head(&conn, framing)?;
                self.clock.timings.pretransfer = self.clock.since();
                self.core.emit(Status::SendingRequest, Payload::None);
                let parts: [&[u8]; 2] = [&head, body.as_deref().unwrap_or_default()];
                let sent = self.write_all(&mut conn, &parts).await;
                let result = match sent {
                    Ok(n) => {
                        self.core.emit(Status::RequestSent, Payload::Bytes(n));
                        self.read_head(&mut conn).await.map(|h| (conn, h))
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(ok) => break ok,
                    // A pooled connection the server closed just as we took
                    // it: try once more on a new one (the body is in memory).
                    // A failed write sent nothing usable; a close after a
                    // complete request may mean it was processed, so only
                    // idempotent methods go again then (RFC 9110 §9.2.2).
                    Err(ClientError::Send(_)) if self.reused && attempt == 1 => {}
                    Err(ClientError::Protocol(Violation::ClosedBeforeResponse))
                        if self.reused && attempt == 1 && self.method.is_idempotent() => {}
                    Err(e) => return Err(e),
                }
            };
            match self.redirect_target(&head)? {
                Some((next, method, keep_body)) => {
                    self.redirects += 1;
                    if self.redirects > self.session.config.max_redirects {
                        return Err(ClientError::TooManyRedirects(
                            self.session.config.max_redirects,
                        ));
                    }
                    self.redirect_heads.push(head.as_bytes().clone());
                    self.discard_body(conn, &head).await?;
                    if !next.same_origin(&self.url) {
                        // Credentials are for the origin they were given to.
                        self.headers.remove(header::AUTHORIZATION);
                        self.headers.remove(header::COOKIE);
                    }
                    if !keep_body {
                        body = None;
                        self.drop_body_headers();
                    }
                    self.method = method;
                    self.core
                        .emit(Status::Redirect, Payload::Url(next.to_string()));
                    self.url = carry_credentials(&self.url, next);
                    self.clock.timings.redirect = Some(redirect_started.elapsed());
                    continue;
                }
                None => {
                    self.start_receiving(conn, head)?;
                    return Ok(());
                }
            }
        }
    }

    /// Where a 3xx leads, with the method and whether the body goes too;
    /// `None` when it is not followed.
    fn redirect_target(
        &self,
        head: &ResponseHead,
    ) -> Result<Option<(Url, Method, bool)>, ClientError> {
        let status = head.status();
        if !self.session.config.follow_redirects || !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return Ok(None);
        }
        let Some(loc) = head.header("location") else {
            return Ok(None);
        };
        let loc =
            std::str::from_utf8(loc).map_err(|_| ClientError::Protocol(Violation::BadRedirect))?;
        let next = self
            .url
            .join(loc)
            .map_err(|_| ClientError::Protocol(Violation::BadRedirect))?;
        let (method, keep_body) = match status {
            // By convention (browsers, curl): POST becomes GET on 301/302,
            // and everything but HEAD becomes GET on 303.
            301 | 302 if self.method == Method::POST => (Method::GET, false),
            303 if self.method != Method::HEAD => (Method::GET, false),
            _ => (self.method.clone(), true),
        };
        Ok(Some((next, method, keep_body)))
    }

    /// A redirect turned the request into one without a body: the caller's
    /// fields describing the body go with it (a Content-Length or
    /// Transfer-Encoding left on a bodyless GET would make the server wait
    /// for a body that never comes).
    fn drop_body_headers(&mut self) {
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
        ] {
            self.headers.remove(name);
        }
    }

    /// Reads a redirect's body so the connection can be reused; a large or
    /// slow one just closes the connection.
    /// Close and the total deadline still end the request here.
    async fn discard_body(
        &mut self,
        mut conn: Connection,
        head: &ResponseHead,
    ) -> Result<(), ClientError> {
        let mut dec = BodyDecoder::new(head.body(), &self.session.config.limits);
        let small = matches!(head.body(), BodyLength::Length(n) if n <= REDIRECT_DRAIN_MAX)
            || head.body().is_empty();
        if !small || !head.keep_alive() {
            self.close_connection(conn);
            return Ok(());
        }
        loop {
            match dec.decode(&conn.rbuf) {
                Ok(d) => {
                    conn.rbuf.advance(d.consumed);
                    if d.done {
                        break;
                    }
                }
                Err(_) => {
                    self.close_connection(conn);
                    return Ok(());
                }
            }
            conn.rbuf.reserve(4096);
            let limit = self.session.config.timeouts.receive;
            match self
                .clock
                .run(
                    &self.core,
                    TimeoutKind::Receive,
                    limit,
                    conn.stream.read_buf(&mut conn.rbuf),
                )
                .await
            {
                Ok(Ok(n)) if n > 0 => {}
                Err(e @ (ClientError::Cancelled | ClientError::Timeout(TimeoutKind::Total))) => {
                    self.close_connection(conn);
                    return Err(e);
                }
                // A redirect body that does not arrive costs only its connection.
                _ => {
                    self.close_connection(conn);
                    return Ok(());
                }
            }
        }
        // A closed handle (or session, whose pool is already cleared) pools nothing.
        if conn.rbuf.is_empty() && !self.core.is_closed() {
            self.session.pool.checkin(conn);
        } else {
            self.close_connection(conn);
        }
        Ok(())
    }

    fn close_connection(&self, conn: Connection) {
        let id = conn.id;
        self.core
            .emit(Status::ClosingConnection, Payload::Connection(id));
        drop(conn);
        self.core
            .emit(Status::ConnectionClosed, Payload::Connection(id));
    }

    /// Reads the response head, passing over (and notifying) 1xx responses.
    /// The receive timeout runs from when the request was sent.
    async fn read_head(&mut self, conn: &mut Connection) -> Result<ResponseHead, ClientError> {
        let cfg = &self.session.config;
        let deadline = cfg.timeouts.receive.map(|d| Instant::now() + d);
        let mut parser = ResponseParser::new(cfg.limits);
        let mut first = true;
        loop {
            if let Some(head) = parser.parse(&mut conn.rbuf, &self.method)? {
                if head.is_informational() {
                    self.core
                        .emit(Status::IntermediateResponse, Payload::Status(head.status()));
                    if head.status() == 101 {
                        return Err(ClientError::Protocol(Violation::Parse(
                            httpq_proto::Error::UnsupportedTransferCoding,
                        )));
                    }
                    continue;
                }
                return Ok(head);
            }
            conn.rbuf.reserve(8192);
            self.core.emit(Status::ReceivingResponse, Payload::None);
            let n = self
                .clock
                .run_until(
                    &self.core,
                    TimeoutKind::Receive,
                    deadline,
                    conn.stream.read_buf(&mut conn.rbuf),
                )
                .await?
                .map_err(|e| ClientError::Receive(e.to_string()))?;
            if n == 0 {
                parser.eof(&conn.rbuf)?;
                return Err(ClientError::Protocol(Violation::ClosedBeforeResponse));
            }
            if first {
                first = false;
                self.clock.timings.first_byte = self.clock.since();
                self.core.emit(Status::FirstByte, Payload::None);
            }
            self.core
                .emit(Status::ResponseReceived, Payload::Bytes(n as u64));
        }
    }

    fn start_receiving(&mut self, conn: Connection, head: ResponseHead) -> Result<(), ClientError> {
        let cfg = &self.session.config;
        if matches!(head.body(), BodyLength::Tunnel) {
            return Err(ClientError::InvalidState(
                "CONNECT tunnels are not requests",
            ));
        }
        let encoding = head.header("content-encoding");
        // A response without a body (HEAD, 204, 304, length 0) has nothing
        // to decode, whatever Content-Encoding the representation has.
        let content = if cfg.decompress && !head.body().is_empty() {
            ContentDecoder::for_encoding(encoding, cfg.max_decoded_bytes)
                .unwrap_or(ContentDecoder::Identity)
        } else {
            ContentDecoder::Identity
        };
        let body = BodyDecoder::new(head.body(), &cfg.limits);
        let keep_alive = head.keep_alive() && head.body() != BodyLength::CloseDelimited;
        let mut r = Box::new(Receiving {
            body,
            content,
            ready: BytesMut::new(),
            scratch: Vec::new(),
            decoded_total: 0,
            done: false,
            keep_alive,
            conn: Some(conn),
            head,
            low_speed_start: Instant::now(),
            low_speed_bytes: 0,
            last_read: Instant::now(),
        });
        if r.body.is_done() {
            self.finish_body(&mut r)?;
        }
        self.state = State::Receiving(r);
        Ok(())
    }

    /// Moves buffered body bytes through the decoders into `ready`; reads
    /// the socket when that gives nothing. Returns once `ready` has bytes
    /// or the body ended.
    async fn fill(&mut self) -> Result<(), ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        let result = self.fill_into(&mut r).await;
        if result.is_err() {
            // Framing is unknown after an error: the connection cannot be reused.
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        self.state = State::Receiving(r);
        result
    }

    async fn fill_into(&mut self, r: &mut Receiving) -> Result<(), ClientError> {
        let mut started = None;
        loop {
            if !r.ready.is_empty() || r.done {
                return Ok(());
            }
            if self.step_buffered(r)? {
                continue;
            }
            // Wait for more bytes: the receive timeout per read, the
            // low-speed window, the total deadline, and close.
            let begun = *started.get_or_insert_with(|| r.begin_wait());
            let (deadline, kind) = self.wait_plan(r, begun)?;
            // An earlier read failed and closed the connection: the rest
            // of the body is lost.
            let Some(conn) = r.conn.as_mut() else {
                return Err(ClientError::InvalidState("the response already failed"));
            };
            if conn.rbuf.capacity() - conn.rbuf.len() < 8192 {
                conn.rbuf.reserve(READ_CHUNK);
            }
            self.core.emit(Status::ReceivingResponse, Payload::None);
            let read = self
                .clock
                .run_until(
                    &self.core,
                    kind,
                    deadline,
                    conn.stream.read_buf(&mut conn.rbuf),
                )
                .await;
            match self.body_read_outcome(r, read)? {
                None => {}
                Some(0) => return Ok(()),
                Some(_) => started = None,
            }
        }
    }

    /// One socket read of the body has ended: `None` when it stopped for a
    /// low-speed window check (read again), else the bytes read; at end of
    /// file the body is finished — or found short.
    fn body_read_outcome(
        &mut self,
        r: &mut Receiving,
        read: Result<std::io::Result<usize>, ClientError>,
    ) -> Result<Option<usize>, ClientError> {
        let n = match read {
            Err(ClientError::Timeout(TimeoutKind::LowSpeed)) => return Ok(None), // judged by wait_plan
            Err(e) => return Err(e),
            Ok(Err(e)) => return Err(ClientError::Receive(e.to_string())),
            Ok(Ok(n)) => n,
        };
        r.last_read = Instant::now();
        self.core
            .emit(Status::ResponseReceived, Payload::Bytes(n as u64));
        r.low_speed_bytes += n as u64;
        if n == 0 {
            r.keep_alive = false;
            if r.body.finish_at_eof().is_err() {
                return Err(ClientError::Protocol(Violation::ShortBody {
                    received: r.body.body_bytes(),
                }));
            }
            self.finish_body(r)?;
        }
        Ok(Some(n))
    }

    /// Decodes body bytes already read (no I/O). True if it made progress.
    fn step_buffered(&mut self, r: &mut Receiving) -> Result<bool, ClientError> {
        let Some(conn) = r.conn.as_mut() else {
            return Ok(false);
        };
        if conn.rbuf.is_empty() {
            return Ok(false);
        }
        let d = r.body.decode(&conn.rbuf)?;
        let data = conn.rbuf.split_to(d.consumed);
        let data = &data[d.data.clone()];
        if !data.is_empty() {
            if r.content.is_identity() {
                r.ready.extend_from_slice(data);
            } else {
                r.content.feed(data, &mut r.scratch)?;
                r.decoded_total += r.scratch.len() as u64;
                if r.decoded_total > self.session.config.max_decoded_bytes {
                    return Err(ClientError::BodyTooLarge);
                }
                r.ready.extend_from_slice(&r.scratch);
                r.scratch.clear();
            }
        }
        if d.done {
            self.finish_body(r)?;
            return Ok(true);
        }
        Ok(d.consumed > 0)
    }

    /// Identity bodies: decodes bytes already read straight into `buf` (one
    /// copy). `None` when nothing is buffered.
    fn copy_buffered(&mut self, buf: &mut [u8]) -> Result<Option<usize>, ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        let result = self.copy_buffered_from(&mut r, buf);
        if result.is_err() {
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        self.state = State::Receiving(r);
        result
    }

    fn copy_buffered_from(
        &mut self,
        r: &mut Receiving,
        buf: &mut [u8],
    ) -> Result<Option<usize>, ClientError> {
        loop {
            if r.done {
                return Ok(Some(0));
            }
            let Some(conn) = r.conn.as_mut() else {
                return Ok(None);
            };
            if conn.rbuf.is_empty() {
                return Ok(None);
            }
            // The decoder resumes at any byte, so it may see a prefix.
            let k = conn.rbuf.len().min(buf.len());
            let d = r.body.decode(&conn.rbuf[..k])?;
            let len = d.data.len();
            buf[..len].copy_from_slice(&conn.rbuf[d.data.clone()]);
            conn.rbuf.advance(d.consumed);
            if d.done {
                self.finish_body(r)?;
            }
            if len > 0 {
                return Ok(Some(len));
            }
            if d.consumed == 0 && !d.done {
                return Ok(None);
            }
        }
    }

    /// Decodes what is buffered, without waiting, so reads it can satisfy
    /// complete at once (no REQUEST_COMPLETE).
    fn pump(&mut self) -> Result<(), ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Ok(());
        };
        let mut result = Ok(());
        while r.ready.is_empty() && !r.done {
            match self.step_buffered(&mut r) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    if let Some(c) = r.conn.take() {
                        self.close_connection(c);
                    }
                    result = Err(e);
                    break;
                }
            }
        }
        self.state = State::Receiving(r);
        result
    }

    /// The body ended: flush the decoder, then pool the connection if it is
    /// clean (nothing past the body, keep-alive) or close it.
    fn finish_body(&mut self, r: &mut Receiving) -> Result<(), ClientError> {
        if !r.content.is_identity() {
            r.content.finish(&mut r.scratch)?;
            r.decoded_total += r.scratch.len() as u64;
            if r.decoded_total > self.session.config.max_decoded_bytes {
                return Err(ClientError::BodyTooLarge);
            }
            r.ready.extend_from_slice(&r.scratch);
            r.scratch.clear();
        }
        r.done = true;
        self.clock.timings.total = self.clock.since();
        if let Some(conn) = r.conn.take() {
            // Bytes past the end of the body are never a response: they
            // poison the connection.
            if r.keep_alive && conn.rbuf.is_empty() && !self.core.is_closed() {
                self.session.pool.checkin(conn);
            } else {
                self.close_connection(conn);
            }
        }
        Ok(())
    }

    async fn send_headers_inner(&mut self, length: Option<u64>) -> Result<(), ClientError> {
        if !matches!(self.state, State::Created) {
            return Err(ClientError::InvalidState("already sent"));
        }
        let mut conn = self.acquire().await?;
        let framing = match length {
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        };
        let head = self.encode_head(&conn, framing)?;
        self.clock.timings.pretransfer = self.clock.since();
        self.core.emit(Status::SendingRequest, Payload::None);
        let n = self.write_all(&mut conn, &[&head]).await?;
        self.core.emit(Status::RequestSent, Payload::Bytes(n));
        self.state = State::Uploading(Box::new(Upload {
            conn,
            chunked: length.is_none(),
            remaining: length,
        }));
        Ok(())
    }

    async fn write_inner(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let State::Uploading(mut up) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("write before send_headers"));
        };
        if let Some(rest) = up.remaining {
            if data.len() as u64 > rest {
                return Err(ClientError::InvalidRequest(
                    "more body than the announced Content-Length".into(),
                ));
            }
            up.remaining = Some(rest - data.len() as u64);
        }
        if !data.is_empty() {
            let n = if up.chunked {
                let size = httpq_proto::ChunkHeader::new(data.len() as u64);
                self.write_all(&mut up.conn, &[size.as_bytes(), data, b"\r\n"])
                    .await?
            } else {
                self.write_all(&mut up.conn, &[data]).await?
            };
            self.core.emit(Status::RequestSent, Payload::Bytes(n));
        }
        self.state = State::Uploading(up);
        Ok(())
    }

    async fn end_request_inner(&mut self) -> Result<(), ClientError> {
        let State::Uploading(mut up) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("end_request before send_headers"));
        };
        if up.remaining.is_some_and(|r| r > 0) {
            return Err(ClientError::InvalidRequest(
                "less body than the announced Content-Length".into(),
            ));
        }
        if up.chunked {
            let n = self.write_all(&mut up.conn, &[b"0\r\n\r\n"]).await?;
            self.core.emit(Status::RequestSent, Payload::Bytes(n));
        }
        let mut conn = up.conn;
        let head = self.read_head(&mut conn).await?;
        // A streamed body cannot be sent again, so only redirects that drop
        // it are followed.
        if let Some((next, method, false)) = self.redirect_target(&head)? {
            self.redirect_heads.push(head.as_bytes().clone());
            self.discard_body(conn, &head).await?;
            self.redirects += 1;
            if self.redirects > self.session.config.max_redirects {
                return Err(ClientError::TooManyRedirects(
                    self.session.config.max_redirects,
                ));
            }
            if !next.same_origin(&self.url) {
                self.headers.remove(header::AUTHORIZATION);
                self.headers.remove(header::COOKIE);
            }
            self.drop_body_headers();
            self.method = method;
            self.core
                .emit(Status::Redirect, Payload::Url(next.to_string()));
            self.url = carry_credentials(&self.url, next);
            return self.send_inner(None).await;
        }
        self.start_receiving(conn, head)
    }
}

/// A redirect on the same origin keeps the URL's credentials (a relative
/// Location has none of its own); one to another origin gets only what its
/// Location spells out.
fn carry_credentials(from: &Url, next: Url) -> Url {
    match from.credentials() {
        Some((u, p)) if from.same_origin(&next) && next.credentials().is_none() => {
            next.with_credentials(u, p)
        }
        _ => next,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        if let State::Receiving(r) = &mut self.state {
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        if let State::Uploading(_) = &self.state {
            self.state = State::Failed;
        }
        self.core.close();
    }
}

type ChunkFuture = std::pin::Pin<
    Box<dyn Future<Output = (RequestHandle, Result<Option<Bytes>, ClientError>)> + Send>,
>;

/// The body as a stream of [`Bytes`] ([`RequestHandle::into_stream`]).
pub struct BodyStream {
    handle: Option<RequestHandle>,
    next: Option<ChunkFuture>,
}

impl RequestHandle {
    /// The rest of the body as a `futures` stream of `Bytes` pieces.
    ///
    /// ```no_run
    /// # async fn f(req: httpq_client::RequestHandle) {
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    /// use futures_core::Stream;
    /// let mut body = req.into_stream();
    /// while let Some(piece) = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
    ///     println!("{} bytes", piece.unwrap().len());
    /// }
    /// # }
    /// ```
    pub fn into_stream(self) -> BodyStream {
        BodyStream {
            handle: Some(self),
            next: None,
        }
    }
}

impl futures_core::Stream for BodyStream {
    type Item = Result<Bytes, ClientError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.next.is_none() {
            let Some(mut h) = self.handle.take() else {
                return std::task::Poll::Ready(None);
            };
            self.next = Some(Box::pin(async move {
                let r = h.chunk().await;
                (h, r)
            }));
        }
        let fut = self.next.as_mut().expect("set above");
        let (h, r) = std::task::ready!(fut.as_mut().poll(cx));
        self.next = None;
        match r {
            Ok(Some(b)) => {
                self.handle = Some(h);
                std::task::Poll::Ready(Some(Ok(b)))
            }
            Ok(None) => std::task::Poll::Ready(None),
            Err(e) => std::task::Poll::Ready(Some(Err(e))),
        }
    }
}
