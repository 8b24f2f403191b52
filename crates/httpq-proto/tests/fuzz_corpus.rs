//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/<target>/`) through
//! the same never-panic entry points the fuzz targets call, on stable, so
//! every input the fuzzer ever kept (and every crash it found) stays fixed.

use std::path::Path;

/// Replays one target's corpus; prints how many inputs ran.
fn replay(target: &str, entry: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let n = httpq_proto::fuzzing::replay_corpus(&root, target, entry);
    println!("{target}: replayed {n} corpus inputs");
}

#[test]
fn request_corpus() {
    replay("request", httpq_proto::fuzzing::request);
}

#[test]
fn response_corpus() {
    replay("response", httpq_proto::fuzzing::response);
}

#[test]
fn chunked_corpus() {
    replay("chunked", httpq_proto::fuzzing::chunked);
}

#[test]
fn h2_corpus() {
    replay("h2", httpq_proto::fuzzing::h2);
}

#[test]
fn server_conn_corpus() {
    replay("server_conn", httpq_proto::fuzzing::server_conn);
}

/// The request corpus, through the server connection too: a request
/// stream is what it is fed.
#[test]
fn request_corpus_through_the_server_connection() {
    for flags in [0u8, 1, 2, 0x80, 0x81] {
        replay("request", |data| {
            let mut input = vec![data.first().copied().unwrap_or(0), flags];
            input.extend_from_slice(data);
            httpq_proto::fuzzing::server_conn(&input);
        });
    }
}
