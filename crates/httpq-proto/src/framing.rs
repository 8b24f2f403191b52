//! Message body framing (RFC 9112 §6): deciding where a body ends from the
//! head, and a decoder that follows that decision byte by byte.

use crate::chunked::{ChunkedDecoder, Decoded};
use crate::head::Special;
use crate::{Error, Limits, Version};

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body at all (no framing headers on a request; HEAD, 1xx, 204 and 304 responses).
    Empty,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection (responses only).
    CloseDelimited,
    /// The connection stops being HTTP: `101 Switching Protocols` or a 2xx answer to CONNECT.
    Tunnel,
}

impl BodyLength {
    /// True if no body bytes follow the head.
    pub fn is_empty(&self) -> bool {
        matches!(
            self,
            BodyLength::Empty | BodyLength::Length(0) | BodyLength::Tunnel
        )
    }
}

/// RFC 9112 §6.3 for requests: chunked if Transfer-Encoding ends in chunked,
/// else Content-Length, else no body. Everything ambiguous is an error.
pub(crate) fn request_body(
    s: &Special,
    version: Version,
    limits: &Limits,
) -> Result<BodyLength, Error> {
    if s.transfer_encoding {
        if version == Version::Http10 {
            return Err(Error::TransferEncodingInHttp10);
        }
        if s.content_length.is_some() {
            return Err(Error::ContentLengthWithTransferEncoding);
        }
        if !s.te_last_chunked || s.te_chunked_count > 1 {
            return Err(Error::ChunkedNotFinal);
        }
        if s.te_other {
            return Err(Error::UnsupportedTransferCoding);
        }
        return Ok(BodyLength::Chunked);
    }
    match s.content_length {
        Some(n) if n > limits.max_body_bytes => Err(Error::BodyTooLarge),
        Some(0) | None => Ok(BodyLength::Empty),
        Some(n) => Ok(BodyLength::Length(n)),
    }
}

/// RFC 9112 §6.3 for responses, given the request's method.
pub(crate) fn response_body(
    s: &Special,
    version: Version,
    status: u16,
    method: &http::Method,
    limits: &Limits,
) -> Result<BodyLength, Error> {
    if *method == http::Method::CONNECT && (200..300).contains(&status) || status == 101 {
        return Ok(BodyLength::Tunnel);
    }
    if *method == http::Method::HEAD
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Ok(BodyLength::Empty);
    }
    if s.transfer_encoding {
        if version == Version::Http10 {
            return Err(Error::TransferEncodingInHttp10);
        }
        if s.content_length.is_some() {
            return Err(Error::ContentLengthWithTransferEncoding);
        }
        if s.te_chunked_count > 1 {
            return Err(Error::ChunkedNotFinal);
        }
        // A response whose final coding is not chunked is close-delimited
        // *and* transfer-coded; we would have to undo that coding, and do not.
        if !s.te_last_chunked || s.te_other {
            return Err(Error::UnsupportedTransferCoding);
        }
        return Ok(BodyLength::Chunked);
    }
    match s.content_length {
        Some(n) if n > limits.max_body_bytes => Err(Error::BodyTooLarge),
        Some(0) => Ok(BodyLength::Empty),
        Some(n) => Ok(BodyLength::Length(n)),
        None => Ok(BodyLength::CloseDelimited),
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    Close,
    Done,
}

/// Follows a [`BodyLength`] over incoming bytes: hands out the body as ranges
/// of the input and says exactly where the body ends, so bytes after it are
/// never mistaken for body (or, worse, for the next message).
///
/// ```
/// use httpq_proto::{BodyDecoder, BodyLength, Limits};
/// let mut dec = BodyDecoder::new(BodyLength::Length(3), &Limits::default());
/// let d = dec.decode(b"abcGET / HTTP/1.1").unwrap();
/// assert_eq!((d.consumed, d.data, d.done), (3, 0..3, true));
/// ```
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    kind: Kind,
    received: u64,
    max: u64,
}

impl BodyDecoder {
    /// A decoder for a body framed as `len`.
    pub fn new(len: BodyLength, limits: &Limits) -> Self {
        let kind = match len {
            BodyLength::Empty | BodyLength::Tunnel | BodyLength::Length(0) => Kind::Done,
            BodyLength::Length(n) => Kind::Length(n),
            BodyLength::Chunked => Kind::Chunked(Box::new(ChunkedDecoder::new(limits))),
            BodyLength::CloseDelimited => Kind::Close,
        };
        BodyDecoder {
            kind,
            received: 0,
            max: limits.max_body_bytes,
        }
    }

    /// True once the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        match &self.kind {
            Kind::Done => true,
            Kind::Chunked(c) => c.is_done(),
            _ => false,
        }
    }

    /// Body bytes handed out so far.
    pub fn body_bytes(&self) -> u64 {
        self.received
    }

    /// Bytes of body still expected, when known.
    pub fn remaining(&self) -> Option<u64> {
        match &self.kind {
            Kind::Length(n) => Some(*n),
            Kind::Done => Some(0),
            _ => None,
        }
    }

    /// Trailer fields of a finished chunked body.
    pub fn trailers(&self) -> Option<&http::HeaderMap> {
        match &self.kind {
            Kind::Chunked(c) => c.trailers(),
            _ => None,
        }
    }

    /// One decode step over `input`; see [`Decoded`].
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, Error> {
        let d = match &mut self.kind {
            Kind::Done => Decoded {
                consumed: 0,
                data: 0..0,
                done: true,
            },
            Kind::Length(rest) => {
                let n = (*rest).min(input.len() as u64) as usize;
                *rest -= n as u64;
                let done = *rest == 0;
                if done {
                    self.kind = Kind::Done;
                }
                Decoded {
                    consumed: n,
                    data: 0..n,
                    done,
                }
            }
            Kind::Chunked(c) => c.decode(input)?,
            Kind::Close => {
                if self.received + input.len() as u64 > self.max {
                    return Err(Error::BodyTooLarge);
                }
                Decoded {
                    consumed: input.len(),
                    data: 0..input.len(),
                    done: false,
                }
            }
        };
        self.received += d.data.len() as u64;
        Ok(d)
    }

    /// The connection reached end of file: fine for a close-delimited body
    /// (which ends here) or a finished one, an error for anything else.
    pub fn finish_at_eof(&mut self) -> Result<(), Error> {
        match &self.kind {
            Kind::Close => {
                self.kind = Kind::Done;
                Ok(())
            }
            _ if self.is_done() => Ok(()),
            _ => Err(Error::IncompleteBody),
        }
    }
}
