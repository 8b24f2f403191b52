//! Request queues and the requests in them: the application pulls requests
//! with `receive`, reads their bodies and answers them by request id.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use httpq_proto::{CookedUrl, RequestHead, Version};
use tokio::sync::Notify;

use crate::block_on::block_on;
use crate::connection::{Conn, SEND_HIGH_WATER};
use crate::counters::Counters;
use crate::disconnect::{recent, Completion, CompletionQueue, DisconnectReason, TimeoutKind};
use crate::properties::OverflowPolicy;
use crate::registry;
use crate::response::{Response, SendFlags};
use crate::ServerError;

static NEXT_QUEUE: AtomicU64 = AtomicU64::new(1);

/// A request as the application receives it: ids, URL context, method,
/// raw and cooked URL, version, headers, addresses and body state.
///
/// ```no_run
/// # async fn f(queue: httpq_server::RequestQueue) -> Result<(), httpq_server::ServerError> {
/// let req = queue.receive().await?;
/// println!("{} {} from {}", req.method(), req.url().path, req.remote_addr());
/// # Ok(()) }
/// ```
pub struct Request(ManuallyDrop<Box<RequestInner>>);

impl Drop for Request {
    fn drop(&mut self) {
        // SAFETY: the box is taken exactly once, here, and `self.0` is never
        // touched again (the request is being dropped).
        let inner = unsafe { ManuallyDrop::take(&mut self.0) };
        recycle::put(inner);
    }
}

/// Request allocations kept per thread for the next requests: with requests
/// made and dropped in pipelined batches, malloc's per-size cache (7 entries)
/// overflows and each ~450-byte box cost about 380 instructions to allocate
/// and free (callgrind, pipelined plaintext). A kept box stays a valid
/// request with everything it owned released, so reusing it writes only the
/// few fields that change (no ~450-byte initialisation per request).
mod recycle {
    use std::cell::RefCell;
    use std::sync::OnceLock;

    use super::RequestInner;

    /// Enough for several pipelined batches; beyond it boxes are freed.
    const KEEP: usize = 256;

    thread_local! {
        // Boxes, not values: a recycled box is handed out as the request's
        // own allocation.
        #[allow(clippy::vec_box)]
        static FREE: RefCell<Vec<Box<RequestInner>>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn take() -> Option<Box<RequestInner>> {
        FREE.try_with(|f| f.borrow_mut().pop()).ok().flatten()
    }

    pub(super) fn put(mut inner: Box<RequestInner>) {
        // Released now, not when the box is reused: the connection, the
        // read buffer the head points into, the lazily built parts.
        inner.conn = None;
        inner.head.clear();
        if *inner.lazy.get_mut() {
            inner.url = OnceLock::new();
            inner.headers = OnceLock::new();
            *inner.lazy.get_mut() = false;
        }
        let _ = FREE.try_with(move |f| {
            let mut f = f.borrow_mut();
            if f.len() < KEEP {
                f.push(inner);
            }
        });
    }
}

/// Boxed so a request moves through queues and futures as one pointer.
///
/// In declaration order (`repr(C)`), what every request touches first and
/// the lazily built parts last: pipelined batches keep hundreds of requests
/// in flight, and with the compiler's order a request touched six or seven
/// cache lines instead of three (callgrind's cache simulation: D1 misses
/// were most of the gap in instructions per cycle to hyper).
#[repr(C)]
pub(crate) struct RequestInner {
    /// Always set while the request is in use (`None` only in a recycled box).
    conn: Option<Arc<Conn>>,
    id: u64,
    url_context: u64,
    /// When the request has waited too long in its queue (RequestQueue timeout).
    expires: Instant,
    seq: u32,
    /// `url` or `headers` has been set: only then does recycling touch them.
    lazy: AtomicBool,
    head: RequestHead,
    /// The cooked URL, built on first use unless routing needed it already.
    url: OnceLock<CookedUrl>,
    headers: OnceLock<http::HeaderMap>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.0.id)
            .field("connection_id", &self.0.conn().id)
            .field("method", &String::from_utf8_lossy(self.0.head.method()))
            .field("target", &String::from_utf8_lossy(self.0.head.target()))
            .finish()
    }
}

impl RequestInner {
    pub(crate) fn conn(&self) -> &Arc<Conn> {
        self.conn
            .as_ref()
            .expect("a request in use has its connection")
    }
}

impl Request {
    /// An empty request of `conn` for the parser to fill in place (see
    /// [`RequestParser::parse_into`](httpq_proto::RequestParser::parse_into)),
    /// in a recycled allocation when there is one.
    /// `now`: any instant (the real expiry comes with [`fill`](Self::fill)).
    pub(crate) fn blank(conn: &Arc<Conn>, now: Instant) -> Request {
        let inner = match recycle::take() {
            Some(mut spare) => {
                spare.conn = Some(conn.clone());
                spare
            }
            None => Box::new(RequestInner {
                id: 0,
                conn: Some(conn.clone()),
                seq: 0,
                url_context: 0,
                lazy: AtomicBool::new(false),
                head: RequestHead::default(),
                url: OnceLock::new(),
                headers: OnceLock::new(),
                expires: now,
            }),
        };
        Request(ManuallyDrop::new(inner))
    }

    /// The request's place in its connection's order.
    pub(crate) fn seq(&self) -> u32 {
        self.0.seq
    }

    /// The head, for the parser to fill.
    pub(crate) fn head_mut(&mut self) -> &mut RequestHead {
        &mut self.0.head
    }

    /// Completes a parsed request with what routing decided.
    pub(crate) fn fill(
        &mut self,
        seq: u32,
        url_context: u64,
        cooked: Option<CookedUrl>,
        expires: Instant,
    ) {
        let inner = &mut *self.0;
        inner.id = registry::request_id(inner.conn().id, seq);
        inner.seq = seq;
        inner.url_context = url_context;
        inner.expires = expires;
        if let Some(u) = cooked {
            *inner.lazy.get_mut() = true;
            let _ = inner.url.set(u);
        }
    }

    /// The request id: unique, never reused; answer the request with it.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The connection id: the same for every request on a keep-alive connection.
    pub fn connection_id(&self) -> u64 {
        self.0.conn().id
    }

    /// The context value of the URL prefix that matched.
    pub fn url_context(&self) -> u64 {
        self.0.url_context
    }

    /// The method (unknown methods included).
    pub fn method(&self) -> http::Method {
        self.0.head.http_method()
    }

    /// The method token exactly as sent.
    pub fn method_bytes(&self) -> &[u8] {
        self.0.head.method()
    }

    /// The raw request target bytes.
    pub fn raw_target(&self) -> &[u8] {
        self.0.head.target()
    }

    /// The cooked URL: decoded, normalised path; host; port; raw query.
    pub fn url(&self) -> &CookedUrl {
        self.0.url.get_or_init(|| {
            self.0.lazy.store(true, Ordering::Relaxed);
            let limits = self.0.conn().session.properties_ref(|p| p.limits);
            // Only targets that already passed `simple_path` get here, and
            // their cooked form cannot fail; the fallback is unreachable.
            self.0
                .head
                .cooked_url("http", self.0.conn().local, &limits)
                .unwrap_or_else(|_| CookedUrl {
                    scheme: "http",
                    host: String::new(),
                    port: self.0.conn().local.port(),
                    path: "/".to_string(),
                    query: String::new(),
                })
        })
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.0.head.version()
    }

    /// The header fields (built on first use; values share the request's memory).
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers.get_or_init(|| {
            self.0.lazy.store(true, Ordering::Relaxed);
            self.0.head.header_map()
        })
    }

    /// The first value of header `name`, without building the map.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.head.header(name)
    }

    /// The parsed head (zero-copy access to everything the client sent).
    pub fn head(&self) -> &RequestHead {
        &self.0.head
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.0.conn().remote
    }

    /// The local address the request arrived on.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.conn().local
    }

    /// Bytes of the request head.
    pub fn bytes_received(&self) -> u64 {
        self.0.head.as_bytes().len() as u64
    }

    /// True if a body follows the head.
    pub fn has_body(&self) -> bool {
        !self.0.head.body().is_empty()
    }

    /// True while the client's connection is open.
    pub fn is_connected(&self) -> bool {
        self.0.conn().is_connected()
    }

    /// Completes when this request's connection breaks, with the reason.
    /// Cancel-safe: dropping it deregisters.
    pub async fn disconnected(&self) -> DisconnectReason {
        wait_conn(self.0.conn()).await
    }
}

async fn wait_conn(conn: &Conn) -> DisconnectReason {
    loop {
        let notified = conn.gone.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(r) = conn.lock().reason {
            return r;
        }
        notified.await;
    }
}

pub(crate) struct QueueInner {
    pub id: u64,
    name: String,
    state: Mutex<QueueState>,
    notify: Notify,
    /// Woken at shutdown: disconnect waits on this queue end with Aborted.
    shut: Notify,
    /// Wakes the parked RequestQueue-timeout sweeper.
    sweep: Arc<Notify>,
    limit: AtomicUsize,
    overflow: Mutex<OverflowPolicy>,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Request>,
    shutdown: bool,
    /// The RequestQueue-timeout sweeper task has been started.
    sweeper: bool,
    /// It is parked until the next request.
    sweeper_parked: bool,
    /// Consumers registered on `notify` and about to sleep: with none, a
    /// push or pop need not notify (a Notify call per request saved).
    waiting: usize,
}

/// A consumer counted in `QueueState::waiting` while it sleeps; uncounted
/// when it wakes or its receive is dropped.
struct Waiting<'a>(&'a QueueInner);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

/// How often the sweeper looks for expired requests while the queue is busy.
const SWEEP_TICK: Duration = Duration::from_millis(50);
/// Empty ticks in a row before the sweeper parks until the next request.
const SWEEP_IDLE_TICKS: u32 = 20;

/// Answers 503 to requests that waited in the queue past their RequestQueue
/// timeout, so a stalled application cannot hold clients forever.
///
/// One long-lived task per queue, ticking while the queue is in use and
/// parked when it has been empty for a while; it holds only a weak
/// reference, so a dropped queue ends it. Nothing of it is on the
/// per-request path except one flag check in `push`.
async fn sweep(queue: Weak<QueueInner>, wake: Arc<Notify>) {
    let mut idle_ticks = 0;
    loop {
        let parked = {
            let Some(q) = queue.upgrade() else { return };
            let expired = {
                let mut st = q.lock();
                if st.shutdown {
                    return;
                }
                let now = Instant::now();
                let mut expired = Vec::new();
                let mut i = 0;
                while i < st.items.len() {
                    if st.items[i].0.expires <= now {
                        expired.extend(st.items.remove(i));
                    } else {
                        i += 1;
                    }
                }
                idle_ticks = if st.items.is_empty() {
                    idle_ticks + 1
                } else {
                    0
                };
                st.sweeper_parked = idle_ticks >= SWEEP_IDLE_TICKS;
                expired
            };
            for r in expired {
                let conn = r.0.conn();
                Counters::inc(&conn.session.counters.timeouts);
                // As http.sys does, the connection ends with the timeout
                // (after a 503 it can read): its waiters learn it timed out.
                conn.lock()
                    .close_reason
                    .get_or_insert(DisconnectReason::Timeout(TimeoutKind::RequestQueue));
                conn.server_answer(r.0.seq, 503, "request waited too long in the queue", false);
            }
            idle_ticks >= SWEEP_IDLE_TICKS
        };
        if parked {
            wake.notified().await;
            idle_ticks = 0;
        } else {
            tokio::time::sleep(SWEEP_TICK).await;
        }
    }
}

impl QueueInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a connection's batch of requests under one lock, in order,
    /// leaving `batch` empty. Those that do not fit (queue full or shut down)
    /// go to `refused`, with why, for the connection to answer.
    pub(crate) fn push_batch(
        self: &Arc<Self>,
        batch: &mut Vec<Request>,
        refused: &mut Vec<(Request, &'static str)>,
    ) {
        let mut st = self.lock();
        let limit = self.limit.load(Ordering::Relaxed);
        let mut queued = false;
        for r in batch.drain(..) {
            if st.shutdown {
                refused.push((r, "request queue is shut down"));
            } else if st.items.len() >= limit {
                refused.push((r, "request queue is full"));
            } else {
                st.items.push_back(r);
                queued = true;
            }
        }
        if !queued {
            return;
        }
        let start_sweeper = !st.sweeper;
        let unpark = st.sweeper_parked;
        st.sweeper = true;
        st.sweeper_parked = false;
        // One consumer is woken; it wakes the next if more are waiting
        // (see `pop_locked`).
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            self.notify.notify_one();
        }
        if unpark {
            self.sweep.notify_one();
        }
        if start_sweeper {
            // Called from a connection task, so a runtime is at hand.
            tokio::spawn(sweep(Arc::downgrade(self), self.sweep.clone()));
        }
    }

    pub(crate) fn overflow_policy(&self) -> OverflowPolicy {
        *self.overflow.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_shutdown(&self) -> bool {
        self.lock().shutdown
    }
}

impl Drop for QueueInner {
    fn drop(&mut self) {
        // Let a parked sweeper see the queue is gone and end.
        self.sweep.notify_one();
    }
}

/// A named queue of requests with any number of consumers.
///
/// ```
/// use httpq_server::RequestQueue;
/// let q = RequestQueue::new("app");
/// assert_eq!(q.name(), "app");
/// q.shutdown();
/// assert!(q.receive_blocking().is_err()); // aborted
/// ```
#[derive(Clone)]
pub struct RequestQueue {
    pub(crate) inner: Arc<QueueInner>,
}

impl std::fmt::Debug for RequestQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestQueue")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl RequestQueue {
    /// A new queue with the default length limit (1000) and overflow policy (503 + close).
    pub fn new(name: &str) -> RequestQueue {
        RequestQueue {
            inner: Arc::new(QueueInner {
                id: NEXT_QUEUE.fetch_add(1, Ordering::Relaxed),
                name: name.to_string(),
                state: Mutex::new(QueueState::default()),
                notify: Notify::new(),
                shut: Notify::new(),
                sweep: Arc::new(Notify::new()),
                limit: AtomicUsize::new(1000),
                overflow: Mutex::new(OverflowPolicy::default()),
            }),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sets how many requests may wait in the queue.
    pub fn set_limit(&self, limit: usize) {
        self.inner.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// Sets what happens to a request that finds the queue full.
    pub fn set_overflow_policy(&self, policy: OverflowPolicy) {
        *self
            .inner
            .overflow
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        self.inner.lock().items.len()
    }

    /// True when no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next request. Fails with [`ServerError::Aborted`] once the queue is shut down.
    pub async fn receive(&self) -> Result<Request, ServerError> {
        loop {
            // Fast path first: a waiting request needs no waiter registration.
            if let Some(r) = self.try_pop()? {
                return Ok(r);
            }
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Counted under the same lock a push checks, after the waiter
            // is enabled: a push either is seen here or sees the count.
            {
                let mut st = self.inner.lock();
                if let Some(r) = self.pop_locked(&mut st)? {
                    return Ok(r);
                }
                st.waiting += 1;
            }
            let _counted = Waiting(&self.inner);
            notified.await;
        }
    }

    fn try_pop(&self) -> Result<Option<Request>, ServerError> {
        let mut st = self.inner.lock();
        self.pop_locked(&mut st)
    }

    fn pop_locked(&self, st: &mut QueueState) -> Result<Option<Request>, ServerError> {
        if st.shutdown {
            return Err(ServerError::Aborted);
        }
        let r = st.items.pop_front();
        let more = r.is_some() && !st.items.is_empty() && st.waiting > 0;
        if more {
            // Another consumer may be waiting for the next one.
            self.inner.notify.notify_one();
        }
        Ok(r)
    }

    /// Blocking twin of [`receive`](Self::receive), for plain threads (not
    /// from inside an async task).
    pub fn receive_blocking(&self) -> Result<Request, ServerError> {
        block_on(self.receive())
    }

    /// A request if one is waiting, without waiting.
    pub fn try_receive(&self) -> Result<Option<Request>, ServerError> {
        let mut st = self.inner.lock();
        if st.shutdown {
            return Err(ServerError::Aborted);
        }
        Ok(st.items.pop_front())
    }

    /// The connection id and sequence number of a request id that could
    /// have been issued.
    fn split_id(request_id: u64) -> Result<(u64, u32), ServerError> {
        let (conn_id, seq) = registry::split_request_id(request_id);
        if seq == 0 || !registry::issued(conn_id) {
            return Err(ServerError::ConnectionInvalid);
        }
        Ok((conn_id, seq))
    }

    fn conn_for(&self, request_id: u64) -> Result<(Arc<Conn>, u32), ServerError> {
        let (conn_id, seq) = Self::split_id(request_id)?;
        let conn = registry::get_open(conn_id).ok_or(ServerError::ConnectionInvalid)?;
        Ok((conn, seq))
    }

    /// [`conn_for`](Self::conn_for) for a body read: a connection the
    /// server closed over a malformed body reports that body's error (the
    /// server may answer it, and close, before the application reads).
    fn body_conn_for(request_id: u64) -> Result<(Arc<Conn>, u32), ServerError> {
        let (conn_id, seq) = Self::split_id(request_id)?;
        match registry::get_open(conn_id) {
            Some(conn) => Ok((conn, seq)),
            None => match recent::reason(conn_id) {
                DisconnectReason::ProtocolError(e) if e.is_body_error() => {
                    Err(ServerError::Body(e))
                }
                _ => Err(ServerError::ConnectionInvalid),
            },
        }
    }

    /// Runs `send` on the connection of `request_id`; it returns whether
    /// the sender must wait for the socket to drain, and then the connection
    /// to wait on comes back. The connection is borrowed from the registry's
    /// per-thread cache: no reference count is taken unless the sender has
    /// to wait. Not async, so the response is not moved through a future.
    #[inline(always)]
    fn send_now(
        request_id: u64,
        send: impl FnOnce(&Conn, u32) -> Result<bool, ServerError>,
    ) -> Result<Option<Arc<Conn>>, ServerError> {
        let (conn_id, seq) = Self::split_id(request_id)?;
        registry::with_open(conn_id, |conn| {
            send(conn, seq).map(|over| over.then(|| conn.clone()))
        })
        .ok_or(ServerError::ConnectionInvalid)?
    }

    /// Waits while the connection has more than the high-water mark queued
    /// (only called when a send left it above the mark).
    async fn backpressure(conn: &Conn) {
        loop {
            let notified = conn.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = conn.lock();
                if st.reason.is_some() || st.queued_bytes() < SEND_HIGH_WATER {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Sends the response to request `request_id`. With
    /// [`SendFlags::MORE_DATA`], body follows through [`send_body`](Self::send_body).
    ///
    /// Answered, cancelled and unknown ids are [`ServerError::ConnectionInvalid`].
    pub async fn send_response(
        &self,
        request_id: u64,
        response: Response,
        flags: SendFlags,
    ) -> Result<(), ServerError> {
        let queue = self.inner.id;
        let mut response = response;
        // By reference: the response is not copied again on its way in.
        let wait = Self::send_now(request_id, |conn, seq| {
            conn.send_response(seq, queue, &mut response, flags)
        })?;
        if let Some(conn) = wait {
            Self::backpressure(&conn).await;
        }
        Ok(())
    }

    /// Blocking twin of [`send_response`](Self::send_response).
    pub fn send_response_blocking(
        &self,
        request_id: u64,
        response: Response,
        flags: SendFlags,
    ) -> Result<(), ServerError> {
        block_on(self.send_response(request_id, response, flags))
    }

    /// Sends more body of a response begun with MORE_DATA; without MORE_DATA
    /// this completes the response.
    pub async fn send_body(
        &self,
        request_id: u64,
        data: impl Into<Bytes>,
        flags: SendFlags,
    ) -> Result<(), ServerError> {
        let queue = self.inner.id;
        let data = data.into();
        let wait = Self::send_now(request_id, |conn, seq| {
            conn.send_body(seq, queue, data, flags)
        })?;
        if let Some(conn) = wait {
            Self::backpressure(&conn).await;
        }
        Ok(())
    }

    /// Blocking twin of [`send_body`](Self::send_body).
    pub fn send_body_blocking(
        &self,
        request_id: u64,
        data: impl Into<Bytes>,
        flags: SendFlags,
    ) -> Result<(), ServerError> {
        block_on(self.send_body(request_id, data, flags))
    }

    /// Reads request body into `buf`; 0 at the end of the body. The first
    /// call sends `100 Continue` if the client asked for it.
    pub async fn receive_body(
        &self,
        request_id: u64,
        buf: &mut [u8],
    ) -> Result<usize, ServerError> {
        let (conn, seq) = Self::body_conn_for(request_id)?;
        if buf.is_empty() {
            return Ok(0);
        }
        poll_fn(|cx| {
            conn.poll_body(seq, cx, |chunks| {
                let mut n = 0;
                while n < buf.len() {
                    let Some(front) = chunks.front_mut() else {
                        break;
                    };
                    let take = front.len().min(buf.len() - n);
                    buf[n..n + take].copy_from_slice(&front[..take]);
                    n += take;
                    if take == front.len() {
                        chunks.pop_front();
                    } else {
                        let _ = front.split_to(take);
                    }
                }
                n
            })
        })
        .await
    }

    /// Blocking twin of [`receive_body`](Self::receive_body).
    pub fn receive_body_blocking(
        &self,
        request_id: u64,
        buf: &mut [u8],
    ) -> Result<usize, ServerError> {
        block_on(self.receive_body(request_id, buf))
    }

    /// The next piece of request body as `Bytes` (no copy); `None` at the end.
    pub async fn receive_body_chunk(&self, request_id: u64) -> Result<Option<Bytes>, ServerError> {
        let (conn, seq) = Self::body_conn_for(request_id)?;
        poll_fn(|cx| conn.poll_body_chunk(seq, cx)).await
    }

    /// The request body as a [`Stream`](futures_core::Stream) of `Bytes`
    /// pieces (no copies), ending at the end of the body; an error ends it too.
    /// Reading it counts as reading the body (`100 Continue` goes out).
    ///
    /// ```no_run
    /// # async fn f(queue: httpq_server::RequestQueue, id: u64) -> Result<(), httpq_server::ServerError> {
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    /// use futures_core::Stream;
    /// let mut body = queue.body_stream(id);
    /// let mut total = 0;
    /// while let Some(piece) = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
    ///     total += piece?.len();
    /// }
    /// # Ok(()) }
    /// ```
    pub fn body_stream(&self, request_id: u64) -> BodyStream {
        BodyStream {
            conn: Self::body_conn_for(request_id),
            ended: false,
        }
    }

    /// Waits until connection `connection_id` breaks, for any reason, and
    /// says why. An id that existed but is closed completes at once; an id
    /// never issued is [`ServerError::UnknownId`]. After [`shutdown`](Self::shutdown)
    /// it fails with [`ServerError::Aborted`]. Cancel-safe.
    pub async fn wait_for_disconnect(
        &self,
        connection_id: u64,
    ) -> Result<DisconnectReason, ServerError> {
        if !registry::issued(connection_id) {
            return Err(ServerError::UnknownId(connection_id));
        }
        let shut = self.inner.shut.notified();
        tokio::pin!(shut);
        shut.as_mut().enable();
        if self.inner.is_shutdown() {
            return Err(ServerError::Aborted);
        }
        let Some(conn) = registry::get(connection_id) else {
            return Ok(recent::reason(connection_id));
        };
        tokio::select! {
            r = wait_conn(&conn) => Ok(r),
            _ = shut => Err(ServerError::Aborted),
        }
    }

    /// Blocking twin of [`wait_for_disconnect`](Self::wait_for_disconnect).
    pub fn wait_for_disconnect_blocking(
        &self,
        connection_id: u64,
    ) -> Result<DisconnectReason, ServerError> {
        block_on(self.wait_for_disconnect(connection_id))
    }

    /// Posted form: returns at once; when the connection breaks, a
    /// [`Completion`] with `key` is posted to `cq` (at once if it already has).
    pub fn wait_for_disconnect_posted(
        &self,
        connection_id: u64,
        cq: &CompletionQueue,
        key: u64,
    ) -> Result<(), ServerError> {
        if !registry::issued(connection_id) {
            return Err(ServerError::UnknownId(connection_id));
        }
        if self.inner.is_shutdown() {
            return Err(ServerError::Aborted);
        }
        let post_now = |reason| {
            cq.post(Completion {
                key,
                connection_id,
                reason,
            })
        };
        match registry::get(connection_id) {
            None => post_now(recent::reason(connection_id)),
            Some(conn) => {
                let mut st = conn.lock();
                match st.reason {
                    Some(r) => post_now(r),
                    None => st.posted.push((cq.clone(), key, self.inner.id)),
                }
            }
        }
        Ok(())
    }

    /// True while connection `connection_id` is open.
    pub fn is_connected(&self, connection_id: u64) -> bool {
        registry::get(connection_id).is_some_and(|c| c.is_connected())
    }

    /// Cancels request `request_id`: its connection is closed, with a reset
    /// if the response had started; waiters see [`DisconnectReason::Cancelled`].
    pub fn cancel_request(&self, request_id: u64) -> Result<(), ServerError> {
        let (conn, seq) = self.conn_for(request_id)?;
        {
            let st = conn.lock();
            let i = st.slot_index(seq).ok_or(ServerError::ConnectionInvalid)?;
            if st.slots[i].queue != self.inner.id {
                return Err(ServerError::ConnectionInvalid);
            }
        }
        conn.abort(DisconnectReason::Cancelled, false);
        Ok(())
    }

    /// Stops the queue: pending and later receives and disconnect waits fail
    /// with [`ServerError::Aborted`]; new requests are refused (503); the
    /// connections of requests still waiting in the queue are closed.
    pub fn shutdown(&self) {
        let waiting: Vec<Request> = {
            let mut st = self.inner.lock();
            st.shutdown = true;
            st.items.drain(..).collect()
        };
        self.inner.notify.notify_waiters();
        self.inner.shut.notify_waiters();
        self.inner.sweep.notify_one();
        // Posted waits made through this queue complete now, as aborted.
        for conn in registry::all() {
            let mut st = conn.lock();
            let mut i = 0;
            while i < st.posted.len() {
                if st.posted[i].2 == self.inner.id {
                    let (cq, key, _) = st.posted.swap_remove(i);
                    cq.post(Completion {
                        key,
                        connection_id: conn.id,
                        reason: DisconnectReason::QueueShutdown,
                    });
                } else {
                    i += 1;
                }
            }
        }
        for r in waiting {
            r.0.conn().abort(DisconnectReason::QueueShutdown, false);
        }
    }

    /// Shuts the queue down and releases it.
    pub fn close(self) {
        self.shutdown();
    }
}

/// A request body as a stream of `Bytes`; see [`RequestQueue::body_stream`].
pub struct BodyStream {
    conn: Result<(Arc<Conn>, u32), ServerError>,
    ended: bool,
}

impl futures_core::Stream for BodyStream {
    type Item = Result<Bytes, ServerError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let (conn, seq) = match &this.conn {
            Ok(c) => c,
            Err(_) => {
                this.ended = true;
                let e = std::mem::replace(&mut this.conn, Err(ServerError::ConnectionInvalid));
                return Poll::Ready(e.err().map(Err));
            }
        };
        let item = std::task::ready!(conn.poll_body_chunk(*seq, cx)).transpose();
        this.ended = !matches!(item, Some(Ok(_)));
        Poll::Ready(item)
    }
}
