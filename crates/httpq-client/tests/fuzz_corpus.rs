//! Replays the committed `decode` cargo-fuzz corpus through the entry
//! point the fuzz target calls, on stable, so every kept input stays fixed.

use std::path::Path;

#[test]
fn decode_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let n = httpq_proto::fuzzing::replay_corpus(&root, "decode", httpq_client::fuzzing::decode);
    println!("decode: replayed {n} corpus inputs");
}
