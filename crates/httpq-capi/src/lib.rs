//! httpq's C face: the HTTP Server API (`http.h`) and WinInet (`wininet.h`)
//! with their Win32 names, types and error codes, over httpq's Rust crates.
//!
//! C code written for httpapi.dll and wininet.dll compiles against
//! `include/` and links `libhttpq_capi`:
//!
//! ```sh
//! cargo build --release -p httpq-capi
//! cc -fshort-wchar -I crates/httpq-capi/include prog.c \
//!    -L target/release -lhttpq_capi -lpthread -ldl -lm
//! ```
//!
//! Every behaviour lives in `httpq-server` and `httpq-client`; this crate
//! translates: UTF-16 strings, the request and response structs, data
//! chunks, OVERLAPPED completions and Win32 error codes.
//!
//! | concept | module |
//! |---|---|
//! | the Win32 plumbing: handles, errors, events, ports, files, threads | [`win32`] |
//! | the HTTP Server API: sessions, URL groups, queues, requests | [`httpapi`] |
//! | WinInet: HINTERNETs, the status callback, async mode, requests | [`wininet`] |
//!
//! `docs/C-API.md` lists what is supported and what differs from Windows.

// Every exported function takes raw pointers from C; their contracts are
// Win32's, written once in docs/C-API.md rather than on each function.
#![allow(clippy::missing_safety_doc)]
// The Win32 names (HTTP_REQUEST_V1, ULONG, GetLastError) are the contract.
#![allow(clippy::upper_case_acronyms, non_camel_case_types, non_snake_case)]

// Top down: each module imports only modules listed after it.
pub mod httpapi;
pub mod wininet;
pub mod win32;
