//! A minimal CalDAV client playing the person whose calendar calplanebot writes into: tests use it
//! to look at what calplanebot left on the server and to make the edits a calendar app would
//! (move an event, delete it, create a calendar) — independently of calplanebot's own client.
//!
//! Deliberately small: unconditional writes, no discovery, a string-scanning multistatus parser
//! that knows what Radicale and Xandikos answer. hrefs are absolute paths such as
//! `/alice/plane-x/plane-issue-y.ics`, appended verbatim to the base URL (so they must already
//! be valid URI paths); hrefs returned by the server are percent-decoded (`%40` → `@`).
//!
//! [`CalendarUser::for_server`] sets it up for a [`CalDavServer`] the way a calendar app of that
//! account would be: Xandikos's self-signed certificate as the only trusted root, and for a
//! Radicale behind an authenticating front the `X-Remote-User` header that front would add.

use std::io;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use ureq::http;

use crate::caldav_server::{CalDavServer, trusting_only};
use crate::radicale::{REMOTE_USER_HEADER, RadicaleAuth};

/// A calendar app's view of one account on a CalDAV server.
pub struct CalendarUser {
    base_url: String,
    authorization: String,
    /// Sent with every request (`X-Remote-User` for a Radicale that trusts it).
    extra_headers: Vec<(String, String)>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for CalendarUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalendarUser")
            .field("base_url", &self.base_url)
            .field("authorization", &"(redacted)")
            .finish_non_exhaustive()
    }
}

/// The value of an `Authorization: Basic` header.
pub fn basic_auth(username: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {token}")
}

impl CalendarUser {
    /// `base_url` is `http://host:port` (a trailing slash is ignored); `https://` URLs are
    /// checked against ureq's built-in public roots.
    pub fn new(base_url: &str, username: &str, password: &str) -> Self {
        CalendarUser::build(base_url, username, password, None)
    }

    /// Like [`CalendarUser::new`] for an `https://` server whose certificate (or CA) is the PEM
    /// file `cert_pem`: the only root trusted.
    pub fn with_root_certificate(
        base_url: &str,
        username: &str,
        password: &str,
        cert_pem: &Path,
    ) -> io::Result<Self> {
        let pem = std::fs::read(cert_pem)?;
        let certificate = ureq::tls::Certificate::from_pem(&pem).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("certificate {}: {e}", cert_pem.display()),
            )
        })?;
        Ok(CalendarUser::build(
            base_url,
            username,
            password,
            Some(trusting_only(&certificate)),
        ))
    }

    /// Alice on `server`, talking to it directly: its URL and credentials, its certificate as
    /// the only trusted root (Xandikos), and `X-Remote-User: alice` on every request for a
    /// Radicale started with [`RadicaleAuth::RemoteUserHeader`].
    pub fn for_server(server: &CalDavServer) -> Self {
        let (username, password) = (server.username(), server.password());
        match server {
            CalDavServer::Radicale(radicale) => {
                let mut user = CalendarUser::new(&server.url(), username, password);
                if radicale.options().auth == RadicaleAuth::RemoteUserHeader {
                    user.extra_headers
                        .push((REMOTE_USER_HEADER.to_string(), username.to_string()));
                }
                user
            }
            CalDavServer::Xandikos(xandikos) => CalendarUser::build(
                &server.url(),
                username,
                password,
                Some(trusting_only(xandikos.certificate())),
            ),
        }
    }

    /// The same user, credentials and trust, talking to `base_url` instead — e.g. a
    /// [`CountingProxy`](crate::proxy::CountingProxy) in front of the server.
    pub fn through(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_string();
        self
    }

    /// The URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn build(
        base_url: &str,
        username: &str,
        password: &str,
        tls: Option<ureq::tls::TlsConfig>,
    ) -> Self {
        let mut config = ureq::Agent::config_builder()
            // 207, 404, 409, 412 are answers to look at, not errors.
            .http_status_as_error(false)
            // PROPFIND and MKCALENDAR are refused by ureq without this.
            .allow_non_standard_methods(true)
            // ureq would re-send a PROPFIND as a GET without credentials on a redirect.
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)));
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        CalendarUser {
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: basic_auth(username, password),
            extra_headers: Vec::new(),
            agent: config.build().into(),
        }
    }

    /// The object at `href` with its ETag, or `None` on 404.
    pub fn get(&self, href: &str) -> io::Result<Option<(String, String)>> {
        let (status, headers, body) = self.send("GET", href, &[], None)?;
        match status {
            404 => Ok(None),
            200..=299 => {
                let etag = header(&headers, "etag").ok_or_else(|| {
                    io::Error::other(format!("GET {href}: {status} without an ETag"))
                })?;
                Ok(Some((etag, body)))
            }
            _ => Err(unexpected("GET", href, status, &body)),
        }
    }

    /// PUT without preconditions; returns the status (201 created, 204 updated on Radicale 3.9).
    pub fn put(&self, href: &str, ics: &str) -> io::Result<u16> {
        let content_type = [("Content-Type", "text/calendar; charset=utf-8")];
        let (status, _, _) = self.send("PUT", href, &content_type, Some(ics))?;
        Ok(status)
    }

    /// DELETE without preconditions; returns the status (Radicale: 200 with a multistatus body).
    pub fn delete(&self, href: &str) -> io::Result<u16> {
        let (status, _, _) = self.send("DELETE", href, &[], None)?;
        Ok(status)
    }

    /// MKCALENDAR (RFC 4791 §5.3.1) with a displayname; returns the status (201, or 409 when
    /// the collection exists).
    pub fn mkcalendar(&self, href: &str, displayname: &str) -> io::Result<u16> {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop><D:displayname>{}</D:displayname></D:prop></D:set>
</C:mkcalendar>"#,
            xml_escape(displayname)
        );
        let (status, _, _) = self.send("MKCALENDAR", href, &XML, Some(&body))?;
        Ok(status)
    }

    /// The calendar collections directly below `home_href` with their displaynames.
    pub fn list_calendars(&self, home_href: &str) -> io::Result<Vec<(String, Option<String>)>> {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:displayname/></D:prop></D:propfind>"#;
        let responses = self.propfind_depth_1(home_href, body)?;
        Ok(responses
            .into_iter()
            .filter(|r| r.is_calendar)
            .map(|r| (r.href, r.displayname))
            .collect())
    }

    /// The non-collection members of `collection_href` with their ETags.
    pub fn list_objects(&self, collection_href: &str) -> io::Result<Vec<(String, String)>> {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getetag/></D:prop></D:propfind>"#;
        let responses = self.propfind_depth_1(collection_href, body)?;
        let own = collection_href.trim_end_matches('/');
        responses
            .into_iter()
            .filter(|r| !r.is_collection && r.href.trim_end_matches('/') != own)
            .map(|r| match r.etag {
                Some(etag) => Ok((r.href, etag)),
                None => Err(io::Error::other(format!(
                    "PROPFIND {collection_href}: member {} has no getetag",
                    r.href
                ))),
            })
            .collect()
    }

    fn propfind_depth_1(&self, href: &str, body: &str) -> io::Result<Vec<DavResponse>> {
        let headers = [XML[0], ("Depth", "1")];
        let (status, _, text) = self.send("PROPFIND", href, &headers, Some(body))?;
        if status != 207 {
            return Err(unexpected("PROPFIND", href, status, &text));
        }
        Ok(parse_multistatus(&text))
    }

    /// Sends one request and reads the whole answer (so the connection could be reused).
    fn send(
        &self,
        method: &str,
        href: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> io::Result<(u16, http::HeaderMap, String)> {
        let url = format!("{}{href}", self.base_url);
        let fail = |e: &dyn std::fmt::Display| io::Error::other(format!("{method} {url}: {e}"));
        let mut builder = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", &self.authorization);
        for (name, value) in &self.extra_headers {
            builder = builder.header(name, value);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        // A bodiless request gets no Content-Length (not even 0), as a calendar app sends it.
        let sent = match body {
            Some(body) => builder.body(body).map(|r| self.agent.run(r)),
            None => builder.body(()).map(|r| self.agent.run(r)),
        };
        let mut response = sent.map_err(|e| fail(&e))?.map_err(|e| fail(&e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| fail(&e))?;
        Ok((status, response.headers().clone(), text))
    }
}

const XML: [(&str, &str); 1] = [("Content-Type", "application/xml; charset=utf-8")];

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_string)
}

fn unexpected(method: &str, href: &str, status: u16, body: &str) -> io::Error {
    let excerpt: String = body.chars().take(500).collect();
    io::Error::other(format!(
        "{method} {href}: unexpected status {status}: {excerpt}"
    ))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One `<response>` of a multistatus, with the properties of its 200 propstats.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct DavResponse {
    /// Percent-decoded path.
    href: String,
    displayname: Option<String>,
    etag: Option<String>,
    is_collection: bool,
    is_calendar: bool,
}

/// Properties seen in one `<propstat>`, kept only if its status is 2xx.
#[derive(Default)]
struct Propstat {
    status: String,
    displayname: Option<String>,
    etag: Option<String>,
    is_collection: bool,
    is_calendar: bool,
}

/// Scans a multistatus (RFC 4918 §13) by element local names, ignoring namespaces: enough for
/// the `DAV:` and CalDAV elements it looks at, not a general XML parser.
fn parse_multistatus(xml: &str) -> Vec<DavResponse> {
    let mut responses = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut response: Option<DavResponse> = None;
    let mut propstat: Option<Propstat> = None;
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").unwrap_or(after.len());
            text.push_str(&after[..end]);
            rest = after.get(end + 3..).unwrap_or("");
            continue;
        }
        let (skip_to, is_markup) = if rest.starts_with("<!--") {
            (rest.find("-->").map(|i| i + 3), true)
        } else if rest.starts_with("<?") || rest.starts_with("<!") {
            (rest.find('>').map(|i| i + 1), true)
        } else {
            (rest.find('>').map(|i| i + 1), false)
        };
        let Some(close) = skip_to else { break };
        let tag = &rest[1..close - 1];
        rest = &rest[close..];
        if is_markup {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = local_name(name);
            let content = decode_entities(text.trim());
            text.clear();
            let parent = stack.len().checked_sub(2).map(|i| stack[i].as_str());
            match (name, parent) {
                ("href", Some("response")) => {
                    if let Some(r) = response.as_mut() {
                        r.href = percent_decode(strip_origin(&content));
                    }
                }
                ("status", Some("propstat")) => {
                    if let Some(p) = propstat.as_mut() {
                        p.status = content;
                    }
                }
                ("displayname", Some("prop")) => {
                    if let Some(p) = propstat.as_mut() {
                        p.displayname = Some(content);
                    }
                }
                ("getetag", Some("prop")) => {
                    if let Some(p) = propstat.as_mut() {
                        p.etag = Some(content);
                    }
                }
                ("propstat", _) => {
                    if let (Some(p), Some(r)) = (propstat.take(), response.as_mut()) {
                        // "HTTP/1.1 200 OK": only found properties count.
                        let ok = p
                            .status
                            .split_whitespace()
                            .nth(1)
                            .is_some_and(|c| c.starts_with('2'));
                        if ok {
                            r.displayname = r.displayname.take().or(p.displayname);
                            r.etag = r.etag.take().or(p.etag);
                            r.is_collection |= p.is_collection;
                            r.is_calendar |= p.is_calendar;
                        }
                    }
                }
                ("response", _) => responses.extend(response.take()),
                _ => {}
            }
            stack.pop();
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = local_name(
            tag.trim_end_matches('/')
                .split_whitespace()
                .next()
                .unwrap_or(""),
        );
        text.clear();
        match name {
            "response" => response = Some(DavResponse::default()),
            "propstat" => propstat = Some(Propstat::default()),
            "collection" | "calendar" if stack.last().is_some_and(|p| p == "resourcetype") => {
                if let Some(p) = propstat.as_mut() {
                    if name == "collection" {
                        p.is_collection = true;
                    } else {
                        p.is_calendar = true;
                    }
                }
            }
            _ => {}
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    responses
}

fn local_name(qualified: &str) -> &str {
    qualified.rsplit(':').next().unwrap_or(qualified)
}

/// `http://host:port/a/b` → `/a/b`; a path stays as it is.
fn strip_origin(href: &str) -> &str {
    match href.split_once("://") {
        Some((_, after_scheme)) => after_scheme.find('/').map_or("/", |i| &after_scheme[i..]),
        None => href,
    }
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes `%XX` escapes (the bytes are read as UTF-8); malformed escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Radicale 3.9.0: `PROPFIND /alice/` Depth 1, resourcetype + displayname.
    const RADICALE_HOME: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><response><href>/alice/</href><propstat><prop><resourcetype><principal /><collection /></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat><propstat><prop><displayname /></prop><status>HTTP/1.1 404 Not Found</status></propstat></response><response><href>/alice/cal1/</href><propstat><prop><resourcetype><C:calendar /><collection /></resourcetype><displayname>My Cal</displayname></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;

    /// Captured from Radicale 3.9.0: `PROPFIND /alice/cal1/` Depth 1, getetag.
    const RADICALE_OBJECTS: &str = r#"<?xml version='1.0' encoding='utf-8'?>
<multistatus xmlns="DAV:"><response><href>/alice/cal1/</href><propstat><prop><getetag>"2d57"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><href>/alice/cal1/a%40b.ics</href><propstat><prop><getetag>"247e"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;

    #[test]
    fn parses_calendars_and_ignores_404_propstats() {
        let responses = parse_multistatus(RADICALE_HOME);
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].href, "/alice/");
        assert!(responses[0].is_collection && !responses[0].is_calendar);
        assert_eq!(responses[0].displayname, None);
        assert_eq!(responses[1].href, "/alice/cal1/");
        assert!(responses[1].is_calendar);
        assert_eq!(responses[1].displayname.as_deref(), Some("My Cal"));
    }

    #[test]
    fn parses_etags_and_decodes_hrefs() {
        let responses = parse_multistatus(RADICALE_OBJECTS);
        assert_eq!(responses[1].href, "/alice/cal1/a@b.ics");
        assert_eq!(responses[1].etag.as_deref(), Some("\"247e\""));
    }

    #[test]
    fn handles_prefixed_dav_elements_absolute_hrefs_and_entities() {
        let xml = r#"<?xml version="1.0"?>
<D:multistatus xmlns:D="DAV:"><D:response>
  <D:href>http://127.0.0.1:1/alice/x%20y/</D:href>
  <D:propstat><D:prop><D:resourcetype><D:collection/><cal:calendar xmlns:cal="urn:ietf:params:xml:ns:caldav"/></D:resourcetype>
  <D:displayname>Tom &amp; Jerry &#x263A;</D:displayname></D:prop>
  <D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response></D:multistatus>"#;
        let responses = parse_multistatus(xml);
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].href, "/alice/x y/");
        assert!(responses[0].is_calendar);
        assert_eq!(
            responses[0].displayname.as_deref(),
            Some("Tom & Jerry \u{263A}")
        );
    }

    #[test]
    fn basic_auth_is_rfc_7617() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
