//! Request queues and the requests in them: the application pulls requests
//! with `receive`, reads their bodies and answers them by request id.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use httpq_proto::{CookedUrl, RequestHead, Version};
use tokio::sync::Notify;

use crate::block_on::block_on;
use crate::connection::{Conn, SEND_HIGH_WATER};
use crate::disconnect::{recent, Completion, CompletionQueue, DisconnectReason};
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
pub struct Request {
    pub(crate) conn: Arc<Conn>,
    id: u64,
    url_context: u64,
    head: RequestHead,
    url: CookedUrl,
    headers: OnceLock<http::HeaderMap>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("connection_id", &self.conn.id)
            .field("method", &String::from_utf8_lossy(self.head.method()))
            .field("target", &String::from_utf8_lossy(self.head.target()))
            .finish()
    }
}

impl Request {
    pub(crate) fn new(
        conn: Arc<Conn>,
        id: u64,
        url_context: u64,
        head: RequestHead,
        url: CookedUrl,
    ) -> Request {
        Request {
            conn,
            id,
            url_context,
            head,
            url,
            headers: OnceLock::new(),
        }
    }

    /// The request id: unique, never reused; answer the request with it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection id: the same for every request on a keep-alive connection.
    pub fn connection_id(&self) -> u64 {
        self.conn.id
    }

    /// The context value of the URL prefix that matched.
    pub fn url_context(&self) -> u64 {
        self.url_context
    }

    /// The method (unknown methods included).
    pub fn method(&self) -> http::Method {
        self.head.http_method()
    }

    /// The method token exactly as sent.
    pub fn method_bytes(&self) -> &[u8] {
        self.head.method()
    }

    /// The raw request target bytes.
    pub fn raw_target(&self) -> &[u8] {
        self.head.target()
    }

    /// The cooked URL: decoded, normalised path; host; port; raw query.
    pub fn url(&self) -> &CookedUrl {
        &self.url
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.head.version()
    }

    /// The header fields (built on first use; values share the request's memory).
    pub fn headers(&self) -> &http::HeaderMap {
        self.headers.get_or_init(|| self.head.header_map())
    }

    /// The first value of header `name`, without building the map.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The parsed head (zero-copy access to everything the client sent).
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.conn.remote
    }

    /// The local address the request arrived on.
    pub fn local_addr(&self) -> SocketAddr {
        self.conn.local
    }

    /// Bytes of the request head.
    pub fn bytes_received(&self) -> u64 {
        self.head.as_bytes().len() as u64
    }

    /// True if a body follows the head.
    pub fn has_body(&self) -> bool {
        !self.head.body().is_empty()
    }

    /// True while the client's connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_connected()
    }

    /// Completes when this request's connection breaks, with the reason.
    /// Cancel-safe: dropping it deregisters.
    pub async fn disconnected(&self) -> DisconnectReason {
        wait_conn(&self.conn).await
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
    limit: AtomicUsize,
    overflow: Mutex<OverflowPolicy>,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Request>,
    shutdown: bool,
}

impl QueueInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request, or says why it was refused (the request is dropped).
    pub(crate) fn push(&self, r: Request) -> Result<(), &'static str> {
        let mut st = self.lock();
        if st.shutdown {
            drop(st);
            drop(r);
            return Err("request queue is shut down");
        }
        if st.items.len() >= self.limit.load(Ordering::Relaxed) {
            drop(st);
            drop(r);
            return Err("request queue is full");
        }
        st.items.push_back(r);
        drop(st);
        self.notify.notify_one();
        Ok(())
    }

    pub(crate) fn overflow_policy(&self) -> OverflowPolicy {
        *self.overflow.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_shutdown(&self) -> bool {
        self.lock().shutdown
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
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.inner.lock();
                if st.shutdown {
                    return Err(ServerError::Aborted);
                }
                if let Some(r) = st.items.pop_front() {
                    let more = !st.items.is_empty();
                    drop(st);
                    if more {
                        // Another consumer may be waiting for the next one.
                        self.inner.notify.notify_one();
                    }
                    return Ok(r);
                }
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
        let mut st = self.inner.lock();
        if st.shutdown {
            return Err(ServerError::Aborted);
        }
        Ok(st.items.pop_front())
    }

    fn conn_for(&self, request_id: u64) -> Result<(Arc<Conn>, u32), ServerError> {
        let (conn_id, seq) = registry::split_request_id(request_id);
        if seq == 0 || !registry::issued(conn_id) {
            return Err(ServerError::ConnectionInvalid);
        }
        let conn = registry::get(conn_id).ok_or(ServerError::ConnectionInvalid)?;
        Ok((conn, seq))
    }

    /// Waits while the connection has more than the high-water mark queued.
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
        let (conn, seq) = self.conn_for(request_id)?;
        conn.send_response(seq, self.inner.id, response, flags)?;
        Self::backpressure(&conn).await;
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
        let (conn, seq) = self.conn_for(request_id)?;
        conn.send_body(seq, self.inner.id, data.into(), flags)?;
        Self::backpressure(&conn).await;
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
        let (conn, seq) = self.conn_for(request_id)?;
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
        let (conn, seq) = self.conn_for(request_id)?;
        let mut out = None;
        let n = poll_fn(|cx| {
            conn.poll_body(seq, cx, |chunks| match chunks.pop_front() {
                Some(b) => {
                    let n = b.len();
                    out = Some(b);
                    n
                }
                None => 0,
            })
        })
        .await?;
        Ok(if n == 0 { None } else { out })
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
            r.conn.abort(DisconnectReason::QueueShutdown, false);
        }
    }

    /// Shuts the queue down and releases it.
    pub fn close(self) {
        self.shutdown();
    }
}
