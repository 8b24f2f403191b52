//! Closing: a handle closed in each phase (resolve, connect, body; from
//! another task and from inside the status callback) completes its pending
//! operation as cancelled, then HANDLE_CLOSING, nothing after, and leaves
//! no connection open. Closing a session closes its children; dropping a
//! handle closes it.

mod support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpq_client::{ClientError, Closer, Config, Payload, Session, Status, Timeouts};
use support::*;
use tokio::time::Instant;

/// A close must take effect promptly (generous for a loaded machine).
const PROMPT: Duration = Duration::from_secs(2);

fn session(rec: &Recorder) -> Session {
    Session::new(config(rec, Timeouts::default())).unwrap()
}

fn session_with_resolver(rec: &Recorder, resolver: &SlowResolver) -> Session {
    Session::new(Config {
        resolver: Some(Arc::new(resolver.clone())),
        ..config(rec, Timeouts::default())
    })
    .unwrap()
}

/// After a cancelled operation: the error, the notification tail, the
/// handle rules, and no connection.
fn assert_cancelled(rec: &Recorder, s: &Session, id: u64, ctx: u64, r: Result<(), ClientError>) {
    assert_eq!(r, Err(ClientError::Cancelled), "{:?}", rec.names(id));
    let ns = rec.of(id);
    assert_cancelled_tail(&ns);
    assert_handle_rules(&ns, ctx);
    assert_eq!(
        completions(&ns).iter().filter(|c| c.is_err()).count(),
        1,
        "{:?}",
        names(&ns)
    );
    assert_eq!(s.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mid_resolve() {
    let resolver = SlowResolver::never();
    let rec = Recorder::new();
    let s = session_with_resolver(&rec, &resolver);
    let mut r = s.request("GET", "http://slow.test/", 1).unwrap();
    let (id, closer) = (r.id(), r.closer());
    let task = tokio::spawn(async move { r.send(None).await });
    rec.wait_for(id, Status::ResolvingName).await;
    let closed_at = Instant::now();
    closer.close();
    let result = tokio::time::timeout(PROMPT, task)
        .await
        .expect("close did not cancel the lookup")
        .unwrap();
    assert!(closed_at.elapsed() < PROMPT);
    assert_cancelled(&rec, &s, id, 1, result);
    assert!(!rec.names(id).contains(&"NAME_RESOLVED"));
    // The lookup itself was dropped, not left running.
    assert_eq!(resolver.abandoned.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mid_connect() {
    let target = Unaccepting::new();
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.request("GET", &target.url("/"), 2).unwrap();
    let (id, closer) = (r.id(), r.closer());
    let task = tokio::spawn(async move { r.send(None).await });
    rec.wait_for(id, Status::ConnectingToServer).await;
    closer.close();
    let result = tokio::time::timeout(PROMPT, task)
        .await
        .expect("close did not cancel the connect")
        .unwrap();
    assert_cancelled(&rec, &s, id, 2, result);
    assert!(!rec.names(id).contains(&"CONNECTED_TO_SERVER"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mid_body_from_another_task() {
    let server = Server::stalls_mid_body(100_000, 1000).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/"), 3).await.unwrap();
    let id = r.id();
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < 1000 {
        got += r.read(&mut buf).await.unwrap();
    }
    // The next read has to wait; close it from another task once it does.
    let waits = rec.count(id, Status::ReceivingResponse);
    let closer = r.closer();
    let rec2 = rec.clone();
    let task = tokio::spawn(async move {
        rec2.wait_for_nth(id, Status::ReceivingResponse, waits + 1)
            .await;
        closer.close();
        closer.close(); // idempotent
    });
    let result = tokio::time::timeout(PROMPT * 4, r.read(&mut buf))
        .await
        .expect("close did not cancel the read");
    task.await.unwrap();
    assert_cancelled(&rec, &s, id, 3, result.map(|_| ()));
    let n = rec.names(id);
    assert_eq!(
        n[n.len() - 4..],
        [
            "CLOSING_CONNECTION",
            "CONNECTION_CLOSED",
            "REQUEST_COMPLETE",
            "HANDLE_CLOSING"
        ]
    );
    // The server sees the connection close while the handle still exists.
    server.wait_eof().await;
    // The handle is closed: calls fail at once and notify nothing.
    assert_eq!(
        r.read(&mut buf).await,
        Err(ClientError::InvalidState("handle is closed"))
    );
    drop(r);
    assert_eq!(rec.names(id), n);
    server.stop().await;
}

#[tokio::test]
async fn close_from_inside_the_callback() {
    let server = Server::fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let target: Arc<Mutex<Option<Closer>>> = Arc::default();
    let t = target.clone();
    rec.set_hook(move |n| {
        if n.status == Status::ResponseReceived {
            if let Some(c) = t.lock().unwrap().as_ref() {
                if c.id() == n.handle {
                    c.close();
                }
            }
        }
    });
    let mut r = s.request("GET", &server.url("/"), 4).unwrap();
    let id = r.id();
    *target.lock().unwrap() = Some(r.closer());
    let result = tokio::time::timeout(PROMPT * 4, r.send(None))
        .await
        .expect("close from the callback did not end the send");
    let n = rec.names(id);
    assert_eq!(
        n[n.len() - 3..],
        ["RESPONSE_RECEIVED", "REQUEST_COMPLETE", "HANDLE_CLOSING"]
    );
    assert_cancelled(&rec, &s, id, 4, result);
    drop(r);
    assert_eq!(rec.names(id), n);
    server.wait_eof().await;
    server.stop().await;
}

#[tokio::test]
async fn close_from_inside_the_callback_during_a_body_read() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let server = Server::script(move |_| {
        let mut first = head(20);
        first.extend_from_slice(b"01234");
        vec![
            Step::Write(first),
            Step::Gate(g.clone()),
            Step::Write(b"56789".to_vec()),
            Step::Hold,
        ]
    })
    .await;
    let rec = Recorder::new();
    let s = session(&rec);
    let target: Arc<Mutex<Option<Closer>>> = Arc::default();
    let t = target.clone();
    rec.set_hook(move |n| {
        if n.status == Status::ResponseReceived {
            if let Some(c) = t.lock().unwrap().as_ref() {
                if c.id() == n.handle {
                    c.close();
                }
            }
        }
    });
    let mut r = s.open_url(&server.url("/"), 11).await.unwrap();
    let id = r.id();
    let mut buf = [0u8; 64];
    assert_eq!(r.read(&mut buf).await.unwrap(), 5);
    // From now on, the next bytes to arrive close the handle.
    *target.lock().unwrap() = Some(r.closer());
    gate.notify_one();
    let result = tokio::time::timeout(PROMPT * 4, r.read(&mut buf))
        .await
        .expect("close from the callback did not end the read");
    assert_cancelled(&rec, &s, id, 11, result.map(|_| ()));
    let n = rec.names(id);
    assert_eq!(
        n[n.len() - 3..],
        ["RESPONSE_RECEIVED", "REQUEST_COMPLETE", "HANDLE_CLOSING"]
    );
    server.wait_eof().await;
    drop(r);
    assert_eq!(rec.names(id), n);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_closes_its_children() {
    let server = Server::never_answers().await;
    let rec = Recorder::new();
    let s = Session::new(Config {
        context: 9,
        ..config(&rec, Timeouts::default())
    })
    .unwrap();
    let c = s
        .connect(httpq_client::Scheme::Http, "127.0.0.1", server.port(), 20)
        .unwrap();
    let mut idle_on_c = c.open_request("GET", "/idle", 21).unwrap();
    let mut idle = s.request("GET", &server.url("/idle"), 22).unwrap();
    let mut pending = c.open_request("GET", "/pending", 23).unwrap();
    let ids = [c.id(), idle_on_c.id(), idle.id(), pending.id()];
    let pid = pending.id();
    let task = tokio::spawn(async move {
        let r = pending.send(None).await;
        (pending, r)
    });
    rec.wait_for(pid, Status::ReceivingResponse).await;
    assert_eq!(s.open_connections(), 1);

    s.close();
    let (pending, result) = tokio::time::timeout(PROMPT, task)
        .await
        .expect("closing the session did not cancel the request")
        .unwrap();
    assert_cancelled(&rec, &s, pid, 23, result);
    server.wait_eof().await;

    // Every handle under the session closed, whether busy or not.
    for (id, ctx) in ids.iter().zip([20, 21, 22, 23]) {
        assert_handle_rules(&rec.of(*id), ctx);
    }
    assert_eq!(rec.names(s.id()), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    assert_eq!(rec.names(c.id()), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    assert_eq!(rec.names(idle.id()), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    // Closed handles refuse work, and nothing is notified for them.
    let before = rec.all().len();
    assert!(matches!(
        idle.send(None).await,
        Err(ClientError::InvalidState(_))
    ));
    assert!(matches!(
        idle_on_c.send(None).await,
        Err(ClientError::InvalidState(_))
    ));
    assert!(matches!(
        c.open_request("GET", "/", 1),
        Err(ClientError::InvalidState(_))
    ));
    assert!(matches!(
        s.request("GET", &server.url("/"), 1),
        Err(ClientError::InvalidState(_))
    ));
    assert!(matches!(
        s.open_url(&server.url("/"), 1).await,
        Err(ClientError::InvalidState(_))
    ));
    drop((pending, idle, idle_on_c, c));
    assert_eq!(rec.all().len(), before);
    assert_eq!(s.open_connections(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_session_clone_closes_its_children() {
    let server = Server::never_answers().await;
    let rec = Recorder::new();
    let s = session(&rec);
    let sid = s.id();
    let mut r = s.request("GET", &server.url("/"), 5).unwrap();
    let id = r.id();
    let task = tokio::spawn(async move { r.send(None).await });
    rec.wait_for(id, Status::ReceivingResponse).await;
    let clone = s.clone();
    drop(s);
    // A clone keeps it open.
    assert_eq!(rec.names(sid), ["HANDLE_CREATED"]);
    drop(clone);
    let result = tokio::time::timeout(PROMPT, task)
        .await
        .expect("dropping the session did not cancel the request")
        .unwrap();
    assert_eq!(result, Err(ClientError::Cancelled));
    let ns = rec.of(id);
    assert_cancelled_tail(&ns);
    assert_handle_rules(&ns, 5);
    assert_eq!(rec.names(sid), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    server.wait_eof().await;
    server.stop().await;
}

/// Issue 12: closing a handle with no operation pending closes its
/// connection at once, not when its owner drops it.
#[tokio::test]
async fn closing_an_idle_handle_closes_its_connection_at_once() {
    let server = Server::stalls_mid_body(100_000, 1000).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/"), 7).await.unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(r.read(&mut buf).await.unwrap(), 100);
    // Nothing pending: closed from elsewhere, the handle still held.
    r.closer().close();
    tokio::time::timeout(PROMPT * 4, server.wait_eof())
        .await
        .expect("the server sees the connection close while the handle lives");
    assert_eq!(
        r.read(&mut buf).await,
        Err(ClientError::InvalidState("handle is closed"))
    );
    drop(r);
    server.stop().await;
}

#[tokio::test]
async fn dropping_a_handle_mid_body_closes_its_connection() {
    let server = Server::stalls_mid_body(100_000, 1000).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/"), 6).await.unwrap();
    let id = r.id();
    let mut buf = [0u8; 100];
    assert_eq!(r.read(&mut buf).await.unwrap(), 100);
    assert_eq!(s.open_connections(), 1);
    drop(r);
    assert_eq!(s.open_connections(), 0);
    server.wait_eof().await;
    let ns = rec.of(id);
    let n = names(&ns);
    // No operation was pending: no REQUEST_COMPLETE for the close.
    assert_eq!(
        n[n.len() - 4..],
        [
            "REQUEST_COMPLETE",
            "CLOSING_CONNECTION",
            "CONNECTION_CLOSED",
            "HANDLE_CLOSING"
        ]
    );
    assert_eq!(completions(&ns), vec![Ok(())]);
    assert_handle_rules(&ns, 6);
    server.stop().await;
}

#[tokio::test]
async fn dropping_a_pending_read_cancels_it() {
    let server = Server::stalls_mid_body(100_000, 0).await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.open_url(&server.url("/"), 7).await.unwrap();
    let id = r.id();
    let waits = rec.count(id, Status::ReceivingResponse);
    let mut buf = [0u8; 100];
    // Drop the read future once it waits for the socket.
    tokio::select! {
        r = r.read(&mut buf) => panic!("the read completed: {r:?}"),
        _ = rec.wait_for_nth(id, Status::ReceivingResponse, waits + 1) => {}
    }
    let ns = rec.of(id);
    assert_eq!(
        ns.last().map(|n| (n.status, n.payload.clone())),
        Some((
            Status::RequestComplete,
            Payload::Complete(Err(ClientError::Cancelled))
        ))
    );
    // The abandoned read took the connection with it; the handle is still open.
    assert_eq!(s.open_connections(), 0);
    server.wait_eof().await;
    assert!(r.read(&mut buf).await.is_err());
    drop(r);
    let ns = rec.of(id);
    assert_handle_rules(&ns, 7);
    assert_eq!(completions(&ns), vec![Ok(()), Err(ClientError::Cancelled)]);
    server.stop().await;
}

#[tokio::test]
async fn close_before_send_completes_nothing() {
    let server = Server::never_answers().await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.request("GET", &server.url("/"), 8).unwrap();
    let id = r.id();
    r.closer().close();
    assert_eq!(rec.names(id), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    assert!(matches!(
        r.send(None).await,
        Err(ClientError::InvalidState(_))
    ));
    drop(r);
    assert_eq!(rec.names(id), ["HANDLE_CREATED", "HANDLE_CLOSING"]);
    assert_eq!(server.accepted(), 0);
    assert_eq!(s.open_connections(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_of_a_pending_send_while_the_server_is_silent() {
    let server = Server::never_answers().await;
    let rec = Recorder::new();
    let s = session(&rec);
    let mut r = s.request("GET", &server.url("/"), 10).unwrap();
    let (id, closer) = (r.id(), r.closer());
    let task = tokio::spawn(async move { r.send(None).await });
    rec.wait_for(id, Status::ReceivingResponse).await;
    closer.close();
    let result = tokio::time::timeout(PROMPT, task).await.unwrap().unwrap();
    assert_cancelled(&rec, &s, id, 10, result);
    server.wait_eof().await;
    server.stop().await;
}
