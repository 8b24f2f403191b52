//! Reading a response body into caller buffers: straight from the socket
//! when nothing needs decoding, else through the framing and content
//! decoders; the receive and low-speed timeouts; handing the connection
//! back to the pool at the end.

use super::*;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 256 * 1024;

impl Receiving {
    /// A socket read is about to wait: the low-speed window skips the time
    /// since the last one. Returns when this read started (its receive
    /// timeout runs from then, across low-speed window checks).
    fn begin_wait(&mut self) -> Instant {
        let now = Instant::now();
        self.low_speed_start += now.saturating_duration_since(self.last_read);
        now
    }
}

impl RequestHandle {
    /// A handle closed while a read was pending keeps no connection (the
    /// read may have got its bytes just before it was cancelled).
    pub(super) fn release_if_closed(&mut self) {
        if let State::Receiving(r) = &mut self.state {
            if r.conn.is_some() && self.core.is_closed() {
                r.conn = None;
            }
        }
    }

    /// Whether a read may go from the socket straight into the caller's
    /// buffer: an identity body of known length or up to close, nothing
    /// buffered. (Chunked and compressed bodies go through the decoders.)
    pub(super) fn direct_ok(&self) -> bool {
        let Some(r) = self.receiving() else {
            return false;
        };
        r.ready.is_empty()
            && !r.done
            && r.content.is_identity()
            && r.conn.as_ref().is_some_and(|c| c.rbuf.is_empty())
            && matches!(
                r.head.body(),
                BodyLength::Length(_) | BodyLength::CloseDelimited
            )
    }

    pub(super) async fn read_direct(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        let result = self.read_direct_into(&mut r, buf).await;
        if result.is_err() {
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        self.state = State::Receiving(r);
        result
    }

    /// One read from the socket into `buf`, never past the body's end (so
    /// the next response's bytes stay in the socket): no extra copy.
    pub(super) async fn read_direct_into(
        &mut self,
        r: &mut Receiving,
        buf: &mut [u8],
    ) -> Result<usize, ClientError> {
        let started = r.begin_wait();
        loop {
            let (deadline, kind) = self.wait_plan(r, started)?;
            let cap = match r.body.remaining() {
                Some(n) => (n.min(buf.len() as u64)) as usize,
                None => buf.len(),
            };
            let conn = r
                .conn
                .as_mut()
                .expect("a body in progress has its connection");
            self.core.emit(Status::ReceivingResponse, Payload::None);
            let read = self
                .clock
                .run_until(
                    &self.core,
                    kind,
                    deadline,
                    conn.stream.read(&mut buf[..cap]),
                )
                .await;
            let Some(n) = self.body_read_outcome(r, read)? else {
                continue;
            };
            if n == 0 {
                return Ok(0);
            }
            let d = r.body.decode(&buf[..n])?;
            debug_assert_eq!((d.consumed, d.data.clone()), (n, 0..n));
            if d.done {
                self.finish_body(r)?;
            }
            return Ok(n);
        }
    }

    /// The deadline for the next socket read and which timeout it is: the
    /// receive timeout per read (counted from `started`, when the read
    /// began), or the end of the low-speed window when sooner (judged here:
    /// too few bytes in a finished window fail).
    pub(super) fn wait_plan(
        &self,
        r: &mut Receiving,
        started: Instant,
    ) -> Result<(Option<Instant>, TimeoutKind), ClientError> {
        let timeouts = &self.timeouts;
        let now = Instant::now();
        let mut deadline = timeouts.receive.map(|d| started + d);
        let mut kind = TimeoutKind::Receive;
        if let Some(ls) = timeouts.low_speed {
            let mut window_end = r.low_speed_start + ls.window;
            if now >= window_end {
                let needed = (ls.bytes_per_sec as f64 * ls.window.as_secs_f64()) as u64;
                if r.low_speed_bytes < needed {
                    return Err(ClientError::Timeout(TimeoutKind::LowSpeed));
                }
                r.low_speed_start = now;
                r.low_speed_bytes = 0;
                window_end = now + ls.window;
            }
            if deadline.is_none_or(|d| window_end < d) {
                deadline = Some(window_end);
                kind = TimeoutKind::LowSpeed;
            }
        }
        Ok((deadline, kind))
    }

    pub(super) fn check_open(&self) -> Result<(), ClientError> {
        if self.core.is_closed() {
            return Err(ClientError::InvalidState("handle is closed"));
        }
        Ok(())
    }

    pub(super) fn take_ready(&mut self, buf: &mut [u8]) -> usize {
        let State::Receiving(r) = &mut self.state else {
            return 0;
        };
        let n = r.ready.len().min(buf.len());
        buf[..n].copy_from_slice(&r.ready[..n]);
        r.ready.advance(n);
        n
    }

    /// Moves buffered body bytes through the decoders into `ready`; reads
    /// the socket when that gives nothing. Returns once `ready` has bytes
    /// or the body ended.
    pub(super) async fn fill(&mut self) -> Result<(), ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        let result = self.fill_into(&mut r).await;
        if result.is_err() {
            // Framing is unknown after an error: the connection cannot be reused.
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        self.state = State::Receiving(r);
        result
    }

    pub(super) async fn fill_into(&mut self, r: &mut Receiving) -> Result<(), ClientError> {
        let mut started = None;
        loop {
            if !r.ready.is_empty() || r.done {
                return Ok(());
            }
            if self.step_buffered(r)? {
                continue;
            }
            // Wait for more bytes: the receive timeout per read, the
            // low-speed window, the total deadline, and close.
            let begun = *started.get_or_insert_with(|| r.begin_wait());
            let (deadline, kind) = self.wait_plan(r, begun)?;
            // An earlier read failed and closed the connection: the rest
            // of the body is lost.
            let Some(conn) = r.conn.as_mut() else {
                return Err(ClientError::InvalidState("the response already failed"));
            };
            if conn.rbuf.capacity() - conn.rbuf.len() < 8192 {
                conn.rbuf.reserve(READ_CHUNK);
            }
            self.core.emit(Status::ReceivingResponse, Payload::None);
            let read = self
                .clock
                .run_until(
                    &self.core,
                    kind,
                    deadline,
                    conn.stream.read_buf(&mut conn.rbuf),
                )
                .await;
            match self.body_read_outcome(r, read)? {
                None => {}
                Some(0) => return Ok(()),
                Some(_) => started = None,
            }
        }
    }

    /// One socket read of the body has ended: `None` when it stopped for a
    /// low-speed window check (read again), else the bytes read; at end of
    /// file the body is finished — or found short.
    pub(super) fn body_read_outcome(
        &mut self,
        r: &mut Receiving,
        read: Result<std::io::Result<usize>, ClientError>,
    ) -> Result<Option<usize>, ClientError> {
        let n = match read {
            Err(ClientError::Timeout(TimeoutKind::LowSpeed)) => return Ok(None), // judged by wait_plan
            Err(e) => return Err(e),
            Ok(Err(e)) => return Err(ClientError::Receive(e.to_string())),
            Ok(Ok(n)) => n,
        };
        r.last_read = Instant::now();
        self.core
            .emit(Status::ResponseReceived, Payload::Bytes(n as u64));
        r.low_speed_bytes += n as u64;
        if n == 0 {
            r.keep_alive = false;
            if r.body.finish_at_eof().is_err() {
                return Err(ClientError::Protocol(Violation::ShortBody {
                    received: r.body.body_bytes(),
                }));
            }
            self.finish_body(r)?;
        }
        Ok(Some(n))
    }

    /// Decodes body bytes already read (no I/O). True if it made progress.
    pub(super) fn step_buffered(&mut self, r: &mut Receiving) -> Result<bool, ClientError> {
        let Some(conn) = r.conn.as_mut() else {
            return Ok(false);
        };
        if conn.rbuf.is_empty() {
            return Ok(false);
        }
        let d = r.body.decode(&conn.rbuf)?;
        let data = conn.rbuf.split_to(d.consumed);
        let data = &data[d.data.clone()];
        if !data.is_empty() {
            if r.content.is_identity() {
                r.ready.extend_from_slice(data);
            } else {
                // Held to the session's limits inside the decoder.
                r.content.feed(data, &mut r.scratch)?;
                r.ready.extend_from_slice(&r.scratch);
                r.scratch.clear();
            }
        }
        if d.done {
            self.finish_body(r)?;
            return Ok(true);
        }
        Ok(d.consumed > 0)
    }

    /// Identity bodies: decodes bytes already read straight into `buf` (one
    /// copy). `None` when nothing is buffered.
    pub(super) fn copy_buffered(&mut self, buf: &mut [u8]) -> Result<Option<usize>, ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ClientError::InvalidState("no response to read"));
        };
        let result = self.copy_buffered_from(&mut r, buf);
        if result.is_err() {
            if let Some(c) = r.conn.take() {
                self.close_connection(c);
            }
        }
        self.state = State::Receiving(r);
        result
    }

    pub(super) fn copy_buffered_from(
        &mut self,
        r: &mut Receiving,
        buf: &mut [u8],
    ) -> Result<Option<usize>, ClientError> {
        loop {
            if r.done {
                return Ok(Some(0));
            }
            let Some(conn) = r.conn.as_mut() else {
                return Ok(None);
            };
            if conn.rbuf.is_empty() {
                return Ok(None);
            }
            // The decoder resumes at any byte, so it may see a prefix.
            let k = conn.rbuf.len().min(buf.len());
            let d = r.body.decode(&conn.rbuf[..k])?;
            let len = d.data.len();
            buf[..len].copy_from_slice(&conn.rbuf[d.data.clone()]);
            conn.rbuf.advance(d.consumed);
            if d.done {
                self.finish_body(r)?;
            }
            if len > 0 {
                return Ok(Some(len));
            }
            if d.consumed == 0 && !d.done {
                return Ok(None);
            }
        }
    }

    /// Decodes what is buffered, without waiting, so reads it can satisfy
    /// complete at once (no REQUEST_COMPLETE).
    pub(super) fn pump(&mut self) -> Result<(), ClientError> {
        let State::Receiving(mut r) = std::mem::replace(&mut self.state, State::Failed) else {
            return Ok(());
        };
        let mut result = Ok(());
        while r.ready.is_empty() && !r.done {
            match self.step_buffered(&mut r) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    if let Some(c) = r.conn.take() {
                        self.close_connection(c);
                    }
                    result = Err(e);
                    break;
                }
            }
        }
        self.state = State::Receiving(r);
        result
    }

    /// The body ended: flush the decoder, then pool the connection if it is
    /// clean (nothing past the body, keep-alive) or close it.
    pub(super) fn finish_body(&mut self, r: &mut Receiving) -> Result<(), ClientError> {
        if !r.content.is_identity() {
            r.content.finish(&mut r.scratch)?;
            r.ready.extend_from_slice(&r.scratch);
            r.scratch.clear();
        }
        r.done = true;
        self.clock.timings.total = self.clock.since();
        if let Some(conn) = r.conn.take() {
            // Bytes past the end of the body are never a response: they
            // poison the connection.
            if r.keep_alive && conn.rbuf.is_empty() && !self.core.is_closed() {
                self.core.detach_socket();
                self.session.pool.checkin(conn);
            } else {
                self.close_connection(conn);
            }
        }
        Ok(())
    }
}
