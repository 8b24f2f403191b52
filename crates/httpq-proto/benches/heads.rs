//! Request-head parsing and response-head encoding, httpq beside raw httparse
//! on the same inputs. Run: `cargo bench -p httpq-proto --bench heads`.
//! Throughput is reported as heads per second (divan's item counter).

use bytes::Bytes;
use divan::{black_box, counter::ItemsCount, Bencher};
use httpq_proto::{encode_response_head, Limits, RequestParser, Version};

fn main() {
    divan::main();
}

const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// A Chrome-style navigation request with 12 header fields.
const BROWSER: &[u8] = b"GET /articles/2024/http-parsing-in-rust?utm_source=feed&page=2 HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: none\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9\r\n\
Cookie: session=4f2c9a7e1b; theme=dark; consent=yes\r\n\r\n";

const INPUTS: &[(&str, &[u8])] = &[("minimal", MINIMAL), ("browser", BROWSER)];

fn input(name: &str) -> &'static [u8] {
    INPUTS.iter().find(|(n, _)| *n == name).unwrap().1
}

#[divan::bench(args = ["minimal", "browser"])]
fn parse_httparse(b: Bencher, name: &str) {
    let data = input(name);
    b.counter(ItemsCount::new(1usize)).bench(|| {
        // Uninitialised header table, as hyper (and httpq) use it.
        let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
        let mut req = httparse::Request::new(&mut []);
        let n = req
            .parse_with_uninit_headers(black_box(data), &mut headers)
            .unwrap();
        black_box((n, req.method, req.path, req.headers.len()));
    });
}

#[divan::bench(args = ["minimal", "browser"])]
fn parse_httpq(b: Bencher, name: &str) {
    let data = Bytes::from_static(input(name));
    let mut parser = RequestParser::new(Limits::default());
    b.counter(ItemsCount::new(1usize)).bench_local(|| {
        let (head, n) = parser.parse_bytes(black_box(&data)).unwrap().unwrap();
        black_box((n, head.body(), head.keep_alive(), head.header_count()));
    });
}

const RESPONSE_FIELDS: &[(&str, &str)] = &[
    ("Server", "httpq"),
    ("Date", "Sun, 22 Nov 2026 01:50:00 GMT"),
    ("Content-Type", "text/plain"),
    ("Content-Length", "13"),
];

#[divan::bench]
fn encode_httpq(b: Bencher) {
    let mut out = Vec::with_capacity(256);
    b.counter(ItemsCount::new(1usize)).bench_local(|| {
        out.clear();
        encode_response_head(
            &mut out,
            Version::Http11,
            200,
            "OK",
            black_box(RESPONSE_FIELDS).iter().copied(),
        )
        .unwrap();
        black_box(out.len());
    });
}

/// The floor: the same bytes appended without validation or formatting.
#[divan::bench]
fn encode_unchecked_copy(b: Bencher) {
    let mut out = Vec::with_capacity(256);
    b.counter(ItemsCount::new(1usize)).bench_local(|| {
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for (k, v) in black_box(RESPONSE_FIELDS) {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        black_box(out.len());
    });
}
