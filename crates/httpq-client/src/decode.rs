//! Content decoding of response bodies (gzip, deflate, br), streaming,
//! under two limits — a decoded size and a compression ratio — enforced
//! inside each write, so a small bomb cannot fill memory or a disk.

use std::io::Write;

use crate::error::{BodyLimit, Violation};
use crate::ClientError;

/// Decoded bytes allowed before the ratio guard applies: a small body may
/// have any ratio (1 KiB of zeros compresses 100:1 and harms nobody).
const RATIO_GRACE: u64 = 1 << 20;

/// The limits a decoded body is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeLimits {
    /// Decoded bytes at most.
    pub max_bytes: u64,
    /// Decoded bytes per encoded byte at most, past `ratio_grace`; 0: no guard.
    pub max_ratio: u32,
    /// Decoded bytes allowed whatever the ratio ([`RATIO_GRACE`], but for
    /// the fuzzer, which needs bombs to end in microseconds).
    pub ratio_grace: u64,
}

impl DecodeLimits {
    /// The limits of a client's [`Config`](crate::Config), with the usual grace.
    pub(crate) const fn new(max_bytes: u64, max_ratio: u32) -> DecodeLimits {
        DecodeLimits {
            max_bytes,
            max_ratio,
            ratio_grace: RATIO_GRACE,
        }
    }

    /// Decoded bytes allowed after `encoded` bytes, and the limit that binds.
    fn allowed(&self, encoded: u64) -> (u64, BodyLimit) {
        let size = (self.max_bytes, BodyLimit::DecodedSize(self.max_bytes));
        if self.max_ratio == 0 {
            return size;
        }
        let by_ratio = encoded
            .saturating_mul(u64::from(self.max_ratio))
            .max(self.ratio_grace);
        if by_ratio < self.max_bytes {
            (by_ratio, BodyLimit::CompressionRatio(self.max_ratio))
        } else {
            size
        }
    }
}

/// Where a decoder writes: refuses to grow past its room, so a bomb fails
/// before it takes the memory (a few compressed bytes can expand to
/// gigabytes inside one write call). The room is set before each write
/// from the limits and the encoded bytes fed so far.
pub(crate) struct Capped {
    buf: Vec<u8>,
    room: u64,
    /// The limit the room came from, and whether it was hit.
    limit: BodyLimit,
    over: bool,
}

impl Capped {
    fn new() -> Capped {
        Capped {
            buf: Vec::new(),
            room: 0,
            limit: BodyLimit::DecodedSize(0),
            over: false,
        }
    }
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.len() as u64 > self.room {
            self.over = true;
            return Err(std::io::Error::other("decoded body over a limit"));
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
pub(crate) struct ContentDecoder {
    kind: Kind,
    limits: DecodeLimits,
    /// Encoded bytes fed, and decoded bytes produced, so far.
    encoded: u64,
    decoded: u64,
}

enum Kind {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Capped>>),
    /// "deflate" is zlib-wrapped by the RFC, raw in some servers; told apart
    /// by the first bytes (buffered until there are two).
    Deflate(Option<Box<DeflateKind>>, Vec<u8>),
    Br(Box<Br>),
}

/// A br stream decoded by Google's reference decoder (through brotlic):
/// the pure-Rust brotli-decompressor accepted a corrupt stream when it came
/// whole and rejected it in small pieces (`fuzz/corpus/decode/regress_br_split`),
/// where the reference rejects it however it arrives.
pub(crate) struct Br {
    decoder: brotlic::BrotliDecoder,
    out: Capped,
    finished: bool,
}

impl Br {
    /// Decoded bytes produced per call into the C decoder: bounds what is
    /// held before [`Capped`] judges it.
    const STEP: usize = 16 * 1024;

    fn new() -> Br {
        Br {
            decoder: brotlic::BrotliDecoder::new(),
            out: Capped::new(),
            finished: false,
        }
    }

    /// Runs the decoder over `input` (empty: drains what it holds).
    fn write_all(&mut self, mut input: &[u8]) -> std::io::Result<()> {
        let mut step = [0u8; Br::STEP];
        loop {
            if self.finished {
                // Bytes after the end of the stream: the reference CLI
                // calls that corrupt input, and so do we.
                return match input.is_empty() {
                    true => Ok(()),
                    false => Err(std::io::Error::other("bytes after the br stream")),
                };
            }
            let r = self
                .decoder
                .decompress(input, &mut step)
                .map_err(|e| std::io::Error::other(format!("br: {e:?}")))?;
            input = &input[r.bytes_read..];
            self.out.write_all(&step[..r.bytes_written])?;
            match r.info {
                brotlic::decode::DecoderInfo::Finished => self.finished = true,
                brotlic::decode::DecoderInfo::NeedsMoreOutput => {}
                brotlic::decode::DecoderInfo::NeedsMoreInput => return Ok(()),
            }
        }
    }

    /// The body ended: the stream must have reached its end.
    fn close(&mut self) -> std::io::Result<()> {
        self.write_all(&[])?;
        match self.finished {
            true => Ok(()),
            false => Err(std::io::Error::other("truncated br stream")),
        }
    }
}

pub(crate) enum DeflateKind {
    Zlib(flate2::write::ZlibDecoder<Capped>),
    Raw(flate2::write::DeflateDecoder<Capped>),
}

impl ContentDecoder {
    /// The decoder for a Content-Encoding value, held to `limits`; `None`
    /// for a coding we do not decode (the body is then handed out as it came).
    pub(crate) fn for_encoding(
        value: Option<&[u8]>,
        limits: DecodeLimits,
    ) -> Option<ContentDecoder> {
        let v = match value {
            None => String::new(),
            Some(v) => String::from_utf8_lossy(v).trim().to_ascii_lowercase(),
        };
        let kind = match v.as_str() {
            "" | "identity" => Kind::Identity,
            "gzip" | "x-gzip" => Kind::Gzip(Box::new(flate2::write::GzDecoder::new(Capped::new()))),
            "deflate" => Kind::Deflate(None, Vec::new()),
            "br" => Kind::Br(Box::new(Br::new())),
            _ => return None,
        };
        Some(ContentDecoder {
            kind,
            limits,
            encoded: 0,
            decoded: 0,
        })
    }

    /// A decoder that passes bytes through.
    pub(crate) fn identity() -> ContentDecoder {
        ContentDecoder {
            kind: Kind::Identity,
            limits: DecodeLimits::new(u64::MAX, 0),
            encoded: 0,
            decoded: 0,
        }
    }

    pub(crate) fn is_identity(&self) -> bool {
        matches!(self.kind, Kind::Identity)
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Identity => "identity",
            Kind::Gzip(_) => "gzip",
            Kind::Deflate(..) => "deflate",
            Kind::Br(_) => "br",
        }
    }

    /// The output sink, once there is a decoder.
    fn sink(&mut self) -> Option<&mut Capped> {
        match &mut self.kind {
            Kind::Identity => None,
            Kind::Gzip(d) => Some(d.get_mut()),
            Kind::Deflate(kind, _) => match kind.as_deref_mut()? {
                DeflateKind::Zlib(d) => Some(d.get_mut()),
                DeflateKind::Raw(d) => Some(d.get_mut()),
            },
            Kind::Br(d) => Some(&mut d.out),
        }
    }

    /// Sets the sink's room for what the encoded bytes so far allow.
    fn make_room(&mut self) {
        let (allowed, limit) = self.limits.allowed(self.encoded);
        let decoded = self.decoded;
        if let Some(sink) = self.sink() {
            sink.room = allowed.saturating_sub(decoded);
            sink.limit = limit;
        }
    }

    /// Moves decoded bytes to `out`; maps a failed step to its error.
    fn settle(&mut self, step: std::io::Result<()>, out: &mut Vec<u8>) -> Result<(), ClientError> {
        let name = self.name();
        let Some(sink) = self.sink() else {
            return step.map_err(|_| ClientError::Protocol(Violation::Decoding(name)));
        };
        let produced = sink.buf.len() as u64;
        out.append(&mut sink.buf);
        let (over, limit) = (sink.over, sink.limit);
        self.decoded += produced;
        match step {
            Ok(()) => Ok(()),
            Err(_) if over => Err(ClientError::LimitExceeded(limit)),
            Err(_) => Err(ClientError::Protocol(Violation::Decoding(name))),
        }
    }

    /// Feeds encoded bytes; decoded bytes are appended to `out`.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ClientError> {
        if let Kind::Identity = self.kind {
            out.extend_from_slice(input);
            return Ok(());
        }
        if let Kind::Deflate(kind @ None, pending) = &mut self.kind {
            pending.extend_from_slice(input);
            if pending.len() < 2 {
                return Ok(());
            }
            // RFC 1950: CM = 8 and the header is a multiple of 31.
            let zlib = pending[0] & 0x0f == 8
                && (u16::from(pending[0]) << 8 | u16::from(pending[1])) % 31 == 0;
            *kind = Some(Box::new(if zlib {
                DeflateKind::Zlib(flate2::write::ZlibDecoder::new(Capped::new()))
            } else {
                DeflateKind::Raw(flate2::write::DeflateDecoder::new(Capped::new()))
            }));
            let first = std::mem::take(pending);
            return self.feed(&first, out);
        }
        self.encoded += input.len() as u64;
        self.make_room();
        let step = match &mut self.kind {
            Kind::Identity | Kind::Deflate(None, _) => unreachable!("handled above"),
            Kind::Gzip(d) => d.write_all(input),
            Kind::Deflate(Some(kind), _) => match kind.as_mut() {
                DeflateKind::Zlib(d) => d.write_all(input),
                DeflateKind::Raw(d) => d.write_all(input),
            },
            Kind::Br(d) => d.write_all(input),
        };
        self.settle(step, out)
    }

    /// The body ended: flushes what is left and checks the stream was complete.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ClientError> {
        self.make_room();
        let step = match &mut self.kind {
            Kind::Identity => return Ok(()),
            Kind::Gzip(d) => d.try_finish(),
            Kind::Deflate(kind, pending) => match kind.as_deref_mut() {
                None if pending.is_empty() => return Ok(()),
                None => Err(std::io::Error::other("truncated")),
                Some(DeflateKind::Zlib(d)) => d.try_finish(),
                Some(DeflateKind::Raw(d)) => d.try_finish(),
            },
            Kind::Br(d) => d.close(),
        };
        self.settle(step, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMITS: DecodeLimits = DecodeLimits::new(u64::MAX, 0);

    /// br at quality 5: the tests compress hundreds of MiB.
    fn br_compress(data: &[u8]) -> Vec<u8> {
        let encoder = brotlic::BrotliEncoderOptions::new()
            .quality(brotlic::Quality::new(5).unwrap())
            .build()
            .unwrap();
        let mut w = brotlic::CompressorWriter::with_encoder(encoder, Vec::new());
        w.write_all(data).unwrap();
        w.into_inner().unwrap()
    }

    fn zeros_in(enc: &str, len: usize) -> Vec<u8> {
        let zeros = vec![0u8; len];
        match enc {
            "gzip" => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&zeros).unwrap();
                gz.finish().unwrap()
            }
            _ => br_compress(&zeros),
        }
    }

    /// A bomb stops at the size cap inside one write: memory never holds more.
    #[test]
    fn a_bomb_stops_at_the_size_cap_within_one_write() {
        let limits = DecodeLimits::new(1 << 20, 0);
        for enc in ["gzip", "br"] {
            let mut d = ContentDecoder::for_encoding(Some(enc.as_bytes()), limits).unwrap();
            let mut out = Vec::new();
            let e = d.feed(&zeros_in(enc, 8 << 20), &mut out).err();
            assert_eq!(
                e,
                Some(ClientError::LimitExceeded(BodyLimit::DecodedSize(1 << 20))),
                "{enc}"
            );
            assert!(out.len() <= 1 << 20, "{enc}: {} bytes kept", out.len());
        }
    }

    /// Far under the size cap, a bomb is stopped by its ratio, a little past
    /// the first MiB; ordinary bodies, and small ones of any ratio, decode.
    #[test]
    fn the_ratio_guard_stops_bombs_and_nothing_else() {
        let limits = DecodeLimits::new(1 << 30, 100);
        for enc in ["gzip", "br"] {
            let mut d = ContentDecoder::for_encoding(Some(enc.as_bytes()), limits).unwrap();
            let mut out = Vec::new();
            let bomb = zeros_in(enc, 64 << 20);
            let e = bomb
                .chunks(4096)
                .map(|piece| d.feed(piece, &mut out))
                .find(Result::is_err)
                .and_then(Result::err);
            assert_eq!(
                e,
                Some(ClientError::LimitExceeded(BodyLimit::CompressionRatio(100))),
                "{enc}"
            );
            assert!(out.len() < 4 << 20, "{enc}: {} bytes decoded", out.len());
            // 512 KiB of zeros: any ratio, under the first MiB.
            assert_eq!(
                decode_with(enc, &zeros_in(enc, 512 << 10), limits)
                    .unwrap()
                    .len(),
                512 << 10
            );
        }
        let text: Vec<u8> = (0..400_000u32)
            .flat_map(|i| i.to_string().into_bytes())
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&text).unwrap();
        assert_eq!(
            decode_with("gzip", &gz.finish().unwrap(), limits).unwrap(),
            text
        );
    }

    fn decode_with(enc: &str, data: &[u8], limits: DecodeLimits) -> Result<Vec<u8>, ClientError> {
        let mut d = ContentDecoder::for_encoding(Some(enc.as_bytes()), limits).unwrap();
        let mut out = Vec::new();
        for piece in data.chunks(8192) {
            d.feed(piece, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }

    fn decode_all(enc: &str, data: &[u8], step: usize) -> Result<Vec<u8>, ClientError> {
        let mut d = ContentDecoder::for_encoding(Some(enc.as_bytes()), NO_LIMITS).unwrap();
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
        let br = br_compress(&text);
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
        let mut br = br_compress(b"hello hello hello");
        assert!(decode_all("br", &br[..br.len() - 1], 3).is_err());
        br.extend_from_slice(b"after the end");
        for step in [1, 5, br.len()] {
            assert!(decode_all("br", &br, step).is_err(), "pieces of {step}");
        }
        assert!(ContentDecoder::for_encoding(Some(b"compress"), NO_LIMITS).is_none());
    }

    /// A 37-byte corrupt br stream the decode fuzz target found (Google's
    /// decoder fails at its 14th byte). brotli-decompressor 5.0.3 and 6.3.1
    /// decoded it whole to 176 bytes yet failed in 1–5-byte pieces; the
    /// reference rejects it however the body is split.
    #[test]
    fn a_corrupt_br_stream_fails_in_any_pieces() {
        let input = include_bytes!("../../../fuzz/corpus/decode/regress_br_split");
        let body = &input[2..]; // the fuzz entry's selector and step bytes
        for step in 1..=body.len() {
            assert!(
                matches!(
                    decode_all("br", body, step),
                    Err(ClientError::Protocol(Violation::Decoding("br")))
                ),
                "pieces of {step}"
            );
        }
    }
}
