//! The client against hostile and unusual servers (DESIGN.md §5): framing
//! rules, redirects, content decoding, the per-server connection limit, and
//! uploads to httpq's own server.

mod support_hostile;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use httpq_client::{ClientError, Config, Payload, Query, Session, Status, Violation};
use httpq_proto::Error as P;
use support_hostile::{
    recorder, redirect, response, within, Action, Loopback, Received, ScriptServer,
};
use tokio::sync::Notify;

fn session() -> Session {
    Session::new(Config::default()).unwrap()
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

fn parse_err(e: P) -> ClientError {
    ClientError::Protocol(Violation::Parse(e))
}

/// What one whole GET gave.
#[derive(Debug)]
struct Got {
    status: u16,
    body: Bytes,
    reused: bool,
}

async fn get(session: &Session, url: &str) -> Result<Got, ClientError> {
    within(async {
        let mut r = session.open_url(url, 1).await?;
        let status = r.status();
        let body = r.bytes().await?;
        Ok(Got {
            status,
            body,
            reused: r.connection_reused(),
        })
    })
    .await
}

/// A body of `n` bytes that is not all one value.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn good() -> Vec<u8> {
    response(200, &[], b"good")
}

/// A server answering the first request on its first connection with
/// `first` (then keeping the connection open) and every other one "good".
async fn first_then_good(first: Vec<u8>) -> ScriptServer {
    ScriptServer::start(move |r: &Received| {
        if r.conn == 0 && r.seq == 0 {
            vec![Action::Write(first.clone())]
        } else {
            vec![Action::Write(good())]
        }
    })
    .await
}

/// After a framing error the next request must go on a new connection and
/// the first connection must never carry a second request.
async fn next_request_is_on_a_new_connection(session: &Session, server: &ScriptServer) {
    let g = get(session, &server.url("/next")).await.unwrap();
    assert_eq!(
        (g.status, &g.body[..], g.reused),
        (200, &b"good"[..], false)
    );
    assert_eq!(server.connections(), 2, "a second connection was opened");
    let on_first: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.conn == 0)
        .collect();
    assert_eq!(
        on_first.len(),
        1,
        "the poisoned connection carried another request"
    );
}

// ------------------------------------------------------------------ framing

#[tokio::test]
async fn bytes_past_content_length_are_not_a_response() {
    // The junk arrives in the same write as the response.
    let mut first = response(200, &[], b"hello");
    first.extend_from_slice(&response(200, &[], b"evil!"));
    let server = first_then_good(first).await;
    let s = session();
    let g = get(&s, &server.url("/a")).await.unwrap();
    assert_eq!(&g.body[..], b"hello");
    next_request_is_on_a_new_connection(&s, &server).await;
}

#[tokio::test]
async fn junk_arriving_on_an_idle_connection_poisons_it() {
    // The junk comes after the client has read the whole response and
    // pooled the connection.
    let go = Arc::new(Notify::new());
    let written = Arc::new(Notify::new());
    let (g2, w2) = (go.clone(), written.clone());
    let server = ScriptServer::start(move |r: &Received| {
        if r.conn == 0 && r.seq == 0 {
            vec![
                Action::Write(response(200, &[], b"hello")),
                Action::Wait(g2.clone()),
                Action::Write(response(200, &[], b"evil!")),
                Action::Signal(w2.clone()),
            ]
        } else {
            vec![Action::Write(good())]
        }
    })
    .await;
    let s = session();
    let g = get(&s, &server.url("/a")).await.unwrap();
    assert_eq!(&g.body[..], b"hello");
    go.notify_one();
    within(written.notified()).await;
    next_request_is_on_a_new_connection(&s, &server).await;
}

#[tokio::test]
async fn a_short_body_is_a_violation() {
    let server = ScriptServer::start(|r: &Received| {
        let head_and_some: &[u8] = match r.target.as_str() {
            "/length" => b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
            _ => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nwor",
        };
        vec![Action::Write(head_and_some.to_vec()), Action::Close]
    })
    .await;
    let s = session();
    let mut r = within(s.open_url(&server.url("/length"), 1)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(10));
    assert_eq!(
        within(r.bytes()).await.unwrap_err(),
        ClientError::Protocol(Violation::ShortBody { received: 5 })
    );
    let e = err(get(&s, &server.url("/chunked")).await);
    assert!(
        matches!(e, ClientError::Protocol(Violation::ShortBody { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn conflicting_or_invalid_content_lengths_are_refused() {
    let cases: [(&[u8], ClientError); 4] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            parse_err(P::ConflictingContentLength),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
            parse_err(P::ConflictingContentLength),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
            parse_err(P::InvalidContentLength),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nhello",
            parse_err(P::InvalidContentLength),
        ),
    ];
    for (raw, want) in cases {
        let server = first_then_good(raw.to_vec()).await;
        let s = session();
        assert_eq!(
            err(get(&s, &server.url("/")).await),
            want,
            "{}",
            String::from_utf8_lossy(raw)
        );
        next_request_is_on_a_new_connection(&s, &server).await;
    }
    // Repeated identical values are one length (RFC 9110 §8.6).
    let server = ScriptServer::fixed(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello".to_vec(),
    )
    .await;
    let g = get(&session(), &server.url("/")).await.unwrap();
    assert_eq!(&g.body[..], b"hello");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let server = first_then_good(raw.to_vec()).await;
    let s = session();
    assert_eq!(
        err(get(&s, &server.url("/")).await),
        parse_err(P::ContentLengthWithTransferEncoding)
    );
    next_request_is_on_a_new_connection(&s, &server).await;
}

fn chunked_head() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()
}

/// A chunked response whose body is `body` (raw chunked framing).
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut r = chunked_head();
    r.extend_from_slice(body);
    r
}

#[tokio::test]
async fn bad_chunk_sizes_are_refused() {
    let cases: [(&[u8], P); 4] = [
        (b"zz\r\nhello\r\n0\r\n\r\n", P::InvalidChunkSize),
        (b"5g\r\nhello\r\n0\r\n\r\n", P::InvalidChunkSize),
        // 17 hex digits, even if the value is small.
        (
            b"00000000000000005\r\nhello\r\n0\r\n\r\n",
            P::InvalidChunkSize,
        ),
        (b"\r\nhello\r\n0\r\n\r\n", P::InvalidChunkSize),
    ];
    for (body, want) in cases {
        let server = first_then_good(chunked(body)).await;
        let s = session();
        let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            within(r.bytes()).await.unwrap_err(),
            parse_err(want),
            "{}",
            String::from_utf8_lossy(body)
        );
        drop(r);
        next_request_is_on_a_new_connection(&s, &server).await;
    }
    // Sixteen digits are still a chunk size.
    let server = ScriptServer::fixed(chunked(b"0000000000000005\r\nhello\r\n0\r\n\r\n")).await;
    let g = get(&session(), &server.url("/")).await.unwrap();
    assert_eq!(&g.body[..], b"hello");
}

#[tokio::test]
async fn chunk_data_must_end_with_crlf() {
    for body in [
        &b"5\r\nhelloXX\r\n0\r\n\r\n"[..],
        &b"5\r\nhello\n0\r\n\r\n"[..],
        &b"5\r\nhello0\r\n\r\n"[..],
    ] {
        let server = first_then_good(chunked(body)).await;
        let s = session();
        let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
        let e = within(r.bytes()).await.unwrap_err();
        assert_eq!(
            e,
            parse_err(P::InvalidChunkTerminator),
            "{}",
            String::from_utf8_lossy(body)
        );
        drop(r);
        next_request_is_on_a_new_connection(&s, &server).await;
    }
}

fn interim(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!("HTTP/1.1 103 Early Hints\r\nLink: </style{i}.css>; rel=preload\r\n\r\n")
                .as_bytes(),
        );
    }
    out
}

#[tokio::test]
async fn more_than_ten_interim_responses_are_refused() {
    // Ten are allowed, and each is notified.
    let mut ten = interim(10);
    ten.extend_from_slice(&response(200, &[], b"fine"));
    let server = ScriptServer::fixed(ten).await;
    let (cb, log) = recorder();
    let s = session_with(|c| c.callback = Some(cb));
    let g = get(&s, &server.url("/")).await.unwrap();
    assert_eq!((g.status, &g.body[..]), (200, &b"fine"[..]));
    let interim_seen = log
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.status == Status::IntermediateResponse && n.payload == Payload::Status(103))
        .count();
    assert_eq!(interim_seen, 10);

    // Eleven are a flood.
    let mut eleven = interim(11);
    eleven.extend_from_slice(&response(200, &[], b"fine"));
    let server = first_then_good(eleven).await;
    let s = session();
    assert_eq!(
        err(get(&s, &server.url("/")).await),
        parse_err(P::TooManyInformational)
    );
    next_request_is_on_a_new_connection(&s, &server).await;

    // An endless stream of them stops at the limit too.
    let server = ScriptServer::fixed(interim(1000)).await;
    assert_eq!(
        err(get(&session(), &server.url("/")).await),
        parse_err(P::TooManyInformational)
    );
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let head_of = |fields: usize| {
        let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..fields {
            h.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(1000)).as_bytes());
        }
        h.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        h
    };
    // About 14 KiB: under the 16 KiB default.
    let server = ScriptServer::fixed(head_of(14)).await;
    let g = get(&session(), &server.url("/")).await.unwrap();
    assert_eq!(&g.body[..], b"ok");
    // About 20 KiB: over it.
    let server = first_then_good(head_of(20)).await;
    let s = session();
    assert_eq!(
        err(get(&s, &server.url("/")).await),
        parse_err(P::HeadTooLarge)
    );
    next_request_is_on_a_new_connection(&s, &server).await;
    // A head that never ends is refused once past the limit (no hang).
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    endless.extend_from_slice(&vec![b'a'; 64 * 1024]);
    let server = ScriptServer::fixed(endless).await;
    assert_eq!(
        err(get(&session(), &server.url("/")).await),
        parse_err(P::HeadTooLarge)
    );
}

#[tokio::test]
async fn a_close_delimited_body_is_read_to_eof() {
    let body = pattern(300_000);
    let b2 = body.clone();
    let server = ScriptServer::start(move |_: &Received| {
        vec![
            Action::Write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec()),
            Action::Write(b2[..100_000].to_vec()),
            Action::Write(b2[100_000..].to_vec()),
            Action::Close,
        ]
    })
    .await;
    let s = session();
    let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
    assert_eq!(r.content_length(), None);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 7001];
    loop {
        let n = within(r.read(&mut buf)).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), body.len());
    assert!(got == body, "close-delimited body differs");
    // End of body is sticky.
    assert_eq!(within(r.read(&mut buf)).await.unwrap(), 0);
    drop(r);
    // The closed connection is not reused.
    let g = get(&s, &server.url("/again")).await.unwrap();
    assert!(!g.reused);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_chunked_body_with_extensions_and_trailers_reads_exactly() {
    let first = chunked(
        b"5;name=value\r\nhello\r\n6\r\n world\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 42\r\nX-Other: yes\r\n\r\n",
    );
    let server = ScriptServer::start(move |r: &Received| {
        if r.seq == 0 {
            vec![Action::Write(first.clone())]
        } else {
            vec![Action::Write(response(200, &[], b"second"))]
        }
    })
    .await;
    let s = session();
    let g = get(&s, &server.url("/")).await.unwrap();
    assert_eq!(&g.body[..], b"hello worldabcdefghijklmnopqrstuvwxyz");
    // Framing ended exactly after the trailers: the connection is reused
    // and the next response is read correctly.
    let g = get(&s, &server.url("/2")).await.unwrap();
    assert_eq!((&g.body[..], g.reused), (&b"second"[..], true));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_head_response_has_no_body() {
    let server = ScriptServer::start(|r: &Received| {
        if r.method == "HEAD" {
            // Content-Length describes the GET body; none follows.
            vec![Action::Write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n"
                    .to_vec(),
            )]
        } else {
            vec![Action::Write(response(200, &[], b"after"))]
        }
    })
    .await;
    let s = session();
    let mut r = s.request("HEAD", &server.url("/"), 1).unwrap();
    within(r.send(None)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.query_info(Query::ContentLength).as_deref(), Some("1000"));
    assert_eq!(within(r.bytes()).await.unwrap().len(), 0);
    drop(r);
    let g = get(&s, &server.url("/next")).await.unwrap();
    assert_eq!((&g.body[..], g.reused), (&b"after"[..], true));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn no_body_follows_204_or_304() {
    let server = ScriptServer::start(|r: &Received| {
        let reply: &[u8] = match r.target.as_str() {
            "/204" => b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
            // A 304's Content-Length is the representation's, not a body.
            "/304" => b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast",
        };
        vec![Action::Write(reply.to_vec())]
    })
    .await;
    let s = session();
    for (path, status) in [("/204", 204), ("/304", 304)] {
        let mut r = within(s.open_url(&server.url(path), 1)).await.unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(r.content_length(), Some(0));
        assert!(within(r.bytes()).await.unwrap().is_empty());
    }
    let g = get(&s, &server.url("/last")).await.unwrap();
    assert_eq!((&g.body[..], g.reused), (&b"last"[..], true));
    assert_eq!(server.connections(), 1);

    // Bytes after a 204 are not its body: they poison the connection.
    let server = first_then_good(b"HTTP/1.1 204 No Content\r\n\r\nhello".to_vec()).await;
    let s = session();
    let g = get(&s, &server.url("/")).await.unwrap();
    assert_eq!((g.status, g.body.len()), (204, 0));
    next_request_is_on_a_new_connection(&s, &server).await;
}

// ------------------------------------------------------------------ redirects

/// `/chainK/N` redirects to `/chainK/N+1` while N < K, then answers 200.
async fn chain_server() -> ScriptServer {
    ScriptServer::start(|r: &Received| {
        let mut parts = r.target.trim_start_matches("/chain").split('/');
        let k: u32 = parts.next().unwrap().parse().unwrap();
        let n: u32 = parts.next().unwrap().parse().unwrap();
        if n < k {
            vec![Action::Write(redirect(
                302,
                &format!("/chain{k}/{}", n + 1),
            ))]
        } else {
            vec![Action::Write(response(
                200,
                &[],
                format!("landed {n}").as_bytes(),
            ))]
        }
    })
    .await
}

#[tokio::test]
async fn ten_redirects_are_followed_and_eleven_are_too_many() {
    let server = chain_server().await;
    let s = session();
    let mut r = within(s.open_url(&server.url("/chain10/0"), 1))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.redirect_count(), 10);
    assert_eq!(r.url().to_string(), server.url("/chain10/10"));
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"landed 10");

    let e = err(within(s.open_url(&server.url("/chain11/0"), 1)).await);
    assert_eq!(e, ClientError::TooManyRedirects(10));
    let asked: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.target.starts_with("/chain11/"))
        .map(|r| r.target)
        .collect();
    assert_eq!(
        asked.len(),
        11,
        "the 11th redirect is not followed: {asked:?}"
    );
    assert!(!asked.contains(&"/chain11/11".to_string()));

    // A lower limit, and no following at all.
    let s = session_with(|c| c.max_redirects = 2);
    assert_eq!(
        err(within(s.open_url(&server.url("/chain3/0"), 1)).await),
        ClientError::TooManyRedirects(2)
    );
    let s = session_with(|c| c.follow_redirects = false);
    let r = within(s.open_url(&server.url("/chain3/0"), 1))
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.redirect_count(), 0);
    assert_eq!(
        r.query_info(Query::Header("location".into())).as_deref(),
        Some("/chain3/1")
    );
}

/// A server where `/from` answers `status` with Location `/to`, and `/to` 200.
async fn redirecting(status: u16) -> ScriptServer {
    ScriptServer::start(move |r: &Received| {
        if r.target == "/from" {
            vec![Action::Write(redirect(status, "/to"))]
        } else {
            vec![Action::Write(response(200, &[], b"arrived"))]
        }
    })
    .await
}

/// Sends `method /from` with a body and returns what the server got at `/to`.
async fn follow(status: u16, method: &str) -> (Received, Received) {
    let server = redirecting(status).await;
    let s = session();
    let mut r = s.request(method, &server.url("/from"), 1).unwrap();
    r.add_header("Content-Type", "text/plain").unwrap();
    within(r.send(Some(Bytes::from_static(b"the payload"))))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.redirect_count(), 1);
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"arrived");
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].method.as_str(), got[0].target.as_str()),
        (method, "/from")
    );
    assert_eq!(got[0].body, b"the payload");
    assert_eq!(got[1].target, "/to");
    (got[0].clone(), got[1].clone())
}

fn assert_plain_get(to: &Received, status: u16) {
    assert_eq!(to.method, "GET", "after {status}");
    assert!(to.body.is_empty(), "after {status}");
    assert_eq!(to.header("content-length"), None, "after {status}");
    assert_eq!(to.header("transfer-encoding"), None, "after {status}");
    assert_eq!(to.header("content-type"), None, "after {status}");
}

#[tokio::test]
async fn post_becomes_get_without_body_on_301_and_302() {
    for status in [301, 302] {
        let (_, to) = follow(status, "POST").await;
        assert_plain_get(&to, status);
    }
}

#[tokio::test]
async fn put_and_post_become_get_on_303() {
    for method in ["PUT", "POST"] {
        let (_, to) = follow(303, method).await;
        assert_plain_get(&to, 303);
    }
}

#[tokio::test]
async fn method_and_body_are_kept_on_307_and_308_and_for_put_on_301() {
    for (status, method) in [(307, "POST"), (308, "PUT"), (307, "DELETE"), (301, "PUT")] {
        let (_, to) = follow(status, method).await;
        assert_eq!(to.method, method, "{status}");
        assert_eq!(to.body, b"the payload", "{status} {method}");
        assert_eq!(to.header("content-length"), Some("11"));
        assert_eq!(to.header("content-type"), Some("text/plain"));
    }
}

#[tokio::test]
async fn a_streamed_upload_follows_only_redirects_that_drop_the_body() {
    let server = ScriptServer::start(|r: &Received| match r.target.as_str() {
        "/307" => vec![Action::Write(redirect(307, "/to"))],
        "/303" => vec![Action::Write(redirect(303, "/to"))],
        _ => vec![Action::Write(response(200, &[], b"arrived"))],
    })
    .await;
    let s = session();
    for (path, status, requests) in [("/307", 307, 1), ("/303", 200, 2)] {
        let before = server.received().len();
        let mut r = s.request("POST", &server.url(path), 1).unwrap();
        within(r.send_headers(None)).await.unwrap();
        within(r.write(b"streamed")).await.unwrap();
        within(r.end_request()).await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        within(r.bytes()).await.unwrap();
        let got = server.received();
        assert_eq!(got.len() - before, requests, "{path}");
        assert_eq!(got[before].body, b"streamed");
        assert!(got[before].chunked);
        if requests == 2 {
            assert_plain_get(&got[before + 1], 303);
        }
    }
}

#[tokio::test]
async fn authorization_stays_on_its_origin() {
    let other =
        ScriptServer::start(|_: &Received| vec![Action::Write(response(200, &[], b"other"))]).await;
    let other_url = other.url("/landing");
    let other_port = other.port;
    let home = ScriptServer::start(move |r: &Received| match r.target.as_str() {
        "/cross" => vec![Action::Write(redirect(302, &other_url))],
        // Same port, another host name: another origin too.
        "/by-name" => vec![Action::Write(redirect(
            301,
            &format!("http://localhost:{other_port}/by-name-landing"),
        ))],
        "/same" => vec![Action::Write(redirect(302, "/landing"))],
        _ => vec![Action::Write(response(200, &[], b"home"))],
    })
    .await;
    let (cb, log) = recorder();
    let s = session_with(|c| {
        c.callback = Some(cb);
        c.resolver = Some(Arc::new(Loopback));
    });
    let fetch = |path: &str| {
        let mut r = s.request("GET", &home.url(path), 7).unwrap();
        r.add_header("Authorization", "Bearer s3cret").unwrap();
        r.add_header("Cookie", "session=abc").unwrap();
        r
    };

    let mut r = fetch("/cross");
    within(r.send(None)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"other");
    assert_eq!(r.url().to_string(), other.url("/landing"));
    let at_home = home.received();
    assert_eq!(at_home[0].header("authorization"), Some("Bearer s3cret"));
    let landed = &other.received()[0];
    assert_eq!(landed.target, "/landing");
    assert_eq!(landed.header("authorization"), None);
    assert_eq!(landed.header("cookie"), None);
    let redirects: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.status == Status::Redirect)
        .map(|n| n.payload.clone())
        .collect();
    assert_eq!(redirects, vec![Payload::Url(other.url("/landing"))]);
    drop(r);

    let mut r = fetch("/by-name");
    within(r.send(None)).await.unwrap();
    assert_eq!(r.status(), 200);
    let landed = other.received().pop().unwrap();
    assert_eq!(landed.target, "/by-name-landing");
    assert_eq!(landed.header("authorization"), None);
    drop(r);

    let mut r = fetch("/same");
    within(r.send(None)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"home");
    let landed = home.received().pop().unwrap();
    assert_eq!(landed.target, "/landing");
    assert_eq!(landed.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(landed.header("cookie"), Some("session=abc"));
}

#[tokio::test]
async fn relative_locations_resolve_and_each_redirect_is_notified() {
    let server = ScriptServer::start(|r: &Received| {
        let port_free_next = match r.target.as_str() {
            "/a/b/c" => Some("../x/y?q=1".to_string()),
            "/a/x/y?q=1" => Some("z".to_string()),
            "/a/x/z" => Some("?only=query".to_string()),
            "/a/x/z?only=query" => Some("/abs/./p/../final#frag".to_string()),
            _ => None,
        };
        match port_free_next {
            Some(loc) => vec![Action::Write(redirect(302, &loc))],
            None => vec![Action::Write(response(200, &[], r.target.as_bytes()))],
        }
    })
    .await;
    let (cb, log) = recorder();
    let s = session_with(|c| c.callback = Some(cb));
    let mut r = within(s.open_url(&server.url("/a/b/c"), 5)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"/abs/final");
    assert_eq!(r.url().to_string(), server.url("/abs/final"));
    assert_eq!(r.redirect_count(), 4);
    let targets: Vec<_> = server.received().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/a/b/c",
            "/a/x/y?q=1",
            "/a/x/z",
            "/a/x/z?only=query",
            "/abs/final"
        ]
    );
    let notified: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n.status == Status::Redirect)
        .map(|n| (n.context, n.payload.clone()))
        .collect();
    let want: Vec<_> = targets[1..]
        .iter()
        .map(|t| (5, Payload::Url(server.url(t))))
        .collect();
    assert_eq!(notified, want);
    // Small redirect bodies are drained: every hop used the one connection.
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn unusable_locations() {
    let server = ScriptServer::start(|r: &Received| match r.target.as_str() {
        "/ftp" => vec![Action::Write(redirect(302, "ftp://example.com/file"))],
        // No Location: the 3xx is the answer.
        _ => vec![Action::Write(response(302, &[], b"nowhere"))],
    })
    .await;
    let s = session();
    assert_eq!(
        err(within(s.open_url(&server.url("/ftp"), 1)).await),
        ClientError::Protocol(Violation::BadRedirect)
    );
    let g = get(&s, &server.url("/none")).await.unwrap();
    assert_eq!((g.status, &g.body[..]), (302, &b"nowhere"[..]));
}

// ------------------------------------------------------------------ decoding

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn br(data: &[u8]) -> Vec<u8> {
    let encoder = brotlic::BrotliEncoderOptions::new()
        .quality(brotlic::Quality::new(5).unwrap())
        .build()
        .unwrap();
    let mut w = brotlic::CompressorWriter::with_encoder(encoder, Vec::new());
    w.write_all(data).unwrap();
    w.into_inner().unwrap()
}

fn text(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("line {i} of a compressible body\n").into_bytes())
        .collect()
}

/// Serves `encoded` with `Content-Encoding: coding`, Content-Length framed
/// or chunked in pieces.
fn encoded_response(coding: &str, encoded: &[u8], chunk: bool) -> Vec<u8> {
    if !chunk {
        return response(200, &[("Content-Encoding", coding)], encoded);
    }
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in encoded.chunks(1000) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn gzip_deflate_and_br_bodies_are_decoded() {
    let plain = text(5000);
    let cases = [
        ("gzip", gzip(&plain)),
        ("deflate", zlib(&plain)),
        ("deflate", raw_deflate(&plain)),
        ("br", br(&plain)),
    ];
    let s = session_with(|c| c.decompress = true);
    for (coding, encoded) in &cases {
        assert!(encoded.len() < plain.len() / 4);
        for chunk in [false, true] {
            let reply = encoded_response(coding, encoded, chunk);
            let server = ScriptServer::fixed(reply).await;
            let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
            assert_eq!(
                r.content_length(),
                None,
                "{coding}: the decoded length is unknown"
            );
            assert_eq!(
                r.query_info(Query::Header("content-encoding".into()))
                    .as_deref(),
                Some(*coding)
            );
            let body = within(r.bytes()).await.unwrap();
            assert_eq!(body.len(), plain.len(), "{coding} chunked={chunk}");
            assert!(
                body[..] == plain[..],
                "{coding} chunked={chunk}: decoded body differs"
            );
            assert_eq!(
                server.received()[0].header("accept-encoding"),
                Some("gzip, deflate, br")
            );
        }
    }
}

#[tokio::test]
async fn without_decompress_bodies_are_handed_over_as_sent() {
    let encoded = gzip(&text(100));
    let server = ScriptServer::fixed(encoded_response("gzip", &encoded, false)).await;
    let s = session();
    let mut r = within(s.open_url(&server.url("/"), 1)).await.unwrap();
    assert_eq!(r.content_length(), Some(encoded.len() as u64));
    assert_eq!(within(r.bytes()).await.unwrap(), encoded);
    assert_eq!(server.received()[0].header("accept-encoding"), None);
}

#[tokio::test]
async fn corrupt_compressed_bodies_are_decoding_violations() {
    let plain = text(2000);
    let gz = gzip(&plain);
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("gzip", b"this is not gzip at all".to_vec()),
        ("gzip", gz[..gz.len() - 10].to_vec()),
        ("gzip", flipped),
        ("deflate", vec![0xff; 64]),
        (
            "br",
            b"\xff\xff\xff\xff garbage that is not brotli".to_vec(),
        ),
        ("br", br(&plain)[..100].to_vec()),
    ];
    let s = session_with(|c| c.decompress = true);
    for (i, (coding, body)) in cases.into_iter().enumerate() {
        let server = ScriptServer::fixed(encoded_response(coding, &body, false)).await;
        let e = err(get(&s, &server.url("/")).await);
        let name = if coding == "gzip" {
            "gzip"
        } else if coding == "br" {
            "br"
        } else {
            "deflate"
        };
        assert_eq!(
            e,
            ClientError::Protocol(Violation::Decoding(name)),
            "case {i}"
        );
    }
}

#[tokio::test]
async fn the_decoded_size_cap_names_itself() {
    const CAP: usize = 64 * 1024;
    let zeros = vec![0u8; 10 << 20];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 64 * 1024);
    let exact = pattern(CAP);
    let server = ScriptServer::start({
        let (bomb, exact) = (gzip(&zeros), gzip(&exact));
        move |r: &Received| {
            let body = if r.target == "/bomb" { &bomb } else { &exact };
            vec![Action::Write(encoded_response("gzip", body, false))]
        }
    })
    .await;
    let s = session_with(|c| {
        c.decompress = true;
        c.max_decoded_bytes = CAP as u64;
    });
    assert_eq!(
        err(get(&s, &server.url("/bomb")).await),
        ClientError::LimitExceeded(httpq_client::BodyLimit::DecodedSize(CAP as u64))
    );
    // Exactly at the cap is allowed.
    let g = get(&s, &server.url("/exact")).await.unwrap();
    assert!(g.body[..] == exact[..]);
}

// ------------------------------------------------------------------ pool

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_server_limit_holds_under_concurrency() {
    for close in [false, true] {
        let server = ScriptServer::start(move |r: &Received| {
            let body = format!("answer to {}", r.target);
            let mut actions = vec![
                // A slow server (not synchronisation: only makes requests overlap).
                Action::Sleep(Duration::from_millis(50)),
            ];
            if close {
                actions.push(Action::Write(response(
                    200,
                    &[("Connection", "close")],
                    body.as_bytes(),
                )));
                actions.push(Action::Close);
            } else {
                actions.push(Action::Write(response(200, &[], body.as_bytes())));
            }
            actions
        })
        .await;
        let s = session_with(|c| c.max_connections_per_server = 2);
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let s = s.clone();
                let url = server.url(&format!("/{i}"));
                tokio::spawn(async move { get(&s, &url).await })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let g = t.await.unwrap().unwrap();
            assert_eq!(g.body, format!("answer to /{i}").as_bytes());
        }
        assert_eq!(server.received().len(), 5);
        assert!(
            server.max_live() <= 2,
            "close={close}: {} at once",
            server.max_live()
        );
        if !close {
            // Kept-alive connections stay open: both were opened side by side.
            assert_eq!(server.max_live(), 2, "both connections were used");
        }
        assert_eq!(server.connections(), if close { 5 } else { 2 });
    }
}

// ------------------------------------------------------------------ uploads

/// httpq's own server, answering every request with what it received:
/// the body, plus how it was framed in headers.
struct EchoServer {
    port: u16,
    _session: httpq_server::ServerSession,
    _group: httpq_server::UrlGroup,
    queue: httpq_server::RequestQueue,
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.queue.shutdown();
    }
}

async fn echo_server() -> EchoServer {
    use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("echo");
    let group = session.create_url_group();
    group.bind(&queue);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    group
        .add_url(&format!("http://127.0.0.1:{port}/"), 1)
        .unwrap();
    let q = queue.clone();
    tokio::spawn(async move {
        while let Ok(req) = q.receive().await {
            let q = q.clone();
            tokio::spawn(async move {
                let id = req.id();
                let mut body = Vec::new();
                loop {
                    match q.receive_body_chunk(id).await {
                        Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                        Ok(None) => break,
                        // Then no answer: the client's read fails the test.
                        Err(_) => return,
                    }
                }
                let header = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string()
                };
                let resp = Response::new(200)
                    .header("X-Seen-Method", req.method().as_str())
                    .header("X-Seen-TE", &header("transfer-encoding"))
                    .header("X-Seen-CL", &header("content-length"))
                    .body(body);
                let _ = q.send_response(id, resp, SendFlags::NONE).await;
            });
        }
    });
    EchoServer {
        port,
        _session: session,
        _group: group,
        queue,
    }
}

/// Sizes of the pieces an upload is written in.
const PIECES: [usize; 7] = [1, 7, 100, 4096, 16384, 3, 30_000];

/// Writes `data` in pieces of varying size.
async fn write_in_pieces(r: &mut httpq_client::RequestHandle, data: &[u8], sizes: &[usize]) {
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        assert_eq!(within(r.write(&rest[..n])).await.unwrap(), n);
        rest = &rest[n..];
        i += 1;
    }
}

/// Streams `data` chunked to `url` and checks the echo.
async fn chunked_upload(s: &Session, url: &str, data: &[u8], sizes: &[usize]) {
    let mut r = s.request("PUT", url, 1).unwrap();
    within(r.send_headers(None)).await.unwrap();
    write_in_pieces(&mut r, data, sizes).await;
    within(r.end_request()).await.unwrap();
    assert_eq!(r.status(), 200);
    let h = |n: &str| r.query_info(Query::Header(n.into()));
    assert_eq!(h("x-seen-method").as_deref(), Some("PUT"));
    assert_eq!(h("x-seen-te").as_deref(), Some("chunked"));
    assert_eq!(h("x-seen-cl").as_deref(), Some("-"));
    let back = within(r.bytes()).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back[..] == data[..], "the echoed body differs");
}

/// Uploads `data` with a Content-Length, streamed then in one piece, and
/// checks the echoes; then checks that writing more or less than announced
/// is refused.
async fn length_uploads(s: &Session, url: &str, data: &[u8], sizes: &[usize]) {
    let mut r = s.request("POST", url, 1).unwrap();
    within(r.send_headers(Some(data.len() as u64)))
        .await
        .unwrap();
    write_in_pieces(&mut r, data, sizes).await;
    within(r.end_request()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.query_info(Query::Header("x-seen-te".into())).as_deref(),
        Some("-")
    );
    assert_eq!(
        r.query_info(Query::Header("x-seen-cl".into())),
        Some(data.len().to_string())
    );
    let back = within(r.bytes()).await.unwrap();
    assert!(back[..] == data[..], "the echoed body differs");
    drop(r);

    let mut r = s.request("POST", url, 2).unwrap();
    within(r.send(Some(Bytes::from(data.to_vec()))))
        .await
        .unwrap();
    assert_eq!(
        r.query_info(Query::Header("x-seen-cl".into())),
        Some(data.len().to_string())
    );
    let back = within(r.bytes()).await.unwrap();
    assert!(back[..] == data[..], "the echoed body differs");
    assert!(r.connection_reused());
    drop(r);

    let mut r = s.request("POST", url, 3).unwrap();
    within(r.send_headers(Some(4))).await.unwrap();
    assert!(matches!(
        within(r.write(b"12345")).await,
        Err(ClientError::InvalidRequest(_))
    ));
    let mut r = s.request("POST", url, 4).unwrap();
    within(r.send_headers(Some(4))).await.unwrap();
    within(r.write(b"123")).await.unwrap();
    assert!(matches!(
        within(r.end_request()).await,
        Err(ClientError::InvalidRequest(_))
    ));
}

// Small bodies here; `large_uploads_to_httpq_server` goes past the server's
// 64 KiB request-body pipe.

#[tokio::test]
async fn a_chunked_streaming_upload_arrives_intact_at_httpq_server() {
    let server = echo_server().await;
    let url = format!("http://127.0.0.1:{}/up", server.port);
    chunked_upload(&session(), &url, &pattern(60_003), &PIECES).await;
}

#[tokio::test]
async fn content_length_uploads_arrive_intact_at_httpq_server() {
    let server = echo_server().await;
    let url = format!("http://127.0.0.1:{}/up", server.port);
    length_uploads(&session(), &url, &pattern(60_001), &PIECES).await;
}

#[tokio::test]
async fn large_uploads_to_httpq_server() {
    large_uploads_to_httpq_server_body().await;
}

/// The same with the server's connection tasks and the client on two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_uploads_to_httpq_server_on_two_threads() {
    large_uploads_to_httpq_server_body().await;
}

async fn large_uploads_to_httpq_server_body() {
    let server = echo_server().await;
    let url = format!("http://127.0.0.1:{}/up", server.port);
    let sizes = [1, 7, 100, 4096, 65536, 3, 200_000];
    chunked_upload(&session(), &url, &pattern(1_000_003), &sizes).await;
    length_uploads(&session(), &url, &pattern(777_777), &sizes).await;
}

/// A scripted server echoing every request's de-chunked body, with how it
/// was framed, as the echo server above does.
async fn script_echo() -> ScriptServer {
    ScriptServer::start(|r: &Received| {
        let te = r.header("transfer-encoding").unwrap_or("-").to_string();
        let cl = r.header("content-length").unwrap_or("-").to_string();
        vec![Action::Write(response(
            200,
            &[
                ("X-Seen-Method", &r.method),
                ("X-Seen-TE", &te),
                ("X-Seen-CL", &cl),
            ],
            &r.body,
        ))]
    })
    .await
}

#[tokio::test]
async fn large_uploads_arrive_intact() {
    let server = script_echo().await;
    let sizes = [1, 7, 100, 4096, 65536, 3, 200_000];
    chunked_upload(&session(), &server.url("/up"), &pattern(1_000_003), &sizes).await;
    length_uploads(&session(), &server.url("/up"), &pattern(777_777), &sizes).await;
}

/// Answers every name with the loopback, and remembers the names asked.
#[derive(Default)]
struct NamesAsked(std::sync::Mutex<Vec<String>>);

impl httpq_client::Resolver for NamesAsked {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>> + Send>,
    > {
        self.0.lock().unwrap().push(host.to_string());
        Box::pin(async move { Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))]) })
    }
}

/// An international host name goes out as punycode everywhere: to the
/// resolver, in Host, and in a redirect's Location resolved against it.
#[tokio::test]
async fn an_idn_host_is_resolved_and_sent_as_punycode() {
    let server = ScriptServer::start(|r: &Received| match r.target.as_str() {
        "/start" => vec![Action::Write(redirect(302, "/b%C3%BCcher"))],
        _ => vec![Action::Write(response(200, &[], b"ok"))],
    })
    .await;
    let names = Arc::new(NamesAsked::default());
    let s = session_with(|c| {
        c.resolver = Some(names.clone());
        c.follow_redirects = true;
    });
    let url = format!("http://Bücher.example:{}/start", server.port);
    let mut r = s.request("GET", &url, 3).unwrap();
    within(r.send(None)).await.unwrap();
    assert_eq!(&within(r.bytes()).await.unwrap()[..], b"ok");
    let punycode = format!("xn--bcher-kva.example:{}", server.port);
    assert_eq!(
        r.url().to_string(),
        format!("http://{punycode}/b%C3%BCcher")
    );
    let got = server.received();
    assert_eq!(got.len(), 2);
    for req in &got {
        let host: Vec<_> = req.headers.iter().filter(|(k, _)| k == "host").collect();
        assert_eq!(
            host,
            [&("host".to_string(), punycode.clone())],
            "{}",
            req.head
        );
    }
    assert_eq!(names.0.lock().unwrap()[0], "xn--bcher-kva.example");
}
