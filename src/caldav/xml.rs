//! WebDAV/CalDAV XML: the request bodies calplanebot sends and the pure parser of the
//! `DAV:multistatus` answers it reads back (RFC 4918 §13, RFC 4791).
//!
//! Every network call of the CalDAV client is split into *send* and *parse(bytes)*; this
//! module is the parse half and the bodies of the send half. Nothing here does I/O, so each
//! parser is tested with answers captured from real servers (`tests/fixtures/caldav/`, see
//! the README there for how they were captured).
//!
//! What the parser keeps is deliberately small: the handful of properties the sync needs,
//! taken only from `<propstat>` blocks whose status is 2xx (RFC 4918 §9.1, §14.22). Unknown
//! elements and namespaces are ignored, so servers that add their own properties (Apple,
//! sabre/dav, Google) parse the same way. Hrefs are kept exactly as the server sent them;
//! compare them through [`href_path`], because servers spell the same path differently.
//!
//! The XML itself is parsed by `minidom`, which is strict in ways that suit a client of
//! untrusted servers: it never expands entities and rejects any DOCTYPE (no billion-laughs
//! expansion), and it only reads UTF-8. Its other limits (no comments, no processing
//! instructions, no leading BOM or whitespace) are handled or turned into clear errors here.

use minidom::Element;
use minidom::rxml;

/// The WebDAV namespace (RFC 4918 §21).
const DAV: &str = "DAV:";
/// The CalDAV namespace (RFC 4791 §4).
const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
/// Apple's CalendarServer namespace, home of `getctag` (never standardised, but every
/// server calplanebot meets reports it).
const CALENDARSERVER: &str = "http://calendarserver.org/ns/";

// ---------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------

/// PROPFIND body, sent with `Depth: 0` to the URL the operator gave (discovery): one request
/// says whether it is a calendar (single-calendar mode), a principal (it names its
/// calendar-home-set), or anything else on the server (it names the current user's principal,
/// RFC 5397). The displayname and components describe a calendar found this way.
pub const PROPFIND_DISCOVERY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:current-user-principal/><c:calendar-home-set/><d:resourcetype/><d:displayname/><c:supported-calendar-component-set/></d:prop></d:propfind>
"#;

/// PROPFIND body, sent with `Depth: 0` to the principal: asks where the user's calendars
/// live (RFC 4791 §6.2.1).
pub const PROPFIND_CALENDAR_HOME_SET: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><c:calendar-home-set/></d:prop></d:propfind>
"#;

/// PROPFIND body, sent with `Depth: 1` to the calendar home (and `Depth: 0` to one
/// calendar): lists the calendars with their displayname, resourcetype (RFC 4918 §15.9; a
/// calendar carries `C:calendar`, RFC 4791 §4.2), supported components (RFC 4791 §5.2.3) and
/// the two validators that change whenever a member does: CalendarServer's `getctag` and the
/// `DAV:sync-token` property (RFC 6578 §4). A server without either answers it in a 404
/// propstat, which costs nothing.
pub const PROPFIND_CALENDARS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"><d:prop><d:displayname/><d:resourcetype/><c:supported-calendar-component-set/><cs:getctag/><d:sync-token/></d:prop></d:propfind>
"#;

/// PROPFIND body, sent with `Depth: 1` to one calendar: the href of every object in it and
/// whether it is a collection, without downloading any data (RFC 4918 §9.1, §15.9).
pub const PROPFIND_MEMBERS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>
"#;

/// REPORT body of a `calendar-multiget` (RFC 4791 §7.9) asking for the etag and the
/// iCalendar data of the given hrefs. The hrefs are written as given (already
/// percent-encoded paths), XML-escaped.
///
/// Servers answer a missing href with a `<response>` whose status is 404 (RFC 4791 §7.9),
/// and some cap or silently truncate big answers: batch the hrefs and check that each one
/// came back.
pub fn calendar_multiget_body<'a>(hrefs: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?>
<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop>"#,
    );
    for href in hrefs {
        body.push_str("<d:href>");
        body.push_str(&escape_text(href));
        body.push_str("</d:href>");
    }
    body.push_str("</c:calendar-multiget>\n");
    body
}

/// REPORT body of a `sync-collection` (RFC 6578 §3.2) asking what changed in a calendar since
/// `token`: the members added, changed (with their new etag) or removed, and a new token. An
/// empty token asks for an initial sync, which lists every member. `sync-level` 1 is the
/// calendar's own members, which is all a calendar has (RFC 6578 §3.3). The token is sent back
/// verbatim, XML-escaped.
pub fn sync_collection_body(token: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:"><d:sync-token>{}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>
"#,
        escape_text(token)
    )
}

/// REPORT calendar-query for the objects with a VEVENT whose UID contains `text` (RFC 4791
/// §7.8; `text-match` is a substring match, §9.7.5, and `i;octet` makes it case-sensitive):
/// their getetag, and their calendar-data when `with_data`. Callers that want one exact UID
/// check it themselves, as servers differ in how they match.
pub fn calendar_query_uid_body(text: &str, with_data: bool) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">"#,
            "<D:prop><D:getetag/>{}</D:prop>",
            r#"<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">"#,
            r#"<C:prop-filter name="UID"><C:text-match collation="i;octet">{}</C:text-match></C:prop-filter>"#,
            "</C:comp-filter></C:comp-filter></C:filter>",
            "</C:calendar-query>"
        ),
        if with_data { "<C:calendar-data/>" } else { "" },
        escape_text(text)
    )
}

/// MKCALENDAR body (RFC 4791 §5.3.1): sets the displayname and restricts the new calendar
/// to VEVENT (RFC 4791 §5.2.3), since calplanebot only ever stores events there.
pub fn mkcalendar_body(displayname: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:displayname>{}</d:displayname><c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>
"#,
        escape_text(displayname)
    )
}

/// PROPPATCH body (RFC 4918 §9.2) that sets `DAV:displayname` (RFC 4918 §15.2), used when a
/// Plane project was renamed.
pub fn proppatch_displayname_body(displayname: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:displayname>{}</d:displayname></d:prop></d:set></d:propertyupdate>
"#,
        escape_text(displayname)
    )
}

/// Escapes text content for an XML element. Characters XML 1.0 cannot carry at all (C0
/// controls other than tab, LF and CR; U+FFFE, U+FFFF — XML 1.0 §2.2) become U+FFFD, so a
/// strange project name yields a valid body rather than a 400 from the server.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            // `>` only matters inside `]]>`, but escaping it always is simpler and harmless.
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Multistatus parser
// ---------------------------------------------------------------------------------------

/// One `<response>` of a multistatus (RFC 4918 §14.24), reduced to what calplanebot needs.
///
/// Properties are filled only from `<propstat>` blocks with a 2xx status; a property the
/// server reported as 404 (unknown) or 403 stays at its default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DavResponse {
    /// The href as the server sent it (surrounding whitespace trimmed, nothing decoded).
    /// Compare hrefs with [`href_path`].
    pub href: String,
    /// The `<response>`-level status when present: e.g. 404 for an href of a multiget that
    /// does not exist (RFC 4791 §7.9), 200 in Radicale's answer to DELETE.
    pub status: Option<u16>,
    /// The entity tag exactly as sent, quotes (and any `W/`) included: it goes back verbatim
    /// into `If-Match`. `None` when absent or empty.
    pub etag: Option<String>,
    /// `DAV:displayname`, verbatim (may be empty, e.g. in a PROPPATCH answer).
    pub displayname: Option<String>,
    /// `DAV:resourcetype` contains `DAV:collection`.
    pub is_collection: bool,
    /// `DAV:resourcetype` contains `C:calendar` (RFC 4791 §4.2).
    pub is_calendar: bool,
    /// The `name`s of `C:supported-calendar-component-set` (RFC 4791 §5.2.3); `None` when the
    /// property was not returned (which RFC 4791 says means "any component").
    pub supported_components: Option<Vec<String>>,
    /// `C:calendar-data` (RFC 4791 §9.6): the iCalendar text, whether the server sent it as
    /// escaped text or as CDATA, with the CRLF line endings of RFC 5545 §3.1 (XML parsing
    /// turns them into LF, XML 1.0 §2.11; they are restored).
    pub calendar_data: Option<String>,
    /// The `DAV:href` inside `DAV:current-user-principal` (RFC 5397 §3).
    pub current_user_principal: Option<String>,
    /// The first `DAV:href` inside `C:calendar-home-set` (RFC 4791 §6.2.1).
    pub calendar_home_set: Option<String>,
    /// CalendarServer's `getctag` of a collection: changes whenever a member does. Verbatim
    /// (surrounding whitespace trimmed); `None` when absent or empty.
    pub ctag: Option<String>,
    /// The `DAV:sync-token` property of a collection (RFC 6578 §4): the token a
    /// `sync-collection` REPORT starts from. Verbatim (surrounding whitespace trimmed); `None`
    /// when absent or empty.
    pub sync_token: Option<String>,
    /// The status of a non-2xx propstat that names `DAV:displayname`: in a PROPPATCH answer,
    /// the server refused to set it (RFC 4918 §9.2.1: 403, 409, 424, 507).
    pub refused_displayname: Option<u16>,
}

/// Why a body could not be read as a `DAV:multistatus`.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("empty body where a DAV:multistatus XML document was expected")]
    Empty,
    #[error("DOCTYPE not allowed in a WebDAV response (entities are never expanded)")]
    Doctype,
    #[error("not UTF-8: the XML declaration names another encoding; only UTF-8 is supported")]
    NotUtf8,
    #[error("undeclared namespace prefix, or an element without a namespace")]
    UndeclaredPrefix,
    #[error("XML {0} are not supported in a WebDAV response")]
    Unsupported(&'static str),
    #[error("truncated XML: the document ends before its root element is closed")]
    Truncated,
    #[error("not XML: {detail}")]
    NotXml { detail: String },
    #[error("not a DAV:multistatus: the root element is {root}")]
    NotMultistatus { root: String },
    #[error("a DAV:response without DAV:href (RFC 4918 §14.24)")]
    MissingHref,
    #[error("unreadable DAV:status {0:?}: expected e.g. \"HTTP/1.1 200 OK\" (RFC 4918 §14.28)")]
    BadStatus(String),
}

impl XmlError {
    fn from_minidom(error: minidom::Error) -> Self {
        match error {
            minidom::Error::XmlError(rxml::Error::RestrictedXml(what)) => {
                if what.contains("encoding") {
                    XmlError::NotUtf8
                } else {
                    // "comments", "processing instructions"
                    XmlError::Unsupported(what)
                }
            }
            minidom::Error::XmlError(rxml::Error::UndeclaredNamespacePrefix(_))
            | minidom::Error::MissingNamespace => XmlError::UndeclaredPrefix,
            minidom::Error::XmlError(rxml::Error::InvalidEof(_))
            | minidom::Error::EndOfDocument => XmlError::Truncated,
            other => XmlError::NotXml {
                detail: other.to_string(),
            },
        }
    }
}

/// Parses a `DAV:multistatus` body (RFC 4918 §13, §14.16) into one [`DavResponse`] per href.
///
/// Works for the answers to PROPFIND, PROPPATCH, REPORT (`calendar-multiget`; for
/// `sync-collection` see [`parse_multistatus_with_token`]) and Radicale's DELETE. The order of the responses is the server's: never rely on it (Radicale
/// lists missing multiget hrefs first, Xandikos last).
///
/// minidom slows down quadratically on one huge text node (4 MiB of `calendar-data`: ~1.4 s;
/// 32 MiB: ~90 s). That is acceptable here only because calplanebot multigets its own small
/// events and never foreign ones; do not feed this arbitrary large REPORT answers.
pub fn parse_multistatus(body: &str) -> Result<Vec<DavResponse>, XmlError> {
    parse_multistatus_with_token(body).map(|multistatus| multistatus.responses)
}

/// A whole `DAV:multistatus`: its responses, and the `DAV:sync-token` that a `sync-collection`
/// answer carries as a child of the multistatus itself, not of any response (RFC 6578 §6.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multistatus {
    pub responses: Vec<DavResponse>,
    /// The new token, verbatim (surrounding whitespace trimmed); `None` when absent or empty.
    pub sync_token: Option<String>,
}

/// [`parse_multistatus`], keeping the multistatus-level `DAV:sync-token` too: the parser of
/// the answer to a `sync-collection` REPORT (RFC 6578 §3.2).
pub fn parse_multistatus_with_token(body: &str) -> Result<Multistatus, XmlError> {
    let document = trim_document_start(body);
    if document.is_empty() {
        return Err(XmlError::Empty);
    }
    // minidom rejects a DOCTYPE too, but with an unhelpful "malformed cdata or comment
    // section start"; name the real reason.
    if prolog_has_doctype(document) {
        return Err(XmlError::Doctype);
    }
    let root: Element = document.parse().map_err(XmlError::from_minidom)?;
    if !root.is("multistatus", DAV) {
        return Err(XmlError::NotMultistatus {
            root: format!("{{{}}}{}", root.ns(), root.name()),
        });
    }
    let mut responses = Vec::new();
    // `responsedescription` is not needed.
    for response in root.children().filter(|e| e.is("response", DAV)) {
        parse_response(response, &mut responses)?;
    }
    let sync_token = root.get_child("sync-token", DAV).and_then(non_empty_text);
    Ok(Multistatus {
        responses,
        sync_token,
    })
}

/// Reads one `<response>` (RFC 4918 §14.24):
/// `(href, ((href*, status) | (propstat+)), error?, responsedescription?, location?)`.
/// The status form may name several hrefs; each becomes its own [`DavResponse`].
fn parse_response(response: &Element, out: &mut Vec<DavResponse>) -> Result<(), XmlError> {
    let hrefs: Vec<String> = response
        .children()
        .filter(|e| e.is("href", DAV))
        .map(|e| trim_xml_space(&e.text()).to_owned())
        .collect();
    if hrefs.is_empty() {
        return Err(XmlError::MissingHref);
    }
    let mut parsed = DavResponse {
        status: response
            .get_child("status", DAV)
            .map(|e| parse_status(&e.text()))
            .transpose()?,
        ..DavResponse::default()
    };
    for propstat in response.children().filter(|e| e.is("propstat", DAV)) {
        let status = propstat
            .get_child("status", DAV)
            .map(|e| parse_status(&e.text()))
            .transpose()?;
        // RFC 4918 §9.1: a 404 propstat lists properties the resource does not have, a 403
        // one properties we may not read. Only 2xx carries values. A propstat without any
        // status breaks §14.22; nothing in it can be trusted, so it is skipped too.
        if !matches!(status, Some(200..=299)) {
            let names_displayname = propstat
                .children()
                .filter(|e| e.is("prop", DAV))
                .any(|prop| prop.has_child("displayname", DAV));
            if names_displayname {
                parsed.refused_displayname = Some(status.unwrap_or(500));
            }
            continue;
        }
        for prop in propstat.children().filter(|e| e.is("prop", DAV)) {
            for property in prop.children() {
                read_property(property, &mut parsed);
            }
        }
    }
    for href in hrefs {
        out.push(DavResponse {
            href,
            ..parsed.clone()
        });
    }
    Ok(())
}

/// Stores one property of a 2xx propstat; unknown properties are ignored.
fn read_property(property: &Element, into: &mut DavResponse) {
    let namespace = property.ns();
    match (namespace.as_str(), property.name()) {
        (DAV, "getetag") => into.etag = non_empty_text(property),
        (DAV, "displayname") => into.displayname = Some(property.text()),
        (CALENDARSERVER, "getctag") => into.ctag = non_empty_text(property),
        (DAV, "sync-token") => into.sync_token = non_empty_text(property),
        (DAV, "resourcetype") => {
            into.is_collection = property.has_child("collection", DAV);
            into.is_calendar = property.has_child("calendar", CALDAV);
        }
        (DAV, "current-user-principal") => {
            // RFC 5397 §3: either an href or `<unauthenticated/>`.
            into.current_user_principal = first_href(property);
        }
        (CALDAV, "calendar-home-set") => into.calendar_home_set = first_href(property),
        (CALDAV, "supported-calendar-component-set") => {
            into.supported_components = Some(
                property
                    .children()
                    .filter(|e| e.is("comp", CALDAV))
                    .filter_map(|e| e.attr("name"))
                    .map(str::to_owned)
                    .collect(),
            );
        }
        (CALDAV, "calendar-data") => {
            // `text()` joins the text and CDATA pieces with entities already resolved, so
            // both spellings yield the same iCalendar text.
            into.calendar_data = Some(restore_crlf(&property.text()));
        }
        _ => {}
    }
}

/// The element's text without surrounding XML whitespace; `None` when nothing is left.
fn non_empty_text(element: &Element) -> Option<String> {
    let text = trim_xml_space(&element.text()).to_owned();
    (!text.is_empty()).then_some(text)
}

fn first_href(property: &Element) -> Option<String> {
    property
        .get_child("href", DAV)
        .map(|e| trim_xml_space(&e.text()).to_owned())
}

/// Reads the code out of a status line such as `HTTP/1.1 404 Not Found` (RFC 4918 §14.28).
fn parse_status(line: &str) -> Result<u16, XmlError> {
    let bad = || XmlError::BadStatus(line.to_owned());
    let mut words = line.split_ascii_whitespace();
    let version = words.next().ok_or_else(bad)?;
    let code = words.next().ok_or_else(bad)?;
    if !version.starts_with("HTTP/") || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    code.parse().map_err(|_| bad())
}

/// Gives iCalendar text its CRLF line endings back.
///
/// Radicale 3.9 and Xandikos 0.4.10 both put the stored CRLFs raw into `calendar-data`, and
/// every XML parser must turn them into LF (XML 1.0 §2.11). RFC 5545 §3.1 delimits lines with
/// CRLF, and iCalendar cannot hold a bare LF anywhere (a newline in a value is written `\n`),
/// so every LF not already preceded by CR is a line end that lost its CR.
fn restore_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    out
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn trim_xml_space(text: &str) -> &str {
    text.trim_matches(is_xml_space)
}

/// Drops what minidom refuses before the document proper: a UTF-8 byte order mark and
/// whitespace (some servers and proxies emit either before `<?xml`).
fn trim_document_start(body: &str) -> &str {
    body.trim_start_matches(|c| c == '\u{feff}' || is_xml_space(c))
}

/// Whether the prolog (XML declaration, comments, processing instructions; XML 1.0 §2.8)
/// contains a document type declaration.
fn prolog_has_doctype(document: &str) -> bool {
    let mut rest = document;
    loop {
        rest = rest.trim_start_matches(is_xml_space);
        let end_of = |rest: &str, open: &str, close: &str| {
            rest.strip_prefix(open)
                .map(|after| after.find(close).map(|i| i + open.len() + close.len()))
        };
        let skip = end_of(rest, "<?", "?>").or_else(|| end_of(rest, "<!--", "-->"));
        match skip {
            Some(Some(len)) => rest = &rest[len..],
            // An unterminated declaration or comment: let minidom report it.
            Some(None) => return false,
            None => {
                return rest
                    .get(..9)
                    .is_some_and(|start| start.eq_ignore_ascii_case("<!DOCTYPE"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hrefs
// ---------------------------------------------------------------------------------------

/// The path of an href, for comparing hrefs: a `scheme://authority` prefix is stripped (an
/// absolute URL with an empty path gives `/`), then percent-escapes are decoded.
///
/// Servers spell one resource differently — Radicale answers `a%40b.ics`, Xandikos `a@b.ics`,
/// Xandikos answers PROPPATCH with an absolute URL — so compare `href_path(a) ==
/// href_path(b)`, never the raw strings. An escape that is invalid or incomplete (`%zz`, a
/// trailing `%4`), or whose bytes are not UTF-8 (`%FF`), is left as the original text; the
/// rest is still decoded.
pub fn href_path(href: &str) -> String {
    percent_decode(strip_scheme_authority(href))
}

/// `https://host:8443/a/b` → `/a/b`; a reference without `scheme://` is returned as is.
fn strip_scheme_authority(href: &str) -> &str {
    let Some((scheme, after)) = href.split_once("://") else {
        return href;
    };
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return href;
    }
    // RFC 3986 §3.2: the authority ends at the next "/", "?" or "#".
    match after.find(['/', '?', '#']) {
        Some(i) if after[i..].starts_with('/') => &after[i..],
        Some(_) | None => "/",
    }
}

fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        // A run of consecutive valid escapes is decoded as a whole: a UTF-8 character may
        // span several of them (`%C3%A9`).
        let run_start = i;
        let mut decoded = Vec::new();
        while let Some(byte) = escape_at(bytes, i) {
            decoded.push(byte);
            i += 3;
        }
        if decoded.is_empty() {
            let c = path[i..].chars().next().expect("i is on a char boundary");
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        // Bytes that do not form UTF-8 keep their original `%XX` spelling.
        let mut offset = run_start;
        for chunk in decoded.utf8_chunks() {
            out.push_str(chunk.valid());
            offset += 3 * chunk.valid().len();
            let invalid = 3 * chunk.invalid().len();
            out.push_str(&path[offset..offset + invalid]);
            offset += invalid;
        }
    }
    out
}

/// The byte of a valid `%XX` escape starting at `i`, if there is one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    match bytes.get(i..i + 3)? {
        [b'%', high, low] => {
            let hex = |b: u8| (b as char).to_digit(16);
            Some((hex(*high)? * 16 + hex(*low)?) as u8)
        }
        _ => None,
    }
}

/// Percent-encodes one path segment (RFC 3986 §2.1): RFC 3986 §2.3 unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`) stay, every other byte of the UTF-8 text becomes `%XX`.
/// Used to build hrefs from names; `/` is encoded too, so a name can never add a segment.
pub fn percent_encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($server:literal, $name:literal) => {
            include_str!(concat!(
                "../../tests/fixtures/caldav/",
                $server,
                "/",
                $name,
                ".xml"
            ))
        };
    }

    fn parse(body: &str) -> Vec<DavResponse> {
        parse_multistatus(body).unwrap_or_else(|e| panic!("parse failed: {e}"))
    }

    fn by_href<'a>(responses: &'a [DavResponse], href: &str) -> &'a DavResponse {
        responses
            .iter()
            .find(|r| r.href == href)
            .unwrap_or_else(|| panic!("no response for {href} in {responses:#?}"))
    }

    // --- Radicale 3.9.0 ------------------------------------------------------------------

    #[test]
    fn radicale_current_user_principal() {
        let responses = parse(fixture!("radicale", "01-propfind-principal"));
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].href, "/");
        assert_eq!(responses[0].status, None);
        assert_eq!(
            responses[0].current_user_principal.as_deref(),
            Some("/alice/")
        );
    }

    #[test]
    fn radicale_calendar_home_set_is_the_principal() {
        let responses = parse(fixture!("radicale", "02-propfind-home-set"));
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].href, "/alice/");
        assert_eq!(responses[0].calendar_home_set.as_deref(), Some("/alice/"));
    }

    #[test]
    fn radicale_calendar_listing() {
        let responses = parse(fixture!("radicale", "04-propfind-calendars"));
        assert_eq!(responses.len(), 3);

        // The home itself: a 404 propstat for displayname, components and etag is ignored.
        let home = by_href(&responses, "/alice/");
        assert!(home.is_collection);
        assert!(!home.is_calendar);
        assert_eq!(home.displayname, None);
        assert_eq!(home.supported_components, None);
        assert_eq!(home.etag, None);

        let tasks = by_href(&responses, "/alice/tasks/");
        assert!(tasks.is_collection && tasks.is_calendar);
        assert_eq!(tasks.displayname.as_deref(), Some("Tasks"));
        assert_eq!(tasks.supported_components, Some(vec!["VTODO".to_owned()]));

        let events = by_href(&responses, "/alice/plane-cal/");
        assert!(events.is_collection && events.is_calendar);
        assert_eq!(events.displayname.as_deref(), Some("Plane: Café & Crème"));
        assert_eq!(events.supported_components, Some(vec!["VEVENT".to_owned()]));
        assert_eq!(
            events.etag.as_deref(),
            Some("\"a60fe40cb32c7bda6d93dca1a554b728fa084300e0663f323cbdb38e814aa9d1\"")
        );
    }

    #[test]
    fn radicale_etag_listing() {
        let responses = parse(fixture!("radicale", "05-propfind-etags"));
        assert_eq!(responses.len(), 4);

        let calendar = by_href(&responses, "/alice/plane-cal/");
        assert!(calendar.is_collection && calendar.is_calendar);

        // QUIRK: Radicale spells `@` as `%40` in hrefs.
        let at = by_href(&responses, "/alice/plane-cal/a%40b.ics");
        assert!(!at.is_collection && !at.is_calendar);
        assert_eq!(
            at.etag.as_deref(),
            Some("\"92b62c72fc2f8f340da1bf44f629ba92458ff12e8751675fc78ca8ec06d5b17e\"")
        );
        assert_eq!(href_path(&at.href), "/alice/plane-cal/a@b.ics");

        let one = by_href(&responses, "/alice/plane-cal/plane-issue-1.ics");
        assert_eq!(
            one.etag.as_deref(),
            Some("\"d50f1dddf08ac04d8dce31bc6aae151660dcf39077a5df4049135a25d55ccf19\"")
        );
        assert_eq!(one.calendar_data, None);
        by_href(&responses, "/alice/plane-cal/plane-issue-2.ics");
    }

    #[test]
    fn radicale_multiget_with_a_missing_href() {
        let responses = parse(fixture!("radicale", "06-multiget"));
        assert_eq!(responses.len(), 3);

        // QUIRK: Radicale lists the missing href first, before the ones it found.
        let missing = &responses[0];
        assert_eq!(missing.href, "/alice/plane-cal/does-not-exist.ics");
        assert_eq!(missing.status, Some(404));
        assert_eq!(missing.etag, None);
        assert_eq!(missing.calendar_data, None);

        let one = by_href(&responses, "/alice/plane-cal/plane-issue-1.ics");
        assert_eq!(one.status, None);
        assert_eq!(
            one.etag.as_deref(),
            Some("\"d50f1dddf08ac04d8dce31bc6aae151660dcf39077a5df4049135a25d55ccf19\"")
        );
        let data = one.calendar_data.as_deref().expect("calendar-data");
        assert!(
            data.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"),
            "{data:?}"
        );
        assert!(
            data.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"),
            "{data:?}"
        );
        assert!(data.contains("\r\nUID:plane-issue-1@calplanebot\r\n"));
        // Escaped `&`, `<`, `>` come out as the original characters.
        assert!(data.contains("\r\nSUMMARY:[PRJ-1] First & foremost\r\n"));
        assert!(data.contains("\r\nDESCRIPTION:Fix <b> & \"quotes\" handling\\nsecond line\r\n"));
        assert!(!data.contains("&amp;") && !data.contains("&lt;"));

        // The multiget asked for `a%40b.ics`; Radicale answers with the same spelling.
        let at = by_href(&responses, "/alice/plane-cal/a%40b.ics");
        assert!(
            at.calendar_data
                .as_deref()
                .unwrap()
                .contains("\r\nUID:at-sign-event@example.org\r\n")
        );
    }

    #[test]
    fn radicale_multiget_spells_a_requested_raw_at_as_percent_40() {
        let responses = parse(fixture!("radicale", "08-multiget-raw-at"));
        assert_eq!(responses.len(), 2);
        // Asked `missing%40x.ics`: echoed as sent, 404, again first.
        assert_eq!(responses[0].href, "/alice/plane-cal/missing%40x.ics");
        assert_eq!(responses[0].status, Some(404));
        // Asked raw `a@b.ics`: answered `a%40b.ics`.
        assert_eq!(responses[1].href, "/alice/plane-cal/a%40b.ics");
        assert_eq!(responses[1].status, None);
        assert!(responses[1].calendar_data.is_some());
    }

    #[test]
    fn radicale_delete_answers_a_multistatus() {
        // QUIRK: Radicale answers DELETE with 200 and this body; others send 204 and nothing.
        let responses = parse(fixture!("radicale", "07-delete"));
        assert_eq!(
            responses,
            vec![DavResponse {
                href: "/alice/plane-cal/plane-issue-2.ics".to_owned(),
                status: Some(200),
                ..DavResponse::default()
            }]
        );
    }

    #[test]
    fn radicale_proppatch_and_renamed_calendar() {
        let patched = parse(fixture!("radicale", "08-proppatch-displayname"));
        assert_eq!(patched.len(), 1);
        assert_eq!(patched[0].href, "/alice/plane-cal/");
        assert_eq!(patched[0].status, None);
        // A PROPPATCH answer lists the property empty under the status of the change.
        assert_eq!(patched[0].displayname.as_deref(), Some(""));

        let after = parse(fixture!("radicale", "08-propfind-after-proppatch"));
        assert_eq!(after.len(), 1);
        assert_eq!(
            after[0].displayname.as_deref(),
            Some("Plane: Renamed <x> & Ünïcode")
        );
    }

    #[test]
    fn radicale_error_bodies_are_not_multistatus() {
        for body in [
            // MKCALENDAR on an existing calendar: 409.
            fixture!("radicale", "08-mkcalendar-exists"),
            // PUT of a UID that another href already holds: 409.
            fixture!("radicale", "08-put-duplicate-uid"),
        ] {
            match parse_multistatus(body) {
                Err(XmlError::NotMultistatus { root }) => assert_eq!(root, "{DAV:}error"),
                other => panic!("{other:?}"),
            }
        }
    }

    // --- Xandikos 0.4.10 -----------------------------------------------------------------

    #[test]
    fn xandikos_current_user_principal() {
        // No XML declaration, `ns0:` prefixes, status before prop inside propstat.
        let responses = parse(fixture!("xandikos", "01-propfind-principal"));
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].href, "/");
        assert_eq!(
            responses[0].current_user_principal.as_deref(),
            Some("/alice/")
        );
        assert_eq!(responses[0].calendar_home_set, None);
    }

    #[test]
    fn xandikos_calendar_home_set_is_below_the_principal() {
        let responses = parse(fixture!("xandikos", "02-propfind-home-set"));
        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].href, "/alice/");
        assert_eq!(
            responses[0].calendar_home_set.as_deref(),
            Some("/alice/calendars/")
        );
        assert_eq!(responses[0].current_user_principal, None);
    }

    #[test]
    fn xandikos_calendar_listing() {
        let responses = parse(fixture!("xandikos", "04-propfind-calendars"));
        assert_eq!(responses.len(), 4);

        // The home has a displayname and an etag but is no calendar; its 404 propstat for
        // the components is ignored.
        let home = by_href(&responses, "/alice/calendars/");
        assert!(home.is_collection && !home.is_calendar);
        assert_eq!(home.displayname.as_deref(), Some("calendars"));
        assert_eq!(home.supported_components, None);

        let tasks = by_href(&responses, "/alice/calendars/tasks/");
        assert!(tasks.is_collection && tasks.is_calendar);
        assert_eq!(tasks.displayname.as_deref(), Some("Tasks"));
        assert_eq!(tasks.supported_components, Some(vec!["VTODO".to_owned()]));

        let events = by_href(&responses, "/alice/calendars/plane-cal/");
        assert!(events.is_calendar);
        assert_eq!(events.displayname.as_deref(), Some("Plane: Café & Crème"));
        assert_eq!(events.supported_components, Some(vec!["VEVENT".to_owned()]));
        assert_eq!(
            events.etag.as_deref(),
            Some("\"835b42d8868daab6875dfac18c9fd43e8dd1f873\"")
        );

        // `--defaults` created a calendar that takes every component.
        let default = by_href(&responses, "/alice/calendars/calendar/");
        assert!(default.is_calendar);
        assert_eq!(
            default.supported_components,
            Some(
                ["VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VAVAILABILITY"]
                    .map(str::to_owned)
                    .to_vec()
            )
        );
    }

    #[test]
    fn xandikos_etag_listing() {
        let responses = parse(fixture!("xandikos", "05-propfind-etags"));
        assert_eq!(responses.len(), 4);

        let calendar = by_href(&responses, "/alice/calendars/plane-cal/");
        assert!(calendar.is_collection && calendar.is_calendar);

        // QUIRK: Xandikos writes `@` raw in hrefs.
        let at = by_href(&responses, "/alice/calendars/plane-cal/a@b.ics");
        assert!(!at.is_collection && !at.is_calendar);
        assert_eq!(
            at.etag.as_deref(),
            Some("\"260b95604266d2ac5177a90e512fd1ac73e05f0b\"")
        );

        let one = by_href(&responses, "/alice/calendars/plane-cal/plane-issue-1.ics");
        assert_eq!(
            one.etag.as_deref(),
            Some("\"baa40f10821f05e904d21e86da7290975f29fa25\"")
        );
    }

    #[test]
    fn xandikos_multiget_with_a_missing_href() {
        let responses = parse(fixture!("xandikos", "06-multiget"));
        assert_eq!(responses.len(), 3);

        // Xandikos keeps the request order and puts the missing href where it was asked.
        let missing = &responses[2];
        assert_eq!(
            missing.href,
            "/alice/calendars/plane-cal/does-not-exist.ics"
        );
        assert_eq!(missing.status, Some(404));
        assert_eq!(missing.etag, None);

        let one = &responses[0];
        assert_eq!(one.href, "/alice/calendars/plane-cal/plane-issue-1.ics");
        assert_eq!(one.status, None);
        assert_eq!(
            one.etag.as_deref(),
            Some("\"baa40f10821f05e904d21e86da7290975f29fa25\"")
        );
        let data = one.calendar_data.as_deref().expect("calendar-data");
        assert!(data.starts_with("BEGIN:VCALENDAR\r\n"), "{data:?}");
        assert!(data.ends_with("END:VCALENDAR\r\n"), "{data:?}");
        assert!(data.contains("\r\nSUMMARY:[PRJ-1] First & foremost\r\n"));
        assert!(data.contains("\r\nDESCRIPTION:Fix <b> & \"quotes\" handling\\nsecond line\r\n"));

        // Asked as `a%40b.ics`, answered with a raw `@`.
        assert_eq!(responses[1].href, "/alice/calendars/plane-cal/a@b.ics");
        assert!(responses[1].calendar_data.is_some());
    }

    #[test]
    fn xandikos_multiget_decodes_a_requested_percent_40() {
        let responses = parse(fixture!("xandikos", "08-multiget-raw-at"));
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].href, "/alice/calendars/plane-cal/a@b.ics");
        // QUIRK: Xandikos does not echo a missing href as asked (`missing%40x.ics`) but
        // decoded: only a percent-decoded comparison finds it.
        assert_eq!(
            responses[1].href,
            "/alice/calendars/plane-cal/missing@x.ics"
        );
        assert_eq!(responses[1].status, Some(404));
        assert_eq!(
            href_path(&responses[1].href),
            href_path("/alice/calendars/plane-cal/missing%40x.ics")
        );
    }

    #[test]
    fn xandikos_proppatch_answers_with_an_absolute_href() {
        let patched = parse(fixture!("xandikos", "08-proppatch-displayname"));
        assert_eq!(patched.len(), 1);
        // QUIRK: Xandikos answers PROPPATCH with an absolute URL, unlike all its other hrefs.
        assert_eq!(
            patched[0].href,
            "http://127.0.0.1:48599/alice/calendars/plane-cal/"
        );
        assert_eq!(href_path(&patched[0].href), "/alice/calendars/plane-cal/");
        assert_eq!(patched[0].displayname.as_deref(), Some(""));

        let after = parse(fixture!("xandikos", "08-propfind-after-proppatch"));
        assert_eq!(after[0].href, "/alice/calendars/plane-cal/");
        assert_eq!(
            after[0].displayname.as_deref(),
            Some("Plane: Renamed <x> & Ünïcode")
        );
    }

    #[test]
    fn xandikos_non_multistatus_bodies_are_rejected_by_name() {
        // QUIRK: Xandikos answers MKCALENDAR 201 with a `mkcalendar-response` in a misspelt
        // namespace ("carldav"); never parse MKCALENDAR bodies as a multistatus.
        match parse_multistatus(fixture!("xandikos", "03-mkcalendar-events")) {
            Err(XmlError::NotMultistatus { root }) => {
                assert_eq!(root, "{urn:ietf:params:xml:ns:carldav:}mkcalendar-response");
            }
            other => panic!("{other:?}"),
        }
        for body in [
            // MKCALENDAR on an existing calendar: 403 (Radicale: 409).
            fixture!("xandikos", "08-mkcalendar-exists"),
            // PUT of a UID that another href already holds: 412 (Radicale: 409).
            fixture!("xandikos", "08-put-duplicate-uid"),
        ] {
            match parse_multistatus(body) {
                Err(XmlError::NotMultistatus { root }) => assert_eq!(root, "{DAV:}error"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn both_servers_name_the_same_event_alike_after_href_path() {
        let radicale = parse(fixture!("radicale", "05-propfind-etags"));
        let xandikos = parse(fixture!("xandikos", "05-propfind-etags"));
        let names = |responses: &[DavResponse]| {
            let mut names: Vec<String> = responses
                .iter()
                .filter(|r| !r.is_collection)
                .map(|r| href_path(&r.href).rsplit('/').next().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(&radicale),
            ["a@b.ics", "plane-issue-1.ics", "plane-issue-2.ics"]
        );
        assert_eq!(names(&radicale), names(&xandikos));
    }

    // --- Change validators: getctag and DAV:sync-token (RFC 6578 §4) -----------------------

    #[test]
    fn radicale_calendars_report_a_quoted_ctag_and_a_uri_sync_token() {
        let responses = parse(fixture!("radicale", "11-propfind-calendars-validators"));
        assert_eq!(responses.len(), 2);
        // The home (a principal) has neither: a 404 propstat, so nothing is kept.
        let home = by_href(&responses, "/alice/");
        assert_eq!(
            (home.ctag.as_deref(), home.sync_token.as_deref()),
            (None, None)
        );
        // QUIRK: Radicale's ctag is quoted like an etag; it is kept verbatim, quotes included.
        let calendar = by_href(&responses, "/alice/plane-sync/");
        assert!(calendar.is_calendar);
        assert_eq!(
            calendar.ctag.as_deref(),
            Some("\"b6c474d3a595b62315798b1a1a45f1447710357c06c7cc8d342bd68425e81299\"")
        );
        assert_eq!(
            calendar.sync_token.as_deref(),
            Some(
                "http://radicale.org/ns/sync/1d8e9ba2a5a1751b618b6d8055cf55102b2ec3201b6c5f8432ec191af981e037"
            )
        );
        // Depth 0 on the calendar says the same.
        let own = parse(fixture!("radicale", "11-propfind-calendar-validators"));
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].ctag, calendar.ctag);
        assert_eq!(own[0].sync_token, calendar.sync_token);
        assert_eq!(own[0].displayname.as_deref(), Some("Plane: Sync"));
        // After one change, one delete and one create, both differ.
        let after = parse(fixture!(
            "radicale",
            "11-propfind-calendar-validators-after"
        ));
        assert!(after[0].ctag.is_some() && after[0].ctag != calendar.ctag);
        assert!(after[0].sync_token.is_some() && after[0].sync_token != calendar.sync_token);
    }

    #[test]
    fn xandikos_calendars_report_a_ctag_equal_to_the_sync_token() {
        let responses = parse(fixture!("xandikos", "11-propfind-calendars-validators"));
        assert_eq!(responses.len(), 3);
        // QUIRK: Xandikos gives the home (not a calendar) a ctag and a sync-token too.
        let home = by_href(&responses, "/alice/calendars/");
        assert!(!home.is_calendar);
        assert!(home.ctag.is_some() && home.sync_token.is_some());
        // QUIRK: Xandikos's ctag is the bare commit id, the same string as its sync-token.
        let calendar = by_href(&responses, "/alice/calendars/plane-sync/");
        let token = "bbbb4aae2f60a093257221414bc83828d5f245f8";
        assert_eq!(calendar.ctag.as_deref(), Some(token));
        assert_eq!(calendar.sync_token.as_deref(), Some(token));
        let own = parse(fixture!("xandikos", "11-propfind-calendar-validators"));
        assert_eq!(own[0].ctag.as_deref(), Some(token));
        assert_eq!(own[0].sync_token.as_deref(), Some(token));
        let after = parse(fixture!(
            "xandikos",
            "11-propfind-calendar-validators-after"
        ));
        let new = "d9fc54a92bde30d67f2beb0a21c520b2277dd94c";
        assert_eq!(after[0].ctag.as_deref(), Some(new));
        assert_eq!(after[0].sync_token.as_deref(), Some(new));
    }

    #[test]
    fn validators_are_trimmed_and_empty_or_refused_ones_are_none() {
        let body = |ctag: &str, token: &str, status: &str| {
            format!(
                r#"<d:multistatus xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:response><d:href>/c/</d:href><d:propstat><d:prop><cs:getctag>{ctag}</cs:getctag><d:sync-token>{token}</d:sync-token></d:prop><d:status>HTTP/1.1 {status}</d:status></d:propstat></d:response></d:multistatus>"#
            )
        };
        let r = &parse(&body("\n  42 \t", " http://x/sync/1\n", "200 OK"))[0];
        assert_eq!(r.ctag.as_deref(), Some("42"));
        assert_eq!(r.sync_token.as_deref(), Some("http://x/sync/1"));
        let r = &parse(&body(" ", "", "200 OK"))[0];
        assert_eq!((r.ctag.as_deref(), r.sync_token.as_deref()), (None, None));
        let r = &parse(&body("42", "t", "404 Not Found"))[0];
        assert_eq!((r.ctag.as_deref(), r.sync_token.as_deref()), (None, None));
        // A getctag in another namespace is not CalendarServer's.
        let other = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/c/</d:href><d:propstat><d:prop><d:getctag>42</d:getctag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        assert_eq!(parse(other)[0].ctag, None);
    }

    // --- sync-collection answers (RFC 6578 §3.2) -----------------------------------------

    fn parse_sync(body: &str) -> Multistatus {
        parse_multistatus_with_token(body).unwrap_or_else(|e| panic!("parse failed: {e}"))
    }

    #[test]
    fn sync_collection_answers_carry_the_token_at_multistatus_level() {
        // QUIRK: Radicale writes the token first, Xandikos last; neither inside a response.
        for (body, token, members) in [
            (
                fixture!("radicale", "12-sync-initial"),
                "http://radicale.org/ns/sync/1d8e9ba2a5a1751b618b6d8055cf55102b2ec3201b6c5f8432ec191af981e037",
                3,
            ),
            (
                fixture!("radicale", "12-sync-nothing"),
                "http://radicale.org/ns/sync/b1d97e3c42c26e99227f75bbc4943ab2ae400e9b1f6950a843029f43b1391a83",
                0,
            ),
            (
                fixture!("xandikos", "12-sync-initial"),
                "bbbb4aae2f60a093257221414bc83828d5f245f8",
                3,
            ),
            (
                fixture!("xandikos", "12-sync-nothing"),
                "d9fc54a92bde30d67f2beb0a21c520b2277dd94c",
                0,
            ),
        ] {
            let multistatus = parse_sync(body);
            assert_eq!(multistatus.sync_token.as_deref(), Some(token));
            assert_eq!(multistatus.responses.len(), members);
            assert!(multistatus.responses.iter().all(|r| r.sync_token.is_none()));
            // The plain parser reads the same responses.
            assert_eq!(parse(body), multistatus.responses);
        }
    }

    #[test]
    fn sync_collection_changes_list_a_removed_member_as_a_bare_404() {
        for (server, body) in [
            ("radicale", fixture!("radicale", "12-sync-changes")),
            ("xandikos", fixture!("xandikos", "12-sync-changes")),
        ] {
            let multistatus = parse_sync(body);
            assert!(multistatus.sync_token.is_some(), "{server}");
            let responses = &multistatus.responses;
            assert_eq!(responses.len(), 3, "{server}");
            let removed: Vec<&DavResponse> =
                responses.iter().filter(|r| r.status == Some(404)).collect();
            assert_eq!(removed.len(), 1, "{server}");
            assert!(removed[0].href.ends_with("/plane-sync/plane-issue-2.ics"));
            assert_eq!(removed[0].etag, None);
            for r in responses.iter().filter(|r| r.status.is_none()) {
                assert!(
                    r.href.ends_with("/plane-issue-1.ics")
                        || r.href.ends_with("/plane-issue-4.ics"),
                    "{server}: {}",
                    r.href
                );
                assert!(r.etag.as_deref().is_some_and(|e| e.starts_with('"')));
            }
        }
    }

    #[test]
    fn an_unknown_sync_token_is_an_error_body_naming_valid_sync_token() {
        // QUIRK: Radicale sends it with 403, Xandikos with 412.
        for body in [
            fixture!("radicale", "12-sync-bad-token"),
            fixture!("xandikos", "12-sync-bad-token"),
        ] {
            assert!(body.contains("valid-sync-token"), "{body}");
            match parse_multistatus_with_token(body) {
                Err(XmlError::NotMultistatus { root }) => assert_eq!(root, "{DAV:}error"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_sync_token_is_trimmed_and_an_empty_one_or_one_inside_a_response_is_none() {
        let body = |inside: &str| {
            format!(
                r#"<multistatus xmlns="DAV:"><response><href>/c/</href><status>HTTP/1.1 507 Insufficient Storage</status></response>{inside}</multistatus>"#
            )
        };
        let truncated = parse_sync(&body("<sync-token>\n  http://x/sync/2 </sync-token>"));
        assert_eq!(truncated.sync_token.as_deref(), Some("http://x/sync/2"));
        assert_eq!(truncated.responses[0].status, Some(507));
        assert_eq!(parse_sync(&body("<sync-token/>")).sync_token, None);
        assert_eq!(parse_sync(&body("")).sync_token, None);
        // In another namespace it is not DAV's.
        let foreign = body(r#"<x:sync-token xmlns:x="urn:x">t</x:sync-token>"#);
        assert_eq!(parse_sync(&foreign).sync_token, None);
    }

    #[test]
    fn garbage_where_a_sync_collection_answer_was_expected_is_a_clear_error() {
        for (body, expected) in [
            ("", "empty body"),
            (
                "<html><body>Sync is off</body></html>",
                "without a namespace",
            ),
            (
                r#"<html xmlns="http://www.w3.org/1999/xhtml"><body>Sync is off</body></html>"#,
                "not a DAV:multistatus",
            ),
            (
                r#"<multistatus xmlns="DAV:"><sync-token>t</sync-token><response>"#,
                "truncated XML",
            ),
            (
                r#"<multistatus xmlns="DAV:"><response><status>HTTP/1.1 404 Not Found</status></response><sync-token>t</sync-token></multistatus>"#,
                "without DAV:href",
            ),
            (
                r#"<!DOCTYPE x [<!ENTITY t "token">]><multistatus xmlns="DAV:"><sync-token>&t;</sync-token></multistatus>"#,
                "DOCTYPE",
            ),
            ("\u{0}\u{1}binary", "not XML"),
        ] {
            let error = parse_multistatus_with_token(body)
                .expect_err(body)
                .to_string();
            assert!(error.contains(expected), "{body:?}: {error}");
        }
    }

    // --- Shapes the two servers do not produce -------------------------------------------

    const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x@y\r\n\
                       SUMMARY:a & b <c>\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn calendar_data_as_cdata_equals_calendar_data_as_escaped_text() {
        let cdata = format!(
            r#"<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:response><D:href>/c/x.ics</D:href><D:propstat><D:prop><C:calendar-data><![CDATA[{ICS}]]></C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#
        );
        let escaped = cdata
            .replace("<![CDATA[", "")
            .replace("]]>", "")
            .replace("a & b <c>", "a &amp; b &lt;c&gt;");
        assert_ne!(cdata, escaped);
        let from_cdata = parse(&cdata);
        let from_text = parse(&escaped);
        assert_eq!(from_cdata[0].calendar_data.as_deref(), Some(ICS));
        assert_eq!(from_text[0].calendar_data.as_deref(), Some(ICS));
    }

    #[test]
    fn calendar_data_with_escaped_carriage_returns_keeps_single_crlf() {
        // A server may escape CR as `&#13;`, which survives XML line-end normalisation.
        let body = r#"<multistatus xmlns="DAV:"><response><href>/c/x.ics</href><propstat><prop><calendar-data xmlns="urn:ietf:params:xml:ns:caldav">BEGIN:VCALENDAR&#13;
END:VCALENDAR&#13;
</calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        assert_eq!(
            parse(body)[0].calendar_data.as_deref(),
            Some("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        );
    }

    #[test]
    fn any_prefixes_default_namespaces_and_foreign_elements() {
        // Default namespace switching, an unusual prefix for DAV:, properties and elements
        // from other namespaces (Apple, a made-up one) in the same 2xx propstat.
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<x:multistatus xmlns:x="DAV:" xmlns:ical="http://apple.com/ns/ical/">
  <x:sync-token>http://example.com/sync/1</x:sync-token>
  <x:response>
    <x:href>
      /cal/home/work/
    </x:href>
    <x:propstat>
      <x:prop>
        <ical:calendar-color>#FF0000</ical:calendar-color>
        <x:displayname>Work</x:displayname>
        <x:resourcetype><x:collection/><calendar xmlns="urn:ietf:params:xml:ns:caldav"/><other xmlns="http://example.com/ns"/></x:resourcetype>
        <supported-calendar-component-set xmlns="urn:ietf:params:xml:ns:caldav"><comp name="VEVENT"/><comp name="VTODO"/></supported-calendar-component-set>
        <x:getetag>
          W/"weak-1"
        </x:getetag>
        <unknown xmlns="http://example.com/ns"><x:href>/not/this/</x:href></unknown>
      </x:prop>
      <x:status>HTTP/1.1 200 OK</x:status>
    </x:propstat>
    <ext xmlns="http://example.com/ns">ignored</ext>
  </x:response>
</x:multistatus>"#;
        let responses = parse(body);
        assert_eq!(
            responses,
            vec![DavResponse {
                href: "/cal/home/work/".to_owned(),
                etag: Some("W/\"weak-1\"".to_owned()),
                displayname: Some("Work".to_owned()),
                is_collection: true,
                is_calendar: true,
                supported_components: Some(vec!["VEVENT".to_owned(), "VTODO".to_owned()]),
                ..DavResponse::default()
            }]
        );
    }

    #[test]
    fn only_2xx_propstats_count() {
        let body = r#"<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/c/</d:href>
<d:propstat><d:prop><d:getetag>"forbidden"</d:getetag></d:prop><d:status>HTTP/1.1 403 Forbidden</d:status></d:propstat>
<d:propstat><d:prop><d:displayname>nope</d:displayname><c:calendar-home-set><d:href>/h/</d:href></c:calendar-home-set></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>
<d:propstat><d:prop><d:getcontenttype>text/calendar</d:getcontenttype></d:prop></d:propstat>
<d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 207 Multi-Status</d:status></d:propstat>
</d:response></d:multistatus>"#;
        let responses = parse(body);
        assert_eq!(
            responses,
            vec![DavResponse {
                href: "/c/".to_owned(),
                is_collection: true,
                // The displayname was listed under 404: the values are not kept, the status is.
                refused_displayname: Some(404),
                ..DavResponse::default()
            }]
        );
    }

    /// Issue 12, point 4: a PROPPATCH answered 207 may still have refused the change.
    #[test]
    fn a_proppatch_answer_says_whether_the_displayname_was_set() {
        let refused = r#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:"><D:response><D:href>/alice/plane-x/</D:href>
<D:propstat><D:prop><D:displayname/></D:prop><D:status>HTTP/1.1 403 Forbidden</D:status></D:propstat>
<D:responsedescription>displayname is protected</D:responsedescription>
</D:response></D:multistatus>"#;
        assert_eq!(parse(refused)[0].refused_displayname, Some(403));
        let conflict = refused.replace("403 Forbidden", "409 Conflict");
        assert_eq!(parse(&conflict)[0].refused_displayname, Some(409));
        let set = refused.replace("403 Forbidden", "200 OK");
        assert_eq!(parse(&set)[0].refused_displayname, None);
        // The captured answers of both servers to a successful rename.
        for patched in [
            parse(fixture!("radicale", "08-proppatch-displayname")),
            parse(fixture!("xandikos", "08-proppatch-displayname")),
        ] {
            assert!(patched.iter().all(|r| r.refused_displayname.is_none()));
        }
    }

    #[test]
    fn a_status_response_may_name_several_hrefs() {
        // RFC 4918 §14.24: (href, ((href*, status) | (propstat+)), ...)
        let body = r#"<multistatus xmlns="DAV:"><response><href>/c/a.ics</href><href>/c/b.ics</href><status>HTTP/1.1 404 Not Found</status></response></multistatus>"#;
        let responses = parse(body);
        assert_eq!(responses.len(), 2);
        assert_eq!(responses[0].href, "/c/a.ics");
        assert_eq!(responses[1].href, "/c/b.ics");
        assert!(responses.iter().all(|r| r.status == Some(404)));
    }

    #[test]
    fn empty_etag_and_empty_multistatus() {
        let body = r#"<multistatus xmlns="DAV:"><response><href>/c/a.ics</href><propstat><prop><getetag/></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        assert_eq!(parse(body)[0].etag, None);
        assert_eq!(parse(r#"<multistatus xmlns="DAV:"/>"#), vec![]);
    }

    #[test]
    fn unauthenticated_principal_has_no_href() {
        let body = r#"<multistatus xmlns="DAV:"><response><href>/</href><propstat><prop><current-user-principal><unauthenticated/></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        assert_eq!(parse(body)[0].current_user_principal, None);
    }

    #[test]
    fn response_without_href_or_with_a_bad_status_is_an_error() {
        let no_href = r#"<multistatus xmlns="DAV:"><response><status>HTTP/1.1 404 Not Found</status></response></multistatus>"#;
        assert!(matches!(
            parse_multistatus(no_href),
            Err(XmlError::MissingHref)
        ));
        for status in [
            "404",
            "HTTP/1.1",
            "HTTP/1.1 OK",
            "HTTP/1.1 2000 OK",
            "FTP/1 200 OK",
        ] {
            let body = format!(
                r#"<multistatus xmlns="DAV:"><response><href>/a</href><status>{status}</status></response></multistatus>"#
            );
            match parse_multistatus(&body) {
                Err(XmlError::BadStatus(line)) => assert_eq!(line, status),
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    // --- Hostile or broken input: errors, never panics ------------------------------------

    #[test]
    fn empty_or_blank_body() {
        for body in ["", "  \r\n\t", "\u{feff}", "\u{feff} \n"] {
            assert!(
                matches!(parse_multistatus(body), Err(XmlError::Empty)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn not_xml() {
        for body in ["not xml", "{\"json\": true}", "<html>", "HTTP/1.1 200 OK"] {
            let error = parse_multistatus(body).expect_err(body);
            assert!(
                matches!(
                    error,
                    XmlError::NotXml { .. } | XmlError::Truncated | XmlError::UndeclaredPrefix
                ),
                "{body:?}: {error:?}"
            );
        }
        let error = parse_multistatus("not xml").unwrap_err();
        assert!(error.to_string().starts_with("not XML: "), "{error}");
    }

    #[test]
    fn truncated_xml_at_every_point_is_an_error() {
        let full = fixture!("radicale", "04-propfind-calendars");
        let end = full.find("</multistatus>").unwrap() + "</multistatus".len();
        for cut in (0..end).filter(|&i| full.is_char_boundary(i)) {
            assert!(parse_multistatus(&full[..cut]).is_err(), "cut at {cut}");
        }
        let half = &full[..full.len() / 2];
        assert!(matches!(parse_multistatus(half), Err(XmlError::Truncated)));
        assert_eq!(parse(full).len(), 3);
    }

    #[test]
    fn doctype_with_entities_is_refused_unexpanded() {
        let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<multistatus xmlns="DAV:"><response><href>&lol4;</href><status>HTTP/1.1 200 OK</status></response></multistatus>"#;
        let error = parse_multistatus(billion_laughs).unwrap_err();
        assert!(matches!(error, XmlError::Doctype), "{error:?}");
        assert_eq!(
            error.to_string(),
            "DOCTYPE not allowed in a WebDAV response (entities are never expanded)"
        );

        // Also behind a BOM, whitespace and a comment, and without the XML declaration.
        let hidden = "\u{feff} \n<!-- c --><!DOCTYPE multistatus SYSTEM \"http://example.com/x.dtd\"><multistatus xmlns=\"DAV:\"/>";
        assert!(matches!(parse_multistatus(hidden), Err(XmlError::Doctype)));
        // An undeclared entity without any DOCTYPE is not expanded either.
        let entity =
            r#"<multistatus xmlns="DAV:"><response><href>&xxe;</href></response></multistatus>"#;
        assert!(matches!(
            parse_multistatus(entity),
            Err(XmlError::NotXml { .. })
        ));
    }

    #[test]
    fn bom_and_whitespace_before_the_xml_declaration_are_accepted() {
        let body = format!(
            "\u{feff}\r\n  {}",
            fixture!("radicale", "01-propfind-principal")
        );
        let responses = parse(&body);
        assert_eq!(
            responses[0].current_user_principal.as_deref(),
            Some("/alice/")
        );
    }

    #[test]
    fn undeclared_prefix_is_an_error() {
        let body = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/a</d:href><d:propstat><d:prop><C:calendar-data>x</C:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        let error = parse_multistatus(body).unwrap_err();
        assert!(matches!(error, XmlError::UndeclaredPrefix), "{error:?}");
        // A root without any namespace cannot be DAV:multistatus either.
        assert!(matches!(
            parse_multistatus("<multistatus/>"),
            Err(XmlError::UndeclaredPrefix)
        ));
    }

    #[test]
    fn non_utf8_encoding_comments_and_processing_instructions_are_errors() {
        let latin1 = r#"<?xml version="1.0" encoding="ISO-8859-1"?><multistatus xmlns="DAV:"/>"#;
        assert!(matches!(parse_multistatus(latin1), Err(XmlError::NotUtf8)));
        let comment = r#"<multistatus xmlns="DAV:"><!-- hi --></multistatus>"#;
        let error = parse_multistatus(comment).unwrap_err();
        assert!(
            matches!(error, XmlError::Unsupported("comments")),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "XML comments are not supported in a WebDAV response"
        );
        let pi = r#"<?xml version="1.0"?><?xml-stylesheet href="x"?><multistatus xmlns="DAV:"/>"#;
        assert!(matches!(
            parse_multistatus(pi),
            Err(XmlError::Unsupported(_))
        ));
    }

    #[test]
    fn other_roots_are_not_multistatus() {
        for (body, root) in [
            (
                r#"<D:error xmlns:D="DAV:"><D:need-privileges/></D:error>"#,
                "{DAV:}error",
            ),
            (
                r#"<multistatus xmlns="urn:ietf:params:xml:ns:caldav"/>"#,
                "{urn:ietf:params:xml:ns:caldav}multistatus",
            ),
            (PROPFIND_MEMBERS, "{DAV:}propfind"),
        ] {
            let error = parse_multistatus(body).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("not a DAV:multistatus: the root element is {root}")
            );
        }
    }

    // --- Request bodies ------------------------------------------------------------------

    fn reparse(body: &str) -> Element {
        body.parse()
            .unwrap_or_else(|e| panic!("not well-formed: {e}\n{body}"))
    }

    fn prop_names(propfind: &str) -> Vec<(String, String)> {
        let root = reparse(propfind);
        assert!(root.is("propfind", DAV));
        root.get_child("prop", DAV)
            .expect("prop")
            .children()
            .map(|e| (e.ns(), e.name().to_owned()))
            .collect()
    }

    fn dav(name: &str) -> (String, String) {
        (DAV.to_owned(), name.to_owned())
    }

    fn caldav(name: &str) -> (String, String) {
        (CALDAV.to_owned(), name.to_owned())
    }

    #[test]
    fn propfind_bodies_ask_for_the_right_properties() {
        assert_eq!(
            prop_names(PROPFIND_CALENDAR_HOME_SET),
            [caldav("calendar-home-set")]
        );
        assert_eq!(
            prop_names(PROPFIND_CALENDARS),
            [
                dav("displayname"),
                dav("resourcetype"),
                caldav("supported-calendar-component-set"),
                (CALENDARSERVER.to_owned(), "getctag".to_owned()),
                dav("sync-token"),
            ]
        );
        assert_eq!(prop_names(PROPFIND_MEMBERS), [dav("resourcetype")]);
    }

    #[test]
    fn multiget_body_escapes_hrefs() {
        let hrefs = ["/cal/a&b.ics", "/cal/<x>.ics", "/cal/plane-issue-1.ics"];
        let body = calendar_multiget_body(hrefs);
        assert!(body.contains("<d:href>/cal/a&amp;b.ics</d:href>"), "{body}");
        assert!(
            body.contains("<d:href>/cal/&lt;x&gt;.ics</d:href>"),
            "{body}"
        );
        let root = reparse(&body);
        assert!(root.is("calendar-multiget", CALDAV));
        let props: Vec<_> = root
            .get_child("prop", DAV)
            .unwrap()
            .children()
            .map(|e| (e.ns(), e.name().to_owned()))
            .collect();
        assert_eq!(props, [dav("getetag"), caldav("calendar-data")]);
        let sent: Vec<String> = root
            .children()
            .filter(|e| e.is("href", DAV))
            .map(Element::text)
            .collect();
        assert_eq!(sent, hrefs);
        // No hrefs: still a well-formed body (the caller should not send it, though).
        assert!(reparse(&calendar_multiget_body([])).is("calendar-multiget", CALDAV));
    }

    #[test]
    fn sync_collection_body_sends_the_token_escaped_at_level_1_for_etags() {
        let body = sync_collection_body("http://x/sync?a=1&b=<2>");
        assert!(
            body.contains("<d:sync-token>http://x/sync?a=1&amp;b=&lt;2&gt;</d:sync-token>"),
            "{body}"
        );
        let root = reparse(&body);
        assert!(root.is("sync-collection", DAV));
        let children: Vec<(String, String)> = root
            .children()
            .map(|e| (e.ns(), e.name().to_owned()))
            .collect();
        assert_eq!(
            children,
            [dav("sync-token"), dav("sync-level"), dav("prop")]
        );
        assert_eq!(
            root.get_child("sync-token", DAV).unwrap().text(),
            "http://x/sync?a=1&b=<2>"
        );
        assert_eq!(root.get_child("sync-level", DAV).unwrap().text(), "1");
        let props: Vec<_> = root
            .get_child("prop", DAV)
            .unwrap()
            .children()
            .map(|e| (e.ns(), e.name().to_owned()))
            .collect();
        assert_eq!(props, [dav("getetag")]);
        // The initial sync: an empty token element (RFC 6578 §3.2).
        let initial = reparse(&sync_collection_body(""));
        assert_eq!(initial.get_child("sync-token", DAV).unwrap().text(), "");
    }

    #[test]
    fn mkcalendar_body_sets_displayname_and_only_vevent() {
        let name = "Plane: Café & <Crème> \"quoted\"";
        let body = mkcalendar_body(name);
        assert!(body.contains("Café &amp; &lt;Crème&gt;"), "{body}");
        let root = reparse(&body);
        assert!(root.is("mkcalendar", CALDAV));
        let prop = root
            .get_child("set", DAV)
            .and_then(|s| s.get_child("prop", DAV))
            .expect("set/prop");
        assert_eq!(prop.get_child("displayname", DAV).unwrap().text(), name);
        let comps: Vec<_> = prop
            .get_child("supported-calendar-component-set", CALDAV)
            .unwrap()
            .children()
            .map(|c| {
                (
                    c.ns(),
                    c.name().to_owned(),
                    c.attr("name").map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            comps,
            [(
                CALDAV.to_owned(),
                "comp".to_owned(),
                Some("VEVENT".to_owned())
            )]
        );
    }

    #[test]
    fn proppatch_body_sets_the_displayname() {
        let name = "Plane: R&D <2025> ünïcode";
        let body = proppatch_displayname_body(name);
        assert!(body.contains("R&amp;D &lt;2025&gt;"), "{body}");
        let root = reparse(&body);
        assert!(root.is("propertyupdate", DAV));
        let prop = root
            .get_child("set", DAV)
            .and_then(|s| s.get_child("prop", DAV))
            .expect("set/prop");
        assert_eq!(prop.children().count(), 1);
        assert_eq!(prop.get_child("displayname", DAV).unwrap().text(), name);
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        let body = proppatch_displayname_body("a\u{1}b\u{0}c\u{ffff}d\te");
        let root = reparse(&body);
        let text = root
            .get_child("set", DAV)
            .and_then(|s| s.get_child("prop", DAV))
            .and_then(|p| p.get_child("displayname", DAV))
            .unwrap()
            .text();
        assert_eq!(text, "a\u{fffd}b\u{fffd}c\u{fffd}d\te");
    }

    // --- Hrefs ---------------------------------------------------------------------------

    #[test]
    fn href_path_decodes_percent_40_and_keeps_raw_at() {
        assert_eq!(
            href_path("/alice/plane-cal/a%40b.ics"),
            "/alice/plane-cal/a@b.ics"
        );
        assert_eq!(
            href_path("/alice/plane-cal/a@b.ics"),
            "/alice/plane-cal/a@b.ics"
        );
        assert_eq!(href_path("/a%40b"), href_path("/a@b"));
        assert_eq!(href_path("/x/Caf%C3%A9%20%26%2f"), "/x/Café &/");
        assert_eq!(href_path("relative%40.ics"), "relative@.ics");
        assert_eq!(href_path(""), "");
    }

    #[test]
    fn href_path_strips_scheme_and_authority() {
        assert_eq!(
            href_path("http://127.0.0.1:48599/alice/calendars/plane-cal/"),
            "/alice/calendars/plane-cal/"
        );
        assert_eq!(
            href_path("https://user@dav.example.com:8443/cal/a%40b.ics"),
            "/cal/a@b.ics"
        );
        assert_eq!(href_path("HTTPS://dav.example.com"), "/");
        assert_eq!(href_path("https://dav.example.com?x"), "/");
        // Not a scheme: nothing is stripped.
        assert_eq!(href_path("/a/b://c"), "/a/b://c");
        assert_eq!(href_path("1http://host/p"), "1http://host/p");
    }

    #[test]
    fn href_path_leaves_bad_escapes_as_they_were() {
        assert_eq!(href_path("/a%zz"), "/a%zz");
        assert_eq!(href_path("/a%4"), "/a%4");
        assert_eq!(href_path("/a%"), "/a%");
        assert_eq!(href_path("/%%40"), "/%@");
        // Not UTF-8 once decoded: kept in its original spelling, neighbours still decoded.
        assert_eq!(href_path("/a%ff%40"), "/a%ff@");
        assert_eq!(href_path("/%C3%A9%C3"), "/é%C3");
        assert_eq!(href_path("/%E2%82"), "/%E2%82");
        assert_eq!(href_path("/ü%40"), "/ü@");
    }

    #[test]
    fn percent_encode_segment_keeps_only_unreserved() {
        assert_eq!(
            percent_encode_segment("plane-issue-1.ics"),
            "plane-issue-1.ics"
        );
        assert_eq!(percent_encode_segment("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(percent_encode_segment("a@b.ics"), "a%40b.ics");
        assert_eq!(
            percent_encode_segment("Café & x/y:z%"),
            "Caf%C3%A9%20%26%20x%2Fy%3Az%25"
        );
        assert_eq!(percent_encode_segment(""), "");
        for name in ["a@b.ics", "Café & x/y:z%", "plane-123", "💡?#[]"] {
            assert_eq!(href_path(&percent_encode_segment(name)), name);
        }
    }

    #[test]
    fn calendar_query_body_asks_for_one_uid_exactly() {
        let body = calendar_query_uid_body("plane-issue-x@calplanebot<&>", true);
        let root: minidom::Element = body.parse().expect("well-formed XML");
        assert_eq!(root.name(), "calendar-query");
        assert!(
            body.contains(
                r#"collation="i;octet">plane-issue-x@calplanebot&lt;&amp;&gt;</C:text-match>"#
            ),
            "{body}"
        );
        assert!(body.contains("<C:calendar-data/>"), "{body}");
        // Without data: only the hrefs and etags of the matches (listing foreign names).
        let hrefs_only = calendar_query_uid_body("@calplanebot", false);
        let root: minidom::Element = hrefs_only.parse().expect("well-formed XML");
        let props: Vec<String> = root
            .get_child("prop", DAV)
            .unwrap()
            .children()
            .map(|e| e.name().to_owned())
            .collect();
        assert_eq!(props, ["getetag"]);
    }
}
