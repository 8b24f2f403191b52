//! The server side of one HTTP/1.1 connection as a sans-IO state machine:
//! fed bytes and the time, it yields request heads, request bodies, the
//! bytes to write and the next deadline.
//!
//! Every protocol decision of a server connection lives here: pipelining
//! and the order of answers, keep-alive, `100 Continue`, draining a body
//! the application never read, error answers to malformed requests, the
//! half-close policy, and the six timeouts as deadlines. What it does not
//! do: sockets, tasks, routing, queues. A driver (httpq-server's tokio
//! loop, or a test) moves bytes in and out and asks for the next deadline;
//! the application's answers come in by sequence number.
//!
//! The models are quinn-proto's `Connection` and h11's `Connection`.
//!
//! ```
//! use std::time::Instant;
//! use httpq_proto::server_conn::{Accept, ConnConfig, FixedLines, Input, Response, SendFlags, ServerConn};
//! use httpq_proto::RequestHead;
//!
//! let now = Instant::now();
//! let mut conn = ServerConn::new(ConnConfig::default(), now);
//! conn.read_buf().unwrap().extend_from_slice(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
//! conn.received(33, now);
//! let mut head = RequestHead::default();
//! let Input::Request(seq) = conn.poll_input(&mut head, now) else { panic!() };
//! assert_eq!(head.target(), b"/hello");
//! conn.accept(seq, Accept { queue: 1, timeouts: None, copy_body: 0 });
//! let fixed = FixedLines { fields: b"Date: x\r\n", ok_11: b"HTTP/1.1 200 OK\r\nDate: x\r\n" };
//! conn.send_response(seq, 1, &mut Response::new(200).body("hi"), SendFlags::NONE, &fixed).unwrap();
//! let mut wire = Vec::new();
//! conn.output().write_to(&mut wire).unwrap();
//! assert_eq!(wire, b"HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 2\r\n\r\nhi");
//! ```

mod body;
mod config;
mod input;
mod outbuf;
mod respond;
mod response;
mod timers;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::{BodyDecoder, BodyLength, Error, MethodKind, RequestParser, Version};

pub use body::BodyError;
pub use config::{
    ConnConfig, DisconnectReason, HalfClosePolicy, TimeoutKind, Timeouts, PIPE_CAP, WRITE_BUDGET,
};
pub use outbuf::{Outbuf, Transmit};
pub use respond::SendError;
pub use response::{FileChunk, FixedLines, Framing, Response, SendFlags};

use body::BodyPipe;

/// What [`ServerConn::poll_input`] found in the buffered input.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A request head was parsed into the caller's head, with this
    /// sequence number. Route it, then call [`ServerConn::accept`] (or
    /// [`ServerConn::reject`]) before polling again.
    Request(u32),
    /// Nothing more can be done with what is buffered now.
    Idle,
    /// The connection must end, for this reason.
    Close(DisconnectReason),
}

/// How a routed request is taken on.
#[derive(Debug, Clone, Copy)]
pub struct Accept {
    /// Who answers it: an application queue's id, or 0 when the server
    /// answers it itself (then call [`ServerConn::answer`]).
    pub queue: u64,
    /// The request's URL group's timeouts, if it has its own: they apply
    /// from this request on (as http.sys applies a group's timeouts once a
    /// request has been routed to it).
    pub timeouts: Option<Timeouts>,
    /// Body bytes already read that may travel with the request (http.sys's
    /// `HTTP_RECEIVE_REQUEST_FLAG_COPY_BODY`); 0: none.
    pub copy_body: usize,
}

/// The body bytes that travel with an accepted request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BodyStart {
    /// What had arrived, up to the copy limit.
    pub bytes: Bytes,
    /// More body follows, to be read with [`ServerConn::poll_body`].
    pub more: bool,
}

/// What [`ServerConn::retire`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    /// Responses written out completely and forgotten.
    pub responses: u32,
    /// A retired response asked for the connection to close: end it now.
    pub close: bool,
    /// The pipeline was full and now has room: parse again.
    pub room: bool,
    /// An unread request body began draining: read on.
    pub draining: bool,
}

/// A response written out completely, as [`ServerConn::take_done`]
/// reports it: what metrics and access logs record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The request's sequence number on its connection.
    pub seq: u32,
    pub method: MethodKind,
    pub status: u16,
    /// Body bytes sent (a HEAD answer's are 0).
    pub body_bytes: u64,
    /// From the parsed head to the last byte written.
    pub elapsed: Duration,
}

/// What [`ServerConn::finish`] found when the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The reason, with a server close explained where the server knows why.
    pub reason: DisconnectReason,
    /// Requests handed to an application and not completely answered.
    pub abandoned: u64,
    /// A response had begun and not completed.
    pub started: bool,
}

/// Counts a driver adds to its statistics (see [`ServerConn::take_counts`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Malformed requests and bodies answered with an error status.
    pub protocol_errors: u32,
    /// Responses written out completely.
    pub responses: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Sending(Framing),
    Complete,
}

/// One request not yet completely answered; slots are in request order
/// and their sequence numbers consecutive.
struct Slot {
    seq: u32,
    version: Version,
    head_request: bool,
    /// A CONNECT: a 2xx answer would open a tunnel, which this does not do.
    connect: bool,
    keep_alive: bool,
    /// The queue the request went to; 0 for answers the server makes itself.
    queue: u64,
    phase: Phase,
    /// Bytes of this response waiting for earlier responses to finish.
    /// Boxed: few responses are ever parked, and a slot stays small
    /// (pipelined batches keep many in flight).
    pending: Option<Box<Outbuf>>,
    close_after: bool,
    /// Boxed: most requests have no body, or one that came whole.
    body: Option<Box<BodyPipe>>,
    /// For the record made when the response is retired.
    method: MethodKind,
    /// The status sent; 0 until the response begins.
    status: u16,
    /// Body bytes sent (not framing).
    body_bytes: u64,
    /// When the head was parsed.
    started: Instant,
}

/// A head handed out by `poll_input` and not yet accepted.
#[derive(Clone, Copy)]
struct Routing {
    seq: u32,
    method: MethodKind,
    started: Instant,
    version: Version,
    head_request: bool,
    connect: bool,
    keep_alive: bool,
    body: BodyLength,
    expect_continue: bool,
}

/// The body being read off the connection right now.
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

/// An answer the connection decided to make itself (an error status), to be
/// encoded by [`ServerConn::flush_answers`] with the caller's fixed lines.
struct SelfAnswer {
    seq: u32,
    status: u16,
    why: &'static str,
    keep: bool,
}

/// The server side of one HTTP/1.1 connection; see the [module docs](self).
pub struct ServerConn {
    cfg: ConnConfig,
    parser: RequestParser,
    rbuf: BytesMut,
    next_seq: u32,
    /// The last sequence number a request may have; it closes the connection.
    last_seq: u32,
    routing: Option<Routing>,
    reading: Option<Reader>,
    head_started: Option<Instant>,
    last_activity: Instant,
    /// The client sent FIN and the half-close policy allows it.
    fin: bool,
    /// No more requests are read (error answered, close asked, FIN).
    stop_reading: bool,
    /// The last request was parsed: nothing after its body is.
    last_request: bool,
    /// The timeouts in force: the session's until a request is routed, then
    /// those of the last routed request's URL group.
    timeouts: Timeouts,
    slots: VecDeque<Slot>,
    /// Slots still in `Phase::Waiting` (so a send need not scan).
    waiting: usize,
    out: Outbuf,
    /// Memory bytes parked in slots behind unfinished earlier responses.
    parked: usize,
    /// A response asked to close the connection; later ones are refused.
    closing: bool,
    /// A retired response asked to close: the driver ends the connection.
    close_now: bool,
    /// Why the server is closing, when waiters should see more than
    /// `ServerClosed` (a protocol error, a queue timeout); the first wins.
    close_reason: Option<DisconnectReason>,
    /// The request whose body broke, and how: its reader still learns why
    /// after the connection has answered the error itself.
    failed_body: Option<(u32, Error)>,
    last_write: Option<Instant>,
    /// MinSendRate: when the output last blocked (and has not emptied
    /// since) plus the grace the bytes queued then earned, and what the
    /// peer has taken since.
    blocked_since: Option<Instant>,
    written_since_block: u64,
    answers: Vec<SelfAnswer>,
    abort: Option<(DisconnectReason, bool)>,
    ended: Option<DisconnectReason>,
    counts: Counts,
    /// Responses retired and not yet taken by [`take_done`](Self::take_done).
    done: Vec<Done>,
    /// The last duration worked out (from, to, elapsed): a pipelined batch
    /// shares its start and its end, and subtracting `Instant`s costs more
    /// than the rest of recording a response.
    last_elapsed: (Instant, Instant, Duration),
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConn")
            .field("slots", &self.slots.len())
            .field("buffered", &self.rbuf.len())
            .field("queued", &self.out.len())
            .field("ended", &self.ended)
            .finish()
    }
}

impl ServerConn {
    /// A connection accepted at `now`.
    pub fn new(cfg: ConnConfig, now: Instant) -> ServerConn {
        let timeouts = cfg.timeouts.normalized();
        ServerConn {
            cfg: ConnConfig {
                timeouts,
                max_pipelined: cfg.max_pipelined.max(1),
                ..cfg
            },
            parser: RequestParser::new(cfg.limits),
            rbuf: BytesMut::new(),
            next_seq: 1,
            last_seq: u32::MAX,
            routing: None,
            reading: None,
            head_started: None,
            last_activity: now,
            fin: false,
            stop_reading: false,
            last_request: false,
            timeouts,
            slots: VecDeque::new(),
            waiting: 0,
            out: Outbuf::default(),
            parked: 0,
            closing: false,
            close_now: false,
            close_reason: None,
            failed_body: None,
            last_write: None,
            blocked_since: None,
            written_since_block: 0,
            answers: Vec::new(),
            abort: None,
            ended: None,
            counts: Counts::default(),
            done: Vec::new(),
            last_elapsed: (now, now, Duration::ZERO),
        }
    }

    /// Limits the sequence numbers: the request numbered `last` is the
    /// connection's last (it is answered with `Connection: close`).
    pub fn set_last_seq(&mut self, last: u32) {
        self.last_seq = last.max(1);
    }

    /// The limits in force.
    pub fn limits(&self) -> &crate::Limits {
        self.parser.limits()
    }

    fn push_slot(&mut self, slot: Slot) {
        self.waiting += 1;
        self.slots.push_back(slot);
    }

    /// Requests not yet completely answered.
    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// Requests still waiting for the start of their answer.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// The pipeline is full: no head is parsed until an answer is retired.
    pub fn pipeline_full(&self) -> bool {
        self.slots.len() >= self.cfg.max_pipelined
    }

    /// A response asked to close the connection.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// The queue request `seq` went to, while it is in flight.
    pub fn queue_of(&self, seq: u32) -> Option<u64> {
        self.slot(seq).map(|s| s.queue)
    }

    /// Request `seq` goes to nobody: it was refused by its queue, so it is
    /// not counted as abandoned when the connection ends.
    pub fn disown(&mut self, seq: u32) {
        if let Some(s) = self.slot_mut(seq) {
            s.queue = 0;
        }
    }

    /// Forgets requests `seq` and after, none of them answered yet
    /// (refused behind one whose answer closes the connection).
    pub fn forget_from(&mut self, seq: u32) {
        if let Some(i) = slot_index(&self.slots, seq) {
            // Counted as they go: a forgotten request may have had an
            // answer of the server's own (parked behind the refusal).
            for s in self.slots.drain(i..) {
                if s.phase == Phase::Waiting {
                    self.waiting -= 1;
                }
                self.parked -= s.pending.as_ref().map_or(0, |p| p.mem_len());
            }
            if self.reading.as_ref().is_some_and(|r| r.seq >= seq) {
                self.reading = None;
            }
            self.stop_reading = true;
        }
    }

    /// Sets why the connection is closing, if nothing has yet (waiters see
    /// it instead of a bare `ServerClosed`).
    pub fn set_close_reason(&mut self, reason: DisconnectReason) {
        self.close_reason.get_or_insert(reason);
    }

    /// Asks the connection to end (`reset`: with an RST). The first ask wins.
    pub fn abort(&mut self, reason: DisconnectReason, reset: bool) {
        if self.ended.is_none() && self.abort.is_none() {
            self.abort = Some((reason, reset));
        }
    }

    /// The end asked for with [`abort`](Self::abort), if any.
    pub fn aborted(&self) -> Option<(DisconnectReason, bool)> {
        self.abort
    }

    /// Why the connection should end now, and whether with a reset: an
    /// abort, a retired answer that closes, or a half-closed client with
    /// everything answered. `None`: it goes on.
    pub fn should_end(&self) -> Option<(DisconnectReason, bool)> {
        if let Some(a) = self.abort {
            return Some(a);
        }
        if self.close_now {
            return Some((DisconnectReason::ServerClosed, false));
        }
        if self.fin && self.slots.is_empty() && (self.rbuf.is_empty() || self.stop_reading) {
            return Some((DisconnectReason::ClientClosed, false));
        }
        None
    }

    /// Why the connection ended, once it has.
    pub fn ended(&self) -> Option<DisconnectReason> {
        self.ended
    }

    /// Counts since the last call.
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    /// The responses [`retire`](Self::retire) forgot since the last call,
    /// oldest first, when [`ConnConfig::report_done`] is on. Take them after
    /// every `retire`: they pile up otherwise.
    pub fn take_done(&mut self) -> std::vec::Drain<'_, Done> {
        self.done.drain(..)
    }

    /// `to - from`, remembered for the next request of the same batch.
    pub(super) fn elapsed(&mut self, from: Instant, to: Instant) -> Duration {
        let (f, t, d) = self.last_elapsed;
        if f != from || t != to {
            let d = to.saturating_duration_since(from);
            self.last_elapsed = (from, to, d);
            return d;
        }
        d
    }

    /// The queue of every request taken on and not yet answered completely
    /// (one call per request), for counting requests in flight per queue.
    pub fn for_each_in_flight(&self, mut f: impl FnMut(u64)) {
        for s in &self.slots {
            if s.queue != 0 && s.phase != Phase::Complete {
                f(s.queue);
            }
        }
    }

    /// Ends the connection: records why (a server close explained where the
    /// server knows why), wakes every body reader, drops queued output.
    pub fn finish(&mut self, reason: DisconnectReason) -> Finished {
        let reason = match (reason, self.close_reason) {
            (DisconnectReason::ServerClosed, Some(r)) => r,
            (r, _) => r,
        };
        if let Some(r) = self.ended {
            return Finished {
                reason: r,
                abandoned: 0,
                started: false,
            };
        }
        self.ended = Some(reason);
        let mut abandoned = 0;
        let mut started = false;
        for slot in self.slots.iter_mut() {
            if slot.queue != 0 && slot.phase != Phase::Complete {
                abandoned += 1;
            }
            started |= matches!(slot.phase, Phase::Sending(_));
            if let Some(p) = slot.body.as_mut() {
                p.wake();
            }
        }
        self.out.clear();
        self.rbuf = BytesMut::new();
        Finished {
            reason,
            abandoned,
            started,
        }
    }

    fn slot(&self, seq: u32) -> Option<&Slot> {
        slot_index(&self.slots, seq).map(|i| &self.slots[i])
    }

    fn slot_mut(&mut self, seq: u32) -> Option<&mut Slot> {
        slot_index(&self.slots, seq).map(|i| &mut self.slots[i])
    }
}

fn slot_index(slots: &VecDeque<Slot>, seq: u32) -> Option<usize> {
    let front = slots.front()?.seq;
    let i = seq.checked_sub(front)? as usize;
    (i < slots.len()).then_some(i)
}
