//! Decodes the same br stream with brotli-decompressor (pure Rust, what
//! httpq used) or Google's C decoder through brotlic (what it uses now).

use std::io::Write;
use std::time::Instant;

fn main() {
    let which = std::env::args().nth(1).expect("rust | c");
    let rounds: usize = std::env::args().nth(2).map_or(5, |s| s.parse().unwrap());
    let text: Vec<u8> = (0..2_000_000u32)
        .flat_map(|i| format!("line {i} of a compressible body {}\n", i % 97).into_bytes())
        .collect();
    let mut enc = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut enc, 4096, 5, 22);
        w.write_all(&text).unwrap();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        let mut out = Vec::with_capacity(text.len());
        if which == "rust" {
            let mut w = brotli::DecompressorWriter::new(&mut out, 8192);
            for piece in enc.chunks(16384) {
                w.write_all(piece).unwrap();
            }
            w.close().unwrap();
        } else {
            // As httpq-client's decode module feeds it.
            let mut d = brotlic::BrotliDecoder::new();
            let mut step = [0u8; 16384];
            for mut piece in enc.chunks(16384) {
                loop {
                    let r = d.decompress(piece, &mut step).unwrap();
                    piece = &piece[r.bytes_read..];
                    out.extend_from_slice(&step[..r.bytes_written]);
                    if r.info != brotlic::decode::DecoderInfo::NeedsMoreOutput {
                        break;
                    }
                }
            }
        }
        assert_eq!(out, text);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{which}: {} MiB from {} KiB of br, {rounds} rounds in {secs:.3} s = {:.0} MiB/s",
        text.len() >> 20,
        enc.len() >> 10,
        (text.len() * rounds) as f64 / secs / 1048576.0
    );
}
