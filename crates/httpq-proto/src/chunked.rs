//! The chunked transfer coding (RFC 9112 §7.1): a streaming decoder that
//! resumes at any byte, and an encoder that never copies the payload.

use std::ops::Range;

use crate::encode::HeadBuf;
use crate::head::{is_tchar, map_httparse};
use crate::{Error, Limits};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` so far.
    Size {
        digits: u8,
    },
    /// Whitespace after the size: only `;` may follow (BWS before an extension).
    SizeWs,
    /// Inside chunk extensions, up to the CR.
    Ext {
        quoted: bool,
        escape: bool,
    },
    /// Saw CR at the end of the size line.
    SizeLf,
    /// Chunk data, `remaining` bytes to go.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine,
    TrailerLf,
    /// Saw CR at the start of a line: the final CRLF.
    EndLf,
    Done,
}

/// A resumable chunked-body decoder. Feed it bytes as they arrive; it hands
/// back ranges of the input that are body data, never copying them.
///
/// Strict by design: chunk sizes are 1–16 hex digits, every line ends in
/// CRLF, chunk data is followed by exactly CRLF, extensions and trailers are
/// capped, and none of them ever change where the body ends.
///
/// ```
/// use httpq_proto::{ChunkedDecoder, Limits};
/// let mut dec = ChunkedDecoder::new(&Limits::default());
/// let input = b"5;ext=1\r\nhello\r\n0\r\nEtag: x\r\n\r\n";
/// let mut body = Vec::new();
/// let mut pos = 0;
/// while !dec.is_done() {
///     let d = dec.decode(&input[pos..]).unwrap();
///     body.extend_from_slice(&input[pos..][d.data]);
///     pos += d.consumed;
/// }
/// assert_eq!(body, b"hello");
/// assert_eq!(dec.trailers().unwrap()["etag"], "x");
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, then bytes of it still to come.
    remaining: u64,
    total: u64,
    ext_bytes: usize,
    trailer_raw: Vec<u8>,
    trailers: Option<http::HeaderMap>,
    limits: Limits,
}

/// The result of one decode step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed; the caller advances past them.
    pub consumed: usize,
    /// Body data, as a range of the input (empty when this step had none).
    pub data: Range<usize>,
    /// The body is complete; nothing after `consumed` belongs to it.
    pub done: bool,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            remaining: 0,
            total: 0,
            ext_bytes: 0,
            trailer_raw: Vec::new(),
            trailers: None,
            limits: *limits,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes decoded so far.
    pub fn body_bytes(&self) -> u64 {
        self.total
    }

    /// The trailer fields, once the body is done (empty map if none were sent).
    pub fn trailers(&self) -> Option<&http::HeaderMap> {
        self.trailers.as_ref()
    }

    /// Takes the trailer fields out of a finished decoder.
    pub fn take_trailers(&mut self) -> Option<http::HeaderMap> {
        self.trailers.take()
    }

    /// Decodes from `input`, stopping after the first run of body data, at the
    /// end of the body, or when the input is used up.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, Error> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size { digits } => match hex_val(b) {
                    Some(v) => {
                        if digits == 16 {
                            return Err(Error::InvalidChunkSize);
                        }
                        self.remaining = (self.remaining << 4) | u64::from(v);
                        self.state = State::Size { digits: digits + 1 };
                    }
                    None if digits == 0 => return Err(Error::InvalidChunkSize),
                    None => match b {
                        b'\r' => self.state = State::SizeLf,
                        b';' => {
                            self.state = State::Ext {
                                quoted: false,
                                escape: false,
                            }
                        }
                        b' ' | b'\t' => self.state = State::SizeWs,
                        // A size line must end in CRLF, not a bare LF.
                        b'\n' => return Err(Error::InvalidChunkTerminator),
                        _ => return Err(Error::InvalidChunkSize),
                    },
                },
                State::SizeWs => match b {
                    b' ' | b'\t' => self.count_ext(1)?,
                    b';' => {
                        self.state = State::Ext {
                            quoted: false,
                            escape: false,
                        }
                    }
                    _ => return Err(Error::InvalidChunkSize),
                },
                State::Ext { quoted, escape } => {
                    self.count_ext(1)?;
                    self.state = match (quoted, escape, b) {
                        (false, _, b'\r') => State::SizeLf,
                        (true, true, b'\t' | b' '..=0x7e | 0x80..=0xff) => State::Ext {
                            quoted: true,
                            escape: false,
                        },
                        (true, false, b'"') => State::Ext {
                            quoted: false,
                            escape: false,
                        },
                        (true, false, b'\\') => State::Ext {
                            quoted: true,
                            escape: true,
                        },
                        (true, false, b'\t' | b' '..=0x7e | 0x80..=0xff) => State::Ext {
                            quoted: true,
                            escape: false,
                        },
                        (false, _, b'"') => State::Ext {
                            quoted: true,
                            escape: false,
                        },
                        (false, _, b';' | b'=' | b' ' | b'\t') => State::Ext { quoted, escape },
                        (false, _, b) if is_tchar(b) => State::Ext { quoted, escape },
                        _ => return Err(Error::InvalidChunkExtension),
                    };
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(Error::InvalidChunkTerminator);
                    }
                    if self.remaining == 0 {
                        self.state = State::TrailerStart;
                    } else {
                        self.total = self
                            .total
                            .checked_add(self.remaining)
                            .filter(|&t| t <= self.limits.max_body_bytes)
                            .ok_or(Error::BodyTooLarge)?;
                        self.state = State::Data;
                        // Hand out data straight away if it is here.
                        let start = i + 1;
                        if start < input.len() {
                            return Ok(self.take_data(input, start));
                        }
                    }
                }
                State::Data => return Ok(self.take_data(input, i)),
                State::DataCr => {
                    if b != b'\r' {
                        return Err(Error::InvalidChunkTerminator);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(Error::InvalidChunkTerminator);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::EndLf,
                    // Trailer lines and the final empty line end in CRLF too; a
                    // bare LF here would otherwise swallow what follows the body.
                    b'\n' => return Err(Error::InvalidChunkTerminator),
                    _ => {
                        self.push_trailer(b)?;
                        self.state = State::TrailerLine;
                    }
                },
                State::TrailerLine => {
                    if b == b'\n' {
                        return Err(Error::InvalidChunkTerminator);
                    }
                    self.push_trailer(b)?;
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    }
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(Error::InvalidChunkTerminator);
                    }
                    self.push_trailer(b)?;
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(Error::InvalidChunkTerminator);
                    }
                    self.finish_trailers()?;
                    self.state = State::Done;
                    return Ok(Decoded {
                        consumed: i + 1,
                        data: 0..0,
                        done: true,
                    });
                }
                State::Done => {
                    return Ok(Decoded {
                        consumed: i,
                        data: 0..0,
                        done: true,
                    })
                }
            }
            i += 1;
        }
        Ok(Decoded {
            consumed: i,
            data: 0..0,
            done: self.state == State::Done,
        })
    }

    fn take_data(&mut self, input: &[u8], start: usize) -> Decoded {
        let avail = (input.len() - start) as u64;
        let n = avail.min(self.remaining) as usize;
        self.remaining -= n as u64;
        if self.remaining == 0 {
            self.state = State::DataCr;
        }
        Decoded {
            consumed: start + n,
            data: start..start + n,
            done: false,
        }
    }

    fn count_ext(&mut self, n: usize) -> Result<(), Error> {
        self.ext_bytes += n;
        if self.ext_bytes > self.limits.max_chunk_ext_bytes {
            return Err(Error::ChunkExtensionsTooLarge);
        }
        Ok(())
    }

    fn push_trailer(&mut self, b: u8) -> Result<(), Error> {
        if self.trailer_raw.len() >= self.limits.max_trailer_bytes {
            return Err(Error::TrailersTooLarge);
        }
        self.trailer_raw.push(b);
        Ok(())
    }

    fn finish_trailers(&mut self) -> Result<(), Error> {
        let mut map = http::HeaderMap::new();
        if !self.trailer_raw.is_empty() {
            self.trailer_raw.extend_from_slice(b"\r\n");
            let mut table = vec![httparse::EMPTY_HEADER; self.limits.max_trailers];
            match httparse::parse_headers(&self.trailer_raw, &mut table) {
                Ok(httparse::Status::Complete((_, fields))) => {
                    for f in fields {
                        let name = http::HeaderName::from_bytes(f.name.as_bytes())
                            .map_err(|_| Error::InvalidHeaderName)?;
                        let value = http::HeaderValue::from_bytes(f.value)
                            .map_err(|_| Error::InvalidHeaderValue)?;
                        map.append(name, value);
                    }
                }
                Ok(httparse::Status::Partial) => return Err(Error::InvalidNewLine),
                Err(httparse::Error::TooManyHeaders) => return Err(Error::TrailersTooLarge),
                Err(e) => return Err(map_httparse(e, b"", true)),
            }
            self.trailer_raw = Vec::new();
        }
        self.trailers = Some(map);
        Ok(())
    }
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The size line of one chunk, formatted on the stack: `"<hex>\r\n"`.
///
/// The payload is written by the caller (ideally by `writev`, without a
/// copy), followed by [`CHUNK_END`].
///
/// ```
/// let h = httpq_proto::ChunkHeader::new(300);
/// assert_eq!(h.as_bytes(), b"12c\r\n");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ChunkHeader {
    buf: [u8; 18],
    len: u8,
}

/// What follows the data of every chunk.
pub const CHUNK_END: &[u8] = b"\r\n";

impl ChunkHeader {
    /// The size line for a chunk of `size` bytes. `size` must not be 0: a
    /// zero-sized chunk ends the body; use [`ChunkedEncoder::finish`].
    pub fn new(size: u64) -> Self {
        debug_assert!(size > 0, "a zero-sized chunk ends the body");
        let mut buf = [0u8; 18];
        let digits = if size == 0 {
            1
        } else {
            (16 - size.leading_zeros() as usize / 4).max(1)
        };
        for (i, slot) in buf[..digits].iter_mut().enumerate() {
            let nibble = ((size >> ((digits - 1 - i) * 4)) & 0xf) as u8;
            *slot = b"0123456789abcdef"[nibble as usize];
        }
        buf[digits] = b'\r';
        buf[digits + 1] = b'\n';
        ChunkHeader {
            buf,
            len: (digits + 2) as u8,
        }
    }

    /// The formatted size line.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// Encodes a body with the chunked coding into a caller buffer.
///
/// ```
/// use httpq_proto::ChunkedEncoder;
/// let mut out = Vec::new();
/// ChunkedEncoder::chunk(b"hello", &mut out);
/// ChunkedEncoder::chunk(b"", &mut out); // skipped: it would end the body
/// ChunkedEncoder::finish(&[("Etag", "x")], &mut out).unwrap();
/// assert_eq!(out, b"5\r\nhello\r\n0\r\nEtag: x\r\n\r\n");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkedEncoder;

impl ChunkedEncoder {
    /// Appends one chunk holding `data`. Empty data writes nothing, since an
    /// empty chunk would mark the end of the body.
    pub fn chunk<B: HeadBuf + ?Sized>(data: &[u8], out: &mut B) {
        if data.is_empty() {
            return;
        }
        out.put(ChunkHeader::new(data.len() as u64).as_bytes());
        out.put(data);
        out.put(CHUNK_END);
    }

    /// Appends the last chunk and the trailer section. Trailer names and
    /// values are checked like header fields; on error nothing is written.
    pub fn finish<B, K, V>(trailers: &[(K, V)], out: &mut B) -> Result<(), Error>
    where
        B: HeadBuf + ?Sized,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mark = out.len();
        out.put(b"0\r\n");
        if let Err(e) = crate::encode::put_fields(trailers.iter().map(|(k, v)| (k, v)), out) {
            out.truncate(mark);
            return Err(e);
        }
        out.put(b"\r\n");
        Ok(())
    }
}
