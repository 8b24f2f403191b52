//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/<target>/`) through
//! the same never-panic entry points the fuzz targets call, on stable, so
//! every input the fuzzer ever kept (and every crash it found) stays fixed.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `entry` on every file of the target's corpus; returns how many.
fn replay(target: &str, entry: impl Fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    assert!(
        dir.is_dir(),
        "corpus directory {} is missing",
        dir.display()
    );
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(&data)));
        assert!(
            outcome.is_ok(),
            "fuzz target `{target}` panicked on corpus file {}",
            file.display()
        );
    }
    println!("{target}: replayed {} corpus inputs", files.len());
    files.len()
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
