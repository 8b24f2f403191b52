//! Request bodies on their way to the application: the bytes buffered for
//! a request (up to [`PIPE_CAP`]), `100 Continue` on the first read, and
//! what a reader learns when the body or the connection breaks.

use std::collections::VecDeque;
use std::task::{Poll, Waker};

use bytes::Bytes;

use super::{slot_index, DisconnectReason, Phase, ServerConn, PIPE_CAP};
use crate::Error;

/// Why a body read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The request was answered and retired, or never existed.
    Invalid,
    /// The body is malformed (the connection answered its status).
    Malformed(Error),
    /// The connection ended before the body was complete.
    Disconnected(DisconnectReason),
}

/// One request's body between the connection and the application.
pub(super) struct BodyPipe {
    chunks: VecDeque<Bytes>,
    pub(super) buffered: usize,
    pub(super) done: bool,
    pub(super) error: Option<Error>,
    waker: Option<Waker>,
    /// The application has asked for body (so 100 Continue may go out).
    pub(super) requested: bool,
    pub(super) expect_continue: bool,
    pub(super) continue_sent: bool,
}

impl BodyPipe {
    pub(super) fn new(expect_continue: bool) -> BodyPipe {
        BodyPipe {
            chunks: VecDeque::new(),
            buffered: 0,
            done: false,
            error: None,
            waker: None,
            requested: false,
            expect_continue,
            continue_sent: false,
        }
    }

    pub(super) fn push(&mut self, b: Bytes) {
        self.buffered += b.len();
        self.chunks.push_back(b);
        self.wake();
    }

    pub(super) fn finish(&mut self) {
        self.done = true;
        self.wake();
    }

    /// The body broke: its reader gets `e` once the buffered bytes are read.
    pub(super) fn fail(&mut self, e: Error) {
        self.error = Some(e);
        self.wake();
    }

    pub(super) fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl ServerConn {
    /// Reads request `seq`'s body: `sink` takes buffered pieces and says
    /// how many bytes it took; `Ok(0)` is the end of the body. Pending, the
    /// waker is kept and woken when bytes arrive. The first pending read
    /// sends `100 Continue` if the client asked for it and no answer has
    /// begun.
    ///
    /// The `bool` says the driver should look at the connection again:
    /// reading may resume (the buffer drained below [`PIPE_CAP`]), a
    /// `100 Continue` is queued, or an EntityBody timer is to be armed.
    pub fn poll_body(
        &mut self,
        seq: u32,
        waker: &Waker,
        sink: impl FnOnce(&mut VecDeque<Bytes>) -> usize,
    ) -> (Poll<Result<usize, BodyError>>, bool) {
        let Some(index) = slot_index(&self.slots, seq) else {
            if let Some((failed, e)) = self.failed_body {
                if failed == seq {
                    return (Poll::Ready(Err(BodyError::Malformed(e))), false);
                }
            }
            // Answered: whatever body there was is gone.
            return (Poll::Ready(Err(BodyError::Invalid)), false);
        };
        let ended = self.ended;
        let slot = &mut self.slots[index];
        let waiting = slot.phase == Phase::Waiting;
        let Some(pipe) = slot.body.as_mut() else {
            return (Poll::Ready(Ok(0)), false);
        };
        if !pipe.chunks.is_empty() {
            let was_full = pipe.buffered >= PIPE_CAP;
            let n = sink(&mut pipe.chunks);
            pipe.buffered -= n;
            return (Poll::Ready(Ok(n)), was_full && pipe.buffered < PIPE_CAP);
        }
        if let Some(e) = pipe.error {
            return (Poll::Ready(Err(BodyError::Malformed(e))), false);
        }
        if pipe.done {
            return (Poll::Ready(Ok(0)), false);
        }
        if let Some(r) = ended {
            return (Poll::Ready(Err(BodyError::Disconnected(r))), false);
        }
        if !pipe.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            pipe.waker = Some(waker.clone());
        }
        pipe.requested = true;
        if pipe.expect_continue && !pipe.continue_sent && waiting {
            pipe.continue_sent = true;
            self.emit(index, |out| out.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n"));
        }
        // Always: the EntityBody timer runs only while the application
        // waits on an empty pipe, and the driver may last have looked while
        // the pipe still held bytes (then no timer would ever fire).
        (Poll::Pending, true)
    }

    /// True when request `seq` has body bytes buffered, or its body is over.
    pub fn body_ready(&self, seq: u32) -> bool {
        match slot_index(&self.slots, seq).and_then(|i| self.slots[i].body.as_ref()) {
            None => true,
            Some(p) => !p.chunks.is_empty() || p.done || p.error.is_some(),
        }
    }
}
