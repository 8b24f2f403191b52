//! A connection's driver: the thin tokio loop around the sans-IO engine
//! ([`ServerConn`](httpq_proto::server_conn::ServerConn)). It moves bytes
//! between the socket and the engine, routes each parsed head to its
//! queue, and sleeps on three things: the socket, a wake from the
//! application, and the engine's next deadline. Every protocol decision is
//! the engine's.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use httpq_proto::server_conn::{Accept, ConnConfig, Input, Timeouts};
use tokio::io::{Interest, Ready};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use crate::conn::{Conn, ConnEnv, ConnShared, SocketTx};
use crate::counters::Counters;
use crate::disconnect::{recent, Completion, DisconnectReason};
use crate::properties::{OverflowPolicy, Properties};
use crate::registry;
use crate::request_queue::{Filled, QueueInner, Request};
use crate::routes::{RouteCache, RouteTable};

/// Rounds of read, parse and write one pass makes before it lets the
/// worker's other tasks run.
const MAX_ROUNDS: u32 = 16;

/// What a session's connections need of it, shared by its workers.
pub(crate) struct Site {
    pub env: Arc<ConnEnv>,
    pub routes: Arc<RouteTable>,
    pub props: RwLock<Properties>,
}

impl Site {
    pub(crate) fn properties(&self) -> Properties {
        self.props.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The engine's settings for a connection accepted now.
    pub(crate) fn conn_config(&self) -> ConnConfig {
        let p = self.props.read().unwrap_or_else(|e| e.into_inner());
        ConnConfig {
            limits: p.limits,
            timeouts: p.timeouts.normalized(),
            half_close: p.half_close,
            max_pipelined: p.max_pipelined.max(1),
        }
    }
}

/// The driver's own state (the engine is in the connection's lock).
struct Driver {
    stream: Arc<TcpStream>,
    conn: Arc<Conn>,
    site: Arc<Site>,
    /// The request-queue share this connection's requests go to (its worker's).
    share: usize,
    /// The session's timeouts when the connection was accepted.
    base: Timeouts,
    /// The request the next head is parsed into, in place.
    next: Option<Request>,
    /// The last routing decision, reused while host and path repeat.
    routes: RouteCache,
    /// Requests parsed since the last hand-over, all for `batch_queue`.
    batch: Vec<Request>,
    batch_queue: Option<Arc<QueueInner>>,
    /// Reading paused with its readiness cleared (the engine wanted no
    /// input): once it wants input again, read at once — no new readiness
    /// event may ever come, since the client may be blocked on a full window.
    read_paused: bool,
    /// The runtime is current-thread (see the short read in `read`).
    single_thread: bool,
    finished: bool,
    /// The connection's place under the session's connection limit.
    _permit: OwnedSemaphorePermit,
}

/// What one pass over the connection found.
struct Pass {
    end: Option<(DisconnectReason, bool)>,
    deadline: Option<Instant>,
    /// Output is waiting for the socket to take it.
    blocked: bool,
    fin: bool,
}

/// The task that runs a connection to its end. The driver exists before
/// the task is first polled, so a task dropped unpolled (its runtime shut
/// down) still ends the connection: its waiters are told and its id freed.
pub(crate) fn run(
    stream: TcpStream,
    conn: Arc<Conn>,
    site: Arc<Site>,
    share: usize,
    permit: OwnedSemaphorePermit,
) -> impl std::future::Future<Output = ()> + Send {
    let stream = Arc::new(stream);
    conn.lock().io = Some(stream.clone());
    let base = site.conn_config().timeouts;
    let mut d = Driver {
        stream,
        conn,
        site,
        share,
        base,
        next: None,
        routes: RouteCache::default(),
        batch: Vec::with_capacity(16),
        batch_queue: None,
        read_paused: false,
        single_thread: tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread,
        finished: false,
        _permit: permit,
    };
    async move {
        let (reason, reset) = d.serve().await;
        d.finish(reason, reset);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Dropped unfinished: its runtime is shutting down with its session.
        if !self.finished {
            self.finish(DisconnectReason::ServerShutdown, false);
        }
    }
}

enum Event {
    Woken,
    Ready(io::Result<Ready>),
    Timer,
}

impl Driver {
    async fn serve(&mut self) -> (DisconnectReason, bool) {
        let mut sleep: Pin<Box<Sleep>> =
            Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365)));
        let mut armed: Option<Instant> = None;
        let mut ready = None;
        loop {
            let pass = self.pass(ready.take());
            if let Some(end) = pass.end {
                return end;
            }
            // The timer is re-armed only when a deadline comes *earlier*; a
            // later one (the idle clock moving on with every request) lets
            // the armed timer fire early and be re-checked — far cheaper
            // than resetting a timer on every request.
            if let Some(d) = pass.deadline {
                if armed.is_none_or(|a| d < a) {
                    sleep.as_mut().reset(tokio::time::Instant::from_std(d));
                    armed = Some(d);
                }
            }
            // After a FIN the socket stays read-ready for good, so only an
            // error (an RST after the FIN) is watched for.
            let mut interest = if pass.fin {
                Interest::ERROR
            } else {
                Interest::READABLE
            };
            if pass.blocked {
                interest |= Interest::WRITABLE;
            }
            let event = tokio::select! {
                biased;
                _ = self.conn.wake.wait() => Event::Woken,
                r = self.stream.ready(interest) => Event::Ready(r),
                _ = sleep.as_mut(), if pass.deadline.is_some() => Event::Timer,
            };
            match event {
                Event::Woken => {}
                Event::Timer => {
                    armed = None;
                    if let Some(end) = self.on_timer() {
                        return end;
                    }
                }
                Event::Ready(Err(_)) => return (DisconnectReason::Reset, false),
                Event::Ready(Ok(r)) => ready = Some(r),
            }
        }
    }

    /// One look at everything: read what the socket has, parse and route,
    /// write what is ready, retire what was answered. All under one lock.
    fn pass(&mut self, ready: Option<Ready>) -> Pass {
        let now = Instant::now();
        let conn = self.conn.clone();
        let mut st = conn.lock();
        // An end asked from outside (an abort, a failed write from the
        // application's side) wins over what the socket says next.
        let mut end = st.engine.aborted();
        if let (None, Some(r)) = (end, ready) {
            end = self.read(&mut st, r, now);
        }
        let mut blocked = false;
        let mut wrote = false;
        let mut rounds = 0;
        while end.is_none() {
            rounds += 1;
            if rounds > MAX_ROUNDS {
                // Fair to the worker's other connections (a long upload
                // draining, say): go on after them.
                self.conn.wake.wake();
                break;
            }
            // Reading paused with its readiness cleared resumes as soon as
            // the engine wants input again: after an answer, or here, after
            // a drain or parse emptied the buffer (no readiness event will
            // come for bytes already in the socket).
            if self.read_paused && st.engine.wants_input() {
                self.read_paused = false;
                end = self.resume_read(&mut st, now);
                if end.is_some() {
                    break;
                }
            }
            end = self.dispatch_all(&mut st, now);
            self.hand_over(&mut st);
            if st.engine.has_answers() {
                self.conn.with_fixed_lines(|f| st.engine.flush_answers(f));
            }
            if end.is_some() {
                break;
            }
            if !st.engine.output().is_empty() {
                match st
                    .engine
                    .output()
                    .write_to(&mut SocketTx::new(&self.stream, self.single_thread))
                {
                    Ok(n) => {
                        Counters::add(&self.conn.counters.bytes_sent, n as u64);
                        st.engine.on_written(n, now);
                        wrote |= n > 0;
                    }
                    Err(_) => {
                        end = Some((DisconnectReason::WriteFailed, false));
                        break;
                    }
                }
                blocked = !st.engine.output().is_empty();
                if blocked {
                    st.engine.on_write_blocked(now);
                }
            }
            let r = st.engine.retire(now);
            if r.responses > 0 {
                Counters::add(&self.conn.counters.responses_sent, u64::from(r.responses));
                self.conn.env.answered();
            }
            // Room in the pipeline, a body to drain, or paused reading that
            // can resume: go round again.
            let resume = self.read_paused && st.engine.wants_input();
            if !(r.room || r.draining || resume) || r.close {
                break;
            }
        }
        let counts = st.engine.take_counts();
        if counts.protocol_errors > 0 {
            Counters::add(
                &self.conn.counters.protocol_errors,
                u64::from(counts.protocol_errors),
            );
        }
        let end = end.or_else(|| st.engine.should_end());
        let deadline = st.engine.deadline(now).0;
        let fin = st.engine.peer_fin();
        drop(st);
        if wrote {
            self.conn.output_moved();
        }
        Pass {
            end,
            deadline,
            blocked,
            fin,
        }
    }

    /// The socket is ready: read into the engine, or, when it wants no
    /// input, only watch for the peer leaving.
    fn read(
        &mut self,
        st: &mut ConnShared,
        ready: Ready,
        now: Instant,
    ) -> Option<(DisconnectReason, bool)> {
        if st.engine.peer_fin() {
            if ready.is_error() || matches!(self.stream.take_error(), Ok(Some(_)) | Err(_)) {
                return Some((DisconnectReason::Reset, false));
            }
            return None;
        }
        if !ready.is_readable() && !ready.is_read_closed() {
            return None;
        }
        let Some(buf) = st.engine.read_buf() else {
            // Not taking input now, but still watching for the peer
            // leaving: a FIN or RST shows up as read-closed without a read.
            if ready.is_read_closed() {
                return self.peer_closed(st);
            }
            // Clear the readiness so the task sleeps until the next socket
            // event instead of spinning on data it cannot take.
            let _ = self.stream.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
            self.read_paused = true;
            return None;
        };
        let room = buf.capacity() - buf.len();
        match self.stream.try_read_buf(buf) {
            Ok(0) => self.peer_closed(st),
            Ok(n) => {
                if n < room && self.single_thread {
                    // A short read drained the socket: clear the readiness
                    // now rather than learn it from one more read that would
                    // block (one syscall per request saved). A FIN stays
                    // visible: tokio never clears the read-closed bit. Only
                    // on a current-thread runtime: there no I/O driver can
                    // record a new event between the read and this clear,
                    // which would then be wiped out with it.
                    let _ = self.stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(io::ErrorKind::WouldBlock.into())
                    });
                }
                self.took(st, n, now);
                None
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(_) => Some((DisconnectReason::Reset, false)),
        }
    }

    fn took(&self, st: &mut ConnShared, n: usize, now: Instant) {
        Counters::add(&self.conn.counters.bytes_received, n as u64);
        st.engine.received(n, now);
    }

    /// Reading was paused with its readiness cleared, and now the engine
    /// wants input. tokio would refuse a read until a new readiness event —
    /// which never comes if the bytes are already in the socket and the
    /// client is blocked on the full window — so the socket is read
    /// directly, until it would block (then new bytes raise a new event)
    /// or the engine wants no more (paused again).
    fn resume_read(
        &mut self,
        st: &mut ConnShared,
        now: Instant,
    ) -> Option<(DisconnectReason, bool)> {
        const STEP: usize = 16 * 1024;
        loop {
            let Some(buf) = st.engine.read_buf() else {
                self.read_paused = true;
                return None;
            };
            let start = buf.len();
            buf.resize(start + STEP, 0);
            let sock = socket2::SockRef::from(&*self.stream);
            let r = (&*sock).read(&mut buf[start..]);
            let n = *r.as_ref().unwrap_or(&0);
            buf.truncate(start + n);
            match r {
                Ok(0) => return self.peer_closed(st),
                Ok(n) => {
                    self.took(st, n, now);
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
    fn peer_closed(&mut self, st: &mut ConnShared) -> Option<(DisconnectReason, bool)> {
        if matches!(self.stream.take_error(), Ok(Some(_)) | Err(_)) {
            return Some((DisconnectReason::Reset, false));
        }
        self.read_paused = false;
        st.engine.peer_closed().map(|r| (r, false))
    }

    /// Takes every request head the engine has parsed, routing each.
    fn dispatch_all(
        &mut self,
        st: &mut ConnShared,
        now: Instant,
    ) -> Option<(DisconnectReason, bool)> {
        loop {
            let next = self
                .next
                .get_or_insert_with(|| Request::blank(&self.conn, now));
            match st.engine.poll_input(next.head_mut(), now) {
                Input::Request(seq) => self.dispatch(st, seq, now),
                Input::Idle => return None,
                Input::Close(reason) => return Some((reason, false)),
            }
        }
    }

    /// Routes the request just parsed into `self.next` and has the engine
    /// take it on; queues it for the next hand-over, or answers it.
    fn dispatch(&mut self, st: &mut ConnShared, seq: u32, now: Instant) {
        Counters::inc(&self.conn.counters.requests_received);
        let mut request = self.next.take().expect("parsed into");
        let env = &*self.conn.env;
        let head = request.head();
        // Most targets route as they are; only ones that need decoding or
        // normalising get their cooked URL built (and checked) up front.
        let simple = head.simple_path(&env.limits);
        let cooked = match simple {
            Some(_) => None,
            None => match head.cooked_url("http", self.conn.local, &env.limits) {
                Ok(u) => Some(u),
                Err(e) => {
                    st.engine.reject(seq, e);
                    self.next = Some(request);
                    return;
                }
            },
        };
        let (host, path) = match (&cooked, simple) {
            (Some(u), _) => (u.host.as_bytes(), u.path.as_bytes()),
            (None, path) => (head.host().unwrap_or_default(), path.unwrap_or(b"/")),
        };
        let has_body = !head.body().is_empty();
        let route =
            self.site
                .routes
                .route_cached(&mut self.routes, "http", host, self.conn.local, path);
        let timeouts = route.map(|r| r.timeouts.map_or(self.base, |t| t.or(self.base)));
        let context = route.map(|r| r.context);
        let mut queue_id = route.and_then(|r| r.queue.as_ref()).map(|q| q.0);
        // A batch goes to one queue: a request for another hands the batch over first.
        if let Some(id) = queue_id {
            if self.batch_queue.as_ref().is_none_or(|b| b.id != id) {
                self.hand_over(st);
                self.batch_queue = self.routes.queue();
                if self.batch_queue.is_none() {
                    // Dropped since it was routed to: as if unbound.
                    queue_id = None;
                }
            }
        }
        let Some(queue_id) = queue_id else {
            // Requests go to their queues in order: the batch before this
            // one is handed over (and maybe refused) before it is answered.
            self.hand_over(st);
            Counters::inc(&self.conn.counters.unrouted);
            st.engine.accept(
                seq,
                Accept {
                    queue: 0,
                    timeouts,
                    copy_body: 0,
                },
            );
            let (status, why) = if context.is_some() {
                (503, "the URL group has no request queue")
            } else {
                (400, "no URL prefix matches this request")
            };
            answer(&self.conn, st, seq, status, why, !has_body);
            self.next = Some(request);
            return;
        };
        let copy_body = self.batch_queue.as_ref().map_or(0, |q| q.copy_body());
        let body = st.engine.accept(
            seq,
            Accept {
                queue: queue_id,
                timeouts,
                copy_body,
            },
        );
        request.fill(Filled {
            seq,
            url_context: context.unwrap_or(0),
            cooked,
            expires: now + timeouts.unwrap_or(self.base).request_queue,
            body: body.bytes,
            more_body: body.more,
        });
        self.batch.push(request);
    }

    /// See [`hand_over`].
    fn hand_over(&mut self, st: &mut ConnShared) {
        hand_over(
            &mut self.batch_queue,
            &mut self.batch,
            self.share,
            &self.conn,
            st,
        );
    }

    /// The timer fired: the engine says whether a timeout is due. A head
    /// that never finished gets its 408 written, as far as the socket
    /// takes it now, before the connection ends.
    fn on_timer(&mut self) -> Option<(DisconnectReason, bool)> {
        let now = Instant::now();
        let mut st = self.conn.lock();
        let reason = st.engine.on_timeout(now)?;
        Counters::inc(&self.conn.counters.timeouts);
        if st.engine.has_answers() {
            self.conn.with_fixed_lines(|f| st.engine.flush_answers(f));
            let _ = st
                .engine
                .output()
                .write_to(&mut SocketTx::new(&self.stream, self.single_thread));
        }
        Some((reason, false))
    }

    /// The connection is over: record why, wake every kind of waiter, free the id.
    fn finish(&mut self, reason: DisconnectReason, reset: bool) {
        self.finished = true;
        let conn = &self.conn;
        let counters = &conn.counters;
        let (f, posted) = {
            let mut st = conn.lock();
            let f = st.engine.finish(reason);
            st.reason = Some(f.reason);
            st.io = None;
            (f, std::mem::take(&mut st.posted))
        };
        // Requests parsed but never handed over go with the connection.
        self.batch.clear();
        self.next = None;
        if reset || (f.reason == DisconnectReason::Cancelled && f.started) {
            // SO_LINGER 0: close sends RST instead of FIN.
            let _ = socket2::SockRef::from(&*self.stream).set_linger(Some(Duration::ZERO));
        }
        // Counters first: a woken waiter reading them sees this end counted.
        Counters::dec(&counters.connections_open);
        Counters::add(&counters.requests_abandoned, f.abandoned);
        let client_broke = matches!(
            f.reason,
            DisconnectReason::ClientClosed
                | DisconnectReason::Reset
                | DisconnectReason::WriteFailed
                | DisconnectReason::Timeout(_)
        );
        if f.abandoned > 0 && client_broke {
            Counters::inc(&counters.disconnects);
        }
        conn.set_disconnected();
        // Remembered before the id leaves the registry: a waiter arriving in
        // between must find the reason, not an unexplained "closed".
        recent::remember(conn.id, f.reason);
        registry::remove(conn.id);
        conn.gone.notify_waiters();
        conn.release_all();
        conn.env.answered();
        for (cq, key, _) in posted {
            cq.post(Completion {
                key,
                connection_id: conn.id,
                reason: f.reason,
            });
        }
    }
}

/// Makes the requests routed since the last hand-over visible to their
/// queue, in order, in one push; answers those it refuses.
fn hand_over(
    batch_queue: &mut Option<Arc<QueueInner>>,
    batch: &mut Vec<Request>,
    share: usize,
    conn: &Conn,
    st: &mut ConnShared,
) {
    // Held only while a batch is being gathered, so a queue dropped by
    // the application is not kept alive by idle connections.
    let Some(queue) = batch_queue.take() else {
        return;
    };
    if batch.is_empty() {
        return;
    }
    let Some(why) = queue.push_batch(share, batch) else {
        return;
    };
    let policy = queue.overflow_policy();
    // Refused requests are a suffix of the batch, so of the connection's
    // requests too.
    let mut closed = false;
    for request in std::mem::take(batch) {
        Counters::inc(&conn.counters.queue_rejections);
        let (seq, has_body) = (request.seq(), request.has_body());
        drop(request);
        if closed {
            // An earlier refusal closes the connection: the rest are
            // dropped as if never read, as they would have been had
            // parsing stopped at that refusal.
            st.engine.forget_from(seq);
            break;
        }
        match policy {
            OverflowPolicy::Reset => {
                // Refused, never handed out: not an abandoned request.
                st.engine.disown(seq);
                st.engine.abort(DisconnectReason::ServerClosed, true);
                closed = true;
            }
            OverflowPolicy::ServiceUnavailable => {
                answer(conn, st, seq, 503, why, false);
                closed = true;
            }
            OverflowPolicy::ServiceUnavailableWithReason => {
                answer(conn, st, seq, 503, why, !has_body);
                closed = has_body;
            }
        }
    }
}

/// The connection answers request `seq` itself, with this second's `Date`.
fn answer(conn: &Conn, st: &mut ConnShared, seq: u32, status: u16, why: &str, keep: bool) {
    conn.with_fixed_lines(|f| st.engine.answer(seq, status, why, keep, f));
}
