//! `httpq get -w/--write-out FORMAT`: curl's variables about the transfer
//! just made (status, timings, sizes, redirects), expanded into FORMAT.
//!
//! As curl: `%{name}` is a variable, `%%` a percent sign, `\n` `\r` `\t`
//! the control characters; anything else (a `%` or `\` before another
//! character, an unknown variable, which is warned about) stays as curl
//! leaves it. Times are seconds with six decimals counted from the start
//! of the transfer (redirects included), so they never decrease in the
//! order namelookup, connect, appconnect (0 without TLS), starttransfer, total.

use std::fmt::Write as _;
use std::time::Duration;

use httpq_client::{RequestHandle, Timings};

/// What `-w` can report, gathered as the transfer goes.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    /// The final status (0 when there was no response).
    pub http_code: u16,
    /// The final request's phases, from the request's start.
    pub timings: Timings,
    /// Whether the final URL is https (appconnect is 0 otherwise).
    pub tls: bool,
    /// Body bytes delivered.
    pub size_download: u64,
    /// Redirects followed.
    pub num_redirects: u32,
    /// The last URL.
    pub url_effective: String,
}

impl Transfer {
    /// A transfer that has not reached the server yet: only its URL is known.
    pub fn new(url: &str) -> Transfer {
        let url_effective = httpq_client::Url::parse(url)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| url.to_string());
        Transfer {
            url_effective,
            ..Transfer::default()
        }
    }

    /// Takes in what the request handle knows now.
    pub fn note(&mut self, req: &RequestHandle) {
        self.http_code = req.status();
        self.timings = req.timings();
        self.tls = req.url().scheme() == httpq_client::Scheme::Https;
        self.num_redirects = req.redirect_count();
        self.url_effective = req.url().to_string();
    }

    /// The phase times, filled so that they never go down: a phase that
    /// did not happen (no lookup on a reused connection, no TLS) takes
    /// the time of the one before, as curl reports them; appconnect
    /// stays 0 without TLS, as curl's.
    fn times(&self) -> Times {
        let t = &self.timings;
        let zero = Duration::ZERO;
        let namelookup = t.name_lookup.or(t.redirect).unwrap_or(zero);
        let connect = t.connect.unwrap_or(namelookup).max(namelookup);
        let appconnect = if self.tls {
            t.tls.unwrap_or(connect).max(connect)
        } else {
            zero
        };
        let pretransfer = t
            .pretransfer
            .unwrap_or(connect)
            .max(connect.max(appconnect));
        let starttransfer = t.first_byte.unwrap_or(pretransfer).max(pretransfer);
        let total = t.total.unwrap_or(starttransfer).max(starttransfer);
        Times {
            namelookup,
            connect,
            appconnect,
            starttransfer,
            total,
        }
    }

    /// Bytes per second over the whole transfer, whole bytes as curl prints it.
    fn speed_download(&self) -> u64 {
        let micros = self.times().total.as_micros();
        if micros == 0 {
            return 0;
        }
        u64::try_from(u128::from(self.size_download) * 1_000_000 / micros).unwrap_or(u64::MAX)
    }
}

struct Times {
    namelookup: Duration,
    connect: Duration,
    appconnect: Duration,
    starttransfer: Duration,
    total: Duration,
}

/// The variables `%{json}` holds, in curl's (alphabetical) order.
const VARIABLES: [&str; 10] = [
    "http_code",
    "num_redirects",
    "size_download",
    "speed_download",
    "time_appconnect",
    "time_connect",
    "time_namelookup",
    "time_starttransfer",
    "time_total",
    "url_effective",
];

/// A variable's value: `Ok(text)` for a number, `Err(text)` for a string
/// (JSON quotes it), `None` for an unknown name.
fn value(t: &Transfer, name: &str) -> Option<Result<String, String>> {
    let secs = |d: Duration| Ok(format!("{}.{:06}", d.as_secs(), d.subsec_micros()));
    let times = t.times();
    Some(match name {
        // curl pads it to three digits ("000" without a response).
        "http_code" | "response_code" => Ok(format!("{:03}", t.http_code)),
        "num_redirects" => Ok(t.num_redirects.to_string()),
        "size_download" => Ok(t.size_download.to_string()),
        "speed_download" => Ok(t.speed_download().to_string()),
        "time_appconnect" => secs(times.appconnect),
        "time_connect" => secs(times.connect),
        "time_namelookup" => secs(times.namelookup),
        "time_starttransfer" => secs(times.starttransfer),
        "time_total" => secs(times.total),
        "url_effective" => Err(t.url_effective.clone()),
        _ => return None,
    })
}

/// All variables as one JSON object, as curl's `%{json}`.
fn json(t: &Transfer) -> String {
    let mut out = String::from("{");
    for (i, name) in VARIABLES.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = match value(t, name) {
            // JSON numbers have no leading zeros: 200, but 0 not 000.
            Some(Ok(_)) if *name == "http_code" => t.http_code.to_string(),
            Some(Ok(n)) => n,
            Some(Err(s)) => serde_json::Value::from(s).to_string(),
            None => "null".into(),
        };
        let _ = write!(out, "\"{name}\":{v}");
    }
    out.push('}');
    out
}

/// Expands FORMAT for transfer `t`; `warn` is told of each unknown variable.
///
/// ```ignore
/// let text = render("%{http_code} %{url_effective}\n", &transfer, &mut |w| eprintln!("{w}"));
/// assert_eq!(text, "200 http://127.0.0.1:8080/\n");
/// ```
pub fn render(format: &str, t: &Transfer, warn: &mut dyn FnMut(&str)) -> String {
    let mut out = String::with_capacity(format.len() + 32);
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        let next = rest[c.len_utf8()..].chars().next();
        match (c, next) {
            ('%', Some('%')) => {
                out.push('%');
                rest = &rest[2..];
            }
            ('%', Some('{')) => match rest[2..].find('}') {
                Some(end) => {
                    let name = &rest[2..2 + end];
                    match (name, value(t, name)) {
                        ("json", _) => out.push_str(&json(t)),
                        (_, Some(Ok(v) | Err(v))) => out.push_str(&v),
                        (_, None) => warn(&format!("unknown --write-out variable: '{name}'")),
                    }
                    rest = &rest[2 + end + 1..];
                }
                None => {
                    out.push_str("%{");
                    rest = &rest[2..];
                }
            },
            ('\\', Some(e @ ('n' | 'r' | 't'))) => {
                out.push(match e {
                    'n' => '\n',
                    'r' => '\r',
                    _ => '\t',
                });
                rest = &rest[2..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    fn transfer() -> Transfer {
        Transfer {
            http_code: 200,
            timings: Timings {
                name_lookup: ms(1),
                connect: ms(2),
                tls: None,
                pretransfer: ms(3),
                first_byte: ms(4),
                total: ms(500),
                redirect: None,
            },
            tls: false,
            size_download: 1000,
            num_redirects: 1,
            url_effective: "http://h/\"q\"".into(),
        }
    }

    #[test]
    fn expands_variables_escapes_and_percent_as_curl() {
        let mut warnings = Vec::new();
        let text = render(
            "%{http_code} %{size_download} %{speed_download} %{num_redirects}\\t%{time_total}%%\\n%{nope}\\x%z%{",
            &transfer(),
            &mut |w| warnings.push(w.to_string()),
        );
        assert_eq!(text, "200 1000 2000 1\t0.500000%\n\\x%z%{");
        assert_eq!(warnings, ["unknown --write-out variable: 'nope'"]);
    }

    #[test]
    fn no_response_is_000_and_times_fill_in_order() {
        let mut t = Transfer::new("http://h:80");
        assert_eq!(t.url_effective, "http://h/");
        t.timings.name_lookup = ms(7);
        let text = render(
            "%{http_code} %{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}",
            &t,
            &mut |_| {},
        );
        assert_eq!(text, "000 0.007000 0.007000 0.000000 0.007000 0.007000");
    }

    #[test]
    fn json_holds_every_variable() {
        let text = render("%{json}", &transfer(), &mut |_| {});
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["http_code"], 200);
        assert_eq!(v["url_effective"], "http://h/\"q\"");
        assert_eq!(v["time_total"].as_f64(), Some(0.5));
        assert_eq!(v.as_object().unwrap().len(), VARIABLES.len());
    }
}
