//! Routing (DESIGN.md §1 "Routing") over real sockets: the four host
//! categories and their precedence, longest whole-segment path match,
//! case-insensitive compares, URL contexts, several groups and queues on one
//! port, absolute-form targets, removing prefixes and dropping groups, and
//! every kind of bad prefix.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{free_port, Client, LIMIT};
use httpq_server::url_group::HostSpec;
use httpq_server::{
    Properties, RequestQueue, Response, SendFlags, ServerError, ServerSession, UrlPrefix,
};

/// Answers every request on `queue` with `"{name} {url_context} {path}"`.
fn answer_all(queue: &RequestQueue, name: &'static str) -> tokio::task::JoinHandle<()> {
    let q = queue.clone();
    tokio::spawn(async move {
        while let Ok(req) = q.receive().await {
            let body = format!("{name} {} {}", req.url_context(), req.url().path);
            let _ = q
                .send_response(req.id(), Response::new(200).body(body), SendFlags::NONE)
                .await;
        }
    })
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends one raw request on a fresh connection to `addr`; returns the status
/// and the body as text.
async fn ask_raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut c = Client::connect_to(addr).await;
    c.send(request.as_bytes()).await;
    let r = c.response().await.expect("a response");
    (r.status, String::from_utf8(r.body).unwrap())
}

/// `GET target` with `Host: host` to 127.0.0.1:port.
async fn ask(port: u16, host: &str, target: &str) -> (u16, String) {
    ask_at(local(port), host, target).await
}

async fn ask_at(addr: SocketAddr, host: &str, target: &str) -> (u16, String) {
    ask_raw(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    )
    .await
}

/// The URL context that answered (the second word of the body), or the status
/// when the server answered itself.
async fn context(port: u16, host: &str, target: &str) -> Result<u64, u16> {
    let (status, body) = ask(port, host, target).await;
    if status != 200 {
        return Err(status);
    }
    Ok(body.split(' ').nth(1).unwrap().parse().unwrap())
}

/// A session with one queue answered by `answer_all` and one group bound to it.
fn one_queue() -> (ServerSession, RequestQueue, httpq_server::UrlGroup) {
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("routing");
    let group = session.create_url_group();
    group.bind(&queue);
    answer_all(&queue, "q");
    (session, queue, group)
}

/// True once nothing accepts on 127.0.0.1:port any more. Listener tasks are
/// stopped asynchronously and there is no event for it, so this polls, bounded.
async fn refused(port: u16) -> bool {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while tokio::time::Instant::now() < deadline {
        match tokio::net::TcpStream::connect(local(port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_categories_in_precedence_order() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://*:{p}/"), 4).unwrap();
    group.add_url(&format!("http://+:{p}/plus/"), 1).unwrap();
    group
        .add_url(&format!("http://example.com:{p}/"), 2)
        .unwrap();
    group.add_url(&format!("http://127.0.0.1:{p}/"), 3).unwrap();
    group.add_url(&format!("http://*:{p}/weak/"), 5).unwrap();

    // `+` beats an explicit host, even with a shorter-or-equal path elsewhere.
    assert_eq!(context(p, "example.com", "/plus/x").await, Ok(1));
    assert_eq!(context(p, "other.test", "/plus/x").await, Ok(1));
    // The explicit host beats IP-bound and `*`; with or without a port in Host.
    assert_eq!(context(p, "example.com", "/x").await, Ok(2));
    assert_eq!(context(p, &format!("example.com:{p}"), "/x").await, Ok(2));
    // Any other host on the bound address: IP-bound beats `*`, even though
    // the `*` prefix is longer (the category decides before path length).
    assert_eq!(context(p, "other.test", "/x").await, Ok(3));
    assert_eq!(context(p, "other.test", "/weak/x").await, Ok(3));
    assert_eq!(context(p, "127.0.0.1", "/weak/x").await, Ok(3));
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_bound_matches_the_local_address_and_star_takes_the_rest() {
    // All of 127.0.0.0/8 is loopback on Linux: a connection to 127.0.0.2
    // reaches the wildcard listener but not the 127.0.0.1-bound prefix.
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://*:{p}/"), 4).unwrap();
    group.add_url(&format!("http://127.0.0.1:{p}/"), 3).unwrap();
    let other = SocketAddr::from(([127, 0, 0, 2], p));
    let (status, body) = ask_at(other, "127.0.0.1", "/x").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "q 4 /x"),
        "Host does not matter"
    );
    let (status, body) = ask_at(local(p), "anything", "/x").await;
    assert_eq!((status, body.as_str()), (200, "q 3 /x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_is_last_resort() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://*:{p}/"), 4).unwrap();
    group
        .add_url(&format!("http://example.com:{p}/only/"), 2)
        .unwrap();
    assert_eq!(context(p, "example.com", "/only/x").await, Ok(2));
    assert_eq!(context(p, "example.com", "/elsewhere").await, Ok(4));
    assert_eq!(context(p, "other.test", "/only/x").await, Ok(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_bound_first_then_wildcards_on_the_same_port() {
    // Adding a wildcard after an IP-bound prefix replaces the specific
    // listener with the wildcard one; both prefixes keep working.
    let (session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://127.0.0.1:{p}/"), 3).unwrap();
    assert_eq!(context(p, "a", "/x").await, Ok(3));
    group.add_url(&format!("http://+:{p}/plus/"), 1).unwrap();
    group
        .add_url(&format!("http://example.com:{p}/"), 2)
        .unwrap();
    assert_eq!(context(p, "a", "/x").await, Ok(3));
    assert_eq!(context(p, "a", "/plus/").await, Ok(1));
    assert_eq!(context(p, "example.com", "/x").await, Ok(2));
    assert!(session.listen_addrs().iter().all(|a| a.port() == p));
    // Removing the wildcards leaves the IP-bound prefix served.
    group.remove_url(&format!("http://+:{p}/plus/")).unwrap();
    group
        .remove_url(&format!("http://example.com:{p}/"))
        .unwrap();
    assert_eq!(context(p, "a", "/plus/").await, Ok(3));
    assert_eq!(context(p, "example.com", "/x").await, Ok(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_whole_segment_match_within_a_category() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    for (path, ctx) in [("/", 1), ("/dir/", 2), ("/dir/app/", 3), ("/dir/ap/", 4)] {
        group.add_url(&format!("http://+:{p}{path}"), ctx).unwrap();
    }
    let h = "h";
    assert_eq!(context(p, h, "/dir/app/x").await, Ok(3));
    assert_eq!(
        context(p, h, "/dir/ap/x").await,
        Ok(4),
        "/dir/app/ must not take /dir/ap/x"
    );
    assert_eq!(context(p, h, "/dir/app").await, Ok(3));
    assert_eq!(
        context(p, h, "/dir/ap").await,
        Ok(4),
        "/dir/ap/ must not match /dir/app"
    );
    assert_eq!(
        context(p, h, "/dir/apple").await,
        Ok(2),
        "segments, not characters"
    );
    assert_eq!(context(p, h, "/dir/a").await, Ok(2));
    assert_eq!(context(p, h, "/dir").await, Ok(2));
    assert_eq!(context(p, h, "/dirt/x").await, Ok(1));
    assert_eq!(context(p, h, "/").await, Ok(1));
    // Routing sees the cooked path: decoded and without dot-segments.
    assert_eq!(context(p, h, "/%64ir/%61pp/x").await, Ok(3));
    assert_eq!(context(p, h, "/dir/x/../app/y").await, Ok(3));
    assert_eq!(context(p, h, "/dir/app/../ap/y").await, Ok(4));
    assert_eq!(context(p, h, "/dir\\app\\y").await, Ok(3));
    // The same inside the explicit-host category.
    let (_s2, _q2, g2) = one_queue();
    let p2 = free_port();
    g2.add_url(&format!("http://example.com:{p2}/a/"), 10)
        .unwrap();
    g2.add_url(&format!("http://example.com:{p2}/a/b/"), 11)
        .unwrap();
    assert_eq!(context(p2, "example.com", "/a/b/c").await, Ok(11));
    assert_eq!(context(p2, "example.com", "/a/bc").await, Ok(10));
    assert_eq!(context(p2, "example.com", "/ab").await, Err(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_path_compare_case_insensitively() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group
        .add_url(&format!("http://Example.COM:{p}/Mixed/Case/"), 5)
        .unwrap();
    group.add_url(&format!("http://+:{p}/UPPER/"), 6).unwrap();
    assert_eq!(context(p, "example.com", "/mixed/case/x").await, Ok(5));
    assert_eq!(context(p, "EXAMPLE.com", "/MIXED/cAsE/").await, Ok(5));
    assert_eq!(context(p, "eXample.Com", "/Mixed/Case").await, Ok(5));
    assert_eq!(context(p, "x", "/upper/y").await, Ok(6));
    assert_eq!(context(p, "x", "/Upper").await, Ok(6));
    assert_eq!(context(p, "other.com", "/mixed/case/").await, Err(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_matches_its_path_without_the_slash_and_with_a_query() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://+:{p}/a/b/"), 7).unwrap();
    assert_eq!(context(p, "h", "/a/b/").await, Ok(7));
    assert_eq!(context(p, "h", "/a/b").await, Ok(7));
    assert_eq!(context(p, "h", "/a/b?x").await, Ok(7));
    assert_eq!(context(p, "h", "/a/b/?x=1").await, Ok(7));
    assert_eq!(context(p, "h", "/a/b/c/d").await, Ok(7));
    assert_eq!(context(p, "h", "/a/bb").await, Err(400));
    assert_eq!(context(p, "h", "/a/").await, Err(400));
    assert_eq!(context(p, "h", "/a").await, Err(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_host_matches_only_host_independent_prefixes() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://localhost:{p}/"), 2).unwrap();
    let (status, _) = ask_raw(local(p), "GET /x HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 400, "an explicit host needs a Host to match");
    group.add_url(&format!("http://127.0.0.1:{p}/"), 3).unwrap();
    let (status, body) = ask_raw(local(p), "GET /x HTTP/1.0\r\n\r\n").await;
    assert_eq!((status, body.as_str()), (200, "q 3 /x"));
    group.add_url(&format!("http://+:{p}/x/"), 1).unwrap();
    let (status, body) = ask_raw(local(p), "GET /x/y HTTP/1.0\r\n\r\n").await;
    assert_eq!((status, body.as_str()), (200, "q 1 /x/y"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_matching_nothing_gets_400() {
    let (session, queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://+:{p}/only/"), 1).unwrap();
    group
        .add_url(&format!("http://example.com:{p}/"), 2)
        .unwrap();
    let mut c = Client::connect(p).await;
    c.send(b"GET /else HTTP/1.1\r\nHost: other.test\r\n\r\n")
        .await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 400);
    assert!(!r.body.is_empty(), "a short reason");
    // The connection survives a routing miss.
    c.send(b"GET /only/x HTTP/1.1\r\nHost: other.test\r\n\r\n")
        .await;
    let r = c.response().await.unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"q 1 /only/x"[..]));
    assert_eq!(session.counters().unrouted, 1);
    assert!(queue.is_empty(), "the application never saw the miss");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_context_and_cooked_url_are_reported_on_the_request() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("ctx");
    let group = session.create_url_group();
    group.bind(&queue);
    let p = free_port();
    group
        .add_url(&format!("http://+:{p}/api/"), 0xDEAD_BEEF_0000_0001)
        .unwrap();
    group.add_url(&format!("http://+:{p}/"), u64::MAX).unwrap();
    let mut c = Client::connect(p).await;
    c.send(b"GET /API/v1?q=1 HTTP/1.1\r\nHost: Example.com\r\n\r\n")
        .await;
    let req = tokio::time::timeout(LIMIT, queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.url_context(), 0xDEAD_BEEF_0000_0001);
    assert_eq!(req.url().path, "/API/v1", "the path keeps its case");
    assert_eq!(req.url().query, "?q=1");
    assert_eq!(req.url().host, "example.com");
    assert_eq!(req.raw_target(), b"/API/v1?q=1");
    queue
        .send_response(req.id(), Response::new(204), SendFlags::NONE)
        .await
        .unwrap();
    assert_eq!(c.response().await.unwrap().status, 204);
    c.send(b"GET /apiary HTTP/1.1\r\nHost: h\r\n\r\n").await;
    let req = tokio::time::timeout(LIMIT, queue.receive())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.url_context(), u64::MAX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_on_one_port_route_to_their_own_queues() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let p = free_port();
    let mut groups = Vec::new();
    for (name, prefix, ctx) in [
        ("qa", format!("http://+:{p}/a/"), 1),
        ("qb", format!("http://+:{p}/b/"), 2),
        ("qc", format!("http://127.0.0.1:{p}/"), 3),
        ("qd", format!("http://example.com:{p}/"), 4),
    ] {
        let queue = RequestQueue::new(name);
        let group = session.create_url_group();
        group.bind(&queue);
        group.add_url(&prefix, ctx).unwrap();
        answer_all(&queue, name);
        groups.push((group, queue));
    }
    assert_eq!(ask(p, "h", "/a/1").await, (200, "qa 1 /a/1".into()));
    assert_eq!(ask(p, "h", "/b/2").await, (200, "qb 2 /b/2".into()));
    assert_eq!(ask(p, "h", "/c/3").await, (200, "qc 3 /c/3".into()));
    assert_eq!(
        ask(p, "example.com", "/c/3").await,
        (200, "qd 4 /c/3".into())
    );
    assert_eq!(ask(p, "example.com", "/a/").await, (200, "qa 1 /a/".into()));
    // One keep-alive connection whose requests go to different queues.
    let mut c = Client::connect(p).await;
    for (target, want) in [
        ("/b/x", "qb 2 /b/x"),
        ("/a/y", "qa 1 /a/y"),
        ("/z", "qc 3 /z"),
    ] {
        c.send(format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
            .await;
        assert_eq!(c.response().await.unwrap().body, want.as_bytes());
    }
}

/// A connection remembers its last routing decision while host and path
/// repeat; every change to the routing must still be seen by the very next
/// request on an already-open keep-alive connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_changes_reach_an_open_connection_repeating_one_target() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let p = free_port();
    let (qa, qb) = (RequestQueue::new("qa"), RequestQueue::new("qb"));
    answer_all(&qa, "qa");
    answer_all(&qb, "qb");
    let group = session.create_url_group();
    group.bind(&qa);
    group.add_url(&format!("http://+:{p}/"), 1).unwrap();
    let mut c = Client::connect(p).await;
    async fn again(c: &mut Client) -> (u16, String) {
        c.send(b"GET /x/y HTTP/1.1\r\nHost: h\r\n\r\n").await;
        let r = c.response().await.expect("a response");
        (r.status, String::from_utf8(r.body).unwrap())
    }
    assert_eq!(again(&mut c).await, (200, "qa 1 /x/y".into()));
    assert_eq!(again(&mut c).await, (200, "qa 1 /x/y".into()));
    // A longer prefix in another group takes over.
    let longer = session.create_url_group();
    longer.bind(&qb);
    longer.add_url(&format!("http://+:{p}/x/"), 2).unwrap();
    assert_eq!(again(&mut c).await, (200, "qb 2 /x/y".into()));
    // Dropping that group removes its prefix.
    drop(longer);
    assert_eq!(again(&mut c).await, (200, "qa 1 /x/y".into()));
    // Rebinding the group moves its requests to the other queue.
    group.bind(&qb);
    assert_eq!(again(&mut c).await, (200, "qb 1 /x/y".into()));
    // Unbound: the server answers 503 itself, and the connection stays.
    group.unbind();
    assert_eq!(again(&mut c).await.0, 503);
    group.bind(&qa);
    assert_eq!(again(&mut c).await, (200, "qa 1 /x/y".into()));
    // Removed: nothing matches.
    group.remove_url(&format!("http://+:{p}/")).unwrap();
    assert_eq!(again(&mut c).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_authority_overrides_host_for_routing() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group
        .add_url(&format!("http://example.com:{p}/"), 2)
        .unwrap();
    group
        .add_url(&format!("http://other.test:{p}/"), 7)
        .unwrap();
    let (status, body) = ask_raw(
        local(p),
        &format!("GET http://example.com:{p}/x?y HTTP/1.1\r\nHost: other.test\r\n\r\n"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "q 2 /x"));
    let (status, body) = ask_raw(
        local(p),
        "GET http://OTHER.test/deep/path HTTP/1.1\r\nHost: example.com\r\n\r\n",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "q 7 /deep/path"));
    let (status, _) = ask_raw(
        local(p),
        "GET http://nobody.test/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "the Host header is not a fallback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_url_stops_routing_and_the_last_prefix_closes_the_listener() {
    let (session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://+:{p}/a/"), 1).unwrap();
    group.add_url(&format!("http://+:{p}/b/"), 2).unwrap();
    assert_eq!(context(p, "h", "/a/x").await, Ok(1));
    // A keep-alive connection opened before the removal sees it too.
    let mut kept = Client::connect(p).await;
    group.remove_url(&format!("http://+:{p}/A/")).unwrap(); // compares case-insensitively
    assert_eq!(context(p, "h", "/a/x").await, Err(400));
    assert_eq!(context(p, "h", "/b/x").await, Ok(2));
    kept.send(b"GET /a/x HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(kept.response().await.unwrap().status, 400);
    assert!(matches!(
        group.remove_url(&format!("http://+:{p}/a/")),
        Err(ServerError::PrefixNotFound(_))
    ));
    assert!(!session.listen_addrs().is_empty());
    group.remove_url(&format!("http://+:{p}/b/")).unwrap();
    assert!(session.listen_addrs().is_empty());
    assert!(refused(p).await, "the listener closes with the last prefix");
    // The port can be registered again.
    group.add_url(&format!("http://+:{p}/b/"), 9).unwrap();
    assert_eq!(context(p, "h", "/b/x").await, Ok(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_is_free_again_as_soon_as_its_last_prefix_goes() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let group = session.create_url_group();
    let p = free_port();
    for _ in 0..20 {
        group.add_url(&format!("http://+:{p}/"), 1).unwrap();
        group.remove_url(&format!("http://+:{p}/")).unwrap();
        group.add_url(&format!("http://127.0.0.1:{p}/"), 1).unwrap();
        group.remove_url(&format!("http://127.0.0.1:{p}/")).unwrap();
    }
    // A closed session frees its ports at once too.
    session.close();
    let (other, _queue, group) = one_queue();
    group.add_url(&format!("http://+:{p}/"), 2).unwrap();
    assert_eq!(context(p, "h", "/").await, Ok(2));
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wildcard_keeps_the_ip_bound_listener() {
    // Another socket holds [::1]:P, so the IPv6 wildcard for P cannot be
    // bound; the IP-bound prefix already on P must keep working.
    let Ok(holder) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let p = holder.local_addr().unwrap().port();
    let (_session, _queue, group) = one_queue();
    if group.add_url(&format!("http://127.0.0.1:{p}/"), 3).is_err() {
        eprintln!("port {p} taken on IPv4; skipped");
        return;
    }
    let r = group.add_url(&format!("http://+:{p}/x/"), 1);
    assert!(matches!(r, Err(ServerError::Listen { .. })), "{r:?}");
    assert_eq!(context(p, "h", "/x/").await, Ok(3));
    drop(holder);
    group.add_url(&format!("http://+:{p}/x/"), 1).unwrap();
    assert_eq!(context(p, "h", "/x/").await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_groups_prefix_cannot_be_removed() {
    let (_session, queue, group) = one_queue();
    let other = _session.create_url_group();
    other.bind(&queue);
    let p = free_port();
    group.add_url(&format!("http://+:{p}/mine/"), 1).unwrap();
    assert!(matches!(
        other.remove_url(&format!("http://+:{p}/mine/")),
        Err(ServerError::PrefixNotFound(_))
    ));
    assert_eq!(context(p, "h", "/mine/").await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_url_group_removes_its_prefixes() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("drop");
    answer_all(&queue, "q");
    let p = free_port();
    let narrow = session.create_url_group();
    narrow.bind(&queue);
    narrow.add_url(&format!("http://+:{p}/x/"), 1).unwrap();
    narrow
        .add_url(&format!("http://example.com:{p}/"), 3)
        .unwrap();
    let wide = session.create_url_group();
    wide.bind(&queue);
    wide.add_url(&format!("http://*:{p}/"), 2).unwrap();
    assert_eq!(context(p, "h", "/x/y").await, Ok(1));
    assert_eq!(context(p, "example.com", "/z").await, Ok(3));
    drop(narrow);
    assert_eq!(context(p, "h", "/x/y").await, Ok(2));
    assert_eq!(context(p, "example.com", "/z").await, Ok(2));
    // The dropped group's prefixes are free to register again.
    let again = session.create_url_group();
    again.bind(&queue);
    again.add_url(&format!("http://+:{p}/x/"), 5).unwrap();
    assert_eq!(context(p, "h", "/x/y").await, Ok(5));
    drop(again);
    drop(wide);
    assert!(session.listen_addrs().is_empty());
    assert!(refused(p).await, "no prefix left, no listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_prefixes_are_errors() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let group = session.create_url_group();
    let p = free_port();
    for bad in [
        format!("http://+:{p}/no-slash"),
        format!("http://+:{p}"),
        "http://+/".to_string(),
        "http://example.com/".to_string(),
        "http://+:/".to_string(),
        "http://+:0/".to_string(),
        format!("http://+:0{p}/"),
        "http://+:65536/".to_string(),
        "http://+:-1/".to_string(),
        "http://+:8x/".to_string(),
        format!("http://+:{p}/a?/"),
        format!("http://+:{p}/?x=1/"),
        format!("http://+:{p}/a#b/"),
        format!("ftp://+:{p}/"),
        format!("+:{p}/"),
        format!("//+:{p}/"),
        format!("http:/+:{p}/"),
        format!("http://:{p}/"),
        format!("http://bad host:{p}/"),
        format!("http://[::1:{p}/"),
        format!("http://+:{p}/a/../"),
        String::new(),
    ] {
        let r = group.add_url(&bad, 1);
        assert!(
            matches!(r, Err(ServerError::InvalidPrefix { .. })),
            "{bad:?} gave {r:?}"
        );
        assert!(UrlPrefix::parse(&bad).is_err(), "{bad:?}");
    }
    assert!(session.listen_addrs().is_empty(), "nothing was bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_prefixes_are_errors_in_any_group_and_any_case() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let g1 = session.create_url_group();
    let g2 = session.create_url_group();
    let p = free_port();
    g1.add_url(&format!("http://+:{p}/a/"), 1).unwrap();
    g1.add_url(&format!("http://example.com:{p}/a/"), 1)
        .unwrap();
    for dup in [
        format!("http://+:{p}/a/"),
        format!("http://+:{p}/A/"),
        format!("http://example.com:{p}/a/"),
        format!("http://EXAMPLE.com:{p}/a/"),
    ] {
        for g in [&g1, &g2] {
            let r = g.add_url(&dup, 2);
            assert!(
                matches!(r, Err(ServerError::DuplicatePrefix(_))),
                "{dup} gave {r:?}"
            );
        }
    }
    // Same path, different host category or scheme: not duplicates.
    g2.add_url(&format!("http://*:{p}/a/"), 3).unwrap();
    g2.add_url(&format!("http://127.0.0.1:{p}/a/"), 4).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_held_by_another_socket_is_a_listen_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = holder.local_addr().unwrap().port();
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("held");
    answer_all(&queue, "q");
    let group = session.create_url_group();
    group.bind(&queue);
    for prefix in [format!("http://127.0.0.1:{p}/"), format!("http://+:{p}/")] {
        match group.add_url(&prefix, 1) {
            Err(ServerError::Listen { addr, .. }) => assert_eq!(addr.port(), p),
            other => panic!("{prefix}: {other:?}"),
        }
    }
    assert!(session.listen_addrs().is_empty());
    // The failed registrations left nothing behind: once the port is free,
    // the same prefix registers and serves.
    drop(holder);
    group.add_url(&format!("http://127.0.0.1:{p}/"), 8).unwrap();
    assert_eq!(context(p, "h", "/").await, Ok(8));
}

/// `0.0.0.0` as an IP-bound prefix is every IPv4 address, after exact
/// addresses, and it shares its port with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unspecified_address_routes_its_whole_family_after_exact_ones() {
    let (_session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://0.0.0.0:{p}/"), 1).unwrap();
    group
        .add_url(&format!("http://127.0.0.1:{p}/app/"), 2)
        .unwrap();
    assert_eq!(context(p, "h", "/").await, Ok(1));
    assert_eq!(
        context(p, "h", "/app/x").await,
        Ok(2),
        "the exact address first"
    );
    // Removing the exact one leaves the wildcard serving everything.
    group
        .remove_url(&format!("http://127.0.0.1:{p}/app/"))
        .unwrap();
    assert_eq!(context(p, "h", "/app/x").await, Ok(1));
}

/// Workers listen with SO_REUSEPORT, which would let a second server of
/// the same user (another httpq, say) silently share the port: the
/// session must see that the port is held, as without SO_REUSEPORT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_held_with_so_reuseport_is_still_a_listen_error() {
    use socket2::{Domain, Socket, Type};
    let holder = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    holder.set_reuse_port(true).unwrap();
    holder
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    holder.listen(16).unwrap();
    let p = holder.local_addr().unwrap().as_socket().unwrap().port();
    let session = ServerSession::new(Properties::default()).unwrap();
    let group = session.create_url_group();
    match group.add_url(&format!("http://127.0.0.1:{p}/"), 1) {
        Err(ServerError::Listen { addr, .. }) => assert_eq!(addr.port(), p),
        other => panic!("the held port was shared: {other:?}"),
    }
}

#[test]
fn url_prefix_parse_cases() {
    let p = UrlPrefix::parse("http://+:8080/api/").unwrap();
    assert_eq!(
        (p.scheme, &p.host, p.port, p.path.as_str()),
        ("http", &HostSpec::StrongWildcard, 8080, "/api/")
    );
    let p = UrlPrefix::parse("https://*:443/").unwrap();
    assert_eq!(
        (p.scheme, &p.host, p.port),
        ("https", &HostSpec::WeakWildcard, 443)
    );
    let p = UrlPrefix::parse("http://Example.COM:80/A/b/").unwrap();
    assert_eq!(p.host, HostSpec::Explicit("example.com".into()));
    assert_eq!(p.path, "/a/b/");
    let p = UrlPrefix::parse("http://127.0.0.1:65535/").unwrap();
    assert_eq!(p.host, HostSpec::IpBound("127.0.0.1".parse().unwrap()));
    assert_eq!(p.port, 65535);
    let p = UrlPrefix::parse("http://[::1]:8080/x/").unwrap();
    assert_eq!(p.host, HostSpec::IpBound("::1".parse().unwrap()));
    assert_eq!(p.port, 8080);
    let p = UrlPrefix::parse("http://localhost:1/").unwrap();
    assert_eq!(p.host, HostSpec::Explicit("localhost".into()));
    assert_eq!(p.port, 1);
    // Display gives back a canonical prefix that parses to the same thing.
    for s in [
        "http://+:8080/api/",
        "https://*:443/",
        "http://example.com:80/a/b/",
        "http://127.0.0.1:9/",
        "http://[::1]:8080/x/",
    ] {
        let p = UrlPrefix::parse(s).unwrap();
        assert_eq!(p.to_string(), s);
        assert_eq!(UrlPrefix::parse(&p.to_string()).unwrap(), p);
    }
    // Case-folded prefixes are equal (that is what makes them duplicates).
    assert_eq!(
        UrlPrefix::parse("http://EXAMPLE.com:80/X/").unwrap(),
        UrlPrefix::parse("http://example.com:80/x/").unwrap()
    );
    for bad in [
        "http://+:8080/api",
        "http://+/",
        "http://+:0/",
        "http://+:08080/",
        "http://+:65536/",
        "http://+:8080/a?b/",
        "ftp://+:8080/",
        "HTTPS://+:8080/",
        "http://[::1/",
        "http://[zz]:80/",
        "http://+:8080/./",
    ] {
        match UrlPrefix::parse(bad) {
            Err(ServerError::InvalidPrefix { prefix, why }) => {
                assert_eq!(prefix, bad);
                assert!(!why.is_empty());
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

/// Review regression: an unrouted request with a body is answered 400 and
/// the connection closes; a request pipelined behind it must not reach the
/// application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_behind_an_unrouted_request_with_a_body_reaches_the_app() {
    let session = ServerSession::new(Properties::default()).unwrap();
    let queue = RequestQueue::new("ok-only");
    let group = session.create_url_group();
    group.bind(&queue);
    let p = free_port();
    group.add_url(&format!("http://+:{p}/ok/"), 1).unwrap();
    let mut c = Client::connect(p).await;
    c.send(b"POST /elsewhere HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /ok/x HTTP/1.1\r\nHost: h\r\n\r\n")
        .await;
    let r = c.response().await.expect("a 400");
    assert_eq!(r.status, 400);
    assert!(c.closed().await, "the connection closes after the 400");
    assert!(
        queue.try_receive().unwrap().is_none(),
        "the pipelined GET was never handed to the application"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_one_ip_bound_prefix_closes_only_its_address() {
    let (session, _queue, group) = one_queue();
    let p = free_port();
    let a = SocketAddr::from(([127, 0, 0, 1], p));
    let b = SocketAddr::from(([127, 0, 0, 2], p));
    group.add_url(&format!("http://{a}/"), 1).unwrap();
    if group.add_url(&format!("http://{b}/"), 2).is_err() {
        eprintln!("127.0.0.2:{p} cannot be bound here; skipped");
        return;
    }
    assert_eq!(ask_at(b, "h", "/").await.0, 200);
    group.remove_url(&format!("http://{b}/")).unwrap();
    assert_eq!(session.listen_addrs(), vec![a]);
    assert!(matches!(
        tokio::net::TcpStream::connect(b).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    ));
    assert_eq!(context(p, "h", "/").await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wildcard_leaving_gives_the_port_back_to_ip_bound_prefixes() {
    let (session, _queue, group) = one_queue();
    let p = free_port();
    group.add_url(&format!("http://127.0.0.1:{p}/"), 1).unwrap();
    group.add_url(&format!("http://+:{p}/w/"), 2).unwrap();
    assert!(session
        .listen_addrs()
        .iter()
        .any(|a| a.ip().is_unspecified()));
    group.remove_url(&format!("http://+:{p}/w/")).unwrap();
    assert_eq!(session.listen_addrs(), vec![local(p)]);
    assert_eq!(context(p, "h", "/").await, Ok(1));
    assert_eq!(context(p, "h", "/w/").await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_prefixes_listen_and_closed_sessions_are_refused() {
    let (session, _queue, group) = one_queue();
    let p = free_port();
    // As with http.sys, a prefix needs no certificate to be registered:
    // handshakes fail (and are counted) until one is bound.
    group
        .add_url(&format!("https://127.0.0.1:{p}/"), 1)
        .unwrap();
    assert_eq!(session.listen_addrs().len(), 1);
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", p))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(common::LIMIT, c.read_to_end(&mut sink))
        .await
        .unwrap();
    session.close();
    let r = group.add_url(&format!("http://+:{p}/"), 1);
    assert!(matches!(r, Err(ServerError::Aborted)), "{r:?}");
    assert!(session.listen_addrs().is_empty());
    assert!(refused(p).await);
}
