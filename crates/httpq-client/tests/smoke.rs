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
