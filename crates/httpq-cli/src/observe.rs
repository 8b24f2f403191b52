//! What a running server says about itself: its metrics in the Prometheus
//! text format, and its state as JSON (`/_httpq/state`, the dashboard's events).

use std::fmt;
use std::time::{Duration, SystemTime};

use httpq_server::{
    HalfClosePolicy, MetricsSnapshot, Properties, QueueState, ServiceState, Timeouts,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};

/// The `Content-Type` of [`metrics_text`]: Prometheus text format 0.0.4.
pub(crate) const METRICS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The Prometheus text (format 0.0.4) of one scrape: the session's metrics
/// and its request queues.
pub(crate) fn metrics_text(metrics: MetricsSnapshot, queues: Vec<QueueState>) -> String {
    // A registry per scrape: the values are a snapshot summed from the
    // workers, not live metric objects the registry could own.
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape { metrics, queues }));
    let mut out = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail; an encoder error would be a bug in
    // the names above, and an empty page is the honest answer to it.
    if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

/// One number of a request queue's state.
type QueueField = fn(&QueueState) -> usize;

/// One scrape's values, encoded by the registry.
struct Scrape {
    metrics: MetricsSnapshot,
    queues: Vec<QueueState>,
}

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrape")
            .field("queues", &self.queues.len())
            .finish_non_exhaustive()
    }
}

/// A family of one series without labels.
fn single(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

/// A family of series told apart by one label.
fn by_label<V: Copy>(
    enc: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    label: &str,
    series: impl IntoIterator<Item = (String, V)>,
    metric: impl Fn(V) -> Box<dyn EncodeMetric>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, kind)?;
    for (value_of_label, v) in series {
        let labels = [(label, value_of_label.as_str())];
        metric(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(v: u64) -> Box<dyn EncodeMetric> {
    Box::new(ConstCounter::new(v))
}

fn gauge(v: u64) -> Box<dyn EncodeMetric> {
    // Gauges are i64 in the encoder; nothing here comes near 2^63.
    Box::new(ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)))
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let m = &self.metrics;
        let c = &m.counters;

        // The encoder appends `_total` to counter names.
        let mut requests = enc.encode_descriptor(
            "httpq_requests",
            "Responses completed, by request method and status class",
            None,
            MetricType::Counter,
        )?;
        for r in &m.requests {
            let labels = [("method", r.method), ("class", r.class)];
            ConstCounter::new(r.count).encode(requests.encode_family(&labels)?)?;
        }

        let buckets: Vec<(f64, u64)> = m
            .duration
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(m.duration.counts.iter().copied())
            .collect();
        // The +Inf bucket and _count must agree; the buckets are what
        // was counted, so the count is taken from them.
        let count = buckets.iter().map(|&(_, n)| n).sum();
        let mut duration = enc.encode_descriptor(
            "httpq_request_duration_seconds",
            "Time from a request's parsed head to its response's last byte written (HTTP/2: handed to its stream)",
            None,
            MetricType::Histogram,
        )?;
        duration.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            m.duration.sum_seconds,
            count,
            &buckets,
            None,
        )?;

        let counters: [(&str, &str, u64); 15] = [
            (
                "httpq_response_bytes",
                "Body bytes of completed responses",
                m.response_body_bytes,
            ),
            (
                "httpq_sent_bytes",
                "Bytes written to clients, heads and framing included",
                c.bytes_sent,
            ),
            (
                "httpq_received_bytes",
                "Bytes read from clients",
                c.bytes_received,
            ),
            (
                "httpq_connections_accepted",
                "Connections accepted",
                c.connections_accepted,
            ),
            (
                "httpq_requests_received",
                "Request heads parsed and routed or refused",
                c.requests_received,
            ),
            (
                "httpq_requests_abandoned",
                "Requests whose connection ended before their response",
                c.requests_abandoned,
            ),
            (
                "httpq_queue_rejections",
                "Requests refused because their request queue was full",
                c.queue_rejections,
            ),
            (
                "httpq_protocol_errors",
                "Malformed requests answered with an error status",
                c.protocol_errors,
            ),
            (
                "httpq_unrouted_requests",
                "Requests under no registered URL prefix",
                c.unrouted,
            ),
            (
                "httpq_tls_handshakes",
                "TLS handshakes completed",
                c.tls_handshakes,
            ),
            (
                "httpq_tls_handshake_failures",
                "TLS handshakes that failed",
                c.tls_handshake_failures,
            ),
            ("httpq_h2_streams", "HTTP/2 streams opened", c.h2_streams),
            (
                "httpq_h2_resets",
                "HTTP/2 streams reset by the client",
                c.h2_resets,
            ),
            (
                "httpq_responses_sent",
                "Responses completed",
                c.responses_sent,
            ),
            (
                "httpq_access_log_dropped",
                "Access log lines dropped because the log's writer fell behind",
                c.access_log_dropped,
            ),
        ];
        for (name, help, v) in counters {
            single(&mut enc, name, help, &ConstCounter::new(v))?;
        }
        by_label(
            &mut enc,
            (
                "httpq_disconnects",
                "Connections and HTTP/2 streams ended by the client or an error, by reason",
                MetricType::Counter,
            ),
            "reason",
            m.disconnects.iter().map(|&(r, n)| (r.to_string(), n)),
            counter,
        )?;
        by_label(
            &mut enc,
            (
                "httpq_timeouts",
                "Server timeouts that fired, by http.sys timeout",
                MetricType::Counter,
            ),
            "timeout",
            m.timeouts.iter().map(|&(t, n)| (t.to_string(), n)),
            counter,
        )?;

        single(
            &mut enc,
            "httpq_connections_open",
            "Connections open now",
            &ConstGauge::new(i64::try_from(c.connections_open).unwrap_or(i64::MAX)),
        )?;
        single(
            &mut enc,
            "httpq_requests_in_flight",
            "Requests handed to request queues and not yet answered",
            &ConstGauge::new(i64::try_from(m.in_flight).unwrap_or(i64::MAX)),
        )?;
        let queues: [(&str, &str, QueueField); 3] = [
            (
                "httpq_request_queue_length",
                "Requests waiting in the request queue",
                |q| q.length,
            ),
            (
                "httpq_request_queue_consumers",
                "Receive calls waiting on the request queue",
                |q| q.consumers,
            ),
            (
                "httpq_request_queue_in_flight",
                "Requests received from the queue and not yet answered",
                |q| q.in_flight,
            ),
        ];
        for (name, help, value) in queues {
            by_label(
                &mut enc,
                (name, help, MetricType::Gauge),
                "queue",
                self.queues
                    .iter()
                    .map(|q| (q.name.clone(), value(q) as u64)),
                gauge,
            )?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ JSON

/// A duration as the config file writes one: "2s", "500ms", "2m".
pub(crate) fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The six http.sys timeouts, by their snake_case names.
pub(crate) fn timeouts_json(t: &Timeouts) -> Value {
    json!({
        "entity_body": duration_text(t.entity_body),
        "drain_entity_body": duration_text(t.drain_entity_body),
        "request_queue": duration_text(t.request_queue),
        "idle_connection": duration_text(t.idle_connection),
        "header_wait": duration_text(t.header_wait),
        "min_send_rate": t.min_send_rate,
    })
}

fn properties_json(p: &Properties) -> Value {
    let l = &p.limits;
    let h = &p.http2;
    json!({
        "max_connections": p.max_connections,
        "max_pipelined": p.max_pipelined,
        "server_header": p.server_header,
        "half_close": match p.half_close {
            HalfClosePolicy::Disconnect => "disconnect",
            HalfClosePolicy::Allow => "allow",
        },
        "tcp_keepalive": p.tcp_keepalive.map(|k| json!({
            "idle": duration_text(k.idle),
            "interval": duration_text(k.interval),
            "retries": k.retries,
        })),
        "max_unsent_bytes": p.max_unsent_bytes,
        "return_memory": p.return_memory,
        "timeouts": timeouts_json(&p.timeouts),
        "limits": {
            "max_head_bytes": l.max_head_bytes,
            "max_field_bytes": l.max_field_bytes,
            "max_headers": l.max_headers,
            "max_url_segment_len": l.max_url_segment_len,
            "max_url_segments": l.max_url_segments,
            "max_body_bytes": l.max_body_bytes,
        },
        "http2": {
            "enable_tls": h.enable_tls,
            "enable_cleartext": h.enable_cleartext,
            "max_concurrent_client_streams": h.max_concurrent_client_streams,
            "max_header_list_size": h.max_header_list_size,
            "initial_window_size": h.initial_window_size,
            "connection_window_size": h.connection_window_size,
            "max_frame_size": h.max_frame_size,
            "max_client_resets_per_second": h.max_client_resets_per_second,
        },
    })
}

/// A wall-clock time as RFC 3339, to the millisecond, in UTC.
fn time_text(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn queues_json(queues: &[QueueState]) -> Value {
    queues
        .iter()
        .map(|q| {
            json!({
                "id": q.id,
                "name": q.name,
                "length": q.length,
                "consumers": q.consumers,
                "in_flight": q.in_flight,
            })
        })
        .collect()
}

fn disconnects_json(state: &ServiceState) -> Value {
    state
        .recent_disconnects
        .iter()
        .map(|d| {
            json!({
                "at": time_text(d.at),
                "connection_id": d.connection_id,
                "peer": d.peer.to_string(),
                "path": d.path,
                "reason": d.reason.to_string(),
            })
        })
        .collect()
}

/// The whole state, as `GET /_httpq/state` and `httpq state --json` give it.
pub(crate) fn state_json(state: &ServiceState) -> Value {
    let s = &state.session;
    // Whole seconds: the nanoseconds of an uptime are noise to a reader.
    let uptime = Duration::from_secs(s.uptime.as_secs());
    json!({
        "session": {
            "id": s.id,
            "workers": s.workers,
            "listening": s.listening.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "uptime": duration_text(uptime),
            "properties": properties_json(&s.properties),
        },
        "url_groups": state.url_groups.iter().map(|g| json!({
            "id": g.id,
            "prefixes": g.prefixes.iter().map(|p| json!({"url": p.url, "context": p.context})).collect::<Vec<_>>(),
            "timeouts": timeouts_json(&g.timeouts),
            "own_timeouts": g.own_timeouts,
            "queue": g.queue,
        })).collect::<Vec<_>>(),
        "request_queues": queues_json(&state.request_queues),
        "connections": state.connections.iter().map(|c| json!({
            "id": c.id,
            "peer": c.peer.to_string(),
            "local": c.local.to_string(),
            "protocol": c.protocol,
            "tls": c.tls,
            "state": c.state,
            "in_flight": c.in_flight,
            "current_request": c.current_request.as_ref().map(|r| json!({
                "id": r.id,
                "method": r.method,
                "path": r.path,
            })),
        })).collect::<Vec<_>>(),
        "recent_disconnects": disconnects_json(state),
    })
}

/// One dashboard update: the totals the page shows and derives rates from,
/// the queues, and the latest disconnects.
pub(crate) fn event_json(metrics: &MetricsSnapshot, state: &ServiceState) -> Value {
    let total: u64 = metrics.requests.iter().map(|r| r.count).sum();
    json!({
        "uptime_seconds": state.session.uptime.as_secs_f64(),
        "requests_total": total,
        "requests_in_flight": metrics.in_flight,
        "connections_open": metrics.counters.connections_open,
        "bytes_sent": metrics.counters.bytes_sent,
        "bytes_received": metrics.counters.bytes_received,
        "request_queues": queues_json(&state.request_queues),
        "recent_disconnects": disconnects_json(state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_config_file_writes_them() {
        assert_eq!(duration_text(Duration::from_secs(2)), "2s");
        assert_eq!(duration_text(Duration::from_millis(500)), "500ms");
        let t = timeouts_json(&Timeouts::default());
        assert_eq!(t["min_send_rate"], 150);
        assert_eq!(t["header_wait"], "2m");
    }
}
