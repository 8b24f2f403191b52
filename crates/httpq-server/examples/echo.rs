//! The README's example application: an echo server with a consumer on
//! every worker. `cargo run --release -p httpq-server --example echo [PORT]`

use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};

fn main() -> Result<(), httpq_server::ServerError> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8080".into());
    let session = ServerSession::new(Properties::default())?; // a worker per core
    let queue = RequestQueue::new("echo");
    queue.set_copy_body(64 * 1024); // bodies that have arrived come with the request
    queue.set_limit(16 * 1024); // http.sys's 1000 would shed 64 clients pipelining 16 deep
    let group = session.create_url_group();
    group.bind(&queue);
    group.add_url(&format!("http://127.0.0.1:{port}/"), 0)?;
    session.spawn_on_workers(move |_worker| {
        let queue = queue.clone();
        async move {
            while let Ok(req) = queue.receive().await {
                if !req.more_body() {
                    // The whole body is here: answer in one call.
                    let echo = Response::new(200).body(req.body().clone());
                    let _ = queue.send_response(req.id(), echo, SendFlags::NONE).await;
                    continue;
                }
                // A longer body is still arriving: read it in a task of its own.
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut body = req.body().to_vec();
                    while let Ok(Some(piece)) = queue.receive_body_chunk(req.id()).await {
                        body.extend_from_slice(&piece);
                    }
                    let echo = Response::new(200).body(body);
                    let _ = queue.send_response(req.id(), echo, SendFlags::NONE).await;
                });
            }
        }
    });
    println!("listening on http://127.0.0.1:{port}/");
    loop {
        std::thread::park(); // the workers serve until the process is stopped
    }
}
