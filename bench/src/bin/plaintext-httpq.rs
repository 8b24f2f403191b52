//! Plaintext benchmark server on httpq, written the obvious way: a
//! consumer loop on every worker (one per core this process may use, so
//! `taskset -c 0` gives one). Usage: plaintext-httpq PORT [--no-server-header]
//! (httpq writes `Server: httpq/x.y.z` by default, as http.sys writes its
//! own; the hyper server writes none, so the flag makes the bytes equal.)

use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    let mut props = Properties::default();
    if std::env::args().any(|a| a == "--no-server-header") {
        props.server_header = None;
    }
    let session = ServerSession::new(props).unwrap();
    let queue = RequestQueue::new("plaintext");
    let group = session.create_url_group();
    group.bind(&queue);
    group
        .add_url(&format!("http://127.0.0.1:{port}/"), 1)
        .unwrap();
    let hello = bytes::Bytes::from_static(b"Hello, World!");
    session.spawn_on_workers(move |_| {
        let (queue, hello) = (queue.clone(), hello.clone());
        async move {
            while let Ok(req) = queue.receive().await {
                // The same header calls as the hyper server's, for a fair comparison.
                let mut resp = Response::new(200).body(hello.clone());
                resp.headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain"),
                );
                let _ = queue.send_response(req.id(), resp, SendFlags::NONE).await;
            }
        }
    });
    println!("listening on http://127.0.0.1:{port}/");
    loop {
        std::thread::park();
    }
}
