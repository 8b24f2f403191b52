//! `httpq state`: the `netsh http show servicestate` of a running httpq —
//! its `/_httpq/state` fetched with the project's client, printed for people or as JSON.
//!
//! Exit codes: 7 the server cannot be reached (as `httpq get`), 1 anything
//! else (an error status, a body that is not the state).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use httpq_client::{blocking, ClientError, Config};
use serde_json::Value;

/// Arguments of `httpq state`.
#[derive(clap::Args, Debug, Clone)]
pub struct StateArgs {
    /// The running server, `http://HOST:PORT`; its `/_httpq/state` is read.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print the state as JSON (the server's, indented) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How long the whole fetch may take. The state is answered from the
/// control queue, away from the site's traffic, so this is only a bound
/// for a server that stopped answering at all.
const FETCH_LIMIT: Duration = Duration::from_secs(10);

/// Runs `httpq state`.
pub fn run(args: StateArgs) -> ExitCode {
    match fetch(&state_url(&args.url)).and_then(|body| print(&body, args.json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("httpq: {message}");
            ExitCode::from(code)
        }
    }
}

/// The state URL for a server URL given with or without a scheme, a
/// trailing slash or the state path itself.
fn state_url(server: &str) -> String {
    let base = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    let base = base.trim_end_matches('/');
    if base.ends_with("/_httpq/state") {
        base.to_string()
    } else {
        format!("{base}/_httpq/state")
    }
}

/// The body of a 200 answer to GET `url`, or (exit code, message).
fn fetch(url: &str) -> Result<Vec<u8>, (u8, String)> {
    let failed = |e: ClientError| {
        let code = match e {
            ClientError::CannotConnect { .. } => 7,
            _ => 1,
        };
        (code, format!("{url}: {e}"))
    };
    let mut config = Config::default();
    config.timeouts.total = Some(FETCH_LIMIT);
    let session = blocking::Session::new(config).map_err(failed)?;
    let mut req = session.get(url).map_err(failed)?;
    let status = req.status();
    let body = req.bytes().map_err(failed)?;
    if status != 200 {
        return Err((
            1,
            format!("{url}: status {status} (is it an httpq server?)"),
        ));
    }
    Ok(body.to_vec())
}

fn print(body: &[u8], json: bool) -> Result<(), (u8, String)> {
    let state: Value = serde_json::from_slice(body)
        .map_err(|e| (1, format!("the server's state is not JSON: {e}")))?;
    let out = if json {
        let mut s = serde_json::to_string_pretty(&state).unwrap_or_default();
        s.push('\n');
        s
    } else {
        render(&state)
    };
    use std::io::Write as _;
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| (1, format!("cannot write the output: {e}")))
}

/// A JSON value as a person reads it: strings bare, absent as "-".
fn v(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The six timeouts, one a line, at `indent`.
fn timeouts(out: &mut String, t: &Value, indent: &str) {
    for (key, name) in [
        ("entity_body", "Entity body"),
        ("drain_entity_body", "Drain entity body"),
        ("request_queue", "Request queue"),
        ("idle_connection", "Idle connection"),
        ("header_wait", "Header wait"),
        ("min_send_rate", "Min send rate (bytes/s)"),
    ] {
        let _ = writeln!(out, "{indent}{name}: {}", v(&t[key]));
    }
}

/// The text form, laid out as `netsh http show servicestate`.
fn render(s: &Value) -> String {
    let mut out = String::new();
    let session = &s["session"];
    let p = &session["properties"];
    let _ = writeln!(out, "Snapshot of httpq service state\n");
    let _ = writeln!(out, "Server session: {}", v(&session["id"]));
    let _ = writeln!(out, "    Uptime: {}", v(&session["uptime"]));
    let _ = writeln!(out, "    Workers: {}", v(&session["workers"]));
    let listening: Vec<String> = list(&session["listening"]).iter().map(v).collect();
    let _ = writeln!(out, "    Listening on: {}", listening.join(" "));
    let _ = writeln!(out, "    Properties:");
    for (key, name) in [
        ("max_connections", "Max connections"),
        ("max_pipelined", "Max pipelined requests"),
        ("max_unsent_bytes", "Max unsent bytes"),
        ("half_close", "Half close"),
        ("server_header", "Server header"),
    ] {
        let _ = writeln!(out, "        {name}: {}", v(&p[key]));
    }
    let k = &p["tcp_keepalive"];
    if k.is_null() {
        let _ = writeln!(out, "        TCP keepalive: off");
    } else {
        let _ = writeln!(
            out,
            "        TCP keepalive: idle {}, every {}, {} probes",
            v(&k["idle"]),
            v(&k["interval"]),
            v(&k["retries"])
        );
    }
    let h2 = &p["http2"];
    let _ = writeln!(
        out,
        "        HTTP/2: TLS {}, cleartext {}, max streams {}",
        v(&h2["enable_tls"]),
        v(&h2["enable_cleartext"]),
        v(&h2["max_concurrent_client_streams"])
    );
    let _ = writeln!(out, "        Timeouts:");
    timeouts(&mut out, &p["timeouts"], "            ");

    let _ = writeln!(out, "\n    URL groups:");
    for g in list(&s["url_groups"]) {
        let _ = writeln!(out, "    URL group: {}", v(&g["id"]));
        let _ = writeln!(out, "        Request queue: {}", v(&g["queue"]));
        let whose = if g["own_timeouts"].as_bool() == Some(true) {
            "its own"
        } else {
            "the session's"
        };
        let _ = writeln!(out, "        Timeouts ({whose}):");
        timeouts(&mut out, &g["timeouts"], "            ");
        let _ = writeln!(out, "        Registered URLs:");
        for prefix in list(&g["prefixes"]) {
            let _ = writeln!(
                out,
                "            {} (context {})",
                v(&prefix["url"]),
                v(&prefix["context"])
            );
        }
    }

    let _ = writeln!(out, "\nRequest queues:");
    for q in list(&s["request_queues"]) {
        let _ = writeln!(out, "    Request queue: {}", v(&q["name"]));
        let _ = writeln!(out, "        Waiting requests: {}", v(&q["length"]));
        let _ = writeln!(out, "        Consumers waiting: {}", v(&q["consumers"]));
        let _ = writeln!(out, "        Requests in flight: {}", v(&q["in_flight"]));
    }

    let connections = list(&s["connections"]);
    let _ = writeln!(out, "\nConnections: {}", connections.len());
    for c in connections {
        let _ = writeln!(out, "    Connection: {}", v(&c["id"]));
        let _ = writeln!(out, "        Peer: {}", v(&c["peer"]));
        let _ = writeln!(out, "        Local: {}", v(&c["local"]));
        let tls = if c["tls"].as_bool() == Some(true) {
            ", TLS"
        } else {
            ""
        };
        let _ = writeln!(out, "        Protocol: {}{tls}", v(&c["protocol"]));
        let _ = writeln!(out, "        State: {}", v(&c["state"]));
        let _ = writeln!(out, "        Requests in flight: {}", v(&c["in_flight"]));
        let r = &c["current_request"];
        if !r.is_null() {
            let _ = writeln!(
                out,
                "        Current request: {} {} {}",
                v(&r["id"]),
                v(&r["method"]),
                v(&r["path"])
            );
        }
    }

    let disconnects = list(&s["recent_disconnects"]);
    if !disconnects.is_empty() {
        let _ = writeln!(out, "\nRecent disconnects (newest first):");
        for d in disconnects {
            let _ = writeln!(
                out,
                "    {} connection {} {} {}: {}",
                v(&d["at"]),
                v(&d["connection_id"]),
                v(&d["peer"]),
                v(&d["path"]),
                v(&d["reason"])
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_url_is_found_from_what_people_type() {
        let want = "http://127.0.0.1:8080/_httpq/state";
        for given in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "127.0.0.1:8080",
            want,
        ] {
            assert_eq!(state_url(given), want, "{given}");
        }
    }

    #[test]
    fn text_survives_a_state_with_parts_missing() {
        let text = render(&serde_json::json!({"connections": [{"id": 3, "peer": "[::1]:9"}]}));
        assert!(text.contains("Connection: 3"), "{text}");
        assert!(text.contains("Peer: [::1]:9"), "{text}");
    }
}
