//! HPACK's primitives (RFC 7541): integers, string literals (Huffman by
//! `httlib-huffman`), the static and dynamic tables, and the five field
//! representations a header block is made of.

use std::collections::VecDeque;

use super::CompressionError;

/// The static table (RFC 7541 Appendix A); index 1 is the first entry.
pub(super) const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The table size this server allows (it never raises the default).
const TABLE_SIZE: usize = 4096;

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The dynamic table (RFC 7541 §2.3.2): newest first.
struct Dynamic {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl Dynamic {
    fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        if index == 0 {
            return None;
        }
        if index <= STATIC.len() {
            return Some(STATIC[index - 1]);
        }
        self.entries
            .get(index - STATIC.len() - 1)
            .map(|(n, v)| (&n[..], &v[..]))
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            let Some((n, v)) = self.entries.pop_back() else {
                break;
            };
            self.size -= n.len() + v.len() + 32;
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + 32;
        self.evict_to(self.max.saturating_sub(size));
        // An entry larger than the table empties it and is not kept (§4.4).
        if size <= self.max {
            self.entries.push_front((name.into(), value.into()));
            self.size += size;
        }
    }
}

/// Reads an HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
fn get_int(buf: &[u8], n: u8) -> Result<(usize, usize), CompressionError> {
    let max = (1usize << n) - 1;
    let first = usize::from(*buf.first().ok_or(CompressionError)?) & max;
    if first < max {
        return Ok((first, 1));
    }
    let mut v = max;
    // Four continuation bytes reach 2^28: more than any field needs.
    for (i, &b) in buf[1..].iter().enumerate().take(4) {
        v += usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 2));
        }
    }
    Err(CompressionError)
}

/// Where a decoded string is: in the block, or in the scratch buffer
/// (Huffman-decoded), from `start`.
#[derive(Clone, Copy)]
enum Str {
    Block(usize, usize),
    Scratch(usize, usize),
}

/// Reads a string literal (§5.2): plain, or Huffman into `scratch`.
fn get_str(
    buf: &[u8],
    at: usize,
    scratch: &mut Vec<u8>,
    cache: &mut HuffmanCache,
) -> Result<(Str, usize), CompressionError> {
    let rest = &buf[at..];
    let huffman = rest.first().ok_or(CompressionError)? & 0x80 != 0;
    let (len, n) = get_int(rest, 7)?;
    let end = n
        .checked_add(len)
        .filter(|&e| e <= rest.len())
        .ok_or(CompressionError)?;
    if !huffman {
        return Ok((Str::Block(at + n, at + end), end));
    }
    let start = scratch.len();
    let coded = &rest[n..end];
    if let Some(plain) = cache.get(coded) {
        scratch.extend_from_slice(plain);
        return Ok((Str::Scratch(start, scratch.len()), end));
    }
    httlib_huffman::decode(coded, scratch, httlib_huffman::DecoderSpeed::FiveBits)
        .map_err(|_| CompressionError)?;
    // The padding must be the EOS code's high bits: fewer than 8 bits,
    // all ones (§5.2). The decoder lets zero bits through, so the
    // padding is worked out from the code lengths of what it decoded.
    let table = &httlib_huffman::encoder::table::ENCODE_TABLE;
    let bits: usize = scratch[start..]
        .iter()
        .map(|&b| usize::from(table[usize::from(b)].0))
        .sum();
    let pad = (coded.len() * 8)
        .checked_sub(bits)
        .ok_or(CompressionError)?;
    let ones = (1u16 << pad) - 1;
    if pad >= 8 || coded.last().is_some_and(|&l| u16::from(l) & ones != ones) {
        return Err(CompressionError);
    }
    cache.put(coded, &scratch[start..]);
    Ok((Str::Scratch(start, scratch.len()), end))
}

/// The last few Huffman strings decoded, by their coded bytes. Clients
/// built on nghttp2 (curl, nghttp, h2load) never index `:path`, so a
/// path asked for again is Huffman-decoded again: here it is found
/// instead (a compare of a few bytes against a decode of each).
#[derive(Default)]
struct HuffmanCache {
    entries: [(Vec<u8>, Vec<u8>); 4],
    next: usize,
}

/// Coded strings longer than this are not kept.
const CACHE_MAX: usize = 128;

impl HuffmanCache {
    fn get(&self, coded: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(c, _)| !c.is_empty() && c == coded)
            .map(|(_, p)| &p[..])
    }

    fn put(&mut self, coded: &[u8], plain: &[u8]) {
        if coded.is_empty() || coded.len() > CACHE_MAX {
            return;
        }
        let (c, p) = &mut self.entries[self.next];
        c.clear();
        c.extend_from_slice(coded);
        p.clear();
        p.extend_from_slice(plain);
        self.next = (self.next + 1) % self.entries.len();
    }
}

/// Decodes header blocks, keeping the dynamic table between them.
pub(super) struct BlockDecoder {
    table: Dynamic,
    scratch: Vec<u8>,
    huffman: HuffmanCache,
}

impl Default for BlockDecoder {
    fn default() -> BlockDecoder {
        BlockDecoder {
            table: Dynamic {
                entries: VecDeque::new(),
                size: 0,
                max: TABLE_SIZE,
            },
            scratch: Vec::new(),
            huffman: HuffmanCache::default(),
        }
    }
}

impl BlockDecoder {
    /// Decodes a header block, calling `field` with each field in order.
    pub(super) fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), CompressionError> {
        let mut at = 0;
        let mut fields = false;
        while at < block.len() {
            let b = block[at];
            if b & 0x80 != 0 {
                let (i, n) = get_int(&block[at..], 7)?;
                let (name, value) = self.table.get(i).ok_or(CompressionError)?;
                field(name, value);
                at += n;
            } else if b & 0xe0 == 0x20 {
                // A table size update: only before the first field (§4.2).
                let (size, n) = get_int(&block[at..], 5)?;
                if fields || size > TABLE_SIZE {
                    return Err(CompressionError);
                }
                self.table.max = size;
                self.table.evict_to(size);
                at += n;
                continue;
            } else {
                let (indexing, bits) = if b & 0xc0 == 0x40 {
                    (true, 6)
                } else {
                    (false, 4)
                };
                let (i, n) = get_int(&block[at..], bits)?;
                at += n;
                self.scratch.clear();
                let name = if i == 0 {
                    let (s, n) = get_str(block, at, &mut self.scratch, &mut self.huffman)?;
                    at += n;
                    Some(s)
                } else {
                    None
                };
                let (value, n) = get_str(block, at, &mut self.scratch, &mut self.huffman)?;
                at += n;
                let scratch = &self.scratch;
                let pick = |s: Str| -> &[u8] {
                    match s {
                        Str::Block(a, b) => &block[a..b],
                        Str::Scratch(a, b) => &scratch[a..b],
                    }
                };
                let v = pick(value);
                let nm = match name {
                    Some(s) => pick(s),
                    None => self.table.get(i).ok_or(CompressionError)?.0,
                };
                field(nm, v);
                if indexing {
                    let (nm, v) = (nm.to_vec(), v.to_vec());
                    self.table.insert(&nm, &v);
                }
            }
            fields = true;
        }
        Ok(())
    }
}
