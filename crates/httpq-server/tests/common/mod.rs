//! Test support: a server on a free loopback port, and a raw client that
//! speaks bytes and reads responses with the protocol core's parser.
#![allow(dead_code)]

pub mod h2raw;

use std::time::Duration;

use bytes::BytesMut;
use httpq_proto::{BodyDecoder, Limits, ResponseParser};
use httpq_server::{
    CompletionQueue, CounterSnapshot, DisconnectReason, Properties, RequestQueue, ServerError,
    ServerSession, Timeouts, UrlGroup,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const LIMIT: Duration = Duration::from_secs(10);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub session: ServerSession,
    pub queue: RequestQueue,
    pub group: UrlGroup,
    pub port: u16,
}

impl Server {
    pub fn start(props: Properties) -> Server {
        let session = ServerSession::new(props).unwrap();
        let queue = RequestQueue::new("test");
        let group = session.create_url_group();
        group.bind(&queue);
        let port = free_port();
        group
            .add_url(&format!("http://127.0.0.1:{port}/"), 1)
            .unwrap();
        Server {
            session,
            queue,
            group,
            port,
        }
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.port).await
    }
}

pub struct Client {
    pub stream: TcpStream,
    buf: BytesMut,
    parser: ResponseParser,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client {
    pub async fn connect(port: u16) -> Client {
        Client::connect_to(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await
    }

    pub async fn connect_to(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: BytesMut::new(),
            parser: ResponseParser::new(Limits::default()),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response (to a request with `method`), or `None` if the
    /// connection closed first.
    pub async fn response_to(&mut self, method: &http::Method) -> Option<Resp> {
        tokio::time::timeout(LIMIT, self.read_response(method))
            .await
            .expect("response in time")
    }

    pub async fn response(&mut self) -> Option<Resp> {
        self.response_to(&http::Method::GET).await
    }

    async fn fill(&mut self) -> bool {
        self.buf.reserve(16 * 1024);
        matches!(self.stream.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    async fn read_response(&mut self, method: &http::Method) -> Option<Resp> {
        let head = loop {
            match self.parser.parse(&mut self.buf, method).unwrap() {
                Some(h) if h.is_informational() => continue,
                Some(h) => break h,
                None => {
                    if !self.fill().await {
                        return None;
                    }
                }
            }
        };
        let mut dec = BodyDecoder::new(head.body(), &Limits::default());
        let mut body = Vec::new();
        while !dec.is_done() {
            if self.buf.is_empty() && !self.fill().await {
                dec.finish_at_eof().unwrap();
                break;
            }
            let d = dec.decode(&self.buf).unwrap();
            body.extend_from_slice(&self.buf[d.data.clone()]);
            let _ = self.buf.split_to(d.consumed);
        }
        self.parser = ResponseParser::new(Limits::default());
        Some(Resp {
            status: head.status(),
            headers: head.header_map(),
            body,
        })
    }

    /// True once the server has closed the connection (reads EOF or reset).
    pub async fn closed(&mut self) -> bool {
        let r = tokio::time::timeout(LIMIT, async {
            loop {
                let mut b = [0u8; 1024];
                match self.stream.read(&mut b).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        r.unwrap_or(false)
    }

    /// Closes with RST instead of FIN.
    pub fn reset(self) {
        let std = self.stream.into_std().unwrap();
        socket2::SockRef::from(&std)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(std);
    }
}

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// Every field zero: "not set here" for a URL group.
pub const UNSET: Timeouts = Timeouts {
    header_wait: Duration::ZERO,
    entity_body: Duration::ZERO,
    drain_entity_body: Duration::ZERO,
    idle_connection: Duration::ZERO,
    request_queue: Duration::ZERO,
    min_send_rate: 0,
};

/// The three wait forms (future, blocking call, completion-queue post),
/// armed on one connection before it breaks.
///
/// The blocking wait runs on a thread of its own, not the runtime's
/// blocking pool: a test that fails with it still blocked then fails at
/// once, where a runtime would wait for its blocking task before shutting
/// down, and the test would hang.
pub struct Waiters {
    future: tokio::task::JoinHandle<Result<DisconnectReason, ServerError>>,
    blocking: tokio::sync::oneshot::Receiver<Result<DisconnectReason, ServerError>>,
    cq: CompletionQueue,
    conn: u64,
}

impl Waiters {
    pub fn arm(queue: &RequestQueue, conn: u64) -> Waiters {
        let q = queue.clone();
        let future = tokio::spawn(async move { q.wait_for_disconnect(conn).await });
        let q = queue.clone();
        let (tx, blocking) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(q.wait_for_disconnect_blocking(conn));
        });
        let cq = CompletionQueue::new();
        queue
            .wait_for_disconnect_posted(conn, &cq, 0xC0FFEE)
            .unwrap();
        Waiters {
            future,
            blocking,
            cq,
            conn,
        }
    }

    /// All three complete with the same reason, which is returned.
    pub async fn reason(self) -> DisconnectReason {
        self.reason_within(LIMIT).await
    }

    /// [`reason`](Self::reason), failing if any form takes longer than `limit`.
    pub async fn reason_within(self, limit: Duration) -> DisconnectReason {
        let a = tokio::time::timeout(limit, self.future)
            .await
            .expect("future in time")
            .unwrap()
            .unwrap();
        let b = tokio::time::timeout(limit, self.blocking)
            .await
            .expect("blocking in time")
            .unwrap()
            .unwrap();
        let cq = self.cq.clone();
        let c = tokio::time::timeout(limit, cq.next())
            .await
            .expect("posted in time");
        assert_eq!((c.key, c.connection_id), (0xC0FFEE, self.conn));
        assert_eq!(a, b, "future and blocking agree");
        assert_eq!(a, c.reason, "future and posted agree");
        a
    }
}

/// The counters once `done` holds of them. A response is counted just
/// after its bytes leave, on the thread that wrote them, so a client can
/// read it a moment before the count moves.
pub async fn counters_when(
    session: &ServerSession,
    done: impl Fn(&CounterSnapshot) -> bool,
) -> CounterSnapshot {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let n = session.counters();
        if done(&n) {
            return n;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "counters never got there: {n:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
