//! 1,000 requests against a keep-alive raw server, many of them cancelled
//! at pseudo-random points (the handle dropped, the read future dropped,
//! a Closer fired from another task, the parent connect handle dropped).
//! Every answer that arrives is the right one (a connection left dirty by a
//! cancelled request would hand a later one the wrong bytes), every handle
//! keeps the notification rules, and afterwards nothing is left: no
//! connection, no file descriptor, no task.
//!
//! One test only: file descriptors are counted process-wide.

mod support;

use std::time::Duration;

use bytes::Bytes;
use httpq_client::{ClientError, RequestHandle, Scheme, Session, Status, Timeouts};
use support::*;
use tokio::time::Instant;

const REQUESTS: u64 = 1000;
const SEED: u64 = 0x5eed_1234_abcd;

/// `/b/{len}/{seed}`: a patterned body; `/slow/{len}/{seed}`: the same in
/// two pieces with a pause; `/stall/{len}`: part of a body, then silence;
/// `/post`: the length and checksum of the request body.
fn handler(req: &Req) -> Vec<Step> {
    let parts: Vec<&str> = req.path.split('/').collect();
    let num = |i: usize| parts[i].parse::<u64>().unwrap();
    match parts[1] {
        "b" => vec![Step::Write(response(
            "200 OK",
            "",
            pattern(num(2) as usize, num(3)),
        ))],
        "slow" => {
            let body = pattern(num(2) as usize, num(3));
            let mut steps = vec![Step::Write(head(body.len()))];
            let (a, b) = body.split_at(body.len() / 2);
            steps.push(Step::Write(a.to_vec()));
            steps.push(Step::Sleep(Duration::from_millis(1)));
            steps.push(Step::Write(b.to_vec()));
            steps
        }
        "stall" => {
            let len = num(2) as usize;
            let mut v = head(len);
            v.extend(pattern(len / 2, 0));
            vec![Step::Write(v), Step::Hold]
        }
        "post" => {
            let echo = format!("{} {}", req.body.len(), checksum(&req.body));
            vec![Step::Write(response("200 OK", "", echo.as_bytes()))]
        }
        _ => vec![Step::Write(response("404 Not Found", "", b""))],
    }
}

/// What a cancelled request may end with: cancelled while pending, or
/// refused because the handle was already closed.
fn assert_cancel_error(e: &ClientError, what: &str) {
    assert!(
        matches!(e, ClientError::Cancelled | ClientError::InvalidState(_)),
        "{what}: unexpected error {e:?}"
    );
}

/// Reads up to `limit` bytes of the body (or to its end) and checks them
/// against the pattern.
async fn read_some(
    r: &mut RequestHandle,
    limit: usize,
    expect: &[u8],
) -> Result<usize, ClientError> {
    let mut buf = vec![0u8; 8192];
    let mut got = 0;
    while got < limit {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        assert_eq!(&buf[..n], &expect[got..got + n], "wrong body bytes");
        got += n;
    }
    Ok(got)
}

/// A task that closes the handle after a pseudo-random number of yields.
fn close_later(closer: httpq_client::Closer, yields: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        closer.close();
    })
}

/// Polls a condition no event announces (a task's slot freed after its
/// JoinHandle resolved, a descriptor count), up to a deadline.
async fn settle(what: &str, mut ok: impl FnMut() -> bool, show: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: {}", show());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_with_random_cancellation_leave_nothing_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let fds_before = open_fds();
    let tasks_before = metrics.num_alive_tasks();

    let server = Server::script(handler).await;
    let rec = Recorder::new();
    let s = Session::new(config(&rec, Timeouts::default())).unwrap();
    let mut rng = Rng::new(SEED);
    let mut ids = Vec::new();
    let mut outcomes = [0u32; 7];
    let mut uploads_done = 0;
    let started = Instant::now();

    for i in 0..REQUESTS {
        let seed = rng.below(1000);
        let action = rng.below(7);
        outcomes[action as usize] += 1;
        match action {
            // A plain GET read to the end.
            0 => {
                let len = rng.below(40_000) as usize;
                let mut r = s
                    .open_url(&server.url(&format!("/b/{len}/{seed}")), i)
                    .await
                    .unwrap();
                ids.push((r.id(), i));
                let body = r.bytes().await.unwrap();
                assert_eq!(body.len(), len, "request {i}");
                assert_eq!(&body[..], pattern(len, seed), "request {i}");
            }
            // Dropped after a random part of a body.
            1 => {
                let len = 1000 + rng.below(150_000) as usize;
                let stop = rng.below(len as u64) as usize;
                let mut r = s
                    .open_url(&server.url(&format!("/b/{len}/{seed}")), i)
                    .await
                    .unwrap();
                ids.push((r.id(), i));
                read_some(&mut r, stop, pattern(len, seed)).await.unwrap();
                drop(r);
            }
            // Closed from another task while it waits (on a body that stalls).
            2 => {
                let mut r = s.request("GET", &server.url("/stall/5000"), i).unwrap();
                ids.push((r.id(), i));
                let closer = close_later(r.closer(), rng.below(60));
                let e = async {
                    r.send(None).await?;
                    read_some(&mut r, usize::MAX, pattern(2500, 0)).await?;
                    Ok::<(), ClientError>(())
                }
                .await
                .expect_err("a stalled request ended");
                assert_cancel_error(&e, "stall");
                closer.await.unwrap();
            }
            // An upload racing a Closer: finishes right, or is cancelled.
            3 => {
                let body = pattern(rng.below(100_000) as usize, seed);
                let mut r = s.request("POST", &server.url("/post"), i).unwrap();
                ids.push((r.id(), i));
                let closer = close_later(r.closer(), rng.below(200));
                let echo = format!("{} {}", body.len(), checksum(body));
                let result = async {
                    r.send(Some(Bytes::from_static(body))).await?;
                    r.bytes().await
                }
                .await;
                match result {
                    Ok(got) => {
                        assert_eq!(got, echo.as_bytes(), "request {i}");
                        uploads_done += 1;
                    }
                    Err(e) => assert_cancel_error(&e, "post"),
                }
                closer.await.unwrap();
            }
            // The read future dropped at a random point of a slow body.
            4 => {
                let len = 1 + rng.below(20_000) as usize;
                let yields = rng.below(40);
                let mut r = s
                    .open_url(&server.url(&format!("/slow/{len}/{seed}")), i)
                    .await
                    .unwrap();
                ids.push((r.id(), i));
                let expect = pattern(len, seed);
                tokio::select! {
                    got = read_some(&mut r, len, expect) => assert_eq!(got.unwrap(), len),
                    _ = async { for _ in 0..yields { tokio::task::yield_now().await } } => {}
                }
                drop(r);
            }
            // The parent connect handle dropped mid-body.
            5 => {
                let len = 10_000 + rng.below(100_000) as usize;
                let c = s
                    .connect(Scheme::Http, "127.0.0.1", server.port(), i)
                    .unwrap();
                let mut r = c
                    .open_request("GET", &format!("/b/{len}/{seed}"), i)
                    .unwrap();
                ids.push((c.id(), i));
                ids.push((r.id(), i));
                r.send(None).await.unwrap();
                let mut buf = [0u8; 1000];
                let n = r.read(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], &pattern(len, seed)[..n]);
                drop(c);
                match r.read(&mut buf).await {
                    Ok(n) => panic!("read {n} bytes on a closed handle"),
                    Err(e) => assert_cancel_error(&e, "parent closed"),
                }
            }
            // Closed by its own task right after the head (no read at all).
            _ => {
                let mut r = s
                    .request("GET", &server.url(&format!("/b/{}/{seed}", 50_000)), i)
                    .unwrap();
                ids.push((r.id(), i));
                r.send(None).await.unwrap();
                assert_eq!(r.status(), 200);
                r.closer().close();
                let mut buf = [0u8; 10];
                assert!(r.read(&mut buf).await.is_err());
            }
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{REQUESTS} requests in {took:?}; per action: {outcomes:?}; \
         uploads not cancelled: {uploads_done}"
    );
    assert!(outcomes.iter().all(|&n| n > 50), "{outcomes:?}");

    // Every handle kept the rules: created first, closed last, once each,
    // its context on everything, and one REQUEST_COMPLETE per pending
    // operation (never more completions than a request has operations).
    let all = rec.all();
    let mut by_handle: std::collections::HashMap<u64, Vec<httpq_client::Notification>> =
        std::collections::HashMap::new();
    for n in all {
        by_handle.entry(n.handle).or_default().push(n);
    }
    for (id, ctx) in &ids {
        let ns = by_handle.remove(id).unwrap_or_default();
        assert_handle_rules(&ns, *ctx);
    }
    // Left: only the session's own handle, still open.
    let rest: Vec<u64> = by_handle.keys().copied().collect();
    assert_eq!(rest, [s.id()]);

    // The pool keeps what was read to the end; closing the session closes it.
    assert!(s.open_connections() <= 6, "{}", s.open_connections());
    s.close();
    assert_eq!(s.open_connections(), 0);
    assert_eq!(rec.names(s.id()), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    assert!(rec.count(s.id(), Status::HandleClosing) == 1);
    drop(s);
    server.stop().await;

    eprintln!(
        "fds {fds_before} -> {}, tasks {tasks_before} -> {}",
        open_fds(),
        metrics.num_alive_tasks()
    );
    settle(
        "file descriptors left open",
        || open_fds() <= fds_before + 2,
        || format!("{} now, {fds_before} before", open_fds()),
    )
    .await;
    settle(
        "tasks left alive",
        || metrics.num_alive_tasks() == tasks_before,
        || format!("{} now, {tasks_before} before", metrics.num_alive_tasks()),
    )
    .await;
}
