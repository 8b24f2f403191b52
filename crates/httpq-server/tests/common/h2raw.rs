//! Raw HTTP/2 frames for tests that must send what no client library
//! would (floods, resets, bad frames), and read what comes back.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// One frame: type, flags, stream id, payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A GET of `/` as HPACK: :method GET, :scheme http, :path /, :authority.
pub fn get_block(authority: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x84, 0x01, authority.len() as u8];
    b.extend_from_slice(authority.as_bytes());
    b
}

/// Reads frames until a GOAWAY; returns its error code (None: closed first).
pub async fn goaway_code(raw: &mut TcpStream) -> Option<u32> {
    loop {
        let mut head = [0u8; 9];
        if raw.read_exact(&mut head).await.is_err() {
            return None;
        }
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        if raw.read_exact(&mut payload).await.is_err() {
            return None;
        }
        if head[3] == 7 {
            return Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        }
    }
}
