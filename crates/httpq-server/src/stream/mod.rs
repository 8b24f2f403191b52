//! An HTTP/2 stream as the application reaches it through a request id:
//! the response, body and file ranges sent on it (flow-controlled per
//! stream), its request body read from it, and its end. A client's
//! RST_STREAM ends only its stream: that request's disconnect.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use httpq_proto::h2::{self as engine, code};
use httpq_proto::server_conn::FileChunk;
use tokio::sync::Notify;

use crate::counters::Counters;
use crate::disconnect::{DisconnectReason, TimeoutKind};
use crate::record::{Current, Entry, LogHead, LogSender};
use crate::ServerError;
use httpq_proto::server_conn::Done;

mod send;
use httpq_proto::MethodKind;

/// Bytes a sender with more to come may have queued beyond what the
/// stream's window lets out before it waits (as the HTTP/1.1 write budget).
const SEND_BUDGET: usize = 64 * 1024;
/// Bytes of the connection's frames waiting to be written past which
/// senders wait too (the socket, not a window, is what is slow).
const OUT_BUDGET: usize = 1024 * 1024;
/// File ranges up to this size are read and queued in one go; longer ones
/// are read piece by piece as the stream's window opens.
const FILE_AT_ONCE: u64 = 256 * 1024;
const FILE_STEP: usize = 64 * 1024;

/// The streams of one HTTP/2 connection that the application holds (by
/// the sequence number in their request ids), and the connection's
/// protocol engine they send through.
pub(crate) struct H2Table {
    shared: Arc<Shared>,
    /// A response asked to close the connection (DISCONNECT): GOAWAY.
    pub goaway: AtomicBool,
    server_header: Option<Bytes>,
    /// The connection's runtime, for file pumps.
    handle: tokio::runtime::Handle,
    /// The last streams that ended under the application (reset, timed
    /// out), with why: a body read or send that comes after learns the
    /// reason rather than "invalid" (bounded: the oldest are forgotten).
    gone: Mutex<VecDeque<(u32, DisconnectReason)>>,
}

/// How many ended streams a table remembers the reason of.
const GONE: usize = 64;

/// What file pumps share with their table.
struct Shared {
    streams: Mutex<HashMap<u32, Arc<Stream>>>,
    /// The connection's sans-IO HTTP/2 engine: application sends encode
    /// their frames into it, the connection task feeds it what it reads
    /// and writes what it holds. Locked after a stream's state, never
    /// before.
    engine: Mutex<engine::Conn>,
    /// Streams whose response is complete while the client still sends
    /// body: read and dropped until the deadline (DrainEntityBody).
    draining: Mutex<Vec<(u32, Instant)>>,
    /// Output the connection task took from the engine and has not
    /// written yet.
    unwritten: AtomicUsize,
    /// Senders waiting for a stream's window (the connection task wakes
    /// them as windows open only while this is non-zero).
    held: AtomicUsize,
    /// An application began waiting for a request body, or a sender
    /// began waiting for a window, or a drain began: the connection task
    /// works out its deadlines again.
    rescan: AtomicBool,
    /// Wakes the connection task (to write, or to look again).
    wake: Box<dyn Fn() + Send + Sync>,
    counters: Arc<Counters>,
    /// Tells a draining session that an answer went out.
    answered: Box<dyn Fn() + Send + Sync>,
    /// The access log, the connection's id and its peer (for log lines).
    log: Option<LogSender>,
    conn_id: u64,
    peer: std::net::IpAddr,
}

impl Shared {
    /// Whether a sender on stream `sid` waits: its window holds back a
    /// budget's worth, or the connection's output is not being written.
    /// `eng`: the engine, locked by the caller.
    fn must_wait(&self, eng: &engine::Conn, sid: u32) -> bool {
        let Some(queued) = eng.queued(sid) else {
            return false;
        };
        queued >= SEND_BUDGET
            || eng.buffered() + self.unwritten.load(Ordering::Relaxed) >= OUT_BUDGET
    }

    /// A wait began: the connection task looks at the deadlines again.
    fn rescan_soon(&self) {
        self.rescan.store(true, Ordering::Release);
        (self.wake)();
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u32, Arc<Stream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn engine(&self) -> MutexGuard<'_, engine::Conn> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The response of `stream` is complete. Recorded (and its log line
    /// handed over) before the stream leaves the table: a shutdown that
    /// sees the table empty finds every line already sent.
    fn completed(&self, stream: &Stream) {
        let mut map = self.map();
        // Not counted when the connection's end took it first (abandoned).
        if !map.contains_key(&stream.seq) {
            return;
        }
        Counters::inc(&self.counters.responses_sent);
        let (status, body_bytes) = {
            let st = lock(&stream.state);
            (st.status, st.body_bytes)
        };
        let info = &stream.info;
        self.counters.metrics.record(&Done {
            seq: stream.seq,
            method: info.method,
            status,
            body_bytes,
            elapsed: info
                .started
                .map_or(std::time::Duration::ZERO, |t| t.elapsed()),
        });
        if let Some(log) = &self.log {
            log.send(
                Entry {
                    peer: self.peer,
                    head: info.log.lock().unwrap_or_else(|e| e.into_inner()).take(),
                    status,
                    body_bytes,
                    request_id: crate::ids::request_id(self.conn_id, stream.seq),
                    secs: crate::date::now_secs(),
                },
                &self.counters.access_log_dropped,
            );
        }
        map.remove(&stream.seq);
        drop(map);
        self.drain(stream);
        (self.answered)();
        // After the stream left the table: the task then finds the
        // connection as it is (quiet, or not) when it looks.
        (self.wake)();
    }

    /// The response is complete and the client may still be sending its
    /// body: the rest is read and dropped for up to DrainEntityBody (as
    /// http.sys drains an unread body), so the stream ends as the client
    /// ends it and what comes is still checked (a Content-Length the DATA
    /// does not match is still a PROTOCOL_ERROR), rather than a reset
    /// whose timing depends on when the application let go. Body already
    /// here and unread goes back to the windows now.
    fn drain(&self, stream: &Stream) {
        let unread: usize = {
            let mut st = lock(&stream.state);
            if st.recv_done {
                return;
            }
            st.recv_done = true;
            st.chunks.drain(..).map(|b| b.len()).sum()
        };
        let mut eng = self.engine();
        eng.release(stream.sid, unread);
        if eng.recv_open(stream.sid) {
            let limit = stream.info.drain_entity_body;
            if limit.is_zero() {
                eng.reset_when_sent(stream.sid, code::NO_ERROR);
            } else {
                drop(eng);
                let until = Instant::now() + limit;
                self.draining
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((stream.sid, until));
                self.rescan.store(true, Ordering::Release);
            }
        }
    }
}

/// One stream handed to the application.
pub(crate) struct Stream {
    pub seq: u32,
    /// The HTTP/2 stream id.
    pub sid: u32,
    /// The id of the queue its request went to.
    pub queue: u64,
    /// A HEAD request: the response carries no body.
    head_only: bool,
    /// What metrics, logs and disconnect records say of its request.
    pub info: StreamInfo,
    state: Mutex<StreamState>,
    /// Woken when the stream ends or its window opens for a held sender.
    pub changed: Notify,
}

/// A stream's request, as metrics, the access log and disconnect records need it.
#[derive(Default)]
pub(crate) struct StreamInfo {
    pub method: MethodKind,
    pub started: Option<std::time::Instant>,
    /// The request's target, copied into fixed room (a clone of the
    /// parsed `Uri` would allocate), for the state view and disconnect
    /// records.
    pub target: Current,
    /// Taken by the log line.
    pub log: Mutex<Option<Box<LogHead>>>,
    /// The EntityBody timeout of the request's URL group (zero: none).
    pub entity_body: std::time::Duration,
    /// The MinSendRate of the request's URL group, bytes/s (0: none).
    pub min_send_rate: u32,
    /// The DrainEntityBody of the request's URL group: how long the rest
    /// of a body is read (and dropped) after the response is complete.
    pub drain_entity_body: std::time::Duration,
}

impl StreamInfo {
    /// The request's path (no query).
    pub(crate) fn path(&self) -> Option<String> {
        self.target.path()
    }
}

#[derive(Default)]
struct StreamState {
    /// The status sent (0 until the response begins) and body bytes queued.
    status: u16,
    body_bytes: u64,
    /// Body bytes the application's Content-Length still promises.
    promised: Option<u64>,
    /// Since when the application has been waiting for more request body
    /// (EntityBody counts from here).
    body_wait: Option<std::time::Instant>,
    /// Since when a sender has been held by a closed window, the window
    /// not having opened since (MinSendRate counts from here).
    held_since: Option<std::time::Instant>,
    /// Bytes of the last send: what a wait after it lets out.
    last_send: u64,
    /// The response's HEADERS went out.
    began: bool,
    /// Request body taken from the connection, not yet read by the application.
    chunks: VecDeque<Bytes>,
    recv_done: bool,
    /// The application's task waiting for body.
    body_waker: Option<Waker>,
    ended: Option<DisconnectReason>,
    /// END_STREAM is queued: the response is complete.
    done: bool,
    /// A file pump runs: pieces sent meanwhile queue behind it.
    pump: Option<VecDeque<(Piece, bool)>>,
    /// The response carries no content (HEAD, 204, 304): body sent for it
    /// is dropped, as HTTP/1.1 does, while the stream stays open until the
    /// final send.
    no_body: bool,
}

enum Piece {
    Mem(Bytes),
    File(FileChunk),
}

fn lock(m: &Mutex<StreamState>) -> MutexGuard<'_, StreamState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The engine no longer has a stream the application still holds: it
/// ended before the connection task said so (a reset just read).
fn gone(st: &StreamState) -> ServerError {
    ServerError::Disconnected(
        st.ended
            .unwrap_or(DisconnectReason::StreamReset(code::CANCEL)),
    )
}

impl Stream {
    pub(crate) fn new(
        seq: u32,
        sid: u32,
        queue: u64,
        head_only: bool,
        has_body: bool,
        info: StreamInfo,
    ) -> Stream {
        Stream {
            seq,
            sid,
            queue,
            head_only,
            info,
            state: Mutex::new(StreamState {
                recv_done: !has_body,
                ..StreamState::default()
            }),
            changed: Notify::new(),
        }
    }

    /// Its response is complete, or it ended: the connection task need
    /// not keep it.
    pub(crate) fn is_over(&self) -> bool {
        let st = lock(&self.state);
        st.done || st.ended.is_some()
    }

    /// Why the stream ended, if it has.
    pub(crate) fn ended(&self) -> Option<DisconnectReason> {
        lock(&self.state).ended
    }

    /// Completes when the stream ends (reset, or its connection gone).
    pub(crate) async fn wait_ended(&self) -> DisconnectReason {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.ended() {
                return r;
            }
            notified.await;
        }
    }

    /// Request body read by the connection task: handed to a waiting
    /// reader. False when the stream no longer takes it.
    pub(crate) fn push_body(&self, data: Bytes, end: bool) -> bool {
        let mut st = lock(&self.state);
        if st.ended.is_some() || st.recv_done {
            return false;
        }
        if !data.is_empty() {
            st.chunks.push_back(data);
        }
        st.recv_done |= end;
        let waker = st.body_waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// The stream's next timeout, if a wait runs: EntityBody while the
    /// application waits for body, MinSendRate while a sender is held by
    /// a closed window (the bytes it may queue, at the minimum rate, and at
    /// least a second, as over HTTP/1.1).
    pub(crate) fn deadline(&self) -> Option<(std::time::Instant, TimeoutKind)> {
        let st = lock(&self.state);
        if st.ended.is_some() || st.done {
            return None;
        }
        // Body that came and is not read yet is not a stall: EntityBody
        // is the client's slowness, not the application's.
        let body = (!self.info.entity_body.is_zero() && !st.recv_done && st.chunks.is_empty())
            .then_some(st.body_wait)
            .flatten()
            .map(|t| (t + self.info.entity_body, TimeoutKind::EntityBody));
        let rate = u64::from(self.info.min_send_rate);
        let queued = st.last_send.max(SEND_BUDGET as u64);
        let send = st.held_since.filter(|_| rate > 0).map(|t| {
            let grace = std::time::Duration::from_secs(queued.div_ceil(rate.max(1)));
            (
                t + grace.max(std::time::Duration::from_secs(1)),
                TimeoutKind::MinSendRate,
            )
        });
        match (body, send) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Marks the stream ended (its connection went, it was reset, or it
    /// timed out); false if it had ended already or its response was
    /// complete first. Senders and readers waiting on it are woken.
    pub(crate) fn end(&self, reason: DisconnectReason) -> bool {
        let mut st = lock(&self.state);
        if st.ended.is_some() || st.done {
            return false;
        }
        st.ended = Some(reason);
        st.pump = None;
        let waker = st.body_waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
        self.changed.notify_waiters();
        true
    }

    /// Waits until the stream can take more (or has ended). Counted as
    /// held before the first look, so the connection task wakes this
    /// stream after any window update that could come in between.
    async fn wait_window(&self, shared: &Shared) {
        struct Unhold<'a>(&'a AtomicUsize);
        impl Drop for Unhold<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        shared.held.fetch_add(1, Ordering::SeqCst);
        let _unhold = Unhold(&shared.held);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = lock(&self.state);
                if st.ended.is_some() {
                    return;
                }
                if !shared.must_wait(&shared.engine(), self.sid) {
                    // Not held (any more): MinSendRate stops counting.
                    st.held_since = None;
                    return;
                }
                if st.held_since.is_none() && self.info.min_send_rate > 0 {
                    st.held_since = Some(std::time::Instant::now());
                    drop(st);
                    shared.rescan_soon();
                }
            }
            notified.await;
        }
    }
}

impl H2Table {
    pub(crate) fn new(
        engine: engine::Conn,
        counters: Arc<Counters>,
        server_header: Option<&[u8]>,
        handle: tokio::runtime::Handle,
        answered: Box<dyn Fn() + Send + Sync>,
        wake: Box<dyn Fn() + Send + Sync>,
        conn: (&Option<LogSender>, u64, std::net::IpAddr),
    ) -> H2Table {
        H2Table {
            shared: Arc::new(Shared {
                streams: Mutex::new(HashMap::new()),
                engine: Mutex::new(engine),
                draining: Mutex::new(Vec::new()),
                unwritten: AtomicUsize::new(0),
                held: AtomicUsize::new(0),
                rescan: AtomicBool::new(false),
                wake,
                counters,
                answered,
                log: conn.0.clone(),
                conn_id: conn.1,
                peer: conn.2,
            }),
            goaway: AtomicBool::new(false),
            gone: Mutex::new(VecDeque::new()),
            server_header: server_header.map(Bytes::copy_from_slice),
            handle,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<u32, Arc<Stream>>> {
        self.shared.map()
    }

    /// Output the connection task holds unwritten (senders wait while
    /// there is too much).
    pub(crate) fn set_unwritten(&self, n: usize) {
        self.shared.unwritten.store(n, Ordering::Relaxed);
    }

    /// The connection's protocol engine.
    pub(crate) fn engine(&self) -> MutexGuard<'_, engine::Conn> {
        self.shared.engine()
    }

    /// Whether a wait began (body, window or drain) since the last call.
    pub(crate) fn take_rescan(&self) -> bool {
        self.shared.rescan.swap(false, Ordering::AcqRel)
    }

    /// True while a sender waits for a stream's window.
    pub(crate) fn any_held(&self) -> bool {
        self.shared.held.load(Ordering::SeqCst) > 0
    }

    /// Drains past their DrainEntityBody: their streams are reset
    /// (NO_ERROR, the response being complete). Returns the earliest
    /// deadline left.
    pub(crate) fn end_drains(&self, now: Instant) -> Option<Instant> {
        let mut draining = self
            .shared
            .draining
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if draining.is_empty() {
            return None;
        }
        let mut eng = self.engine();
        draining.retain(|&(sid, until)| {
            if !eng.recv_open(sid) {
                return false;
            }
            if until <= now {
                eng.reset_when_sent(sid, code::NO_ERROR);
                return false;
            }
            true
        });
        draining.iter().map(|d| d.1).min()
    }

    pub(crate) fn insert(&self, stream: Arc<Stream>) {
        self.map().insert(stream.seq, stream);
    }

    /// The newest stream the application holds: its sequence number,
    /// method and path (the connection's current request).
    pub(crate) fn current(&self) -> Option<(u32, MethodKind, String)> {
        let map = self.map();
        let s = map
            .values()
            .filter(|s| s.queue != 0)
            .max_by_key(|s| s.seq)?;
        Some((s.seq, s.info.method, s.info.path()?))
    }

    /// The queue of every stream the application holds unanswered.
    pub(crate) fn for_each_in_flight(&self, mut f: impl FnMut(u64)) {
        for s in self.map().values() {
            if s.queue != 0 {
                f(s.queue);
            }
        }
    }

    /// Requests the application holds unanswered.
    pub(crate) fn in_flight(&self) -> usize {
        self.map().len()
    }

    pub(crate) fn get(&self, seq: u32) -> Option<Arc<Stream>> {
        self.map().get(&seq).cloned()
    }

    /// The stream of `seq` as routed to queue `queue` (another queue's
    /// request, or an answered one, is not valid).
    fn of(&self, seq: u32, queue: u64) -> Result<Arc<Stream>, ServerError> {
        match self.get(seq) {
            Some(s) if s.queue == queue || queue == 0 => Ok(s),
            Some(_) => Err(ServerError::ConnectionInvalid),
            None => Err(self.missing(seq)),
        }
    }

    /// Why `seq` is not in the table: its end, if remembered.
    fn missing(&self, seq: u32) -> ServerError {
        let gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        match gone.iter().find(|(s, _)| *s == seq) {
            Some((_, r)) => ServerError::Disconnected(*r),
            None => ServerError::ConnectionInvalid,
        }
    }

    /// Forgets `seq`, which ended under the application for `reason`;
    /// `None` if it was no longer held.
    pub(crate) fn forget(&self, seq: u32, reason: DisconnectReason) -> Option<Arc<Stream>> {
        let s = self.remove(seq)?;
        let mut gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        if gone.len() == GONE {
            gone.pop_front();
        }
        gone.push_back((seq, reason));
        Some(s)
    }

    /// Forgets `seq` (answered, reset, or its connection gone); a
    /// draining session learns a request left.
    pub(crate) fn remove(&self, seq: u32) -> Option<Arc<Stream>> {
        let s = self.map().remove(&seq)?;
        (self.shared.answered)();
        Some(s)
    }

    /// Every stream still held, taken out (the connection ends).
    pub(crate) fn take_all(&self) -> Vec<Arc<Stream>> {
        self.map().drain().map(|(_, s)| s).collect()
    }

    fn completed(&self, stream: &Stream) {
        self.shared.completed(stream);
    }

    /// Polls for stream `seq`'s request body: `sink` takes buffered pieces.
    pub(crate) fn poll_body(
        &self,
        seq: u32,
        cx: &mut Context<'_>,
        sink: impl FnOnce(&mut VecDeque<Bytes>) -> usize,
    ) -> Poll<Result<usize, ServerError>> {
        let Some(stream) = self.get(seq) else {
            return Poll::Ready(Err(self.missing(seq)));
        };
        let mut st = lock(&stream.state);
        let poll = if !st.chunks.is_empty() {
            Poll::Ready(Ok(sink(&mut st.chunks)))
        } else if st.recv_done {
            Poll::Ready(Ok(0))
        } else if let Some(r) = st.ended {
            Poll::Ready(Err(ServerError::Disconnected(r)))
        } else {
            st.body_waker = Some(cx.waker().clone());
            Poll::Pending
        };
        let began = poll.is_pending() && st.body_wait.is_none();
        if poll.is_pending() {
            st.body_wait.get_or_insert_with(std::time::Instant::now);
        } else {
            st.body_wait = None;
        }
        drop(st);
        if let Poll::Ready(Ok(n)) = poll {
            if n > 0 {
                // The windows reopen as the application takes the body.
                let mut eng = self.engine();
                eng.release(stream.sid, n);
                let write = eng.has_output();
                drop(eng);
                if write {
                    (self.shared.wake)();
                }
            }
        }
        if began && !stream.info.entity_body.is_zero() {
            // The connection task arms the stream's EntityBody timer.
            self.shared.rescan_soon();
        }
        poll
    }
}
