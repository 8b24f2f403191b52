//! Regressions for bugs found in review: URL handling of non-ASCII and
//! unusual Locations, bodyless responses with a Content-Encoding, the
//! low-speed limit, waiting for a pool slot, re-sending a handle, framing
//! headers across a redirect, and the pool after a session is closed.

mod support_hostile;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use httpq_client::{
    ClientError, Config, LowSpeed, Notification, Session, Status, TimeoutKind, Timeouts, Url,
};
use support_hostile::{redirect, response, within, Action, Received, ScriptServer};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn session_with(f: impl FnOnce(&mut Config)) -> Session {
    let mut c = Config::default();
    f(&mut c);
    Session::new(c).unwrap()
}

fn err<T>(r: Result<T, ClientError>) -> ClientError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// Reads the body until an error; panics if it ends cleanly.
async fn read_until_error(r: &mut httpq_client::RequestHandle) -> ClientError {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) => panic!("the body ended without an error"),
            Ok(_) => {}
            Err(e) => return e,
        }
    }
}

// ------------------------------------------------------------------ URLs

#[tokio::test]
async fn a_relative_location_with_non_ascii_does_not_panic() {
    // "/abcde\u{e9}x": the 'é' straddles byte 7, where a scheme prefix check sliced.
    let server = ScriptServer::start(|r: &Received| {
        if r.target == "/" {
            vec![Action::Write(redirect(302, "/abcde\u{e9}x"))]
        } else {
            vec![Action::Write(response(200, &[], b"good"))]
        }
    })
    .await;
    let s = Session::new(Config::default()).unwrap();
    let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path_and_query(), "/abcde%C3%A9x");
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"good");
}

#[test]
fn urls_with_non_ascii_never_panic() {
    for s in [
        "abcde\u{e9}",
        "abcdef\u{e9}",
        "http://u%a\u{e9}@h/",
        "http://u:%\u{e9}\u{e9}@h/",
        "http://u:p%a\u{e9}@h/",
    ] {
        let _ = Url::parse(s);
    }
    assert_eq!(
        Url::parse("http://u%a\u{e9}@h/").unwrap().credentials(),
        Some(("u%a\u{e9}", ""))
    );
    let base = Url::parse("http://h/a/b").unwrap();
    for loc in [
        "abcde\u{e9}",
        "/abcde\u{e9}",
        "abcdef\u{e9}",
        "//u%a\u{e9}@h/",
    ] {
        let _ = base.join(loc);
    }
}

#[test]
fn relative_locations_may_carry_urls_and_fragments() {
    let base = Url::parse("http://h:81/a/b/c?q").unwrap();
    let cases = [
        (
            "/login?next=http://other/x",
            "http://h:81/login?next=http://other/x",
        ),
        ("x?u=https://e/", "http://h:81/a/b/x?u=https://e/"),
        ("#top", "http://h:81/a/b/c?q"),
        ("x#/../../y", "http://h:81/a/b/x"),
        ("?z#f", "http://h:81/a/b/c?z"),
    ];
    for (loc, want) in cases {
        assert_eq!(
            base.join(loc).map(|u| u.to_string()),
            Ok(want.to_string()),
            "{loc}"
        );
    }
    assert!(base.join("ftp://h/x").is_err());
}

// ------------------------------------------------------------------ bodyless responses

#[tokio::test]
async fn head_and_304_with_a_content_encoding_are_fine_when_decompressing() {
    let server = ScriptServer::start(|r: &Received| {
        let reply: &[u8] = match (r.method.as_str(), r.target.as_str()) {
            ("HEAD", _) => {
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\n"
            }
            (_, "/304") => b"HTTP/1.1 304 Not Modified\r\nContent-Encoding: br\r\n\r\n",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast",
        };
        vec![Action::Write(reply.to_vec())]
    })
    .await;
    let s = session_with(|c| c.decompress = true);
    let mut r = s.request("HEAD", &server.url("/"), 1).unwrap();
    within(r.send(None)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(within(r.bytes()).await.unwrap().is_empty());
    drop(r);
    let mut r = within(s.open_url(&server.url("/304"), 2)).await.unwrap();
    assert_eq!(r.status(), 304);
    assert!(within(r.bytes()).await.unwrap().is_empty());
    drop(r);
    let mut r = within(s.open_url(&server.url("/last"), 3)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"last");
    assert!(r.connection_reused());
    assert_eq!(server.connections(), 1);
}

// ------------------------------------------------------------------ low speed

#[tokio::test]
async fn the_receive_timeout_survives_low_speed_windows() {
    // 50 bytes after 100 ms, then nothing. The receive timeout (1 s, from
    // the second read at ~100 ms) must fire at ~1.1 s; the low-speed
    // window (700 ms) restarting at 700 ms must not push it back.
    let server = ScriptServer::start(|_: &Received| {
        vec![
            Action::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()),
            Action::Sleep(ms(100)),
            Action::Write(vec![b'x'; 50]),
            Action::Sleep(Duration::from_secs(20)),
        ]
    })
    .await;
    let s = session_with(|c| {
        c.timeouts = Timeouts {
            receive: Some(ms(1000)),
            low_speed: Some(LowSpeed {
                bytes_per_sec: 10,
                window: ms(700),
            }),
            ..Timeouts::default()
        }
    });
    let started = Instant::now();
    let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
    let err = within(read_until_error(&mut r)).await;
    let took = started.elapsed();
    assert_eq!(err, ClientError::Timeout(TimeoutKind::Receive), "{took:?}");
    assert!(took < ms(1350), "{took:?}");
}

#[tokio::test]
async fn time_the_caller_spends_not_reading_is_not_low_speed() {
    // The server sends the whole body 50 ms after the head; the caller
    // looks at the head for 600 ms (two low-speed windows) before reading.
    let server = ScriptServer::start(|_: &Received| {
        vec![
            Action::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n".to_vec()),
            Action::Sleep(ms(50)),
            Action::Write(vec![b'x'; 2000]),
        ]
    })
    .await;
    let s = session_with(|c| {
        c.timeouts.low_speed = Some(LowSpeed {
            bytes_per_sec: 1000,
            window: ms(300),
        })
    });
    let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
    tokio::time::sleep(ms(600)).await;
    let body = within(r.bytes()).await.unwrap();
    assert_eq!(body.len(), 2000);
}

// ------------------------------------------------------------------ pool

#[tokio::test]
async fn the_connect_timeout_covers_waiting_for_a_pool_slot() {
    let server = ScriptServer::fixed(response(200, &[], b"held")).await;
    let s = session_with(|c| {
        c.max_connections_per_server = 1;
        c.timeouts.connect = Some(ms(300));
    });
    // Holds the only slot: its body is never read.
    let _held = within(s.open_url(&server.url("/a"), 1)).await.unwrap();
    let started = Instant::now();
    let err = err(within(s.open_url(&server.url("/b"), 2)).await);
    assert_eq!(err, ClientError::Timeout(TimeoutKind::Connect));
    assert!(started.elapsed() >= ms(300));
}

#[tokio::test]
async fn sending_a_handle_again_does_not_wait_for_its_own_connection() {
    let server = ScriptServer::fixed(response(200, &[], b"good")).await;
    let s = session_with(|c| c.max_connections_per_server = 1);
    let mut r = s.request("GET", &server.url("/"), 1).unwrap();
    within(r.send(None)).await.unwrap();
    assert_eq!(r.status(), 200);
    // Resent (as HttpSendRequest may be) before the first body was read.
    within(r.send(None)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"good");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_closed_session_pools_nothing_from_a_redirect() {
    let server = ScriptServer::start(|r: &Received| {
        if r.target == "/" {
            vec![Action::Write(redirect(302, "/next"))]
        } else {
            vec![Action::Write(response(200, &[], b"good"))]
        }
    })
    .await;
    let s = Session::new(Config::default()).unwrap();
    let slot: Arc<OnceLock<Session>> = Arc::default();
    let sl = slot.clone();
    // Closes the session as the redirect's head arrives.
    s.set_callback(Some(Arc::new(move |n: &Notification| {
        if n.status == Status::ResponseReceived {
            if let Some(s) = sl.get() {
                s.close();
            }
        }
    })));
    let _ = slot.set(s.clone());
    let err = err(within(s.open_url(&server.url("/"), 1)).await);
    assert_eq!(err, ClientError::Cancelled);
    assert_eq!(s.open_connections(), 0, "a connection outlived the session");
    s.set_callback(None);
}

// ------------------------------------------------------------------ redirects

#[tokio::test]
async fn a_redirect_that_drops_the_body_drops_its_framing_headers() {
    let server = ScriptServer::start(|r: &Received| {
        if r.target == "/post" {
            vec![Action::Write(redirect(302, "/next"))]
        } else {
            vec![Action::Write(response(200, &[], b"good"))]
        }
    })
    .await;
    let s = Session::new(Config::default()).unwrap();
    // The caller set Content-Length itself (as WinInet code often does).
    let mut r = s.request("POST", &server.url("/post"), 1).unwrap();
    r.add_header("Content-Length", "5").unwrap();
    within(r.send(Some(Bytes::from_static(b"hello"))))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // And through the streamed-upload path.
    let mut r = s.request("POST", &server.url("/post"), 2).unwrap();
    r.add_header("Transfer-Encoding", "chunked").unwrap();
    within(r.send_headers(None)).await.unwrap();
    within(r.write(b"hello")).await.unwrap();
    within(r.end_request()).await.unwrap();
    assert_eq!(r.status(), 200);
    let got = server.received();
    let nexts: Vec<_> = got.iter().filter(|g| g.target == "/next").collect();
    assert_eq!(nexts.len(), 2);
    for g in nexts {
        assert_eq!(g.method, "GET");
        assert_eq!(g.header("content-length"), None, "{}", g.head);
        assert_eq!(g.header("transfer-encoding"), None, "{}", g.head);
    }
}

/// A pooled connection closed after a complete request: a GET is sent
/// again on a new connection, a POST is not (it may have been processed).
#[tokio::test]
async fn only_idempotent_requests_are_retried_after_a_silent_close() {
    for (method, retried) in [("GET", true), ("POST", false)] {
        // The second request on any connection is read, then the
        // connection closes without an answer.
        let server = ScriptServer::start(|r: &Received| {
            if r.seq == 1 {
                vec![Action::Close]
            } else {
                vec![Action::Write(response(200, &[], b"ok"))]
            }
        })
        .await;
        let s = Session::new(Config::default()).unwrap();
        let mut first = s.request("GET", &server.url("/a"), 1).unwrap();
        within(first.send(None)).await.unwrap();
        within(first.bytes()).await.unwrap();
        drop(first);
        let mut second = s.request(method, &server.url("/b"), 2).unwrap();
        let r = within(second.send(Some(Bytes::from_static(b"x")))).await;
        let seen: Vec<_> = server.received().iter().map(|r| r.method.clone()).collect();
        if retried {
            r.unwrap();
            assert_eq!(seen, ["GET", "GET", "GET"]);
            assert_eq!(server.connections(), 2);
        } else {
            assert!(matches!(r, Err(ClientError::Protocol(_))), "{r:?}");
            assert_eq!(seen, ["GET", "POST"]);
        }
    }
}
