//! Echo benchmark server on hyper 1.x, the peer of `httpq serve --echo`:
//! 200 with the request's body (collected) and its Content-Type, on one
//! current-thread runtime (hyper's fastest single-core setting), with
//! pipeline_flush on. Usage: echo-hyper PORT

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

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
    httpq_bench::serve_hyper(port, echo);
}
