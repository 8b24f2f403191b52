//! `httpq serve --config sites.toml`: several sites in one server, each a
//! URL group with its own request queue, prefixes, timeouts and certificate.
//!
//! ```toml
//! [[site]]
//! prefixes = ["http://127.0.0.1:8080/a/"]
//! root = "www/a"                # relative to this file
//!
//! [[site]]
//! prefixes = ["https://localhost:8443/b/"]
//! echo = true
//! tls = { self_signed = true }  # or { cert = "c.pem", key = "k.pem" }
//!
//! [site.timeouts]               # belongs to the site above
//! entity_body = "2s"            # the six http.sys timeouts, snake_case
//! min_send_rate = 150           # bytes per second
//! ```
//!
//! Every mistake is reported with the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use httpq_server::{Timeouts, UrlPrefix};
use serde::Deserialize;
use toml::Spanned;

/// A whole configuration file, checked.
#[derive(Debug)]
pub struct SitesConfig {
    pub sites: Vec<SiteConfig>,
}

/// One `[[site]]`.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The site's URL prefixes, parsed.
    pub prefixes: Vec<UrlPrefix>,
    pub content: Content,
    /// The site's own timeouts; zero fields are the server's.
    pub timeouts: Option<Timeouts>,
    pub tls: Option<TlsConfig>,
}

/// What a site serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Static files under this directory (absolute).
    Root(PathBuf),
    /// Every request echoed.
    Echo,
}

/// Where a site's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    site: Vec<Spanned<RawSite>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    prefixes: Spanned<Vec<Spanned<String>>>,
    root: Option<Spanned<String>>,
    #[serde(default)]
    echo: Option<Spanned<bool>>,
    timeouts: Option<RawTimeouts>,
    tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    entity_body: Option<Spanned<String>>,
    drain_entity_body: Option<Spanned<String>>,
    request_queue: Option<Spanned<String>>,
    idle_connection: Option<Spanned<String>>,
    header_wait: Option<Spanned<String>>,
    min_send_rate: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    #[serde(default)]
    self_signed: bool,
}

/// A configuration error: `FILE:LINE: KEY: what is wrong`.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The longest timeout a site may set (a year), as the serve flags.
const MAX_TIMEOUT: Duration = Duration::from_secs(crate::MAX_TIMEOUT_SECS);

impl SitesConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<SitesConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        let base = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// Checks `text` (named `file` in errors); relative paths are under `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<SitesConfig, ConfigError> {
        // Bytes, not chars: a span never splits a character this way.
        let line_of = |at: usize| {
            let at = at.min(text.len());
            text.as_bytes()[..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        };
        let at = |span: Range<usize>, key: &str, why: &str| {
            ConfigError(format!("{file}:{}: {key}: {why}", line_of(span.start)))
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim_end();
            match e.span() {
                // The line itself names the key (toml's message may not).
                Some(s) => {
                    let n = line_of(s.start);
                    let source = text.lines().nth(n - 1).unwrap_or("").trim();
                    ConfigError(format!("{file}:{n}: {msg} (in `{source}`)"))
                }
                None => ConfigError(format!("{file}: {msg}")),
            }
        })?;
        if raw.site.is_empty() {
            return Err(ConfigError(format!(
                "{file}: no [[site]]: a site needs `prefixes` and `root` or `echo = true`"
            )));
        }
        let mut sites = Vec::new();
        let mut seen: Vec<(UrlPrefix, String)> = Vec::new();
        // Certificate bindings taken so far: (scheme-less host spec, port) → its site and source.
        let mut bound: Vec<(String, u16, usize, TlsConfig)> = Vec::new();
        for (i, site) in raw.site.into_iter().enumerate() {
            let n = i + 1;
            let span = site.span();
            let site = site.into_inner();
            let key = |k: &str| format!("site[{n}].{k}");
            if site.prefixes.get_ref().is_empty() {
                return Err(at(
                    site.prefixes.span(),
                    &key("prefixes"),
                    "needs at least one URL prefix",
                ));
            }
            let mut prefixes = Vec::new();
            for p in site.prefixes.into_inner() {
                let parsed = UrlPrefix::parse(p.get_ref())
                    .map_err(|e| at(p.span(), &key("prefixes"), &e.to_string()))?;
                // A request one slash short of a prefix matches it, so
                // `/_httpq/x/` would take `/_httpq/x` as well.
                if parsed.path.starts_with("/_httpq/") || parsed.path == "/_httpq/" {
                    return Err(at(
                        p.span(),
                        &key("prefixes"),
                        "/_httpq/ and what is under it belong to the server",
                    ));
                }
                if let Some((_, other)) = seen.iter().find(|(q, _)| *q == parsed) {
                    return Err(at(
                        p.span(),
                        &key("prefixes"),
                        &format!("{} is already a prefix of {other}", p.get_ref()),
                    ));
                }
                seen.push((parsed.clone(), format!("site[{n}]")));
                prefixes.push(parsed);
            }
            let echo = site.echo.as_ref().is_some_and(|e| *e.get_ref());
            let content = match (site.root, echo) {
                (Some(r), true) => {
                    return Err(at(
                        r.span(),
                        &key("root"),
                        "a site has `root` or `echo = true`, not both",
                    ))
                }
                (Some(r), false) => {
                    let dir = base.join(r.get_ref());
                    match dir.canonicalize() {
                        Ok(d) if d.is_dir() => Content::Root(d),
                        Ok(_) => {
                            return Err(at(
                                r.span(),
                                &key("root"),
                                &format!("{} is not a directory", dir.display()),
                            ))
                        }
                        Err(e) => {
                            return Err(at(
                                r.span(),
                                &key("root"),
                                &format!("{}: {e}", dir.display()),
                            ))
                        }
                    }
                }
                (None, true) => Content::Echo,
                (None, false) => {
                    return Err(at(
                        span,
                        &format!("site[{n}]"),
                        "needs `root = \"DIR\"` or `echo = true`",
                    ))
                }
            };
            let timeouts = site
                .timeouts
                .map(|t| timeouts(t, &|s, k, w| at(s, &key(&format!("timeouts.{k}")), w)))
                .transpose()?;
            let tls_span = site.tls.as_ref().map(|t| t.span());
            let tls = match site.tls {
                None => None,
                Some(t) => {
                    let span = t.span();
                    let t = t.into_inner();
                    let tls = match (t.cert, t.key, t.self_signed) {
                        (None, None, true) => TlsConfig::SelfSigned,
                        (Some(c), Some(k), false) => TlsConfig::Files {
                            cert: base.join(c.get_ref()),
                            key: base.join(k.get_ref()),
                        },
                        _ => {
                            return Err(at(
                                span,
                                &key("tls"),
                                "needs `cert` and `key` (PEM files), or `self_signed = true`",
                            ))
                        }
                    };
                    Some(tls)
                }
            };
            let https = prefixes.iter().filter(|p| p.scheme == "https").count();
            if let (Some(s), 0) = (tls_span.clone(), https) {
                return Err(at(s, &key("tls"), "a certificate needs https:// prefixes"));
            }
            if let Some(t) = &tls {
                for u in prefixes.iter().filter(|p| p.scheme == "https") {
                    let host = match &u.host {
                        httpq_server::url_group::HostSpec::Explicit(h) => h.to_ascii_lowercase(),
                        httpq_server::url_group::HostSpec::IpBound(ip) => ip.to_string(),
                        _ => "*".to_string(),
                    };
                    let clash = bound
                        .iter()
                        .find(|(h, port, _, src)| *h == host && *port == u.port && src != t);
                    if let Some((_, _, other, _)) = clash {
                        return Err(at(
                            tls_span.unwrap_or(span.clone()),
                            &key("tls"),
                            &format!(
                                "{u} needs the certificate binding of {host}:{}, which site[{other}] binds to another certificate",
                                u.port
                            ),
                        ));
                    }
                    bound.push((host, u.port, n, t.clone()));
                }
            }
            if tls.is_none() && https > 0 {
                return Err(at(
                    span,
                    &key("tls"),
                    "https:// prefixes need a certificate: tls = { cert = \"C.pem\", key = \"K.pem\" } or { self_signed = true }",
                ));
            }
            sites.push(SiteConfig {
                prefixes,
                content,
                timeouts,
                tls,
            });
        }
        Ok(SitesConfig { sites })
    }
}

type At<'a> = dyn Fn(Range<usize>, &str, &str) -> ConfigError + 'a;

fn timeouts(t: RawTimeouts, at: &At<'_>) -> Result<Timeouts, ConfigError> {
    let dur = |v: Option<Spanned<String>>, k: &str| -> Result<Duration, ConfigError> {
        let Some(v) = v else {
            return Ok(Duration::ZERO);
        };
        let d = humantime::parse_duration(v.get_ref()).map_err(|e| {
            at(
                v.span(),
                k,
                &format!(
                    "{:?} is not a duration ({e}); write e.g. \"2s\" or \"500ms\"",
                    v.get_ref()
                ),
            )
        })?;
        if d.is_zero() || d > MAX_TIMEOUT {
            return Err(at(v.span(), k, "must be more than 0 and at most a year"));
        }
        Ok(d)
    };
    let min_send_rate = match t.min_send_rate {
        None => 0,
        Some(v) => u32::try_from(*v.get_ref())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                at(
                    v.span(),
                    "min_send_rate",
                    "bytes per second, 1 to 4294967295",
                )
            })?,
    };
    Ok(Timeouts {
        entity_body: dur(t.entity_body, "entity_body")?,
        drain_entity_body: dur(t.drain_entity_body, "drain_entity_body")?,
        request_queue: dur(t.request_queue, "request_queue")?,
        idle_connection: dur(t.idle_connection, "idle_connection")?,
        header_wait: dur(t.header_wait, "header_wait")?,
        min_send_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SitesConfig, ConfigError> {
        SitesConfig::parse(text, "sites.toml", &std::env::temp_dir())
    }

    #[test]
    fn the_issue_example_parses_with_each_sites_own_timeouts() {
        let c = parse(
            r#"
[[site]]
prefixes = ["http://127.0.0.1:8080/a/"]
root = "."

[[site]]
prefixes = ["http://127.0.0.1:8080/b/", "http://127.0.0.1:8080/a/api/"]
echo = true

[site.timeouts]
entity_body = "2s"
header_wait = "500ms"
min_send_rate = 300

[[site]]
prefixes = ["http://127.0.0.1:8080/c/"]
echo = true
"#,
        )
        .unwrap();
        assert_eq!(c.sites.len(), 3);
        assert!(matches!(c.sites[0].content, Content::Root(_)));
        assert_eq!(c.sites[1].content, Content::Echo);
        assert_eq!(c.sites[1].prefixes.len(), 2);
        let t = c.sites[1].timeouts.unwrap();
        assert_eq!(t.entity_body, Duration::from_secs(2));
        assert_eq!(t.header_wait, Duration::from_millis(500));
        assert_eq!(t.idle_connection, Duration::ZERO, "unset: the server's");
        assert_eq!(t.min_send_rate, 300);
        assert!(c.sites[0].timeouts.is_none() && c.sites[2].timeouts.is_none());
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\necho = true\n[site.timeouts]\nentity_body = \"2x\"\n",
                "sites.toml:5: site[1].timeouts.entity_body: \"2x\" is not a duration",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a\"]\necho = true\n",
                "sites.toml:2: site[1].prefixes: ",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\necho = true\n\n[[site]]\nprefixes = [\"http://127.0.0.1:8080/b/\"]\nroot = \"/no/such/dir\"\n",
                "sites.toml:7: site[2].root: /no/such/dir",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\nrot = \"x\"\n",
                "sites.toml:3: unknown field `rot`",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\n",
                "sites.toml:1: site[1]: needs `root",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\necho = true\n[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\necho = true\n",
                "sites.toml:5: site[2].prefixes: http://127.0.0.1:8080/a/ is already a prefix of site[1]",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\necho = true\n[site.timeouts]\nmin_send_rate = -1\n",
                "sites.toml:5: site[1].timeouts.min_send_rate: bytes per second",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\necho = true\ntls = { self_signed = true }\n",
                "sites.toml:4: site[1].tls: a certificate needs https:// prefixes",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/_httpq/x/\"]\necho = true\n",
                "sites.toml:2: site[1].prefixes: /_httpq/ and what is under it belong to the server",
            ),
            (
                "[[site]]\nprefixes = [\"https://+:8443/a/\"]\necho = true\ntls = { self_signed = true }\n[[site]]\nprefixes = [\"https://+:8443/b/\"]\necho = true\ntls = { cert = \"c.pem\", key = \"k.pem\" }\n",
                "sites.toml:8: site[2].tls: https://+:8443/b/ needs the certificate binding of *:8443, which site[1] binds",
            ),
            (
                "[[site]]\nprefixes = [\"https://+:8443/a/\"]\necho = true\n",
                "sites.toml:1: site[1].tls: https:// prefixes need a certificate",
            ),
            (
                "[[site]]\nprefixes = [\"http://127.0.0.1:8080/a/\"]\necho = true\n[site.timeouts]\nentity_body = 2\n",
                "sites.toml:5: invalid type: integer `2`, expected a string (in `entity_body = 2`)",
            ),
            ("", "sites.toml: no [[site]]"),
            ("[[site]\n", "sites.toml:1: "),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().0;
            assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
        }
    }
}
