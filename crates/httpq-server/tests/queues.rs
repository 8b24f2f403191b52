//! Request queues over real sockets: the length limit and the three
//! overflow policies, the RequestQueue timeout (session and URL-group
//! values), many consumers on one queue (tasks and plain threads), the
//! connection limit, and the counters.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, get, Client, Resp, Server, LIMIT, UNSET};
use httpq_server::{
    OverflowPolicy, Properties, RequestQueue, Response, SendFlags, ServerSession, Timeouts,
};
use tokio::sync::mpsc;

fn with_timeouts(t: Timeouts) -> Properties {
    Properties {
        timeouts: t,
        ..Properties::default()
    }
}

/// Sends `GET /n` on `n` fresh connections at once; each connection's
/// response (or `None` if it closed without one) arrives on the channel as
/// `(n, response, client)`.
async fn burst(port: u16, n: usize) -> mpsc::UnboundedReceiver<(usize, Option<Resp>, Client)> {
    let (tx, rx) = mpsc::unbounded_channel();
    for i in 0..n {
        let mut c = Client::connect(port).await;
        let tx = tx.clone();
        tokio::spawn(async move {
            c.send(&get(&format!("/{i}"))).await;
            let r = c.response().await;
            let _ = tx.send((i, r, c));
        });
    }
    rx
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("in time")
        .expect("sender alive")
}

/// Limit 1, `n` requests on `n` connections, nobody receiving: `n - 1` are
/// refused; returns the refusals, then answers the one queued request and
/// checks it succeeds.
async fn overflow(s: &Server, n: usize) -> Vec<(Option<Resp>, Client)> {
    s.queue.set_limit(1);
    let mut rx = burst(s.port, n).await;
    let mut refused = Vec::new();
    for _ in 0..n - 1 {
        let (_, r, c) = next(&mut rx).await;
        refused.push((r, c));
    }
    let req = s.queue.try_receive().unwrap().expect("one request queued");
    assert!(s.queue.try_receive().unwrap().is_none(), "only one");
    s.queue
        .send_response(req.id(), Response::new(200).body("kept"), SendFlags::NONE)
        .await
        .unwrap();
    let (i, r, _) = next(&mut rx).await;
    let r = r.expect("the queued request is answered");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"kept"[..]));
    assert_eq!(req.url().path, format!("/{i}"));
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_503_and_closes_by_default() {
    let s = Server::start(Properties::default());
    for (r, mut c) in overflow(&s, 3).await {
        let r = r.expect("a 503 response");
        assert_eq!(r.status, 503);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed().await, "the connection closes after the 503");
    }
    let n = s.session.counters();
    assert_eq!(n.queue_rejections, 2);
    assert_eq!(
        n.requests_abandoned, 0,
        "refused requests were never handed out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_with_reset_policy_resets_without_a_response() {
    let s = Server::start(Properties::default());
    s.queue.set_overflow_policy(OverflowPolicy::Reset);
    for (r, mut c) in overflow(&s, 3).await {
        assert!(r.is_none(), "no response, just the end: {r:?}");
        assert!(c.closed().await);
    }
    let n = s.session.counters();
    assert_eq!(n.queue_rejections, 2);
    assert_eq!(
        n.requests_abandoned, 0,
        "refused requests were never handed out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_with_reason_answers_503_with_a_reason_and_keeps_the_connection() {
    let s = Server::start(Properties::default());
    s.queue
        .set_overflow_policy(OverflowPolicy::ServiceUnavailableWithReason);
    let refused = overflow(&s, 2).await;
    let (r, mut c) = refused.into_iter().next().unwrap();
    let r = r.expect("a 503 response");
    assert_eq!(r.status, 503);
    assert_ne!(r.header("connection"), Some("close"));
    let reason = String::from_utf8(r.body).unwrap();
    assert!(reason.contains("full"), "{reason:?}");
    // The queue has room again: the same connection is served.
    c.send(&get("/again")).await;
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.url().path, "/again");
    s.queue
        .send_response(req.id(), Response::new(200).body("ok"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"ok");
    assert_eq!(s.session.counters().queue_rejections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_down_queue_refuses_new_requests() {
    let s = Server::start(Properties::default());
    s.queue.shutdown();
    let mut c = s.connect().await;
    c.send(&get("/late")).await;
    assert_eq!(c.response().await.unwrap().status, 503);
    assert!(c.closed().await);
    assert_eq!(s.session.counters().queue_rejections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_queue_timeout_answers_503() {
    let t = Timeouts {
        request_queue: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let s = Server::start(with_timeouts(t));
    let mut c = s.connect().await;
    let started = Instant::now();
    c.send(&get("/unreceived")).await;
    let r = c.response().await.expect("answered by the server");
    let elapsed = started.elapsed();
    assert_eq!(r.status, 503);
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(s.session.counters().timeouts, 1);
    assert!(s.queue.is_empty(), "the expired request left the queue");
    assert!(s.queue.try_receive().unwrap().is_none());
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed().await, "the connection ends with the timeout");
    // A request that is received in time is not affected, however long the
    // application then takes.
    let mut c = s.connect().await;
    c.send(&get("/received")).await;
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    let late = tokio::time::timeout(Duration::from_millis(600), c.response()).await;
    assert!(late.is_err(), "no 503 once received: {late:?}");
    s.queue
        .send_response(req.id(), Response::new(200).body("fine"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"fine");
    assert_eq!(s.session.counters().timeouts, 1);
}

/// A session with two queues: `/short/` through a group with `group`
/// timeouts, `/plain/` through a group with none.
struct TwoGroups {
    session: ServerSession,
    short: RequestQueue,
    plain: RequestQueue,
    _groups: Vec<httpq_server::UrlGroup>,
    port: u16,
}

fn two_groups(session: Timeouts, group: Timeouts) -> TwoGroups {
    let session = ServerSession::new(with_timeouts(session)).unwrap();
    let port = free_port();
    let short = RequestQueue::new("short");
    let plain = RequestQueue::new("plain");
    let g1 = session.create_url_group();
    g1.bind(&short);
    g1.set_timeouts(group);
    g1.add_url(&format!("http://127.0.0.1:{port}/short/"), 1)
        .unwrap();
    let g2 = session.create_url_group();
    g2.bind(&plain);
    g2.add_url(&format!("http://127.0.0.1:{port}/plain/"), 2)
        .unwrap();
    TwoGroups {
        session,
        short,
        plain,
        _groups: vec![g1, g2],
        port,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_request_queue_timeout_overrides_the_session() {
    let s = two_groups(
        Timeouts::default(), // two minutes
        Timeouts {
            request_queue: Duration::from_millis(300),
            ..UNSET
        },
    );
    let mut short = Client::connect(s.port).await;
    let mut plain = Client::connect(s.port).await;
    let started = Instant::now();
    short.send(&get("/short/x")).await;
    plain.send(&get("/plain/x")).await;
    let r = short.response().await.unwrap();
    assert_eq!(r.status, 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(s.short.is_empty());
    // The other group keeps the session's two minutes.
    let waited = tokio::time::timeout(Duration::from_millis(500), plain.response()).await;
    assert!(waited.is_err(), "no timeout outside the group: {waited:?}");
    let req = s.plain.try_receive().unwrap().expect("still queued");
    s.plain
        .send_response(req.id(), Response::new(200), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(plain.response().await.unwrap().status, 200);
    assert_eq!(s.session.counters().timeouts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_group_field_falls_back_to_the_session_value() {
    // The session's RequestQueue timeout is short; the group sets only an
    // unrelated timeout, so its zero request_queue means "the session's".
    let s = two_groups(
        Timeouts {
            request_queue: Duration::from_millis(300),
            ..Timeouts::default()
        },
        Timeouts {
            idle_connection: Duration::from_secs(600),
            ..UNSET
        },
    );
    let mut c = Client::connect(s.port).await;
    let started = Instant::now();
    c.send(&get("/short/x")).await;
    assert_eq!(c.response().await.unwrap().status, 503);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert!(s.short.is_empty());
}

/// What a consumer saw first: its name and the request id.
type Report = (String, u64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_consumers_tasks_and_threads_get_distinct_requests() {
    const TASKS: usize = 3;
    const THREADS: usize = 2;
    const CONSUMERS: usize = TASKS + THREADS;
    const MORE: usize = 30;
    let s = Server::start(Properties::default());
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (report_tx, mut report_rx) = mpsc::unbounded_channel::<Report>();
    let mut go = Vec::new();
    // Each consumer reports its first request and holds it until told to go,
    // so the first CONSUMERS requests must reach CONSUMERS different consumers.
    for t in 0..TASKS {
        let (q, seen, report) = (s.queue.clone(), seen.clone(), report_tx.clone());
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        go.push(go_tx);
        tokio::spawn(async move {
            let mut go = Some(go_rx);
            while let Ok(req) = q.receive().await {
                seen.lock().unwrap().push(req.id());
                if let Some(go) = go.take() {
                    report.send((format!("task{t}"), req.id())).unwrap();
                    go.await.unwrap();
                }
                let body = format!("task{t}");
                q.send_response(req.id(), Response::new(200).body(body), SendFlags::NONE)
                    .await
                    .unwrap();
            }
        });
    }
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let (q, seen, report) = (s.queue.clone(), seen.clone(), report_tx.clone());
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        go.push(go_tx);
        threads.push(std::thread::spawn(move || {
            let mut go = Some(go_rx);
            let mut served = 0;
            while let Ok(req) = q.receive_blocking() {
                seen.lock().unwrap().push(req.id());
                if let Some(go) = go.take() {
                    report.send((format!("thread{t}"), req.id())).unwrap();
                    go.blocking_recv().unwrap();
                }
                let body = format!("thread{t}");
                q.send_response_blocking(req.id(), Response::new(200).body(body), SendFlags::NONE)
                    .unwrap();
                served += 1;
            }
            served
        }));
    }
    drop(report_tx);
    let mut rx = burst(s.port, CONSUMERS).await;
    let mut first: Vec<Report> = Vec::new();
    for _ in 0..CONSUMERS {
        first.push(next(&mut report_rx).await);
    }
    let names: HashSet<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), CONSUMERS, "one request each: {first:?}");
    let ids: HashSet<u64> = first.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), CONSUMERS);
    for g in go {
        g.send(()).unwrap();
    }
    for _ in 0..CONSUMERS {
        let (_, r, _) = next(&mut rx).await;
        assert_eq!(r.unwrap().status, 200);
    }
    // Then a free-for-all.
    let mut rx = burst(s.port, MORE).await;
    let mut by = HashSet::new();
    for _ in 0..MORE {
        let (_, r, _) = next(&mut rx).await;
        let r = r.expect("answered");
        assert_eq!(r.status, 200);
        by.insert(String::from_utf8(r.body).unwrap());
    }
    let seen = seen.lock().unwrap().clone();
    let distinct: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), CONSUMERS + MORE, "every request received once");
    assert_eq!(distinct.len(), seen.len(), "no request handed out twice");
    // Stopping the queue ends every consumer, including the blocked threads.
    s.queue.shutdown();
    let mut thread_served = 0;
    for t in threads {
        thread_served += t.join().unwrap();
    }
    assert!(
        thread_served >= THREADS,
        "each thread served its first request"
    );
    let n = common::counters_when(&s.session, |n| {
        n.responses_sent >= (CONSUMERS + MORE) as u64
    })
    .await;
    assert_eq!(n.requests_received, (CONSUMERS + MORE) as u64);
    assert_eq!(n.responses_sent, (CONSUMERS + MORE) as u64);
}

/// Limit 2 connections; serve two, then a third must wait for one to close.
async fn connection_limit(s: &Server) {
    let mut c1 = s.connect().await;
    let mut c2 = s.connect().await;
    for c in [&mut c1, &mut c2] {
        c.send(&get("/")).await;
        let req = tokio::time::timeout(LIMIT, s.queue.receive())
            .await
            .unwrap()
            .unwrap();
        s.queue
            .send_response(req.id(), Response::new(200), SendFlags::NONE)
            .await
            .unwrap();
        assert_eq!(c.response().await.unwrap().status, 200);
    }
    // The third connects (the kernel's backlog takes it) but is not served.
    let mut c3 = s.connect().await;
    c3.send(&get("/third")).await;
    let early = tokio::time::timeout(Duration::from_millis(400), s.queue.receive()).await;
    assert!(early.is_err(), "served beyond max_connections: {early:?}");
    let n = s.session.counters();
    assert_eq!((n.connections_accepted, n.connections_open), (2, 2));
    // Still-open connections keep working meanwhile.
    c2.send(&get("/two-again")).await;
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.url().path, "/two-again");
    s.queue
        .send_response(req.id(), Response::new(200), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c2.response().await.unwrap().status, 200);
    // Closing one lets the third in.
    drop(c1);
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .expect("the third connection is served once one closes")
        .unwrap();
    assert_eq!(req.url().path, "/third");
    s.queue
        .send_response(req.id(), Response::new(200).body("3"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c3.response().await.unwrap().body, b"3");
    let n = s.session.counters();
    assert_eq!((n.connections_accepted, n.connections_open), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_holds_the_next_until_one_closes() {
    let s = Server::start(Properties {
        max_connections: 2,
        ..Properties::default()
    });
    connection_limit(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_with_a_wildcard_prefix() {
    // A wildcard prefix has two listeners (IPv4 and IPv6); the limit is
    // still two IPv4 connections, not one per idle listener less.
    let session = ServerSession::new(Properties {
        max_connections: 2,
        ..Properties::default()
    })
    .unwrap();
    let queue = RequestQueue::new("wild");
    let group = session.create_url_group();
    group.bind(&queue);
    let port = free_port();
    group.add_url(&format!("http://+:{port}/"), 1).unwrap();
    let s = Server {
        session,
        queue,
        group,
        port,
    };
    connection_limit(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_the_traffic() {
    let s = Server::start(Properties::default());
    assert_eq!(s.session.counters(), Default::default());
    let mut clients = [s.connect().await, s.connect().await];
    let mut conn_a = 0;
    for (i, which) in [0, 1, 0].into_iter().enumerate() {
        let c = &mut clients[which];
        c.send(&get(&format!("/{i}"))).await;
        let req = tokio::time::timeout(LIMIT, s.queue.receive())
            .await
            .unwrap()
            .unwrap();
        if i == 0 {
            conn_a = req.connection_id();
        }
        s.queue
            .send_response(req.id(), Response::new(200).body("x"), SendFlags::NONE)
            .await
            .unwrap();
        assert_eq!(c.response().await.unwrap().status, 200);
    }
    let n = common::counters_when(&s.session, |n| n.responses_sent >= 3).await;
    assert_eq!(n.connections_accepted, 2);
    assert_eq!(n.connections_open, 2);
    assert_eq!(n.requests_received, 3);
    assert_eq!(n.responses_sent, 3);
    assert!(n.bytes_received > 0 && n.bytes_sent > 0);
    assert_eq!(
        (n.disconnects, n.requests_abandoned, n.queue_rejections),
        (0, 0, 0)
    );
    assert_eq!((n.protocol_errors, n.timeouts, n.unrouted), (0, 0, 0));
    // Closing between requests is not a "disconnect" (nothing was held),
    // but the connection is no longer open once its end is reported.
    let [a, b] = clients;
    drop(a);
    s.queue.wait_for_disconnect(conn_a).await.unwrap();
    let n = s.session.counters();
    assert_eq!((n.connections_accepted, n.connections_open), (2, 1));
    assert_eq!(n.disconnects, 0);
    // A protocol error and a routing miss are counted, and answered.
    let mut c = s.connect().await;
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        .await;
    assert_eq!(c.response().await.unwrap().status, 400);
    let n = common::counters_when(&s.session, |n| n.responses_sent >= 4).await;
    assert_eq!(n.protocol_errors, 1);
    assert_eq!(n.connections_accepted, 3);
    assert_eq!(n.responses_sent, 4, "server answers count as responses");
    drop(b);
}

/// Review regression: a pipelined batch refused behind a 503 that closes
/// the connection. Only the first refusal is answered; the rest are dropped
/// as if never read, so nothing counts them as handed out or abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_refused_behind_a_closing_503_is_not_counted_abandoned() {
    let s = Server::start(Properties::default());
    s.queue.set_limit(1);
    let mut c = s.connect().await;
    let mut burst = Vec::new();
    for i in 0..4 {
        burst.extend_from_slice(&get(&format!("/{i}")));
    }
    c.send(&burst).await;
    let req = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.url().path, "/0");
    s.queue
        .send_response(req.id(), Response::new(200).body("kept"), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().body, b"kept");
    let r = c.response().await.expect("the 503 for /1");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed().await, "nothing after the closing 503");
    assert!(s.queue.try_receive().unwrap().is_none());
    let n = s.session.counters();
    assert!(n.queue_rejections >= 1);
    assert_eq!(
        n.requests_abandoned, 0,
        "refused requests were never handed out"
    );
}
