//! Replays the committed `url_prefix` cargo-fuzz corpus through the entry
//! point the fuzz target calls, on stable, so every kept input stays fixed.

use std::path::Path;

#[test]
fn url_prefix_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let n =
        httpq_proto::fuzzing::replay_corpus(&root, "url_prefix", httpq_server::fuzzing::url_prefix);
    println!("url_prefix: replayed {n} corpus inputs");
}
