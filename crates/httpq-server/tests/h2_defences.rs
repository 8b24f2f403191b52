//! HTTP/2 defences that need raw frames: resets the client's frames draw
//! from the server spend the same budget as its own resets, and a client
//! that stops reading cannot keep its connection, and what it was sent,
//! forever.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::h2raw::{frame, get_block, open_then};
use common::{counters_when, Server, LIMIT};
use httpq_server::{DisconnectReason, Properties, Response, SendFlags, Timeouts};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn resets_the_clients_frames_draw_spend_the_reset_budget() {
    let s = Server::start(Properties::default());
    // A WINDOW_UPDATE of 0 on each stream: a stream error, which the
    // server answers with a reset of its own.
    let (code, n) = open_then(&s, |id| frame(8, 0, id, &0u32.to_be_bytes())).await;
    assert_eq!(code, Some(11), "ENHANCE_YOUR_CALM");
    assert!(n.h2_streams < 1000, "the budget stopped it early: {n:?}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_after_min_send_rate() {
    let s = Server::start(Properties {
        timeouts: Timeouts {
            // 32 MiB at 100 MB/s: the grace is the floor, one second.
            min_send_rate: 100_000_000,
            ..Timeouts::default()
        },
        ..Properties::default()
    });
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let authority = format!("127.0.0.1:{}", s.port);
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // Windows as large as they go, so only the socket holds the answer back.
    let max = 0x7fff_ffffu32;
    let mut settings = vec![0, 4];
    settings.extend_from_slice(&max.to_be_bytes());
    out.extend(frame(4, 0, 0, &settings));
    out.extend(frame(8, 0, 0, &(max - 65_535).to_be_bytes()));
    out.extend(frame(1, 0x5, 1, &get_block(&authority)));
    raw.write_all(&out).await.unwrap();
    let r = tokio::time::timeout(LIMIT, s.queue.receive())
        .await
        .unwrap()
        .unwrap();
    let conn = r.connection_id();
    let body = Bytes::from(vec![b'z'; 32 << 20]);
    s.queue
        .send_response(r.id(), Response::new(200).body(body), SendFlags::NONE)
        .await
        .unwrap();
    // The client reads nothing: the answer sits unwritten.
    let started = std::time::Instant::now();
    let why = tokio::time::timeout(LIMIT, s.queue.wait_for_disconnect(conn))
        .await
        .expect("the connection is cut off")
        .unwrap();
    assert_eq!(
        why,
        DisconnectReason::Timeout(httpq_server::TimeoutKind::MinSendRate)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let n = counters_when(&s.session, |n| n.connections_open == 0).await;
    assert_eq!(n.connections_open, 0);
    drop(raw);
}
