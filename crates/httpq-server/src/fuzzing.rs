//! Never-panic entry points for cargo-fuzz and the corpus replay test:
//! URL prefix parsing, which takes text from configuration and the C ABI.

use crate::url_group::UrlPrefix;

/// Parses `data` as a URL prefix. Checks: no panic; an accepted prefix
/// prints as text that parses back to the same prefix, and its own path
/// (with and without the last `/`) routes to it.
///
/// ```
/// httpq_server::fuzzing::url_prefix(b"http://+:80/a/");
/// ```
pub fn url_prefix(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(prefix) = UrlPrefix::parse(text) else {
        return;
    };
    let printed = prefix.to_string();
    let again = UrlPrefix::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(prefix, again, "{text:?} printed as {printed:?}");
    assert!(prefix.port != 0, "{text:?} accepted port 0");
    let path = prefix.path.as_bytes();
    assert!(prefix.path_matches(path));
    assert!(prefix.path_matches(&path[..path.len() - 1]));
    assert!(prefix.path_matches(prefix.path.to_ascii_uppercase().as_bytes()));
}
