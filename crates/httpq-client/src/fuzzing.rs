//! Never-panic entry points for cargo-fuzz and the corpus replay test:
//! content decoding under its limits, fed whole and in pieces.

use crate::decode::{ContentDecoder, DecodeLimits};
use crate::ClientError;

/// Decodes `data[2..]` with the coding picked by `data[0]`, under limits
/// picked by its top bit, fed whole and in `data[1]`-byte pieces.
///
/// Checks: no panic; the decoded size never passes the limit that applies;
/// whole and pieces never decode to different bytes; with the size limit
/// alone they agree on success and, on success, on every byte, because a
/// limit must not depend on how the network split the body.
///
/// ```
/// httpq_client::fuzzing::decode(b"\x01\x03\x1f\x8b\x08\x00");
/// ```
pub fn decode(data: &[u8]) {
    let [sel, step, body @ ..] = data else {
        return;
    };
    let coding: &[u8] = match sel & 3 {
        0 => b"gzip",
        1 => b"deflate",
        2 => b"br",
        _ => b"identity",
    };
    let with_ratio = sel & 0x80 != 0;
    // Small limits and grace: a bomb must end within microseconds for the
    // fuzzer to go on at speed; the arithmetic is the same at any size.
    const GRACE: u64 = 16 << 10;
    let limits = if with_ratio {
        DecodeLimits {
            max_bytes: 1 << 20,
            max_ratio: 8,
            ratio_grace: GRACE,
        }
    } else {
        DecodeLimits {
            max_bytes: 64 << 10,
            max_ratio: 0,
            ratio_grace: GRACE,
        }
    };
    let whole = run(coding, limits, body, body.len().max(1));
    let split = run(coding, limits, body, usize::from(*step).max(1));
    for (out, _) in [&whole, &split] {
        if coding == b"identity" {
            break;
        }
        let cap = if with_ratio {
            (body.len() as u64 * 8).max(GRACE).min(limits.max_bytes)
        } else {
            limits.max_bytes
        };
        assert!(
            out.len() as u64 <= cap,
            "{} decoded bytes from {} encoded, over the cap {cap}",
            out.len(),
            body.len()
        );
    }
    let (short, long) = if whole.0.len() <= split.0.len() {
        (&whole.0, &split.0)
    } else {
        (&split.0, &whole.0)
    };
    assert!(
        long.starts_with(short),
        "whole and split decode to different bytes"
    );
    if !with_ratio {
        match (&whole.1, &split.1) {
            (Ok(()), Ok(())) => assert_eq!(whole.0, split.0, "whole and split decode differ"),
            // A body both corrupt and over the limit may report either:
            // the decoder finds the corruption before handing over the
            // output buffered ahead of it, and where that buffer ends
            // depends on the pieces.
            (Err(_), Err(_)) => {}
            (a, b) => panic!("whole: {a:?}; split: {b:?}"),
        }
    }
}

fn run(
    coding: &[u8],
    limits: DecodeLimits,
    body: &[u8],
    step: usize,
) -> (Vec<u8>, Result<(), ClientError>) {
    let mut out = Vec::new();
    let Some(mut dec) = ContentDecoder::for_encoding(Some(coding), limits) else {
        unreachable!("every coding picked is decoded");
    };
    for piece in body.chunks(step) {
        if let Err(e) = dec.feed(piece, &mut out) {
            return (out, Err(e));
        }
    }
    let end = dec.finish(&mut out);
    (out, end)
}
