//! How soon an HTTP/2 stream's reset reaches the application as its
//! request's disconnect, and whether the connection serves on meanwhile
//! (issue 14). One process: an httpq server (one worker) whose consumer
//! waits on `Request::disconnected()` for every request, and an h2c client
//! on another thread that opens a stream, waits until the server holds its
//! request, resets it, and measures until the server saw the reset. Every
//! tenth round a stream is answered instead, on the same connection.
//! Then: a connection closed with `IN_FLIGHT` streams held, timed until
//! every one of them has seen its disconnect.
//!
//! The rapid-reset budget is lifted for the run (1,000 resets in well under
//! a second are the measurement here, not an attack).
//!
//! Usage: h2-reset-latency [ROUNDS (1000)] [IN_FLIGHT (50)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(1000, |a| a.parse().unwrap());
    let in_flight: usize = args.next().map_or(50, |a| a.parse().unwrap());
    // Resets as fast as the loop goes are what the rapid-reset budget
    // stops (100 a second by default): lifted here, where the resets are
    // the measurement, not an attack.
    let session = ServerSession::new(Properties {
        workers: 1,
        http2: httpq_server::Http2Settings {
            max_client_resets_per_second: 1_000_000,
            ..Default::default()
        },
        ..Properties::default()
    })
    .unwrap();
    let queue = RequestQueue::new("held");
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
    // The server tells the client: (path, received) then (path, disconnected at).
    let (tx, rx) = mpsc::channel::<(String, bool, Instant)>();
    {
        let q = queue.clone();
        session.spawn_on_workers(move |_| {
            let (q, tx) = (q.clone(), tx.clone());
            async move {
                while let Ok(req) = q.receive().await {
                    let path = req.path().to_string();
                    if path.starts_with("/answer") {
                        let _ = q
                            .send_response(req.id(), Response::new(200).body("ok"), SendFlags::NONE)
                            .await;
                        continue;
                    }
                    let _ = tx.send((path.clone(), true, Instant::now()));
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        req.disconnected().await;
                        let _ = tx.send((path, false, Instant::now()));
                    });
                }
            }
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let wait_for = |rx: &mpsc::Receiver<(String, bool, Instant)>, path: &str, received: bool| loop {
        let (p, r, at) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server event");
        if p == path && r == received {
            return at;
        }
    };
    let url = |path: &str| {
        http::Request::get(format!("http://127.0.0.1:{port}{path}"))
            .body(())
            .unwrap()
    };
    let mut lat = Vec::with_capacity(rounds);
    let mut answered = 0;
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // Else Nagle holds the small RST_STREAM back for a delayed ACK (40 ms).
        tcp.set_nodelay(true).unwrap();
        let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        for i in 0..rounds {
            if i % 10 == 9 {
                let (resp, _) = send
                    .send_request(url(&format!("/answer/{i}")), true)
                    .unwrap();
                let resp = resp.await.unwrap();
                assert_eq!(resp.status(), 200);
                answered += 1;
            }
            let path = format!("/held/{i}");
            let (resp, mut stream) = send.send_request(url(&path), true).unwrap();
            let path2 = path.clone();
            let rx_ref = &rx;
            tokio::task::block_in_place(|| wait_for(rx_ref, &path2, true));
            let t0 = Instant::now();
            stream.send_reset(h2::Reason::CANCEL);
            drop(resp);
            let seen = tokio::task::block_in_place(|| wait_for(rx_ref, &path, false));
            lat.push(seen.saturating_duration_since(t0));
        }
    });
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "stream reset -> Request::disconnected(), {rounds} resets on one connection \
         ({answered} streams answered in between): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat[lat.len() - 1]
    );
    // A connection closed with streams in flight.
    let counters_before = session.counters();
    let took = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // Else Nagle holds the small RST_STREAM back for a delayed ACK (40 ms).
        tcp.set_nodelay(true).unwrap();
        let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
        let conn_task = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut held = Vec::new();
        for i in 0..in_flight {
            let path = format!("/flight/{i}");
            held.push(send.send_request(url(&path), true).unwrap());
        }
        let rx_ref = &rx;
        tokio::task::block_in_place(|| {
            for i in 0..in_flight {
                wait_for(rx_ref, &format!("/flight/{i}"), true);
            }
        });
        let t0 = Instant::now();
        conn_task.abort();
        drop(send);
        drop(held);
        let mut last = t0;
        tokio::task::block_in_place(|| {
            let mut seen = 0;
            while seen < in_flight {
                let (p, r, at) = rx_ref.recv_timeout(Duration::from_secs(10)).unwrap();
                if p.starts_with("/flight/") && !r {
                    seen += 1;
                    last = last.max(at);
                }
            }
        });
        last - t0
    });
    let after = session.counters();
    println!(
        "connection closed with {in_flight} streams held: all disconnected within {took:?}; \
         requests_abandoned +{}, disconnects +{}, h2_resets total {}",
        after.requests_abandoned - counters_before.requests_abandoned,
        after.disconnects - counters_before.disconnects,
        after.h2_resets
    );
}
