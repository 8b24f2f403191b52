//! Client benchmark through the httpq-client library.
//! Usage: client-httpq download URL      (streams the body, prints bytes and GB/s)
//!        client-httpq small URL COUNT   (COUNT sequential keep-alive GETs, prints req/s)

use std::time::Instant;

use httpq_client::{Config, Session};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, url) = (args[1].clone(), args[2].clone());
    let count: usize = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let session = Session::new(Config::default()).unwrap();
        match mode.as_str() {
            "download" => {
                let start = Instant::now();
                let mut req = session.open_url(&url, 0).await.unwrap();
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                loop {
                    let n = req.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                let s = start.elapsed().as_secs_f64();
                println!(
                    "bytes={total} seconds={s:.3} GB/s={:.3}",
                    total as f64 / s / 1e9
                );
            }
            "small" => {
                let mut buf = vec![0u8; 64 * 1024];
                let start = Instant::now();
                for _ in 0..count {
                    let mut req = session.open_url(&url, 0).await.unwrap();
                    while req.read(&mut buf).await.unwrap() > 0 {}
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
