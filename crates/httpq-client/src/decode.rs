//! Content decoding of response bodies (gzip, deflate, br), streaming, with
//! a cap on the decoded size so a small bomb cannot fill memory.

use std::io::Write;

use crate::error::Violation;
use crate::ClientError;

/// Decodes one body's Content-Encoding as its bytes arrive.
pub(crate) enum ContentDecoder {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    /// "deflate" is zlib-wrapped by the RFC, raw in some servers; told apart
    /// by the first bytes.
    Deflate(Option<Box<DeflateKind>>, Vec<u8>),
    Br(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

pub(crate) enum DeflateKind {
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
}

impl ContentDecoder {
    /// The decoder for a Content-Encoding value; `None` for one we do not
    /// decode (the body is then handed out as it came).
    pub(crate) fn for_encoding(value: Option<&[u8]>) -> Option<ContentDecoder> {
        let v = match value {
            None => return Some(ContentDecoder::Identity),
            Some(v) => String::from_utf8_lossy(v).trim().to_ascii_lowercase(),
        };
        Some(match v.as_str() {
            "" | "identity" => ContentDecoder::Identity,
            "gzip" | "x-gzip" => {
                ContentDecoder::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new())))
            }
            "deflate" => ContentDecoder::Deflate(None, Vec::new()),
            "br" => ContentDecoder::Br(Box::new(brotli::DecompressorWriter::new(Vec::new(), 8192))),
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

    /// Feeds encoded bytes; decoded bytes are appended to `out`.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ClientError> {
        let name = self.name();
        let bad = |_| ClientError::Protocol(Violation::Decoding(name));
        match self {
            ContentDecoder::Identity => out.extend_from_slice(input),
            ContentDecoder::Gzip(d) => {
                d.write_all(input).map_err(bad)?;
                out.append(d.get_mut());
            }
            ContentDecoder::Deflate(kind, pending) => {
                if kind.is_none() {
                    pending.extend_from_slice(input);
                    if pending.len() < 2 {
                        return Ok(());
                    }
                    // RFC 1950: CM = 8 and the header is a multiple of 31.
                    let zlib = pending[0] & 0x0f == 8
                        && (u16::from(pending[0]) << 8 | u16::from(pending[1])) % 31 == 0;
                    *kind = Some(Box::new(if zlib {
                        DeflateKind::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
                    } else {
                        DeflateKind::Raw(flate2::write::DeflateDecoder::new(Vec::new()))
                    }));
                    let first = std::mem::take(pending);
                    return self.feed(&first, out);
                }
                match kind.as_deref_mut().expect("chosen") {
                    DeflateKind::Zlib(d) => {
                        d.write_all(input).map_err(bad)?;
                        out.append(d.get_mut());
                    }
                    DeflateKind::Raw(d) => {
                        d.write_all(input).map_err(bad)?;
                        out.append(d.get_mut());
                    }
                }
            }
            ContentDecoder::Br(d) => {
                d.write_all(input).map_err(bad)?;
                out.append(d.get_mut());
            }
        }
        Ok(())
    }

    /// The body ended: flushes what is left and checks the stream was complete.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ClientError> {
        let name = self.name();
        let bad = |_| ClientError::Protocol(Violation::Decoding(name));
        match self {
            ContentDecoder::Identity => {}
            ContentDecoder::Gzip(d) => {
                d.try_finish().map_err(bad)?;
                out.append(d.get_mut());
            }
            ContentDecoder::Deflate(kind, pending) => match kind.as_deref_mut() {
                None if pending.is_empty() => {}
                None => return Err(ClientError::Protocol(Violation::Decoding(name))),
                Some(DeflateKind::Zlib(d)) => {
                    d.try_finish().map_err(bad)?;
                    out.append(d.get_mut());
                }
                Some(DeflateKind::Raw(d)) => {
                    d.try_finish().map_err(bad)?;
                    out.append(d.get_mut());
                }
            },
            ContentDecoder::Br(d) => {
                d.flush().map_err(bad)?;
                out.append(d.get_mut());
                if d.close().is_err() {
                    return Err(ClientError::Protocol(Violation::Decoding(name)));
                }
                out.append(d.get_mut());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(enc: &str, data: &[u8], step: usize) -> Result<Vec<u8>, ClientError> {
        let mut d = ContentDecoder::for_encoding(Some(enc.as_bytes())).unwrap();
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
        assert!(ContentDecoder::for_encoding(Some(b"compress")).is_none());
    }
}
