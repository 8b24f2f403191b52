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

/// The blocking facade works from a plain thread, with no runtime around:
/// two requests on one kept-alive connection.
#[test]
fn the_blocking_facade_fetches_from_a_plain_thread() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered = 0;
        while answered < 2 {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed early");
            seen.extend_from_slice(&buf[..n]);
            while let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                seen.drain(..i + 4);
                answered += 1;
                let body = format!("answer {answered}");
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        }
        answered
    });
    let s = httpq_client::blocking::Session::new(Config::default()).unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut r = s.get(&url).unwrap();
    assert_eq!(r.status(), 200);
    let mut buf = [0u8; 3];
    let mut body = Vec::new();
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    assert_eq!(body, b"answer 1");
    let mut r = s.get(&url).unwrap();
    assert_eq!(&r.bytes().unwrap()[..], b"answer 2");
    assert_eq!(server.join().unwrap(), 2);
}
