//! Plaintext benchmark server on httpq, through the request-queue API:
//! one current-thread runtime, the application loop on the same thread.
//! Usage: plaintext-httpq PORT [--no-server-header]
//! (httpq writes `Server: httpq/x.y.z` by default, as http.sys writes its
//! own; the hyper server writes none, so the flag makes the bytes equal.)

use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
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
        println!("listening on http://127.0.0.1:{port}/");
        let hello = bytes::Bytes::from_static(b"Hello, World!");
        loop {
            let req = queue.receive().await.unwrap();
            // The same header calls as the hyper server's, for a fair comparison.
            let mut resp = Response::new(200).body(hello.clone());
            resp.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            );
            let _ = queue.send_response(req.id(), resp, SendFlags::NONE).await;
        }
    });
}
