//! The `/_httpq/` dashboard in a real browser: headless Chromium, driven
//! over the DevTools protocol, sees new totals, queues and disconnects without a reload.

mod common;
#[path = "support/tools.rs"]
mod tools;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::raw::TempDir;
use common::{Conn, Server, Site, LIMIT};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// A headless Chromium, killed (and its profile removed) on drop.
struct Browser {
    child: Child,
    port: u16,
    _profile: TempDir,
}

impl Browser {
    fn launch(binary: &Path) -> Browser {
        let profile = TempDir::new();
        let child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let mut browser = Browser {
            child,
            port: 0,
            _profile: profile,
        };
        // Chromium writes the port it took to this file once it listens.
        let file = browser._profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + LIMIT;
        browser.port = loop {
            let port = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.lines().next()?.trim().parse().ok());
            if let Some(p) = port {
                break p;
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                panic!("chromium exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "chromium never wrote {file:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        browser
    }

    /// A DevTools connection to the first page target.
    fn page(&self) -> Page {
        let mut c = Conn::open(([127, 0, 0, 1], self.port).into());
        c.send(b"GET /json/list HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let r = c.response("GET").expect("the target list");
        let targets: Value = serde_json::from_slice(&r.body).unwrap();
        let url = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page target: {targets:#}"))
            .to_string();
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools WebSocket");
        Page { ws, next_id: 1 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page's DevTools session: commands out, their answers back (events skipped).
struct Page {
    ws: WebSocket<TcpStream>,
    next_id: u64,
}

impl Page {
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.ws.read().expect("a DevTools message") else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// Polls `expr` until `ok` holds of its value; the last value.
    fn wait_for(&mut self, what: &str, expr: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            let v = self.eval(expr);
            if ok(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; last {expr} = {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text_of(&mut self, id: &str) -> String {
        let v = self.eval(&format!("document.getElementById('{id}').textContent"));
        v.as_str().unwrap_or_default().to_string()
    }
}

/// The sum of `httpq_requests_total` in one scrape (which does not count itself).
fn requests_total(server: &Server) -> u64 {
    let r = server.get("/_httpq/metrics");
    assert_eq!(r.status, 200);
    r.text()
        .lines()
        .filter(|l| l.starts_with("httpq_requests_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum()
}

const CONTROL_IN_FLIGHT: &str =
    "document.querySelector('#queues tr[data-queue=\"control\"] td[data-field=\"in_flight\"]')?.textContent ?? null";

#[test]
fn the_dashboard_updates_itself_in_a_browser() {
    let Some(chromium) = tools::find_or_install(
        &["chromium", "chromium-browser", "google-chrome"],
        "chromium",
        "the dashboard in headless Chromium",
    ) else {
        return;
    };
    let site = Site::new();
    let server = Server::serve(&site.root());
    let browser = Browser::launch(&chromium);
    let mut page = browser.page();
    page.call("Page.navigate", json!({"url": server.url("/_httpq/")}));
    page.wait_for(
        "the first event",
        "document.getElementById('total').textContent",
        |v| v.as_str().is_some_and(|s| s.parse::<u64>().is_ok()),
    );

    // The scrape is not in its own count; once answered, it is in the page's.
    let shown = requests_total(&server) + 1;
    page.wait_for(
        "the page to show the current count",
        "document.getElementById('total').textContent",
        |v| v.as_str() == Some(shown.to_string().as_str()),
    );

    // More requests, and the page follows without being navigated again.
    for _ in 0..5 {
        assert_eq!(server.get("/notes.txt").status, 200);
    }
    let now = (shown + 5).to_string();
    page.wait_for(
        "the page to show five more",
        "document.getElementById('total').textContent",
        |v| v.as_str() == Some(now.as_str()),
    );
    assert!(page.text_of("connections").parse::<u64>().is_ok());
    // A rate needs two updates.
    page.wait_for(
        "a request rate",
        "document.getElementById('rps').textContent",
        |v| v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
    );
    let queues = page.text_of("queues");
    assert!(
        queues.contains("static") && queues.contains("control"),
        "{queues}"
    );

    // A held request shows in the control queue's in-flight count; when its
    // client goes, it leaves and a disconnect row appears.
    let quiet: u64 = page
        .wait_for("the control queue row", CONTROL_IN_FLIGHT, Value::is_string)
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut held = server.connect();
    held.send(b"GET /_httpq/delay?ms=5000 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let peer = held.stream.local_addr().unwrap().to_string();
    let busy = (quiet + 1).to_string();
    page.wait_for("the held request in flight", CONTROL_IN_FLIGHT, |v| {
        v.as_str() == Some(busy.as_str())
    });
    drop(held);
    let row = page.wait_for(
        "a disconnect row for the held request",
        &format!(
            "[...document.querySelectorAll('#disconnects tbody tr')].map(r => r.textContent).find(t => t.includes('{peer}')) ?? null"
        ),
        Value::is_string,
    );
    let row = row.as_str().unwrap();
    assert!(row.contains("/_httpq/delay"), "{row}");
    let quiet_again = quiet.to_string();
    page.wait_for("the held request gone", CONTROL_IN_FLIGHT, |v| {
        v.as_str() == Some(quiet_again.as_str())
    });

    // Nothing from outside: the page's resources are all its own origin's.
    let origins = page.eval(
        "[...new Set(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))]",
    );
    let own = format!("http://{}", server.addr);
    assert!(
        origins
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o == own.as_str()),
        "{origins}"
    );
    drop(page);
    drop(browser);
}
