//! HTTP/2 mapped onto the request-queue model: streams are requests with
//! their own ids on one connection id, bodies and files cross as DATA
//! under per-stream flow control, a stream's reset is its request's
//! disconnect, and a connection's end abandons every stream in flight.
//! Driven by the `h2` crate's client over h2c (prior knowledge).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::h2raw::{frame, open_then};
use common::{counters_when, Server, LIMIT};
use httpq_proto::Version;
use httpq_server::{DisconnectReason, Properties, Request, Response, SendFlags, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Sender = h2::client::SendRequest<Bytes>;

/// An h2c client connection to `port`, its connection driven by a task.
async fn h2c(port: u16, builder: h2::client::Builder) -> (Sender, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (send, conn) = builder.handshake(tcp).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, task)
}

fn get(port: u16, path: &str) -> http::Request<()> {
    http::Request::get(format!("http://127.0.0.1:{port}{path}"))
        .body(())
        .unwrap()
}

/// Sends a bodiless request; returns the response future.
fn start_get(send: &mut Sender, port: u16, path: &str) -> h2::client::ResponseFuture {
    send.send_request(get(port, path), true).unwrap().0
}

/// The whole body of a response, releasing the window as it reads.
async fn body_of(resp: http::Response<h2::RecvStream>) -> (u16, Vec<u8>) {
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(piece) = body.data().await {
        let piece = piece.unwrap();
        let _ = body.flow_control().release_capacity(piece.len());
        out.extend_from_slice(&piece);
    }
    (status, out)
}

/// Answers the next request with `resp`; what the client got for `p`.
async fn answered(s: &Server, p: h2::client::ResponseFuture, resp: Response) -> (u16, Vec<u8>) {
    let r = receive(s).await;
    s.queue
        .send_response(r.id(), resp, SendFlags::NONE)
        .await
        .unwrap();
    body_of(tokio::time::timeout(LIMIT, p).await.unwrap().unwrap()).await
}

async fn receive(s: &Server) -> Request {
    tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .expect("a request in time")
        .unwrap()
}

#[tokio::test]
async fn streams_are_requests_with_their_own_ids_on_one_connection() {
    let s = Server::start(Properties::default());
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let pending: Vec<_> = (0..3)
        .map(|i| start_get(&mut send, s.port, &format!("/r/{i}?q=%41")))
        .collect();
    let mut reqs = Vec::new();
    for _ in 0..3 {
        reqs.push(receive(&s).await);
    }
    let conn = reqs[0].connection_id();
    let mut ids: Vec<u64> = reqs.iter().map(|r| r.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each stream has its own request id");
    for r in &reqs {
        assert_eq!(
            r.connection_id(),
            conn,
            "one TCP connection, one connection id"
        );
        assert_eq!(r.version(), Version::Http2);
        assert!(r.path().starts_with("/r/"));
        assert_eq!(r.url().query, "?q=%41");
        assert_eq!(
            r.header("host"),
            Some(format!("127.0.0.1:{}", s.port).as_bytes())
        );
        assert!(!r.has_body());
        let answer = Response::new(200).body(format!("answer to {}", r.path()));
        s.queue
            .send_response(r.id(), answer, SendFlags::NONE)
            .await
            .unwrap();
    }
    for (i, p) in pending.into_iter().enumerate() {
        let resp = tokio::time::timeout(LIMIT, p).await.unwrap().unwrap();
        assert_eq!(
            resp.headers().get("content-length").unwrap(),
            &format!("{}", "answer to /r/0".len())
        );
        assert!(resp.headers().contains_key("date"));
        let (status, body) = body_of(resp).await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("answer to /r/{i}").into_bytes());
    }
    let n = counters_when(&s.session, |n| n.responses_sent == 3).await;
    assert_eq!((n.requests_received, n.h2_streams), (3, 3));
    // Answered ids are spent.
    let again = s
        .queue
        .send_response(reqs[0].id(), Response::new(200), SendFlags::NONE)
        .await;
    assert!(again.is_err());
}

#[tokio::test]
async fn a_mebibyte_post_is_read_and_echoed_byte_exact() {
    let s = Server::start(Properties::default());
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let upload: Bytes = (0..1_048_576u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let req = http::Request::post(format!("http://127.0.0.1:{}/echo", s.port))
        .body(())
        .unwrap();
    let (resp, mut body) = send.send_request(req, false).unwrap();
    let sender = {
        let upload = upload.clone();
        tokio::spawn(async move {
            // Within the stream's window, piece by piece.
            let mut rest = upload;
            while !rest.is_empty() {
                body.reserve_capacity(rest.len().min(64 * 1024));
                let cap = std::future::poll_fn(|cx| body.poll_capacity(cx))
                    .await
                    .unwrap()
                    .unwrap();
                let piece = rest.split_to(cap.min(rest.len()));
                body.send_data(piece, rest.is_empty()).unwrap();
            }
        })
    };
    // The client reads the echo as it comes (its window is 64 KiB).
    let reader = tokio::spawn(async move {
        let resp = tokio::time::timeout(LIMIT, resp).await.unwrap().unwrap();
        body_of(resp).await
    });
    let r = receive(&s).await;
    assert!(r.has_body() && r.more_body());
    s.queue
        .send_response(r.id(), Response::new(200), SendFlags::MORE_DATA)
        .await
        .unwrap();
    let mut echoed = 0;
    while let Some(piece) = s.queue.receive_body_chunk(r.id()).await.unwrap() {
        echoed += piece.len();
        s.queue
            .send_body(r.id(), piece, SendFlags::MORE_DATA)
            .await
            .unwrap();
    }
    s.queue
        .send_body(r.id(), Bytes::new(), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(echoed, upload.len());
    sender.await.unwrap();
    let (status, body) = tokio::time::timeout(LIMIT, reader).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(body == upload[..], "the echo differs");
}

#[tokio::test]
async fn a_stream_reset_is_its_request_disconnect_and_the_connection_serves_on() {
    let s = Server::start(Properties::default());
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let (resp, mut stream) = send.send_request(get(s.port, "/held"), false).unwrap();
    let held = receive(&s).await;
    assert!(held.is_connected());
    stream.send_reset(h2::Reason::CANCEL);
    drop(resp);
    let reason = tokio::time::timeout(LIMIT, held.disconnected())
        .await
        .expect("the reset is seen");
    assert_eq!(reason, DisconnectReason::StreamReset(8));
    assert!(!held.is_connected());
    // The request is gone; answering it fails, saying why.
    let late = s
        .queue
        .send_response(held.id(), Response::new(200), SendFlags::NONE)
        .await;
    assert!(
        matches!(
            late,
            Err(ServerError::Disconnected(DisconnectReason::StreamReset(8)))
        ),
        "{late:?}"
    );
    // The connection serves new streams.
    let next = start_get(&mut send, s.port, "/next");
    let r = receive(&s).await;
    assert_eq!(r.connection_id(), held.connection_id());
    s.queue
        .send_response(r.id(), Response::new(200).body("ok"), SendFlags::NONE)
        .await
        .unwrap();
    let (status, body) = body_of(tokio::time::timeout(LIMIT, next).await.unwrap().unwrap()).await;
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    assert!(s.queue.is_connected(held.connection_id()));
    let n = s.session.counters();
    assert_eq!(
        (n.h2_resets, n.requests_abandoned, n.disconnects),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn closing_the_connection_abandons_every_stream_in_flight() {
    let s = Server::start(Properties::default());
    let (mut send, conn_task) = h2c(s.port, h2::client::Builder::new()).await;
    let _pending: Vec<_> = (0..3)
        .map(|i| start_get(&mut send, s.port, &format!("/{i}")))
        .collect();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(receive(&s).await);
    }
    let conn_id = held[0].connection_id();
    let q = s.queue.clone();
    let whole = tokio::spawn(async move { q.wait_for_disconnect(conn_id).await });
    // The client goes: its connection task (and socket) ends.
    conn_task.abort();
    drop(send);
    for r in &held {
        let why = tokio::time::timeout(LIMIT, r.disconnected()).await.unwrap();
        assert!(
            matches!(
                why,
                DisconnectReason::ClientClosed | DisconnectReason::Reset
            ),
            "{why:?}"
        );
    }
    let why = tokio::time::timeout(LIMIT, whole)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        why,
        DisconnectReason::ClientClosed | DisconnectReason::Reset
    ));
    let n = counters_when(&s.session, |n| n.connections_open == 0).await;
    assert_eq!(
        (n.requests_abandoned, n.disconnects, n.h2_resets),
        (3, 1, 0)
    );
}

#[tokio::test]
async fn a_stalled_stream_holds_back_only_its_own_sender() {
    let s = Server::start(Properties::default());
    // The client's window for each stream is 16 KiB, and it never reads
    // stream A's body: A's window stays shut.
    let mut b = h2::client::Builder::new();
    b.initial_window_size(16 * 1024);
    let (mut send, _conn) = h2c(s.port, b).await;
    let a = start_get(&mut send, s.port, "/a");
    let ra = receive(&s).await;
    let q = s.queue.clone();
    let id = ra.id();
    let flood = tokio::spawn(async move {
        q.send_response(id, Response::new(200), SendFlags::MORE_DATA)
            .await
            .unwrap();
        for _ in 0..64 {
            q.send_body(id, Bytes::from(vec![b'a'; 64 * 1024]), SendFlags::MORE_DATA)
                .await?;
        }
        Ok::<_, httpq_server::ServerError>(())
    });
    let _a_resp = tokio::time::timeout(LIMIT, a).await.unwrap().unwrap();
    // Meanwhile stream B gets a whole 100 KB answer.
    let bfut = start_get(&mut send, s.port, "/b");
    let rb = receive(&s).await;
    let big = vec![b'b'; 100_000];
    s.queue
        .send_response(
            rb.id(),
            Response::new(200).body(big.clone()),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    let (status, body) = body_of(tokio::time::timeout(LIMIT, bfut).await.unwrap().unwrap()).await;
    assert_eq!((status, body.len()), (200, big.len()));
    assert!(!flood.is_finished(), "A's sender is held by A's window");
    flood.abort();
}

#[tokio::test]
async fn large_files_go_out_piece_by_piece_under_the_window() {
    let s = Server::start(Properties::default());
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 249) as u8).collect();
    let path = std::env::temp_dir().join(format!("httpq-h2-file-{}", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let file = std::sync::Arc::new(std::fs::File::open(&path).unwrap());
    let p = start_get(&mut send, s.port, "/file");
    let r = receive(&s).await;
    let mut resp = Response::new(200);
    resp.file = Some(httpq_server::FileChunk {
        file,
        offset: 5,
        len: 2_500_000,
    });
    s.queue
        .send_response(r.id(), resp, SendFlags::NONE)
        .await
        .unwrap();
    let resp = tokio::time::timeout(LIMIT, p).await.unwrap().unwrap();
    assert_eq!(resp.headers().get("content-length").unwrap(), "2500000");
    let (status, body) = body_of(resp).await;
    std::fs::remove_file(&path).unwrap();
    assert_eq!(status, 200);
    assert!(body == data[5..2_500_005], "the file range differs");
    counters_when(&s.session, |n| n.responses_sent == 1).await;
}

#[tokio::test]
async fn unrouted_streams_are_answered_by_the_server_and_head_has_no_body() {
    let s = Server::start(Properties::default());
    // Only /app/ is served.
    s.group
        .add_url(&format!("http://127.0.0.1:{}/app/", s.port), 2)
        .unwrap();
    s.group
        .remove_url(&format!("http://127.0.0.1:{}/", s.port))
        .unwrap();
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let req = http::Request::get(format!("http://127.0.0.1:{}/elsewhere", s.port))
        .body(())
        .unwrap();
    let resp = send.send_request(req, true).unwrap().0.await.unwrap();
    assert_eq!(resp.status(), 400);
    // HEAD: the length of what GET would send, no DATA.
    let head = http::Request::head(format!("http://127.0.0.1:{}/app/h", s.port))
        .body(())
        .unwrap();
    let p = send.send_request(head, true).unwrap().0;
    let r = receive(&s).await;
    s.queue
        .send_response(
            r.id(),
            Response::new(200).body("twelve bytes"),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    let resp = tokio::time::timeout(LIMIT, p).await.unwrap().unwrap();
    assert_eq!(resp.headers().get("content-length").unwrap(), "12");
    let (_, body) = body_of(resp).await;
    assert!(body.is_empty());
}

#[tokio::test]
async fn the_preface_may_arrive_in_pieces_and_http11_still_works_beside_h2c() {
    let s = Server::start(Properties::default());
    // HTTP/1.1 on the same port.
    let mut c = s.connect().await;
    c.send(&common::get("/one")).await;
    let r = receive(&s).await;
    assert_eq!(r.version(), Version::Http11);
    s.queue
        .send_response(r.id(), Response::new(204), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().status, 204);
    // The preface split after 10 bytes, then the client's SETTINGS.
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    raw.write_all(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..10])
        .await
        .unwrap();
    raw.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    raw.write_all(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[10..])
        .await
        .unwrap();
    raw.write_all(&frame(4, 0, 0, &[])).await.unwrap();
    // The server's first frame is its SETTINGS.
    let mut head = [0u8; 9];
    tokio::time::timeout(LIMIT, raw.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head[3], 4, "SETTINGS first, not an HTTP/1.1 answer");
}

/// Default properties but for `timeouts`.
fn with_timeouts(timeouts: httpq_server::Timeouts) -> Properties {
    Properties {
        timeouts,
        ..Properties::default()
    }
}

#[tokio::test]
async fn rapid_resets_past_the_budget_get_goaway_enhance_your_calm() {
    let s = Server::start(Properties::default());
    let (code, n) = open_then(&s, |id| frame(3, 0, id, &8u32.to_be_bytes())).await;
    assert_eq!(code, Some(11), "ENHANCE_YOUR_CALM");
    assert!(n.h2_streams < 1000, "the budget stopped it early: {n:?}");
}

#[tokio::test]
async fn disconnect_on_a_response_sends_goaway_after_it_and_idle_connections_close() {
    let s = Server::start(with_timeouts(httpq_server::Timeouts {
        idle_connection: Duration::from_millis(300),
        ..httpq_server::Timeouts::default()
    }));
    // DISCONNECT: the response completes, then the connection closes
    // gracefully (the client sees GOAWAY NO_ERROR and an end).
    let (mut send, conn) = h2c(s.port, h2::client::Builder::new()).await;
    let p = start_get(&mut send, s.port, "/last");
    let r = receive(&s).await;
    s.queue
        .send_response(
            r.id(),
            Response::new(200).body("bye"),
            SendFlags::DISCONNECT,
        )
        .await
        .unwrap();
    let (status, body) = body_of(tokio::time::timeout(LIMIT, p).await.unwrap().unwrap()).await;
    assert_eq!((status, &body[..]), (200, &b"bye"[..]));
    tokio::time::timeout(LIMIT, conn).await.unwrap().unwrap();
    let why = s
        .queue
        .wait_for_disconnect(r.connection_id())
        .await
        .unwrap();
    assert_eq!(
        why,
        DisconnectReason::ServerClosed,
        "the server asked for the end"
    );
    // IdleConnection: a connection with no stream for 300 ms is closed,
    // counted from its last answer.
    let (mut send, conn) = h2c(s.port, h2::client::Builder::new()).await;
    let p = start_get(&mut send, s.port, "/one");
    assert_eq!(answered(&s, p, Response::new(204)).await.0, 204);
    let started = std::time::Instant::now();
    tokio::time::timeout(LIMIT, conn).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    let n = counters_when(&s.session, |n| n.timeouts == 1 && n.connections_open == 0).await;
    assert_eq!(n.requests_abandoned, 0);
}

#[tokio::test]
async fn a_stream_that_waits_too_long_in_its_queue_alone_gets_503() {
    let s = Server::start(with_timeouts(httpq_server::Timeouts {
        request_queue: Duration::from_millis(200),
        ..httpq_server::Timeouts::default()
    }));
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let p = start_get(&mut send, s.port, "/nobody-takes-this");
    let resp = tokio::time::timeout(LIMIT, p).await.unwrap().unwrap();
    assert_eq!(resp.status(), 503);
    // The connection goes on.
    let p = start_get(&mut send, s.port, "/taken");
    assert_eq!(answered(&s, p, Response::new(204)).await.0, 204);
}

#[tokio::test]
async fn an_applications_content_length_must_match_its_body_as_over_http11() {
    let s = Server::start(Properties::default());
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let whole = start_get(&mut send, s.port, "/whole");
    let parts = start_get(&mut send, s.port, "/parts");
    let (a, b) = (receive(&s).await, receive(&s).await);
    let (whole_req, parts_req) = if a.path() == "/whole" { (a, b) } else { (b, a) };
    let q = &s.queue;
    let promise = |n: &str| Response::new(200).header("content-length", n);
    // One send that says 10 and carries 5: refused, nothing sent; a
    // correct one still goes.
    let short = q
        .send_response(whole_req.id(), promise("10").body("short"), SendFlags::NONE)
        .await;
    assert!(
        matches!(short, Err(ServerError::InvalidResponse(_))),
        "{short:?}"
    );
    let bad = q
        .send_response(whole_req.id(), promise("x").body("x"), SendFlags::NONE)
        .await;
    assert!(
        matches!(bad, Err(ServerError::InvalidResponse(_))),
        "{bad:?}"
    );
    q.send_response(whole_req.id(), promise("5").body("right"), SendFlags::NONE)
        .await
        .unwrap();
    // In pieces: a piece past the promise, or an end short of it, is refused.
    q.send_response(
        parts_req.id(),
        promise("10").body("12345"),
        SendFlags::MORE_DATA,
    )
    .await
    .unwrap();
    let over = q
        .send_body(
            parts_req.id(),
            Bytes::from_static(b"123456"),
            SendFlags::MORE_DATA,
        )
        .await;
    assert!(
        matches!(over, Err(ServerError::InvalidResponse(_))),
        "{over:?}"
    );
    let early = q
        .send_body(parts_req.id(), Bytes::from_static(b"67"), SendFlags::NONE)
        .await;
    assert!(
        matches!(early, Err(ServerError::InvalidResponse(_))),
        "{early:?}"
    );
    q.send_body(
        parts_req.id(),
        Bytes::from_static(b"67890"),
        SendFlags::NONE,
    )
    .await
    .unwrap();
    let whole = tokio::time::timeout(LIMIT, whole).await.unwrap().unwrap();
    assert_eq!(body_of(whole).await, (200, b"right".to_vec()));
    let parts = tokio::time::timeout(LIMIT, parts).await.unwrap().unwrap();
    assert_eq!(body_of(parts).await, (200, b"1234567890".to_vec()));
}

#[tokio::test]
async fn shutting_a_queue_down_refuses_its_streams_and_spares_the_connections_others() {
    let s = Server::start(Properties::default());
    let other = httpq_server::RequestQueue::new("other");
    let group = s.session.create_url_group();
    group.bind(&other);
    group
        .add_url(&format!("http://127.0.0.1:{}/other/", s.port), 2)
        .unwrap();
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let to_test = start_get(&mut send, s.port, "/waits");
    let to_other = start_get(&mut send, s.port, "/other/goes-on");
    // Both wait in their queues; "test" shuts down.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while s.queue.len() + other.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both queued");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s.queue.shutdown();
    let refused = tokio::time::timeout(LIMIT, to_test).await.unwrap().unwrap();
    assert_eq!(refused.status(), 503);
    let req = tokio::time::timeout(LIMIT, other.receive())
        .await
        .unwrap()
        .unwrap();
    other
        .send_response(
            req.id(),
            Response::new(200).body("still here"),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    let resp = tokio::time::timeout(LIMIT, to_other)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body_of(resp).await, (200, b"still here".to_vec()));
}

/// A server with a 300 ms EntityBody, and a POST to it whose first body
/// piece the application has read; the client's stream stays open.
async fn posted_a_first_piece(
    path: &str,
    piece: &'static [u8],
) -> (
    Server,
    Sender,
    h2::client::ResponseFuture,
    h2::SendStream<Bytes>,
    Request,
) {
    let s = Server::start(with_timeouts(httpq_server::Timeouts {
        entity_body: Duration::from_millis(300),
        ..httpq_server::Timeouts::default()
    }));
    let (mut send, _conn) = h2c(s.port, h2::client::Builder::new()).await;
    let post = http::Request::post(format!("http://127.0.0.1:{}{path}", s.port))
        .body(())
        .unwrap();
    let (resp, mut body) = send.send_request(post, false).unwrap();
    body.send_data(Bytes::from_static(piece), false).unwrap();
    let req = receive(&s).await;
    let first = s.queue.receive_body_chunk(req.id()).await.unwrap();
    assert_eq!(first.as_deref(), Some(piece));
    (s, send, resp, body, req)
}

#[tokio::test]
async fn a_stalled_body_times_out_its_stream_alone_after_entity_body() {
    let (s, mut send, resp, _body, req) = posted_a_first_piece("/upload", b"first").await;
    // The client sends nothing more: the application's wait times out.
    let waited = std::time::Instant::now();
    let stalled = tokio::time::timeout(LIMIT, s.queue.receive_body_chunk(req.id()))
        .await
        .expect("the wait ends");
    let took = waited.elapsed();
    let err = stalled.unwrap_err();
    assert!(
        matches!(
            err,
            ServerError::Disconnected(DisconnectReason::Timeout(
                httpq_server::TimeoutKind::EntityBody
            ))
        ),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let reset = tokio::time::timeout(LIMIT, resp)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(reset.reason(), Some(h2::Reason::CANCEL));
    // The connection serves on.
    let next = start_get(&mut send, s.port, "/after");
    let got = answered(&s, next, Response::new(200).body("on")).await;
    assert_eq!(got, (200, b"on".to_vec()));
    let m = s.session.metrics();
    let eb = m.timeouts.iter().find(|t| t.0 == "entity_body").unwrap().1;
    assert_eq!(eb, 1);
    assert_eq!(m.counters.requests_abandoned, 1);
}

#[tokio::test]
async fn a_window_that_stays_shut_times_out_its_stream_alone_after_min_send_rate() {
    // 100,000 bytes/s: the 64 KiB a held sender may queue earn it a second.
    let s = Server::start(with_timeouts(httpq_server::Timeouts {
        min_send_rate: 100_000,
        ..httpq_server::Timeouts::default()
    }));
    let mut builder = h2::client::Builder::new();
    builder.initial_window_size(1_000);
    let (mut send, _conn) = h2c(s.port, builder).await;
    let slow = start_get(&mut send, s.port, "/big");
    let req = receive(&s).await;
    let q = &s.queue;
    q.send_response(req.id(), Response::new(200), SendFlags::MORE_DATA)
        .await
        .unwrap();
    // The client reads nothing: its 1,000-byte window never opens again.
    let started = std::time::Instant::now();
    let piece = Bytes::from(vec![b'x'; 32 * 1024]);
    let err = tokio::time::timeout(LIMIT, async {
        loop {
            if let Err(e) = q
                .send_body(req.id(), piece.clone(), SendFlags::MORE_DATA)
                .await
            {
                return e;
            }
        }
    })
    .await
    .expect("the held sender is let go");
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            ServerError::Disconnected(DisconnectReason::Timeout(
                httpq_server::TimeoutKind::MinSendRate
            ))
        ),
        "{err:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let resp = tokio::time::timeout(LIMIT, slow).await.unwrap().unwrap();
    let mut body = resp.into_body();
    let cut = loop {
        match tokio::time::timeout(LIMIT, body.data()).await.unwrap() {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the stream ended cleanly"),
        }
    };
    assert_eq!(cut.reason(), Some(h2::Reason::CANCEL));
    // The connection serves on.
    let next = start_get(&mut send, s.port, "/after");
    assert_eq!(
        answered(&s, next, Response::new(200).body("on")).await.0,
        200
    );
    let m = s.session.metrics();
    let msr = m
        .timeouts
        .iter()
        .find(|t| t.0 == "min_send_rate")
        .unwrap()
        .1;
    assert_eq!(msr, 1);
}

#[tokio::test]
async fn body_that_came_but_was_not_read_yet_is_no_stall() {
    let (s, mut send, resp, mut body, req) = posted_a_first_piece("/up", b"a").await;
    let q = &s.queue;
    // The application waits a moment, gives up, and comes back later; the
    // client's next piece came meanwhile.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), q.receive_body_chunk(req.id())).await;
    assert!(gave_up.is_err());
    body.send_data(Bytes::from_static(b"b"), true).unwrap();
    // Past the EntityBody deadline of the abandoned wait: the body that
    // came since is not a stall.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        q.receive_body_chunk(req.id()).await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
    assert_eq!(q.receive_body_chunk(req.id()).await.unwrap(), None);
    q.send_response(
        req.id(),
        Response::new(204).header("content-length", "5"),
        SendFlags::NONE,
    )
    .await
    .unwrap();
    let resp = tokio::time::timeout(LIMIT, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 204);
    assert!(
        resp.headers().get("content-length").is_none(),
        "a 204 has none"
    );
    // A malformed Content-Length is refused on HEAD too.
    let head = http::Request::head(format!("http://127.0.0.1:{}/h", s.port))
        .body(())
        .unwrap();
    let (_h, _) = send.send_request(head, true).unwrap();
    let req = receive(&s).await;
    let bad = q
        .send_response(
            req.id(),
            Response::new(200).header("content-length", "x"),
            SendFlags::NONE,
        )
        .await;
    assert!(
        matches!(bad, Err(ServerError::InvalidResponse(_))),
        "{bad:?}"
    );
    assert_eq!(
        s.session
            .metrics()
            .timeouts
            .iter()
            .find(|t| t.0 == "entity_body")
            .unwrap()
            .1,
        0
    );
}

/// The next frame: type, flags, stream id, payload; `None` at the end.
async fn next_frame(raw: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    raw.read_exact(&mut head).await.ok()?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    raw.read_exact(&mut payload).await.ok()?;
    let stream = u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff;
    Some((head[3], head[4], stream, payload))
}

#[tokio::test]
async fn a_body_still_coming_after_the_response_is_drained_and_still_checked() {
    let s = Server::start(Properties::default());
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    raw.set_nodelay(true).unwrap();
    let authority = format!("127.0.0.1:{}", s.port);
    // POST / with `content-length: 3`, its body still to come.
    let mut block = vec![0x83, 0x86, 0x84, 0x01, authority.len() as u8];
    block.extend_from_slice(authority.as_bytes());
    block.extend_from_slice(&[0x0f, 0x0d, 0x01, b'3']);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(4, 0, 0, &[]));
    hello.extend(frame(1, 0x4, 1, &block));
    raw.write_all(&hello).await.unwrap();
    let req = receive(&s).await;
    s.queue
        .send_response(req.id(), Response::new(200).body("early"), SendFlags::NONE)
        .await
        .unwrap();
    drop(req);
    // The whole response comes first...
    loop {
        let (kind, flags, stream, _) = tokio::time::timeout(LIMIT, next_frame(&mut raw))
            .await
            .unwrap()
            .expect("the response");
        if kind == 0 && stream == 1 && flags & 1 == 1 {
            break;
        }
        assert!(
            kind != 3 && kind != 7,
            "no reset or GOAWAY before the body: {kind}"
        );
    }
    // ... then a body longer than declared: still read, so h2 catches it.
    raw.write_all(&frame(0, 1, 1, b"abcdef")).await.unwrap();
    let code = loop {
        let (kind, _, stream, payload) = tokio::time::timeout(LIMIT, next_frame(&mut raw))
            .await
            .unwrap()
            .expect("a reset");
        if kind == 3 && stream == 1 {
            break u32::from_be_bytes(payload[..4].try_into().unwrap());
        }
    };
    assert_eq!(code, 1, "PROTOCOL_ERROR");
}
