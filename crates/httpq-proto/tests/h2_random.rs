//! The HTTP/2 engine fed random frame sequences, mostly well formed in
//! shape (kinds, flags, small stream ids, header blocks that decode) so
//! they reach deep states: it never panics, splitting the input never
//! changes what it sees, and it writes only whole frames
//! (`httpq_proto::fuzzing::h2` checks all three).

use proptest::prelude::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Header blocks: a GET, a POST with a length, trailers, a size update,
/// indexed fields, a Huffman literal, and garbage.
fn block() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![0x82, 0x86, 0x84, 0x41, 0x01, b'a']),
        Just(vec![
            0x83, 0x86, 0x84, 0x41, 0x01, b'a', 0x0f, 0x0d, 0x01, b'4'
        ]),
        Just(vec![0x00, 0x01, b'x', 0x01, b'1']),
        Just(vec![0x3f, 0x45, 0x82, 0x86, 0x84, 0xbe]),
        Just(vec![
            0x82, 0x86, 0x44, 0x85, 0x62, 0x72, 0xd1, 0x41, 0x7f, 0x41, 0x01, b'a'
        ]),
        proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

fn one_frame() -> impl Strategy<Value = Vec<u8>> {
    let stream = prop_oneof![
        Just(0u32),
        Just(1),
        Just(2),
        Just(3),
        Just(5),
        Just(7),
        Just(9)
    ];
    (
        0u8..11,
        any::<u8>(),
        stream,
        block(),
        proptest::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(kind, flags, stream, block, bytes)| {
            let payload = match kind {
                // HEADERS and CONTINUATION carry blocks; keep PADDED and
                // PRIORITY off most of the time so the block is read.
                1 | 9 => block,
                4 => bytes.chunks(6).flat_map(|c| c.to_vec()).collect(),
                _ => bytes,
            };
            let flags = if kind == 1 && flags & 0x40 == 0 {
                flags & !0x28
            } else {
                flags
            };
            frame(kind, flags, stream, &payload)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_frames_never_break_the_engine(frames in proptest::collection::vec(one_frame(), 0..24)) {
        let input: Vec<u8> = frames.concat();
        httpq_proto::fuzzing::h2(&input);
    }
}
