//! Request queues: the application pulls requests with `receive`, reads
//! their bodies and answers them by request id. Each queue is split in
//! per-worker shares (see the `share` module); any consumer, on a worker or not,
//! can take any request.

mod request;
mod share;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use httpq_proto::server_conn::FileChunk;
use tokio::sync::Notify;

use crate::block_on::block_on;
use crate::conn::Conn;
use crate::disconnect::{recent, Completion, CompletionQueue, DisconnectReason};
use crate::properties::OverflowPolicy;
use crate::registry;
use crate::response::{Response, SendFlags};
use crate::ServerError;

pub use request::Request;
pub(crate) use request::{wait_conn, Filled};
use share::home;
pub(crate) use share::set_home;

static NEXT_QUEUE: AtomicU64 = AtomicU64::new(1);

/// How often the sweeper looks for expired requests while the queue is busy.
const SWEEP_TICK: Duration = Duration::from_millis(50);
/// Empty ticks in a row before the sweeper parks until the next request.
const SWEEP_IDLE_TICKS: u32 = 20;

/// The sweeper's states.
const SWEEPER_NONE: u8 = 0;
const SWEEPER_RUNNING: u8 = 1;
const SWEEPER_PARKED: u8 = 2;

pub(crate) struct QueueInner {
    pub id: u64,
    name: String,
    shares: share::Shares,
    shutdown: AtomicBool,
    /// Woken at shutdown: disconnect waits on this queue end with Aborted.
    shut: Notify,
    /// Wakes the parked RequestQueue-timeout sweeper.
    sweep: Arc<Notify>,
    sweeper: AtomicU8,
    limit: AtomicUsize,
    overflow: Mutex<OverflowPolicy>,
    /// Body bytes that may travel with a request (0: none).
    copy_body: AtomicUsize,
}

/// Keeps the sweeper's state honest when its task ends for any reason
/// (its runtime shut down with a session): the next push starts a new one.
struct SweeperGuard(Weak<QueueInner>);

impl Drop for SweeperGuard {
    fn drop(&mut self) {
        if let Some(q) = self.0.upgrade() {
            q.sweeper.store(SWEEPER_NONE, Ordering::Release);
        }
    }
}

/// Answers 503 to requests that waited in the queue past their RequestQueue
/// timeout, so a stalled application cannot hold clients forever.
///
/// One task per queue, ticking while the queue is in use and parked when
/// it has been empty for a while; it holds only a weak reference, so a
/// dropped queue ends it. Nothing of it is on the per-request path except
/// one look at its state per pushed batch.
async fn sweep(queue: Weak<QueueInner>, wake: Arc<Notify>) {
    let _guard = SweeperGuard(queue.clone());
    let mut idle_ticks = 0;
    loop {
        let parked = {
            let Some(q) = queue.upgrade() else { return };
            if q.is_shutdown() {
                return;
            }
            let expired = q.shares.expired(Instant::now());
            idle_ticks = if q.shares.len() == 0 {
                idle_ticks + 1
            } else {
                0
            };
            for r in expired {
                r.conn().queue_timeout(r.seq());
            }
            if idle_ticks >= SWEEP_IDLE_TICKS {
                q.sweeper.store(SWEEPER_PARKED, Ordering::SeqCst);
                // A push that came before the state changed saw it running.
                if q.shares.len() > 0 {
                    q.sweeper.store(SWEEPER_RUNNING, Ordering::SeqCst);
                    idle_ticks = 0;
                }
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
    /// Queues a connection's batch of requests in share `share`, in order.
    /// Those that do not fit (queue full or shut down) stay in `batch`, a
    /// suffix of it, with why, for the connection to answer.
    pub(crate) fn push_batch(
        self: &Arc<Self>,
        share: usize,
        batch: &mut Vec<Request>,
    ) -> Option<&'static str> {
        let before = batch.len();
        let limit = self.limit.load(Ordering::Relaxed);
        if !self.shares.push(share, batch, limit, &self.shutdown) {
            return Some("request queue is shut down");
        }
        if batch.len() < before {
            self.sweeper_wanted();
        }
        (!batch.is_empty()).then_some("request queue is full")
    }

    fn sweeper_wanted(self: &Arc<Self>) {
        match self.sweeper.load(Ordering::SeqCst) {
            SWEEPER_RUNNING => {}
            SWEEPER_PARKED => {
                if self
                    .sweeper
                    .compare_exchange(
                        SWEEPER_PARKED,
                        SWEEPER_RUNNING,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .is_ok()
                {
                    self.sweep.notify_one();
                }
            }
            _ => {
                if self
                    .sweeper
                    .compare_exchange(
                        SWEEPER_NONE,
                        SWEEPER_RUNNING,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .is_ok()
                {
                    // Called from a connection's driver, so a runtime is at hand.
                    tokio::spawn(sweep(Arc::downgrade(self), self.sweep.clone()));
                }
            }
        }
    }

    pub(crate) fn overflow_policy(&self) -> OverflowPolicy {
        *self.overflow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Body bytes that may travel with a request to this queue.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Requests waiting to be received.
    pub(crate) fn len(&self) -> usize {
        self.shares.len()
    }

    /// Consumers waiting in `receive` now.
    pub(crate) fn consumers(&self) -> usize {
        self.shares.consumers()
    }

    pub(crate) fn copy_body(&self) -> usize {
        self.copy_body.load(Ordering::Relaxed)
    }

    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// The share the connections accepted on this thread queue into: the
/// worker's own, or the first when the thread is not a worker.
pub(crate) fn share_here() -> usize {
    home(share::share_count()).unwrap_or(0)
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
    /// A new queue with the default length limit (1000) and overflow
    /// policy (503 + close), copying no body with requests.
    pub fn new(name: &str) -> RequestQueue {
        RequestQueue {
            inner: Arc::new(QueueInner {
                id: NEXT_QUEUE.fetch_add(1, Ordering::Relaxed),
                name: name.to_string(),
                shares: share::Shares::new(),
                shutdown: AtomicBool::new(false),
                shut: Notify::new(),
                sweep: Arc::new(Notify::new()),
                sweeper: AtomicU8::new(SWEEPER_NONE),
                limit: AtomicUsize::new(1000),
                overflow: Mutex::new(OverflowPolicy::default()),
                copy_body: AtomicUsize::new(0),
            }),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sets how many requests may wait in the queue (over all its shares).
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

    /// Lets up to `max` bytes of body that have already arrived travel
    /// with each request (http.sys's `HTTP_RECEIVE_REQUEST_FLAG_COPY_BODY`):
    /// see [`Request::body`] and [`Request::more_body`]. A body that
    /// arrived whole is then answered with no further call. 0 (the
    /// default) copies nothing: every body byte is read with `receive_body`.
    pub fn set_copy_body(&self, max: usize) {
        self.inner.copy_body.store(max, Ordering::Relaxed);
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        self.inner.shares.len()
    }

    /// True when no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next request: on a worker thread, one of that worker's
    /// connections first, else any. Fails with [`ServerError::Aborted`]
    /// once the queue is shut down.
    pub async fn receive(&self) -> Result<Request, ServerError> {
        let shares = &self.inner.shares;
        let home = home(shares.count());
        loop {
            if self.inner.is_shutdown() {
                return Err(ServerError::Aborted);
            }
            // Fast path first: a waiting request needs no waiter registration.
            if let Some(r) = shares.take(home) {
                registry::prime(r.conn());
                return Ok(r);
            }
            let notified = shares.notify(home).notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _asleep = shares.sleep(home);
            if self.inner.is_shutdown() {
                return Err(ServerError::Aborted);
            }
            if let Some(r) = shares.take(home) {
                registry::prime(r.conn());
                return Ok(r);
            }
            notified.await;
        }
    }

    /// Blocking twin of [`receive`](Self::receive), for plain threads (not
    /// from inside an async task).
    pub fn receive_blocking(&self) -> Result<Request, ServerError> {
        block_on(self.receive())
    }

    /// A request if one is waiting, without waiting.
    pub fn try_receive(&self) -> Result<Option<Request>, ServerError> {
        if self.inner.is_shutdown() {
            return Err(ServerError::Aborted);
        }
        Ok(self.inner.shares.take(home(self.inner.shares.count())))
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

    fn conn_for(request_id: u64) -> Result<(Arc<Conn>, u32), ServerError> {
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

    /// Runs `send` (given the connection, the request's place in it and
    /// this queue's id) on the connection of `request_id`, then, for a send
    /// with more to come, waits while the write budget holds it. The
    /// connection is borrowed from the registry's per-thread cache: no
    /// reference count is taken unless the sender has to wait. The sending
    /// itself is not async, so a response is not moved through a future.
    #[inline(always)]
    async fn send(
        &self,
        request_id: u64,
        flags: SendFlags,
        send: impl FnOnce(&Conn, u32, u64) -> Result<bool, ServerError>,
    ) -> Result<(), ServerError> {
        let queue = self.inner.id;
        let (conn_id, seq) = Self::split_id(request_id)?;
        let wait = registry::with_open(conn_id, |conn| {
            send(conn, seq, queue).map(|wait| wait.then(|| conn.clone()))
        })
        .ok_or(ServerError::ConnectionInvalid)??;
        // Only a sender with more to come is held: one that is done
        // produces nothing more, and the pipeline depth bounds how many
        // complete answers a connection keeps.
        if let Some(conn) = wait.filter(|_| flags.contains(SendFlags::MORE_DATA)) {
            conn.drain_for(seq).await;
        }
        Ok(())
    }

    /// Sends the response to request `request_id`, body included — one
    /// call answers a request. With [`SendFlags::MORE_DATA`], body follows
    /// through [`send_body`](Self::send_body), and the call waits while the
    /// connection's write budget (64 KiB) is used up; a final send never
    /// waits, so a consumer loop can answer inline.
    ///
    /// Answered, cancelled and unknown ids are [`ServerError::ConnectionInvalid`].
    pub async fn send_response(
        &self,
        request_id: u64,
        response: Response,
        flags: SendFlags,
    ) -> Result<(), ServerError> {
        let mut response = response;
        // By reference: the response is not copied again on its way in.
        let sent = self
            .send(request_id, flags, |conn, seq, queue| {
                conn.send_response(seq, queue, &mut response, flags)
            })
            .await;
        response.recycle();
        sent
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
        let data = data.into();
        self.send(request_id, flags, |conn, seq, queue| {
            conn.send_body(seq, queue, data, flags)
        })
        .await
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

    /// Sends a file range as more body of a response begun with MORE_DATA
    /// (http.sys's `HttpDataChunkFromFileHandle`): the bytes go from the
    /// file to the socket (`sendfile`) without being read into memory.
    pub async fn send_file(
        &self,
        request_id: u64,
        chunk: FileChunk,
        flags: SendFlags,
    ) -> Result<(), ServerError> {
        self.send(request_id, flags, |conn, seq, queue| {
            conn.send_file(seq, queue, chunk, flags)
        })
        .await
    }

    /// Reads request body into `buf`; 0 at the end of the body. The first
    /// call sends `100 Continue` if the client asked for it. Bytes that came
    /// with the request ([`Request::body`]) are not read again.
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
        let (conn, seq) = Self::conn_for(request_id)?;
        if let Some(t) = conn.h2.get() {
            // HTTP/2: the stream is reset (CANCEL); the connection goes on.
            return t.cancel(seq, self.inner.id);
        }
        if conn.lock().engine.queue_of(seq) != Some(self.inner.id) {
            return Err(ServerError::ConnectionInvalid);
        }
        conn.abort(DisconnectReason::Cancelled, false);
        Ok(())
    }

    /// Stops the queue: pending and later receives and disconnect waits fail
    /// with [`ServerError::Aborted`]; new requests are refused (503); the
    /// connections of requests still waiting in the queue are closed (an
    /// HTTP/2 request's stream alone is answered 503: its connection may
    /// carry other queues' requests).
    pub fn shutdown(&self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        let waiting = self.inner.shares.drain();
        self.inner.shares.wake_all();
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
            let conn = r.conn();
            if conn.h2.get().is_some() {
                // One stream of a connection that may carry others, for
                // other queues: only it is refused.
                conn.server_answer(r.seq(), 503, "request queue is shut down", false);
            } else {
                conn.abort(DisconnectReason::QueueShutdown, false);
            }
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
