//! Each client timeout, with short values against scripted servers: it
//! fires no earlier than its value and not much later, names itself in the
//! error (and in the REQUEST_COMPLETE of the failed operation), and leaves
//! no connection behind.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use httpq_client::{ClientError, Config, LowSpeed, RequestHandle, Session, TimeoutKind, Timeouts};
use support::*;
use tokio::time::Instant;

/// How late past its value a timeout may fire on a loaded machine.
const SLACK: Duration = Duration::from_secs(2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Fails the test rather than hanging when a timeout never fires.
async fn guard<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(8), f)
        .await
        .expect("the timeout never fired")
}

fn assert_fired(kind: TimeoutKind, err: ClientError, started: Instant, value: Duration) {
    let took = started.elapsed();
    assert_eq!(err, ClientError::Timeout(kind), "after {took:?}");
    assert!(
        took >= value,
        "{kind} timeout fired early: {took:?} < {value:?}"
    );
    assert!(
        took < value + SLACK,
        "{kind} timeout fired late: {took:?} (value {value:?})"
    );
}

/// The failed operation's REQUEST_COMPLETE names the timeout, and the
/// handle's notifications keep the rules once it is closed.
fn assert_notified(rec: &Recorder, id: u64, ctx: u64, kind: TimeoutKind) {
    let ns = rec.of(id);
    let done = completions(&ns);
    assert_eq!(
        done.last(),
        Some(&Err(ClientError::Timeout(kind))),
        "{:?}",
        names(&ns)
    );
    assert_handle_rules(&ns, ctx);
}

/// Reads the body until an error; panics if it ends cleanly.
async fn read_until_error(r: &mut RequestHandle) -> ClientError {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => panic!("the body ended without a timeout"),
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}

#[tokio::test]
async fn connect_timeout() {
    let target = Unaccepting::new();
    let rec = Recorder::new();
    let t = Timeouts {
        connect: Some(ms(200)),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let mut r = s.request("GET", &target.url("/"), 1).unwrap();
    let id = r.id();
    let started = Instant::now();
    let err = guard(r.send(None)).await.unwrap_err();
    assert_fired(TimeoutKind::Connect, err, started, ms(200));
    assert_eq!(s.open_connections(), 0);
    drop(r);
    assert_notified(&rec, id, 1, TimeoutKind::Connect);
    let n = rec.names(id);
    assert!(n.contains(&"CONNECTING_TO_SERVER"));
    assert!(!n.contains(&"CONNECTED_TO_SERVER"), "{n:?}");
    assert_eq!(s.open_connections(), 0);
}

#[tokio::test]
async fn resolve_timeout() {
    let resolver = SlowResolver::never();
    let rec = Recorder::new();
    let s = Session::new(Config {
        resolver: Some(Arc::new(resolver.clone())),
        ..config(
            &rec,
            Timeouts {
                resolve: Some(ms(150)),
                ..Timeouts::default()
            },
        )
    })
    .unwrap();
    let mut r = s.request("GET", "http://never.test/", 2).unwrap();
    let id = r.id();
    let started = Instant::now();
    let err = guard(r.send(None)).await.unwrap_err();
    assert_fired(TimeoutKind::Resolve, err, started, ms(150));
    // The lookup was abandoned, not left running.
    assert_eq!(resolver.started.load(Ordering::SeqCst), 1);
    assert_eq!(resolver.abandoned.load(Ordering::SeqCst), 1);
    assert_eq!(s.open_connections(), 0);
    drop(r);
    assert_notified(&rec, id, 2, TimeoutKind::Resolve);
    assert!(!rec.names(id).contains(&"NAME_RESOLVED"));
}

#[tokio::test]
async fn receive_timeout_before_the_head() {
    let server = Server::never_answers().await;
    let rec = Recorder::new();
    let t = Timeouts {
        receive: Some(ms(200)),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let mut r = s.request("GET", &server.url("/"), 3).unwrap();
    let id = r.id();
    let started = Instant::now();
    let err = guard(r.send(None)).await.unwrap_err();
    assert_fired(TimeoutKind::Receive, err, started, ms(200));
    assert_eq!(s.open_connections(), 0);
    // The socket is really closed: the server reads end of file.
    server.wait_eof().await;
    drop(r);
    assert_notified(&rec, id, 3, TimeoutKind::Receive);
    assert!(!rec.names(id).contains(&"FIRST_BYTE"));
    server.stop().await;
}

/// A request's own timeouts override the session's (WinInet's
/// InternetSetOption on a request handle).
#[tokio::test]
async fn a_request_can_have_timeouts_of_its_own() {
    let server = Server::never_answers().await;
    let rec = Recorder::new();
    let s = Session::new(config(&rec, Timeouts::default())).unwrap();
    let mut r = s.request("GET", &server.url("/"), 3).unwrap();
    assert_eq!(r.timeouts(), Timeouts::default());
    r.set_timeouts(Timeouts {
        receive: Some(ms(200)),
        ..Timeouts::default()
    });
    let started = Instant::now();
    let err = guard(r.send(None)).await.unwrap_err();
    assert_fired(TimeoutKind::Receive, err, started, ms(200));
    // Other requests of the session keep its timeouts.
    assert_eq!(
        s.request("GET", &server.url("/"), 4).unwrap().timeouts(),
        Timeouts::default()
    );
    server.stop().await;
}

#[tokio::test]
async fn receive_timeout_mid_body() {
    let server = Server::stalls_mid_body(1000, 500).await;
    let rec = Recorder::new();
    let t = Timeouts {
        receive: Some(ms(200)),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let mut r = guard(s.open_url(&server.url("/"), 4)).await.unwrap();
    let id = r.id();
    assert_eq!(r.content_length(), Some(1000));
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < 500 {
        got += r.read(&mut buf).await.unwrap();
    }
    assert_eq!(got, 500);
    let started = Instant::now();
    let err = guard(read_until_error(&mut r)).await;
    assert_fired(TimeoutKind::Receive, err, started, ms(200));
    // Closed at once, before the handle is: framing is lost.
    assert_eq!(s.open_connections(), 0);
    server.wait_eof().await;
    let n = rec.names(id);
    let tail = &n[n.len() - 3..];
    assert_eq!(
        tail,
        [
            "CLOSING_CONNECTION",
            "CONNECTION_CLOSED",
            "REQUEST_COMPLETE"
        ]
    );
    assert_eq!(
        completions(&rec.of(id)).last(),
        Some(&Err(ClientError::Timeout(TimeoutKind::Receive)))
    );
    // Reading on after the failure fails again at once (the rest of the
    // body is lost), and does not reopen anything.
    let again = tokio::time::timeout(ms(1000), r.read(&mut buf))
        .await
        .expect("a read after the failure waited");
    assert!(again.is_err(), "{again:?}");
    assert_eq!(s.open_connections(), 0);
    drop(r);
    assert_handle_rules(&rec.of(id), 4);
    server.stop().await;
}

#[tokio::test]
async fn low_speed_timeout() {
    // 1 byte every 50 ms: about 20 B/s against a 1000 B/s limit.
    let server = Server::drips(400, 1, ms(50)).await;
    let rec = Recorder::new();
    let window = ms(300);
    let t = Timeouts {
        low_speed: Some(LowSpeed {
            bytes_per_sec: 1000,
            window,
        }),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let started = Instant::now();
    let mut r = guard(s.open_url(&server.url("/"), 5)).await.unwrap();
    let id = r.id();
    let err = guard(read_until_error(&mut r)).await;
    assert_fired(TimeoutKind::LowSpeed, err, started, window);
    assert_eq!(s.open_connections(), 0);
    drop(r);
    assert_notified(&rec, id, 5, TimeoutKind::LowSpeed);
    server.stop().await;
}

#[tokio::test]
async fn low_speed_limit_spares_a_fast_enough_body() {
    // 200 bytes every 20 ms: about 10 kB/s, over a 1000 B/s limit.
    let server = Server::drips(4000, 200, ms(20)).await;
    let rec = Recorder::new();
    let t = Timeouts {
        low_speed: Some(LowSpeed {
            bytes_per_sec: 1000,
            window: ms(300),
        }),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let mut r = guard(s.open_url(&server.url("/"), 6)).await.unwrap();
    let body = guard(r.bytes()).await.unwrap();
    assert_eq!(body.len(), 4000);
    server.stop().await;
}

#[tokio::test]
async fn total_timeout() {
    // A steady body (100 bytes every 20 ms, so no receive or low-speed
    // trouble) that would take 2 s.
    let server = Server::drips(10_000, 100, ms(20)).await;
    let rec = Recorder::new();
    let t = Timeouts {
        receive: Some(ms(1000)),
        total: Some(ms(300)),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let started = Instant::now();
    let mut r = guard(s.open_url(&server.url("/"), 7)).await.unwrap();
    let id = r.id();
    let err = guard(read_until_error(&mut r)).await;
    assert_fired(TimeoutKind::Total, err, started, ms(300));
    assert_eq!(s.open_connections(), 0);
    drop(r);
    assert_notified(&rec, id, 7, TimeoutKind::Total);
    // Data did flow before the deadline.
    assert!(rec.count(id, httpq_client::Status::ResponseReceived) > 2);
    server.stop().await;
}

#[tokio::test]
async fn send_timeout() {
    let server = Server::never_reads().await;
    let rec = Recorder::new();
    let t = Timeouts {
        send: Some(ms(200)),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let mut r = s.request("POST", &server.url("/upload"), 8).unwrap();
    let id = r.id();
    // Far more than the socket buffers of both ends hold.
    let body = Bytes::from(vec![b'u'; 64 << 20]);
    let started = Instant::now();
    let err = guard(r.send(Some(body))).await.unwrap_err();
    assert_fired(TimeoutKind::Send, err, started, ms(200));
    assert_eq!(s.open_connections(), 0);
    drop(r);
    assert_notified(&rec, id, 8, TimeoutKind::Send);
    let n = rec.names(id);
    assert!(n.contains(&"SENDING_REQUEST"));
    assert!(!n.contains(&"REQUEST_SENT"), "{n:?}");
    server.stop().await;
}

#[tokio::test]
async fn send_timeout_on_a_streamed_upload() {
    let server = Server::never_reads().await;
    let rec = Recorder::new();
    let t = Timeouts {
        send: Some(ms(200)),
        ..Timeouts::default()
    };
    let s = Session::new(config(&rec, t)).unwrap();
    let mut r = s.request("PUT", &server.url("/upload"), 9).unwrap();
    let id = r.id();
    r.send_headers(None).await.unwrap();
    let piece = vec![b'p'; 1 << 20];
    let started = Instant::now();
    let err = guard(async {
        loop {
            if let Err(e) = r.write(&piece).await {
                return e;
            }
        }
    })
    .await;
    // Each write is a fresh send timeout: the one that stalls fires.
    assert_eq!(err, ClientError::Timeout(TimeoutKind::Send));
    assert!(started.elapsed() >= ms(200));
    drop(r);
    assert_eq!(s.open_connections(), 0);
    assert_notified(&rec, id, 9, TimeoutKind::Send);
    server.stop().await;
}
