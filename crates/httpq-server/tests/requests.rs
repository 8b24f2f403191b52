//! Requests and responses over real sockets: ids, keep-alive, pipelining
//! order, framing, bodies both ways, limits and protocol errors.

mod common;

use bytes::Bytes;
use common::{get, Server};
use httpq_server::{Properties, Response, SendFlags, ServerError};

fn ok(body: &'static str) -> Response {
    Response::new(200).body(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_stable_on_keep_alive_and_unique_across_connections() {
    let s = Server::start(Properties::default());
    let mut clients = [s.connect().await, s.connect().await];
    let mut seen = Vec::new();
    for i in [0, 1, 0, 1] {
        let client = &mut clients[i];
        client.send(&get("/x")).await;
        let req = s.queue.receive().await.unwrap();
        seen.push((req.connection_id(), req.id()));
        s.queue
            .send_response(req.id(), ok("hi"), SendFlags::NONE)
            .await
            .unwrap();
        let r = client.response().await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
    }
    assert_eq!(seen[0].0, seen[2].0, "same connection id on keep-alive");
    assert_eq!(seen[1].0, seen[3].0);
    assert_ne!(seen[0].0, seen[1].0, "different connections, different ids");
    let mut ids: Vec<u64> = seen.iter().map(|x| x.1).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "request ids unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_answered_in_order_even_when_app_answers_backwards() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    let mut burst = Vec::new();
    for i in 0..5 {
        burst.extend_from_slice(&get(&format!("/{i}")));
    }
    c.send(&burst).await;
    let mut reqs = Vec::new();
    for _ in 0..5 {
        reqs.push(s.queue.receive().await.unwrap());
    }
    for req in reqs.iter().rev() {
        let body = req.url().path.clone();
        s.queue
            .send_response(req.id(), Response::new(200).body(body), SendFlags::NONE)
            .await
            .unwrap();
    }
    for i in 0..5 {
        let r = c.response().await.unwrap();
        assert_eq!(r.body, format!("/{i}").into_bytes());
    }
}

/// Answers to a pipelined batch are written together when the last is
/// answered; an answer whose successors the application still holds must
/// go out anyway, on either kind of runtime.
async fn first_answer_goes_out_while_the_rest_are_held() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    let mut burst = Vec::new();
    for i in 0..3 {
        burst.extend_from_slice(&get(&format!("/{i}")));
    }
    c.send(&burst).await;
    let mut reqs = Vec::new();
    for _ in 0..3 {
        reqs.push(s.queue.receive().await.unwrap());
    }
    s.queue
        .send_response(reqs[0].id(), ok("first"), SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response().await.expect("the first answer, with two held");
    assert_eq!(r.body, b"first");
    for req in &reqs[1..] {
        s.queue
            .send_response(req.id(), ok("later"), SendFlags::NONE)
            .await
            .unwrap();
    }
    for _ in 1..3 {
        assert_eq!(c.response().await.unwrap().body, b"later");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_answer_goes_out_while_the_rest_are_held_multi_thread() {
    first_answer_goes_out_while_the_rest_are_held().await;
}

#[tokio::test(flavor = "current_thread")]
async fn first_answer_goes_out_while_the_rest_are_held_current_thread() {
    first_answer_goes_out_while_the_rest_are_held().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_and_unknown_ids_are_typed_errors() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(&get("/")).await;
    let req = s.queue.receive().await.unwrap();
    s.queue
        .send_response(req.id(), ok("a"), SendFlags::NONE)
        .await
        .unwrap();
    let again = s
        .queue
        .send_response(req.id(), ok("b"), SendFlags::NONE)
        .await;
    assert!(
        matches!(again, Err(ServerError::ConnectionInvalid)),
        "{again:?}"
    );
    let unknown = s
        .queue
        .send_response(u64::MAX - 7, ok("c"), SendFlags::NONE)
        .await;
    assert!(matches!(unknown, Err(ServerError::ConnectionInvalid)));
    let body_first = s.queue.send_body(req.id(), "x", SendFlags::NONE).await;
    assert!(body_first.is_err());
    assert_eq!(c.response().await.unwrap().body, b"a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_content_length_chunked_and_http10_close() {
    let s = Server::start(Properties::default());
    // 1.1 + MORE_DATA: chunked.
    let mut c = s.connect().await;
    c.send(&get("/")).await;
    let req = s.queue.receive().await.unwrap();
    s.queue
        .send_response(req.id(), ok("ab"), SendFlags::MORE_DATA)
        .await
        .unwrap();
    s.queue
        .send_body(req.id(), "cd", SendFlags::MORE_DATA)
        .await
        .unwrap();
    s.queue
        .send_body(req.id(), Bytes::new(), SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response().await.unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, b"abcd");
    assert!(r.header("date").is_some(), "server always writes Date");
    assert!(r.header("server").is_some());
    // Plain: Content-Length computed.
    c.send(&get("/")).await;
    let req = s.queue.receive().await.unwrap();
    s.queue
        .send_response(req.id(), ok("hello"), SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response().await.unwrap();
    assert_eq!(r.header("content-length"), Some("5"));
    // An app-set Content-Length is kept and enforced.
    c.send(&get("/")).await;
    let req = s.queue.receive().await.unwrap();
    let resp = Response::new(200).header("content-length", "4").body("ab");
    s.queue
        .send_response(req.id(), resp, SendFlags::MORE_DATA)
        .await
        .unwrap();
    s.queue
        .send_body(req.id(), "cd", SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response().await.unwrap();
    assert_eq!(
        (r.header("content-length"), r.body.as_slice()),
        (Some("4"), &b"abcd"[..])
    );
    // HTTP/1.0 + MORE_DATA: close-delimited.
    let mut c10 = s.connect().await;
    c10.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let req = s.queue.receive().await.unwrap();
    s.queue
        .send_response(req.id(), ok("x"), SendFlags::MORE_DATA)
        .await
        .unwrap();
    s.queue
        .send_body(req.id(), "yz", SendFlags::NONE)
        .await
        .unwrap();
    let r = c10.response().await.unwrap();
    assert_eq!(r.body, b"xyz");
    assert!(r.header("content-length").is_none() && r.header("transfer-encoding").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_get_length_but_no_body() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let req = s.queue.receive().await.unwrap();
    s.queue
        .send_response(req.id(), ok("hello"), SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response_to(&http::Method::HEAD).await.unwrap();
    assert_eq!(r.header("content-length"), Some("5"));
    assert!(r.body.is_empty());
    // The connection is still usable: nothing stray was written.
    c.send(&get("/")).await;
    let req = s.queue.receive().await.unwrap();
    s.queue
        .send_response(req.id(), ok("next"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"next");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_content_length_and_chunked_into_caller_buffer() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
        .await;
    let req = s.queue.receive().await.unwrap();
    assert!(req.has_body());
    let mut buf = [0u8; 4];
    let mut got = Vec::new();
    loop {
        let n = s.queue.receive_body(req.id(), &mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"hello world");
    s.queue
        .send_response(req.id(), ok("ok"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().status, 200);

    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
        .await;
    let req = s.queue.receive().await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = s.queue.receive_body_chunk(req.id()).await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"hello world");
    s.queue
        .send_response(req.id(), ok("ok"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_sent_only_when_body_is_first_read() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(b"PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let req = s.queue.receive().await.unwrap();
    // Nothing arrives until the application reads.
    let mut peek = [0u8; 64];
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(150),
        c.stream.peek(&mut peek),
    )
    .await;
    assert!(early.is_err(), "no 100 Continue before the body is read");
    let q = s.queue.clone();
    let id = req.id();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 8];
        q.receive_body(id, &mut buf)
            .await
            .map(|n| buf[..n].to_vec())
    });
    let mut line = vec![0u8; 25];
    tokio::io::AsyncReadExt::read_exact(&mut c.stream, &mut line)
        .await
        .unwrap();
    assert_eq!(line, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"abc").await;
    assert_eq!(reader.await.unwrap().unwrap(), b"abc");
    s.queue
        .send_response(id, ok("done"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_body_is_drained_and_the_next_request_served() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    let mut bytes = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789".to_vec();
    bytes.extend_from_slice(&get("/second"));
    c.send(&bytes).await;
    let req = s.queue.receive().await.unwrap();
    s.queue
        .send_response(req.id(), ok("first"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"first");
    let req2 = s.queue.receive().await.unwrap();
    assert_eq!(req2.url().path, "/second");
    assert_eq!(req2.connection_id(), req.connection_id());
    s.queue
        .send_response(req2.id(), ok("second"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_body_streams_large_without_loss() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(&get("/big")).await;
    let req = s.queue.receive().await.unwrap();
    let q = s.queue.clone();
    let id = req.id();
    let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let chunk = Bytes::from(chunk);
    let sender = tokio::spawn({
        let chunk = chunk.clone();
        async move {
            q.send_response(id, Response::new(200), SendFlags::MORE_DATA)
                .await?;
            for _ in 0..64 {
                q.send_body(id, chunk.clone(), SendFlags::MORE_DATA).await?;
            }
            q.send_body(id, Bytes::new(), SendFlags::NONE).await
        }
    });
    let r = c.response().await.unwrap();
    sender.await.unwrap().unwrap();
    assert_eq!(r.body.len(), 64 * 64 * 1024);
    assert!(r.body.chunks(chunk.len()).all(|c| c == &chunk[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_get_their_status_then_close() {
    let s = Server::start(Properties::default());
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec(),
            400,
        ),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            501,
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(17 * 1024)).into_bytes(),
            414,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
                "a".repeat(17 * 1024)
            )
            .into_bytes(),
            431,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
                "X-A: 1\r\n".repeat(101)
            )
            .into_bytes(),
            431,
        ),
        (
            format!("GET /{}/ HTTP/1.1\r\nHost: a\r\n\r\n", "s".repeat(300)).into_bytes(),
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n".to_vec(),
            417,
        ),
    ];
    for (bytes, status) in cases {
        let mut c = s.connect().await;
        c.send(&bytes).await;
        let r = c.response().await.expect("an error response");
        assert_eq!(
            r.status,
            status,
            "for {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
        );
        assert!(!r.body.is_empty(), "a short reason body");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed().await, "connection closes after a protocol error");
    }
    assert!(
        s.queue.is_empty(),
        "the application never sees a malformed request"
    );
    assert!(s.session.counters().protocol_errors >= 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_bytes_after_a_bad_request_never_become_a_request() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 400);
    assert!(c.closed().await);
    assert!(s.queue.try_receive().unwrap().is_none());
}

/// Review regression: a pipeline that was full must be parsed on as soon
/// as answers make room, however the answers were written.
async fn a_full_pipeline_is_parsed_on_when_answers_make_room() {
    let s = Server::start(Properties {
        max_pipelined: 2,
        ..Properties::default()
    });
    let mut c = s.connect().await;
    let mut burst = Vec::new();
    for i in 0..5 {
        burst.extend_from_slice(&get(&format!("/{i}")));
    }
    c.send(&burst).await;
    for i in 0..5 {
        let req = tokio::time::timeout(common::LIMIT, s.queue.receive())
            .await
            .expect("parsed on after room was made")
            .unwrap();
        assert_eq!(req.url().path, format!("/{i}"));
        s.queue
            .send_response(req.id(), ok("x"), SendFlags::NONE)
            .await
            .unwrap();
    }
    for _ in 0..5 {
        assert_eq!(c.response().await.unwrap().body, b"x");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pipeline_is_parsed_on_multi_thread() {
    a_full_pipeline_is_parsed_on_when_answers_make_room().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_pipeline_is_parsed_on_current_thread() {
    a_full_pipeline_is_parsed_on_when_answers_make_room().await;
}

/// The next item of a stream.
async fn next<S: futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_as_a_stream_of_bytes() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        .await;
    let req = s.queue.receive().await.unwrap();
    let mut body = s.queue.body_stream(req.id());
    assert_eq!(next(&mut body).await.unwrap().unwrap(), "hello");
    // The rest arrives while the stream waits.
    c.send(b"6\r\n world\r\n0\r\n\r\n").await;
    assert_eq!(next(&mut body).await.unwrap().unwrap(), " world");
    assert!(next(&mut body).await.is_none());
    assert!(next(&mut body).await.is_none(), "stays ended");
    s.queue
        .send_response(req.id(), Response::new(200), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().status, 200);

    // A malformed chunk ends the stream with the typed error.
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        .await;
    let req = s.queue.receive().await.unwrap();
    let mut body = s.queue.body_stream(req.id());
    let e = next(&mut body).await.unwrap().unwrap_err();
    assert!(
        matches!(e, ServerError::Body(httpq_proto::Error::InvalidChunkSize)),
        "{e:?}"
    );
    assert!(next(&mut body).await.is_none());
    // And an unknown request id is an error item, then the end.
    let mut body = s.queue.body_stream(req.id() + 1000);
    assert!(next(&mut body).await.unwrap().is_err());
    assert!(next(&mut body).await.is_none());
}
