//! A hello-world server on plain threads with the blocking calls: the Rust
//! twin of the C loop in bench/capi/hello.c, for measuring the C face's cost.
//! `cargo run --release -p httpq-server --example hello_blocking [PORT] [THREADS]`

use httpq_server::{Properties, RequestQueue, Response, SendFlags, ServerSession};

fn main() -> Result<(), httpq_server::ServerError> {
    let mut args = std::env::args().skip(1);
    let port = args.next().unwrap_or_else(|| "8080".into());
    let threads: usize = args.next().map_or(2, |t| t.parse().expect("THREADS"));
    let session = ServerSession::new(Properties::default())?;
    let queue = RequestQueue::new("hello");
    let group = session.create_url_group();
    group.bind(&queue);
    group.add_url(&format!("http://127.0.0.1:{port}/"), 0)?;
    println!("listening on http://127.0.0.1:{port}/");
    let consumers: Vec<_> = (0..threads)
        .map(|_| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                while let Ok(req) = queue.receive_blocking() {
                    let hello = Response::new(200)
                        .header("content-type", "text/plain")
                        .body("Hello, World!");
                    let _ = queue.send_response_blocking(req.id(), hello, SendFlags::NONE);
                }
            })
        })
        .collect();
    for c in consumers {
        let _ = c.join();
    }
    Ok(())
}
