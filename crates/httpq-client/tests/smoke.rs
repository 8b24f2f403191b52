use std::sync::{Arc, Mutex};

use httpq_client::{Config, Notification, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn get_twice_reuses_the_connection() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buf[..n]);
            while let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                seen.drain(..i + 4);
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                    .await
                    .unwrap();
            }
        }
    });
    let log: Arc<Mutex<Vec<Notification>>> = Arc::default();
    let l2 = log.clone();
    let session = Session::new(Config {
        callback: Some(Arc::new(move |n: &Notification| {
            l2.lock().unwrap().push(n.clone())
        })),
        ..Config::default()
    })
    .unwrap();
    for i in 0..2 {
        let mut r = session
            .open_url(&format!("http://127.0.0.1:{port}/x"), 10 + i)
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(&r.bytes().await.unwrap()[..], b"hello");
        assert_eq!(r.connection_reused(), i == 1);
    }
    let names: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|n| format!("{}:{}", n.context, n.status.name()))
        .collect();
    eprintln!("{names:#?}");
    assert!(names.iter().any(|n| n == "11:CONNECTION_REUSED"));
    assert!(!names
        .iter()
        .any(|n| n == "11:RESOLVING_NAME" || n == "11:CONNECTING_TO_SERVER"));
}

#[tokio::test]
async fn the_body_streams_as_bytes_pieces() {
    use futures_core::Stream;
    use std::future::poll_fn;
    use std::pin::Pin;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            .await
            .unwrap();
        s.write_all(b"4\r\ndefg\r\n0\r\n\r\n").await.unwrap();
    });
    let session = Session::new(Config::default()).unwrap();
    let req = session
        .open_url(&format!("http://127.0.0.1:{port}/"), 1)
        .await
        .unwrap();
    let mut body = req.into_stream();
    let mut all = Vec::new();
    while let Some(piece) = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
        all.extend_from_slice(&piece.unwrap());
    }
    assert_eq!(all, b"abcdefg");
}

/// Operations are `Send`: they can run in spawned tasks.
#[allow(dead_code)]
fn operations_are_send(s: Session, mut r: httpq_client::RequestHandle) {
    fn is_send<T: Send>(_: T) {}
    is_send(async move { s.open_url("http://h/", 0).await });
    is_send(async move {
        let mut buf = [0u8; 8];
        let _ = r.send(None).await;
        let _ = r.send_headers(None).await;
        let _ = r.write(b"x").await;
        let _ = r.end_request().await;
        r.read(&mut buf).await
    });
}

/// A streamed upload larger than the server's body pipe (64 KiB) arrives
/// whole at httpq's server: it pauses reading while the application is
/// behind and resumes by itself (a regression: it used to wait for a
/// readiness event that a client blocked on a full window never causes).
#[tokio::test]
async fn an_upload_past_the_server_pipe_arrives_whole() {
    use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};
    let server = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("echo");
    let group = server.create_url_group();
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
            let id = req.id();
            let mut body = Vec::new();
            while let Ok(Some(c)) = q.receive_body_chunk(id).await {
                body.extend_from_slice(&c);
            }
            let _ = q
                .send_response(id, Response::new(200).body(body), SendFlags::NONE)
                .await;
        }
    });
    let s = Session::new(Config::default()).unwrap();
    let mut r = s
        .request("PUT", &format!("http://127.0.0.1:{port}/up"), 1)
        .unwrap();
    r.send_headers(None).await.unwrap();
    let data: Vec<u8> = (0..1_000_003usize).map(|i| (i * 31 % 251) as u8).collect();
    let sizes = [1usize, 7, 100, 4096, 65536, 3, 200_000];
    let (mut rest, mut i) = (&data[..], 0);
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        assert_eq!(r.write(&rest[..n]).await.unwrap(), n);
        rest = &rest[n..];
        i += 1;
    }
    let limit = std::time::Duration::from_secs(10);
    tokio::time::timeout(limit, r.end_request())
        .await
        .expect("the server stalled on the body")
        .unwrap();
    assert_eq!(r.status(), 200);
    let back = tokio::time::timeout(limit, r.bytes())
        .await
        .unwrap()
        .unwrap();
    assert!(back[..] == data[..], "the echoed body differs");
}
