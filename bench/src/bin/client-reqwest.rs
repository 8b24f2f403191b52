//! The same client benchmark through reqwest (the peer).
//! Usage: client-reqwest download URL | client-reqwest small URL COUNT

use std::time::Instant;

use futures_util::StreamExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, url) = (args[1].clone(), args[2].clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        match mode.as_str() {
            "download" => {
                let start = Instant::now();
                let resp = client.get(&url).send().await.unwrap();
                let mut stream = resp.bytes_stream();
                let mut total = 0u64;
                while let Some(chunk) = stream.next().await {
                    total += chunk.unwrap().len() as u64;
                }
                let s = start.elapsed().as_secs_f64();
                println!(
                    "bytes={total} seconds={s:.3} GB/s={:.3}",
                    total as f64 / s / 1e9
                );
            }
            "small" => {
                let count: usize = args[3].parse().unwrap();
                let start = Instant::now();
                for _ in 0..count {
                    let resp = client.get(&url).send().await.unwrap();
                    let _ = resp.bytes().await.unwrap();
                }
                let s = start.elapsed().as_secs_f64();
                println!(
                    "requests={count} seconds={s:.3} req/s={:.0}",
                    count as f64 / s
                );
            }
            _ => panic!("mode: download | small"),
        }
    });
}
