//! Helpers shared by the table and property tests: feeding input in pieces
//! and reading a body to its end.

use bytes::BytesMut;
use httpq_proto::{BodyDecoder, Error, Limits, RequestHead, RequestParser};

/// Splits `input` at the (sorted) `cuts`.
pub fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        out.push(&input[at..c]);
        at = c;
    }
    out.push(&input[at..]);
    out
}

/// Body, trailers (once a chunked body is done), bytes after the body.
pub type BodyParts = (Vec<u8>, Option<http::HeaderMap>, Vec<u8>);

/// Runs the body decoder over `buf` and then the remaining pieces; returns
/// the body, the trailers and everything after the body.
pub fn read_body<'a>(
    mut dec: BodyDecoder,
    buf: &mut BytesMut,
    pieces: &mut impl Iterator<Item = &'a [u8]>,
) -> Result<BodyParts, Error> {
    let mut body = Vec::new();
    loop {
        while !dec.is_done() && !buf.is_empty() {
            let d = dec.decode(buf)?;
            body.extend_from_slice(&buf[d.data.clone()]);
            let _ = buf.split_to(d.consumed);
            if d.consumed == 0 {
                break;
            }
        }
        if dec.is_done() {
            break;
        }
        match pieces.next() {
            Some(p) => buf.extend_from_slice(p),
            None => {
                dec.finish_at_eof()?;
                break;
            }
        }
    }
    let mut rest = buf.to_vec();
    for p in pieces {
        rest.extend_from_slice(p);
    }
    Ok((body, dec.trailers().cloned(), rest))
}

/// Feeds pieces into `buf` until a request head parses; the rest stays in
/// `buf` and `pieces`.
pub fn read_request_head<'a>(
    limits: Limits,
    buf: &mut BytesMut,
    pieces: &mut impl Iterator<Item = &'a [u8]>,
) -> Result<RequestHead, Error> {
    let mut parser = RequestParser::new(limits);
    loop {
        match pieces.next() {
            Some(p) => buf.extend_from_slice(p),
            None => return Err(Error::IncompleteHead),
        }
        if let Some(h) = parser.parse(buf)? {
            return Ok(h);
        }
    }
}
