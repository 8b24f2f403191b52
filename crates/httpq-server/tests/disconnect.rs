//! Wait-for-disconnect: every way a connection breaks, seen by all three
//! wait forms (future, blocking call, completion-queue post).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{get, Client, Server, Waiters, LIMIT, UNSET};
use httpq_server::{
    CompletionQueue, DisconnectReason, HalfClosePolicy, Properties, Response, SendFlags,
    ServerError, TimeoutKind, Timeouts,
};

/// A server, a client with one request received and held by the application.
async fn held(props: Properties) -> (Server, Client, httpq_server::Request) {
    let s = Server::start(props);
    let mut c = s.connect().await;
    c.send(&get("/held")).await;
    let req = s.queue.receive().await.unwrap();
    (s, c, req)
}

/// Sends an endless response to `req` until sending fails (a client that
/// does not read makes the connection time out under MinSendRate).
fn flood(
    s: &Server,
    req: &httpq_server::Request,
) -> tokio::task::JoinHandle<Result<(), ServerError>> {
    let q = s.queue.clone();
    let id = req.id();
    tokio::spawn(async move {
        q.send_response(id, Response::new(200), SendFlags::MORE_DATA)
            .await?;
        let block = Bytes::from(vec![b'x'; 1024 * 1024]);
        loop {
            q.send_body(id, block.clone(), SendFlags::MORE_DATA).await?;
        }
    })
}

/// The application answers `req` with 200 and the client reads it.
async fn answer_and_read(s: &Server, c: &mut Client, req: &httpq_server::Request) {
    s.queue
        .send_response(req.id(), Response::new(200), SendFlags::NONE)
        .await
        .unwrap();
    c.response().await.unwrap();
}

fn short(t: Timeouts) -> Properties {
    Properties {
        timeouts: t,
        ..Properties::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fin_while_the_application_holds_the_request() {
    let (s, c, req) = held(Properties::default()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    assert!(s.queue.is_connected(req.connection_id()));
    drop(c); // FIN
    assert_eq!(w.reason().await, DisconnectReason::ClientClosed);
    assert!(!s.queue.is_connected(req.connection_id()));
    assert!(!req.is_connected());
    assert_eq!(req.disconnected().await, DisconnectReason::ClientClosed);
    let late = s
        .queue
        .send_response(req.id(), Response::new(200), SendFlags::NONE)
        .await;
    assert!(matches!(late, Err(ServerError::ConnectionInvalid)));
    let counters = s.session.counters();
    assert_eq!(counters.requests_abandoned, 1);
    assert_eq!(counters.disconnects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reset() {
    let (s, c, req) = held(Properties::default()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    c.reset();
    assert_eq!(w.reason().await, DisconnectReason::Reset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_allowed_by_policy_still_gets_the_response() {
    let props = Properties {
        half_close: HalfClosePolicy::Allow,
        ..Properties::default()
    };
    let (s, mut c, req) = held(props).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    tokio::io::AsyncWriteExt::shutdown(&mut c.stream)
        .await
        .unwrap(); // FIN, still reading
                   // The FIN is not a disconnect: the connection stays up until answered.
    let waited = tokio::time::timeout(Duration::from_millis(200), req.disconnected()).await;
    assert!(
        waited.is_err(),
        "no disconnect on FIN under HalfClosePolicy::Allow"
    );
    s.queue
        .send_response(req.id(), Response::new(200).body("late"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"late");
    assert_eq!(w.reason().await, DisconnectReason::ClientClosed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_flag_closes_after_the_response() {
    let (s, mut c, req) = held(Properties::default()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    s.queue
        .send_response(
            req.id(),
            Response::new(200).body("bye"),
            SendFlags::DISCONNECT,
        )
        .await
        .unwrap();
    let r = c.response().await.unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(w.reason().await, DisconnectReason::ServerClosed);
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_and_during_the_response() {
    // Before: a plain close.
    let (s, mut c, req) = held(Properties::default()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    s.queue.cancel_request(req.id()).unwrap();
    assert_eq!(w.reason().await, DisconnectReason::Cancelled);
    assert!(c.closed().await);
    assert!(
        s.queue.cancel_request(req.id()).is_err(),
        "cancelled ids are invalid"
    );
    // During: the response is under way, so the connection is reset.
    let mut c2 = s.connect().await;
    c2.send(&get("/two")).await;
    let req2 = s.queue.receive().await.unwrap();
    let w2 = Waiters::arm(&s.queue, req2.connection_id());
    s.queue
        .send_response(
            req2.id(),
            Response::new(200).body("part"),
            SendFlags::MORE_DATA,
        )
        .await
        .unwrap();
    s.queue.cancel_request(req2.id()).unwrap();
    assert_eq!(w2.reason().await, DisconnectReason::Cancelled);
    let mut buf = Vec::new();
    let res = tokio::time::timeout(
        LIMIT,
        tokio::io::AsyncReadExt::read_to_end(&mut c2.stream, &mut buf),
    )
    .await
    .unwrap();
    assert!(
        res.is_err(),
        "a reset, not a clean end: {res:?} after {buf:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_wait_timeout_even_when_bytes_trickle() {
    let t = Timeouts {
        header_wait: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let s = Server::start(short(t));
    let mut c = s.connect().await;
    c.send(&get("/first")).await;
    let req = s.queue.receive().await.unwrap();
    answer_and_read(&s, &mut c, &req).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    let started = std::time::Instant::now();
    // Trickle a head one byte every 50 ms: the clock does not restart.
    let trickle = tokio::spawn(async move {
        for b in b"GET /slow HTTP/1.1\r\nHost: a\r\n".iter() {
            if tokio::io::AsyncWriteExt::write_all(&mut c.stream, &[*b])
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c
    });
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::HeaderWait)
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    let mut c = trickle.await.unwrap();
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 408);
    assert_eq!(s.session.counters().timeouts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_timeout() {
    let t = Timeouts {
        idle_connection: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let (s, mut c, req) = held(short(t)).await;
    answer_and_read(&s, &mut c, &req).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::IdleConnection)
    );
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_body_timeout_while_the_application_waits_for_body() {
    let t = Timeouts {
        entity_body: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let s = Server::start(short(t));
    let mut c = s.connect().await;
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    let req = s.queue.receive().await.unwrap();
    let w = Waiters::arm(&s.queue, req.connection_id());
    let mut buf = [0u8; 16];
    assert_eq!(s.queue.receive_body(req.id(), &mut buf).await.unwrap(), 3);
    let stalled = s.queue.receive_body(req.id(), &mut buf).await;
    assert!(
        matches!(
            stalled,
            Err(ServerError::Disconnected(DisconnectReason::Timeout(
                TimeoutKind::EntityBody
            )))
        ),
        "{stalled:?}"
    );
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::EntityBody)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_body_timeout_when_the_application_waited_before_the_body_came() {
    use std::future::Future;
    let t = Timeouts {
        entity_body: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let s = Server::start(short(t));
    let mut c = s.connect().await;
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
        .await;
    let req = s.queue.receive().await.unwrap();
    let (mut buf, mut buf2) = ([0u8; 16], [0u8; 16]);
    let first = s.queue.receive_body(req.id(), &mut buf);
    tokio::pin!(first);
    // The application waits for body before any has arrived...
    let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(first.as_mut().poll(cx))).await;
    assert!(polled.is_pending());
    // ...then gets some, then the client stalls.
    c.send(b"abc").await;
    assert_eq!(first.await.unwrap(), 3);
    let stalled = tokio::time::timeout(LIMIT, s.queue.receive_body(req.id(), &mut buf2))
        .await
        .expect("the EntityBody timeout fires");
    assert!(
        matches!(
            stalled,
            Err(ServerError::Disconnected(DisconnectReason::Timeout(
                TimeoutKind::EntityBody
            )))
        ),
        "{stalled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_entity_body_timeout() {
    let t = Timeouts {
        drain_entity_body: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let s = Server::start(short(t));
    let mut c = s.connect().await;
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await;
    let req = s.queue.receive().await.unwrap();
    let w = Waiters::arm(&s.queue, req.connection_id());
    s.queue
        .send_response(req.id(), Response::new(200).body("early"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"early");
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::DrainEntityBody)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_send_rate_timeout_for_a_client_that_stops_reading() {
    let t = Timeouts {
        min_send_rate: 64 * 1024 * 1024,
        ..Timeouts::default()
    };
    let (s, c, req) = held(short(t)).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    let sender = flood(&s, &req);
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::MinSendRate)
    );
    assert!(
        sender.await.unwrap().is_err(),
        "sending fails once the connection is gone"
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_shutdown_aborts_waits_and_receives() {
    let (s, _c, req) = held(Properties::default()).await;
    let q = s.queue.clone();
    let conn = req.connection_id();
    let future = tokio::spawn(async move { q.wait_for_disconnect(conn).await });
    let q = s.queue.clone();
    let blocking = tokio::task::spawn_blocking(move || q.wait_for_disconnect_blocking(conn));
    let q = s.queue.clone();
    let receiver = tokio::spawn(async move { q.receive().await.map(|_| ()) });
    let cq = CompletionQueue::new();
    s.queue.wait_for_disconnect_posted(conn, &cq, 7).unwrap();
    s.queue.shutdown();
    assert!(matches!(future.await.unwrap(), Err(ServerError::Aborted)));
    assert!(matches!(blocking.await.unwrap(), Err(ServerError::Aborted)));
    assert!(matches!(receiver.await.unwrap(), Err(ServerError::Aborted)));
    let posted = cq.next().await;
    assert_eq!(
        (posted.key, posted.reason),
        (7, DisconnectReason::QueueShutdown)
    );
    assert!(matches!(
        s.queue.wait_for_disconnect(conn).await,
        Err(ServerError::Aborted)
    ));
    assert!(matches!(s.queue.receive().await, Err(ServerError::Aborted)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_completes_every_wait() {
    let (s, _c, req) = held(Properties::default()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    s.session.close();
    assert_eq!(w.reason().await, DisconnectReason::ServerShutdown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_all_complete() {
    let (s, c, req) = held(Properties::default()).await;
    let conn = req.connection_id();
    let waiters: Vec<_> = (0..100)
        .map(|_| {
            let q = s.queue.clone();
            tokio::spawn(async move { q.wait_for_disconnect(conn).await })
        })
        .collect();
    let cq = CompletionQueue::new();
    for key in 0..100 {
        s.queue.wait_for_disconnect_posted(conn, &cq, key).unwrap();
    }
    drop(c);
    for w in waiters {
        assert_eq!(w.await.unwrap().unwrap(), DisconnectReason::ClientClosed);
    }
    let mut keys: Vec<u64> = (0..100)
        .map(|_| cq.get(LIMIT).expect("posted").key)
        .collect();
    keys.sort();
    assert_eq!(keys, (0..100).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_ids_complete_at_once_and_unknown_ids_are_errors() {
    let (s, c, req) = held(Properties::default()).await;
    let conn = req.connection_id();
    drop(c);
    assert_eq!(req.disconnected().await, DisconnectReason::ClientClosed);
    // Already closed: every form completes at once, with the reason.
    assert_eq!(
        s.queue.wait_for_disconnect(conn).await.unwrap(),
        DisconnectReason::ClientClosed
    );
    let q = s.queue.clone();
    let r = tokio::task::spawn_blocking(move || q.wait_for_disconnect_blocking(conn))
        .await
        .unwrap();
    assert_eq!(r.unwrap(), DisconnectReason::ClientClosed);
    let cq = CompletionQueue::new();
    s.queue.wait_for_disconnect_posted(conn, &cq, 1).unwrap();
    assert_eq!(
        cq.try_get().map(|c| c.reason),
        Some(DisconnectReason::ClientClosed)
    );
    // Never issued.
    let never = u64::MAX >> 30;
    assert!(matches!(
        s.queue.wait_for_disconnect(never).await,
        Err(ServerError::UnknownId(_))
    ));
    assert!(matches!(
        s.queue.wait_for_disconnect_posted(never, &cq, 2),
        Err(ServerError::UnknownId(_))
    ));
    assert!(!s.queue.is_connected(never));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_does_not_swallow_pipelined_requests() {
    let s = Server::start(Properties::default());
    let mut c = s.connect().await;
    let mut both = get("/one");
    both.extend_from_slice(&get("/two"));
    c.send(&both).await;
    let one = s.queue.receive().await.unwrap();
    let q = s.queue.clone();
    let conn = one.connection_id();
    let waiter = tokio::spawn(async move { q.wait_for_disconnect(conn).await });
    let two = s.queue.receive().await.unwrap();
    assert_eq!(two.url().path, "/two");
    for r in [&one, &two] {
        s.queue
            .send_response(
                r.id(),
                Response::new(200).body(r.url().path.clone()),
                SendFlags::NONE,
            )
            .await
            .unwrap();
    }
    assert_eq!(c.response().await.unwrap().body, b"/one");
    assert_eq!(c.response().await.unwrap().body, b"/two");
    assert!(!waiter.is_finished(), "the connection is still up");
    drop(c);
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        DisconnectReason::ClientClosed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_wait_future_deregisters_it() {
    let (s, c, req) = held(Properties::default()).await;
    let conn = req.connection_id();
    for _ in 0..200 {
        let fut = s.queue.wait_for_disconnect(conn);
        let r = tokio::time::timeout(Duration::from_micros(1), fut).await;
        assert!(r.is_err());
    }
    drop(c);
    assert_eq!(
        s.queue.wait_for_disconnect(conn).await.unwrap(),
        DisconnectReason::ClientClosed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_queue_timeout_ends_the_connection() {
    let t = Timeouts {
        request_queue: Duration::from_millis(300),
        ..Timeouts::default()
    };
    // The first request gives the application the connection id; the
    // second then sits unreceived until its RequestQueue timeout.
    let (s, mut c, req) = held(short(t)).await;
    answer_and_read(&s, &mut c, &req).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    c.send(&get("/unreceived")).await;
    assert_eq!(c.response().await.unwrap().status, 503);
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::RequestQueue)
    );
    assert!(c.closed().await);
}

/// A session whose one URL group sets `group` timeouts over the defaults.
fn with_group_timeouts(group: Timeouts) -> Server {
    let s = Server::start(Properties::default());
    s.group.set_timeouts(group);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_idle_connection_timeout_applies_after_its_first_request() {
    let s = with_group_timeouts(Timeouts {
        idle_connection: Duration::from_millis(300),
        ..UNSET
    });
    let mut c = s.connect().await;
    c.send(&get("/a")).await;
    let req = s.queue.receive().await.unwrap();
    answer_and_read(&s, &mut c, &req).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::IdleConnection)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_header_wait_applies_to_the_next_head() {
    let s = with_group_timeouts(Timeouts {
        header_wait: Duration::from_millis(300),
        ..UNSET
    });
    let mut c = s.connect().await;
    c.send(&get("/a")).await;
    let req = s.queue.receive().await.unwrap();
    answer_and_read(&s, &mut c, &req).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    c.send(b"GET /b HTTP/1.1\r\n").await; // and never the rest
    assert_eq!(c.response().await.unwrap().status, 408);
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::HeaderWait)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_min_send_rate_applies_to_its_responses() {
    let s = with_group_timeouts(Timeouts {
        min_send_rate: 64 * 1024 * 1024,
        ..UNSET
    });
    let mut c = s.connect().await;
    c.send(&get("/a")).await;
    let req = s.queue.receive().await.unwrap();
    let w = Waiters::arm(&s.queue, req.connection_id());
    let sender = flood(&s, &req);
    assert_eq!(
        w.reason().await,
        DisconnectReason::Timeout(TimeoutKind::MinSendRate)
    );
    assert!(sender.await.unwrap().is_err());
    drop(c);
}

fn allow_half_close() -> Properties {
    Properties {
        half_close: HalfClosePolicy::Allow,
        ..Properties::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_keeps_a_buffered_body_and_pipelined_requests() {
    let s = Server::start(allow_half_close());
    let mut c = s.connect().await;
    // The body waits behind Expect until the application reads it, so the
    // FIN is seen while the body's bytes are still buffered.
    c.send(
        b"POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello\
          GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    tokio::io::AsyncWriteExt::shutdown(&mut c.stream)
        .await
        .unwrap();
    let post = s.queue.receive().await.unwrap();
    let w = Waiters::arm(&s.queue, post.connection_id());
    let mut body = Vec::new();
    let mut buf = [0u8; 2];
    loop {
        let n = s.queue.receive_body(post.id(), &mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    assert_eq!(body, b"hello");
    s.queue
        .send_response(post.id(), Response::new(200).body("one"), SendFlags::NONE)
        .await
        .unwrap();
    let next = s.queue.receive().await.unwrap();
    assert_eq!(next.url().path, "/next");
    s.queue
        .send_response(next.id(), Response::new(200).body("two"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"one");
    assert_eq!(c.response().await.unwrap().body, b"two");
    assert_eq!(w.reason().await, DisconnectReason::ClientClosed);
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_then_reset_is_seen_without_a_write() {
    let (s, mut c, req) = held(allow_half_close()).await;
    let w = Waiters::arm(&s.queue, req.connection_id());
    tokio::io::AsyncWriteExt::shutdown(&mut c.stream)
        .await
        .unwrap();
    // Under Allow the FIN alone is not a disconnect...
    let waited = tokio::time::timeout(Duration::from_millis(200), req.disconnected()).await;
    assert!(waited.is_err(), "no disconnect on FIN under Allow");
    // ...but an RST after it is, at once, while the request is still held.
    c.reset();
    assert_eq!(w.reason().await, DisconnectReason::Reset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_with_a_body_cut_short_fails_the_body_read() {
    let s = Server::start(allow_half_close());
    let mut c = s.connect().await;
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhel")
        .await;
    tokio::io::AsyncWriteExt::shutdown(&mut c.stream)
        .await
        .unwrap();
    let post = s.queue.receive().await.unwrap();
    let mut buf = [0u8; 16];
    let mut got = 0;
    let err = loop {
        match s.queue.receive_body(post.id(), &mut buf).await {
            Ok(0) => panic!("a cut-short body cannot end normally"),
            Ok(n) => got += n,
            Err(e) => break e,
        }
    };
    assert_eq!(got, 3, "what arrived was handed out");
    assert!(
        matches!(err, ServerError::Body(httpq_proto::Error::IncompleteBody)),
        "{err:?}"
    );
    // The client half-closed, so it can still read an answer.
    s.queue
        .send_response(post.id(), Response::new(400).body("short"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().status, 400);
    assert!(c.closed().await);
}

/// A wait test that fails fails at once: its connection never breaks,
/// the wait gives up after 200 ms, and the runtime it ran on shuts down
/// although the blocking wait is still blocked (the session outlives it).
#[test]
fn a_failing_wait_test_fails_instead_of_hanging() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let s = Server::start(Properties::default());
        // The client outlives the runtime too: the connection stays open.
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        std::io::Write::write_all(&mut c, &get("/held")).unwrap();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let req = s.queue.receive().await.unwrap();
                let w = Waiters::arm(&s.queue, req.connection_id());
                w.reason_within(Duration::from_millis(200)).await
            })
        }))
        .is_err();
        drop(rt);
        let _ = done_tx.send(failed);
        drop((s, c));
    });
    let failed = done_rx
        .recv_timeout(LIMIT)
        .expect("the failing test ended instead of hanging");
    assert!(failed, "the wait gave up");
}
