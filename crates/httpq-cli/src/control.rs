//! The `/_httpq/` control prefix: the server's own pages (stats, metrics,
//! state, the dashboard and its events, and a delay that shows disconnect
//! handling), answered from their own queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use httpq_server::{Request, RequestQueue, Response, SendFlags, ServerError, ServerSession};

use crate::observe;

/// How often the dashboard's event stream sends an update.
const EVENT_INTERVAL: Duration = Duration::from_secs(1);

/// Whether `state()` walks the connections. Without the walk the server
/// reports every queue's in-flight count as 0 (it counts them from the
/// connections), so the metrics and the dashboard take the walk too.
const QUEUE_IN_FLIGHT: bool = true;

/// Where the dashboard's page may load from: itself only. Everything it
/// needs is compiled into the binary, so anything else is a mistake.
const DASHBOARD_CSP: &str =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

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
    /// The server is shutting down: event streams end (they would
    /// otherwise hold the shutdown for its whole grace).
    stopping: tokio::sync::watch::Sender<bool>,
    /// `--control-remote`: the pages that show other clients (state,
    /// events) answer any client, not only the loopback.
    remote: bool,
}

impl CliCounters {
    pub(crate) fn new(remote: bool) -> CliCounters {
        CliCounters {
            remote,
            ..CliCounters::default()
        }
    }

    /// May this client see other clients' addresses and paths?
    fn may_see_clients(&self, peer: std::net::SocketAddr) -> bool {
        let ip = match peer.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        self.remote || ip.is_loopback()
    }

    /// Ends every event stream, now and from now on.
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once [`stop`](Self::stop) has been called.
    async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|&s| s).await;
    }
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

/// The `/_httpq/` control prefix: `stats`, `metrics`, `state`, the
/// dashboard (`/_httpq/`, its script, style and `events`) and `delay`.
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
    let shows_clients = matches!(path.as_str(), "/_httpq/state" | "/_httpq/events");
    if shows_clients && !mine.may_see_clients(req.remote_addr()) {
        let r = plain(
            403,
            "this page shows other clients' addresses: only for the loopback, \
             unless the server runs with --control-remote\n"
                .into(),
        );
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
        "/_httpq/metrics" => {
            // The snapshot is taken while this request is still unanswered,
            // and the server counts a request when its response completes:
            // the scrape is not in its own numbers.
            let metrics = session.metrics();
            let queues = session.state(QUEUE_IN_FLIGHT).request_queues;
            let r = Response::new(200)
                .header("content-type", observe::METRICS_CONTENT_TYPE)
                .header("cache-control", "no-store")
                .body(observe::metrics_text(metrics, queues));
            q.send_response(id, r, SendFlags::NONE).await
        }
        "/_httpq/state" => {
            let connections = !req.url().query.contains("connections=0");
            let state = session.state(connections);
            let mut body = serde_json::to_vec(&observe::state_json(&state)).unwrap_or_default();
            body.push(b'\n');
            let r = Response::new(200)
                .header("content-type", "application/json")
                .header("cache-control", "no-store")
                .body(body);
            q.send_response(id, r, SendFlags::NONE).await
        }
        "/_httpq/" | "/_httpq/index.html" => {
            let r = asset(DASHBOARD_HTML, "text/html; charset=utf-8");
            q.send_response(id, r, SendFlags::NONE).await
        }
        "/_httpq/dashboard.js" => {
            let r = asset(DASHBOARD_JS, "text/javascript; charset=utf-8");
            q.send_response(id, r, SendFlags::NONE).await
        }
        "/_httpq/dashboard.css" => {
            let r = asset(DASHBOARD_CSS, "text/css; charset=utf-8");
            q.send_response(id, r, SendFlags::NONE).await
        }
        "/_httpq/events" => events(q, session, mine, req).await,
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

/// The dashboard page, its script and its style, compiled in: the page
/// makes no request beyond its own origin.
const DASHBOARD_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");

/// A dashboard file, with the policy that keeps the page to its own origin.
fn asset(body: &'static str, content_type: &str) -> Response {
    Response::new(200)
        .header("content-type", content_type)
        .header("content-security-policy", DASHBOARD_CSP)
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-cache")
        .body(Bytes::from_static(body.as_bytes()))
}

/// `/_httpq/events`: server-sent events, one `data:` line of JSON now and
/// then every [`EVENT_INTERVAL`], until the client goes. The response
/// never completes, so it is never counted in the totals it reports.
async fn events(
    q: &RequestQueue,
    session: &ServerSession,
    mine: &CliCounters,
    req: Request,
) -> Result<(), ServerError> {
    let id = req.id();
    let head = Response::new(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-store");
    if req.method() == http::Method::HEAD {
        return q.send_response(id, head, SendFlags::NONE).await;
    }
    q.send_response(id, head, SendFlags::MORE_DATA).await?;
    let mut tick = tokio::time::interval(EVENT_INTERVAL);
    // A stalled client makes ticks pile up; one update when it drains is enough.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = req.disconnected() => return Ok(()),
            // The stream ends, properly, so the shutdown need not wait for it.
            _ = mine.stopped() => return q.send_body(id, Bytes::new(), SendFlags::NONE).await,
        }
        let event = observe::event_json(&session.metrics(), &session.state(QUEUE_IN_FLIGHT));
        let message = format!("data: {event}\n\n");
        tokio::select! {
            sent = q.send_body(id, message, SendFlags::MORE_DATA) => sent?,
            _ = req.disconnected() => return Ok(()),
        }
    }
}
