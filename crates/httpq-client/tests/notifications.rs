//! Status notifications: exact per-handle order snapshots for the main
//! request shapes, the ordering rules of DESIGN.md §2, the event stream,
//! contexts, and per-phase timings.

mod support;

use std::sync::Arc;
use std::time::Duration;

use httpq_client::{Config, Notification, Payload, Session, Status, Timeouts, Timings};
use support::*;

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/// A request on a new connection to an IP literal (nothing to resolve).
const FRESH: &[&str] = &[
    "HANDLE_CREATED",
    "CONNECTING_TO_SERVER",
    "CONNECTED_TO_SERVER",
    "CONNECTION_NEW",
    "SENDING_REQUEST",
    "REQUEST_SENT",
    "RECEIVING_RESPONSE",
    "FIRST_BYTE",
    "RESPONSE_RECEIVED",
    "REQUEST_COMPLETE",
    "HANDLE_CLOSING",
];

const REUSED: &[&str] = &[
    "HANDLE_CREATED",
    "CONNECTION_REUSED",
    "SENDING_REQUEST",
    "REQUEST_SENT",
    "RECEIVING_RESPONSE",
    "FIRST_BYTE",
    "RESPONSE_RECEIVED",
    "REQUEST_COMPLETE",
    "HANDLE_CLOSING",
];

fn session(rec: &Recorder) -> Session {
    Session::new(config(rec, Timeouts::default())).unwrap()
}

/// name_lookup <= connect <= tls <= pretransfer <= first_byte <= total,
/// over the phases present.
fn assert_monotone(t: &Timings) {
    let chain = [
        t.name_lookup,
        t.connect,
        t.tls,
        t.pretransfer,
        t.first_byte,
        t.total,
    ];
    let present: Vec<Duration> = chain.iter().flatten().copied().collect();
    for w in present.windows(2) {
        assert!(w[0] <= w[1], "timings out of order: {t:?}");
    }
}

fn payload_of(ns: &[Notification], s: Status) -> Payload {
    ns.iter()
        .find(|n| n.status == s)
        .unwrap_or_else(|| panic!("no {} in {:?}", s.name(), names(ns)))
        .payload
        .clone()
}

#[tokio::test]
async fn fresh_request_order() {
    let server = Server::fixed(HELLO.to_vec()).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/x"), 7).await.unwrap();
    let id = r.id();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"hello");
    let t = r.timings();
    drop(r);

    let ns = rec.of(id);
    assert_eq!(names(&ns), FRESH);
    assert_handle_rules(&ns, 7);
    assert_eq!(
        payload_of(&ns, Status::HandleCreated),
        Payload::Parent(s.id())
    );
    assert_eq!(
        payload_of(&ns, Status::ConnectingToServer),
        Payload::Address(server.addr)
    );
    assert_eq!(
        payload_of(&ns, Status::ConnectedToServer),
        Payload::Address(server.addr)
    );
    assert_eq!(
        payload_of(&ns, Status::ResponseReceived),
        Payload::Bytes(HELLO.len() as u64)
    );
    assert!(matches!(payload_of(&ns, Status::RequestSent), Payload::Bytes(n) if n > 20));
    assert_eq!(completions(&ns), vec![Ok(())]);
    // The session handle has been created, and nothing else yet.
    assert_eq!(rec.names(s.id()), ["HANDLE_CREATED"]);
    assert_eq!(rec.of(s.id())[0].payload, Payload::Parent(0));

    for (name, v) in [
        ("connect", t.connect),
        ("pretransfer", t.pretransfer),
        ("first_byte", t.first_byte),
        ("total", t.total),
    ] {
        assert!(v.is_some(), "{name} missing: {t:?}");
    }
    assert_eq!(t.tls, None);
    assert_eq!(t.redirect, None);
    assert_monotone(&t);

    s.close();
    assert_eq!(rec.names(s.id()), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    assert_eq!(s.open_connections(), 0);
    server.stop().await;
}

#[tokio::test]
async fn fresh_request_by_name_order() {
    let server = Server::fixed(HELLO.to_vec()).await;
    let resolver = SlowResolver::new(Some(Duration::ZERO), server.addr);
    let rec = Recorder::new();
    let s = Session::new(Config {
        resolver: Some(Arc::new(resolver.clone())),
        ..config(&rec, Timeouts::default())
    })
    .unwrap();
    let url = format!("http://fresh.test:{}/", server.port());
    let mut r = s.open_url(&url, 17).await.unwrap();
    assert_eq!(&r.bytes().await.unwrap()[..], b"hello");
    let t = r.timings();
    let id = r.id();
    drop(r);

    let ns = rec.of(id);
    let mut expected = FRESH.to_vec();
    expected.splice(1..1, ["RESOLVING_NAME", "NAME_RESOLVED"]);
    assert_eq!(names(&ns), expected);
    assert_handle_rules(&ns, 17);
    assert_eq!(
        payload_of(&ns, Status::ResolvingName),
        Payload::Host("fresh.test".into())
    );
    assert_eq!(
        payload_of(&ns, Status::NameResolved),
        Payload::Address(server.addr)
    );
    assert_eq!(completions(&ns), vec![Ok(())]);
    for (name, v) in [
        ("name_lookup", t.name_lookup),
        ("connect", t.connect),
        ("pretransfer", t.pretransfer),
        ("first_byte", t.first_byte),
        ("total", t.total),
    ] {
        assert!(v.is_some(), "{name} missing: {t:?}");
    }
    assert_monotone(&t);
    // The pooled connection is found by name: the next request resolves nothing.
    let mut again = s.open_url(&url, 18).await.unwrap();
    again.bytes().await.unwrap();
    let id2 = again.id();
    drop(again);
    assert_eq!(rec.names(id2), REUSED);
    assert_eq!(
        resolver.started.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn second_request_reuses_the_pooled_connection() {
    let server = Server::fixed(HELLO.to_vec()).await;
    let rec = Recorder::new();
    let s = session(&rec);

    let mut first = s.open_url(&server.url("/1"), 1).await.unwrap();
    assert_eq!(&first.bytes().await.unwrap()[..], b"hello");
    let first_id = first.id();
    assert!(!first.connection_reused());
    drop(first);
    // Read to the end: the connection went back to the pool.
    assert_eq!(s.open_connections(), 1);

    let mut second = s.open_url(&server.url("/2"), 2).await.unwrap();
    assert_eq!(&second.bytes().await.unwrap()[..], b"hello");
    assert!(second.connection_reused());
    let t = second.timings();
    let second_id = second.id();
    drop(second);

    assert_eq!(names(&rec.of(first_id)), FRESH);
    let ns = rec.of(second_id);
    assert_eq!(names(&ns), REUSED);
    assert_handle_rules(&ns, 2);
    // The same connection, and the server saw one.
    assert_eq!(
        payload_of(&rec.of(first_id), Status::ConnectionNew),
        payload_of(&ns, Status::ConnectionReused)
    );
    assert_eq!(server.accepted(), 1);
    // No lookup, no connect on a reused connection.
    assert_eq!((t.name_lookup, t.connect), (None, None));
    assert!(t.pretransfer.is_some() && t.first_byte.is_some() && t.total.is_some());
    assert_monotone(&t);
    assert_eq!(s.open_connections(), 1);
    s.close();
    assert_eq!(s.open_connections(), 0);
    server.stop().await;
}

#[tokio::test]
async fn redirect_order() {
    let server = Server::script(|req| {
        if req.path == "/a" {
            vec![Step::Write(response("302 Found", "Location: /b\r\n", b""))]
        } else {
            vec![Step::Write(response("200 OK", "", req.path.as_bytes()))]
        }
    })
    .await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/a"), 3).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.redirect_count(), 1);
    assert_eq!(r.url().to_string(), server.url("/b"));
    assert_eq!(&r.bytes().await.unwrap()[..], b"/b");
    let t = r.timings();
    let id = r.id();
    drop(r);

    let ns = rec.of(id);
    assert_eq!(
        names(&ns),
        [
            "HANDLE_CREATED",
            "CONNECTING_TO_SERVER",
            "CONNECTED_TO_SERVER",
            "CONNECTION_NEW",
            "SENDING_REQUEST",
            "REQUEST_SENT",
            "RECEIVING_RESPONSE",
            "FIRST_BYTE",
            "RESPONSE_RECEIVED",
            "REDIRECT",
            "CONNECTION_REUSED",
            "SENDING_REQUEST",
            "REQUEST_SENT",
            "RECEIVING_RESPONSE",
            "FIRST_BYTE",
            "RESPONSE_RECEIVED",
            "REQUEST_COMPLETE",
            "HANDLE_CLOSING",
        ]
    );
    assert_handle_rules(&ns, 3);
    assert_eq!(
        payload_of(&ns, Status::Redirect),
        Payload::Url(server.url("/b"))
    );
    // One pending operation (the send, redirect included): one completion.
    assert_eq!(completions(&ns), vec![Ok(())]);
    assert_eq!(server.accepted(), 1);
    assert!(t.redirect.is_some(), "{t:?}");
    assert_monotone(&t);
    server.stop().await;
}

#[tokio::test]
async fn intermediate_responses_are_notified() {
    let mut bytes = b"HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        .to_vec();
    bytes.extend_from_slice(HELLO);
    let server = Server::fixed(bytes).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/"), 4).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"hello");
    let id = r.id();
    drop(r);
    let ns = rec.of(id);
    assert_eq!(
        names(&ns),
        [
            "HANDLE_CREATED",
            "CONNECTING_TO_SERVER",
            "CONNECTED_TO_SERVER",
            "CONNECTION_NEW",
            "SENDING_REQUEST",
            "REQUEST_SENT",
            "RECEIVING_RESPONSE",
            "FIRST_BYTE",
            "RESPONSE_RECEIVED",
            "INTERMEDIATE_RESPONSE",
            "INTERMEDIATE_RESPONSE",
            "REQUEST_COMPLETE",
            "HANDLE_CLOSING",
        ]
    );
    let interim: Vec<Payload> = ns
        .iter()
        .filter(|n| n.status == Status::IntermediateResponse)
        .map(|n| n.payload.clone())
        .collect();
    assert_eq!(interim, [Payload::Status(100), Payload::Status(103)]);
    assert_handle_rules(&ns, 4);
    server.stop().await;
}

#[tokio::test]
async fn streaming_upload_completes_each_operation_once() {
    let server = Server::script(|req| {
        let echo = format!("{} {}", req.method, req.body.len());
        vec![Step::Write(response("200 OK", "", echo.as_bytes()))]
    })
    .await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.request("PUT", &server.url("/up"), 5).unwrap();
    let id = r.id();
    r.send_headers(Some(6)).await.unwrap();
    assert_eq!(completions(&rec.of(id)).len(), 1);
    assert_eq!(r.write(b"abc").await.unwrap(), 3);
    assert_eq!(r.write(b"def").await.unwrap(), 3);
    r.end_request().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..], b"PUT 6");
    drop(r);
    let ns = rec.of(id);
    assert_eq!(
        names(&ns),
        [
            "HANDLE_CREATED",
            "CONNECTING_TO_SERVER",
            "CONNECTED_TO_SERVER",
            "CONNECTION_NEW",
            "SENDING_REQUEST",
            "REQUEST_SENT",
            "REQUEST_COMPLETE",
            "REQUEST_SENT",
            "REQUEST_COMPLETE",
            "REQUEST_SENT",
            "REQUEST_COMPLETE",
            "RECEIVING_RESPONSE",
            "FIRST_BYTE",
            "RESPONSE_RECEIVED",
            "REQUEST_COMPLETE",
            "HANDLE_CLOSING",
        ]
    );
    assert_eq!(completions(&ns), vec![Ok(()); 4]);
    assert_handle_rules(&ns, 5);
    server.stop().await;
}

/// Reads satisfied from buffered bytes complete at once (no
/// REQUEST_COMPLETE); a read that has to wait is pending and completes once.
#[tokio::test]
async fn buffered_reads_complete_at_once_and_waiting_reads_once() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let server = Server::script(move |_| {
        let mut first = head(10);
        first.extend_from_slice(b"01234");
        vec![
            Step::Write(first),
            Step::Gate(g.clone()),
            Step::Write(b"56789".to_vec()),
        ]
    })
    .await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/"), 6).await.unwrap();
    let id = r.id();
    let done = |rec: &Recorder| rec.count(id, Status::RequestComplete);
    assert_eq!(done(&rec), 1);
    assert_eq!(r.content_length(), Some(10));

    // Buffered: at once, no completion notified.
    assert_eq!(r.data_available().await.unwrap(), 5);
    let mut buf = [0u8; 64];
    assert_eq!(r.read(&mut buf).await.unwrap(), 5);
    assert_eq!(&buf[..5], b"01234");
    assert_eq!(done(&rec), 1);
    // Nothing buffered: a no-wait read says so.
    assert_eq!(r.try_read(&mut buf).unwrap(), None);
    assert_eq!(done(&rec), 1);

    // Has to wait: pending, one REQUEST_COMPLETE.
    gate.notify_one();
    let n = r.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"56789");
    assert_eq!(done(&rec), 2);
    // The end was seen with those bytes: at once again.
    assert_eq!(r.read(&mut buf).await.unwrap(), 0);
    assert_eq!(r.try_read(&mut buf).unwrap(), Some(0));
    assert_eq!(done(&rec), 2);
    drop(r);

    let ns = rec.of(id);
    assert_eq!(completions(&ns), vec![Ok(()), Ok(())]);
    let n = names(&ns);
    assert_eq!(n[..FRESH.len() - 1], FRESH[..FRESH.len() - 1]);
    assert_eq!(
        n[FRESH.len() - 2..],
        [
            "REQUEST_COMPLETE",
            "RECEIVING_RESPONSE",
            "RESPONSE_RECEIVED",
            "REQUEST_COMPLETE",
            "HANDLE_CLOSING",
        ]
    );
    assert_handle_rules(&ns, 6);
    // Read to the end: pooled.
    assert_eq!(s.open_connections(), 1);
    server.stop().await;
}

#[tokio::test]
async fn event_stream_sees_what_the_callback_sees() {
    let server = Server::fixed(HELLO.to_vec()).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut events = s.events();
    for ctx in [10, 11] {
        let mut r = s.open_url(&server.url("/"), ctx).await.unwrap();
        r.bytes().await.unwrap();
    }
    let r = s.request("GET", &server.url("/"), 12).unwrap();
    drop(r);
    s.close();

    let mut streamed = Vec::new();
    while let Ok(n) = events.try_recv() {
        streamed.push(n);
    }
    let called = rec.all();
    // The stream starts after the session's HANDLE_CREATED.
    assert_eq!(called[0].status, Status::HandleCreated);
    assert_eq!(called[0].handle, s.id());
    assert_eq!(streamed, called[1..]);
    assert_eq!(streamed.len(), FRESH.len() + REUSED.len() + 2 + 1);
    assert_eq!(streamed.last().unwrap().status, Status::HandleClosing);
    assert_eq!(streamed.last().unwrap().handle, s.id());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_are_carried() {
    let server = Server::fixed(HELLO.to_vec()).await;
    let rec = Recorder::new();
    let s = Session::new(Config {
        context: 99,
        ..config(&rec, Timeouts::default())
    })
    .unwrap();
    // Two requests at once on two connections, each with its context.
    let (s1, s2) = (s.clone(), s.clone());
    let (u1, u2) = (server.url("/1"), server.url("/2"));
    let t1 = tokio::spawn(async move {
        let mut r = s1.open_url(&u1, 111).await.unwrap();
        r.bytes().await.unwrap();
        r.id()
    });
    let t2 = tokio::spawn(async move {
        let mut r = s2.open_url(&u2, 222).await.unwrap();
        r.bytes().await.unwrap();
        r.id()
    });
    let (id1, id2) = (t1.await.unwrap(), t2.await.unwrap());
    // The step-by-step API: a connect handle and a request on it.
    let c = s
        .connect(httpq_client::Scheme::Http, "127.0.0.1", server.port(), 5)
        .unwrap();
    let mut r = c.open_request("GET", "/3", 6).unwrap();
    r.send(None).await.unwrap();
    r.bytes().await.unwrap();
    let (cid, rid) = (c.id(), r.id());
    drop(r);
    drop(c);
    s.close();

    for (id, ctx) in [(id1, 111), (id2, 222), (cid, 5), (rid, 6), (s.id(), 99)] {
        let ns = rec.of(id);
        assert_handle_rules(&ns, ctx);
    }
    assert_eq!(rec.names(cid), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    assert_eq!(rec.of(rid)[0].payload, Payload::Parent(cid));
    assert_eq!(rec.of(cid)[0].payload, Payload::Parent(s.id()));
    // Nothing went to a handle the test does not know.
    let known = [id1, id2, cid, rid, s.id()];
    assert!(rec.all().iter().all(|n| known.contains(&n.handle)));
    server.stop().await;
}

/// A resolver that takes 50 ms, a server that waits 100 ms before the head
/// and 50 ms inside the body: each phase's timing reflects it.
#[tokio::test]
async fn timings_follow_the_phases() {
    let server = Server::script(|_| {
        let mut first = head(4);
        first.extend_from_slice(b"ab");
        vec![
            Step::Sleep(Duration::from_millis(100)),
            Step::Write(first),
            Step::Sleep(Duration::from_millis(50)),
            Step::Write(b"cd".to_vec()),
        ]
    })
    .await;
    let resolver = SlowResolver::new(Some(Duration::from_millis(50)), server.addr);
    let rec = Recorder::new();
    let s = Session::new(Config {
        resolver: Some(Arc::new(resolver.clone())),
        ..config(&rec, Timeouts::default())
    })
    .unwrap();
    let url = format!("http://timing.test:{}/", server.port());
    let mut r = s.open_url(&url, 8).await.unwrap();
    assert_eq!(&r.bytes().await.unwrap()[..], b"abcd");
    let t = r.timings();
    let id = r.id();
    drop(r);

    let ns = rec.of(id);
    assert_eq!(
        payload_of(&ns, Status::ResolvingName),
        Payload::Host("timing.test".into())
    );
    assert_eq!(
        payload_of(&ns, Status::NameResolved),
        Payload::Address(server.addr)
    );
    assert_eq!(
        resolver.started.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        resolver.abandoned.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_monotone(&t);
    let ms = Duration::from_millis;
    let lookup = t.name_lookup.unwrap();
    let (pre, first, total) = (
        t.pretransfer.unwrap(),
        t.first_byte.unwrap(),
        t.total.unwrap(),
    );
    assert!(lookup >= ms(50), "{t:?}");
    assert!(t.connect.unwrap() >= lookup);
    assert!(first - pre >= ms(100), "{t:?}");
    assert!(total - first >= ms(50), "{t:?}");
    // Notification times agree with the phases' order.
    let at = |s: Status| ns.iter().find(|n| n.status == s).unwrap().elapsed;
    assert!(at(Status::NameResolved) - at(Status::ResolvingName) >= ms(50));
    assert!(at(Status::ResponseReceived) - at(Status::RequestSent) >= ms(100));
    server.stop().await;
}
