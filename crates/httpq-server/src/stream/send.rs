//! Sending on an HTTP/2 stream: the response head, body and file ranges
//! through the connection's engine (flow-controlled per stream, large
//! files read piece by piece as the window opens), the server's own
//! answers, and cancels.

use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, MutexGuard};

use bytes::{Bytes, BytesMut};
use http::header;
use httpq_proto::h2::{self as engine, code};
use httpq_proto::server_conn::{FileChunk, Response, SendFlags};

use super::{gone, lock, H2Table, Piece, Shared, Stream, StreamState, FILE_AT_ONCE, FILE_STEP};
use crate::disconnect::DisconnectReason;
use crate::ServerError;

/// The Content-Length the application set, if any: every copy must be a
/// number, and the same one.
fn app_length(headers: &http::HeaderMap) -> Result<Option<u64>, ServerError> {
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        let n = std::str::from_utf8(v.as_bytes())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(ServerError::InvalidResponse("invalid Content-Length"))?;
        if length.is_some_and(|m| m != n) {
            return Err(ServerError::InvalidResponse("conflicting Content-Length"));
        }
        length = Some(n);
    }
    Ok(length)
}

impl H2Table {
    /// Sends the response to stream `seq`: HEADERS, then the body and
    /// file range as DATA. `Ok(true)`: the sender should wait for the
    /// window before sending more.
    pub(crate) fn send_response(
        &self,
        seq: u32,
        queue: u64,
        resp: &mut Response,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        let stream = self.of(seq, queue)?;
        let more = flags.contains(SendFlags::MORE_DATA);
        let mut st = lock(&stream.state);
        if let Some(r) = st.ended {
            return Err(ServerError::Disconnected(r));
        }
        if st.began {
            return Err(ServerError::InvalidResponse(
                "the response was already sent",
            ));
        }
        let status = resp.status;
        if status.is_informational() {
            return Err(ServerError::InvalidResponse(
                "a 1xx status cannot be a final response",
            ));
        }
        let file_len = resp.file.as_ref().map_or(0, |f| f.len);
        let no_body = stream.head_only
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED;
        // A HEAD answered with no body says nothing of the length (as
        // over HTTP/1.1): the GET's length is unknown here.
        let length = (!more)
            .then(|| resp.body.len() as u64 + file_len)
            .filter(|&n| !(stream.head_only && n == 0));
        // The application's own Content-Length must be what it sends (as
        // over HTTP/1.1): a client would otherwise see a malformed stream.
        // A malformed value is refused even where no body follows (h2
        // clients check it on HEAD, 204 and 304 too).
        let declared = app_length(&resp.headers)?;
        let promised = if no_body { None } else { declared };
        if let Some(n) = promised {
            let first = resp.body.len() as u64 + file_len;
            if first > n || (!more && first != n) {
                return Err(ServerError::InvalidResponse(
                    "body length differs from Content-Length",
                ));
            }
        }
        let body_follows = more || (!no_body && (!resp.body.is_empty() || file_len > 0));
        {
            let mut eng = self.engine();
            self.send_head(
                &mut eng,
                stream.sid,
                resp,
                length,
                declared.is_some(),
                !body_follows,
            )
            .map_err(|_| gone(&st))?;
        }
        st.began = true;
        st.no_body = no_body;
        st.status = status.as_u16();
        st.promised = promised;
        if !body_follows {
            st.done = true;
            drop(st);
            // Wakes the connection task, after the stream left the table.
            self.completed(&stream);
            return Ok(false);
        }
        let body = std::mem::take(&mut resp.body);
        let file = resp.file.take();
        self.queue_pieces(&stream, st, body, file, !more)
    }

    /// More body for stream `seq`'s response.
    pub(crate) fn send_body(
        &self,
        seq: u32,
        queue: u64,
        data: Bytes,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        let stream = self.of(seq, queue)?;
        let st = self.sending(&stream)?;
        self.queue_pieces(
            &stream,
            st,
            data,
            None,
            !flags.contains(SendFlags::MORE_DATA),
        )
    }

    /// A file range as more body for stream `seq`'s response.
    pub(crate) fn send_file(
        &self,
        seq: u32,
        queue: u64,
        chunk: FileChunk,
        flags: SendFlags,
    ) -> Result<bool, ServerError> {
        let stream = self.of(seq, queue)?;
        let st = self.sending(&stream)?;
        let end = !flags.contains(SendFlags::MORE_DATA);
        self.queue_pieces(&stream, st, Bytes::new(), Some(chunk), end)
    }

    /// The stream's state, for a body send: the response must have begun.
    fn sending<'a>(&self, stream: &'a Stream) -> Result<MutexGuard<'a, StreamState>, ServerError> {
        let st = lock(&stream.state);
        if let Some(r) = st.ended {
            return Err(ServerError::Disconnected(r));
        }
        if st.done || !st.began {
            return Err(ServerError::InvalidResponse(
                "body sent without a response begun with MORE_DATA",
            ));
        }
        Ok(st)
    }

    /// Queues body pieces (`end`: the last of the response) and says
    /// whether the sender should wait for the window.
    fn queue_pieces(
        &self,
        stream: &Arc<Stream>,
        mut st: MutexGuard<'_, StreamState>,
        body: Bytes,
        file: Option<FileChunk>,
        end: bool,
    ) -> Result<bool, ServerError> {
        let no_body = st.no_body;
        let n = body.len() as u64 + file.as_ref().map_or(0, |f| f.len);
        if let Some(rest) = st.promised {
            if n > rest || (end && n != rest) {
                return Err(ServerError::InvalidResponse(
                    "body length differs from Content-Length",
                ));
            }
        }
        // Counted once the bytes are sure to go (a file read can fail).
        let commit = |st: &mut StreamState| {
            if let Some(rest) = st.promised.as_mut() {
                *rest -= n;
            }
            if !no_body {
                st.body_bytes += n;
                // A MinSendRate wait that follows is allowed for this much.
                st.last_send = n;
            }
        };
        let big_file = !no_body && file.as_ref().is_some_and(|f| f.len > FILE_AT_ONCE);
        if st.pump.is_some() || big_file {
            commit(&mut st);
            // Behind (or as) a file read piece by piece: the pump sends it.
            let start = st.pump.is_none();
            let queue = st.pump.get_or_insert_with(VecDeque::new);
            let file_end = file.is_none() && end;
            if !body.is_empty() || file_end {
                queue.push_back((Piece::Mem(body), file_end));
            }
            if let Some(f) = file {
                queue.push_back((Piece::File(f), end));
            }
            drop(st);
            if start {
                self.handle.spawn(pump(stream.clone(), self.shared.clone()));
            }
            return Ok(!end);
        }
        let mut data = body;
        if let Some(f) = file.filter(|_| !no_body) {
            let read = read_range(&f)?;
            data = if data.is_empty() {
                read
            } else {
                let mut b = BytesMut::with_capacity(data.len() + read.len());
                b.extend_from_slice(&data);
                b.extend_from_slice(&read);
                b.freeze()
            };
        }
        if no_body {
            data = Bytes::new();
        }
        commit(&mut st);
        // One lock of the engine: the send, and whether the sender waits.
        let wait = {
            let mut eng = self.engine();
            eng.send_data(stream.sid, data, end)
                .map_err(|_| gone(&st))?;
            !end && self.shared.must_wait(&eng, stream.sid)
        };
        if end {
            st.done = true;
            drop(st);
            // Wakes the connection task, after the stream left the table.
            self.completed(stream);
            return Ok(false);
        }
        drop(st);
        (self.shared.wake)();
        Ok(wait)
    }

    /// Waits while the sender of `seq` has more queued than the window lets out.
    pub(crate) async fn drain_for(&self, seq: u32) {
        let Some(stream) = self.get(seq) else { return };
        loop {
            {
                let st = lock(&stream.state);
                if st.pump.is_none() {
                    break;
                }
            }
            // A pump runs: wait for it to finish its queue.
            let notified = stream.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = lock(&stream.state);
                if st.pump.is_none() || st.ended.is_some() {
                    return;
                }
            }
            notified.await;
        }
        stream.wait_window(&self.shared).await;
    }

    /// The server answers stream `seq` itself (no route, queue full, waited
    /// too long).
    pub(crate) fn answer(&self, seq: u32, status: u16, why: &str) {
        let Some(stream) = self.get(seq) else { return };
        let mut resp = Response::new(status);
        resp.headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        resp.body = Bytes::from(format!("{why}\n"));
        if self
            .send_response(seq, stream.queue, &mut resp, SendFlags::NONE)
            .is_err()
        {
            // Reset before it could be answered: nothing is owed.
            self.remove(seq);
        }
    }

    /// Resets stream `seq` (the application cancelled its request).
    pub(crate) fn cancel(&self, seq: u32, queue: u64) -> Result<(), ServerError> {
        let stream = self.of(seq, queue)?;
        self.remove(seq);
        self.reset(&stream, DisconnectReason::Cancelled);
        Ok(())
    }

    /// Ends `stream` under the application with RST_STREAM CANCEL (a
    /// cancel, a timeout); false if it had ended or completed first.
    pub(crate) fn reset(&self, stream: &Stream, reason: DisconnectReason) -> bool {
        if !stream.end(reason) {
            return false;
        }
        self.engine().reset(stream.sid, code::CANCEL);
        (self.shared.wake)();
        true
    }

    /// Encodes the response head into the engine: the application's
    /// fields (the engine drops HTTP/1 connection-specific ones), plus
    /// `Date`, `Server` and, for a complete response, `Content-Length`.
    fn send_head(
        &self,
        eng: &mut engine::Conn,
        sid: u32,
        resp: &Response,
        length: Option<u64>,
        declared: bool,
        end_stream: bool,
    ) -> Result<(), engine::StreamGone> {
        let status = resp.status;
        let bodiless =
            status == http::StatusCode::NO_CONTENT || status == http::StatusCode::NOT_MODIFIED;
        // Connection-specific fields are the engine's to drop; the
        // server's own Date and Server replace the application's.
        let no_content = status == http::StatusCode::NO_CONTENT;
        let app = resp.headers.iter().filter_map(|(n, v)| {
            let skip = n == header::DATE
                || n == header::SERVER
                // RFC 9110 §8.6: a 204 has no Content-Length (as over HTTP/1.1).
                || (no_content && n == header::CONTENT_LENGTH);
            (!skip).then_some((n.as_str().as_bytes(), v.as_bytes()))
        });
        let date = crate::date::date_value();
        let mut n = itoa::Buffer::new();
        let length = match (length, bodiless, declared) {
            (Some(len), false, false) => Some(n.format(len).as_bytes()),
            _ => None,
        };
        let ours = [
            Some((&b"date"[..], date.as_bytes())),
            self.server_header.as_deref().map(|s| (&b"server"[..], s)),
            length.map(|l| (&b"content-length"[..], l)),
        ];
        eng.send_response(
            sid,
            status.as_u16(),
            app.chain(ours.into_iter().flatten()),
            end_stream,
        )
    }
}

/// Reads a whole (small) file range.
fn read_range(f: &FileChunk) -> Result<Bytes, ServerError> {
    let mut buf = vec![0; f.len as usize];
    f.file
        .read_exact_at(&mut buf, f.offset)
        .map_err(|_| ServerError::InvalidResponse("the file is shorter than the range sent"))?;
    Ok(Bytes::from(buf))
}

/// Sends a stream's queued pieces, reading file ranges piece by piece as
/// the stream's window opens, so a large file is never held in memory and
/// a slow stream holds back only itself.
async fn pump(stream: Arc<Stream>, shared: Arc<Shared>) {
    loop {
        let next = {
            let mut st = lock(&stream.state);
            match st.pump.as_mut().and_then(|q| q.pop_front()) {
                Some(p) => p,
                None => {
                    st.pump = None;
                    drop(st);
                    stream.changed.notify_waiters();
                    return;
                }
            }
        };
        let ok = match next {
            (Piece::Mem(b), end) => send_piece(&stream, &shared, b, end),
            (Piece::File(f), end) => {
                let mut at = f.offset;
                let stop = f.offset + f.len;
                let mut ok = true;
                while ok && at < stop {
                    stream.wait_window(&shared).await;
                    let n = ((stop - at) as usize).min(FILE_STEP);
                    let mut buf = vec![0; n];
                    if f.file.read_exact_at(&mut buf, at).is_err() {
                        // The file shrank: the response can never complete.
                        if stream.end(DisconnectReason::WriteFailed) {
                            shared.engine().reset(stream.sid, code::INTERNAL_ERROR);
                            (shared.wake)();
                        }
                        shared.map().remove(&stream.seq);
                        ok = false;
                        break;
                    }
                    at += n as u64;
                    ok = send_piece(&stream, &shared, Bytes::from(buf), end && at == stop);
                }
                if ok && end && f.len == 0 {
                    ok = send_piece(&stream, &shared, Bytes::new(), true);
                }
                ok
            }
        };
        if !ok {
            lock(&stream.state).pump = None;
            stream.changed.notify_waiters();
            return;
        }
    }
}

/// Sends one piece from the pump; false once the stream cannot take more.
fn send_piece(stream: &Stream, shared: &Shared, data: Bytes, end: bool) -> bool {
    let mut st = lock(&stream.state);
    if st.ended.is_some() {
        return false;
    }
    let data = if st.no_body { Bytes::new() } else { data };
    st.last_send = data.len() as u64;
    if shared.engine().send_data(stream.sid, data, end).is_err() {
        return false;
    }
    if end {
        st.done = true;
        drop(st);
        // Wakes the connection task, after the stream left the table.
        shared.completed(stream);
    } else {
        drop(st);
        (shared.wake)();
    }
    true
}
