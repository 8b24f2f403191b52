//! The `/_httpq/` control prefix: the server's own pages (stats, and a
//! delay that shows disconnect handling), answered from their own queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use httpq_server::{Request, RequestQueue, Response, SendFlags, ServerError, ServerSession};

/// Counters of the CLI's own handlers, beside the server's in the stats.
/// The server counts a request as abandoned when its connection ends with
/// the request held, whatever the handler does next; these say whether the
/// handler really stopped.
#[derive(Default)]
pub(crate) struct CliCounters {
    /// `/_httpq/delay` handlers running now.
    delays_in_flight: AtomicU64,
    /// Delays that stopped early because their connection ended.
    delays_abandoned: AtomicU64,
}

/// Holds one count of `delays_in_flight`; dropping it (however the handler
/// ends, even by being dropped itself) gives it back.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn enter(n: &'a AtomicU64) -> InFlight<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The `/_httpq/` control prefix: `stats` and `delay`.
pub(crate) async fn control(
    q: &RequestQueue,
    session: &ServerSession,
    mine: &CliCounters,
    req: Request,
) -> Result<(), ServerError> {
    let id = req.id();
    let path = req.url().path.to_ascii_lowercase();
    let plain = |status: u16, body: String| {
        Response::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body)
    };
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        let r = plain(405, "only GET and HEAD\n".into()).header("allow", "GET, HEAD");
        return q.send_response(id, r, SendFlags::NONE).await;
    }
    match path.as_str() {
        "/_httpq/stats" => {
            let snap = session.counters();
            let mut map: serde_json::Map<String, serde_json::Value> = snap
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
            for (k, v) in [
                ("delays_in_flight", &mine.delays_in_flight),
                ("delays_abandoned", &mine.delays_abandoned),
            ] {
                map.insert(k.to_string(), v.load(Ordering::Relaxed).into());
            }
            let mut body = BytesMut::from(serde_json::Value::Object(map).to_string().as_bytes());
            body.extend_from_slice(b"\n");
            let r = Response::new(200)
                .header("content-type", "application/json")
                .header("cache-control", "no-store")
                .body(body.freeze());
            q.send_response(id, r, SendFlags::NONE).await
        }
        "/_httpq/delay" => {
            let ms = req
                .url()
                .query
                .trim_start_matches('?')
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok());
            let Some(ms) = ms.filter(|&ms| ms <= 60_000) else {
                return q
                    .send_response(
                        id,
                        plain(400, "need ms=N with N <= 60000\n".into()),
                        SendFlags::NONE,
                    )
                    .await;
            };
            // The work (here, a sleep) is abandoned the moment the client goes away.
            let _running = InFlight::enter(&mine.delays_in_flight);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {
                    q.send_response(id, plain(200, "done\n".into()), SendFlags::NONE).await
                }
                _ = req.disconnected() => {
                    mine.delays_abandoned.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            }
        }
        _ => {
            q.send_response(
                id,
                plain(404, "unknown control path\n".into()),
                SendFlags::NONE,
            )
            .await
        }
    }
}
