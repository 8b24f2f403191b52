//! Entry points shared by the cargo-fuzz targets and the corpus replay test.
//! Each must never panic, whatever the input.

use bytes::BytesMut;

use crate::{BodyDecoder, ChunkedDecoder, Limits, RequestParser, ResponseParser};

/// Parses `data` as a stream of requests fed in two pieces at a
/// data-chosen split, decoding each body, and checks that splitting never
/// changes the outcome.
pub fn request(data: &[u8]) {
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let whole = run_requests(&[data]);
    let pieces = run_requests(&[&data[..split], &data[split..]]);
    assert_eq!(whole, pieces, "splitting the input changed the result");
}

fn run_requests(pieces: &[&[u8]]) -> Vec<String> {
    let limits = Limits::default();
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut body: Option<BodyDecoder> = None;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            if let Some(dec) = body.as_mut() {
                match dec.decode(&buf) {
                    Ok(d) => {
                        out.push(format!("data {}", buf[d.data.clone()].escape_ascii()));
                        let _ = buf.split_to(d.consumed);
                        if d.done {
                            body = None;
                            continue;
                        }
                        if buf.is_empty() {
                            break;
                        }
                        continue;
                    }
                    Err(e) => {
                        out.push(format!("body error {e:?}"));
                        return coalesce(out);
                    }
                }
            }
            match parser.parse(&mut buf) {
                Ok(Some(head)) => {
                    let _ = head.cooked_url("http", "127.0.0.1:80".parse().unwrap(), &limits);
                    let _ = head.header_map();
                    out.push(format!(
                        "head {:?} {:?} {:?}",
                        head.method(),
                        head.target(),
                        head.body()
                    ));
                    body = Some(BodyDecoder::new(head.body(), &limits));
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error {e:?}"));
                    return coalesce(out);
                }
            }
        }
    }
    coalesce(out)
}

/// Data events may be cut differently by different splits; join adjacent ones.
fn coalesce(events: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if let (Some(last), Some(rest)) = (out.last_mut(), e.strip_prefix("data ")) {
            if last.starts_with("data ") {
                last.push_str(rest);
                continue;
            }
        }
        if e != "data " {
            out.push(e);
        }
    }
    out
}

/// Parses `data` as a response to GET (or HEAD, by the first byte), then its body.
pub fn response(data: &[u8]) {
    let method = if data.first().is_some_and(|b| b & 1 == 1) {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    let limits = Limits::default();
    let mut parser = ResponseParser::new(limits);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(head)) = parser.parse(&mut buf, &method) {
        let _ = head.header_map();
        if head.is_informational() {
            continue;
        }
        let mut dec = BodyDecoder::new(head.body(), &limits);
        while let Ok(d) = dec.decode(&buf) {
            let _ = buf.split_to(d.consumed);
            if d.done || d.consumed == 0 {
                break;
            }
        }
        let _ = dec.finish_at_eof();
        break;
    }
}

/// Decodes `data` as a chunked body byte by byte and in one go; both must agree.
pub fn chunked(data: &[u8]) {
    let limits = Limits::default();
    let one = decode_chunked(&limits, data, data.len().max(1));
    let bytewise = decode_chunked(&limits, data, 1);
    assert_eq!(one, bytewise, "byte-wise decoding disagreed");
}

fn decode_chunked(
    limits: &Limits,
    data: &[u8],
    step: usize,
) -> Result<(Vec<u8>, bool), crate::Error> {
    let mut dec = ChunkedDecoder::new(limits);
    let mut body = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for piece in data.chunks(step) {
        pending.extend_from_slice(piece);
        loop {
            let d = dec.decode(&pending)?;
            body.extend_from_slice(&pending[d.data.clone()]);
            pending.drain(..d.consumed);
            if d.done {
                return Ok((body, true));
            }
            if d.consumed == 0 || pending.is_empty() {
                break;
            }
        }
    }
    Ok((body, false))
}
