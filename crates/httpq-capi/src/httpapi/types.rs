//! The http.h structs, field for field as in `include/http.h` (the Windows
//! SDK's order and types; ULONG is 32-bit, pointers are the platform's).

use std::ffi::c_void;

use crate::win32::HANDLE;

pub type ULONG = u32;
pub type USHORT = u16;

/// HTTPAPI_VERSION, passed by value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HTTPAPI_VERSION {
    pub major: USHORT,
    pub minor: USHORT,
}

#[repr(C)]
pub struct HTTP_BINDING_INFO {
    pub flags: ULONG,
    pub request_queue_handle: HANDLE,
}

#[repr(C)]
pub struct HTTP_TIMEOUT_LIMIT_INFO {
    pub flags: ULONG,
    pub entity_body: USHORT,
    pub drain_entity_body: USHORT,
    pub request_queue: USHORT,
    pub idle_connection: USHORT,
    pub header_wait: USHORT,
    pub min_send_rate: ULONG,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HTTP_VERSION {
    pub major: USHORT,
    pub minor: USHORT,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HTTP_KNOWN_HEADER {
    pub raw_value_length: USHORT,
    pub raw_value: *const u8,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HTTP_UNKNOWN_HEADER {
    pub name_length: USHORT,
    pub raw_value_length: USHORT,
    pub name: *const u8,
    pub raw_value: *const u8,
}

pub const REQUEST_KNOWN: usize = 41;
pub const RESPONSE_KNOWN: usize = 30;

#[repr(C)]
pub struct HTTP_REQUEST_HEADERS {
    pub unknown_header_count: USHORT,
    pub unknown_headers: *mut HTTP_UNKNOWN_HEADER,
    pub trailer_count: USHORT,
    pub trailers: *mut HTTP_UNKNOWN_HEADER,
    pub known: [HTTP_KNOWN_HEADER; REQUEST_KNOWN],
}

#[repr(C)]
pub struct HTTP_RESPONSE_HEADERS {
    pub unknown_header_count: USHORT,
    pub unknown_headers: *const HTTP_UNKNOWN_HEADER,
    pub trailer_count: USHORT,
    pub trailers: *const HTTP_UNKNOWN_HEADER,
    pub known: [HTTP_KNOWN_HEADER; RESPONSE_KNOWN],
}

#[repr(C)]
pub struct HTTP_COOKED_URL {
    pub full_url_length: USHORT,
    pub host_length: USHORT,
    pub abs_path_length: USHORT,
    pub query_string_length: USHORT,
    pub full_url: *const u16,
    pub host: *const u16,
    pub abs_path: *const u16,
    pub query_string: *const u16,
}

#[repr(C)]
pub struct HTTP_TRANSPORT_ADDRESS {
    pub remote: *mut c_void,
    pub local: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HTTP_BYTE_RANGE {
    pub starting_offset: u64,
    pub length: u64,
}

pub const CHUNK_FROM_MEMORY: u32 = 0;
pub const CHUNK_FROM_FILE_HANDLE: u32 = 1;

/// HTTP_DATA_CHUNK: the type, then a union whose largest member is the
/// file-handle form (a byte range and a handle).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HTTP_DATA_CHUNK {
    pub chunk_type: u32,
    pub u: DataChunkUnion,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct FromMemory {
    pub buffer: *mut c_void,
    pub buffer_length: ULONG,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct FromFileHandle {
    pub byte_range: HTTP_BYTE_RANGE,
    pub file_handle: HANDLE,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union DataChunkUnion {
    pub from_memory: FromMemory,
    pub from_file_handle: FromFileHandle,
}

#[repr(C)]
pub struct HTTP_REQUEST_V1 {
    pub flags: ULONG,
    pub connection_id: u64,
    pub request_id: u64,
    pub url_context: u64,
    pub version: HTTP_VERSION,
    pub verb: u32,
    pub unknown_verb_length: USHORT,
    pub raw_url_length: USHORT,
    pub unknown_verb: *const u8,
    pub raw_url: *const u8,
    pub cooked_url: HTTP_COOKED_URL,
    pub address: HTTP_TRANSPORT_ADDRESS,
    pub headers: HTTP_REQUEST_HEADERS,
    pub bytes_received: u64,
    pub entity_chunk_count: USHORT,
    pub entity_chunks: *mut HTTP_DATA_CHUNK,
    pub raw_connection_id: u64,
    pub ssl_info: *mut c_void,
}

#[repr(C)]
pub struct HTTP_REQUEST_V2 {
    pub v1: HTTP_REQUEST_V1,
    pub request_info_count: USHORT,
    pub request_info: *mut c_void,
}

#[repr(C)]
pub struct HTTP_RESPONSE_V1 {
    pub flags: ULONG,
    pub version: HTTP_VERSION,
    pub status_code: USHORT,
    pub reason_length: USHORT,
    pub reason: *const u8,
    pub headers: HTTP_RESPONSE_HEADERS,
    pub entity_chunk_count: USHORT,
    pub entity_chunks: *const HTTP_DATA_CHUNK,
}

/// The HTTP_HEADER_ID names of requests, by index.
pub const REQUEST_HEADER_NAMES: [&str; REQUEST_KNOWN] = [
    "cache-control",
    "connection",
    "date",
    "keep-alive",
    "pragma",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
    "warning",
    "allow",
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
    "content-md5",
    "content-range",
    "expires",
    "last-modified",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cookie",
    "expect",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "range",
    "te",
    "translate",
    "user-agent",
];

/// The HTTP_HEADER_ID names of responses, by index (0–19 shared with requests).
pub const RESPONSE_HEADER_NAMES: [&str; RESPONSE_KNOWN] = [
    "Cache-Control",
    "Connection",
    "Date",
    "Keep-Alive",
    "Pragma",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Via",
    "Warning",
    "Allow",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Content-Language",
    "Content-Location",
    "Content-MD5",
    "Content-Range",
    "Expires",
    "Last-Modified",
    "Accept-Ranges",
    "Age",
    "ETag",
    "Location",
    "Proxy-Authenticate",
    "Retry-After",
    "Server",
    "Set-Cookie",
    "Vary",
    "WWW-Authenticate",
];

/// HTTP_VERB values of the methods http.sys knows.
pub fn verb_of(method: &[u8]) -> u32 {
    match method {
        b"OPTIONS" => 3,
        b"GET" => 4,
        b"HEAD" => 5,
        b"POST" => 6,
        b"PUT" => 7,
        b"DELETE" => 8,
        b"TRACE" => 9,
        b"CONNECT" => 10,
        b"TRACK" => 11,
        b"MOVE" => 12,
        b"COPY" => 13,
        b"PROPFIND" => 14,
        b"PROPPATCH" => 15,
        b"MKCOL" => 16,
        b"LOCK" => 17,
        b"UNLOCK" => 18,
        b"SEARCH" => 19,
        _ => 1, // HttpVerbUnknown: the name is in pUnknownVerb
    }
}
