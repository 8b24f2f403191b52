//! Bytes waiting to be written on one connection, in wire order: small
//! pieces are copied into one growing buffer, large bodies are kept as
//! they are (no copy), and file ranges stay in their file until written
//! (`sendfile`). A [`Transmit`] — the driver's socket — takes them.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Bytes, BytesMut};

use super::response::FileChunk;

/// Bodies at least this large are queued by reference instead of copied.
const COPY_LIMIT: usize = 4096;

/// Largest copy buffer handed on to the next connection (bigger ones are
/// kept by their connection, or freed).
const SPARE_MAX: usize = 64 * 1024;

/// Most slices in one vectored write.
const MAX_SLICES: usize = 32;

/// Most bytes asked of the file in one `sendfile` (Linux moves at most
/// about 2 GiB per call anyway).
const MAX_FILE_STEP: u64 = 1 << 30;

thread_local! {
    /// A written-out copy buffer, lent to whichever connection on this
    /// thread encodes next. With many connections answered in turn (a
    /// pipelined batch each), every one kept its own buffer and the set of
    /// them outgrew the L1 cache: about two write misses per response
    /// (callgrind's cache simulation). Passed on, one buffer stays hot.
    static SPARE: std::cell::Cell<Option<BytesMut>> = const { std::cell::Cell::new(None) };
}

/// Where output goes: the driver's socket, or a test's buffer. Both calls
/// return what was taken; `WouldBlock` when nothing can be taken now.
pub trait Transmit {
    /// Writes from `bufs`, in order.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Writes up to `len` bytes of `file` from `offset` (`sendfile`).
    fn write_file(&mut self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize>;
}

/// Everything in memory, for tests and for callers without a socket.
impl Transmit for Vec<u8> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            self.extend_from_slice(b);
            n += b.len();
        }
        Ok(n)
    }

    fn write_file(&mut self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let start = self.len();
        self.resize(start + len, 0);
        let n = file.read_at(&mut self[start..], offset)?;
        self.truncate(start + n);
        if n == 0 && len > 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }
}

#[derive(Debug)]
enum Part {
    Mem(Bytes),
    File(FileChunk),
}

/// A connection's queued output.
#[derive(Debug, Default)]
pub struct Outbuf {
    small: BytesMut,
    parts: VecDeque<Part>,
    /// All bytes queued, file ranges included.
    len: u64,
    /// Bytes queued in memory (what the write budget counts).
    mem: usize,
}

impl Outbuf {
    /// Bytes queued, file ranges included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes queued in memory.
    pub fn mem_len(&self) -> usize {
        self.mem
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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

    /// Lets an encoder append to the copy buffer; on error what it
    /// appended is dropped again.
    pub(crate) fn encode<E>(
        &mut self,
        f: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        let small = self.small();
        let before = small.len();
        let r = f(small);
        if r.is_err() {
            small.truncate(before);
            return r;
        }
        let added = small.len() - before;
        self.len += added as u64;
        self.mem += added;
        r
    }

    /// Appends a copy of `b`.
    pub fn put_slice(&mut self, b: &[u8]) {
        self.small().extend_from_slice(b);
        self.len += b.len() as u64;
        self.mem += b.len();
    }

    /// Appends `b`, by reference when it is large.
    pub fn put_bytes(&mut self, b: Bytes) {
        if b.len() < COPY_LIMIT {
            self.put_slice(&b);
            return;
        }
        self.seal();
        self.len += b.len() as u64;
        self.mem += b.len();
        self.parts.push_back(Part::Mem(b));
    }

    /// Appends a file range (nothing is read now).
    pub fn put_file(&mut self, f: FileChunk) {
        if f.len == 0 {
            return;
        }
        self.seal();
        self.len += f.len;
        self.parts.push_back(Part::File(f));
    }

    /// Moves the copied bytes into the part list, keeping order.
    fn seal(&mut self) {
        if !self.small.is_empty() {
            // The whole buffer goes, not split off: a tail left behind would
            // keep the allocation alive under a capacity that hides its size
            // (and could be lent on as a spare).
            self.parts
                .push_back(Part::Mem(std::mem::take(&mut self.small).freeze()));
        }
    }

    /// Writes as much as `t` takes now and drops what was written; returns
    /// how much that was. Stops without error when `t` would block.
    pub fn write_to(&mut self, t: &mut impl Transmit) -> io::Result<usize> {
        let mut total = 0;
        while self.len > 0 {
            let r = match self.parts.front() {
                None => t.write_vectored(&[IoSlice::new(&self.small)]),
                Some(Part::File(f)) => {
                    let step = f.len.min(MAX_FILE_STEP) as usize;
                    match t.write_file(&f.file, f.offset, step) {
                        // The file is shorter than promised: the response
                        // can never be completed.
                        Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                        r => r,
                    }
                }
                Some(Part::Mem(_)) => {
                    let mut slices: [IoSlice<'_>; MAX_SLICES] = [IoSlice::new(&[]); MAX_SLICES];
                    let mut k = 0;
                    let mut file_next = false;
                    for p in self.parts.iter().take(MAX_SLICES - 1) {
                        match p {
                            Part::Mem(b) => {
                                slices[k] = IoSlice::new(b);
                                k += 1;
                            }
                            Part::File(_) => {
                                file_next = true;
                                break;
                            }
                        }
                    }
                    if !file_next && k < MAX_SLICES - 1 && !self.small.is_empty() {
                        slices[k] = IoSlice::new(&self.small);
                        k += 1;
                    }
                    t.write_vectored(&slices[..k])
                }
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.advance(n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.lend_spare();
        Ok(total)
    }

    /// Drops the first `n` bytes.
    fn advance(&mut self, mut n: usize) {
        self.len -= n as u64;
        while n > 0 {
            match self.parts.front_mut() {
                Some(Part::Mem(p)) if n >= p.len() => {
                    n -= p.len();
                    self.mem -= p.len();
                    self.parts.pop_front();
                }
                Some(Part::Mem(p)) => {
                    bytes::Buf::advance(p, n);
                    self.mem -= n;
                    n = 0;
                }
                Some(Part::File(f)) => {
                    // A file part is written alone, so `n` is within it.
                    let k = (n as u64).min(f.len);
                    f.offset += k;
                    f.len -= k;
                    n -= k as usize;
                    if f.len == 0 {
                        self.parts.pop_front();
                    }
                }
                None if n >= self.small.len() => {
                    // All written: clear rather than advance, which would
                    // leave the buffer's start behind and make the next
                    // write reallocate.
                    self.mem -= self.small.len();
                    self.small.clear();
                    n = 0;
                }
                None => {
                    bytes::Buf::advance(&mut self.small, n);
                    self.mem -= n;
                    n = 0;
                }
            }
        }
    }

    /// Appends `other`'s bytes after this buffer's, leaving it empty.
    pub fn append(&mut self, other: &mut Outbuf) {
        if other.len == 0 {
            return;
        }
        if other.parts.is_empty() {
            // Small bytes are copied: sealing here would split the copy
            // buffer and make every later response allocate anew.
            let moved = other.small.len();
            self.small().extend_from_slice(&other.small);
            self.len += moved as u64;
            self.mem += moved;
            other.small.clear();
            other.len = 0;
            other.mem = 0;
            return;
        }
        other.seal();
        self.seal();
        self.len += other.len;
        self.mem += other.mem;
        self.parts.extend(other.parts.drain(..));
        other.len = 0;
        other.mem = 0;
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.small.clear();
        self.parts.clear();
        self.len = 0;
        self.mem = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;

    /// Takes at most `step` bytes per call, and blocks every other call.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        block: bool,
    }

    impl Transmit for Trickle {
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.block = !self.block;
            if self.block {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.step - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.step {
                    break;
                }
            }
            Ok(n)
        }
        fn write_file(
            &mut self,
            file: &std::fs::File,
            offset: u64,
            len: usize,
        ) -> io::Result<usize> {
            self.block = !self.block;
            if self.block {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.out.write_file(file, offset, len.min(self.step))
        }
    }

    #[test]
    fn order_is_kept_across_copies_references_and_files() {
        let path = std::env::temp_dir().join(format!("httpq-outbuf-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let big = Bytes::from(vec![b'x'; 5000]);
        let mut o = Outbuf::default();
        o.put_slice(b"head;");
        o.put_bytes(big.clone());
        o.put_file(FileChunk {
            file,
            offset: 2,
            len: 5,
        });
        o.put_slice(b";tail");
        assert_eq!(o.len(), 5 + 5000 + 5 + 5);
        assert_eq!(o.mem_len(), 5 + 5000 + 5);
        let mut t = Trickle {
            out: Vec::new(),
            step: 3,
            block: false,
        };
        let mut rounds = 0;
        while !o.is_empty() {
            o.write_to(&mut t).unwrap();
            rounds += 1;
            assert!(rounds < 10_000);
        }
        let mut want = b"head;".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"23456;tail");
        assert_eq!(t.out, want);
        assert_eq!(o.mem_len(), 0);
    }

    #[test]
    fn a_file_shorter_than_promised_is_an_error() {
        let path = std::env::temp_dir().join(format!("httpq-outbuf-short-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let mut o = Outbuf::default();
        o.put_file(FileChunk {
            file,
            offset: 0,
            len: 10,
        });
        let mut out = Vec::new();
        assert!(o.write_to(&mut out).is_err());
        assert_eq!(out, b"abc");
    }
}
