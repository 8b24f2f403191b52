//! One client connection: the task that reads and parses requests, routes
//! them to queues, writes responses strictly in request order, enforces the
//! timeouts, and keeps watching the socket so a disconnect is seen at once —
//! even while the application holds a request and does nothing.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use httpq_proto::{
    encode_status_line, BodyDecoder, ChunkHeader, RequestParser, Version, CHUNK_END,
};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};

use crate::counters::Counters;
use crate::disconnect::{recent, Completion, CompletionQueue, DisconnectReason, TimeoutKind};
use crate::outbuf::Outbuf;
use crate::properties::{HalfClosePolicy, OverflowPolicy, Timeouts};
use crate::registry;
use crate::request_queue::QueueInner;
use crate::request_queue::Request;
use crate::response::{Framing, Response, SendFlags};
use crate::session::{RouteCache, SessionInner};
use crate::ServerError;

/// Request-body bytes buffered for the application before reading pauses.
const PIPE_CAP: usize = 64 * 1024;
/// Largest output the application's send call writes itself; more is left
/// to the connection task.
const DIRECT_WRITE_MAX: usize = 256 * 1024;
/// Response bytes queued on a connection before senders wait for the socket.
pub(crate) const SEND_HIGH_WATER: usize = 1024 * 1024;

/// The part of a connection the application side reaches through ids.
pub(crate) struct Conn {
    pub id: u64,
    /// Pipelining depth (a copy of the session property, read per request).
    pub max_pipelined: usize,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub session: Arc<SessionInner>,
    pub state: Mutex<ConnState>,
    /// Wakes the connection task: output queued, body wanted, abort asked.
    pub wake: TaskWake,
    /// Disconnect waiters (woken all at once).
    pub gone: Notify,
    /// Senders waiting for queued output to drain.
    pub drained: Notify,
    pub connected: AtomicBool,
    /// A copy of `ConnState::closing`, for the reader to look at without the lock.
    pub closing: AtomicBool,
}

#[derive(Default)]
pub(crate) struct ConnState {
    /// Requests not yet fully answered, in order; seqs are consecutive.
    pub slots: VecDeque<Slot>,
    /// How many of them are still `Phase::Waiting` (so a send need not scan).
    pub waiting: usize,
    /// Bytes ready to go out, in wire order.
    pub out: Outbuf,
    /// Bytes parked in slots behind unfinished earlier responses (the sum
    /// of their `pending`), so a send need not walk the slots to know.
    pub parked: usize,
    pub reason: Option<DisconnectReason>,
    /// Posted disconnect waits: (completion queue, key, the queue they were posted through).
    pub posted: Vec<(CompletionQueue, u64, u64)>,
    /// A response asked to close the connection; later ones are refused.
    pub closing: bool,
    /// Asked from outside: end the connection (`true`: with a reset).
    pub abort: Option<(DisconnectReason, bool)>,
    /// The socket, for writes from the application's send call when it is
    /// free (as http.sys sends from the caller). Taken away when the
    /// connection ends, so the descriptor closes even while the application
    /// still holds requests of it.
    pub io: Option<Arc<TcpStream>>,
    /// The connection task is in the middle of a write; nobody else writes.
    pub writer_busy: bool,
    /// When a response byte last went out (for the idle timer).
    pub last_write: Option<Instant>,
    /// The client half-closed (FIN under HalfClosePolicy::Allow).
    pub peer_fin: bool,
    /// Why the server is closing, when it closes for a reason waiters
    /// should see instead of `ServerClosed` (a RequestQueue timeout, a
    /// protocol error); the first one set wins.
    pub close_reason: Option<DisconnectReason>,
    /// The request whose body broke, and how: its reader still learns
    /// why after the server has answered the error itself.
    pub failed_body: Option<(u32, httpq_proto::Error)>,
}

pub(crate) struct Slot {
    pub seq: u32,
    pub version: Version,
    pub head_request: bool,
    pub keep_alive: bool,
    /// The queue the request went to; 0 for answers the server makes itself.
    pub queue: u64,
    pub phase: Phase,
    /// Bytes of this response waiting for earlier responses to finish.
    /// Boxed: few responses are ever parked, and a slot stays one cache
    /// line instead of two (pipelined batches keep hundreds in flight).
    pub pending: Option<Box<Outbuf>>,
    pub close_after: bool,
    /// Boxed: most requests have no body, and slots move in and out of the deque.
    pub body: Option<Box<BodyPipe>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Waiting,
    Sending(Framing),
    Complete,
}

/// Request body on its way from the socket to the application.
#[derive(Default)]
pub(crate) struct BodyPipe {
    pub chunks: VecDeque<Bytes>,
    pub buffered: usize,
    pub done: bool,
    pub error: Option<httpq_proto::Error>,
    pub waker: Option<Waker>,
    /// The application has asked for body (so 100 Continue may go out).
    pub requested: bool,
    pub expect_continue: bool,
    pub continue_sent: bool,
}

impl BodyPipe {
    /// The body broke: its reader gets `e` once the buffered bytes are read.
    fn fail(&mut self, e: httpq_proto::Error) {
        self.error = Some(e);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Wakes the one task that owns a connection: a flag and that task's waker.
/// tokio's `Notify` serves any number of waiters, and its waiter list cost
/// about ten atomic operations per wait (registered, then removed on every
/// task poll, callgrind); this costs two or three.
#[derive(Default)]
pub(crate) struct TaskWake {
    /// A wake not yet seen by the task (kept like `Notify`'s permit):
    /// 0, [`WAKE_OUTPUT`] or [`WAKE_ANY`].
    woken: AtomicU8,
    waker: atomic_waker::AtomicWaker,
}

/// Woken only because output was queued: withdrawn if the sender itself
/// writes all of it before the task runs.
const WAKE_OUTPUT: u8 = 1;
/// Woken for anything else (abort, body wanted, closing, errors).
const WAKE_ANY: u8 = 2;

impl TaskWake {
    pub(crate) fn wake(&self) {
        self.woken.store(WAKE_ANY, Ordering::Release);
        self.waker.wake();
    }

    /// Wakes the task to write queued output. Never downgrades a pending
    /// wake for anything else (that one could then be withdrawn).
    fn wake_for_output(&self) {
        let _ = self
            .woken
            .compare_exchange(0, WAKE_OUTPUT, Ordering::AcqRel, Ordering::Acquire);
        self.waker.wake();
    }

    /// The output a [`wake_for_output`](Self::wake_for_output) was for has
    /// been written by the sender: the task, already scheduled, then finds
    /// no wake and goes back to sleep at once instead of making a pass
    /// (one per pipelined batch: the first answer wakes it, the last
    /// writes the whole batch).
    fn withdraw_output(&self) {
        if self.woken.load(Ordering::Acquire) == WAKE_OUTPUT {
            let _ =
                self.woken
                    .compare_exchange(WAKE_OUTPUT, 0, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Completes at the next wake, or at once if one came since the last wait.
    /// Only the owning task waits (one waker is kept).
    pub(crate) fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            // Cheap look first: most polls find no wake pending.
            if self.woken.load(Ordering::Acquire) != 0 && self.woken.swap(0, Ordering::AcqRel) != 0
            {
                return Poll::Ready(());
            }
            // Registered before the second look: a wake between the two is
            // either seen by the look (the register synchronises with a
            // finished wake) or wakes the new waker.
            self.waker.register(cx.waker());
            if self.woken.load(Ordering::Acquire) != 0 && self.woken.swap(0, Ordering::AcqRel) != 0
            {
                return Poll::Ready(());
            }
            Poll::Pending
        })
    }
}

impl ConnState {
    /// Adds the slot of a request just read (waiting for its answer).
    pub(crate) fn push_slot(&mut self, slot: Slot) {
        debug_assert_eq!(slot.phase, Phase::Waiting);
        self.waiting += 1;
        self.slots.push_back(slot);
    }

    /// Drops the slots of `seq` and after, none of them answered yet
    /// (requests refused behind one whose answer closes the connection).
    pub(crate) fn forget_slots_from(&mut self, seq: u32) {
        if let Some(i) = self.slot_index(seq) {
            debug_assert!(self.slots.iter().skip(i).all(|s| s.phase == Phase::Waiting));
            self.waiting -= self.slots.len() - i;
            self.slots.truncate(i);
        }
    }

    pub(crate) fn slot_index(&self, seq: u32) -> Option<usize> {
        let front = self.slots.front()?.seq;
        let i = seq.checked_sub(front)? as usize;
        (i < self.slots.len()).then_some(i)
    }

    /// A slot may write straight to `out` when every earlier one is complete.
    /// Checked on the one before it alone: every complete response wrote at
    /// least a status line, so a complete slot with nothing parked has had
    /// its bytes released into `out`, which happens only once all slots
    /// before it were complete (and completion is never undone).
    fn is_direct(&self, index: usize) -> bool {
        let direct = index == 0 || {
            let prev = &self.slots[index - 1];
            prev.phase == Phase::Complete && prev.pending.as_ref().is_none_or(|p| p.is_empty())
        };
        debug_assert_eq!(
            direct,
            self.slots
                .iter()
                .take(index)
                .all(|s| s.phase == Phase::Complete)
        );
        direct
    }

    /// Appends bytes for slot `index`, straight out or parked behind earlier responses.
    fn emit<R>(&mut self, index: usize, f: impl FnOnce(&mut Outbuf) -> R) -> R {
        if self.is_direct(index) {
            f(&mut self.out)
        } else {
            let pending = self.slots[index].pending.get_or_insert_default();
            let before = pending.len();
            let r = f(pending);
            // An encoder that fails truncates back to its mark, never below.
            self.parked += pending.len() - before;
            r
        }
    }

    /// After slot `index` completed: release the parked bytes of the ones behind it.
    fn release_after(&mut self, index: usize) {
        if !self.is_direct(index) {
            return;
        }
        let mut j = index + 1;
        while j < self.slots.len() {
            if let Some(mut pending) = self.slots[j].pending.take() {
                self.parked -= pending.len();
                self.out.append(&mut pending);
            }
            if self.slots[j].phase != Phase::Complete {
                break;
            }
            j += 1;
        }
    }

    /// Queued output not yet written, including parked bytes.
    pub(crate) fn queued_bytes(&self) -> usize {
        debug_assert_eq!(
            self.parked,
            self.slots
                .iter()
                .map(|s| s.pending.as_ref().map_or(0, |p| p.len()))
                .sum::<usize>()
        );
        self.out.len() + self.parked
    }
}

impl Conn {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Asks the connection task to end the connection.
    pub(crate) fn abort(&self, reason: DisconnectReason, reset: bool) {
        let mut st = self.lock();
        if st.reason.is_none() && st.abort.is_none() {
            st.abort = Some((reason, reset));
        }
        drop(st);
        self.wake.wake();
    }

    /// Writes the head (and first body bytes) of the response to request `seq`.
    pub(crate) fn send_response(
        &self,
        seq: u32,
        queue: u64,
        resp: &mut Response,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        let server_header = self.session.server_header.as_ref();
        let mut st = self.lock();
        if st.reason.is_some() {
            return Err(ServerError::ConnectionInvalid);
        }
        let out_was_empty = st.out.is_empty();
        let index = st.slot_index(seq).ok_or(ServerError::ConnectionInvalid)?;
        {
            let slot = &st.slots[index];
            if slot.queue != queue || slot.phase != Phase::Waiting {
                return Err(ServerError::ConnectionInvalid);
            }
        }
        if st.closing && !st.slots.iter().take(index).all(|s| !s.close_after) {
            return Err(ServerError::ConnectionInvalid);
        }
        let status = resp.status.as_u16();
        if status < 200 {
            return Err(ServerError::InvalidResponse(
                "interim (1xx) responses are sent by the server",
            ));
        }
        let more = flags.contains(SendFlags::MORE_DATA);
        let slot = &st.slots[index];
        let (version, head_request) = (slot.version, slot.head_request);
        // One pass over the application's fields instead of a hashed
        // lookup per field the server cares about.
        let mut app_length = None;
        let mut asks_close = false;
        for (k, v) in resp.headers.iter() {
            if k == http::header::CONTENT_LENGTH {
                let n = parse_length(v)
                    .ok_or(ServerError::InvalidResponse("invalid Content-Length"))?;
                if app_length.is_some_and(|m| m != n) {
                    return Err(ServerError::InvalidResponse("conflicting Content-Length"));
                }
                app_length = Some(n);
            } else if k == http::header::CONNECTION {
                asks_close |= v.as_bytes().eq_ignore_ascii_case(b"close");
            }
        }
        let no_body = head_request || status == 204 || status == 304;
        let framing = if no_body {
            Framing::NoBody
        } else if let Some(n) = app_length {
            if (more && resp.body.len() as u64 > n) || (!more && resp.body.len() as u64 != n) {
                return Err(ServerError::InvalidResponse(
                    "body length differs from Content-Length",
                ));
            }
            Framing::Length(n - resp.body.len() as u64)
        } else if more {
            if version == Version::Http11 {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else {
            Framing::Length(0)
        };
        // A client still waiting for 100 Continue will never send the body
        // the connection would need to drain: this answer is the last.
        let continue_unsent = slot
            .body
            .as_ref()
            .is_some_and(|p| p.expect_continue && !p.continue_sent && !p.done);
        let wants_close = flags.contains(SendFlags::DISCONNECT)
            || !slot.keep_alive
            || framing == Framing::Close
            || asks_close
            || continue_unsent;

        // Framing fields the server owns.
        let mut len_buf = itoa::Buffer::new();
        let length_value: Option<&str> = match (framing, app_length) {
            (_, Some(_)) => None, // the application's own header goes out as-is
            (Framing::NoBody, None) if status == 204 || status == 304 => None,
            (Framing::NoBody, None) if more => None,
            (Framing::NoBody, None) | (Framing::Length(_), None) => {
                Some(len_buf.format(resp.body.len()))
            }
            _ => None,
        };
        let reason = resp
            .reason
            .as_deref()
            .or_else(|| resp.status.canonical_reason())
            .unwrap_or("");
        let body = if no_body {
            Bytes::new()
        } else {
            std::mem::take(&mut resp.body)
        };
        let done = !more;
        let headers = &resp.headers;
        // Encoded straight into the connection's output buffer; on error the
        // encoder truncates what it wrote, so nothing half-made goes out.
        let result = st.emit(index, |out| {
            let mark = out.len();
            let canonical = resp.reason.is_none();
            let encoded = out.encode(|buf| {
                crate::date::with_fixed_lines(server_header, |fields, ok_11| {
                    if status == 200 && canonical && version == Version::Http11 {
                        buf.extend_from_slice(ok_11);
                    } else {
                        encode_status_line(buf, version, status, reason)?;
                        buf.extend_from_slice(fields);
                    }
                    Ok::<(), httpq_proto::Error>(())
                })?;
                // Fields go in without re-validation: ours are made here, and
                // an http::HeaderMap cannot hold a byte that would split a
                // response (its names are tokens, its values have no CR, LF
                // or NUL).
                let mut field = |name: &[u8], value: &[u8]| {
                    buf.reserve(name.len() + value.len() + 4);
                    buf.extend_from_slice(name);
                    buf.extend_from_slice(b": ");
                    buf.extend_from_slice(value);
                    buf.extend_from_slice(b"\r\n");
                };
                if let Some(v) = length_value {
                    field(b"Content-Length", v.as_bytes());
                }
                if framing == Framing::Chunked {
                    field(b"Transfer-Encoding", b"chunked");
                }
                if wants_close {
                    field(b"Connection", b"close");
                } else if version == Version::Http10 {
                    field(b"Connection", b"keep-alive");
                }
                for (k, v) in headers.iter().filter(|(k, _)| !server_owned(k)) {
                    field(k.as_str().as_bytes(), v.as_bytes());
                }
                buf.extend_from_slice(b"\r\n");
                Ok::<(), httpq_proto::Error>(())
            });
            if encoded.is_err() {
                out.truncate_to(mark);
                return Err(ServerError::InvalidResponse(
                    "invalid status or reason phrase",
                ));
            }
            debug_assert!(out.len() > mark);
            if framing == Framing::Chunked && !body.is_empty() {
                out.put_slice(ChunkHeader::new(body.len() as u64).as_bytes());
                out.put_bytes(body);
                out.put_slice(CHUNK_END);
            } else if !body.is_empty() {
                out.put_bytes(body);
            }
            Ok(())
        });
        result?;
        let slot = &mut st.slots[index];
        slot.close_after |= wants_close;
        if wants_close {
            st.closing = true;
            self.closing.store(true, Ordering::Release);
        }
        st.waiting -= 1;
        if done {
            complete(&mut st, index, framing);
        } else {
            st.slots[index].phase = Phase::Sending(framing);
        }
        Ok(self.after_send(st, out_was_empty))
    }

    /// The server answers request `seq` itself (routing failure, overload,
    /// queue timeout) with `status` and a one-line reason.
    pub(crate) fn server_answer(&self, seq: u32, status: u16, why: &str, keep: bool) {
        let mut resp = Response::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(format!("{why}\n"));
        let flags = if keep {
            SendFlags::NONE
        } else {
            SendFlags::DISCONNECT
        };
        let queue = {
            let st = self.lock();
            match st.slot_index(seq) {
                Some(i) => st.slots[i].queue,
                None => return,
            }
        };
        let _ = self.send_response(seq, queue, &mut resp, flags);
    }

    /// Writes more body of the response to request `seq`.
    pub(crate) fn send_body(
        &self,
        seq: u32,
        queue: u64,
        data: Bytes,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        let mut st = self.lock();
        if st.reason.is_some() {
            return Err(ServerError::ConnectionInvalid);
        }
        let out_was_empty = st.out.is_empty();
        let index = st.slot_index(seq).ok_or(ServerError::ConnectionInvalid)?;
        let slot = &mut st.slots[index];
        if slot.queue != queue {
            return Err(ServerError::ConnectionInvalid);
        }
        let Phase::Sending(framing) = slot.phase else {
            return Err(if slot.phase == Phase::Waiting {
                ServerError::InvalidResponse("send_body before send_response")
            } else {
                ServerError::ConnectionInvalid
            });
        };
        let more = flags.contains(SendFlags::MORE_DATA);
        let framing = match framing {
            Framing::Length(rest) => {
                let n = data.len() as u64;
                if n > rest || (!more && n != rest) {
                    return Err(ServerError::InvalidResponse(
                        "body length differs from Content-Length",
                    ));
                }
                Framing::Length(rest - n)
            }
            f => f,
        };
        if flags.contains(SendFlags::DISCONNECT) {
            slot.close_after = true;
            st.closing = true;
            self.closing.store(true, Ordering::Release);
        }
        st.emit(index, |out| match framing {
            Framing::NoBody => {}
            Framing::Chunked => {
                if !data.is_empty() {
                    out.put_slice(ChunkHeader::new(data.len() as u64).as_bytes());
                    out.put_bytes(data);
                    out.put_slice(CHUNK_END);
                }
            }
            _ => out.put_bytes(data),
        });
        if more {
            st.slots[index].phase = Phase::Sending(framing);
        } else {
            complete(&mut st, index, framing);
        }
        Ok(self.after_send(st, out_was_empty))
    }

    /// After a send: write at once from the caller if the socket is free and
    /// no pipelined request is still waiting for its answer (those are
    /// batched into one write when the last is answered); wake the
    /// connection task only when it has something to do.
    /// Returns true when the connection has more than the high-water mark
    /// queued, so the sender should wait for it to drain.
    ///
    /// `out_was_empty`: `out` held nothing before this send. The task takes
    /// all of `out` whenever it flushes, so bytes already there have a wake
    /// (or a flush) coming; only the send that makes `out` non-empty needs
    /// to wake it — one wake per pipelined batch, not one per response.
    fn after_send(&self, mut st: MutexGuard<'_, ConnState>, out_was_empty: bool) -> bool {
        debug_assert_eq!(
            st.waiting,
            st.slots
                .iter()
                .filter(|s| s.phase == Phase::Waiting)
                .count()
        );
        let waiting = st.waiting > 0;
        if st.writer_busy || waiting || st.reason.is_some() || st.out.len() > DIRECT_WRITE_MAX {
            let over = st.queued_bytes() >= SEND_HIGH_WATER;
            let ended = st.reason.is_some();
            let output = out_was_empty && !st.out.is_empty();
            drop(st);
            if ended {
                self.wake.wake();
            } else if output {
                self.wake.wake_for_output();
            }
            return over;
        }
        let st_ref = &mut *st;
        let Some(io) = st_ref.io.as_ref() else {
            let over = st.queued_bytes() >= SEND_HIGH_WATER;
            drop(st);
            self.wake.wake();
            return over;
        };
        match st_ref.out.write_to(io) {
            Ok(n) => Counters::add(&self.session.counters.bytes_sent, n as u64),
            Err(_) => {
                // The task meets the same error on its own write and ends
                // the connection with the right reason.
                drop(st);
                self.wake.wake();
                return false;
            }
        }
        st.last_write = Some(Instant::now());
        let mut need_task =
            !st.out.is_empty() || st.slots.len() >= self.max_pipelined || st.peer_fin;
        let mut sent = 0;
        while let Some(front) = st.slots.front() {
            if front.phase != Phase::Complete {
                break;
            }
            if front.close_after || front.body.as_ref().is_some_and(|p| !p.done) {
                // Closing, or draining an unread body: the task's work.
                need_task = true;
                break;
            }
            st.slots.pop_front();
            sent += 1;
        }
        if sent > 0 {
            Counters::add(&self.session.counters.responses_sent, sent);
        }
        let over = st.queued_bytes() >= SEND_HIGH_WATER;
        drop(st);
        if need_task {
            self.wake.wake();
        } else {
            // Everything queued is out: an earlier answer's wake has no work left.
            self.wake.withdraw_output();
        }
        over
    }

    /// Polls for request body bytes of request `seq` into `buf`.
    pub(crate) fn poll_body(
        &self,
        seq: u32,
        cx: &mut std::task::Context<'_>,
        mut sink: impl FnMut(&mut VecDeque<Bytes>) -> usize,
    ) -> Poll<Result<usize, ServerError>> {
        let mut st = self.lock();
        let Some(index) = st.slot_index(seq) else {
            if let Some((failed, e)) = st.failed_body {
                if failed == seq {
                    return Poll::Ready(Err(ServerError::Body(e)));
                }
            }
            // Answered: whatever body there was is gone.
            return Poll::Ready(Err(ServerError::ConnectionInvalid));
        };
        let reason = st.reason;
        let direct = st.is_direct(index);
        let slot = &mut st.slots[index];
        let waiting = slot.phase == Phase::Waiting;
        let Some(pipe) = slot.body.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        if !pipe.chunks.is_empty() {
            let was_full = pipe.buffered >= PIPE_CAP;
            let n = sink(&mut pipe.chunks);
            pipe.buffered -= n;
            if was_full && pipe.buffered < PIPE_CAP {
                drop(st);
                self.wake.wake();
            }
            return Poll::Ready(Ok(n));
        }
        if let Some(e) = pipe.error {
            return Poll::Ready(Err(ServerError::Body(e)));
        }
        if pipe.done {
            return Poll::Ready(Ok(0));
        }
        if let Some(r) = reason {
            return Poll::Ready(Err(ServerError::Disconnected(r)));
        }
        pipe.waker = Some(cx.waker().clone());
        pipe.requested = true;
        if pipe.expect_continue && !pipe.continue_sent && waiting {
            pipe.continue_sent = true;
            let line = b"HTTP/1.1 100 Continue\r\n\r\n";
            if direct {
                st.out.put_slice(line);
            } else {
                st.slots[index]
                    .pending
                    .get_or_insert_default()
                    .put_slice(line);
                st.parked += line.len();
            }
        }
        drop(st);
        // Always wake the task: it arms the EntityBody timer only while the
        // application waits on an empty pipe, and it may last have looked
        // while the pipe still held bytes (then no timer would ever fire).
        self.wake.wake();
        Poll::Pending
    }
}

impl Conn {
    /// The next buffered piece of request `seq`'s body, as it arrived (no
    /// copy); `None` at the end. The pull behind both the chunk read and
    /// the body stream.
    pub(crate) fn poll_body_chunk(
        &self,
        seq: u32,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<Option<Bytes>, ServerError>> {
        let mut out = None;
        let r = self.poll_body(seq, cx, |chunks| match chunks.pop_front() {
            Some(b) => {
                let n = b.len();
                out = Some(b);
                n
            }
            None => 0,
        });
        r.map_ok(|n| if n == 0 { None } else { out })
    }
}

/// The response to slot `index` is complete.
fn complete(st: &mut ConnState, index: usize, framing: Framing) {
    if framing == Framing::Chunked {
        st.emit(index, |out| out.put_slice(b"0\r\n\r\n"));
    }
    st.slots[index].phase = Phase::Complete;
    st.release_after(index);
}

/// Fields the server writes itself; the application's copies are dropped.
fn server_owned(name: &http::HeaderName) -> bool {
    name == http::header::DATE
        || name == http::header::TRANSFER_ENCODING
        || name == http::header::CONNECTION
        || name == http::header::SERVER
}

fn parse_length(v: &HeaderValue) -> Option<u64> {
    let b = v.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The body being read off the socket right now.
struct Reader {
    seq: u32,
    dec: BodyDecoder,
    /// EntityBody and DrainEntityBody of the request's URL group.
    entity_body: Duration,
    drain_entity_body: Duration,
    /// The response went out first; the rest is read and discarded.
    draining: Option<Instant>,
    last_progress: Instant,
}

/// State owned by the connection task alone.
struct Task {
    stream: Arc<TcpStream>,
    conn: Arc<Conn>,
    rbuf: BytesMut,
    parser: RequestParser,
    /// The request the next head is parsed into, in place.
    next: Option<Request>,
    /// The last routing decision, reused while host and path repeat.
    routes: RouteCache,
    /// Slots of requests parsed since the last hand-over (see `hand_over`).
    new_slots: Vec<Slot>,
    /// Requests parsed since the last hand-over, all for `batch_queue`.
    batch: Vec<Request>,
    batch_queue: Option<Arc<QueueInner>>,
    /// Requests the queue refused at a hand-over (empty in between).
    refused: Vec<(Request, &'static str)>,
    /// Requests parsed but not yet counted in `requests_received`.
    received: u64,
    /// How many more heads may be parsed before the pipeline limit and the
    /// closing flag must be looked at again (under the connection's lock).
    room: usize,
    reading: Option<Reader>,
    next_seq: u32,
    /// The client sent FIN (half-close allowed by policy).
    fin: bool,
    /// No more requests are read (error sent, close requested, FIN).
    stop_reading: bool,
    /// Reading paused with the read buffer full (the application is slow
    /// to take a body), and the socket's readiness cleared: once there is
    /// room, read at once — no new readiness event may ever come, since
    /// the client is blocked on a full window.
    read_paused: bool,
    /// The runtime is current-thread (see the short-read case of `on_readable`).
    single_thread: bool,
    head_started: Option<Instant>,
    last_activity: Instant,
    writes: Vec<Bytes>,
    /// The output copy buffer, swapped in for writing and swapped back empty.
    wbuf: BytesMut,
    /// The session's timeouts, which a URL group's fall back to.
    base: Timeouts,
    /// The timeouts in force for the connection: the session's until a
    /// request is routed, then those of the last request's URL group (as
    /// http.sys applies a group's HeaderWait and IdleConnection only after
    /// the first request is routed to it; MinSendRate alike, to its answers).
    timeouts: Timeouts,
    scheme: &'static str,
}

/// Runs a connection to its end and reports why it ended.
pub(crate) async fn run(stream: TcpStream, conn: Arc<Conn>, _permit: OwnedSemaphorePermit) {
    let stream = Arc::new(stream);
    conn.lock().io = Some(stream.clone());
    let session = conn.session.clone();
    let props = session.properties();
    let mut task = Task {
        stream,
        conn: conn.clone(),
        rbuf: BytesMut::with_capacity(8 * 1024),
        parser: RequestParser::new(props.limits),
        next: None,
        routes: RouteCache::default(),
        new_slots: Vec::with_capacity(16),
        batch: Vec::with_capacity(16),
        batch_queue: None,
        refused: Vec::new(),
        received: 0,
        room: 0,
        reading: None,
        next_seq: 1,
        fin: false,
        stop_reading: false,
        read_paused: false,
        single_thread: tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread,
        head_started: None,
        last_activity: Instant::now(),
        writes: Vec::with_capacity(16),
        wbuf: BytesMut::with_capacity(16 * 1024),
        base: props.timeouts.normalized(),
        timeouts: props.timeouts.normalized(),
        scheme: "http",
    };
    let mut sleep: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(far_future()));
    let (reason, reset) = task.serve(&mut sleep).await;
    task.finish(reason, reset);
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// What the task's loop reads of the shared state, in one lock round-trip.
struct Seen {
    /// A response asked for the connection to close and has been written.
    close: bool,
    abort: Option<(DisconnectReason, bool)>,
    slots_empty: bool,
    /// Another request may be parsed (not closing, pipeline not full).
    room_free: bool,
    last_write: Option<Instant>,
}

enum Event {
    Woken,
    Readable(io::Result<tokio::io::Ready>),
    Timer,
}

impl Task {
    fn counters(&self) -> &Counters {
        &self.conn.session.counters
    }

    async fn serve(&mut self, sleep: &mut Pin<Box<Sleep>>) -> (DisconnectReason, bool) {
        let mut armed: Option<Instant> = None;
        loop {
            if let Some(end) = self.process_input() {
                return end;
            }
            if self.read_paused
                && !self.fin
                && !self.stop_reading
                && self.rbuf.len() < self.read_cap()
            {
                self.read_paused = false;
                if let Some(end) = self.resume_read() {
                    return end;
                }
                continue;
            }
            let seen = match self.flush().await {
                Ok(seen) if seen.close => return (self.end_reason(), false),
                Ok(seen) => seen,
                Err(reason) => return (reason, false),
            };
            if let Some(abort) = seen.abort {
                return abort;
            }
            if self.fin && seen.slots_empty && (self.rbuf.is_empty() || self.stop_reading) {
                return (DisconnectReason::ClientClosed, false);
            }
            if self.room == 0
                && seen.room_free
                && !self.rbuf.is_empty()
                && self.reading.is_none()
                && !self.stop_reading
            {
                // Parsing stopped at a full pipeline, and this pass's flush
                // retired answered requests: no sender will wake the task
                // for that room (a sender that writes an answer itself wakes
                // it only while the pipeline is full), so parse again now.
                continue;
            }
            let (deadline, _) = self.deadline_with(&seen);
            // The timer is re-armed only when a deadline comes *earlier*;
            // a later one (the idle clock moving on with every request) lets
            // the armed timer fire early and be re-checked — far cheaper
            // than resetting a timer on every request.
            if let Some(d) = deadline {
                if armed.is_none_or(|a| d < a) {
                    sleep.as_mut().reset(d);
                    armed = Some(d);
                }
            }
            // After a FIN the socket stays read-ready for good, so only an
            // error (an RST after the FIN) is watched for.
            let interest = if self.fin {
                Interest::ERROR
            } else {
                Interest::READABLE
            };
            let event = tokio::select! {
                biased;
                _ = self.conn.wake.wait() => Event::Woken,
                r = self.stream.ready(interest) => Event::Readable(r),
                _ = sleep.as_mut(), if deadline.is_some() => Event::Timer,
            };
            match event {
                Event::Woken => {}
                Event::Timer => {
                    armed = None;
                    // Re-evaluated: the deadline may have moved since it was armed.
                    if let (Some(d), Some(kind)) = self.deadline() {
                        if d <= Instant::now() {
                            return self.timed_out(kind).await;
                        }
                    }
                }
                Event::Readable(Err(_)) => return (DisconnectReason::Reset, false),
                Event::Readable(Ok(ready)) if self.fin => {
                    if ready.is_error() || matches!(self.stream.take_error(), Ok(Some(_)) | Err(_))
                    {
                        return (DisconnectReason::Reset, false);
                    }
                }
                Event::Readable(Ok(ready)) => {
                    if let Some(end) = self.on_readable(ready) {
                        return end;
                    }
                }
            }
        }
    }

    /// The reason for a close the server chose (a response asked for it).
    fn end_reason(&self) -> DisconnectReason {
        DisconnectReason::ServerClosed
    }

    fn read_cap(&self) -> usize {
        self.parser.limits().max_head_bytes.max(PIPE_CAP) + 8 * 1024
    }

    fn on_readable(&mut self, ready: tokio::io::Ready) -> Option<(DisconnectReason, bool)> {
        if self.rbuf.len() >= self.read_cap() || self.stop_reading {
            // Not taking more input now, but still watching for the peer
            // leaving: a FIN or RST shows up as read-closed without a read.
            if ready.is_read_closed() {
                return self.on_peer_closed();
            }
            // Clear the readiness so we sleep until the next socket event
            // instead of spinning on data we are not ready to take.
            let _ = self.stream.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
            self.read_paused = !self.stop_reading;
            return None;
        }
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(8 * 1024);
        }
        let room = self.rbuf.capacity() - self.rbuf.len();
        match self.stream.try_read_buf(&mut self.rbuf) {
            Ok(0) => self.on_peer_closed(),
            Ok(n) => {
                if n < room && self.single_thread {
                    // A short read drained the socket: clear the readiness now
                    // rather than learn it from one more read that would block
                    // (one syscall per request saved). A FIN stays visible:
                    // tokio never clears the read-closed bit. Only on a
                    // current-thread runtime: there no I/O driver can record
                    // a new event between the read and this clear, which
                    // would then be wiped out with it.
                    let _ = self.stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(io::ErrorKind::WouldBlock.into())
                    });
                }
                self.took(n);
                None
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(_) => Some((DisconnectReason::Reset, false)),
        }
    }

    fn took(&mut self, n: usize) {
        Counters::add(&self.counters().bytes_received, n as u64);
        self.last_activity = Instant::now();
        if self.reading.is_none() && self.head_started.is_none() {
            self.head_started = Some(self.last_activity);
        }
    }

    /// Reading was paused with its readiness cleared, and now there is
    /// room. tokio would refuse a read until a new readiness event — which
    /// never comes if the bytes are already in the socket and the client is
    /// blocked on the full window — so the socket is read directly, until
    /// it would block (then new bytes raise a new event) or the buffer is
    /// full again (paused again).
    fn resume_read(&mut self) -> Option<(DisconnectReason, bool)> {
        use std::io::Read;
        const STEP: usize = 16 * 1024;
        loop {
            if self.rbuf.len() >= self.read_cap() {
                self.read_paused = true;
                return None;
            }
            let start = self.rbuf.len();
            self.rbuf.resize(start + STEP, 0);
            let sock = socket2::SockRef::from(&*self.stream);
            let r = (&*sock).read(&mut self.rbuf[start..]);
            let n = *r.as_ref().unwrap_or(&0);
            self.rbuf.truncate(start + n);
            match r {
                Ok(0) => return self.on_peer_closed(),
                Ok(n) => {
                    self.took(n);
                    if n < STEP {
                        return None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some((DisconnectReason::Reset, false)),
            }
        }
    }

    /// The peer's read side closed: tell FIN from RST, apply the half-close policy.
    fn on_peer_closed(&mut self) -> Option<(DisconnectReason, bool)> {
        if matches!(self.stream.take_error(), Ok(Some(_)) | Err(_)) {
            return Some((DisconnectReason::Reset, false));
        }
        // A FIN with unread data still in the socket is indistinguishable
        // from a FIN after it: either way the client will send nothing more.
        let outstanding = !self.rbuf.is_empty()
            || self
                .conn
                .lock()
                .slots
                .iter()
                .any(|s| s.phase != Phase::Complete);
        let policy = self.conn.session.properties_ref(|p| p.half_close);
        if !outstanding || policy == HalfClosePolicy::Disconnect {
            self.fail_body(httpq_proto::Error::IncompleteBody);
            return Some((DisconnectReason::ClientClosed, false));
        }
        // Half-closed: what was received is still parsed and answered (a
        // body's rest, pipelined requests); the socket is not read again.
        self.fin = true;
        self.read_paused = false;
        self.conn.lock().peer_fin = true;
        None
    }

    /// The body being read can never complete: tell its reader.
    fn fail_body(&mut self, e: httpq_proto::Error) {
        let Some(r) = &self.reading else { return };
        let mut st = self.conn.lock();
        if let Some(p) = st.slot_index(r.seq).and_then(|i| st.slots[i].body.as_mut()) {
            if !p.done && p.error.is_none() {
                p.fail(e);
            }
        }
    }

    /// Decodes buffered input: body bytes for the current request, then
    /// further request heads while the pipeline has room.
    /// Parses what has arrived and hands the requests over; see `hand_over`.
    fn process_input(&mut self) -> Option<(DisconnectReason, bool)> {
        // `room` is never more than the truth (only this task adds slots),
        // but a response may have asked to close since it was counted.
        if self.conn.closing.load(Ordering::Acquire) {
            self.room = 0;
        }
        let end = self.parse_input();
        // Nothing parsed (a wake for output, say): no lock round-trip.
        if !self.new_slots.is_empty() || self.received > 0 {
            self.hand_over();
        }
        end
    }

    fn parse_input(&mut self) -> Option<(DisconnectReason, bool)> {
        loop {
            if self.reading.is_some() {
                match self.feed_body() {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(end) => return Some(end),
                }
            }
            if self.stop_reading || self.rbuf.is_empty() {
                return None;
            }
            // The closing flag is looked at per head: the task itself may
            // have decided to close since `room` was counted (a refusal or
            // an unrouted request answered with close).
            if self.room == 0 || self.conn.closing.load(Ordering::Acquire) {
                self.hand_over();
                if self.room == 0 {
                    // Not parsing, so no HeaderWait: the wait is the
                    // application's, not the client's.
                    self.head_started = None;
                    return None;
                }
            }
            let now = self.last_activity.into_std();
            let next = self
                .next
                .get_or_insert_with(|| Request::blank(&self.conn, now));
            match self.parser.parse_into(&mut self.rbuf, next.head_mut()) {
                Ok(false) if self.fin => {
                    // Half-closed: the rest of this head will never come.
                    self.rbuf.clear();
                    self.stop_reading = true;
                    return None;
                }
                Ok(false) => {
                    // A partial head left behind while the pipeline was full
                    // starts its HeaderWait now.
                    self.head_started.get_or_insert_with(Instant::now);
                    return None;
                }
                Ok(true) => {
                    // What is left arrived with the last read (no clock read per
                    // pipelined request).
                    self.head_started = (!self.rbuf.is_empty()).then_some(self.last_activity);
                    let request = self.next.take().expect("parsed into");
                    self.room -= 1;
                    self.dispatch(request);
                }
                Err(e) => {
                    self.protocol_error(e);
                    return None;
                }
            }
        }
    }

    /// Makes the requests parsed since the last hand-over visible, in
    /// order: their slots to the connection under one lock, then the
    /// requests to their queue under one lock — two lock round-trips per
    /// pipelined batch rather than two per request. Also refreshes `room`.
    fn hand_over(&mut self) {
        {
            let mut st = self.conn.lock();
            for slot in self.new_slots.drain(..) {
                st.push_slot(slot);
            }
            self.room = if st.closing {
                0
            } else {
                self.conn.max_pipelined.saturating_sub(st.slots.len())
            };
        }
        if self.received > 0 {
            Counters::add(&self.counters().requests_received, self.received);
            self.received = 0;
        }
        // Held only while a batch is being gathered, so a queue dropped by
        // the application is not kept alive by idle connections.
        let Some(queue) = self.batch_queue.take() else {
            return;
        };
        if self.batch.is_empty() {
            return;
        }
        queue.push_batch(&mut self.batch, &mut self.refused);
        if self.refused.is_empty() {
            return;
        }
        let policy = queue.overflow_policy();
        // Refused requests are a suffix of the batch (the queue stays full
        // or shut down under its lock), so of the connection's slots too.
        let mut closed = false;
        for (request, why) in std::mem::take(&mut self.refused) {
            Counters::inc(&self.counters().queue_rejections);
            let (seq, has_body) = (request.seq(), request.has_body());
            drop(request);
            if closed {
                // An earlier refusal closes the connection: the rest are
                // dropped as if never read, as they would have been had
                // parsing stopped at that refusal.
                self.conn.lock().forget_slots_from(seq);
                continue;
            }
            match policy {
                OverflowPolicy::Reset => {
                    // Refused, never handed out: not an abandoned request.
                    let mut st = self.conn.lock();
                    if let Some(i) = st.slot_index(seq) {
                        st.slots[i].queue = 0;
                    }
                    drop(st);
                    self.conn.abort(DisconnectReason::ServerClosed, true);
                    closed = true;
                }
                OverflowPolicy::ServiceUnavailable => {
                    self.server_answer(seq, 503, why, false);
                    closed = true;
                }
                OverflowPolicy::ServiceUnavailableWithReason => {
                    self.server_answer(seq, 503, why, !has_body);
                    closed = has_body;
                }
            }
        }
    }

    /// Moves body bytes from the read buffer to the application (or drops
    /// them when draining). `Ok(true)`: the body is done, carry on parsing.
    fn feed_body(&mut self) -> Result<bool, (DisconnectReason, bool)> {
        let conn = self.conn.clone();
        let mut st = conn.lock();
        let reader = self.reading.as_mut().expect("reading");
        let index = st.slot_index(reader.seq);
        if index.is_none() && reader.draining.is_none() {
            reader.draining = Some(Instant::now());
        }
        loop {
            if self.rbuf.is_empty() {
                if self.fin {
                    // Half-closed with the body unfinished: it never will be.
                    let draining = reader.draining.is_some();
                    drop(st);
                    self.fail_body(httpq_proto::Error::IncompleteBody);
                    self.reading = None;
                    self.stop_reading = true;
                    if draining {
                        return Err((DisconnectReason::ClientClosed, false));
                    }
                }
                return Ok(false);
            }
            let pipe = index.and_then(|i| st.slots[i].body.as_mut());
            if let Some(p) = &pipe {
                // Body waiting for a 100 Continue stays unread, unless the
                // application asks for it after its response began (no 100
                // can go out then, and a client sends the body anyway).
                let held = p.expect_continue && !p.continue_sent && !p.requested;
                if reader.draining.is_none() && (held || p.buffered >= PIPE_CAP) {
                    return Ok(false);
                }
            }
            let d = match reader.dec.decode(&self.rbuf) {
                Ok(d) => d,
                Err(e) => {
                    if let Some(p) = pipe {
                        p.fail(e);
                    }
                    // Framing is lost: nothing after this can be trusted.
                    let seq = reader.seq;
                    self.reading = None;
                    self.stop_reading = true;
                    self.rbuf.clear();
                    Counters::inc(&self.counters().protocol_errors);
                    let phase = index.map(|i| st.slots[i].phase);
                    if let Some(i) = index {
                        // Whatever answer the application still makes
                        // closes the connection after it.
                        st.slots[i].keep_alive = false;
                        st.slots[i].close_after |= phase != Some(Phase::Waiting);
                    }
                    st.closing = true;
                    st.failed_body = Some((seq, e));
                    st.close_reason
                        .get_or_insert(DisconnectReason::ProtocolError(e));
                    self.conn.closing.store(true, Ordering::Release);
                    drop(st);
                    match phase {
                        // Not answered yet: the client gets the error's
                        // status, as for a malformed head.
                        Some(Phase::Waiting) => {
                            self.server_answer(seq, e.status(), e.reason(), false)
                        }
                        Some(_) => {}
                        // Answered and drained away: nothing is left to send.
                        None => return Err((DisconnectReason::ProtocolError(e), false)),
                    }
                    return Ok(false);
                }
            };
            let chunk = self.rbuf.split_to(d.consumed).freeze();
            reader.last_progress = Instant::now();
            if let Some(p) = pipe {
                if reader.draining.is_none() && !d.data.is_empty() {
                    p.buffered += d.data.len();
                    p.chunks.push_back(chunk.slice(d.data.clone()));
                }
                if d.done {
                    p.done = true;
                }
                if !d.data.is_empty() || d.done {
                    if let Some(w) = p.waker.take() {
                        w.wake();
                    }
                }
            }
            if d.done {
                drop(st);
                self.reading = None;
                self.head_started = (!self.rbuf.is_empty()).then_some(self.last_activity);
                return Ok(true);
            }
            if d.consumed == 0 {
                return Ok(false);
            }
        }
    }

    /// Routes a parsed request and queues its slot and the request for the
    /// next hand-over (or has the server answer it).
    fn dispatch(&mut self, mut request: Request) {
        let head = request.head();
        self.received += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        let limits = *self.parser.limits();
        // Most targets route as they are; only ones that need decoding or
        // normalising get their cooked URL built (and checked) up front.
        let simple = head.simple_path(&limits);
        let cooked = match simple {
            Some(_) => None,
            None => match head.cooked_url(self.scheme, self.conn.local, &limits) {
                Ok(u) => Some(u),
                Err(e) => return self.protocol_error_at(seq, head.version(), e),
            },
        };
        let keep_alive = head.keep_alive() && seq < registry::MAX_SEQ;
        if seq >= registry::MAX_SEQ {
            // The last sequence number a request id can carry: a later one
            // would spill into the connection bits and name another
            // connection's request. This one closes the connection.
            self.stop_reading = true;
        }
        let (host, path) = match (&cooked, simple) {
            (Some(u), _) => (u.host.as_bytes(), u.path.as_bytes()),
            (None, path) => (head.host().unwrap_or_default(), path.unwrap_or(b"/")),
        };
        let route = self.conn.session.route_cached(
            &mut self.routes,
            self.scheme,
            host,
            self.conn.local,
            path,
            &self.base,
        );
        let has_body = !head.body().is_empty();
        let timeouts = route.map_or(self.base, |r| r.timeouts);
        if route.is_some() {
            self.timeouts = timeouts;
        }
        let context = route.map(|r| r.context);
        let mut queue_id = route.and_then(|r| r.queue.as_ref()).map(|q| q.0);
        // A batch goes to one queue: a request for another hands the batch over first.
        if let Some(id) = queue_id {
            if self.batch_queue.as_ref().is_none_or(|b| b.id != id) {
                if !self.batch.is_empty() {
                    self.hand_over();
                }
                self.batch_queue = self.routes.queue();
                if self.batch_queue.is_none() {
                    // Dropped since it was routed to: as if unbound.
                    queue_id = None;
                }
            }
        }
        let mut slot = Slot {
            seq,
            version: head.version(),
            head_request: head.method() == b"HEAD",
            keep_alive,
            queue: queue_id.unwrap_or(0),
            phase: Phase::Waiting,
            pending: None,
            close_after: false,
            body: None,
        };
        if has_body {
            slot.body = Some(Box::new(BodyPipe {
                expect_continue: head.expects_continue(),
                ..BodyPipe::default()
            }));
            self.reading = Some(Reader {
                seq,
                dec: BodyDecoder::new(head.body(), &limits),
                entity_body: timeouts.entity_body,
                drain_entity_body: timeouts.drain_entity_body,
                draining: None,
                last_progress: Instant::now(),
            });
        }
        let Some(queue_id) = queue_id else {
            Counters::inc(&self.counters().unrouted);
            self.new_slots.push(slot);
            self.hand_over();
            let (status, why) = if context.is_some() {
                (503, "the URL group has no request queue")
            } else {
                (400, "no URL prefix matches this request")
            };
            self.server_answer(seq, status, why, !has_body);
            return;
        };
        debug_assert_eq!(self.batch_queue.as_ref().map(|b| b.id), Some(queue_id));
        // Counted from when the bytes arrived; saves a clock read per request.
        let expires = self.last_activity.into_std() + timeouts.request_queue;
        request.fill(seq, context.unwrap_or(0), cooked, expires);
        self.new_slots.push(slot);
        self.batch.push(request);
        if has_body {
            // The body pipe must be reachable before body bytes are fed.
            self.hand_over();
        }
    }

    /// The server answers request `seq` itself (routing failure, overload).
    fn server_answer(&mut self, seq: u32, status: u16, why: &str, keep: bool) {
        self.conn.server_answer(seq, status, why, keep);
    }

    /// Answers a request the application never saw (malformed, or a head
    /// that never finished) and closes the connection after it.
    fn closing_answer(&mut self, seq: u32, version: Version, status: u16, why: &str) {
        // Slots go in request order: earlier ones first.
        self.hand_over();
        self.conn.lock().push_slot(Slot {
            seq,
            version,
            head_request: false,
            keep_alive: false,
            queue: 0,
            phase: Phase::Waiting,
            pending: None,
            close_after: true,
            body: None,
        });
        self.server_answer(seq, status, why, false);
    }

    fn protocol_error(&mut self, e: httpq_proto::Error) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.protocol_error_at(seq, Version::Http11, e);
    }

    /// A malformed request: answer its status with a short reason, then close.
    /// Nothing after it in the buffer is ever read as a request.
    fn protocol_error_at(&mut self, seq: u32, version: Version, e: httpq_proto::Error) {
        Counters::inc(&self.conn.session.counters.protocol_errors);
        self.stop_reading = true;
        self.rbuf.clear();
        self.conn
            .lock()
            .close_reason
            .get_or_insert(DisconnectReason::ProtocolError(e));
        self.closing_answer(seq, version, e.status(), e.reason());
    }

    /// Writes everything ready, and reports what the task's loop needs to
    /// know of the shared state from the same lock round-trip.
    async fn flush(&mut self) -> Result<Seen, DisconnectReason> {
        loop {
            let seen = {
                let mut st = self.conn.lock();
                if !st.out.swap_small(&mut self.wbuf) {
                    st.out.take_into(&mut self.writes);
                }
                // Until these bytes are out, the application must not write
                // past them (its send call would put later bytes first).
                st.writer_busy = !(self.writes.is_empty() && self.wbuf.is_empty());
                let mut close_now = false;
                while st.slots.front().is_some_and(|s| s.phase == Phase::Complete) {
                    let slot = st.slots.pop_front().expect("front");
                    Counters::inc(&self.conn.session.counters.responses_sent);
                    close_now |= slot.close_after;
                    if let Some(r) = self.reading.as_mut() {
                        if r.seq == slot.seq && r.draining.is_none() {
                            let unsent_continue = slot
                                .body
                                .as_ref()
                                .is_some_and(|p| p.expect_continue && !p.continue_sent);
                            if unsent_continue {
                                // The client is waiting for 100 Continue that will never come.
                                close_now = true;
                            }
                            r.draining = Some(Instant::now());
                        }
                    }
                    if close_now {
                        break;
                    }
                }
                Seen {
                    close: close_now,
                    abort: st.abort,
                    slots_empty: st.slots.is_empty(),
                    room_free: !st.closing && st.slots.len() < self.conn.max_pipelined,
                    last_write: st.last_write,
                }
            };
            let close_now = seen.close;
            if self.writes.is_empty() && self.wbuf.is_empty() {
                return Ok(seen);
            }
            let written = self.write_all().await;
            self.conn.lock().writer_busy = false;
            written?;
            self.conn.drained.notify_waiters();
            self.last_activity = Instant::now();
            if close_now {
                return Ok(seen);
            }
        }
    }

    /// One vectored write of everything gathered (the swapped-in copy
    /// buffer, then any large parts), bounded by MinSendRate.
    async fn write_all(&mut self) -> Result<(), DisconnectReason> {
        let Task {
            stream,
            wbuf,
            writes,
            timeouts,
            conn,
            ..
        } = self;
        let total = wbuf.len() + writes.iter().map(|b| b.len()).sum::<usize>();
        let mut deadline: Option<Instant> = None;
        let mut written = 0usize;
        while written < total {
            let res = if writes.is_empty() {
                // The common case, one buffer: no slice table to build.
                match stream.try_write(&wbuf[written..]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    r => Some(r),
                }
            } else {
                let mut slices: [IoSlice<'_>; 64] = [IoSlice::new(&[]); 64];
                let mut n = 0;
                let mut skip = written;
                let parts = std::iter::once(&wbuf[..]).chain(writes.iter().map(|b| &b[..]));
                for part in parts {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    slices[n] = IoSlice::new(&part[skip..]);
                    skip = 0;
                    n += 1;
                    if n == slices.len() {
                        break;
                    }
                }
                match stream.try_write_vectored(&slices[..n]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    r => Some(r),
                }
            };
            match res {
                Some(Ok(0)) | Some(Err(_)) => return Err(DisconnectReason::WriteFailed),
                Some(Ok(n)) => {
                    written += n;
                    Counters::add(&conn.session.counters.bytes_sent, n as u64);
                }
                None => {
                    // Only a blocked write starts the MinSendRate clock.
                    let at = *deadline.get_or_insert_with(|| {
                        let rate = u64::from(timeouts.min_send_rate.max(1));
                        Instant::now()
                            + Duration::from_millis(
                                ((total - written) as u64 * 1000 / rate).max(1000),
                            )
                    });
                    tokio::select! {
                        r = stream.writable() => if r.is_err() { return Err(DisconnectReason::WriteFailed) },
                        _ = tokio::time::sleep_until(at) => return Err(DisconnectReason::Timeout(TimeoutKind::MinSendRate)),
                    }
                }
            }
        }
        wbuf.clear();
        writes.clear();
        Ok(())
    }

    /// The next timer deadline and which timeout it is (`None`: only a
    /// wake-up to look again, not a timeout).
    fn deadline(&self) -> (Option<Instant>, Option<TimeoutKind>) {
        let seen = {
            let st = self.conn.lock();
            Seen {
                close: false,
                abort: st.abort,
                slots_empty: st.slots.is_empty(),
                room_free: !st.closing && st.slots.len() < self.conn.max_pipelined,
                last_write: st.last_write,
            }
        };
        self.deadline_with(&seen)
    }

    /// [`deadline`](Self::deadline) from a look at the shared state already taken.
    fn deadline_with(&self, seen: &Seen) -> (Option<Instant>, Option<TimeoutKind>) {
        if let Some(r) = &self.reading {
            if let Some(start) = r.draining {
                return (
                    Some(start + r.drain_entity_body),
                    Some(TimeoutKind::DrainEntityBody),
                );
            }
            let st = self.conn.lock();
            let waiting = st
                .slot_index(r.seq)
                .and_then(|i| st.slots[i].body.as_ref())
                .is_some_and(|p| p.requested && p.chunks.is_empty() && !p.done);
            if waiting {
                return (
                    Some(r.last_progress + r.entity_body),
                    Some(TimeoutKind::EntityBody),
                );
            }
            return (None, None);
        }
        if let Some(start) = self.head_started {
            if !self.stop_reading {
                return (
                    Some(start + self.timeouts.header_wait),
                    Some(TimeoutKind::HeaderWait),
                );
            }
        }
        let since = seen
            .last_write
            .map_or(self.last_activity, |w| w.max(self.last_activity));
        if self.rbuf.is_empty() && seen.slots_empty {
            return (
                Some(since + self.timeouts.idle_connection),
                Some(TimeoutKind::IdleConnection),
            );
        }
        // The application holds requests, so nothing times out; but keep a
        // timer, because responses the application writes itself do not
        // wake this task, and the idle clock must start after them.
        (
            Some(Instant::now().max(since) + self.timeouts.idle_connection),
            None,
        )
    }

    /// A timer fired. A request head that never completed gets 408 first.
    async fn timed_out(&mut self, kind: TimeoutKind) -> (DisconnectReason, bool) {
        Counters::inc(&self.counters().timeouts);
        if kind == TimeoutKind::HeaderWait && self.conn.lock().slots.is_empty() {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.closing_answer(
                seq,
                Version::Http11,
                408,
                "request head not received in time",
            );
            let _ = self.flush().await;
        }
        (DisconnectReason::Timeout(kind), false)
    }

    /// The connection is over: record why, wake every kind of waiter, free the id.
    fn finish(&mut self, mut reason: DisconnectReason, reset: bool) {
        let conn = &self.conn;
        let counters = &conn.session.counters;
        let (abandoned, posted, started) = {
            let mut st = conn.lock();
            if reason == DisconnectReason::ServerClosed {
                reason = st.close_reason.unwrap_or(reason);
            }
            st.reason = Some(reason);
            st.io = None;
            let mut abandoned = 0u64;
            let mut started = false;
            for slot in st.slots.iter_mut() {
                if slot.queue != 0 && slot.phase != Phase::Complete {
                    abandoned += 1;
                }
                started |= matches!(slot.phase, Phase::Sending(_));
                if let Some(p) = slot.body.as_mut() {
                    if let Some(w) = p.waker.take() {
                        w.wake();
                    }
                }
            }
            (abandoned, std::mem::take(&mut st.posted), started)
        };
        if reset || (reason == DisconnectReason::Cancelled && started) {
            // SO_LINGER 0: close sends RST instead of FIN.
            let _ = socket2::SockRef::from(&*self.stream).set_linger(Some(Duration::ZERO));
        }
        // Counters first: a woken waiter reading them sees this end counted.
        Counters::dec(&counters.connections_open);
        Counters::add(&counters.requests_abandoned, abandoned);
        let client_broke = matches!(
            reason,
            DisconnectReason::ClientClosed
                | DisconnectReason::Reset
                | DisconnectReason::WriteFailed
                | DisconnectReason::Timeout(_)
        );
        if abandoned > 0 && client_broke {
            Counters::inc(&counters.disconnects);
        }
        conn.connected.store(false, Ordering::Release);
        // Remembered before the id leaves the registry: a waiter arriving in
        // between must find the reason, not an unexplained "closed".
        recent::remember(conn.id, reason);
        registry::remove(conn.id);
        conn.gone.notify_waiters();
        conn.drained.notify_waiters();
        for (cq, key, _) in posted {
            cq.post(Completion {
                key,
                connection_id: conn.id,
                reason,
            });
        }
    }
}
