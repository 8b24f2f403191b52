//! Bytes waiting to be written on one connection: small pieces are copied
//! into one growing buffer, large bodies are kept as they are (no copy) and
//! go out with the rest in one vectored write.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Bodies at least this large are queued by reference instead of copied.
const COPY_LIMIT: usize = 4096;

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

    pub(crate) fn put_slice(&mut self, b: &[u8]) {
        self.small.extend_from_slice(b);
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
            self.parts.push_back(self.small.split().freeze());
        }
    }

    /// Moves everything into `into`, in order.
    pub(crate) fn take_into(&mut self, into: &mut Vec<Bytes>) {
        self.seal();
        into.extend(self.parts.drain(..));
        self.len = 0;
    }

    /// Appends `other`'s bytes after this buffer's.
    pub(crate) fn append(&mut self, other: &mut Outbuf) {
        other.seal();
        self.seal();
        self.len += other.len;
        self.parts.extend(other.parts.drain(..));
        other.len = 0;
    }
}
