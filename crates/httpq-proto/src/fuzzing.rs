//! Entry points shared by the cargo-fuzz targets and the corpus replay test.
//! Each must never panic, whatever the input.

use bytes::BytesMut;

use crate::{BodyDecoder, ChunkedDecoder, Limits, RequestParser, ResponseParser};

/// Parses `data` as a stream of requests fed in two pieces at a
/// data-chosen split, decoding each body, and checks that splitting never
/// changes the outcome.
pub fn request(data: &[u8]) {
    same_whole_and_split(data, run_requests);
}

/// Runs `run` on `data` whole and in two pieces split where its first
/// byte says, and checks the two outcomes are the same.
fn same_whole_and_split<T: PartialEq + std::fmt::Debug>(data: &[u8], run: impl Fn(&[&[u8]]) -> T) {
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let whole = run(&[data]);
    let pieces = run(&[&data[..split], &data[split..]]);
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

/// Feeds `data` (after two bytes of settings) to a server connection whole
/// and in data-chosen pieces, as a driver would — taking requests, reading
/// their bodies, answering each once its body is complete, writing and
/// retiring — and checks that how the bytes were split never changes the
/// requests seen, their bodies, or a byte on the wire.
pub fn server_conn(data: &[u8]) {
    let Some((&[stride, flags], input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let copy_body = [0, 16, 4096][usize::from(flags) % 3];
    let whole = drive_server_conn(input, input.len().max(1), copy_body, flags);
    let split = drive_server_conn(input, usize::from(stride % 64) + 1, copy_body, flags);
    assert_eq!(whole, split, "splitting the input changed the outcome");
}

/// What one driven connection saw: the requests (target and body), the
/// bytes on the wire, and how it ended.
type Driven = (Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>, Option<String>);

/// One driven connection.
fn drive_server_conn(input: &[u8], step: usize, copy_body: usize, flags: u8) -> Driven {
    use crate::server_conn::{
        Accept, ConnConfig, FixedLines, Input, Response, SendFlags, ServerConn,
    };
    use crate::RequestHead;
    let fixed = FixedLines {
        fields: b"Date: D\r\n",
        ok_11: b"HTTP/1.1 200 OK\r\nDate: D\r\n",
    };
    let now = std::time::Instant::now();
    let mut conn = ServerConn::new(ConnConfig::default(), now);
    let mut head = RequestHead::default();
    let mut requests: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // Requests taken and not yet answered: seq, index in `requests`, body done.
    let mut open: Vec<(u32, usize, bool)> = Vec::new();
    let mut wire = Vec::new();
    let mut fed = 0;
    let waker = std::task::Waker::noop();
    for _round in 0..100_000 {
        let before = (fed, wire.len(), requests.len(), open.len());
        if let Some(buf) = conn.read_buf() {
            let n = step.min(input.len() - fed);
            buf.extend_from_slice(&input[fed..fed + n]);
            conn.received(n, now);
            fed += n;
        }
        loop {
            match conn.poll_input(&mut head, now) {
                Input::Request(seq) => {
                    let start = conn.accept(
                        seq,
                        Accept {
                            queue: 1,
                            timeouts: None,
                            copy_body,
                        },
                    );
                    requests.push((head.target().to_vec(), start.bytes.to_vec()));
                    open.push((seq, requests.len() - 1, !start.more));
                }
                Input::Idle => break,
                Input::Close(r) => return (requests, wire, Some(format!("{r:?}"))),
            }
        }
        for (seq, i, done) in open.iter_mut().filter(|o| !o.2) {
            loop {
                let mut got = Vec::new();
                let (p, _) = conn.poll_body(*seq, waker, |chunks| {
                    let mut n = 0;
                    while let Some(c) = chunks.pop_front() {
                        n += c.len();
                        got.extend_from_slice(&c);
                    }
                    n
                });
                requests[*i].1.extend_from_slice(&got);
                match p {
                    std::task::Poll::Ready(Ok(0)) | std::task::Poll::Ready(Err(_)) => {
                        *done = true;
                        break;
                    }
                    std::task::Poll::Ready(Ok(_)) => continue,
                    std::task::Poll::Pending => break,
                }
            }
        }
        // Answered in order once complete; every other one in two pieces.
        while let Some(&(seq, _, true)) = open.first() {
            open.remove(0);
            let more = flags & 0x80 != 0 && seq % 2 == 0;
            let flag = if more {
                SendFlags::MORE_DATA
            } else {
                SendFlags::NONE
            };
            let mut r = Response::new(200).body("ok");
            if conn.send_response(seq, 1, &mut r, flag, &fixed).is_ok() && more {
                let _ = conn.send_body(seq, 1, bytes::Bytes::from_static(b"!"), SendFlags::NONE);
            }
        }
        conn.flush_answers(&fixed);
        if let Ok(n) = conn.output().write_to(&mut wire) {
            conn.on_written(n, now);
        }
        conn.retire(now);
        if let Some((r, _)) = conn.should_end() {
            return (requests, wire, Some(format!("{r:?}")));
        }
        // Nothing moved: all is fed, or input is paused behind answers
        // that wait for body that never comes.
        if (fed, wire.len(), requests.len(), open.len()) == before {
            break;
        }
    }
    (requests, wire, None)
}

/// Runs `entry` on every file of `fuzz/corpus/<target>/` (found from
/// `workspace_root`), each under `catch_unwind`; panics naming the first
/// file that made it panic, or if the corpus is missing or empty. Returns
/// how many files ran. Shared by the crates' corpus replay tests, so that
/// every input the fuzzer kept stays fixed on stable without a fuzzer.
///
/// ```no_run
/// let n = httpq_proto::fuzzing::replay_corpus(
///     std::path::Path::new("."), "request", httpq_proto::fuzzing::request);
/// assert!(n > 0);
/// ```
pub fn replay_corpus(
    workspace_root: &std::path::Path,
    target: &str,
    entry: impl Fn(&[u8]),
) -> usize {
    let dir = workspace_root.join("fuzz/corpus").join(target);
    assert!(
        dir.is_dir(),
        "corpus directory {} is missing",
        dir.display()
    );
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for file in &files {
        let data =
            std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(&data)));
        assert!(
            outcome.is_ok(),
            "fuzz target `{target}` panicked on corpus file {}",
            file.display()
        );
    }
    files.len()
}

/// Drives the HTTP/2 server engine with `data` as the frames after the
/// preface and an empty SETTINGS, fed whole and then in two pieces at a
/// data-chosen split, answering every request (and giving every body
/// back). Checks that splitting never changes what the client is seen to
/// do or how the connection ends, and that the output is whole frames.
pub fn h2(data: &[u8]) {
    same_whole_and_split(data, run_h2);
}

fn run_h2(pieces: &[&[u8]]) -> Vec<String> {
    use crate::h2::{Config, Conn, Event};
    let mut conn = Conn::new(Config {
        max_concurrent_streams: 8,
        max_header_list_size: 4096,
        initial_window_size: 1000,
        connection_window_size: 65_535,
        max_frame_size: 16_384,
    });
    let mut input = BytesMut::from(crate::h2::PREFACE);
    input.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        input.extend_from_slice(piece);
        if let Err(e) = conn.recv(&mut input) {
            seen.push(format!("error {}", e.code));
            break;
        }
        while let Some(e) = conn.poll_event() {
            match &e {
                Event::Request { stream, .. } => {
                    let _ = conn.send_response(
                        *stream,
                        200,
                        [(&b"content-type"[..], &b"text/plain"[..])],
                        false,
                    );
                    let _ = conn.send_data(*stream, bytes::Bytes::from_static(&[b'x'; 3000]), true);
                }
                Event::Data { stream, data, .. } => conn.release(*stream, data.len()),
                _ => {}
            }
            seen.push(format!("{e:?}"));
        }
        conn.take_output(&mut out);
    }
    conn.take_output(&mut out);
    let all: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    let mut at = 0;
    while at < all.len() {
        assert!(all.len() - at >= 9, "a partial frame header was written");
        let len = (usize::from(all[at]) << 16)
            | (usize::from(all[at + 1]) << 8)
            | usize::from(all[at + 2]);
        assert!(
            len <= 16_384,
            "a frame over the client's SETTINGS_MAX_FRAME_SIZE"
        );
        at += 9 + len;
    }
    assert_eq!(at, all.len(), "a partial frame was written");
    seen
}
