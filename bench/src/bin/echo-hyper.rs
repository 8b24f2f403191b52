//! Echo benchmark server on hyper 1.x, the peer of `httpq serve --echo`:
//! 200 with the request's body (collected) and its Content-Type, on one
//! current-thread runtime (hyper's fastest single-core setting), with
//! pipeline_flush on. Usage: echo-hyper PORT

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn echo(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let content_type = req.headers().get(http::header::CONTENT_TYPE).cloned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut r = Response::new(Full::new(body));
    if let Some(ct) = content_type {
        r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
    }
    Ok(r)
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8083);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        println!("listening on http://127.0.0.1:{port}/");
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), service_fn(echo))
                    .await;
            });
        }
    });
}
