//! The input side of a server connection: bytes from the peer, request
//! heads parsed in place, a routed request taken on (with the body bytes
//! that travel with it), request bodies fed to their readers, and the
//! answers to what is malformed.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::body::BodyPipe;
use super::{
    slot_index, Accept, BodyStart, DisconnectReason, HalfClosePolicy, Input, Phase, Reader,
    Routing, SelfAnswer, ServerConn, Slot, PIPE_CAP,
};
use crate::{BodyDecoder, Error, MethodKind, RequestHead, Version};

impl ServerConn {
    /// Input buffered beyond this is not read until the application takes
    /// some (a body it is slow to read, or a full pipeline).
    pub(super) fn read_cap(&self) -> usize {
        self.parser.limits().max_head_bytes.max(PIPE_CAP) + 8 * 1024
    }

    /// True while the connection wants bytes from the peer.
    pub fn wants_input(&self) -> bool {
        self.ended.is_none() && !self.stop_reading && !self.fin && self.rbuf.len() < self.read_cap()
    }

    /// Where the next read from the peer goes (with room reserved), or
    /// `None` while no input is wanted; report what was read with
    /// [`received`](Self::received).
    pub fn read_buf(&mut self) -> Option<&mut BytesMut> {
        if !self.wants_input() {
            return None;
        }
        if self.rbuf.capacity() - self.rbuf.len() < 4096 {
            self.rbuf.reserve(8 * 1024);
        }
        Some(&mut self.rbuf)
    }

    /// `n` bytes were appended to [`read_buf`](Self::read_buf) at `now`.
    pub fn received(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        self.last_activity = now;
        if self.reading.is_none() && self.head_started.is_none() {
            self.head_started = Some(now);
        }
    }

    /// Bytes received and not yet parsed.
    pub fn buffered(&self) -> usize {
        self.rbuf.len()
    }

    /// The peer closed its sending side (a read returned 0). Under
    /// [`HalfClosePolicy::Allow`], with requests outstanding, what was
    /// received is still answered; otherwise the connection ends now.
    pub fn peer_closed(&mut self) -> Option<DisconnectReason> {
        let outstanding =
            !self.rbuf.is_empty() || self.slots.iter().any(|s| s.phase != Phase::Complete);
        if !outstanding || self.cfg.half_close == HalfClosePolicy::Disconnect {
            self.fail_body(Error::IncompleteBody);
            return Some(DisconnectReason::ClientClosed);
        }
        self.fin = true;
        None
    }

    /// True once the peer half-closed and the connection carries on
    /// (only an error, an RST after the FIN, is worth watching for).
    pub fn peer_fin(&self) -> bool {
        self.fin
    }

    /// Another request head may be parsed: the pipeline has room and no
    /// answer asked to close.
    pub(super) fn room(&self) -> bool {
        !self.closing && self.slots.len() < self.cfg.max_pipelined
    }

    /// Decodes buffered input: body bytes of the request being read, then
    /// the next request head, parsed into `head` in place (no copy of the
    /// head between layers; the caller keeps it where the request lives).
    pub fn poll_input(&mut self, head: &mut RequestHead, now: Instant) -> Input {
        debug_assert!(self.routing.is_none(), "accept the last request first");
        if self.ended.is_some() || self.routing.is_some() {
            return Input::Idle;
        }
        loop {
            if self.reading.is_some() {
                match self.feed_body(now) {
                    Ok(true) => continue,
                    Ok(false) => return Input::Idle,
                    Err(reason) => return Input::Close(reason),
                }
            }
            if self.last_request {
                // RFC 9112 §9.6: after a request that ends the connection,
                // no further request is processed (its own body was read
                // above).
                self.stop_reading = true;
                self.head_started = None;
                return Input::Idle;
            }
            if self.stop_reading || self.rbuf.is_empty() {
                return Input::Idle;
            }
            if !self.room() {
                // Not parsing, so no HeaderWait: the wait is the
                // application's, not the client's.
                self.head_started = None;
                return Input::Idle;
            }
            match self.parser.parse_into(&mut self.rbuf, head) {
                Ok(false) if self.fin => {
                    // Half-closed: the rest of this head will never come.
                    self.rbuf.clear();
                    self.stop_reading = true;
                    return Input::Idle;
                }
                Ok(false) => {
                    // A partial head left behind while the pipeline was
                    // full starts its HeaderWait now.
                    self.head_started.get_or_insert(now);
                    return Input::Idle;
                }
                Ok(true) => {
                    // What is left arrived with the last read (no clock
                    // read per pipelined request).
                    self.head_started = (!self.rbuf.is_empty()).then_some(self.last_activity);
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    // The connection's last request: it asks to close,
                    // or its sequence number is the last one there is.
                    let last = !head.keep_alive() || seq >= self.last_seq;
                    self.last_request = last;
                    let method = MethodKind::from_bytes(head.method());
                    self.routing = Some(Routing {
                        seq,
                        method,
                        started: now,
                        version: head.version(),
                        head_request: method == MethodKind::Head,
                        connect: method == MethodKind::Connect,
                        keep_alive: !last,
                        body: head.body(),
                        expect_continue: head.expects_continue(),
                    });
                    return Input::Request(seq);
                }
                Err(e) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.protocol_error_at(seq, Version::Http11, e);
                    return Input::Idle;
                }
            }
        }
    }

    /// The method of the request just handed out by
    /// [`poll_input`](Self::poll_input) and not yet accepted.
    pub fn parsed_method(&self) -> MethodKind {
        self.routing.map_or(MethodKind::Other, |r| r.method)
    }

    /// Takes on request `seq` (just handed out by [`poll_input`](Self::poll_input)):
    /// it now waits for its answer, in order. Returns the body bytes that
    /// travel with it (see [`Accept::copy_body`]).
    pub fn accept(&mut self, seq: u32, a: Accept) -> BodyStart {
        let Some(r) = self.routing.take().filter(|r| r.seq == seq) else {
            debug_assert!(false, "accept of a request not just parsed");
            return BodyStart::default();
        };
        if let Some(t) = a.timeouts {
            self.timeouts = t;
        }
        let mut slot = Slot {
            seq,
            version: r.version,
            head_request: r.head_request,
            connect: r.connect,
            keep_alive: r.keep_alive,
            queue: a.queue,
            phase: Phase::Waiting,
            pending: None,
            close_after: false,
            body: None,
            method: r.method,
            status: 0,
            body_bytes: 0,
            started: r.started,
        };
        let mut start = BodyStart::default();
        if !r.body.is_empty() {
            let mut reader = Reader {
                seq,
                dec: BodyDecoder::new(r.body, self.parser.limits()),
                entity_body: self.timeouts.entity_body,
                drain_entity_body: self.timeouts.drain_entity_body,
                draining: None,
                last_progress: self.last_activity,
            };
            let copied = if a.copy_body > 0 && !r.expect_continue && a.queue != 0 {
                self.copy_body(&mut reader, a.copy_body)
            } else {
                (Bytes::new(), false, None)
            };
            match copied {
                (bytes, true, None) => {
                    start.bytes = bytes;
                    self.head_started = (!self.rbuf.is_empty()).then_some(self.last_activity);
                }
                (bytes, false, None) => {
                    start = BodyStart { bytes, more: true };
                    slot.body = Some(Box::new(BodyPipe::new(r.expect_continue)));
                    self.reading = Some(reader);
                }
                (bytes, _, Some(e)) => {
                    start = BodyStart { bytes, more: true };
                    slot.body = Some(Box::new(BodyPipe::new(false)));
                    self.push_slot(slot);
                    let i = self.slots.len() - 1;
                    self.body_failed(seq, Some(i), Phase::Waiting, e);
                    return start;
                }
            }
        }
        self.push_slot(slot);
        start
    }

    /// Decodes body bytes already buffered, up to `limit`, to travel with
    /// the request. `Ok((bytes, true))`: the whole body.
    pub(super) fn copy_body(
        &mut self,
        reader: &mut Reader,
        limit: usize,
    ) -> (Bytes, bool, Option<Error>) {
        let mut first = Bytes::new();
        let mut joined: Option<BytesMut> = None;
        let mut copied = 0;
        let mut failed = None;
        while copied < limit && !self.rbuf.is_empty() {
            let window = self.rbuf.len().min(limit - copied);
            let d = match reader.dec.decode(&self.rbuf[..window]) {
                Ok(d) => d,
                Err(e) => {
                    // What decoded before the error still goes to the
                    // reader, as it would have through the body pipe.
                    failed = Some(e);
                    break;
                }
            };
            if d.consumed == 0 {
                break;
            }
            let chunk = self.rbuf.split_to(d.consumed).freeze();
            if !d.data.is_empty() {
                copied += d.data.len();
                let piece = chunk.slice(d.data);
                match &mut joined {
                    // Several pieces (a chunked body) become one copy.
                    Some(j) => j.extend_from_slice(&piece),
                    None if first.is_empty() => first = piece,
                    None => {
                        let mut j = BytesMut::with_capacity(first.len() + piece.len());
                        j.extend_from_slice(&first);
                        j.extend_from_slice(&piece);
                        joined = Some(j);
                    }
                }
            }
            if d.done {
                break;
            }
        }
        if copied > 0 {
            reader.last_progress = self.last_activity;
        }
        let bytes = joined.map_or(first, BytesMut::freeze);
        (bytes, reader.dec.is_done(), failed)
    }

    /// Request `seq`, just handed out, cannot be taken on: its URL is
    /// malformed. It gets `e`'s status and the connection closes.
    pub fn reject(&mut self, seq: u32, e: Error) {
        let version = match self.routing.take() {
            Some(r) if r.seq == seq => r.version,
            _ => Version::Http11,
        };
        self.protocol_error_at(seq, version, e);
    }

    /// A malformed request: answer its status with a short reason, then
    /// close. Nothing after it in the buffer is ever read as a request.
    pub(super) fn protocol_error_at(&mut self, seq: u32, version: Version, e: Error) {
        self.counts.protocol_errors += 1;
        self.stop_reading = true;
        self.rbuf.clear();
        self.close_reason
            .get_or_insert(DisconnectReason::ProtocolError(e));
        self.closing_answer(seq, version, e.status(), e.reason());
    }

    /// Answers a request the application never saw (malformed, or a head
    /// that never finished) and closes the connection after it.
    pub(super) fn closing_answer(
        &mut self,
        seq: u32,
        version: Version,
        status: u16,
        why: &'static str,
    ) {
        let started = self.last_activity;
        self.push_slot(Slot {
            seq,
            version,
            head_request: false,
            connect: false,
            keep_alive: false,
            queue: 0,
            phase: Phase::Waiting,
            pending: None,
            close_after: true,
            body: None,
            method: MethodKind::Other,
            status: 0,
            body_bytes: 0,
            started,
        });
        self.answers.push(SelfAnswer {
            seq,
            status,
            why,
            keep: false,
        });
    }

    /// The body being read can never complete: tell its reader.
    pub(super) fn fail_body(&mut self, e: Error) {
        let Some(seq) = self.reading.as_ref().map(|r| r.seq) else {
            return;
        };
        if let Some(p) = self.slot_mut(seq).and_then(|s| s.body.as_mut()) {
            if !p.done && p.error.is_none() {
                p.fail(e);
            }
        }
    }

    /// Moves body bytes from the read buffer to the application (or drops
    /// them when draining). `Ok(true)`: the body is done, carry on parsing.
    pub(super) fn feed_body(&mut self, now: Instant) -> Result<bool, DisconnectReason> {
        let reader = self.reading.as_mut().expect("reading");
        let seq = reader.seq;
        let index = slot_index(&self.slots, seq);
        if index.is_none() && reader.draining.is_none() {
            reader.draining = Some(now);
        }
        loop {
            let reader = self.reading.as_mut().expect("reading");
            if self.rbuf.is_empty() {
                if self.fin {
                    // Half-closed with the body unfinished: it never will be.
                    let draining = reader.draining.is_some();
                    self.fail_body(Error::IncompleteBody);
                    self.reading = None;
                    self.stop_reading = true;
                    if draining {
                        return Err(DisconnectReason::ClientClosed);
                    }
                }
                return Ok(false);
            }
            let pipe = index.and_then(|i| self.slots[i].body.as_mut());
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
                    let phase = index.map(|i| self.slots[i].phase);
                    return match self.body_failed(seq, index, phase.unwrap_or(Phase::Complete), e) {
                        true => Err(DisconnectReason::ProtocolError(e)),
                        false => Ok(false),
                    };
                }
            };
            let chunk = self.rbuf.split_to(d.consumed).freeze();
            reader.last_progress = self.last_activity;
            let draining = reader.draining.is_some();
            if let Some(p) = index.and_then(|i| self.slots[i].body.as_mut()) {
                if !draining && !d.data.is_empty() {
                    p.push(chunk.slice(d.data.clone()));
                }
                if d.done {
                    p.finish();
                }
            }
            if d.done {
                self.reading = None;
                self.head_started = (!self.rbuf.is_empty()).then_some(self.last_activity);
                return Ok(true);
            }
            if d.consumed == 0 {
                return Ok(false);
            }
        }
    }

    /// Request `seq`'s body is malformed: framing is lost, so nothing after
    /// it can be trusted. Not yet answered, it gets the error's status; an
    /// answer under way is the connection's last. True: nothing is left to
    /// send, end the connection now.
    pub(super) fn body_failed(
        &mut self,
        seq: u32,
        index: Option<usize>,
        phase: Phase,
        e: Error,
    ) -> bool {
        if let Some(p) = index.and_then(|i| self.slots[i].body.as_mut()) {
            p.fail(e);
        }
        self.reading = None;
        self.stop_reading = true;
        self.rbuf.clear();
        self.counts.protocol_errors += 1;
        if let Some(i) = index {
            self.slots[i].keep_alive = false;
            self.slots[i].close_after |= phase != Phase::Waiting;
        }
        self.closing = true;
        self.failed_body = Some((seq, e));
        self.close_reason
            .get_or_insert(DisconnectReason::ProtocolError(e));
        match (index, phase) {
            (Some(i), Phase::Waiting) => {
                // The connection answers it now: the application's answer
                // is refused from this moment, not from when the error is
                // encoded (the request is not counted as abandoned either).
                self.slots[i].queue = 0;
                self.answers.push(SelfAnswer {
                    seq,
                    status: e.status(),
                    why: e.reason(),
                    keep: false,
                });
                false
            }
            (Some(_), _) => false,
            // Answered and retired: nothing is left to send.
            (None, _) => true,
        }
    }
}
