//! What a session shows of itself: metrics that equal the traffic sent,
//! the service state with a held request's connection, recent
//! disconnects, and an access log line for every response.

mod common;

use std::time::Duration;

use common::{get, Server, LIMIT, UNSET};
use httpq_server::{AccessLog, DisconnectReason, Properties, Response, SendFlags, Timeouts};

/// Answers every request: `/missing` 404, a POST 405, else 200 "hello".
fn answer_all(s: &Server) {
    let q = s.queue.clone();
    tokio::spawn(async move {
        while let Ok(req) = q.receive().await {
            let resp = if req.method() == http::Method::POST {
                Response::new(405)
            } else if req.path() == "/missing" {
                Response::new(404).body("no")
            } else {
                Response::new(200).body("hello")
            };
            let _ = q.send_response(req.id(), resp, SendFlags::NONE).await;
        }
    });
}

/// The metrics once `done` holds of them (a response is counted just
/// after its last byte is written, so the client can see it first).
async fn metrics_when(
    s: &Server,
    done: impl Fn(&httpq_server::MetricsSnapshot) -> bool,
) -> httpq_server::MetricsSnapshot {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let m = s.session.metrics();
        if done(&m) {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {m:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn count(m: &httpq_server::MetricsSnapshot, method: &str, class: &str) -> u64 {
    m.requests
        .iter()
        .find(|r| r.method == method && r.class == class)
        .map_or(0, |r| r.count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_each_response_by_method_class_and_duration() {
    let s = Server::start(Properties {
        workers: 2,
        ..Properties::default()
    });
    answer_all(&s);
    let m0 = s.session.metrics();
    assert_eq!(
        m0.timeouts.iter().map(|t| t.0).collect::<Vec<_>>(),
        [
            "entity_body",
            "drain_entity_body",
            "request_queue",
            "idle_connection",
            "header_wait",
            "min_send_rate"
        ],
        "all six from the start"
    );
    assert!(m0.timeouts.iter().all(|t| t.1 == 0));
    assert!(m0.requests.is_empty());
    let mut c = s.connect().await;
    for _ in 0..7 {
        c.send(&get("/ok")).await;
        assert_eq!(c.response().await.unwrap().status, 200);
    }
    for _ in 0..3 {
        c.send(&get("/missing")).await;
        assert_eq!(c.response().await.unwrap().status, 404);
    }
    for _ in 0..2 {
        c.send(b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
            .await;
        assert_eq!(c.response().await.unwrap().status, 405);
    }
    c.send(b"HEAD /ok HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(
        c.response_to(&http::Method::HEAD).await.unwrap().status,
        200
    );
    // A malformed head: answered 400 by the server itself, and closed.
    let mut bad = s.connect().await;
    bad.send(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
        .await;
    assert_eq!(bad.response().await.unwrap().status, 400);
    let m = metrics_when(&s, |m| {
        m.duration.count == 14 && m.counters.responses_sent == 14
    })
    .await;
    assert_eq!(count(&m, "GET", "2xx"), 7);
    assert_eq!(count(&m, "GET", "4xx"), 3);
    assert_eq!(count(&m, "POST", "4xx"), 2);
    assert_eq!(count(&m, "HEAD", "2xx"), 1);
    assert_eq!(count(&m, "other", "4xx"), 1, "the malformed head");
    assert_eq!(m.requests.iter().map(|r| r.count).sum::<u64>(), 14);
    assert_eq!(m.duration.counts.len(), m.duration.bounds.len() + 1);
    assert_eq!(m.duration.counts.iter().sum::<u64>(), 14);
    assert!(m.duration.sum_seconds > 0.0);
    // 7 × "hello" + 3 × "no" + the 400's reason; HEAD sends no body.
    let reason = m.response_body_bytes - 7 * 5 - 3 * 2;
    assert!(reason > 0 && reason < 100, "{}", m.response_body_bytes);
    assert_eq!(m.counters.responses_sent, 14);
    assert_eq!(m.in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_shows_a_held_requests_connection_groups_and_queues() {
    let s = Server::start(Properties {
        workers: 1,
        ..Properties::default()
    });
    s.group.set_timeouts(Timeouts {
        entity_body: Duration::from_secs(2),
        ..UNSET
    });
    let mut c = s.connect().await;
    let peer = c.stream.local_addr().unwrap();
    c.send(&get("/held/here?x=1")).await;
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    let st = s.session.state(true);
    let conn = st
        .connections
        .iter()
        .find(|c| c.peer == peer)
        .expect("the client's connection");
    assert_eq!(conn.id, req.connection_id());
    assert_eq!(
        (conn.state, conn.protocol, conn.in_flight),
        ("active", "HTTP/1.1", 1)
    );
    let cur = conn.current_request.as_ref().expect("a current request");
    assert_eq!(
        (cur.id, cur.method.as_str(), cur.path.as_str()),
        (req.id(), "GET", "/held/here")
    );
    let group = &st.url_groups[0];
    assert_eq!(
        group.prefixes[0].url,
        format!("http://127.0.0.1:{}/", s.port)
    );
    assert_eq!(group.prefixes[0].context, 1);
    assert!(group.own_timeouts);
    assert_eq!(group.timeouts.entity_body, Duration::from_secs(2));
    assert_eq!(
        group.timeouts.header_wait,
        Duration::from_secs(120),
        "the session's"
    );
    assert_eq!(group.queue.as_deref(), Some("test"));
    let q = &st.request_queues[0];
    assert_eq!((q.name.as_str(), q.length, q.in_flight), ("test", 0, 1));
    assert_eq!(st.session.workers, 1);
    assert!(st.session.listening.iter().any(|a| a.port() == s.port));
    assert_eq!(s.session.metrics().in_flight, 1);
    // Without connections: no per-connection walk.
    let light = s.session.state(false);
    assert!(light.connections.is_empty());
    assert_eq!(light.url_groups.len(), 1);

    // A waiting consumer is counted; once answered, the connection is idle.
    let q2 = s.queue.clone();
    let waiter = tokio::spawn(async move { q2.receive().await.map(|r| r.id()) });
    let deadline = tokio::time::Instant::now() + LIMIT;
    while s.session.state(false).request_queues[0].consumers != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer never counted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.queue
        .send_response(req.id(), Response::new(204), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().status, 204);
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let st = s.session.state(true);
        let conn = st.connections.iter().find(|c| c.peer == peer).unwrap();
        if conn.state == "idle" {
            assert!(conn.current_request.is_none());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never idle");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    waiter.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_with_a_request_held_is_a_recent_disconnect() {
    let s = Server::start(Properties {
        workers: 1,
        ..Properties::default()
    });
    let c = s.connect().await;
    let peer = c.stream.local_addr().unwrap();
    let mut c = c;
    c.send(&get("/slow/work?ms=100")).await;
    let req = s.queue.receive().await.unwrap();
    c.reset();
    let reason = tokio::time::timeout(LIMIT, req.disconnected())
        .await
        .unwrap();
    assert_eq!(reason, DisconnectReason::Reset);
    let st = s.session.state(false);
    let d = &st.recent_disconnects[0];
    assert_eq!(
        (d.connection_id, d.peer, d.path.as_deref(), d.reason),
        (
            req.connection_id(),
            peer,
            Some("/slow/work"),
            DisconnectReason::Reset
        )
    );
    let m = s.session.metrics();
    let reset = m.disconnects.iter().find(|d| d.0 == "reset").unwrap().1;
    assert_eq!(reset, 1);
    assert_eq!(m.disconnects.len(), 6, "every reason present");
}

/// A file in a fresh temporary directory.
fn temp_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("httpq-observe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_one_combined_line_per_response() {
    let s = Server::start(Properties {
        workers: 2,
        ..Properties::default()
    });
    let path = temp_file("access.log");
    let log = AccessLog::new(std::fs::File::create(&path).unwrap());
    s.session.set_access_log(Some(&log));
    // Record the ids the application saw, in order.
    let q = s.queue.clone();
    let (ids_tx, mut ids) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(req) = q.receive().await {
            let _ = ids_tx.send(req.id());
            let body = if req.method() == http::Method::HEAD {
                ""
            } else {
                "0123456789"
            };
            let _ = q
                .send_response(req.id(), Response::new(200).body(body), SendFlags::NONE)
                .await;
        }
    });
    let mut c = s.connect().await;
    let pipelined = [
        get("/a"),
        b"GET /b?q=\"x\" HTTP/1.1\r\nHost: a\r\nReferer: http://r/\r\nUser-Agent: t/1\r\n\r\n"
            .to_vec(),
        b"HEAD /c HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
    ]
    .concat();
    c.send(&pipelined).await;
    c.response().await.unwrap();
    c.response().await.unwrap();
    c.response_to(&http::Method::HEAD).await.unwrap();
    let mut bad = s.connect().await;
    bad.send(b"BAD\x01 / HTTP/1.1\r\n\r\n").await;
    assert_eq!(bad.response().await.unwrap().status, 400);
    metrics_when(&s, |m| m.counters.responses_sent == 4).await;
    log.flush();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let ids: Vec<u64> = (0..3).map(|_| ids.try_recv().unwrap()).collect();
    let ok = |l: &str, request: &str, status: &str, tail: &str| {
        assert!(l.starts_with("127.0.0.1 - - ["), "{l}");
        let (_, rest) = l.split_once("] \"").unwrap();
        assert!(rest.starts_with(&format!("{request}\" {status} ")), "{l}");
        assert!(l.ends_with(tail), "{l}");
    };
    let mine: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.contains("\"-\" 400"))
        .collect();
    ok(
        mine[0],
        "GET /a HTTP/1.1",
        "200",
        &format!("10 \"-\" \"-\" {}", ids[0]),
    );
    ok(
        mine[1],
        "GET /b?q=\\x22x\\x22 HTTP/1.1",
        "200",
        &format!("10 \"http://r/\" \"t/1\" {}", ids[1]),
    );
    ok(
        mine[2],
        "HEAD /c HTTP/1.1",
        "200",
        &format!("0 \"-\" \"-\" {}", ids[2]),
    );
    let badline = lines
        .iter()
        .find(|l| l.contains("\"-\" 400"))
        .expect("the 400's line");
    assert!(badline.contains("] \"-\" 400 "), "{badline}");
    // The time field: [dd/Mon/yyyy:hh:mm:ss +0000].
    let time = mine[0]
        .split_once('[')
        .unwrap()
        .1
        .split_once(']')
        .unwrap()
        .0;
    assert_eq!(time.len(), "02/Dec/2026:07:30:00 +0000".len(), "{time}");
    assert!(time.ends_with(" +0000"));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_are_counted_logged_and_their_resets_recorded() {
    let s = Server::start(Properties {
        workers: 1,
        ..Properties::default()
    });
    let path = temp_file("h2.log");
    let log = AccessLog::new(std::fs::File::create(&path).unwrap());
    s.session.set_access_log(Some(&log));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let peer = tcp.local_addr().unwrap();
    let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", s.port);
    let req = |p: &str| http::Request::get(url(p)).body(()).unwrap();
    // One answered stream.
    let (resp, _) = send.send_request(req("/one"), true).unwrap();
    let held = s.queue.receive().await.unwrap();
    s.queue
        .send_response(
            held.id(),
            Response::new(200).body("h2 body"),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    assert_eq!(resp.await.unwrap().status(), 200);
    // One the client resets while it is held.
    let (_, mut stream) = send.send_request(req("/reset/me"), true).unwrap();
    let held = s.queue.receive().await.unwrap();
    stream.send_reset(h2::Reason::CANCEL);
    let reason = tokio::time::timeout(LIMIT, held.disconnected())
        .await
        .unwrap();
    assert_eq!(reason, DisconnectReason::StreamReset(8));
    let m = metrics_when(&s, |m| m.counters.h2_resets == 1 && m.duration.count == 1).await;
    assert_eq!(count(&m, "GET", "2xx"), 1);
    assert_eq!(m.response_body_bytes, 7);
    let resets = m
        .disconnects
        .iter()
        .find(|d| d.0 == "stream_reset")
        .unwrap()
        .1;
    assert_eq!(resets, 1);
    let d = &s.session.state(false).recent_disconnects[0];
    assert_eq!(
        (d.peer, d.path.as_deref(), d.reason),
        (peer, Some("/reset/me"), DisconnectReason::StreamReset(8))
    );
    let st = s.session.state(true);
    let conn = st.connections.iter().find(|c| c.peer == peer).unwrap();
    assert_eq!(conn.protocol, "HTTP/2");
    log.flush();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "the reset stream had no response: {text}");
    assert!(lines[0].contains("\"GET /one HTTP/2.0\" 200 7 "), "{text}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
