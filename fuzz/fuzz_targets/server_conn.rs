#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    httpq_proto::fuzzing::server_conn(data);
});
