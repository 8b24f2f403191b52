//! Raw HTTP/2 frames for tests that must send what no client library
//! would (floods, resets, bad frames), and read what comes back.

use httpq_server::CounterSnapshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{counters_when, Server, LIMIT};

/// One frame: type, flags, stream id, payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A GET of `/` as HPACK: :method GET, :scheme http, :path /, :authority.
pub fn get_block(authority: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x84, 0x01, authority.len() as u8];
    b.extend_from_slice(authority.as_bytes());
    b
}

/// Reads frames until a GOAWAY; returns its error code (None: closed first).
pub async fn goaway_code(raw: &mut TcpStream) -> Option<u32> {
    loop {
        let mut head = [0u8; 9];
        if raw.read_exact(&mut head).await.is_err() {
            return None;
        }
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if raw.read_exact(&mut payload).await.is_err() {
            return None;
        }
        if head[3] == 7 {
            return Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
    }
}

/// Against an application that takes requests and never answers, opens
/// streams one after another, each followed in a later write by `then(id)`
/// (a reset, or a frame that draws one), until the server stops it.
/// Returns the GOAWAY code the server sent (None: it closed first) and
/// the counters once the connection is gone.
pub async fn open_then(s: &Server, then: fn(u32) -> Vec<u8>) -> (Option<u32>, CounterSnapshot) {
    let q = s.queue.clone();
    let consumer = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok(r) = q.receive().await {
            held.push(r);
        }
    });
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let authority = format!("127.0.0.1:{}", s.port);
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    raw.write_all(&out).await.unwrap();
    let writer = tokio::spawn(async move {
        let mut id = 1u32;
        // The second frame in a later write: the server has accepted the
        // stream (and queued its request) by then.
        for _ in 0..5000 {
            if raw
                .write_all(&frame(1, 0x5, id, &get_block(&authority)))
                .await
                .is_err()
            {
                break;
            }
            tokio::task::yield_now().await;
            if raw.write_all(&then(id)).await.is_err() {
                break;
            }
            id += 2;
        }
        raw
    });
    let mut raw = tokio::time::timeout(LIMIT, writer).await.unwrap().unwrap();
    let code = tokio::time::timeout(LIMIT, goaway_code(&mut raw))
        .await
        .unwrap();
    let n = counters_when(&s.session, |n| n.connections_open == 0).await;
    consumer.abort();
    (code, n)
}
