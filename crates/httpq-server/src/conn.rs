//! One client connection as the application side reaches it through ids:
//! the sans-IO [`ServerConn`] under a lock, the socket for writing from
//! the caller's thread (as http.sys sends from the caller), and the
//! wake-ups between the application, the connection's driver and
//! disconnect waiters.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use httpq_proto::server_conn::{
    BodyError, FileChunk, FixedLines, Response, SendError, SendFlags, ServerConn, Transmit,
};
use httpq_proto::Limits;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::counters::Counters;
use crate::disconnect::{CompletionQueue, DisconnectReason, TimeoutKind};
use crate::record::{Current, DisconnectLog, DisconnectRecord, Entry, LogHead, LogSender};
use crate::stream::H2Table;
use crate::tls::TlsInfo;
use crate::ServerError;

/// What every connection of a session reads of it.
pub(crate) struct ConnEnv {
    pub session_id: u64,
    /// The Server header value, fixed at creation. Shared with the
    /// per-thread response-line cache (compared by pointer).
    pub server_header: Option<Arc<[u8]>>,
    pub limits: Limits,
    /// The session is shutting down gracefully: answers are watched for.
    pub draining: AtomicBool,
    /// Woken, while draining, when answers are retired or a connection
    /// ends: the shutdown looks again for requests in flight.
    pub quiet: Notify,
    /// The access log new connections write to.
    pub access_log: RwLock<Option<LogSender>>,
    /// The session's last few disconnects.
    pub disconnects: DisconnectLog,
}

impl ConnEnv {
    /// Answers went out, or a connection ended.
    pub(crate) fn answered(&self) {
        if self.draining.load(Ordering::Acquire) {
            self.quiet.notify_waiters();
        }
    }
}

/// The connection's state behind its lock.
pub(crate) struct ConnShared {
    pub engine: ServerConn,
    /// The socket, for writes from the application's send call. Taken away
    /// when the connection ends, so the descriptor closes even while the
    /// application still holds requests of it.
    pub io: Option<Arc<TcpStream>>,
    /// Posted disconnect waits: (completion queue, key, the queue they were posted through).
    pub posted: Vec<(CompletionQueue, u64, u64)>,
    /// Why the connection ended, once it has.
    pub reason: Option<DisconnectReason>,
    /// The TLS session of an HTTP/1.1 connection over TLS: the engine's
    /// output is encrypted through it, input decrypted.
    pub tls: Option<Box<rustls::ServerConnection>>,
    /// The request read last (for the state view and disconnect records).
    pub current: Current,
    /// Heads of requests not yet answered, for their access log lines (only
    /// while the connection logs), oldest first.
    pub log_heads: VecDeque<(u32, Box<LogHead>)>,
}

pub(crate) struct Conn {
    pub id: u64,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The TLS session's details, on a TLS connection.
    pub tls: Option<Box<TlsInfo>>,
    /// The streams of an HTTP/2 connection (set when it turns out to be one).
    pub h2: OnceLock<H2Table>,
    pub env: Arc<ConnEnv>,
    /// The counters of the worker the connection runs on.
    pub counters: Arc<Counters>,
    /// The access log, as it was when the connection was accepted.
    pub log: Option<LogSender>,
    /// The connection's runtime, when it is a current-thread one (a worker's).
    runtime: Option<tokio::runtime::Id>,
    state: Mutex<ConnShared>,
    /// Wakes the connection's driver: output queued, body wanted, abort asked.
    pub wake: TaskWake,
    /// Disconnect waiters (woken all at once).
    pub gone: Notify,
    /// Senders waiting for queued output to drain.
    drained: Notify,
    /// How many senders wait on `drained` (so a write wakes nobody, and
    /// pays nothing, when none does).
    held: AtomicUsize,
    connected: AtomicBool,
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        remote: SocketAddr,
        local: SocketAddr,
        env: Arc<ConnEnv>,
        counters: Arc<Counters>,
        engine: ServerConn,
        tls: Option<TlsInfo>,
    ) -> Conn {
        let log = env
            .access_log
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Conn {
            id,
            remote,
            local,
            tls: tls.map(Box::new),
            h2: OnceLock::new(),
            log,
            env,
            counters,
            runtime: tokio::runtime::Handle::try_current()
                .ok()
                .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
                .map(|h| h.id()),
            state: Mutex::new(ConnShared {
                engine,
                io: None,
                posted: Vec::new(),
                reason: None,
                tls: None,
                current: Current::default(),
                log_heads: VecDeque::new(),
            }),
            wake: TaskWake::default(),
            gone: Notify::new(),
            drained: Notify::new(),
            held: AtomicUsize::new(0),
            connected: AtomicBool::new(true),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnShared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `https` on a TLS connection, else `http` (for routing and cooked URLs).
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// A client was lost with a request held (`path`, if known): one of
    /// the session's recent disconnects.
    pub(crate) fn record_disconnect(&self, path: Option<String>, reason: DisconnectReason) {
        self.env.disconnects.push(DisconnectRecord {
            at: std::time::SystemTime::now(),
            connection_id: self.id,
            peer: self.remote,
            path,
            reason,
        });
    }

    /// Records what the engine retired: metrics, and the access log's lines.
    pub(crate) fn record_done(&self, st: &mut ConnShared) {
        let ConnShared {
            engine, log_heads, ..
        } = st;
        let mut batch = self.counters.metrics.batch();
        for d in engine.take_done() {
            batch.add(&d);
            tracing::debug!(
                conn = self.id,
                request = crate::ids::request_id(self.id, d.seq),
                method = d.method.as_str(),
                status = d.status,
                bytes = d.body_bytes,
                micros = d.elapsed.as_micros() as u64,
                "response"
            );
            let Some(log) = &self.log else { continue };
            // In order; a head older than this answer was never answered
            // (its connection's requests were forgotten): dropped.
            while log_heads.front().is_some_and(|(s, _)| *s < d.seq) {
                log_heads.pop_front();
            }
            let head = match log_heads.front() {
                Some((s, _)) if *s == d.seq => log_heads.pop_front().map(|(_, h)| h),
                _ => None,
            };
            log.send(
                Entry {
                    peer: self.remote.ip(),
                    head,
                    status: d.status,
                    body_bytes: d.body_bytes,
                    request_id: crate::ids::request_id(self.id, d.seq),
                    secs: crate::date::now_secs(),
                },
                &self.counters.access_log_dropped,
            );
        }
    }

    /// Requests handed out and not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        match self.h2.get() {
            Some(t) => t.in_flight(),
            None => self.lock().engine.in_flight(),
        }
    }

    /// Calls `f` with this second's `Server` and `Date` lines, for encoding
    /// an answer.
    pub(crate) fn with_fixed_lines<R>(&self, f: impl FnOnce(&FixedLines<'_>) -> R) -> R {
        crate::date::with_fixed_lines(self.env.server_header.as_ref(), f)
    }

    /// True on the connection's own current-thread runtime: only there
    /// may its socket's readiness be cleared by hand.
    pub(crate) fn on_own_runtime(&self) -> bool {
        self.runtime.is_some()
            && tokio::runtime::Handle::try_current().ok().map(|h| h.id()) == self.runtime
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_disconnected(&self) {
        self.connected.store(false, Ordering::Release);
    }

    /// Asks the driver to end the connection (`reset`: with an RST).
    pub(crate) fn abort(&self, reason: DisconnectReason, reset: bool) {
        self.lock().engine.abort(reason, reset);
        self.wake.wake();
    }

    /// Sends the response to request `seq`. `Ok(true)`: the sender should
    /// wait for the output to drain (see [`drain_for`](Self::drain_for)).
    pub(crate) fn send_response(
        &self,
        seq: u32,
        queue: u64,
        resp: &mut Response,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        if let Some(t) = self.h2.get() {
            let r = t.send_response(seq, queue, resp, flags);
            self.after_h2_send(t, flags);
            return r;
        }
        self.send_with(seq, |engine| {
            self.with_fixed_lines(|fixed| engine.send_response(seq, queue, resp, flags, fixed))
        })
    }

    /// A response sent with DISCONNECT closes an HTTP/2 connection
    /// gracefully (GOAWAY) once its streams are done.
    fn after_h2_send(&self, t: &H2Table, flags: SendFlags) {
        if flags.contains(SendFlags::DISCONNECT) {
            t.goaway.store(true, Ordering::Release);
            self.wake.wake();
        }
    }

    /// Sends more body of request `seq`'s response.
    pub(crate) fn send_body(
        &self,
        seq: u32,
        queue: u64,
        data: Bytes,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        if let Some(t) = self.h2.get() {
            let r = t.send_body(seq, queue, data, flags);
            self.after_h2_send(t, flags);
            return r;
        }
        self.send_with(seq, |engine| engine.send_body(seq, queue, data, flags))
    }

    /// Sends a file range as more body of request `seq`'s response.
    pub(crate) fn send_file(
        &self,
        seq: u32,
        queue: u64,
        chunk: FileChunk,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        if let Some(t) = self.h2.get() {
            let r = t.send_file(seq, queue, chunk, flags);
            self.after_h2_send(t, flags);
            return r;
        }
        self.send_with(seq, |engine| engine.send_file(seq, queue, chunk, flags))
    }

    /// One send by the application: `send` queues on the engine, then the
    /// output goes out (see [`after_send`](Self::after_send)).
    fn send_with(
        &self,
        seq: u32,
        send: impl FnOnce(&mut ServerConn) -> Result<(), SendError>,
    ) -> Result<bool, ServerError> {
        let mut st = self.lock();
        let before = Before::of(&mut st);
        send(&mut st.engine).map_err(send_error)?;
        Ok(self.after_send(st, seq, before))
    }

    /// The server answers request `seq` itself with `status` and a
    /// one-line reason (a request that waited in its queue too long).
    pub(crate) fn server_answer(&self, seq: u32, status: u16, why: &str, keep: bool) {
        if let Some(t) = self.h2.get() {
            t.answer(seq, status, why);
            return;
        }
        let mut st = self.lock();
        let before = Before::of(&mut st);
        self.with_fixed_lines(|fixed| st.engine.answer(seq, status, why, keep, fixed));
        self.after_send(st, seq, before);
    }

    /// After a send: write at once from the caller when no pipelined
    /// request is still waiting for its answer (those are batched into one
    /// write when the last is answered); wake the driver only when it has
    /// something to do. Returns whether the sender of `seq` should wait.
    ///
    /// `out_was_empty`: the output held nothing before this send. Bytes
    /// already there have a wake (or a write) coming; only the send that
    /// makes the output non-empty needs to wake the driver — one wake per
    /// pipelined batch, not one per response.
    fn after_send(&self, mut st: MutexGuard<'_, ConnShared>, seq: u32, before: Before) -> bool {
        let out_was_empty = before.out_empty;
        if before.parked && st.engine.parked() == 0 {
            // Parked answers were released: a sender held to the parked
            // budget may go on.
            self.output_moved();
        }
        if st.reason.is_some() {
            drop(st);
            self.wake.wake();
            return false;
        }
        if st.engine.waiting() > 0 || st.engine.output().is_empty() {
            let output = out_was_empty && !st.engine.output().is_empty();
            let wait = st.engine.must_wait(seq);
            drop(st);
            if output {
                self.wake.wake_for_output();
            }
            return wait;
        }
        let Some(io) = st.io.clone() else {
            drop(st);
            self.wake.wake();
            return false;
        };
        let now = Instant::now();
        let written = transmit(&mut st, &io, self.on_own_runtime());
        let n = match written {
            Ok(n) => n,
            Err(_) => {
                // This write may have taken the socket's error (an RST
                // reads as a plain end of file after that): the reason is
                // recorded here for the driver to end the connection with.
                st.engine.abort(DisconnectReason::WriteFailed, false);
                drop(st);
                self.wake.wake();
                return false;
            }
        };
        Counters::add(&self.counters.bytes_sent, n as u64);
        st.engine.on_written(n, now);
        if n > 0 {
            self.output_moved();
        }
        let blocked = output_pending(&mut st);
        if blocked {
            st.engine.on_write_blocked(now);
        }
        let r = st.engine.retire(now);
        if r.responses > 0 {
            Counters::add(&self.counters.responses_sent, u64::from(r.responses));
            self.record_done(&mut st);
            self.env.answered();
        }
        let need_driver = blocked || r.close || r.room || r.draining || st.engine.peer_fin();
        let wait = st.engine.must_wait(seq);
        drop(st);
        if need_driver {
            self.wake.wake();
        } else {
            // Everything queued is out: an earlier answer's wake has no work left.
            self.wake.withdraw_output();
        }
        wait
    }

    /// Waits while the sender of `seq` is held by the write budget.
    pub(crate) async fn drain_for(&self, seq: u32) {
        if let Some(t) = self.h2.get() {
            return t.drain_for(seq).await;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        struct Unhold<'a>(&'a AtomicUsize);
        impl Drop for Unhold<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _unhold = Unhold(&self.held);
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if st.reason.is_some() || !st.engine.must_wait(seq) {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Output was written, or parked answers released: a held sender may
    /// go on. Called under the connection's lock or after it, by whoever
    /// moved the output (the driver, or a sender writing itself); the
    /// count read here was raised before that sender looked, under the lock.
    pub(crate) fn output_moved(&self) {
        if self.held.load(Ordering::SeqCst) > 0 {
            self.drained.notify_waiters();
        }
    }

    /// The connection ended: every held sender goes on (and fails).
    pub(crate) fn release_all(&self) {
        self.drained.notify_waiters();
    }

    /// Polls for request `seq`'s body: `sink` takes buffered pieces.
    pub(crate) fn poll_body(
        &self,
        seq: u32,
        cx: &mut Context<'_>,
        sink: impl FnOnce(&mut VecDeque<Bytes>) -> usize,
    ) -> Poll<Result<usize, ServerError>> {
        if let Some(t) = self.h2.get() {
            return t.poll_body(seq, cx, sink);
        }
        let mut st = self.lock();
        let (poll, wake) = st.engine.poll_body(seq, cx.waker(), sink);
        drop(st);
        if wake {
            self.wake.wake();
        }
        poll.map_err(|e| match e {
            BodyError::Invalid => ServerError::ConnectionInvalid,
            BodyError::Malformed(e) => ServerError::Body(e),
            BodyError::Disconnected(r) => ServerError::Disconnected(r),
        })
    }

    /// The next buffered piece of request `seq`'s body, as it arrived (no
    /// copy); `None` at the end. The pull behind both the chunk read and
    /// the body stream.
    pub(crate) fn poll_body_chunk(
        &self,
        seq: u32,
        cx: &mut Context<'_>,
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

    /// A request that waited in its queue past the RequestQueue timeout:
    /// answered 503, and the connection ends with that timeout (as
    /// http.sys does), so its waiters learn it timed out.
    pub(crate) fn queue_timeout(&self, seq: u32) {
        if let Some(t) = self.h2.get() {
            // One stream waited too long: only it is answered, the
            // connection's other streams go on.
            if t.get(seq).is_some() {
                (self.counters).timed_out(TimeoutKind::RequestQueue, self.id);
                t.answer(seq, 503, "request waited too long in the queue");
            }
            return;
        }
        (self.counters).timed_out(TimeoutKind::RequestQueue, self.id);
        self.lock()
            .engine
            .set_close_reason(DisconnectReason::Timeout(TimeoutKind::RequestQueue));
        self.server_answer(seq, 503, "request waited too long in the queue", false);
    }
}

/// What `after_send` needs to know of the state before a send.
struct Before {
    out_empty: bool,
    parked: bool,
}

impl Before {
    fn of(st: &mut ConnShared) -> Before {
        Before {
            out_empty: st.engine.output().is_empty(),
            parked: st.engine.parked() > 0,
        }
    }
}

fn send_error(e: SendError) -> ServerError {
    match e {
        SendError::Invalid => ServerError::ConnectionInvalid,
        SendError::InvalidResponse(why) => ServerError::InvalidResponse(why),
    }
}

/// Writes the engine's output to the socket — through the TLS session
/// when the connection has one — and returns the bytes of output taken.
pub(crate) fn transmit(st: &mut ConnShared, io: &TcpStream, exclusive: bool) -> io::Result<usize> {
    let ConnShared { engine, tls, .. } = st;
    match tls.as_deref_mut() {
        None => engine.output().write_to(&mut SocketTx::new(io, exclusive)),
        Some(tls) => {
            let mut tx = TlsTx { tls, stream: io };
            let n = if engine.output().is_empty() {
                0
            } else {
                engine.output().write_to(&mut tx)?
            };
            tx.flush()?;
            Ok(n)
        }
    }
}

/// Output waits to be written: the engine's, or sealed TLS records.
pub(crate) fn output_pending(st: &mut ConnShared) -> bool {
    !st.engine.output().is_empty() || st.tls.as_ref().is_some_and(|t| t.wants_write())
}

/// The engine's output sealed into TLS records on its way to the socket.
/// File ranges are read into memory first: TLS needs the bytes (no
/// `sendfile` through userspace TLS).
struct TlsTx<'a> {
    tls: &'a mut rustls::ServerConnection,
    stream: &'a TcpStream,
}

/// Bytes that go into TLS per file step.
const TLS_FILE_STEP: usize = 64 * 1024;

impl TlsTx<'_> {
    /// Moves sealed records to the socket; `Ok(false)`: some remain (the
    /// socket is full).
    fn flush(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut SockWriter(self.stream)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl Transmit for TlsTx<'_> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Records already sealed go first: plaintext taken now must not
        // pile up behind a full socket.
        if !self.flush()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = io::Write::write_vectored(&mut self.tls.writer(), bufs)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.flush()?;
        Ok(n)
    }

    fn write_file(&mut self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if !self.flush()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut buf = vec![0; len.min(TLS_FILE_STEP)];
        let got = file.read_at(&mut buf, offset)?;
        if got == 0 {
            return Ok(0);
        }
        let n = io::Write::write(&mut self.tls.writer(), &buf[..got])?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.flush()?;
        Ok(n)
    }
}

/// The socket as rustls writes sealed records to it (through tokio, so a
/// full socket clears the write readiness).
pub(crate) struct SockWriter<'a>(pub &'a TcpStream);

impl io::Write for SockWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The socket as rustls reads records from it. `raw`: read the descriptor
/// directly (reading resumed after the readiness was cleared by hand, when
/// tokio would refuse to read until a new event).
pub(crate) struct SockReader<'a> {
    pub stream: &'a TcpStream,
    pub raw: bool,
}

impl io::Read for SockReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.raw {
            let sock = socket2::SockRef::from(self.stream);
            io::Read::read(&mut &*sock, buf)
        } else {
            self.stream.try_read(buf)
        }
    }
}

/// The socket as the engine's [`Transmit`]: vectored writes and `sendfile`,
/// through tokio so a blocked write clears the socket's readiness.
///
/// A short write (of memory) means the socket's buffer is full: on a current-thread
/// runtime the readiness is cleared then and the next write is not tried,
/// saving the `EAGAIN` call nginx also skips (no I/O driver can record a
/// new event in between there; on a multi-thread runtime one could, and
/// the clear would wipe it out, so there the next call finds out).
pub(crate) struct SocketTx<'a> {
    stream: &'a TcpStream,
    /// This thread is the only one whose I/O driver watches the socket.
    exclusive: bool,
    full: bool,
}

impl<'a> SocketTx<'a> {
    /// `exclusive`: called on the socket's own current-thread runtime.
    pub(crate) fn new(stream: &'a TcpStream, exclusive: bool) -> SocketTx<'a> {
        SocketTx {
            stream,
            exclusive,
            full: false,
        }
    }

    fn took(&mut self, r: io::Result<usize>, asked: usize) -> io::Result<usize> {
        if let Ok(n) = r {
            if n < asked && self.exclusive {
                let _ = self.stream.try_io(Interest::WRITABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
                self.full = true;
            }
        }
        r
    }
}

impl Transmit for SocketTx<'_> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.full {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let asked = bufs.iter().map(|b| b.len()).sum();
        let r = if bufs.len() == 1 {
            // The common case, one buffer: a plain send.
            self.stream.try_write(&bufs[0])
        } else {
            self.stream.try_write_vectored(bufs)
        };
        self.took(r, asked)
    }

    fn write_file(&mut self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
        if self.full {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let stream = self.stream;
        // A short count is not taken as a full socket here: it may be the
        // end of a file that shrank, which the next call reports as 0.
        stream.try_io(Interest::WRITABLE, || {
            let mut at = offset;
            rustix::fs::sendfile(stream, file, Some(&mut at), len).map_err(io::Error::from)
        })
    }
}

/// Wakes the one task that drives a connection: a flag and that task's
/// waker. tokio's `Notify` serves any number of waiters, and its waiter
/// list cost about ten atomic operations per wait (registered, then
/// removed on every task poll, callgrind); this costs two or three.
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
    /// no wake and goes back to sleep at once instead of making a pass.
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
            // either seen by the look or wakes the new waker.
            self.waker.register(cx.waker());
            if self.woken.load(Ordering::Acquire) != 0 && self.woken.swap(0, Ordering::AcqRel) != 0
            {
                return Poll::Ready(());
            }
            Poll::Pending
        })
    }
}
