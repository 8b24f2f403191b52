//! Content decoding of response bodies (gzip, deflate, br), streaming, with
//! a cap on the decoded size so a small bomb cannot fill memory.

use std::io::Write;

use crate::error::Violation;
use crate::ClientError;

/// Where a decoder writes: refuses to grow past the cap, so a bomb fails
/// with "body too large" before it takes the memory (a few compressed
/// bytes can expand to gigabytes inside one write call).
pub(crate) struct Capped {
    buf: Vec<u8>,
    room: u64,
    over: bool,
}

impl Capped {
    fn new(cap: u64) -> Capped {
        Capped {
            buf: Vec::new(),
            room: cap,
            over: false,
        }
    }
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.len() as u64 > self.room {
            self.over = true;
            return Err(std::io::Error::other("decoded body over the cap"));
        }
        self.room -= data.len() as u64;
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decodes one body's Content-Encoding as its bytes arrive.
pub(crate) enum ContentDecoder {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Capped>>),
    /// "deflate" is zlib-wrapped by the RFC, raw in some servers; told apart
    /// by the first bytes (buffered until there are two), under this cap.
    Deflate(Option<Box<DeflateKind>>, Vec<u8>, u64),
    Br(Box<brotli::DecompressorWriter<Capped>>),
}

pub(crate) enum DeflateKind {
    Zlib(flate2::write::ZlibDecoder<Capped>),
    Raw(flate2::write::DeflateDecoder<Capped>),
}

impl ContentDecoder {
    /// The decoder for a Content-Encoding value, producing at most `cap`
    /// bytes; `None` for a coding we do not decode (the body is then
    /// handed out as it came).
    pub(crate) fn for_encoding(value: Option<&[u8]>, cap: u64) -> Option<ContentDecoder> {
        let v = match value {
            None => return Some(ContentDecoder::Identity),
            Some(v) => String::from_utf8_lossy(v).trim().to_ascii_lowercase(),
        };
        Some(match v.as_str() {
            "" | "identity" => ContentDecoder::Identity,
            "gzip" | "x-gzip" => {
                ContentDecoder::Gzip(Box::new(flate2::write::GzDecoder::new(Capped::new(cap))))
            }
            "deflate" => ContentDecoder::Deflate(None, Vec::new(), cap),
            "br" => ContentDecoder::Br(Box::new(brotli::DecompressorWriter::new(
                Capped::new(cap),
                8192,
            ))),
            _ => return None,
        })
    }

    pub(crate) fn is_identity(&self) -> bool {
        matches!(self, ContentDecoder::Identity)
    }

    fn name(&self) -> &'static str {
        match self {
            ContentDecoder::Identity => "identity",
            ContentDecoder::Gzip(_) => "gzip",
            ContentDecoder::Deflate(..) => "deflate",
            ContentDecoder::Br(_) => "br",
        }
    }

    /// The output sink, once there is a decoder.
    fn sink(&mut self) -> Option<&mut Capped> {
        match self {
            ContentDecoder::Identity => None,
            ContentDecoder::Gzip(d) => Some(d.get_mut()),
            ContentDecoder::Deflate(kind, ..) => match kind.as_deref_mut()? {
                DeflateKind::Zlib(d) => Some(d.get_mut()),
                DeflateKind::Raw(d) => Some(d.get_mut()),
            },
            ContentDecoder::Br(d) => Some(d.get_mut()),
        }
    }

    /// Moves decoded bytes to `out`; maps a failed step to its error.
    fn settle(&mut self, step: std::io::Result<()>, out: &mut Vec<u8>) -> Result<(), ClientError> {
        let name = self.name();
        let Some(sink) = self.sink() else {
            return step.map_err(|_| ClientError::Protocol(Violation::Decoding(name)));
        };
        out.append(&mut sink.buf);
        match step {
            Ok(()) => Ok(()),
            Err(_) if sink.over => Err(ClientError::BodyTooLarge),
            Err(_) => Err(ClientError::Protocol(Violation::Decoding(name))),
        }
    }

    /// Feeds encoded bytes; decoded bytes are appended to `out`.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ClientError> {
        let step = match self {
            ContentDecoder::Identity => {
                out.extend_from_slice(input);
                return Ok(());
            }
            ContentDecoder::Gzip(d) => d.write_all(input),
            ContentDecoder::Deflate(kind, pending, cap) => {
                if kind.is_none() {
                    pending.extend_from_slice(input);
                    if pending.len() < 2 {
                        return Ok(());
                    }
                    // RFC 1950: CM = 8 and the header is a multiple of 31.
                    let zlib = pending[0] & 0x0f == 8
                        && (u16::from(pending[0]) << 8 | u16::from(pending[1])) % 31 == 0;
                    let sink = Capped::new(*cap);
                    *kind = Some(Box::new(if zlib {
                        DeflateKind::Zlib(flate2::write::ZlibDecoder::new(sink))
                    } else {
                        DeflateKind::Raw(flate2::write::DeflateDecoder::new(sink))
                    }));
                    let first = std::mem::take(pending);
                    return self.feed(&first, out);
                }
                match kind.as_deref_mut().expect("chosen") {
                    DeflateKind::Zlib(d) => d.write_all(input),
                    DeflateKind::Raw(d) => d.write_all(input),
                }
            }
            ContentDecoder::Br(d) => d.write_all(input),
        };
        self.settle(step, out)
    }

    /// The body ended: flushes what is left and checks the stream was complete.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ClientError> {
        let step = match self {
            ContentDecoder::Identity => return Ok(()),
            ContentDecoder::Gzip(d) => d.try_finish(),
            ContentDecoder::Deflate(kind, pending, _) => match kind.as_deref_mut() {
                None if pending.is_empty() => return Ok(()),
                None => Err(std::io::Error::other("truncated")),
                Some(DeflateKind::Zlib(d)) => d.try_finish(),
                Some(DeflateKind::Raw(d)) => d.try_finish(),
            },
            ContentDecoder::Br(d) => d.flush().and_then(|()| d.close()),
        };
        self.settle(step, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bomb stops at the cap inside one write: memory never holds more.
    #[test]
    fn a_bomb_stops_at_the_cap_within_one_write() {
        let zeros = vec![0u8; 8 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&zeros).unwrap();
        let gz = gz.finish().unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&zeros).unwrap();
        }
        for (enc, data) in [("gzip", &gz), ("br", &br)] {
            let mut d = ContentDecoder::for_encoding(Some(enc.as_bytes()), 1 << 20).unwrap();
            let mut out = Vec::new();
            let e = d.feed(data, &mut out).err();
            assert_eq!(e, Some(ClientError::BodyTooLarge), "{enc}");
            assert!(out.len() <= 1 << 20, "{enc}: {} bytes kept", out.len());
        }
    }

    fn decode_all(enc: &str, data: &[u8], step: usize) -> Result<Vec<u8>, ClientError> {
        let mut d = ContentDecoder::for_encoding(Some(enc.as_bytes()), u64::MAX).unwrap();
        let mut out = Vec::new();
        for piece in data.chunks(step.max(1)) {
            d.feed(piece, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn every_coding_round_trips_in_any_pieces() {
        let text: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(&text).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&text).unwrap();
        let raw = raw.finish().unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&text).unwrap();
        }
        for step in [1, 7, 4096, usize::MAX] {
            assert_eq!(decode_all("gzip", &gz, step).unwrap(), text);
            assert_eq!(decode_all("deflate", &zl, step).unwrap(), text);
            assert_eq!(decode_all("deflate", &raw, step).unwrap(), text);
            assert_eq!(decode_all("br", &br, step).unwrap(), text);
        }
    }

    #[test]
    fn truncated_or_garbage_bodies_are_errors() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello hello hello").unwrap();
        let gz = gz.finish().unwrap();
        assert!(decode_all("gzip", &gz[..gz.len() - 4], 3).is_err());
        assert!(decode_all("gzip", b"not gzip at all", 3).is_err());
        assert!(decode_all("br", b"\xff\xff\xff garbage", 3).is_err());
        assert!(ContentDecoder::for_encoding(Some(b"compress"), 1).is_none());
    }
}
