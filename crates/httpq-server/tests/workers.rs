//! Workers and what came with them: consumers on every worker, stealing
//! between shares, the queue limit across shares, bodies that travel with
//! their request, file bodies, and pipelined answers that must not wait
//! for each other.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use common::{get, Client, Server, LIMIT};
use httpq_server::{FileChunk, Properties, RequestQueue, Response, SendFlags};

/// A server (see `common::Server`) on `n` workers.
fn on_workers(n: usize) -> Server {
    Server::start(Properties {
        workers: n,
        ..Properties::default()
    })
}

/// Answers every request with `request-id connection-id worker`.
fn ids_consumer(
    queue: &RequestQueue,
    on: impl Fn(usize) -> bool,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    let queue = queue.clone();
    move |worker| {
        let queue = queue.clone();
        let active = on(worker);
        Box::pin(async move {
            if !active {
                return;
            }
            while let Ok(req) = queue.receive().await {
                let body = format!("{} {} {worker}", req.id(), req.connection_id());
                let _ = queue
                    .send_response(req.id(), Response::new(200).body(body), SendFlags::NONE)
                    .await;
            }
        })
    }
}

async fn get_ids(port: u16, conns: usize, per_conn: usize) -> Vec<(u64, u64, usize)> {
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(port).await;
            let mut out = Vec::new();
            for _ in 0..per_conn {
                c.send(&get("/")).await;
                let r = c.response().await.expect("answered");
                let body = String::from_utf8(r.body).unwrap();
                let v: Vec<&str> = body.split(' ').collect();
                out.push((
                    v[0].parse().unwrap(),
                    v[1].parse().unwrap(),
                    v[2].parse().unwrap(),
                ));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(tokio::time::timeout(LIMIT, t).await.unwrap().unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_on_every_worker_serve_with_unique_ids() {
    let s = on_workers(2);
    let (session, queue, port) = (&s.session, &s.queue, s.port);
    assert_eq!(session.workers(), 2);
    session.spawn_on_workers(ids_consumer(queue, |_| true));
    let all = get_ids(port, 40, 3).await;
    assert_eq!(all.len(), 120);
    let ids: HashSet<u64> = all.iter().map(|a| a.0).collect();
    assert_eq!(ids.len(), 120, "request ids are unique across workers");
    let conns: HashSet<u64> = all.iter().map(|a| a.1).collect();
    assert_eq!(conns.len(), 40, "one connection id per connection");
    let workers: HashSet<usize> = all.iter().map(|a| a.2).collect();
    assert_eq!(
        workers,
        HashSet::from([0, 1]),
        "both workers' consumers answered"
    );
    let n = common::counters_when(session, |n| n.responses_sent >= 120).await;
    assert_eq!((n.requests_received, n.responses_sent), (120, 120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_takes_the_requests_of_every_worker() {
    let s = on_workers(2);
    let (session, queue, port) = (&s.session, &s.queue, s.port);
    // Only worker 0 runs a consumer: requests of worker 1's connections
    // must be taken from its share, and a push there must wake worker 0's
    // sleeping consumer.
    session.spawn_on_workers(ids_consumer(queue, |w| w == 0));
    let all = get_ids(port, 30, 2).await;
    assert_eq!(all.len(), 60);
    assert!(all.iter().all(|a| a.2 == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_limit_holds_across_shares() {
    let s = on_workers(2);
    let (_session, queue, port) = (&s.session, &s.queue, s.port);
    queue.set_limit(3);
    let mut clients = Vec::new();
    for i in 0..10 {
        let mut c = Client::connect(port).await;
        c.send(&get(&format!("/{i}"))).await;
        clients.push(c);
    }
    let mut refused = 0;
    for c in clients.iter_mut().rev() {
        // Only the refused get an answer before anyone receives.
        if let Ok(Some(r)) =
            tokio::time::timeout(std::time::Duration::from_millis(300), c.response()).await
        {
            assert_eq!(r.status, 503);
            refused += 1;
        }
    }
    assert_eq!(refused, 7);
    assert_eq!(queue.len(), 3);
    let mut got = 0;
    while let Some(req) = queue.try_receive().unwrap() {
        got += 1;
        queue
            .send_response(req.id(), Response::new(204), SendFlags::NONE)
            .await
            .unwrap();
    }
    assert_eq!(got, 3);
    assert!(queue.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_body_travels_with_its_request_and_is_answered_in_one_call() {
    let s = on_workers(1);
    let (_session, queue, port) = (&s.session, &s.queue, s.port);
    queue.set_copy_body(64 * 1024);
    let mut c = Client::connect(port).await;
    c.send(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    let req = tokio::time::timeout(LIMIT, queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&req.body()[..], req.more_body()), (&b"hello"[..], false));
    let mut buf = [0u8; 16];
    assert_eq!(queue.receive_body(req.id(), &mut buf).await.unwrap(), 0);
    let echo = Response::new(200).body(req.body().clone());
    queue
        .send_response(req.id(), echo, SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(r.header("content-length"), Some("5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_beyond_what_arrived_is_read_after_what_came_with_it() {
    let s = on_workers(1);
    let (_session, queue, port) = (&s.session, &s.queue, s.port);
    queue.set_copy_body(1024);
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = Client::connect(port).await;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut msg = head.into_bytes();
    msg.extend_from_slice(&body[..2000]);
    c.send(&msg).await;
    let req = tokio::time::timeout(LIMIT, queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert!(req.more_body());
    assert!(req.body().len() <= 1024);
    let mut got = req.body().to_vec();
    let rest = body[2000..].to_vec();
    let sender = tokio::spawn(async move {
        c.send(&rest).await;
        c
    });
    let mut buf = vec![0u8; 8192];
    loop {
        let n = queue.receive_body(req.id(), &mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got == body, "the body arrives whole and in order");
    let _c = sender.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_waiting_for_100_gets_no_body_copied() {
    let s = on_workers(1);
    let (_session, queue, port) = (&s.session, &s.queue, s.port);
    queue.set_copy_body(1024);
    let mut c = Client::connect(port).await;
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .await;
    let req = tokio::time::timeout(LIMIT, queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert!(req.body().is_empty() && req.more_body());
    let q = queue.clone();
    let id = req.id();
    let reader = tokio::spawn(async move { q.receive_body_chunk(id).await });
    // The 100 goes out on the first read; then the client sends.
    let mut line = [0u8; 25];
    tokio::io::AsyncReadExt::read_exact(&mut c.stream, &mut line)
        .await
        .unwrap();
    assert_eq!(&line, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"ok").await;
    let chunk = tokio::time::timeout(LIMIT, reader)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(chunk.as_deref(), Some(&b"ok"[..]));
}

fn temp_file(bytes: &[u8]) -> Arc<std::fs::File> {
    let path = std::env::temp_dir().join(format!(
        "httpq-workers-{}-{}",
        std::process::id(),
        bytes.len()
    ));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    let f = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    Arc::new(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_bodies_go_from_the_file() {
    let s = on_workers(1);
    let (_session, queue, port) = (&s.session, &s.queue, s.port);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = temp_file(&data);
    let mut c = Client::connect(port).await;
    c.send(&[get("/whole"), get("/range")].concat()).await;
    let whole = queue.receive().await.unwrap();
    queue
        .send_response(
            whole.id(),
            Response::new(200).file(FileChunk::whole(file.clone()).unwrap()),
            SendFlags::NONE,
        )
        .await
        .unwrap();
    let range = queue.receive().await.unwrap();
    queue
        .send_response(
            range.id(),
            Response::new(206)
                .body("<")
                .header("content-length", "1001"),
            SendFlags::MORE_DATA,
        )
        .await
        .unwrap();
    let chunk = FileChunk {
        file,
        offset: 1000,
        len: 1000,
    };
    queue
        .send_file(range.id(), chunk, SendFlags::NONE)
        .await
        .unwrap();
    let r = c.response().await.unwrap();
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data);
    let r = c.response().await.unwrap();
    assert_eq!(r.body[0], b'<');
    assert_eq!(&r.body[1..], &data[1000..2000]);
}

/// Issue 11, item 7: two pipelined large answers, the later one sent first,
/// stalled forever once the later one parked a megabyte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_large_answers_never_wait_for_each_other() {
    let s = on_workers(1);
    let (_session, queue, port) = (&s.session, &s.queue, s.port);
    const SIZE: usize = 4 << 20;
    const PIECE: usize = 64 << 10;
    let mut c = Client::connect(port).await;
    c.send(&[get("/a"), get("/b")].concat()).await;
    let a = queue.receive().await.unwrap();
    let b = queue.receive().await.unwrap();
    let send_all = |id: u64, fill: u8| {
        let q = queue.clone();
        tokio::spawn(async move {
            let head = Response::new(200).header("content-length", &SIZE.to_string());
            q.send_response(id, head, SendFlags::MORE_DATA)
                .await
                .unwrap();
            for i in 0..SIZE / PIECE {
                let flags = if i + 1 == SIZE / PIECE {
                    SendFlags::NONE
                } else {
                    SendFlags::MORE_DATA
                };
                q.send_body(id, vec![fill; PIECE], flags).await.unwrap();
            }
        })
    };
    // The later answer starts first and parks all it can.
    let later = send_all(b.id(), b'b');
    tokio::task::yield_now().await;
    let earlier = send_all(a.id(), b'a');
    let ra = c.response().await.expect("first answer");
    let rb = c.response().await.expect("second answer");
    assert!(ra.body.len() == SIZE && ra.body.iter().all(|&x| x == b'a'));
    assert!(rb.body.len() == SIZE && rb.body.iter().all(|&x| x == b'b'));
    tokio::time::timeout(LIMIT, later).await.unwrap().unwrap();
    tokio::time::timeout(LIMIT, earlier).await.unwrap().unwrap();
}

/// Review A1: a large upload answered without being read is drained at
/// full speed, and the connection serves its next request at once. (It
/// stalled until DrainEntityBody: reading had paused with the buffer
/// full, and the drain emptied the buffer without reading resuming.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_upload_drains_and_the_connection_goes_on() {
    let s = on_workers(1);
    let (queue, port) = (&s.queue, s.port);
    const SIZE: usize = 16 << 20;
    let mut c = Client::connect(port).await;
    let head = format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {SIZE}\r\n\r\n");
    let (mut rd, mut wr) = c.stream.split();
    let upload = async {
        tokio::io::AsyncWriteExt::write_all(&mut wr, head.as_bytes())
            .await
            .unwrap();
        let chunk = vec![b'u'; 64 * 1024];
        for _ in 0..SIZE / chunk.len() {
            tokio::io::AsyncWriteExt::write_all(&mut wr, &chunk)
                .await
                .unwrap();
        }
        tokio::io::AsyncWriteExt::write_all(&mut wr, &get("/next"))
            .await
            .unwrap();
    };
    let serve = async {
        let up = queue.receive().await.unwrap();
        // The server reads the pipe's 64 KiB and its 72 KiB buffer, then
        // pauses: answer (without reading) only once it has.
        common::counters_when(&s.session, |n| n.bytes_received >= (64 + 72) << 10).await;
        queue
            .send_response(up.id(), Response::new(413).body("no"), SendFlags::NONE)
            .await
            .unwrap();
        let next = queue.receive().await.unwrap();
        assert_eq!(next.path(), "/next");
        queue
            .send_response(next.id(), Response::new(200).body("next"), SendFlags::NONE)
            .await
            .unwrap();
    };
    let mut sink = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut rd, &mut sink);
    let done = tokio::time::timeout(LIMIT, async {
        tokio::join!(upload, serve);
    })
    .await;
    assert!(
        done.is_ok(),
        "the upload drained and /next was answered in time"
    );
    drop(read);
}

/// Review D1: a refused batch that spans a request the server answered
/// itself (no prefix matched) must not break the connection's accounting:
/// the refusal's 503 still goes out and the connection closes after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_an_unrouted_request_is_answered() {
    let session = httpq_server::ServerSession::new(Properties {
        workers: 1,
        ..Properties::default()
    })
    .unwrap();
    let queue = RequestQueue::new("a");
    queue.set_limit(1);
    let group = session.create_url_group();
    group.bind(&queue);
    let port = common::free_port();
    group
        .add_url(&format!("http://127.0.0.1:{port}/a/"), 1)
        .unwrap();
    // The queue is full.
    let mut first = Client::connect(port).await;
    first.send(&get("/a/0")).await;
    common::counters_when(&session, |n| n.requests_received == 1).await;
    let mut c = Client::connect(port).await;
    c.send(&[get("/a/1"), get("/a/2"), get("/nomatch"), get("/a/3")].concat())
        .await;
    let r = c.response().await.expect("the refusal is answered");
    assert_eq!(r.status, 503);
    assert!(c.closed().await, "and the connection closes after it");
    assert_eq!(queue.len(), 1);
}
