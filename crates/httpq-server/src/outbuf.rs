//! Bytes waiting to be written on one connection: small pieces are copied
//! into one growing buffer, large bodies are kept as they are (no copy) and
//! go out with the rest in one vectored write.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Bodies at least this large are queued by reference instead of copied.
const COPY_LIMIT: usize = 4096;

/// Largest copy buffer handed on to the next connection (bigger ones are
/// kept by their connection, or freed).
const SPARE_MAX: usize = 64 * 1024;

thread_local! {
    /// A written-out copy buffer, lent to whichever connection on this
    /// thread encodes next. With many connections answered in turn (a
    /// pipelined batch each), every one kept its own buffer and the set of
    /// them outgrew the L1 cache: about two write misses per response
    /// (callgrind's cache simulation). Passed on, one buffer stays hot.
    static SPARE: std::cell::Cell<Option<BytesMut>> = const { std::cell::Cell::new(None) };
}

#[derive(Debug, Default)]
pub(crate) struct Outbuf {
    small: BytesMut,
    parts: VecDeque<Bytes>,
    len: usize,
}

impl Outbuf {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The copy buffer, borrowing the thread's spare when it has no storage.
    fn small(&mut self) -> &mut BytesMut {
        if self.small.capacity() == 0 {
            if let Some(spare) = SPARE.try_with(|s| s.take()).ok().flatten() {
                self.small = spare;
            }
        }
        &mut self.small
    }

    /// Everything was written: the copy buffer's storage goes to the
    /// thread's spare for the next connection (see `SPARE`).
    fn lend_spare(&mut self) {
        let cap = self.small.capacity();
        if self.len != 0 || cap == 0 || cap > SPARE_MAX {
            return;
        }
        let _ = SPARE.try_with(|s| {
            let held = s.take();
            if held.as_ref().is_none_or(|h| h.capacity() < cap) {
                s.set(Some(std::mem::take(&mut self.small)));
            } else {
                s.set(held);
            }
        });
    }

    /// Lets an encoder append to the copy buffer (it truncates on error).
    pub(crate) fn encode<E>(
        &mut self,
        f: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        let small = self.small();
        let before = small.len();
        let r = f(small);
        self.len += small.len() - before;
        r
    }

    /// When everything queued is in the copy buffer, swaps it with `with`
    /// (an empty buffer whose capacity is kept): the steady state of small
    /// responses then writes without allocating. False if there are parts.
    pub(crate) fn swap_small(&mut self, with: &mut BytesMut) -> bool {
        if !self.parts.is_empty() {
            return false;
        }
        std::mem::swap(&mut self.small, with);
        self.len = 0;
        true
    }

    /// Drops what was appended to the copy buffer after length `mark` (an
    /// encoder failed half-way).
    pub(crate) fn truncate_to(&mut self, mark: usize) {
        let cut = self.len - mark;
        let keep = self.small.len() - cut;
        self.small.truncate(keep);
        self.len = mark;
    }

    pub(crate) fn put_slice(&mut self, b: &[u8]) {
        self.small().extend_from_slice(b);
        self.len += b.len();
    }

    pub(crate) fn put_bytes(&mut self, b: Bytes) {
        if b.len() < COPY_LIMIT {
            self.put_slice(&b);
            return;
        }
        self.seal();
        self.len += b.len();
        self.parts.push_back(b);
    }

    /// Moves the copied bytes into the part list, keeping order.
    fn seal(&mut self) {
        if !self.small.is_empty() {
            // The whole buffer goes, not split off: a tail left behind would
            // keep the allocation alive under a capacity that hides its size
            // (and could be lent on as a spare). The next small bytes take
            // the thread's spare or a fresh buffer.
            self.parts
                .push_back(std::mem::take(&mut self.small).freeze());
        }
    }

    /// Writes as much as the socket takes now, without waiting, and drops
    /// what was written. Order on the wire: the parts, then the copy buffer.
    pub(crate) fn write_to(&mut self, stream: &tokio::net::TcpStream) -> std::io::Result<usize> {
        let mut total = 0;
        while self.len > 0 {
            let n = if self.parts.is_empty() {
                // The common case, one buffer: no slice table to build.
                match stream.try_write(&self.small) {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(total),
                    Err(e) => return Err(e),
                }
            } else {
                let mut slices: [std::io::IoSlice<'_>; 32] = [std::io::IoSlice::new(&[]); 32];
                let mut k = 0;
                for p in self.parts.iter().take(31) {
                    slices[k] = std::io::IoSlice::new(p);
                    k += 1;
                }
                if k < 31 && !self.small.is_empty() {
                    slices[k] = std::io::IoSlice::new(&self.small);
                    k += 1;
                }
                match stream.try_write_vectored(&slices[..k]) {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(total),
                    Err(e) => return Err(e),
                }
            };
            self.advance(n);
            total += n;
        }
        self.lend_spare();
        Ok(total)
    }

    /// Drops the first `n` bytes.
    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            match self.parts.front_mut() {
                Some(p) if n >= p.len() => {
                    n -= p.len();
                    self.parts.pop_front();
                }
                Some(p) => {
                    bytes::Buf::advance(p, n);
                    n = 0;
                }
                None if n >= self.small.len() => {
                    // All written: clear rather than advance, which would
                    // leave the buffer's start behind and make the next
                    // write reallocate.
                    self.small.clear();
                    n = 0;
                }
                None => {
                    bytes::Buf::advance(&mut self.small, n);
                    n = 0;
                }
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Moves everything into `into`, in order.
    pub(crate) fn take_into(&mut self, into: &mut Vec<Bytes>) {
        self.seal();
        into.extend(self.parts.drain(..));
        self.len = 0;
    }

    /// Appends `other`'s bytes after this buffer's.
    pub(crate) fn append(&mut self, other: &mut Outbuf) {
        if other.len == 0 {
            return;
        }
        if other.parts.is_empty() {
            // Small bytes are copied: sealing here would split the copy
            // buffer and make every later response allocate anew.
            let moved = other.small.len();
            self.small().extend_from_slice(&other.small);
            self.len += moved;
            other.small.clear();
            other.len = 0;
            return;
        }
        other.seal();
        self.seal();
        self.len += other.len;
        self.parts.extend(other.parts.drain(..));
        other.len = 0;
    }
}
