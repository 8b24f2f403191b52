//! HTTP/2 connections: the task that drives one — reads feed the
//! sans-IO engine ([`httpq_proto::h2`]: framing, HPACK, flow control,
//! stream limits), its events become requests in the same request queues
//! HTTP/1.1 feeds, and what the engine holds is written out.
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
//! The engine bounds what the known attacks need (CONTINUATION floods,
//! HPACK bombs, unbounded streams, control-frame floods); resets — the
//! rapid-reset attack against an application — are budgeted here.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use httpq_proto::h2::{self as engine, code};
use httpq_proto::server_conn::Timeouts;
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedSemaphorePermit;

use crate::conn::Conn;
use crate::counters::Counters;
use crate::disconnect::{DisconnectReason, TimeoutKind};
use crate::registry;
use crate::routes::RouteCache;
use crate::site::Site;
use crate::stream::{H2Table, Stream};

mod dispatch;
mod transport;

pub(crate) use transport::{SharedSocket, Transport};

/// The client's connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = engine::PREFACE;

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
    T: Transport,
{
    let _permit = permit;
    let props = site.properties();
    let timeouts = props.timeouts.normalized();
    let h = props.http2;
    let engine = engine::Conn::new(engine::Config {
        max_concurrent_streams: h.max_concurrent_client_streams,
        max_header_list_size: h.max_header_list_size,
        initial_window_size: h.initial_window_size,
        connection_window_size: h.connection_window_size,
        max_frame_size: h.max_frame_size,
    });
    let env = conn.env.clone();
    let table = H2Table::new(
        engine,
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
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    rbuf.extend_from_slice(&prefix);
    let mut c = H2Conn {
        io,
        conn: conn.clone(),
        site,
        share,
        base: timeouts,
        routes: RouteCache::default(),
        active: Vec::new(),
        next_seq: 1,
        resets: ResetBudget::new(h.max_client_resets_per_second),
        goaway_sent: false,
        peer_goaway: false,
        body_timer: None,
        rbuf,
        wbuf: Vec::new(),
        wpos: 0,
        woff: 0,
        unflushed: false,
        events: Vec::new(),
        progressed: Vec::new(),
        stall: None,
    };
    let reason = c.run().await;
    c.close().await;
    let active = std::mem::take(&mut c.active);
    drop(c);
    unfinished.0 = None;
    finish(&conn, reason, &active);
}

struct H2Conn<T> {
    io: T,
    conn: Arc<Conn>,
    site: Arc<Site>,
    share: usize,
    base: Timeouts,
    routes: RouteCache,
    /// Streams handed to the application (pruned of finished ones now
    /// and then): where request body and resets are delivered.
    active: Vec<Arc<Stream>>,
    next_seq: u32,
    resets: ResetBudget,
    goaway_sent: bool,
    /// The client sent GOAWAY: the connection ends when its streams do.
    peer_goaway: bool,
    /// The earliest EntityBody, MinSendRate or drain deadline of a stream.
    body_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    rbuf: BytesMut,
    /// Output taken from the engine, written from `wpos`/`woff` on.
    wbuf: Vec<Bytes>,
    wpos: usize,
    woff: usize,
    /// Bytes were written since the last flush (TLS buffers them).
    unflushed: bool,
    events: Vec<engine::Event>,
    progressed: Vec<u32>,
    /// Since output began waiting without progress (see `send_stalled`).
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

enum Event {
    /// Bytes were read into `rbuf`.
    Read,
    /// The client closed its side.
    Eof,
    Failed(DisconnectReason),
    Woken,
    Idle,
    HeaderWait,
}

impl<T: Transport> H2Conn<T> {
    fn table(&self) -> &H2Table {
        self.conn.h2.get().expect("set before the connection runs")
    }

    async fn run(&mut self) -> DisconnectReason {
        let mut idle: Option<Pin<Box<tokio::time::Sleep>>> = None;
        let mut handshake = Some(Box::pin(tokio::time::sleep(self.base.header_wait)));
        if !self.rbuf.is_empty() {
            if let Some(r) = self.on_input() {
                return r;
            }
        }
        loop {
            let event = {
                let conn = self.conn.clone();
                let wake = conn.wake.wait();
                tokio::pin!(wake);
                poll_fn(|cx| self.poll_event(cx, wake.as_mut(), &mut idle, &mut handshake)).await
            };
            match event {
                Event::Read => {
                    if let Some(r) = self.on_input() {
                        return r;
                    }
                    if handshake.is_some() && self.table().engine().settled() {
                        handshake = None;
                    }
                }
                Event::Eof => return DisconnectReason::ClientClosed,
                Event::Failed(r) => return r,
                Event::Woken => {
                    let aborted = self.conn.lock().engine.aborted();
                    if let Some((reason, _)) = aborted {
                        self.table().engine().go_away(code::NO_ERROR);
                        return reason;
                    }
                    if self.table().goaway.load(Ordering::Acquire) && !self.goaway_sent {
                        self.goaway_sent = true;
                        self.table().engine().go_away(code::NO_ERROR);
                    }
                }
                Event::Idle => {
                    (self.conn.counters).timed_out(TimeoutKind::IdleConnection, self.conn.id);
                    self.table().engine().go_away(code::NO_ERROR);
                    return DisconnectReason::Timeout(TimeoutKind::IdleConnection);
                }
                Event::HeaderWait => {
                    (self.conn.counters).timed_out(TimeoutKind::HeaderWait, self.conn.id);
                    return DisconnectReason::Timeout(TimeoutKind::HeaderWait);
                }
            }
            if (self.goaway_sent || self.peer_goaway) && self.quiet() {
                return if self.goaway_sent {
                    DisconnectReason::ServerClosed
                } else {
                    DisconnectReason::ClientClosed
                };
            }
        }
    }

    /// No stream is open, and the application holds none.
    fn quiet(&self) -> bool {
        self.table().in_flight() == 0 && self.table().engine().open_streams() == 0
    }

    /// Writes what is left (a GOAWAY, last answers), briefly, then closes.
    async fn close(&mut self) {
        let flushed = poll_fn(|cx| self.poll_write(cx));
        let _ = tokio::time::timeout(Duration::from_millis(500), flushed).await;
        let _ = tokio::time::timeout(Duration::from_millis(500), self.io.shutdown()).await;
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        wake: Pin<&mut impl Future<Output = ()>>,
        idle: &mut Option<Pin<Box<tokio::time::Sleep>>>,
        handshake: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    ) -> Poll<Event> {
        if wake.poll(cx).is_ready() {
            return Poll::Ready(Event::Woken);
        }
        // Timeouts first: the resets they queue go out in the write below.
        if self.stream_timeouts(cx) {
            return Poll::Ready(Event::Woken);
        }
        if let Poll::Ready(Err(e)) = self.poll_write(cx) {
            return Poll::Ready(Event::Failed(write_failed(&e)));
        }
        if self.send_stalled(cx) {
            (self.conn.counters).timed_out(TimeoutKind::MinSendRate, self.conn.id);
            return Poll::Ready(Event::Failed(DisconnectReason::Timeout(
                TimeoutKind::MinSendRate,
            )));
        }
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(16 * 1024);
        }
        match self.io.poll_read_into(cx, &mut self.rbuf) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Event::Eof),
            Poll::Ready(Ok(n)) => {
                Counters::add(&self.conn.counters.bytes_received, n as u64);
                return Poll::Ready(Event::Read);
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Event::Failed(read_failed(&e))),
            Poll::Pending => {}
        }
        if let Some(h) = handshake.as_mut() {
            if h.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::HeaderWait);
            }
        }
        // IdleConnection runs while no stream is open.
        if self.quiet() {
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

    /// Writes the engine's output; ready when all of it is out.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.wpos == self.wbuf.len() {
                self.wbuf.clear();
                self.wpos = 0;
                self.woff = 0;
                let table = self.conn.h2.get().expect("set before the connection runs");
                table.engine().take_output(&mut self.wbuf);
                if self.wbuf.is_empty() {
                    if self.unflushed {
                        std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Ready(Ok(()));
                }
            }
            let mut slices = [IoSlice::new(&[]); 64];
            let mut k = 0;
            for (i, b) in self.wbuf[self.wpos..].iter().take(64).enumerate() {
                let from = if i == 0 { self.woff } else { 0 };
                slices[k] = IoSlice::new(&b[from..]);
                k += 1;
            }
            let n =
                std::task::ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..k]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            Counters::add(&self.conn.counters.bytes_sent, n as u64);
            self.unflushed = true;
            // Progress: the stall clock starts over, and senders held by
            // output waiting to be written may go on.
            self.stall = None;
            if self.table().any_held() {
                for s in &self.active {
                    s.changed.notify_waiters();
                }
            }
            let mut left = n;
            while left > 0 {
                let rest = self.wbuf[self.wpos].len() - self.woff;
                if left >= rest {
                    left -= rest;
                    self.wpos += 1;
                    self.woff = 0;
                } else {
                    self.woff += left;
                    left = 0;
                }
            }
            let unwritten: usize = self.wbuf[self.wpos..].iter().map(Bytes::len).sum();
            self.table()
                .set_unwritten(unwritten - self.woff.min(unwritten));
        }
    }

    /// Feeds what was read to the engine and acts on its events; the
    /// connection's end if it failed.
    fn on_input(&mut self) -> Option<DisconnectReason> {
        let conn = self.conn.clone();
        let table = conn.h2.get().expect("set before the connection runs");
        let result = {
            let mut eng = table.engine();
            let r = eng.recv(&mut self.rbuf);
            while let Some(e) = eng.poll_event() {
                self.events.push(e);
            }
            eng.take_progressed(&mut self.progressed);
            if !table.any_held() {
                self.progressed.clear();
            }
            r
        };
        let mut events = std::mem::take(&mut self.events);
        let mut calm = false;
        // Streams the client reset in the same read as it opened them
        // never reach the application (a rapid reset starts no handlers).
        let mut reset_at_once: Vec<u32> = Vec::new();
        for e in &events {
            if let engine::Event::Reset { stream, .. } = e {
                reset_at_once.push(*stream);
            }
        }
        reset_at_once.sort_unstable();
        for e in events.drain(..) {
            match e {
                engine::Event::Request { stream, .. }
                    if reset_at_once.binary_search(&stream).is_ok() =>
                {
                    Counters::inc(&self.conn.counters.h2_streams);
                }
                engine::Event::Request {
                    stream,
                    head,
                    end_stream,
                } => self.dispatch(stream, head, end_stream),
                engine::Event::Data { stream, .. } | engine::Event::Reset { stream, .. }
                    if reset_at_once.binary_search(&stream).is_ok()
                        && self.find(stream).is_none() =>
                {
                    if let engine::Event::Reset { remote, .. } = e {
                        if remote {
                            Counters::inc(&self.conn.counters.h2_resets);
                        }
                        calm |= !self.resets.take();
                    }
                }
                engine::Event::Data {
                    stream,
                    data,
                    end_stream,
                } => {
                    let n = data.len();
                    let taken = self
                        .find(stream)
                        .is_some_and(|s| s.push_body(data, end_stream));
                    if !taken && n > 0 {
                        // Nobody reads it (answered, or reset): it goes
                        // back to the windows at once.
                        table.engine().release(stream, n);
                    }
                }
                engine::Event::Reset {
                    stream,
                    code,
                    remote,
                } => {
                    let reason = if remote {
                        DisconnectReason::StreamReset(code)
                    } else {
                        DisconnectReason::Http2Error(code)
                    };
                    if let Some(s) = self.find(stream).cloned() {
                        if s.end(reason) && table.forget(s.seq, reason).is_some() {
                            if remote {
                                Counters::inc(&self.conn.counters.h2_resets);
                            }
                            let conn = &self.conn;
                            tracing::debug!(conn = conn.id, request = registry::request_id(conn.id, s.seq), %reason, "stream reset");
                            lost(conn, &s, reason);
                        }
                    }
                    // Every reset of a stream the server saw spends the
                    // budget, the client's own or one its frames drew
                    // (a stream error: the "made you reset" pattern).
                    calm |= !self.resets.take();
                }
                engine::Event::Refused {
                    stream,
                    code: c,
                    why,
                } => {
                    if c == code::PROTOCOL_ERROR {
                        Counters::inc(&self.conn.counters.protocol_errors);
                    }
                    tracing::debug!(conn = self.conn.id, stream, why, "stream refused");
                    calm |= !self.resets.take();
                }
                engine::Event::GoAway { .. } => self.peer_goaway = true,
            }
        }
        self.events = events;
        for sid in self.progressed.drain(..) {
            if let Some(s) = self.active.iter().rev().find(|s| s.sid == sid) {
                s.changed.notify_waiters();
            }
        }
        self.prune();
        if let Err(e) = result {
            tracing::debug!(
                conn = self.conn.id,
                code = e.code,
                why = e.why,
                "HTTP/2 connection error"
            );
            return Some(DisconnectReason::Http2Error(e.code));
        }
        if calm {
            tracing::warn!(conn = self.conn.id, peer = %self.conn.remote, "HTTP/2 reset budget spent (rapid reset): GOAWAY ENHANCE_YOUR_CALM");
            table.engine().go_away(code::ENHANCE_YOUR_CALM);
            return Some(DisconnectReason::Http2Error(code::ENHANCE_YOUR_CALM));
        }
        None
    }

    fn find(&self, sid: u32) -> Option<&Arc<Stream>> {
        self.active.iter().rev().find(|s| s.sid == sid)
    }

    /// Forgets finished streams once they are most of the list.
    fn prune(&mut self) {
        if self.active.len() > 32 && self.active.len() > 2 * self.table().in_flight() {
            self.active.retain(|s| !s.is_over());
        }
    }

    /// EntityBody and MinSendRate on HTTP/2, per stream: a stream whose
    /// body the application has waited for past its group's EntityBody,
    /// or whose sender a closed window has held past what MinSendRate
    /// allows, is reset (CANCEL) and its request ends with that timeout;
    /// the connection and its other streams go on. Bodies drained after
    /// a complete response end at DrainEntityBody. Deadlines are worked
    /// out again only when a wait begins or the timer fires.
    /// True when, after GOAWAY, the connection may have gone quiet.
    fn stream_timeouts(&mut self, cx: &mut Context<'_>) -> bool {
        let fired = self
            .body_timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        let began = self.table().take_rescan();
        if !fired && !began {
            return false;
        }
        let now = Instant::now();
        let table = self.conn.h2.get().expect("set before the connection runs");
        let mut next: Option<Instant> = table.end_drains(now);
        let counters = &self.conn.counters;
        for s in &self.active {
            match s.deadline() {
                Some((d, kind)) if d <= now => {
                    let reason = DisconnectReason::Timeout(kind);
                    if table.reset(s, reason) && table.forget(s.seq, reason).is_some() {
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
        (self.goaway_sent || self.peer_goaway) && self.quiet()
    }

    /// MinSendRate for the connection, once the application holds none
    /// of its streams (each held stream has its own): output that waits
    /// to be written, or answers held by shut windows, that make no
    /// progress for longer than the rate allows (at least a second) end
    /// the connection. A client that stops reading cannot keep it, and
    /// what it was sent, forever.
    fn send_stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let rate = u64::from(self.base.min_send_rate);
        if rate == 0 || self.table().in_flight() > 0 {
            self.stall = None;
            return false;
        }
        let unwritten: usize = self.wbuf[self.wpos.min(self.wbuf.len())..]
            .iter()
            .map(Bytes::len)
            .sum();
        let waiting = (unwritten + self.table().engine().queued_total()) as u64;
        if waiting == 0 {
            self.stall = None;
            return false;
        }
        let grace = Duration::from_secs(waiting.div_ceil(rate)).max(Duration::from_secs(1));
        let timer = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(grace)));
        timer.as_mut().poll(cx).is_ready()
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

fn read_failed(e: &io::Error) -> DisconnectReason {
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => DisconnectReason::ClientClosed,
        _ => DisconnectReason::Reset,
    }
}

fn write_failed(e: &io::Error) -> DisconnectReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => DisconnectReason::Reset,
        _ => DisconnectReason::WriteFailed,
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
