//! A connection's driver: the thin tokio loop around the sans-IO engine
//! ([`ServerConn`](httpq_proto::server_conn::ServerConn)). It moves bytes
//! between the socket and the engine, routes each parsed head to its
//! queue, and sleeps on three things: the socket, a wake from the
//! application, and the engine's next deadline. Every protocol decision is
//! the engine's.

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use httpq_proto::server_conn::{Accept, Input, Timeouts};
use tokio::io::{Interest, Ready};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use tracing::Instrument;

use crate::conn::{output_pending, transmit, Conn, ConnShared, SockReader, SockWriter};
use crate::counters::Counters;
use crate::disconnect::DisconnectReason;
use crate::http2;
use crate::properties::OverflowPolicy;
use crate::record::LogHead;
use crate::registry;
use crate::request_queue::{Filled, QueueInner, Request};
use crate::routes::RouteCache;
use crate::site::Site;

/// Rounds of read, parse and write one pass makes before it lets the
/// worker's other tasks run.
const MAX_ROUNDS: u32 = 16;

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
    permit: Option<OwnedSemaphorePermit>,
    /// Plaintext: the first bytes may yet turn out to be the HTTP/2 preface.
    h2c_check: bool,
    /// Only part of the preface has come: parse nothing until it is whole.
    h2c_hold: bool,
    /// The connection opened with the preface: these bytes (read already)
    /// and the socket go to the HTTP/2 driver.
    upgrade: Option<bytes::Bytes>,
    /// Ending, with sealed TLS records still to write, until then.
    tls_drain: Option<Instant>,
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
    // Every event of the connection (HTTP/2 included) carries it; a
    // disabled span costs a check per poll.
    let span = tracing::debug_span!("conn", id = conn.id, peer = %conn.remote);
    let base = site.conn_config().timeouts;
    let h2c_check = conn.tls.is_none() && site.properties().http2.enable_cleartext;
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
        permit: Some(permit),
        h2c_check,
        h2c_hold: false,
        upgrade: None,
        tls_drain: None,
    };
    async move {
        let (reason, reset) = d.serve().await;
        if let Some(prefix) = d.upgrade.take() {
            // h2c with prior knowledge: the HTTP/2 driver takes over the
            // socket and the connection (nothing was handed out yet).
            d.finished = true;
            d.conn.lock().io = None;
            let io = http2::SharedSocket(d.stream.clone());
            let (conn, site, share) = (d.conn.clone(), d.site.clone(), d.share);
            let permit = d.permit.take().expect("held until the connection ends");
            drop(d);
            http2::serve(io, prefix, conn, site, share, permit).await;
            return;
        }
        d.finish(reason, reset);
    }
    .instrument(span)
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
        // Over TLS the handshake may have brought request bytes along,
        // already decrypted: look before waiting for the socket.
        let mut ready = self.conn.tls.is_some().then_some(Ready::READABLE);
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
        while end.is_none() && !self.h2c_hold {
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
            if output_pending(&mut st) {
                match transmit(&mut st, &self.stream, self.single_thread) {
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
                blocked = output_pending(&mut st);
                if blocked {
                    st.engine.on_write_blocked(now);
                }
            }
            let r = st.engine.retire(now);
            if r.responses > 0 {
                Counters::add(&self.conn.counters.responses_sent, u64::from(r.responses));
                self.conn.record_done(&mut st);
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
        let mut end = end.or_else(|| st.engine.should_end());
        let mut deadline = st.engine.deadline(now).0;
        // Over TLS the engine's output may be written while its sealed
        // records still wait in rustls for the socket: a graceful end
        // (a response that closes) lets them go first, for at most the
        // IdleConnection time.
        if end.is_some()
            && st.engine.aborted().is_none()
            && st.tls.as_ref().is_some_and(|t| t.wants_write())
        {
            let until = *self
                .tls_drain
                .get_or_insert(now + self.base.idle_connection);
            if now < until {
                end = None;
                blocked = true;
                deadline = Some(deadline.map_or(until, |d| d.min(until)));
            }
        }
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
        if st.tls.is_some() {
            return self.read_tls(st, now, false);
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
                if self.h2c_check {
                    return self.check_preface(st);
                }
                None
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(_) => Some((DisconnectReason::Reset, false)),
        }
    }

    /// The first bytes of a plaintext connection: the HTTP/2 preface hands
    /// the connection to the HTTP/2 driver (the serve loop ends with it in
    /// `upgrade`); part of it holds parsing back; anything else is HTTP/1.
    fn check_preface(&mut self, st: &mut ConnShared) -> Option<(DisconnectReason, bool)> {
        let Some(buf) = st.engine.read_buf() else {
            self.h2c_check = false;
            return None;
        };
        let n = buf.len().min(http2::PREFACE.len());
        if buf[..n] != http2::PREFACE[..n] {
            self.h2c_check = false;
            self.h2c_hold = false;
            return None;
        }
        if n < http2::PREFACE.len() {
            self.h2c_hold = true;
            return None;
        }
        self.upgrade = Some(buf.split().freeze());
        Some((DisconnectReason::ServerClosed, false))
    }

    /// Reads over TLS: records from the socket into the TLS session, then
    /// the plaintext into the engine, as far as it wants input.
    fn read_tls(
        &mut self,
        st: &mut ConnShared,
        now: Instant,
        raw: bool,
    ) -> Option<(DisconnectReason, bool)> {
        let ConnShared { engine, tls, .. } = st;
        let tls = tls.as_deref_mut().expect("a TLS connection");
        let mut eof = false;
        // Round by round: rustls takes records only while its plaintext
        // has been read, so records and plaintext alternate until the
        // socket has no more (or the engine wants no more).
        loop {
            let mut progress = false;
            let mut read = 0;
            while tls.wants_read() {
                match tls.read_tls(&mut SockReader {
                    stream: &self.stream,
                    raw,
                }) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => read += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Some((DisconnectReason::Reset, false)),
                }
                if let Err(e) = tls.process_new_packets() {
                    // The alert rustls queued goes out, best effort.
                    tracing::debug!(connection = self.conn.id, error = %e, "TLS error");
                    let _ = tls.write_tls(&mut SockWriter(&self.stream));
                    return Some((DisconnectReason::Reset, false));
                }
            }
            progress |= read > 0;
            loop {
                let Some(buf) = engine.read_buf() else {
                    // Not taking input now: resumed when the engine wants it.
                    self.read_paused = true;
                    let _ = self.stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(io::ErrorKind::WouldBlock.into())
                    });
                    return None;
                };
                let start = buf.len();
                buf.resize(start + 16 * 1024, 0);
                let r = tls.reader().read(&mut buf[start..]);
                let n = *r.as_ref().unwrap_or(&0);
                buf.truncate(start + n);
                match r {
                    Ok(0) => {
                        // close_notify: the client's clean end.
                        self.read_paused = false;
                        return engine.peer_closed().map(|r| (r, false));
                    }
                    Ok(n) => {
                        // Counted as HTTP bytes, as sent bytes are (and as
                        // over HTTP/2): TLS framing is not counted.
                        Counters::add(&self.conn.counters.bytes_received, n as u64);
                        engine.received(n, now);
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        self.read_paused = false;
                        return engine.peer_closed().map(|r| (r, false));
                    }
                    Err(_) => return Some((DisconnectReason::Reset, false)),
                }
            }
            if eof || !progress {
                break;
            }
        }
        if eof {
            if matches!(self.stream.take_error(), Ok(Some(_)) | Err(_)) {
                return Some((DisconnectReason::Reset, false));
            }
            self.read_paused = false;
            return engine.peer_closed().map(|r| (r, false));
        }
        None
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
        if st.tls.is_some() {
            return self.read_tls(st, now, true);
        }
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
        let method = st.engine.parsed_method();
        st.current.set(seq, method, head.target());
        if self.conn.log.is_some() {
            st.log_heads
                .push_back((seq, Box::new(LogHead::of(head, false))));
        }
        // Most targets route as they are; only ones that need decoding or
        // normalising get their cooked URL built (and checked) up front.
        let simple = head.simple_path(&env.limits);
        let cooked = match simple {
            Some(_) => None,
            None => match head.cooked_url(self.conn.scheme(), self.conn.local, &env.limits) {
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
        let route = self.site.routes.route_cached(
            &mut self.routes,
            self.conn.scheme(),
            host,
            self.conn.local,
            path,
        );
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
        if st.engine.has_answers() {
            self.conn.with_fixed_lines(|f| st.engine.flush_answers(f));
            let _ = transmit(&mut st, &self.stream, self.single_thread);
        }
        drop(st);
        // Counted (and logged) outside the connection's lock.
        if let DisconnectReason::Timeout(kind) = reason {
            self.conn.counters.timed_out(kind, self.conn.id);
        }
        Some((reason, false))
    }

    /// The connection is over: record why, wake every kind of waiter, free the id.
    fn finish(&mut self, reason: DisconnectReason, reset: bool) {
        self.finished = true;
        let f = {
            let mut st = self.conn.lock();
            if let Some(tls) = st.tls.as_deref_mut() {
                // A clean TLS end, best effort.
                tls.send_close_notify();
                let _ = tls.write_tls(&mut SockWriter(&self.stream));
            }
            st.engine.finish(reason)
        };
        // Requests parsed but never handed over go with the connection.
        self.batch.clear();
        self.next = None;
        if reset || (f.reason == DisconnectReason::Cancelled && f.started) {
            // SO_LINGER 0: close sends RST instead of FIN.
            let _ = socket2::SockRef::from(&*self.stream).set_linger(Some(Duration::ZERO));
        }
        registry::closed(&self.conn, f.reason, f.abandoned);
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
    tracing::warn!(
        conn = conn.id,
        queue = queue.name(),
        requests = batch.len(),
        why,
        "request queue refused requests"
    );
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
