//! Request methods as counters see them: the nine RFC 9110 / RFC 5789
//! methods by name, every other one as `other` (a label set that stays bounded).

/// A request method, for counting: the standard ones, and [`MethodKind::Other`].
///
/// ```
/// use httpq_proto::MethodKind;
/// assert_eq!(MethodKind::from_bytes(b"GET"), MethodKind::Get);
/// assert_eq!(MethodKind::from_bytes(b"BREW").as_str(), "other");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum MethodKind {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Connect,
    Trace,
    /// Any other (extension) method, or none parsed.
    #[default]
    Other,
}

impl MethodKind {
    /// Every kind, in index order.
    pub const ALL: [MethodKind; 10] = [
        MethodKind::Get,
        MethodKind::Head,
        MethodKind::Post,
        MethodKind::Put,
        MethodKind::Delete,
        MethodKind::Options,
        MethodKind::Patch,
        MethodKind::Connect,
        MethodKind::Trace,
        MethodKind::Other,
    ];

    /// The kind of a method token (methods are case-sensitive).
    pub fn from_bytes(m: &[u8]) -> MethodKind {
        match m {
            b"GET" => MethodKind::Get,
            b"HEAD" => MethodKind::Head,
            b"POST" => MethodKind::Post,
            b"PUT" => MethodKind::Put,
            b"DELETE" => MethodKind::Delete,
            b"OPTIONS" => MethodKind::Options,
            b"PATCH" => MethodKind::Patch,
            b"CONNECT" => MethodKind::Connect,
            b"TRACE" => MethodKind::Trace,
            _ => MethodKind::Other,
        }
    }

    /// The method's name, or `"other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Get => "GET",
            MethodKind::Head => "HEAD",
            MethodKind::Post => "POST",
            MethodKind::Put => "PUT",
            MethodKind::Delete => "DELETE",
            MethodKind::Options => "OPTIONS",
            MethodKind::Patch => "PATCH",
            MethodKind::Connect => "CONNECT",
            MethodKind::Trace => "TRACE",
            MethodKind::Other => "other",
        }
    }

    /// Its place in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_case_matters() {
        for k in MethodKind::ALL {
            if k != MethodKind::Other {
                assert_eq!(MethodKind::from_bytes(k.as_str().as_bytes()), k);
            }
            assert_eq!(MethodKind::ALL[k.index()], k);
        }
        assert_eq!(MethodKind::from_bytes(b"get"), MethodKind::Other);
    }
}
