//! HTTP/2 connections: the task that drives one (framing, HPACK, flow
//! control and stream limits are the `h2` crate's), turning each client
//! stream into a request in the same request queues HTTP/1.1 feeds.
//!
//! The mapping onto the HTTP Server API model:
//! - a stream is a request, with its own request id; the connection id
//!   is the TCP connection's, shared by all its streams;
//! - the response, its body (MORE_DATA) and file ranges become HEADERS and
//!   DATA frames; each stream has its own window, so a slow stream holds
//!   back only its own sender;
//! - a client's RST_STREAM is that request's disconnect:
//!   [`Request::disconnected`] completes with
//!   [`DisconnectReason::StreamReset`], the request is abandoned (counted
//!   in `h2_resets` and `requests_abandoned`) and the connection serves on;
//! - `wait_for_disconnect(connection_id)` completes when the whole
//!   connection goes (GOAWAY, FIN, RST, a timeout); its streams in flight
//!   are abandoned with it.
//!
//! Why a crate: `h2` is hyper's engine, conforms to RFC 9113 (h2spec), and
//! bounds what the known attacks need (CONTINUATION floods, HPACK bombs,
//! streams reset before they are accepted). Resets of accepted streams —
//! the rapid-reset attack against an application — are budgeted here.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use httpq_proto::server_conn::Timeouts;
use httpq_proto::RequestParser;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use crate::conn::Conn;
use crate::counters::Counters;
use crate::disconnect::{DisconnectReason, TimeoutKind};
use crate::record::LogHead;
use crate::registry;
use crate::request_queue::{Filled, Request};
use crate::routes::RouteCache;
use crate::site::Site;
use crate::stream::{H2Table, Look, Stream, StreamInfo};
use httpq_proto::MethodKind;

/// The client's connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `io` as an HTTP/2 connection to its end. `prefix`: bytes
/// already read from it (the preface, on a plaintext port).
pub(crate) async fn serve<T>(
    io: T,
    prefix: Bytes,
    conn: Arc<Conn>,
    site: Arc<Site>,
    share: usize,
    permit: OwnedSemaphorePermit,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _permit = permit;
    let env = conn.env.clone();
    let table = H2Table::new(
        conn.counters.clone(),
        conn.env.server_header.as_deref(),
        tokio::runtime::Handle::current(),
        Box::new(move || env.answered()),
        {
            // Weak: the table lives in the connection.
            let conn = Arc::downgrade(&conn);
            Box::new(move || {
                if let Some(c) = conn.upgrade() {
                    c.wake.wake();
                }
            })
        },
        (&conn.log, conn.id, conn.remote.ip()),
    );
    // Dropped unfinished (its runtime shut down with its session), the
    // connection still ends: waiters told, id freed, counted.
    struct Unfinished(Option<Arc<Conn>>);
    impl Drop for Unfinished {
        fn drop(&mut self) {
            if let Some(conn) = self.0.take() {
                finish(&conn, DisconnectReason::ServerShutdown, &[]);
            }
        }
    }
    let mut unfinished = Unfinished(Some(conn.clone()));
    let _ = conn.h2.set(table);
    let props = site.properties();
    let timeouts = props.timeouts.normalized();
    let h = props.http2;
    let read = Arc::new(AtomicBool::new(false));
    let io = Counted {
        inner: io,
        prefix,
        read: read.clone(),
        counters: conn.counters.clone(),
    };
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(h.max_concurrent_client_streams)
        .max_header_list_size(h.max_header_list_size)
        .initial_window_size(h.initial_window_size)
        .initial_connection_window_size(h.connection_window_size)
        .max_frame_size(h.max_frame_size)
        .max_send_buffer_size(256 * 1024);
    let handshake = builder.handshake::<_, Bytes>(io);
    let h2 = match tokio::time::timeout(timeouts.header_wait, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            unfinished.0 = None;
            finish(&conn, reason_of(&e), &[]);
            return;
        }
        Err(_) => {
            conn.counters.timed_out(TimeoutKind::HeaderWait, conn.id);
            unfinished.0 = None;
            finish(
                &conn,
                DisconnectReason::Timeout(TimeoutKind::HeaderWait),
                &[],
            );
            return;
        }
    };
    let mut c = H2Conn {
        h2,
        conn: conn.clone(),
        site,
        share,
        base: timeouts,
        routes: RouteCache::default(),
        active: Vec::new(),
        read,
        next_seq: 1,
        resets: ResetBudget::new(h.max_client_resets_per_second),
        goaway_sent: false,
        body_timer: None,
    };
    let reason = c.run().await;
    let active = std::mem::take(&mut c.active);
    // Dropping the h2 connection closes the socket.
    drop(c);
    unfinished.0 = None;
    finish(&conn, reason, &active);
}

struct H2Conn<T: AsyncRead + AsyncWrite + Unpin> {
    h2: h2::server::Connection<Counted<T>, Bytes>,
    conn: Arc<Conn>,
    site: Arc<Site>,
    share: usize,
    base: Timeouts,
    routes: RouteCache,
    /// Streams handed to the application whose response is not complete:
    /// looked at for resets and open windows.
    active: Vec<Arc<Stream>>,
    /// Bytes were read since the last look (a reset can only come then).
    read: Arc<AtomicBool>,
    next_seq: u32,
    resets: ResetBudget,
    goaway_sent: bool,
    /// The earliest EntityBody or MinSendRate deadline of a stream.
    body_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

// The big variant is the common one: boxing it would cost an allocation
// per stream for nothing.
#[allow(clippy::large_enum_variant)]
enum Event {
    Stream(http::Request<RecvStream>, SendResponse<Bytes>),
    Closed(Option<h2::Error>),
    Woken,
    Idle,
    Calm,
}

impl<T: AsyncRead + AsyncWrite + Unpin> H2Conn<T> {
    fn table(&self) -> &H2Table {
        self.conn.h2.get().expect("set before the connection runs")
    }

    async fn run(&mut self) -> DisconnectReason {
        let mut idle: Option<Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let event = {
                let conn = self.conn.clone();
                let wake = conn.wake.wait();
                tokio::pin!(wake);
                poll_fn(|cx| self.poll_event(cx, wake.as_mut(), &mut idle)).await
            };
            match event {
                Event::Stream(req, respond) => self.dispatch(req, respond),
                // After our GOAWAY (a response sent with DISCONNECT) the
                // end is the server's doing.
                Event::Closed(None) if self.goaway_sent => return DisconnectReason::ServerClosed,
                Event::Closed(None) => return DisconnectReason::ClientClosed,
                Event::Closed(Some(e)) => return reason_of(&e),
                Event::Woken => {
                    let aborted = self.conn.lock().engine.aborted();
                    if let Some((reason, _)) = aborted {
                        self.h2.abrupt_shutdown(h2::Reason::NO_ERROR);
                        self.flush_goaway().await;
                        return reason;
                    }
                    if self.table().goaway.load(Ordering::Acquire) && !self.goaway_sent {
                        self.goaway_sent = true;
                        self.h2.graceful_shutdown();
                    }
                }
                Event::Idle => {
                    (self.conn.counters).timed_out(TimeoutKind::IdleConnection, self.conn.id);
                    self.h2.graceful_shutdown();
                    self.flush_goaway().await;
                    return DisconnectReason::Timeout(TimeoutKind::IdleConnection);
                }
                Event::Calm => {
                    tracing::warn!(conn = self.conn.id, peer = %self.conn.remote, "HTTP/2 reset budget spent (rapid reset): GOAWAY ENHANCE_YOUR_CALM");
                    self.h2.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                    self.flush_goaway().await;
                    return DisconnectReason::Http2Error(h2::Reason::ENHANCE_YOUR_CALM.into());
                }
            }
        }
    }

    /// Lets a GOAWAY just queued reach the client, briefly.
    async fn flush_goaway(&mut self) {
        let closing = poll_fn(|cx| self.h2.poll_closed(cx));
        let _ = tokio::time::timeout(Duration::from_millis(500), closing).await;
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        wake: Pin<&mut impl Future<Output = ()>>,
        idle: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    ) -> Poll<Event> {
        if wake.poll(cx).is_ready() {
            return Poll::Ready(Event::Woken);
        }
        match self.h2.poll_accept(cx) {
            Poll::Ready(Some(Ok((req, respond)))) => {
                return Poll::Ready(Event::Stream(req, respond))
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Event::Closed(Some(e))),
            Poll::Ready(None) => return Poll::Ready(Event::Closed(None)),
            Poll::Pending => {}
        }
        // Everything the client sent has been taken in: look for resets
        // and for windows that opened.
        if self.look() {
            return Poll::Ready(Event::Calm);
        }
        self.stream_timeouts(cx);
        // IdleConnection runs while no stream is held: looked at after
        // every poll, since a stream's last answer wakes this task (to send
        // it) without an event of its own.
        if self.table().in_flight() == 0 {
            // Whatever is left here is answered or ended.
            self.active.clear();
            let base = self.base.idle_connection;
            let sleep = idle.get_or_insert_with(|| Box::pin(tokio::time::sleep(base)));
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Idle);
            }
        } else {
            *idle = None;
        }
        Poll::Pending
    }

    /// EntityBody and MinSendRate on HTTP/2, per stream: a stream whose
    /// body the application has waited for past its group's EntityBody,
    /// or whose sender a closed window has held past what MinSendRate
    /// allows, is reset (CANCEL) and its request ends with that timeout;
    /// the connection and its other streams go on. Deadlines are worked
    /// out again only when a wait begins or the timer fires.
    fn stream_timeouts(&mut self, cx: &mut Context<'_>) {
        let fired = self
            .body_timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        let began = self.table().take_rescan();
        if !fired && !began {
            return;
        }
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let table = self.conn.h2.get().expect("set before the connection runs");
        let counters = &self.conn.counters;
        for s in &self.active {
            match s.deadline() {
                Some((d, kind)) if d <= now => {
                    let reason = DisconnectReason::Timeout(kind);
                    if s.timed_out(kind) && table.forget(s.seq, reason).is_some() {
                        counters.timed_out(kind, self.conn.id);
                        lost(&self.conn, s, reason);
                    }
                }
                Some((d, _)) => next = Some(next.map_or(d, |n| n.min(d))),
                None => {}
            }
        }
        self.body_timer = next.map(|d| Box::pin(tokio::time::sleep_until(d.into())));
        if let Some(t) = self.body_timer.as_mut() {
            // Registers the waker for the new deadline.
            let _ = t.as_mut().poll(cx);
        }
    }

    /// Looks at the streams in flight; true when the client has reset more
    /// than its budget allows.
    fn look(&mut self) -> bool {
        let resets = self.read.swap(false, Ordering::Relaxed);
        if self.active.is_empty() || !(resets || self.table().any_held()) {
            return false;
        }
        let mut calm = false;
        let table = self.conn.h2.get().expect("set before the connection runs");
        let counters = &self.conn.counters;
        let budget = &mut self.resets;
        self.active.retain(|s| match s.look(resets) {
            Look::Open => true,
            Look::Done => false,
            Look::Reset => {
                let reason = s.ended().unwrap_or(DisconnectReason::StreamReset(0));
                if table.forget(s.seq, reason).is_some() {
                    Counters::inc(&counters.h2_resets);
                    let conn = &self.conn;
                    tracing::debug!(conn = conn.id, request = registry::request_id(conn.id, s.seq), %reason, "stream reset by the client");
                    lost(conn, s, reason);
                }
                calm |= !budget.take();
                false
            }
        });
        calm
    }

    /// A new stream: its head checked and routed, then queued as a request.
    fn dispatch(&mut self, req: http::Request<RecvStream>, respond: SendResponse<Bytes>) {
        let counters = &self.conn.counters;
        Counters::inc(&counters.requests_received);
        Counters::inc(&counters.h2_streams);
        let now = Instant::now();
        if self.next_seq >= registry::MAX_SEQ {
            // Request ids of this connection are used up: no more streams.
            let mut respond = respond;
            respond.send_reset(h2::Reason::REFUSED_STREAM);
            if !self.goaway_sent {
                self.goaway_sent = true;
                self.h2.graceful_shutdown();
            }
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let (parts, body) = req.into_parts();
        let head_only = parts.method == http::Method::HEAD;
        let env = self.conn.env.clone();
        let mut request = Request::blank(&self.conn, now);
        let mut info = StreamInfo {
            method: MethodKind::from_bytes(parts.method.as_str().as_bytes()),
            started: Some(now),
            ..StreamInfo::default()
        };
        if let Err(why) = synthesize_head(&parts, &env.limits, request.head_mut()) {
            Counters::inc(&counters.protocol_errors);
            self.answer(seq, respond, body, 400, why, info);
            return;
        }
        let scheme = self.conn.scheme();
        let head = request.head();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        info.target.set(seq, info.method, target.as_bytes());
        if self.conn.log.is_some() {
            info.log = std::sync::Mutex::new(Some(Box::new(LogHead::of(head, true))));
        }
        let simple = head.simple_path(&env.limits);
        let cooked = match simple {
            Some(_) => None,
            None => match head.cooked_url(scheme, self.conn.local, &env.limits) {
                Ok(u) => Some(u),
                Err(_) => {
                    Counters::inc(&counters.protocol_errors);
                    self.answer(seq, respond, body, 400, "bad request target", info);
                    return;
                }
            },
        };
        let (host, path) = match (&cooked, simple) {
            (Some(u), _) => (u.host.as_bytes(), u.path.as_bytes()),
            (None, path) => (head.host().unwrap_or_default(), path.unwrap_or(b"/")),
        };
        let route =
            self.site
                .routes
                .route_cached(&mut self.routes, scheme, host, self.conn.local, path);
        let timeouts = route.map_or(self.base, |r| {
            r.timeouts.map_or(self.base, |t| t.or(self.base))
        });
        let context = route.map(|r| r.context);
        let bound = route.is_some_and(|r| r.queue.is_some());
        let queue = if bound { self.routes.queue() } else { None };
        let Some(queue) = queue else {
            Counters::inc(&counters.unrouted);
            let (status, why) = if context.is_some() {
                (503, "the URL group has no request queue")
            } else {
                (400, "no URL prefix matches this request")
            };
            self.answer(seq, respond, body, status, why, info);
            return;
        };
        info.entity_body = timeouts.entity_body;
        info.drain_entity_body = timeouts.drain_entity_body;
        info.min_send_rate = timeouts.min_send_rate;
        let stream = Arc::new(Stream::new(seq, queue.id, head_only, respond, body, info));
        let more_body = stream.has_body();
        self.table().insert(stream.clone());
        self.active.push(stream.clone());
        request.fill(Filled {
            seq,
            url_context: context.unwrap_or(0),
            cooked,
            expires: now + timeouts.request_queue,
            body: Bytes::new(),
            more_body,
        });
        request.set_stream(stream);
        let mut batch = vec![request];
        if let Some(why) = queue.push_batch(self.share, &mut batch) {
            // Refused, never handed out: not a request to abandon.
            Counters::inc(&counters.queue_rejections);
            batch.clear();
            self.active.pop();
            self.table().answer(seq, 503, why);
        }
    }

    /// The server answers a stream itself.
    fn answer(
        &mut self,
        seq: u32,
        respond: SendResponse<Bytes>,
        body: RecvStream,
        status: u16,
        why: &str,
        info: StreamInfo,
    ) {
        let head_only = info.method == MethodKind::Head;
        let stream = Arc::new(Stream::new(seq, 0, head_only, respond, body, info));
        self.table().insert(stream);
        self.table().answer(seq, status, why);
    }
}

/// A stream the application held ended under it (reset, timed out):
/// its request is abandoned, and a disconnect is recorded.
fn lost(conn: &Conn, s: &Stream, reason: DisconnectReason) {
    let counters = &conn.counters;
    Counters::inc(&counters.requests_abandoned);
    counters.metrics.disconnect(reason);
    conn.record_disconnect(s.info.path(), reason);
}

/// The connection is over: every stream still held ends with it (and is
/// abandoned), then the connection's own end is recorded.
fn finish(conn: &Arc<Conn>, reason: DisconnectReason, active: &[Arc<Stream>]) {
    let held = conn.h2.get().map(|t| t.take_all()).unwrap_or_default();
    let abandoned = held.len() as u64;
    for s in held.iter().chain(active) {
        s.end(reason);
    }
    registry::closed(conn, reason, abandoned);
}

/// What an h2 error says about why the connection ended.
fn reason_of(e: &h2::Error) -> DisconnectReason {
    if e.is_io() {
        return match e.get_io().map(io::Error::kind) {
            Some(io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe) => {
                DisconnectReason::ClientClosed
            }
            _ => DisconnectReason::Reset,
        };
    }
    match e.reason() {
        Some(h2::Reason::NO_ERROR) | None => DisconnectReason::ClientClosed,
        Some(r) => DisconnectReason::Http2Error(r.into()),
    }
}

/// Builds an HTTP/1.1-form head from an h2 request and parses it with the
/// same parser, limits and checks HTTP/1.1 requests get: one definition
/// of a valid request, and the same zero-copy [`Request`] accessors.
fn synthesize_head(
    parts: &http::request::Parts,
    limits: &httpq_proto::Limits,
    head: &mut httpq_proto::RequestHead,
) -> Result<(), &'static str> {
    let uri = &parts.uri;
    let authority = uri.authority().map(|a| a.as_str());
    let target = if parts.method == http::Method::CONNECT {
        authority.unwrap_or("")
    } else {
        uri.path_and_query().map_or("/", |p| p.as_str())
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(parts.method.as_str().as_bytes());
    buf.extend_from_slice(b" ");
    buf.extend_from_slice(target.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        buf.extend_from_slice(b"host: ");
        buf.extend_from_slice(a.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    for (name, value) in &parts.headers {
        // :authority wins over a Host field (RFC 9113 §8.3.1).
        if authority.is_some() && name == http::header::HOST {
            continue;
        }
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    let mut parser = RequestParser::new(*limits);
    match parser.parse_into(&mut buf, head) {
        Ok(true) => Ok(()),
        Ok(false) => Err("incomplete request head"),
        Err(_) => Err("malformed request head"),
    }
}

/// The rapid-reset budget: a token bucket of client resets.
struct ResetBudget {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl ResetBudget {
    fn new(per_second: u32) -> ResetBudget {
        let rate = f64::from(per_second.max(1));
        ResetBudget {
            rate,
            tokens: rate * 2.0,
            last: Instant::now(),
        }
    }

    /// Takes one reset; false when the budget is spent.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 2.0);
        self.last = now;
        self.tokens -= 1.0;
        self.tokens >= 0.0
    }
}

/// The connection's byte stream as h2 sees it: bytes already read come
/// first, reads are counted (and noted, so resets are looked for only
/// after input), writes are counted.
struct Counted<T> {
    inner: T,
    prefix: Bytes,
    read: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            this.read.store(true, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            Counters::add(&this.counters.bytes_received, n as u64);
            this.read.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            Counters::add(&this.counters.bytes_sent, n as u64);
            // h2 may have held frames it read (a reset among them) until
            // it could write: look at the streams after a write too.
            this.read.store(true, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            Counters::add(&this.counters.bytes_sent, n as u64);
            this.read.store(true, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A socket the HTTP/1.1 driver read the preface from, shared with the
/// connection (h2c): reads and writes through its readiness.
pub(crate) struct SharedSocket(pub Arc<tokio::net::TcpStream>);

impl AsyncRead for SharedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the connection's last holder lets go.
        let _ = socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}
