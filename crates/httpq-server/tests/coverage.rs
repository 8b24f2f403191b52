//! Features the other suites leave untested, over real sockets against an
//! in-process server: the request's fields, 100-continue corner cases,
//! multi-MiB request bodies through a slow reader, limit statuses, the
//! queue's default limit and `close`, the blocking twins on plain threads,
//! graceful shutdown, `set_timeouts`, write failures, the Server header and
//! IPv6 prefixes.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{free_port, get, Client, Server, Waiters, LIMIT};
use httpq_proto::{BodyDecoder, Limits, ResponseParser, Version};
use httpq_server::{
    CompletionQueue, DisconnectReason, Properties, Request, RequestQueue, Response, SendFlags,
    ServerError, ServerSession, TimeoutKind, Timeouts,
};
use tokio::io::AsyncReadExt;

// ---- helpers -------------------------------------------------------------

/// The next request on `queue`, bounded by [`LIMIT`].
async fn recv(queue: &RequestQueue) -> Request {
    tokio::time::timeout(LIMIT, queue.receive())
        .await
        .expect("a request in time")
        .expect("the queue is open")
}

async fn answer(queue: &RequestQueue, req: &Request, status: u16, body: &'static str) {
    queue
        .send_response(req.id(), Response::new(status).body(body), SendFlags::NONE)
        .await
        .unwrap();
}

/// Polls `f` once: `Pending` proves it has registered and is waiting.
async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// Polls `cond` until it holds, bounded by [`LIMIT`]. Only for states no
/// event announces (a queue's length, say).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Everything the server sends until it closes the connection (EOF).
async fn read_to_eof(c: &mut Client) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(LIMIT, c.stream.read_to_end(&mut all))
        .await
        .expect("the server closes the connection in time")
        .expect("a clean close, not a reset");
    all
}

/// One response as it came off the wire, interim (1xx) ones included.
#[derive(Debug)]
struct Wire {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// Parses every response in `bytes` (the whole stream up to EOF), keeping
/// the interim ones the common client skips.
fn responses_in(bytes: &[u8]) -> Vec<Wire> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while !buf.is_empty() {
        let mut parser = ResponseParser::new(Limits::default());
        let head = parser
            .parse(&mut buf, &http::Method::GET)
            .unwrap()
            .expect("a whole response head");
        let mut body = Vec::new();
        if !head.is_informational() {
            let mut dec = BodyDecoder::new(head.body(), &Limits::default());
            while !dec.is_done() {
                if buf.is_empty() {
                    dec.finish_at_eof().unwrap();
                    break;
                }
                let d = dec.decode(&buf).unwrap();
                body.extend_from_slice(&buf[d.data.clone()]);
                let _ = buf.split_to(d.consumed);
            }
        }
        out.push(Wire {
            status: head.status(),
            headers: head.header_map(),
            body,
        });
    }
    out
}

/// A server, and a client whose one request the application holds.
async fn held(props: Properties) -> (Server, Client, Request) {
    let s = Server::start(props);
    let mut c = s.connect().await;
    c.send(&get("/held")).await;
    let req = recv(&s.queue).await;
    (s, c, req)
}

// ---- 1. request fields ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_method_headers_addresses_and_cooked_url() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    let head = format!(
        "FROB /p/q?x=1 HTTP/1.1\r\nHost: A.Example:{}\r\nX-Multi: one\r\nAccept: */*\r\nx-multi: two\r\n\r\n",
        s.port
    );
    c.send(head.as_bytes()).await;
    let req = recv(&s.queue).await;

    // An unknown method is kept as sent, not folded into a known one.
    assert_eq!(req.method_bytes(), b"FROB");
    assert_eq!(req.method().as_str(), "FROB");
    assert_eq!(req.method(), http::Method::from_bytes(b"FROB").unwrap());
    assert_ne!(req.method(), http::Method::GET);

    // Every field, both values of the repeated one in order.
    let h = req.headers();
    let multi: Vec<&[u8]> = h.get_all("x-multi").iter().map(|v| v.as_bytes()).collect();
    assert_eq!(multi, [&b"one"[..], &b"two"[..]]);
    assert_eq!(h.get("accept").unwrap(), "*/*");
    assert_eq!(
        h.get(http::header::HOST).unwrap(),
        format!("A.Example:{}", s.port).as_str()
    );
    assert_eq!((h.len(), h.keys_len()), (4, 3));
    assert_eq!(req.header("X-MULTI"), Some(&b"one"[..]), "the first value");

    // The addresses are the client socket's, seen from the other side.
    assert_eq!(req.remote_addr(), c.stream.local_addr().unwrap());
    assert_eq!(req.local_addr(), c.stream.peer_addr().unwrap());

    assert_eq!(req.version(), Version::Http11);
    assert_eq!(req.bytes_received(), head.len() as u64);
    let url = req.url();
    assert_eq!((url.host.as_str(), url.port), ("a.example", s.port));
    assert_eq!(url.full(), format!("http://a.example:{}/p/q?x=1", s.port));
    answer(&s.queue, &req, 200, "frob").await;
    assert_eq!(c.response().await.unwrap().body, b"frob");

    // Method tokens are case-sensitive: `get` is not GET.
    c.send(b"get / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let req = recv(&s.queue).await;
    assert_eq!(req.method_bytes(), b"get");
    assert_ne!(req.method(), http::Method::GET);
    // A Host without a port: the scheme's default port.
    assert_eq!(req.url().port, 80);
    assert_eq!(req.url().full(), "http://a:80/");
    answer(&s.queue, &req, 200, "").await;
    c.response().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_bytes_received_per_request_and_url_from_the_local_address() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    // Pipelined: an HTTP/1.0 keep-alive request without Host, then a
    // longer HTTP/1.1 one with a body.
    let first = "GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let second =
        "POST /eleven/x HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5\r\nX-Pad: 0123456789\r\n\r\n";
    let mut bytes = format!("{first}{second}").into_bytes();
    bytes.extend_from_slice(b"hello");
    c.send(&bytes).await;

    let r10 = recv(&s.queue).await;
    assert_eq!(r10.version(), Version::Http10);
    assert_eq!(r10.bytes_received(), first.len() as u64);
    // No Host: host and port are the address the request arrived on.
    assert_eq!(r10.url().port, s.port);
    assert_eq!(r10.url().full(), format!("http://127.0.0.1:{}/ten", s.port));
    assert!(!r10.has_body());
    answer(&s.queue, &r10, 200, "1.0").await;
    let r = c.response().await.unwrap();
    assert_eq!(r.body, b"1.0");
    assert_eq!(r.header("connection"), Some("keep-alive"));

    let r11 = recv(&s.queue).await;
    assert_eq!(r11.connection_id(), r10.connection_id());
    assert_eq!(r11.version(), Version::Http11);
    // Per request, the head alone: neither cumulative nor counting the body.
    assert_eq!(r11.bytes_received(), second.len() as u64);
    assert!(r11.has_body());
    let mut buf = [0u8; 16];
    let n = s.queue.receive_body(r11.id(), &mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"hello");
    answer(&s.queue, &r11, 200, "1.1").await;
    assert_eq!(c.response().await.unwrap().body, b"1.1");
}

// ---- 2. 100-continue -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_expect_continue_never_gets_100() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(b"PUT /f HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let req = recv(&s.queue).await;
    assert_eq!(req.version(), Version::Http10);
    assert!(!req.head().expects_continue());
    let mut buf = [0u8; 8];
    let n = {
        // The application asks for body before any has come: the moment
        // a 100 would be written, were it ever written to HTTP/1.0.
        let mut read = std::pin::pin!(s.queue.receive_body(req.id(), &mut buf));
        assert!(poll_once(&mut read).await.is_pending());
        c.send(b"abc").await;
        tokio::time::timeout(LIMIT, read).await.unwrap().unwrap()
    };
    assert_eq!(&buf[..n], b"abc");
    assert_eq!(s.queue.receive_body(req.id(), &mut buf).await.unwrap(), 0);
    answer(&s.queue, &req, 200, "stored").await;
    // HTTP/1.0 without keep-alive: the server closes after the response,
    // so the whole stream can be read and nothing may precede the 200.
    let wire = responses_in(&read_to_eof(&mut c).await);
    let statuses: Vec<u16> = wire.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200], "no 100 Continue to HTTP/1.0");
    assert_eq!(wire[0].body, b"stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_body_never_read_closes_after_the_response() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let req = recv(&s.queue).await;
    assert!(req.head().expects_continue());
    let w = Waiters::arm(&s.queue, req.connection_id());
    // Answered without reading: the client still waits for a 100 that will
    // never come, so its body will never be sent and cannot be drained —
    // the connection closes once the response is out.
    answer(&s.queue, &req, 403, "not wanted").await;
    let wire = responses_in(&read_to_eof(&mut c).await);
    let statuses: Vec<u16> = wire.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403], "the final response alone, no 100");
    assert_eq!(wire[0].body, b"not wanted");
    assert_eq!(
        wire[0].headers.get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "the response says it is the last"
    );
    assert_eq!(w.reason().await, DisconnectReason::ServerClosed);
}

// ---- 3. large request bodies ---------------------------------------------

const BIG: usize = 8 * 1024 * 1024;

/// Byte `i` of the upload: no short period, so a lost, repeated or
/// reordered block shows.
fn pattern(i: usize) -> u8 {
    ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Uploads [`BIG`] bytes (chunked or with Content-Length) while the
/// application reads them slowly into a small buffer, so reading from the
/// socket must pause and resume many times; the bytes must arrive intact.
async fn big_upload(chunked: bool) {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..BIG).map(pattern).collect();
        if chunked {
            c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let sizes = [1usize, 4093, 65_536, 100_003, 7, 30_000];
            let (mut at, mut i) = (0, 0);
            while at < BIG {
                let n = sizes[i % sizes.len()].min(BIG - at);
                let mut chunk = format!("{n:x}\r\n").into_bytes();
                chunk.extend_from_slice(&data[at..at + n]);
                chunk.extend_from_slice(b"\r\n");
                c.send(&chunk).await;
                at += n;
                i += 1;
            }
            c.send(b"0\r\n\r\n").await;
        } else {
            c.send(
                format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {BIG}\r\n\r\n").as_bytes(),
            )
            .await;
            for part in data.chunks(64 * 1024) {
                c.send(part).await;
            }
        }
        c
    });
    let req = recv(&s.queue).await;
    let mut buf = [0u8; 1000];
    let (mut got, mut first_bad) = (0usize, None);
    loop {
        let n = tokio::time::timeout(LIMIT, s.queue.receive_body(req.id(), &mut buf))
            .await
            .expect("body keeps coming")
            .unwrap();
        if n == 0 {
            break;
        }
        if first_bad.is_none() {
            first_bad = (0..n)
                .find(|&k| buf[k] != pattern(got + k))
                .map(|k| got + k);
        }
        // A slow consumer: a pause every 256 KiB lets the pipe and the
        // socket buffers fill, so reading stops and must resume.
        if (got + n) / (256 * 1024) != got / (256 * 1024) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        got += n;
    }
    assert_eq!(got, BIG, "every byte arrived");
    assert_eq!(first_bad, None, "bytes intact and in order");
    s.queue
        .send_response(
            req.id(),
            Response::new(200).body(got.to_string()),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    let mut c = tokio::time::timeout(LIMIT, writer).await.unwrap().unwrap();
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.body), (200, BIG.to_string().into_bytes()));
    assert!(s.session.counters().bytes_received >= BIG as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_content_length_upload_read_slowly_multi_thread() {
    big_upload(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_chunked_upload_read_slowly_multi_thread() {
    big_upload(true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn big_content_length_upload_read_slowly_current_thread() {
    big_upload(false).await;
}

#[tokio::test(flavor = "current_thread")]
async fn big_chunked_upload_read_slowly_current_thread() {
    big_upload(true).await;
}

// ---- 4. limit statuses ---------------------------------------------------

fn small_limits() -> Properties {
    Properties {
        limits: Limits {
            max_body_bytes: 1024,
            max_url_segments: 4,
            max_url_segment_len: 8,
            ..Limits::default()
        },
        ..Properties::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_body_length_segment_count_and_segment_length() {
    let s = Server::start(small_limits());
    let a9 = "%61".repeat(9);
    let refused: Vec<(String, u16, &str)> = vec![
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n".into(),
            413,
            "body too large",
        ),
        (
            "GET /a/b/c/d/e HTTP/1.1\r\nHost: a\r\n\r\n".into(),
            400,
            "too many URL segments",
        ),
        (
            // The count is checked on the cooked path too.
            "GET /a/b/c/d/%65 HTTP/1.1\r\nHost: a\r\n\r\n".into(),
            400,
            "too many URL segments",
        ),
        (
            "GET /123456789 HTTP/1.1\r\nHost: a\r\n\r\n".into(),
            400,
            "URL segment too long",
        ),
        (
            format!("GET /{a9} HTTP/1.1\r\nHost: a\r\n\r\n"),
            400,
            "URL segment too long",
        ),
    ];
    for (request, status, reason) in &refused {
        let mut c = s.connect().await;
        c.send(request.as_bytes()).await;
        let r = c.response().await.expect("an error response");
        assert_eq!(r.status, *status, "for {request:?}");
        assert_eq!(
            String::from_utf8_lossy(&r.body).trim_end(),
            *reason,
            "for {request:?}"
        );
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed().await, "closed after {request:?}");
    }
    assert!(s.queue.is_empty(), "the application saw none of them");
    assert_eq!(s.session.counters().protocol_errors, refused.len() as u64);

    // Right at each limit is accepted. The segment length is that of the
    // decoded segment (24 bytes on the wire, 8 decoded).
    let a8 = "%61".repeat(8);
    let body = "b".repeat(1024);
    let accepted = [
        format!("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n{body}"),
        "GET /a/b/c/d HTTP/1.1\r\nHost: a\r\n\r\n".into(),
        "GET /12345678 HTTP/1.1\r\nHost: a\r\n\r\n".into(),
        format!("GET /{a8} HTTP/1.1\r\nHost: a\r\n\r\n"),
    ];
    let mut c = s.connect().await;
    for request in &accepted {
        c.send(request.as_bytes()).await;
        let req = recv(&s.queue).await;
        let mut n = 0;
        let mut buf = [0u8; 512];
        loop {
            let k = s.queue.receive_body(req.id(), &mut buf).await.unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        assert_eq!(n, if request.starts_with("POST") { 1024 } else { 0 });
        answer(&s.queue, &req, 200, "ok").await;
        assert_eq!(c.response().await.unwrap().status, 200, "for {request:?}");
    }
    assert_eq!(s.session.counters().protocol_errors, refused.len() as u64);
}

/// A chunked POST of two 800-byte chunks: past `small_limits`' 1024 body bytes.
fn oversized_chunked_post() -> Vec<u8> {
    let chunk = "c".repeat(800);
    format!(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    )
    .into_bytes()
}

/// A chunked body that grows past max_body_bytes: the application reading
/// it gets the typed error after the bytes within the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_past_the_limit_is_a_typed_error_for_the_application() {
    let s = Server::start(small_limits());
    let mut c = s.connect().await;
    c.send(&oversized_chunked_post()).await;
    let req = recv(&s.queue).await;
    let mut buf = [0u8; 256];
    let mut got = 0;
    let err = loop {
        match s.queue.receive_body(req.id(), &mut buf).await {
            Ok(0) => panic!("the body ended without an error after {got} bytes"),
            Ok(n) => got += n,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, ServerError::Body(httpq_proto::Error::BodyTooLarge)),
        "{err:?}"
    );
    assert!(got <= 1024, "no more than the limit was handed out: {got}");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_past_the_limit_gets_413_and_close() {
    let s = Server::start(small_limits());
    let mut c = s.connect().await;
    c.send(&oversized_chunked_post()).await;
    let req = recv(&s.queue).await;
    let mut buf = [0u8; 256];
    while s
        .queue
        .receive_body(req.id(), &mut buf)
        .await
        .is_ok_and(|n| n > 0)
    {}
    // The application holds the request; the server answers the protocol
    // error itself, as it does for a Content-Length over the limit.
    let r = c.response().await.expect("a 413 from the server");
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed().await);
}

/// After a chunked body overflows (or is otherwise malformed) the framing
/// is lost, so a response the application already began must be the last
/// thing on the connection, and a later answer attempt is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_under_way_at_a_body_error_is_the_last_on_the_connection() {
    let s = Server::start(small_limits());
    let mut c = s.connect().await;
    let chunk = "c".repeat(800);
    c.send(
        format!(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n{chunk}\r\n"
        )
        .as_bytes(),
    )
    .await;
    let req = recv(&s.queue).await;
    s.queue
        .send_response(req.id(), Response::new(200), SendFlags::MORE_DATA)
        .await
        .unwrap();
    // Only now does the body grow past the limit.
    c.send(format!("320\r\n{chunk}\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .await;
    let mut buf = [0u8; 256];
    let err = loop {
        match s.queue.receive_body(req.id(), &mut buf).await {
            Ok(n) => assert!(n > 0, "the body cannot end normally"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, ServerError::Body(httpq_proto::Error::BodyTooLarge)),
        "{err:?}"
    );
    s.queue
        .send_body(req.id(), Bytes::from_static(b"partial"), SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response().await.expect("the application's answer");
    assert_eq!((r.status, &r.body[..]), (200, &b"partial"[..]));
    assert!(c.closed().await, "closed after the answer");
    // The request after the broken body was never read as one.
    assert!(s.queue.try_receive().unwrap().is_none());
    assert_eq!(s.session.counters().protocol_errors, 1);
}

// ---- 5. queues -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_default_limit_is_1000() {
    let s = Server::start(Properties {
        max_pipelined: 2000,
        ..Properties::default()
    });
    let mut a = s.connect().await;
    let burst: Vec<u8> = (0..1000).flat_map(|i| get(&format!("/{i}"))).collect();
    a.send(&burst).await;
    // No event says "queued": watch the length, bounded.
    eventually("1000 requests queued", || s.queue.len() == 1000).await;
    let mut b = s.connect().await;
    b.send(&get("/1001st")).await;
    let r = b.response().await.expect("a refusal");
    assert_eq!(r.status, 503);
    assert!(b.closed().await);
    assert_eq!(s.queue.len(), 1000);
    assert_eq!(s.session.counters().queue_rejections, 1);
    for i in 0..1000 {
        let req = s.queue.try_receive().unwrap().expect("queued");
        assert_eq!(req.url().path, format!("/{i}"));
    }
    assert!(s.queue.try_receive().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_close_fails_receives_and_completes_waits() {
    let (s, _c, req) = held(Properties::default()).await;
    let conn = req.connection_id();
    // A second request waits in the queue, unreceived.
    let mut waiting = s.connect().await;
    waiting.send(&get("/waiting")).await;
    eventually("the second request queued", || s.queue.len() == 1).await;
    assert_eq!(s.session.counters().connections_open, 2);

    let q = s.queue.clone();
    let mut wait = Box::pin(async move { q.wait_for_disconnect(conn).await });
    assert!(poll_once(&mut wait).await.is_pending());
    let q = s.queue.clone();
    let blocking = tokio::task::spawn_blocking(move || q.wait_for_disconnect_blocking(conn));
    let cq = CompletionQueue::new();
    s.queue.wait_for_disconnect_posted(conn, &cq, 42).unwrap();
    let empty = RequestQueue::new("other");
    // Receives that wait (on an empty queue: one that holds a request
    // would hand it over instead).
    let e = empty.clone();
    let thread_receive = std::thread::spawn(move || e.receive_blocking().map(|_| ()));
    let e = empty.clone();
    let mut receive = Box::pin(async move { e.receive().await.map(|_| ()) });
    assert!(poll_once(&mut receive).await.is_pending());

    // Closing a queue (here, one clone of it) ends every use of it.
    s.queue.clone().close();
    empty.close();
    let r = tokio::time::timeout(LIMIT, wait).await.unwrap();
    assert!(matches!(r, Err(ServerError::Aborted)), "{r:?}");
    let r = tokio::time::timeout(LIMIT, blocking)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(ServerError::Aborted)), "{r:?}");
    let posted = tokio::time::timeout(LIMIT, cq.next()).await.unwrap();
    assert_eq!(
        (posted.key, posted.connection_id, posted.reason),
        (42, conn, DisconnectReason::QueueShutdown)
    );
    let r = tokio::time::timeout(LIMIT, receive).await.unwrap();
    assert!(matches!(r, Err(ServerError::Aborted)), "{r:?}");
    let r = thread_receive.join().unwrap();
    assert!(matches!(r, Err(ServerError::Aborted)), "{r:?}");
    assert!(matches!(s.queue.try_receive(), Err(ServerError::Aborted)));
    // The request that waited in the queue is gone with its connection.
    assert!(waiting.response().await.is_none(), "closed, unanswered");
    assert!(s.queue.is_empty());
    // New requests are refused.
    let mut late = s.connect().await;
    late.send(&get("/late")).await;
    assert_eq!(late.response().await.unwrap().status, 503);
    assert!(late.closed().await);
}

/// The blocking twins from plain threads, with a session made outside any
/// runtime (so on its own), and a blocking std client.
#[test]
fn blocking_twins_on_plain_threads() {
    use std::io::{Read, Write};
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("blocking");
    let group = session.create_url_group();
    group.bind(&queue);
    let port = free_port();
    group
        .add_url(&format!("http://127.0.0.1:{port}/"), 9)
        .unwrap();
    let app = std::thread::spawn({
        let q = queue.clone();
        move || {
            let req = q.receive_blocking().unwrap();
            assert_eq!(req.url_context(), 9);
            let mut body = Vec::new();
            let mut buf = [0u8; 7];
            loop {
                let n = q.receive_body_blocking(req.id(), &mut buf).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            let len = body.len().to_string();
            q.send_response_blocking(
                req.id(),
                Response::new(200).header("x-len", &len),
                SendFlags::MORE_DATA,
            )
            .unwrap();
            for piece in body.chunks(10_000) {
                q.send_body_blocking(
                    req.id(),
                    Bytes::copy_from_slice(piece),
                    SendFlags::MORE_DATA,
                )
                .unwrap();
            }
            q.send_body_blocking(req.id(), Bytes::new(), SendFlags::DISCONNECT)
                .unwrap();
            req.connection_id()
        }
    });
    let body: Vec<u8> = (0..100_000).map(pattern).collect();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c.write_all(
        format!(
            "PUT /b HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    // receive_body_blocking's first call sends the 100.
    let mut line = [0u8; 25];
    c.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(&body).unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let wire = responses_in(&all);
    assert_eq!(wire.len(), 1);
    let r = &wire[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-len"], "100000");
    assert_eq!(r.headers["transfer-encoding"], "chunked");
    // DISCONNECT came after the head went out, so the head cannot say so;
    // the close itself is what EOF (read_to_end) and the reason show.
    assert!(r.body == body, "the body came back intact");
    let conn = app.join().unwrap();
    assert_eq!(
        queue.wait_for_disconnect_blocking(conn).unwrap(),
        DisconnectReason::ServerClosed
    );
}

// ---- 6. graceful shutdown and set_timeouts -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_the_in_flight_request_finish_and_refuses_new_ones() {
    let (s, mut c, req) = held(Properties::default()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    let started = Instant::now();
    let mut shutdown = Box::pin(s.session.shutdown(Duration::from_secs(8)));
    assert!(
        poll_once(&mut shutdown).await.is_pending(),
        "a request is in flight"
    );
    // Listening stopped when shutdown began.
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", s.port)).await;
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    // The held request can still be answered, and is delivered.
    answer(&s.queue, &req, 200, "in time").await;
    assert_eq!(c.response().await.unwrap().body, b"in time");
    tokio::time::timeout(LIMIT, shutdown)
        .await
        .expect("shutdown ends once nothing is in flight");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "did not wait out the grace: {:?}",
        started.elapsed()
    );
    assert_eq!(w.reason().await, DisconnectReason::ServerShutdown);
    assert!(c.closed().await);
}

/// Shutdown waits on an event, not a poll: while a request is in flight
/// nothing wakes it (a 20 ms poll would, a dozen times here), and the
/// answer going out does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sleeps_until_the_last_answer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Counting(Waker, AtomicUsize);
    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.wake_by_ref();
        }
    }
    let (s, mut c, req) = held(Properties::default()).await;
    let mut shutdown = Box::pin(s.session.shutdown(Duration::from_secs(30)));
    let counting = std::future::poll_fn(|cx| {
        Poll::Ready(Arc::new(Counting(cx.waker().clone(), AtomicUsize::new(0))))
    })
    .await;
    let waker = Waker::from(counting.clone());
    fn poll<F: std::future::Future>(f: std::pin::Pin<&mut F>, w: &Waker) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(w))
    }
    assert!(
        poll(shutdown.as_mut(), &waker).is_pending(),
        "a request is in flight"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        counting.1.load(Ordering::SeqCst),
        0,
        "nothing woke it meanwhile"
    );
    answer(&s.queue, &req, 200, "done").await;
    assert_eq!(c.response().await.unwrap().body, b"done");
    let deadline = Instant::now() + LIMIT;
    while counting.1.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the answer woke the shutdown");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut ready = false;
    for _ in 0..1000 {
        if poll(shutdown.as_mut(), &waker).is_ready() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(ready, "shutdown ends once nothing is in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_held_requests_when_the_grace_ends() {
    let (s, mut c, req) = held(Properties::default()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    let started = Instant::now();
    tokio::time::timeout(LIMIT, s.session.shutdown(Duration::from_millis(300)))
        .await
        .expect("shutdown ends after the grace");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(w.reason().await, DisconnectReason::ServerShutdown);
    assert!(c.response().await.is_none(), "closed without an answer");
    let late = s
        .queue
        .send_response(req.id(), Response::new(200), SendFlags::NONE)
        .await;
    assert!(
        matches!(late, Err(ServerError::ConnectionInvalid)),
        "{late:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_timeouts_applies_to_connections_accepted_afterwards() {
    let s = Server::start(Properties::default());
    // Accepted (it has delivered a request) before the change.
    let mut old = s.connect().await;
    old.send(&get("/old")).await;
    let r_old = recv(&s.queue).await;
    answer(&s.queue, &r_old, 200, "old").await;
    old.response().await.unwrap();

    s.session.set_timeouts(Timeouts {
        idle_connection: Duration::from_millis(300),
        header_wait: Duration::ZERO,
        ..Timeouts::default()
    });
    let t = s.session.properties().timeouts;
    assert_eq!(t.idle_connection, Duration::from_millis(300));
    assert_eq!(t.header_wait, Duration::from_secs(120), "zero: the default");

    let mut new = s.connect().await;
    new.send(&get("/new")).await;
    let r_new = recv(&s.queue).await;
    let w = Waiters::arm(&s.queue, r_new.connection_id());
    let started = Instant::now();
    answer(&s.queue, &r_new, 200, "new").await;
    new.response().await.unwrap();
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::IdleConnection)
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(new.closed().await);
    assert!(
        s.queue.is_connected(r_old.connection_id()),
        "the earlier connection keeps the timeouts it started with"
    );
}

// ---- 7. write failure ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_then_resets_fails_the_write() {
    let (s, mut c, req) = held(Properties::default()).await;
    let conn = req.connection_id();
    let w = Waiters::arm(&s.queue, conn);
    let q = s.queue.clone();
    let id = req.id();
    // Far more than any socket buffers hold: the response cannot be done
    // before the client resets.
    let sender = tokio::spawn(async move {
        q.send_response(id, Response::new(200), SendFlags::MORE_DATA)
            .await?;
        let block = Bytes::from(vec![b'x'; 1024 * 1024]);
        for _ in 0..1024 {
            q.send_body(id, block.clone(), SendFlags::MORE_DATA).await?;
        }
        q.send_body(id, Bytes::new(), SendFlags::NONE).await
    });
    // The response is under way; then the client stops reading and resets.
    let mut first = vec![0u8; 64 * 1024];
    tokio::time::timeout(LIMIT, c.stream.read_exact(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
    c.reset();
    // With the socket full the connection task is blocked writing, and the
    // RST fails that write (WriteFailed: every run so far). Were it between
    // writes, watching the socket, it would read the RST instead (Reset).
    let reason = w.reason().await;
    assert!(
        matches!(
            reason,
            DisconnectReason::WriteFailed | DisconnectReason::Reset
        ),
        "{reason:?}"
    );
    let sent = tokio::time::timeout(LIMIT, sender).await.unwrap().unwrap();
    assert!(
        matches!(sent, Err(ServerError::ConnectionInvalid)),
        "{sent:?}"
    );
    let n = s.session.counters();
    assert_eq!((n.disconnects, n.requests_abandoned), (1, 1));
    assert!(!s.queue.is_connected(conn));
}

// ---- 8. dropping a wait_for_disconnect future ----------------------------
// Not tested here: nothing public observes the registration (no waiter
// count, no counter); disconnect.rs already drops 200 futures and checks a
// later wait still completes.

// ---- 9. the Server header ------------------------------------------------

/// Two sessions on one thread (so one per-thread header cache), one with a
/// custom Server value and one with none, answered alternately: on the
/// application's 200 (the cached status line), on another status, and on
/// a response the server makes itself.
#[tokio::test(flavor = "current_thread")]
async fn server_header_custom_value_and_none() {
    let custom = Server::start(Properties {
        server_header: Some("coverage-test/9.9".into()),
        ..Properties::default()
    });
    let none = Server::start(Properties {
        server_header: None,
        ..Properties::default()
    });
    for _round in 0..2 {
        for (s, want) in [(&custom, Some("coverage-test/9.9")), (&none, None)] {
            let mut c = s.connect().await;
            for status in [200, 404] {
                c.send(&get("/")).await;
                let req = recv(&s.queue).await;
                let resp = Response::new(status).header("server", "the-app");
                s.queue
                    .send_response(req.id(), resp, SendFlags::NONE)
                    .await
                    .unwrap();
                let r = c.response().await.unwrap();
                assert_eq!(r.status, status);
                let got: Vec<&str> = r
                    .headers
                    .get_all("server")
                    .iter()
                    .map(|v| v.to_str().unwrap())
                    .collect();
                assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{status}");
                assert!(r.header("date").is_some());
            }
            // The server's own answer (no Host: 400).
            c.send(b"GET / HTTP/1.1\r\n\r\n").await;
            let r = c.response().await.unwrap();
            assert_eq!(r.status, 400);
            assert_eq!(r.header("server"), want);
        }
    }
}

// ---- 10. IPv6 ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_prefix_serves_over_ipv6() {
    let port = match std::net::TcpListener::bind("[::1]:0") {
        Ok(l) => l.local_addr().unwrap().port(),
        Err(e) => {
            eprintln!("skipped: cannot bind [::1]: {e}");
            return;
        }
    };
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("v6");
    let group = session.create_url_group();
    group.bind(&queue);
    group.add_url(&format!("http://[::1]:{port}/"), 6).unwrap();
    let addr: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let mut c = Client::connect_to(addr).await;
    c.send(format!("GET /v6?x HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n").as_bytes())
        .await;
    let req = recv(&queue).await;
    assert_eq!(req.url_context(), 6);
    assert_eq!(req.local_addr(), addr);
    assert_eq!(req.remote_addr(), c.stream.local_addr().unwrap());
    assert!(req.remote_addr().is_ipv6());
    assert_eq!((req.url().host.as_str(), req.url().port), ("[::1]", port));
    assert_eq!(req.url().full(), format!("http://[::1]:{port}/v6?x"));
    queue
        .send_response(req.id(), Response::new(200).body("six"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"six");
    // Bound to [::1] alone: nothing listens on the IPv4 loopback.
    let v4 = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        matches!(&v4, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{v4:?}"
    );
}

#[test]
fn a_server_header_that_would_split_responses_is_refused() {
    for bad in ["httpq\r\nX-Injected: 1", "a\nb", "", "nul\0"] {
        let r = ServerSession::new(Properties {
            server_header: Some(bad.into()),
            ..Properties::default()
        });
        assert!(
            matches!(r, Err(ServerError::InvalidProperty(_))),
            "{bad:?}: {r:?}"
        );
    }
    assert!(ServerSession::new(Properties {
        server_header: Some("fine/1.0 (linux)".into()),
        ..Properties::default()
    })
    .is_ok());
}
