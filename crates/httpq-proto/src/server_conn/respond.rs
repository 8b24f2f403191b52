//! Answers: encoding a response head with the framing the server owns,
//! body pieces, and the order of answers on the wire — a response waits
//! (parked) until every earlier one is complete, then goes out.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;

use super::outbuf::Outbuf;
use super::response::{FileChunk, FixedLines, Framing, Response, SendFlags};
use super::{slot_index, Done, Phase, Retired, SelfAnswer, ServerConn, WRITE_BUDGET};
use crate::chunked::{ChunkHeader, CHUNK_END};
use crate::{encode_status_line, Version};

/// Why an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The request was answered, cancelled or never existed, or the
    /// connection is gone or closing before it (ERROR_CONNECTION_INVALID).
    Invalid,
    /// The response or body piece is not valid.
    InvalidResponse(&'static str),
}

/// Body data for [`ServerConn::send_body`].
enum Data {
    Bytes(Bytes),
    File(FileChunk),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::File(f) => f.len,
        }
    }
}

impl ServerConn {
    /// Writes the head (and first body bytes) of the answer to request
    /// `seq`, which went to queue `queue`. With [`SendFlags::MORE_DATA`]
    /// more body follows through [`send_body`](Self::send_body).
    pub fn send_response(
        &mut self,
        seq: u32,
        queue: u64,
        resp: &mut Response,
        flags: SendFlags,
        fixed: &FixedLines<'_>,
    ) -> Result<(), SendError> {
        if self.ended.is_some() {
            return Err(SendError::Invalid);
        }
        let index = slot_index(&self.slots, seq).ok_or(SendError::Invalid)?;
        {
            let slot = &self.slots[index];
            if slot.queue != queue || slot.phase != Phase::Waiting {
                return Err(SendError::Invalid);
            }
        }
        // After an answer that closes the connection, later ones are refused.
        if self.closing && self.slots.iter().take(index).any(|s| s.close_after) {
            return Err(SendError::Invalid);
        }
        let status = resp.status.as_u16();
        if status < 200 {
            return Err(SendError::InvalidResponse(
                "interim (1xx) responses are sent by the server",
            ));
        }
        let more = flags.contains(SendFlags::MORE_DATA);
        let slot = &self.slots[index];
        let (version, head_request) = (slot.version, slot.head_request);
        if slot.connect && (200..300).contains(&status) {
            return Err(SendError::InvalidResponse(
                "a 2xx answer to CONNECT opens a tunnel, which httpq does not do",
            ));
        }
        // One pass over the application's fields instead of a hashed
        // lookup per field the server cares about.
        let mut app_length = None;
        let mut asks_close = false;
        for (k, v) in resp.headers.iter() {
            // RFC 9110 §8.6: a 204 has no Content-Length (dropped below).
            if k == http::header::CONTENT_LENGTH && status != 204 {
                let n =
                    parse_length(v).ok_or(SendError::InvalidResponse("invalid Content-Length"))?;
                if app_length.is_some_and(|m| m != n) {
                    return Err(SendError::InvalidResponse("conflicting Content-Length"));
                }
                app_length = Some(n);
            } else if k == http::header::CONNECTION {
                asks_close |= v.as_bytes().eq_ignore_ascii_case(b"close");
            }
        }
        let body_len = resp.body_len();
        let no_body = head_request || status == 204 || status == 304;
        let framing = if no_body {
            Framing::NoBody
        } else if let Some(n) = app_length {
            if (more && body_len > n) || (!more && body_len != n) {
                return Err(SendError::InvalidResponse(
                    "body length differs from Content-Length",
                ));
            }
            Framing::Length(n - body_len)
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
            // RFC 9110 §8.6: a HEAD answer's length must be the GET's; with
            // no body given there is no knowing it, so none is sent.
            (Framing::NoBody, None) if head_request && body_len == 0 => None,
            (Framing::NoBody, None) | (Framing::Length(_), None) => Some(len_buf.format(body_len)),
            _ => None,
        };
        let reason = resp
            .reason
            .as_deref()
            .or_else(|| resp.status.canonical_reason())
            .unwrap_or("");
        let (body, file) = if no_body {
            (Bytes::new(), None)
        } else {
            (std::mem::take(&mut resp.body), resp.file.take())
        };
        let canonical = resp.reason.is_none();
        let headers = &resp.headers;
        // Encoded straight into the connection's output; on error the
        // encoder drops what it wrote, so nothing half-made goes out.
        self.emit(index, |out| {
            out.encode(|buf| {
                if status == 200 && canonical && version == Version::Http11 {
                    buf.extend_from_slice(fixed.ok_11);
                } else {
                    encode_status_line(buf, version, status, reason).map_err(|_| {
                        SendError::InvalidResponse("invalid status or reason phrase")
                    })?;
                    buf.extend_from_slice(fixed.fields);
                }
                // Fields go in without re-validation: ours are made here,
                // and an http::HeaderMap cannot hold a byte that would
                // split a response (its names are tokens, its values have
                // no CR, LF or NUL).
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
                let owned = |k: &http::HeaderName| {
                    server_owned(k) || (status == 204 && k == http::header::CONTENT_LENGTH)
                };
                for (k, v) in headers.iter().filter(|(k, _)| !owned(k)) {
                    field(k.as_str().as_bytes(), v.as_bytes());
                }
                buf.extend_from_slice(b"\r\n");
                Ok(())
            })?;
            let n = body.len() as u64 + file.as_ref().map_or(0, |f| f.len);
            if framing == Framing::Chunked && n > 0 {
                out.put_slice(ChunkHeader::new(n).as_bytes());
            }
            if !body.is_empty() {
                out.put_bytes(body);
            }
            if let Some(f) = file {
                out.put_file(f);
            }
            if framing == Framing::Chunked && n > 0 {
                out.put_slice(CHUNK_END);
            }
            Ok(())
        })?;
        let slot = &mut self.slots[index];
        slot.status = status;
        if !no_body {
            slot.body_bytes = body_len;
        }
        slot.close_after |= wants_close;
        if wants_close {
            self.closing = true;
        }
        self.waiting -= 1;
        if more {
            self.slots[index].phase = Phase::Sending(framing);
        } else {
            self.complete(index, framing);
        }
        Ok(())
    }

    /// Sends more body of a response begun with MORE_DATA; without
    /// MORE_DATA this completes the response.
    pub fn send_body(
        &mut self,
        seq: u32,
        queue: u64,
        data: Bytes,
        flags: SendFlags,
    ) -> Result<(), SendError> {
        self.send_data(seq, queue, Data::Bytes(data), flags)
    }

    /// [`send_body`](Self::send_body) from a file range (sent with `sendfile`).
    pub fn send_file(
        &mut self,
        seq: u32,
        queue: u64,
        chunk: FileChunk,
        flags: SendFlags,
    ) -> Result<(), SendError> {
        self.send_data(seq, queue, Data::File(chunk), flags)
    }

    fn send_data(
        &mut self,
        seq: u32,
        queue: u64,
        data: Data,
        flags: SendFlags,
    ) -> Result<(), SendError> {
        if self.ended.is_some() {
            return Err(SendError::Invalid);
        }
        let index = slot_index(&self.slots, seq).ok_or(SendError::Invalid)?;
        let slot = &mut self.slots[index];
        if slot.queue != queue {
            return Err(SendError::Invalid);
        }
        let Phase::Sending(framing) = slot.phase else {
            return Err(if slot.phase == Phase::Waiting {
                SendError::InvalidResponse("body sent before the response")
            } else {
                SendError::Invalid
            });
        };
        let more = flags.contains(SendFlags::MORE_DATA);
        let n = data.len();
        let framing = match framing {
            Framing::Length(rest) => {
                if n > rest || (!more && n != rest) {
                    return Err(SendError::InvalidResponse(
                        "body length differs from Content-Length",
                    ));
                }
                Framing::Length(rest - n)
            }
            f => f,
        };
        if framing != Framing::NoBody {
            slot.body_bytes += n;
        }
        if flags.contains(SendFlags::DISCONNECT) {
            slot.close_after = true;
            self.closing = true;
        }
        self.emit(index, |out| {
            let chunked = framing == Framing::Chunked;
            if framing == Framing::NoBody || n == 0 {
                return Ok::<(), SendError>(());
            }
            if chunked {
                out.put_slice(ChunkHeader::new(n).as_bytes());
            }
            match data {
                Data::Bytes(b) => out.put_bytes(b),
                Data::File(f) => out.put_file(f),
            }
            if chunked {
                out.put_slice(CHUNK_END);
            }
            Ok(())
        })?;
        if more {
            self.slots[index].phase = Phase::Sending(framing);
        } else {
            self.complete(index, framing);
        }
        Ok(())
    }

    /// The connection answers request `seq` itself (no route, a full
    /// queue, a queue timeout) with `status` and a one-line reason; `keep`:
    /// the connection may stay open after it.
    pub fn answer(&mut self, seq: u32, status: u16, why: &str, keep: bool, fixed: &FixedLines<'_>) {
        let Some(queue) = self.queue_of(seq) else {
            return;
        };
        let mut resp = Response::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(format!("{why}\n"));
        let flags = if keep {
            SendFlags::NONE
        } else {
            SendFlags::DISCONNECT
        };
        let _ = self.send_response(seq, queue, &mut resp, flags, fixed);
    }

    /// True when the connection decided on answers of its own (error
    /// statuses) that [`flush_answers`](Self::flush_answers) must encode.
    pub fn has_answers(&self) -> bool {
        !self.answers.is_empty()
    }

    /// Encodes the answers the connection decided on itself.
    pub fn flush_answers(&mut self, fixed: &FixedLines<'_>) {
        for SelfAnswer {
            seq,
            status,
            why,
            keep,
        } in std::mem::take(&mut self.answers)
        {
            self.answer(seq, status, why, keep, fixed);
        }
    }

    /// A slot may write straight to the output when every earlier one is
    /// complete. Checked on the one before it alone: every complete
    /// response wrote at least a status line, so a complete slot with
    /// nothing parked has had its bytes released into the output, which
    /// happens only once all slots before it were complete (and completion
    /// is never undone).
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

    /// Appends bytes for slot `index`: to the output, or parked behind
    /// earlier responses.
    pub(super) fn emit<R>(&mut self, index: usize, f: impl FnOnce(&mut Outbuf) -> R) -> R {
        if self.is_direct(index) {
            f(&mut self.out)
        } else {
            let pending = self.slots[index].pending.get_or_insert_default();
            let before = pending.mem_len();
            let r = f(pending);
            self.parked += pending.mem_len() - before;
            r
        }
    }

    /// The response to slot `index` is complete.
    fn complete(&mut self, index: usize, framing: Framing) {
        if framing == Framing::Chunked {
            self.emit(index, |out| out.put_slice(b"0\r\n\r\n"));
        }
        self.slots[index].phase = Phase::Complete;
        // Release the parked bytes of the responses behind it.
        if !self.is_direct(index) {
            return;
        }
        let mut j = index + 1;
        while j < self.slots.len() {
            if let Some(mut pending) = self.slots[j].pending.take() {
                self.parked -= pending.mem_len();
                self.out.append(&mut pending);
            }
            if self.slots[j].phase != Phase::Complete {
                break;
            }
            j += 1;
        }
    }

    /// The bytes to write, in wire order. Report what was written with
    /// [`on_written`](Self::on_written).
    pub fn output(&mut self) -> &mut Outbuf {
        &mut self.out
    }

    /// `n` bytes of [`output`](Self::output) were written at `now`.
    pub fn on_written(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.last_write = Some(now);
            self.written_since_block += n as u64;
        }
        if self.out.is_empty() {
            self.blocked_since = None;
        }
    }

    /// The peer is not taking output as fast as it comes. From now until
    /// the output empties it must keep up the MinSendRate on average: the
    /// bytes queued now earn a grace (at that rate, at least a second),
    /// and every byte it takes after earns its share of a second more.
    /// A reader steadily above the rate is never cut off, however long the
    /// stream; one below it is, however much the application queues.
    pub fn on_write_blocked(&mut self, now: Instant) {
        if self.blocked_since.is_none() && !self.out.is_empty() {
            let grace = self.at_min_rate(self.out.len()).max(Duration::from_secs(1));
            self.blocked_since = Some(now + grace);
            self.written_since_block = 0;
        }
    }

    /// How long `bytes` take at the MinSendRate.
    fn at_min_rate(&self, bytes: u64) -> Duration {
        let rate = u64::from(self.timeouts.min_send_rate.max(1));
        Duration::from_millis(bytes.saturating_mul(1000) / rate)
    }

    /// When the MinSendRate runs out, while the output is blocked.
    pub(super) fn send_deadline(&self) -> Option<Instant> {
        let start = self.blocked_since?;
        Some(start + self.at_min_rate(self.written_since_block))
    }

    /// Memory bytes parked behind unfinished earlier responses.
    pub fn parked(&self) -> usize {
        self.parked
    }

    /// Should the sender of `seq` wait before sending more? Backpressure
    /// applies to the response being written — the output over the write
    /// budget — or, for one waiting its turn, to the bytes parked over the
    /// budget; never to one response because of another's bytes, which
    /// would deadlock when the other waits its turn behind it.
    pub fn must_wait(&self, seq: u32) -> bool {
        if self.ended.is_some() {
            return false;
        }
        match slot_index(&self.slots, seq) {
            None => false,
            Some(i) if self.is_direct(i) => self.out.mem_len() >= WRITE_BUDGET,
            Some(_) => self.parked >= WRITE_BUDGET,
        }
    }

    /// Forgets the responses written out completely, at `now`. Only once
    /// all output is written: an answer that closes the connection must be
    /// on the wire before it closes.
    pub fn retire(&mut self, now: Instant) -> Retired {
        let mut r = Retired::default();
        if !self.out.is_empty() {
            return r;
        }
        let was_full = self.pipeline_full();

        while self
            .slots
            .front()
            .is_some_and(|s| s.phase == Phase::Complete)
        {
            let slot = self.slots.pop_front().expect("front");
            r.responses += 1;
            if self.cfg.report_done {
                let elapsed = self.elapsed(slot.started, now);
                self.done.push(Done {
                    seq: slot.seq,
                    method: slot.method,
                    status: slot.status,
                    body_bytes: slot.body_bytes,
                    elapsed,
                });
            }
            r.close |= slot.close_after;
            if let Some(reader) = self.reading.as_mut() {
                if reader.seq == slot.seq && reader.draining.is_none() {
                    let unsent_continue = slot
                        .body
                        .as_ref()
                        .is_some_and(|p| p.expect_continue && !p.continue_sent);
                    if unsent_continue {
                        // The client waits for a 100 Continue that will never come.
                        r.close = true;
                    } else {
                        reader.draining = Some(now);
                        r.draining = true;
                    }
                }
            }
            if r.close {
                break;
            }
        }
        // Room matters only to a head already buffered: bytes still to come
        // are parsed when they arrive. (Without this, a pipeline of one —
        // http.sys's hold-back — woke the driver after every answer.)
        r.room = was_full && !self.pipeline_full() && !self.rbuf.is_empty();
        self.counts.responses += r.responses;
        self.close_now |= r.close;
        r
    }
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
