//! The server's side of a connection: answering streams (HEADERS, DATA
//! under both windows), giving request body back to the windows, resets,
//! GOAWAY, and the output to write.

use bytes::{BufMut, Bytes};

use super::{Conn, Event, Send, StreamGone, COPY_MAX};
use crate::h2::frame::{self, flag, kind};
use crate::h2::hpack;

impl Conn {
    /// The next thing the client did, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The server has read `n` bytes of stream `id`'s body: they return
    /// to the windows (announced once half a window has come back).
    pub fn release(&mut self, id: u32, n: usize) {
        let Some(i) = self.find(id) else { return };
        let s = &mut self.streams[i];
        let n = (n as u64).min(s.unreleased);
        s.unreleased -= n;
        s.unacked = s.unacked.saturating_add(n as u32);
        if s.recv_open && s.unacked >= (self.cfg.initial_window_size / 2).max(1) {
            frame::put_window_update(&mut self.out, id, s.unacked);
            s.recv_window += i64::from(s.unacked);
            s.unacked = 0;
        }
        self.give_back_conn(n as u32);
    }

    /// Begins stream `id`'s response: HEADERS (and CONTINUATION) with
    /// `:status` and `fields` (lowercase names; connection-specific ones
    /// are dropped, as RFC 9113 §8.2.2 asks). `end_stream`: nothing follows.
    pub fn send_response<'a>(
        &mut self,
        id: u32,
        status: u16,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        end_stream: bool,
    ) -> Result<(), StreamGone> {
        let i = self.find(id).ok_or(StreamGone)?;
        if self.streams[i].send != Send::Idle {
            return Err(StreamGone);
        }
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        if let Some(size) = self.table_size_update.take() {
            hpack::put_table_size(&mut block, size);
        }
        hpack::put_status(&mut block, status);
        for (n, v) in fields {
            hpack::put_field(&mut block, n, v);
        }
        let flags = if end_stream { flag::END_STREAM } else { 0 };
        let mut pieces = block.chunks(self.peer_max_frame).peekable();
        let mut first = true;
        while let Some(p) = pieces.next() {
            let last = pieces.peek().is_none();
            let (k, f) = if first {
                (kind::HEADERS, flags)
            } else {
                (kind::CONTINUATION, 0)
            };
            frame::put_head(
                &mut self.out,
                p.len(),
                k,
                f | if last { flag::END_HEADERS } else { 0 },
                id,
            );
            self.out.extend_from_slice(p);
            first = false;
        }
        self.scratch = block;
        let s = &mut self.streams[i];
        if end_stream {
            s.send = Send::Done;
            if !s.recv_open {
                self.close(i);
            }
        } else {
            s.send = Send::Open;
        }
        Ok(())
    }

    /// Queues body for stream `id` (`end_stream`: the last of it); it goes
    /// out as the windows allow.
    pub fn send_data(&mut self, id: u32, data: Bytes, end_stream: bool) -> Result<(), StreamGone> {
        let i = self.find(id).ok_or(StreamGone)?;
        let s = &mut self.streams[i];
        if s.send != Send::Open {
            return Err(StreamGone);
        }
        if data.is_empty() && !end_stream {
            return Ok(());
        }
        s.pending_len += data.len();
        s.pending.push_back((data, end_stream));
        if end_stream {
            s.send = Send::Done;
        }
        self.flush(id, false);
        Ok(())
    }

    /// Sends what stream `id` has queued, as far as the windows allow.
    /// `opened`: a window opened (the sender may be waiting for it).
    pub(super) fn flush(&mut self, id: u32, opened: bool) {
        let Some(i) = self.find(id) else { return };
        let had = self.streams[i].pending_len;
        loop {
            let s = &mut self.streams[i];
            let Some((front, end)) = s.pending.front_mut() else {
                break;
            };
            let end = *end;
            if front.is_empty() {
                frame::put_head(&mut self.out, 0, kind::DATA, flag::END_STREAM, id);
                s.pending.pop_front();
                break;
            }
            let window = s.send_window.min(self.send_window);
            if window <= 0 {
                if self.send_window <= 0 && s.send_window > 0 && !s.blocked {
                    s.blocked = true;
                    self.blocked.push_back(id);
                }
                break;
            }
            let n = front.len().min(window as usize).min(self.peer_max_frame);
            let whole = n == front.len();
            let piece = if whole {
                s.pending.pop_front().expect("front exists").0
            } else {
                front.split_to(n)
            };
            let last = end && whole;
            s.pending_len -= n;
            s.send_window -= n as i64;
            self.send_window -= n as i64;
            frame::put_head(
                &mut self.out,
                n,
                kind::DATA,
                if last { flag::END_STREAM } else { 0 },
                id,
            );
            if n <= COPY_MAX {
                self.out.put_slice(&piece);
            } else {
                let head = self.out.split().freeze();
                self.chunks_len += head.len() + piece.len();
                self.chunks.push_back(head);
                self.chunks.push_back(piece);
            }
        }
        let s = &self.streams[i];
        if opened && had > 0 && s.pending_len < had && !self.progressed.contains(&id) {
            self.progressed.push(id);
        }
        if s.send == Send::Done && s.pending.is_empty() {
            if !s.recv_open {
                self.close(i);
            } else if let Some(code) = s.reset_after {
                self.put_rst(id, code);
                self.close(i);
            }
        }
    }

    /// Bytes of frames waiting to be taken by [`take_output`](Self::take_output).
    pub fn buffered(&self) -> usize {
        self.out.len() + self.chunks_len
    }

    /// Body bytes all streams have queued that the windows have not let out.
    pub fn queued_total(&self) -> usize {
        self.streams.iter().map(|s| s.pending_len).sum()
    }

    /// Body bytes stream `id` has queued that the windows have not let
    /// out yet; `None` when the stream is gone.
    pub fn queued(&self, id: u32) -> Option<usize> {
        self.find(id).map(|i| self.streams[i].pending_len)
    }

    /// Whether the client may still send body on stream `id`.
    pub fn recv_open(&self, id: u32) -> bool {
        self.find(id).is_some_and(|i| self.streams[i].recv_open)
    }

    /// Streams that sent queued body since the last call.
    pub fn take_progressed(&mut self, into: &mut Vec<u32>) {
        into.append(&mut self.progressed);
    }

    /// Ends stream `id` with RST_STREAM `code` (the server's choice: a
    /// cancelled request, a timeout, a body it will not read).
    pub fn reset(&mut self, id: u32, code: u32) {
        if let Some(i) = self.find(id) {
            self.put_rst(id, code);
            self.close(i);
        }
    }

    /// Ends stream `id` with RST_STREAM `code` once its response is all
    /// sent (at once if it is): the server will read no more of its body,
    /// and the answer is not cut short.
    pub fn reset_when_sent(&mut self, id: u32, code: u32) {
        let Some(i) = self.find(id) else { return };
        let s = &mut self.streams[i];
        if s.send == Send::Done && s.pending.is_empty() {
            self.put_rst(id, code);
            self.close(i);
        } else {
            s.reset_after = Some(code);
        }
    }

    /// Sends GOAWAY: streams the client opens from now on are ignored;
    /// those open go on.
    pub fn go_away(&mut self, code: u32) {
        if self.goaway_last.is_none() {
            self.goaway_last = Some(self.last_client);
            frame::put_goaway(&mut self.out, self.last_client, code);
        }
    }

    /// The client's preface and first SETTINGS have come (the handshake
    /// HeaderWait covers).
    pub fn settled(&self) -> bool {
        self.settled
    }

    /// Streams open in either direction.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The highest stream id the client opened.
    pub fn last_stream(&self) -> u32 {
        self.last_client
    }

    /// Whether frames wait to be written.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.chunks.is_empty()
    }

    /// Moves the frames to write, in order, into `into`.
    pub fn take_output(&mut self, into: &mut Vec<Bytes>) {
        self.owed = 0;
        self.chunks_len = 0;
        into.extend(self.chunks.drain(..));
        if !self.out.is_empty() {
            into.push(self.out.split().freeze());
        }
    }
}
