//! The CalDAV side: discovery, calendar listing and creation, listing the events calplanebot
//! owns, asking what changed since a sync-token (RFC 6578), and conditional writes. The only
//! place besides `apply` that talks to the CalDAV server.
//!
//! Every call is split into *send* (here) and *parse* ([`xml`], pure and tested with captured
//! answers of real servers).

pub mod auth;
pub mod xml;

use ureq::http;

use crate::config::{Network, Secret};
use crate::support::http::{Breaker, Counter, Reply, Retry};
use xml::{DavResponse, XmlError};

/// Largest answer accepted for PROPFIND and REPORT: memory stays bounded whatever a server
/// sends. A PROPFIND listing of 200,000 objects is ~50 MiB; multigets come in batches.
pub const MAX_LISTING_BODY: u64 = 64 * 1024 * 1024;
/// Largest answer accepted for writes (a DELETE may answer with a multistatus body).
const MAX_WRITE_BODY: u64 = 1024 * 1024;
/// Hrefs per calendar-multiget: servers cap big answers (Zoho truncates silently at 1,000,
/// Apple CalendarServer refuses above 5,000; caldav.md), so stay well below.
pub const MULTIGET_BATCH: usize = 100;
/// Most `sync-collection` REPORTs one [`DavClient::sync_collection`] sends when the server
/// keeps truncating its answer (RFC 6578 §3.6): past that, listing in full is cheaper.
pub const MAX_SYNC_ROUNDS: usize = 50;
const MAX_REDIRECTS: usize = 5;

/// A CalDAV request failed. The messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum CalDavError {
    #[error("cannot reach the CalDAV server at {url}: {source}")]
    Transport { url: String, source: ureq::Error },
    #[error("the CalDAV server's answer for {url} broke off: {source}")]
    Broken { url: String, source: ureq::Error },
    #[error(
        "the CalDAV server refused the credentials (HTTP 401) at {url}: check CALDAV_USERNAME and CALDAV_PASSWORD"
    )]
    Unauthorized { url: String },
    #[error("{method} {url} answered HTTP {status}{detail}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{method} {url}: the event changed on the server since it was read (HTTP 412)")]
    PreconditionFailed { method: &'static str, url: String },
    #[error("the CalDAV server sent an answer calplanebot cannot read for {url}: {reason}")]
    Invalid { url: String, reason: String },
    #[error("CalDAV discovery from {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    #[error(
        "the CalDAV server did not return {missing} of the events asked for in {url}; the listing is incomplete"
    )]
    Incomplete { url: String, missing: usize },
    #[error(
        "the CalDAV server refused to create the calendar {url} (HTTP {status}): create it yourself, or use single-calendar mode (CALDAV_CALENDAR_URL) for servers that cannot create calendars"
    )]
    CannotCreateCalendar { url: String, status: u16 },
    #[error(
        "PUT {url}: the server already holds this event's UID under another name (HTTP {status}, no-uid-conflict)"
    )]
    UidConflict { url: String, status: u16 },
    #[error(
        "the CalDAV server at {url} asks for an authentication scheme calplanebot does not speak ({schemes}); calplanebot speaks Basic and Digest"
    )]
    AuthScheme { url: String, schemes: String },
    #[error(
        "cannot verify the TLS certificate of the CalDAV server at {url} ({source}): if the server uses a private CA or a self-signed certificate, set CALDAV_CA_FILE to that CA certificate (PEM) or add it to the system trust store"
    )]
    Certificate { url: String, source: ureq::Error },
    #[error("not sending {method} {url}: the CalDAV server stopped answering earlier in this run")]
    GaveUp { method: &'static str, url: String },
    #[error(
        "not sending {method} {url}: it is plain http:// to a host that is not loopback, and the CalDAV credentials would cross the network unencrypted; use https://, or pass --allow-insecure-http (CALPLANEBOT_ALLOW_INSECURE_HTTP=1) to accept that"
    )]
    Insecure { method: &'static str, url: String },
    #[error(
        "the CalDAV server's answer for {from} {what} {to}: from https:// down to plain http://, which calplanebot never follows (the credentials and the calendars would cross the network unencrypted); make the server name its https:// URLs (Nextcloud behind a TLS proxy: 'overwriteprotocol' => 'https' in config.php), or set CALDAV_URL to the https:// URL"
    )]
    Downgrade {
        from: String,
        what: &'static str,
        to: String,
    },
    #[error(
        "the CalDAV server's answer for {from} {what} {to}, on another host: calplanebot sends the CalDAV credentials only to the host of CALDAV_URL (or CALDAV_CALENDAR_URL); if you trust that host, set CALDAV_URL to that URL"
    )]
    OtherHost {
        from: String,
        what: &'static str,
        to: String,
    },
}

impl CalDavError {
    /// Errors that make the whole run pointless: server unreachable, credentials refused, a
    /// request that may not carry them.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            CalDavError::Transport { .. }
                | CalDavError::Unauthorized { .. }
                | CalDavError::AuthScheme { .. }
                | CalDavError::Certificate { .. }
                | CalDavError::GaveUp { .. }
                | CalDavError::Insecure { .. }
        )
    }
}

/// A calendar collection in the calendar home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// Absolute URL, ending in `/`.
    pub url: String,
    pub displayname: Option<String>,
    /// `None` when the server did not say (then it accepts anything).
    pub components: Option<Vec<String>>,
    /// CalendarServer's `getctag`: changes whenever a member does. `None` when the server did
    /// not say (or the calendar came from discovery, which does not ask).
    pub ctag: Option<String>,
    /// The `DAV:sync-token` property (RFC 6578 §4), for [`DavClient::sync_collection`]. `None`
    /// when the server did not say (or the calendar came from discovery, which does not ask).
    pub sync_token: Option<String>,
}

/// What discovery found at the configured URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The URL that answered, after redirects.
    pub url: String,
    /// Each redirect followed, in order.
    pub redirects: Vec<String>,
    /// The current user's principal, when the server named one.
    pub principal: Option<String>,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The calendar home: one calendar per project goes here.
    Home(String),
    /// The URL is a calendar: single-calendar mode, every project in it.
    Calendar(Calendar),
}
/// Whose a resource name is, for [`DavClient::owned_events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// One of the run's own names: read.
    Ours,
    /// calplanebot's name for someone else's events (another assignee view): never read.
    Theirs,
    /// Any other name: read only when the server says it carries one of our UIDs.
    Unknown,
}

/// One stored calendar object that calplanebot may own (its resource name has our form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub url: String,
    /// The ETag exactly as the server sent it, for `If-Match`; `None` if the server sent none.
    pub etag: Option<String>,
    pub data: String,
}

/// What a `sync-collection` REPORT (RFC 6578) said about a calendar since a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// What changed since the token: members added or changed (the href as the server spelled
    /// it, and its ETag when the server sent one), members removed (hrefs as spelled), and the
    /// token to start from next time. Each href is one the client may follow ([`follow`]); the
    /// caller still rejects those outside the calendar ([`is_member_of`]).
    Changes {
        changed: Vec<(String, Option<String>)>,
        removed: Vec<String>,
        token: String,
    },
    /// The server cannot answer from this token: it forgot it or never knew it (the
    /// `DAV:valid-sync-token` precondition, RFC 6578 §3.2), or it has no sync-collection at all.
    /// The caller lists in full. The text says why, for a debug log.
    Unavailable(String),
}

/// The precondition of a PUT (RFC 4791 §5.3.2, RFC 9110 §13.1).
#[derive(Clone, Copy, Debug)]
pub enum Precondition<'a> {
    /// Create only: `If-None-Match: *`.
    Absent,
    /// Update only what we read: `If-Match: <etag>`.
    Matches(&'a str),
}

pub struct DavClient {
    agent: ureq::Agent,
    auth: auth::Auth,
    retry: Retry,
    breaker: Breaker,
    pub requests: Counter,
}

impl DavClient {
    /// `roots`: the only certificates to trust (`CALDAV_CA_FILE`), or the system trust store.
    pub fn new(
        username: &str,
        password: &Secret,
        network: &Network,
        roots: Option<&[Vec<u8>]>,
    ) -> DavClient {
        DavClient {
            agent: crate::support::http::agent(network, roots),
            auth: auth::Auth::new(username, password, network.allow_insecure_http),
            retry: Retry::new(
                network,
                network.retry_delay.max(std::time::Duration::from_secs(1)),
            ),
            breaker: Breaker::default(),
            requests: Counter::default(),
        }
    }

    /// Sends one request, retried on transient failures: every request calplanebot sends is
    /// safe to repeat (reads, and writes under a precondition or that set a fixed value).
    ///
    /// A 401 that asks for another scheme (Digest), or says the Digest nonce went stale, is
    /// answered by sending the request again with the credentials the server asked for.
    ///
    /// Every CalDAV request goes through here, so this is where the plain-HTTP rule holds for
    /// every URL, whoever named it (issue 12): a request to plain http:// of a host that is not
    /// loopback is not sent at all without `--allow-insecure-http`, and what a request carries
    /// is decided from its own URL ([`auth::Auth::authorization`]).
    fn send(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        limit: u64,
    ) -> Result<Reply, CalDavError> {
        if self.breaker.is_open() {
            return Err(CalDavError::GaveUp {
                method,
                url: url.to_string(),
            });
        }
        if self.auth.channel(url) == auth::Channel::Forbidden {
            return Err(CalDavError::Insecure {
                method,
                url: url.to_string(),
            });
        }
        // What the last attempt carried, for judging a 401 (each attempt gets a fresh Digest
        // nonce count, so a retried request is not a replay).
        let sent = std::cell::RefCell::new(auth::Sent::Nothing);
        let build = || {
            let mut request = http::Request::builder().method(method).uri(url);
            let (authorization, carried) = self.auth.authorization(method, url);
            if let Some(value) = authorization {
                request = request.header("Authorization", value.expose());
            }
            *sent.borrow_mut() = carried;
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            log::debug!("{method} {url}");
            request.body(body.clone())
        };
        if let Err(e) = http::Request::builder().method(method).uri(url).body(()) {
            return Err(CalDavError::Invalid {
                url: url.to_string(),
                reason: format!("cannot build a request: {e}"),
            });
        }
        let what = format!("{method} {url}");
        // A challenge for another scheme, then a stale nonce: at most two more rounds.
        for _ in 0..3 {
            let reply = self
                .retry
                .send(
                    &self.agent,
                    &|| build().expect("method and URL checked above"),
                    limit,
                    &self.requests,
                    &what,
                )
                .map_err(|error| self.send_error(url, error))?;
            if crate::support::http::is_unavailable_status(reply.status) {
                // Still 502/503/504 after every attempt: the server or its gateway is down.
                self.breaker.trip();
            }
            log::trace!("{method} {url} -> {}", reply.status);
            if reply.status != 401 {
                return Ok(reply);
            }
            let challenges = reply
                .headers
                .get_all("WWW-Authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok());
            let carried = sent.borrow().clone();
            match self.auth.challenged(challenges, &carried) {
                auth::Verdict::Retry => {
                    log::debug!("{what}: the server asked for authentication; sending it again");
                }
                auth::Verdict::Refused => break,
                auth::Verdict::Unsupported(schemes) => {
                    return Err(CalDavError::AuthScheme {
                        url: url.to_string(),
                        schemes,
                    });
                }
            }
        }
        Err(CalDavError::Unauthorized {
            url: url.to_string(),
        })
    }

    fn send_error(&self, url: &str, error: crate::support::http::SendError) -> CalDavError {
        match error.source {
            ureq::Error::BodyExceedsLimit(limit) => CalDavError::Invalid {
                url: url.to_string(),
                reason: format!("the answer is larger than {} MiB", limit / (1024 * 1024)),
            },
            _ if crate::support::http::is_certificate_error(&error.source) => {
                self.breaker.trip();
                CalDavError::Certificate {
                    url: url.to_string(),
                    source: error.source,
                }
            }
            _ if error.is_unreachable() => {
                self.breaker.trip();
                CalDavError::Transport {
                    url: url.to_string(),
                    source: error.source,
                }
            }
            // Reachable, but the answer broke off or was garbled: that request failed.
            source => CalDavError::Broken {
                url: url.to_string(),
                source,
            },
        }
    }

    /// PROPFIND returning the parsed multistatus; any non-207 answer is an error.
    fn propfind(
        &self,
        url: &str,
        depth: &str,
        body: &str,
    ) -> Result<Vec<DavResponse>, CalDavError> {
        let reply = self.send(
            "PROPFIND",
            url,
            &[
                ("Depth", depth),
                ("Content-Type", "application/xml; charset=utf-8"),
            ],
            body.as_bytes().to_vec(),
            MAX_LISTING_BODY,
        )?;
        propfind_answer(url, &reply)
    }

    /// REPORT with `Depth: 1` on a calendar, returning the parsed multistatus.
    fn report(&self, calendar: &str, body: String) -> Result<Vec<DavResponse>, CalDavError> {
        let reply = self.send(
            "REPORT",
            calendar,
            &[
                ("Depth", "1"),
                ("Content-Type", "application/xml; charset=utf-8"),
            ],
            body.into_bytes(),
            MAX_LISTING_BODY,
        )?;
        multistatus(calendar, "REPORT", &reply)
    }

    /// Finds where events go from whatever URL the operator pasted: the server root,
    /// `/.well-known/caldav` (RFC 6764 §6), the principal (RFC 5397), the calendar home
    /// (RFC 4791 §6.2.1), or one calendar. Redirects are followed by hand, re-sending the
    /// PROPFIND (an HTTP client would turn it into a GET without credentials). Redirects and
    /// the principal and home the server names are followed only within the same host and
    /// never from https:// down to http:// ([`follow`]).
    ///
    /// Requests: one when the URL is a calendar or a principal that is its own home (Radicale's
    /// `/alice/`), two otherwise, plus one per redirect.
    pub fn discover(&self, start: &str) -> Result<Discovery, CalDavError> {
        let discovery = |reason: String| CalDavError::Discovery {
            url: start.to_string(),
            reason,
        };
        let mut url = start.to_string();
        let mut redirects = Vec::new();
        let responses = loop {
            let reply = self.send(
                "PROPFIND",
                &url,
                &[
                    ("Depth", "0"),
                    ("Content-Type", "application/xml; charset=utf-8"),
                ],
                xml::PROPFIND_DISCOVERY.as_bytes().to_vec(),
                MAX_LISTING_BODY,
            )?;
            if matches!(reply.status, 301 | 302 | 303 | 307 | 308) {
                let location = reply.header("Location").ok_or_else(|| {
                    discovery(format!("HTTP {} without a Location", reply.status))
                })?;
                let next = follow_link(&url, "redirects to", location)?;
                if redirects.len() >= MAX_REDIRECTS {
                    return Err(discovery(format!(
                        "redirected to {next}, one redirect too many; set CALDAV_URL to it"
                    )));
                }
                redirects.push(next.clone());
                url = next;
                continue;
            }
            break propfind_answer(&url, &reply)?;
        };
        let (principal, step) = classify(&url, &responses)?;
        let found = |target: Target| Discovery {
            url: url.clone(),
            redirects: redirects.clone(),
            principal: principal.clone(),
            target,
        };
        let principal_url = match step {
            Step::Found(target) => return Ok(found(target)),
            Step::AskPrincipal(principal_url) => principal_url,
        };
        let responses = self.propfind(&principal_url, "0", xml::PROPFIND_CALENDAR_HOME_SET)?;
        match responses
            .iter()
            .find_map(|r| r.calendar_home_set.as_deref())
        {
            Some(home) => Ok(found(Target::Home(with_slash(follow_link(
                &principal_url,
                "names as the calendar home",
                home,
            )?)))),
            None => Err(discovery(format!(
                "the principal {principal_url} names no calendar-home-set"
            ))),
        }
    }

    /// The calendar collections directly inside the calendar home (PROPFIND Depth 1).
    pub fn calendars(&self, home: &str) -> Result<Vec<Calendar>, CalDavError> {
        let responses = self.propfind(home, "1", xml::PROPFIND_CALENDARS)?;
        let home_path = xml::href_path(home);
        responses
            .into_iter()
            .filter(|r| r.is_calendar && !same_path(&xml::href_path(&r.href), &home_path))
            .map(|r| {
                Ok(Calendar {
                    url: with_slash(follow_link(home, "lists the calendar", &r.href)?),
                    displayname: r.displayname,
                    components: r.supported_components,
                    ctag: r.ctag,
                    sync_token: r.sync_token,
                })
            })
            .collect()
    }

    /// MKCALENDAR with a displayname, VEVENT only (RFC 4791 §5.3.1).
    pub fn make_calendar(&self, url: &str, displayname: &str) -> Result<(), CalDavError> {
        let reply = self.send(
            "MKCALENDAR",
            url,
            &[("Content-Type", "application/xml; charset=utf-8")],
            xml::mkcalendar_body(displayname).into_bytes(),
            MAX_WRITE_BODY,
        )?;
        if reply.is_success() {
            return Ok(());
        }
        // A retried MKCALENDAR whose first attempt took effect meets its own calendar.
        // QUIRK: Radicale answers that with 409, Xandikos with 403, RFC 4791 §5.3.1 says 405;
        // so a refusal is only a refusal when no calendar is there.
        if self.is_calendar(url).unwrap_or(false) {
            return Ok(());
        }
        match reply.status {
            403 | 405 | 501 => Err(CalDavError::CannotCreateCalendar {
                url: url.to_string(),
                status: reply.status,
            }),
            status => Err(status_error("MKCALENDAR", url, status, &reply)),
        }
    }

    fn is_calendar(&self, url: &str) -> Result<bool, CalDavError> {
        Ok(self.calendar_at(url)?.is_some())
    }

    /// The collection at `url` (PROPFIND Depth 0): `Some` when it is a calendar collection,
    /// `None` when it exists but is not one. A missing collection is an error (HTTP 404).
    pub fn calendar_at(&self, url: &str) -> Result<Option<Calendar>, CalDavError> {
        let responses = self.propfind(url, "0", xml::PROPFIND_CALENDARS)?;
        Ok(responses
            .into_iter()
            .find(|r| r.is_calendar)
            .map(|r| Calendar {
                url: with_slash(url.to_string()),
                displayname: r.displayname,
                components: r.supported_components,
                ctag: r.ctag,
                sync_token: r.sync_token,
            }))
    }

    /// GET of one calendar object: `None` when it does not exist.
    pub fn get(&self, url: &str) -> Result<Option<StoredEvent>, CalDavError> {
        let reply = self.send(
            "GET",
            url,
            &[("Accept", "text/calendar")],
            Vec::new(),
            MAX_LISTING_BODY,
        )?;
        match reply.status {
            200..=299 => Ok(Some(StoredEvent {
                url: url.to_string(),
                etag: reply.header("ETag").map(str::to_string),
                data: String::from_utf8(reply.body).map_err(|_| CalDavError::Invalid {
                    url: url.to_string(),
                    reason: "the event is not UTF-8".into(),
                })?,
            })),
            404 | 410 => Ok(None),
            status => Err(status_error("GET", url, status, &reply)),
        }
    }

    /// The objects of `calendar` the server says hold this UID (calendar-query, RFC 4791
    /// §7.8): how a UID conflict on create finds the object that holds the UID. The server's
    /// text-match may be a substring or a case-insensitive match, so the caller reads each
    /// object's UID (`mapping::event::holds_uid`): the client hands back resources and does not
    /// read events.
    pub fn find_uid(&self, calendar: &str, uid: &str) -> Result<Vec<StoredEvent>, CalDavError> {
        let responses = self.report(calendar, xml::calendar_query_uid_body(uid, true))?;
        let mut found = Vec::new();
        for r in responses {
            let Some(data) = r.calendar_data else {
                continue;
            };
            found.push(StoredEvent {
                url: follow_link(calendar, "holds the event at", &r.href)?,
                etag: r.etag,
                data,
            });
        }
        Ok(found)
    }

    /// PROPPATCH of the displayname (a project was renamed). A 207 answer says per property
    /// whether it was set (RFC 4918 §9.2.1): a propstat of 403 or 409 is a refusal, even though
    /// the request as a whole "succeeded".
    pub fn set_displayname(&self, url: &str, displayname: &str) -> Result<(), CalDavError> {
        let reply = self.send(
            "PROPPATCH",
            url,
            &[("Content-Type", "application/xml; charset=utf-8")],
            xml::proppatch_displayname_body(displayname).into_bytes(),
            MAX_WRITE_BODY,
        )?;
        match reply.status {
            207 => {
                let responses = multistatus(url, "PROPPATCH", &reply)?;
                match responses.iter().find_map(|r| r.refused_displayname) {
                    None => Ok(()),
                    Some(status) => Err(CalDavError::Status {
                        method: "PROPPATCH",
                        url: url.to_string(),
                        status,
                        detail: ": the server refused to set the calendar's displayname".into(),
                    }),
                }
            }
            200..=299 => Ok(()),
            status => Err(status_error("PROPPATCH", url, status, &reply)),
        }
    }

    /// The hrefs (as the server spells them) of the objects in `calendar`: PROPFIND Depth 1.
    pub fn member_hrefs(&self, calendar: &str) -> Result<Vec<String>, CalDavError> {
        let members = self.propfind(calendar, "1", xml::PROPFIND_MEMBERS)?;
        let calendar_path = xml::href_path(calendar);
        Ok(members
            .into_iter()
            .filter(|r| !r.is_collection && r.status.is_none_or(|s| (200..300).contains(&s)))
            .filter(|r| !same_path(&xml::href_path(&r.href), &calendar_path))
            .map(|r| r.href)
            .collect())
    }

    /// The stored objects of `calendar` that may be calplanebot's, with their data: those whose
    /// resource name `claim` says are ours, and those under names it does not know whose UID
    /// contains `uid_marker` (a client re-uploaded or moved one of our events). Names it
    /// claims for someone else (another assignee view's) are neither read nor asked about.
    ///
    /// The cost grows with calendars and our own events, never with foreign ones: PROPFIND
    /// Depth 1 for the members; when some members have other names, one calendar-query that
    /// lets the server say which of them carry our UIDs (their data is not sent); then
    /// calendar-multiget of only those hrefs in batches, checking that every href asked for
    /// came back (RFC 4791 §7.9).
    pub fn owned_events(
        &self,
        calendar: &str,
        claim: impl Fn(&str) -> Claim,
        uid_marker: &str,
    ) -> Result<Vec<StoredEvent>, CalDavError> {
        let mut ours_by_name = Vec::new();
        let mut others = Vec::new();
        for href in self.member_hrefs(calendar)? {
            match claim(last_segment(&xml::href_path(&href))) {
                Claim::Ours => ours_by_name.push(href),
                Claim::Unknown => others.push(href),
                Claim::Theirs => {}
            }
        }
        if !others.is_empty() {
            let others: std::collections::HashSet<String> =
                others.iter().map(|h| xml::href_path(h)).collect();
            match self.uid_holders(calendar, uid_marker) {
                Ok(holders) => ours_by_name.extend(
                    holders
                        .into_iter()
                        .filter(|h| others.contains(&xml::href_path(h))),
                ),
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => log::warn!(
                    "cannot ask {calendar} which of its events carry calplanebot's UIDs ({error}); events of calplanebot stored there under other names are not seen this run"
                ),
            }
        }
        self.multiget(calendar, &ours_by_name)
    }

    /// The stored objects at `hrefs` in `calendar` (hrefs as the server spelled them), with
    /// their data: calendar-multiget (RFC 4791 §7.9) in batches of [`MULTIGET_BATCH`]. Every
    /// href is checked with [`follow`] before anything is asked for. An href the server answers
    /// 404 was deleted meanwhile and is left out; an href the server does not answer at all
    /// makes the listing [`CalDavError::Incomplete`].
    pub fn multiget(
        &self,
        calendar: &str,
        hrefs: &[String],
    ) -> Result<Vec<StoredEvent>, CalDavError> {
        // Each href as the server spelled it (what the multiget asks for), and where it leads:
        // all checked before anything is asked for, or later written to.
        let hrefs: Vec<(&str, String)> = hrefs
            .iter()
            .map(|href| {
                follow_link(calendar, "lists the event", href).map(|url| (href.as_str(), url))
            })
            .collect::<Result<_, CalDavError>>()?;
        let mut events = Vec::with_capacity(hrefs.len());
        for batch in hrefs.chunks(MULTIGET_BATCH) {
            let responses = self.report(
                calendar,
                xml::calendar_multiget_body(batch.iter().map(|(href, _)| *href)),
            )?;
            // QUIRK: Radicale answers `@` as `%40`, Xandikos raw: match decoded paths.
            let by_path: std::collections::HashMap<String, &DavResponse> =
                responses.iter().map(|r| (path_key(&r.href), r)).collect();
            let mut missing = 0;
            for (href, url) in batch {
                match by_path.get(&path_key(href)).copied() {
                    Some(r) if r.status.is_some_and(|s| s == 404) => {
                        // Deleted between the listing and the REPORT: it is gone.
                    }
                    Some(DavResponse {
                        calendar_data: Some(data),
                        etag,
                        ..
                    }) => events.push(StoredEvent {
                        url: url.clone(),
                        etag: etag.clone(),
                        data: data.clone(),
                    }),
                    _ => missing += 1,
                }
            }
            if missing > 0 {
                return Err(CalDavError::Incomplete {
                    url: calendar.to_string(),
                    missing,
                });
            }
        }
        Ok(events)
    }

    /// What changed in `calendar` since `token`, by `sync-collection` REPORT (RFC 6578 §3.2):
    /// the members added or changed with their ETags, the members removed, and the token to
    /// start from next time. An empty `token` asks for an initial sync, which lists every
    /// member. Every href in the answer is checked with [`follow`] (an href that may not be
    /// followed is an error, as everywhere); the caller still rejects hrefs that are not
    /// directly inside the calendar ([`is_member_of`]). The calendar itself and members that
    /// are collections are left out.
    ///
    /// A server that cannot answer from this token — it forgot it or never knew it
    /// (`DAV:valid-sync-token`), or it has no sync-collection (403, 405, 501, 400, a 207 without
    /// a sync-token) — gives [`SyncOutcome::Unavailable`]: the caller lists in full. Errors
    /// that say nothing about sync-collection (transport, credentials, a server still down
    /// after the retries, an unreadable answer) stay errors.
    ///
    /// An answer the server truncated (a 507 for the calendar itself, RFC 6578 §3.6) is
    /// continued from the token it returned, up to [`MAX_SYNC_ROUNDS`] REPORTs; a later word
    /// on an href overrides an earlier one.
    pub fn sync_collection(&self, calendar: &str, token: &str) -> Result<SyncOutcome, CalDavError> {
        let mut changes = SyncChanges::default();
        let mut token = token.to_string();
        for _ in 0..MAX_SYNC_ROUNDS {
            let reply = self.send(
                "REPORT",
                calendar,
                // RFC 6578 §3.2: defined for Depth 0 only (Radicale and Xandikos accept any).
                &[
                    ("Depth", "0"),
                    ("Content-Type", "application/xml; charset=utf-8"),
                ],
                xml::sync_collection_body(&token).into_bytes(),
                MAX_LISTING_BODY,
            )?;
            let page = match reply.status {
                207 => {
                    let text =
                        std::str::from_utf8(&reply.body).map_err(|_| CalDavError::Invalid {
                            url: calendar.to_string(),
                            reason: "the answer is not UTF-8".into(),
                        })?;
                    let multistatus = xml::parse_multistatus_with_token(text).map_err(|e| {
                        CalDavError::Invalid {
                            url: calendar.to_string(),
                            reason: e.to_string(),
                        }
                    })?;
                    match sync_page(calendar, multistatus, token.is_empty()) {
                        Ok(page) => page,
                        Err(why) => return Ok(SyncOutcome::Unavailable(why)),
                    }
                }
                // Still 502/503/504 after every retry: the server is down, not refusing.
                status @ 502..=504 => return Err(status_error("REPORT", calendar, status, &reply)),
                status => return Ok(SyncOutcome::Unavailable(sync_refusal(status, &reply))),
            };
            for href in page
                .changed
                .iter()
                .map(|(href, _)| href)
                .chain(&page.removed)
            {
                follow_link(calendar, "lists as changed", href)?;
            }
            let progressed = page.token != token;
            let truncated = page.truncated;
            token.clone_from(&page.token);
            changes.merge(page);
            if !truncated {
                return Ok(changes.into_outcome(token));
            }
            if !progressed {
                return Ok(SyncOutcome::Unavailable(format!(
                    "the server truncated its sync-collection answer (507) and returned the token it was asked from, {token:?}"
                )));
            }
            log::debug!(
                "REPORT {calendar}: sync-collection answer truncated (507); asking on from the token it returned"
            );
        }
        Ok(SyncOutcome::Unavailable(format!(
            "the server still truncated its sync-collection answer after {MAX_SYNC_ROUNDS} REPORTs"
        )))
    }

    /// The hrefs of the objects in `calendar` with a VEVENT whose UID contains `marker`
    /// (calendar-query, RFC 4791 §7.8, §9.7.5), without their data.
    pub fn uid_holders(&self, calendar: &str, marker: &str) -> Result<Vec<String>, CalDavError> {
        Ok(self
            .report(calendar, xml::calendar_query_uid_body(marker, false))?
            .into_iter()
            .filter(|r| r.status.is_none_or(|s| (200..300).contains(&s)))
            .map(|r| r.href)
            .collect())
    }

    /// PUT of a whole calendar object under a precondition. Returns the new ETag if the server
    /// sent one (some do not; caldav.md).
    pub fn put(
        &self,
        url: &str,
        ics: &str,
        precondition: Precondition<'_>,
    ) -> Result<Option<String>, CalDavError> {
        let condition = match precondition {
            Precondition::Absent => ("If-None-Match", "*"),
            Precondition::Matches(etag) => ("If-Match", etag),
        };
        let reply = self.send(
            "PUT",
            url,
            &[("Content-Type", "text/calendar; charset=utf-8"), condition],
            ics.as_bytes().to_vec(),
            MAX_WRITE_BODY,
        )?;
        match reply.status {
            // QUIRK: some servers omit the ETag on PUT (caldav.md; Radicale and Xandikos send
            // it). Nothing in a run depends on it: the next run lists the stored ETag afresh.
            200..=299 => Ok(reply.header("ETag").map(str::to_string)),
            // RFC 4791 §5.3.2.1 names the precondition, not the status. QUIRK: Radicale answers
            // 409, Xandikos 412, both with `no-uid-conflict`; a 412 without it is a stale ETag.
            400 | 403 | 409 | 412 if reply.text().contains("no-uid-conflict") => {
                Err(CalDavError::UidConflict {
                    url: url.to_string(),
                    status: reply.status,
                })
            }
            412 => Err(CalDavError::PreconditionFailed {
                method: "PUT",
                url: url.to_string(),
            }),
            status => Err(status_error("PUT", url, status, &reply)),
        }
    }

    /// DELETE under `If-Match`: never unconditionally, so an event someone changed since we
    /// read it is not lost. A 404 means the event is already gone, which is what was wanted.
    pub fn delete(&self, url: &str, etag: &str) -> Result<(), CalDavError> {
        let reply = self.send(
            "DELETE",
            url,
            &[("If-Match", etag)],
            Vec::new(),
            MAX_WRITE_BODY,
        )?;
        match reply.status {
            // QUIRK: Radicale answers 200 with a multistatus body, Xandikos 204: any 2xx is
            // success, and `http::send` reads the body to the end so the connection stays usable.
            200..=299 | 404 => Ok(()),
            412 => Err(CalDavError::PreconditionFailed {
                method: "DELETE",
                url: url.to_string(),
            }),
            status => Err(status_error("DELETE", url, status, &reply)),
        }
    }
}

fn multistatus(
    url: &str,
    method: &'static str,
    reply: &Reply,
) -> Result<Vec<DavResponse>, CalDavError> {
    if reply.status != 207 {
        return Err(status_error(method, url, reply.status, reply));
    }
    let text = std::str::from_utf8(&reply.body).map_err(|_| CalDavError::Invalid {
        url: url.to_string(),
        reason: "the answer is not UTF-8".into(),
    })?;
    xml::parse_multistatus(text).map_err(|e: XmlError| CalDavError::Invalid {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// The multistatus of a PROPFIND of `url`. QUIRK: Xandikos answers a PROPFIND of a missing
/// resource with 207 and one response whose status is 404 (Radicale answers 404): that is a
/// 404 too.
fn propfind_answer(url: &str, reply: &Reply) -> Result<Vec<DavResponse>, CalDavError> {
    let responses = multistatus(url, "PROPFIND", reply)?;
    let path = xml::href_path(url);
    let missing = responses
        .iter()
        .any(|r| r.status == Some(404) && same_path(&xml::href_path(&r.href), &path));
    if missing {
        return Err(CalDavError::Status {
            method: "PROPFIND",
            url: url.to_string(),
            status: 404,
            detail: String::new(),
        });
    }
    Ok(responses)
}

fn status_error(method: &'static str, url: &str, status: u16, reply: &Reply) -> CalDavError {
    // A short, single-line excerpt of the server's explanation helps; a whole HTML page doesn't.
    let text = reply.text();
    let excerpt: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    let detail = if excerpt.is_empty() || excerpt.starts_with('<') {
        String::new()
    } else {
        format!(": {excerpt}")
    };
    CalDavError::Status {
        method,
        url: url.to_string(),
        status,
        detail,
    }
}

/// Why a `sync-collection` REPORT was not answered with a multistatus, for a debug log.
fn sync_refusal(status: u16, reply: &Reply) -> String {
    // RFC 6578 §3.2: the precondition names a token the server does not know (any more).
    // QUIRK: Radicale answers it 403, Xandikos 412, some servers 500.
    if reply.text().contains("valid-sync-token") {
        format!("the server does not know the sync-token (HTTP {status}, DAV:valid-sync-token)")
    } else {
        format!("the server answered the sync-collection REPORT with HTTP {status}")
    }
}

/// One `sync-collection` answer, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SyncPage {
    /// Members added or changed: href as spelled, and the ETag if the server sent one.
    changed: Vec<(String, Option<String>)>,
    /// Members removed: href as spelled.
    removed: Vec<String>,
    /// The new token (RFC 6578 §6.2: a child of the multistatus).
    token: String,
    /// The server answered 507 for the calendar itself: more changes follow from `token`
    /// (RFC 6578 §3.6).
    truncated: bool,
}

/// Reads a `sync-collection` answer about `calendar` (RFC 6578 §3.2): a member with a 404
/// status and no propstat was removed, one with a propstat was added or changed. The calendar
/// itself (except for saying the answer was truncated) and members that are collections are
/// left out. `initial`: the answer to an empty token, which lists members only (RFC 6578
/// §3.4). `Err` says why the answer cannot be used, for [`SyncOutcome::Unavailable`].
fn sync_page(
    calendar: &str,
    multistatus: xml::Multistatus,
    initial: bool,
) -> Result<SyncPage, String> {
    let token = multistatus.sync_token.ok_or_else(|| {
        "the server answered the sync-collection REPORT without a DAV:sync-token".to_string()
    })?;
    let mut page = SyncPage {
        token,
        ..SyncPage::default()
    };
    let own = path_key(calendar);
    for response in multistatus.responses {
        if path_key(&response.href) == own {
            page.truncated |= response.status == Some(507);
            continue;
        }
        // QUIRK: some servers (iCloud) list collections among the changes; a calendar holds
        // none of ours. A removed one has no resourcetype left, only its trailing slash.
        if response.is_collection || response.href.ends_with('/') {
            continue;
        }
        match response.status {
            // QUIRK: Radicale 3.9 also lists members deleted before as 404 in the answer to an
            // initial sync, which RFC 6578 §3.4 forbids; from nothing, nothing can be removed.
            Some(404) if initial => {}
            Some(404) => page.removed.push(response.href),
            None | Some(200..=299) => page.changed.push((response.href, response.etag)),
            Some(status) => {
                return Err(format!(
                    "the server's sync-collection answer gives {} the status {status}",
                    response.href
                ));
            }
        }
    }
    Ok(page)
}

/// The changes of one [`DavClient::sync_collection`], gathered over the rounds a truncated
/// answer takes: the latest word on each href (compared decoded) wins, in first-seen order.
#[derive(Debug, Default)]
struct SyncChanges {
    entries: Vec<SyncChange>,
    /// [`path_key`] of an href → its place in `entries`.
    index: std::collections::HashMap<String, usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SyncChange {
    Changed(String, Option<String>),
    Removed(String),
}

impl SyncChanges {
    fn merge(&mut self, page: SyncPage) {
        let removed = page.removed.into_iter().map(SyncChange::Removed);
        let changed = page
            .changed
            .into_iter()
            .map(|(href, etag)| SyncChange::Changed(href, etag));
        for change in removed.chain(changed) {
            let (SyncChange::Changed(href, _) | SyncChange::Removed(href)) = &change;
            match self.index.entry(path_key(href)) {
                std::collections::hash_map::Entry::Occupied(at) => {
                    self.entries[*at.get()] = change;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(self.entries.len());
                    self.entries.push(change);
                }
            }
        }
    }

    fn into_outcome(self, token: String) -> SyncOutcome {
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for entry in self.entries {
            match entry {
                SyncChange::Changed(href, etag) => changed.push((href, etag)),
                SyncChange::Removed(href) => removed.push(href),
            }
        }
        SyncOutcome::Changes {
            changed,
            removed,
            token,
        }
    }
}

/// Where the first discovery answer leads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Found(Target),
    /// Ask this principal for its calendar-home-set.
    AskPrincipal(String),
}

/// Reads the answer to [`xml::PROPFIND_DISCOVERY`] at `url` (after redirects): the principal
/// the server names, and what `url` is. A principal to ask or a home that [`follow`] refuses is
/// an error; a principal that is only named (the URL is a calendar or a principal) is not
/// followed, so it is only resolved, for `check` to show.
fn classify(url: &str, responses: &[DavResponse]) -> Result<(Option<String>, Step), CalDavError> {
    // Depth 0 answers describe the URL itself; a server may add others, which say nothing.
    let path = xml::href_path(url);
    let own = responses
        .iter()
        .find(|r| same_path(&xml::href_path(&r.href), &path))
        .or(responses.first());
    let named = responses
        .iter()
        .find_map(|r| r.current_user_principal.as_deref());
    let principal = named.map(|href| resolve(url, href));
    let step = if let Some(calendar) = own.filter(|r| r.is_calendar) {
        Step::Found(Target::Calendar(Calendar {
            url: with_slash(url.to_string()),
            displayname: calendar.displayname.clone(),
            components: calendar.supported_components.clone(),
            // Discovery does not ask for the validators: `calendar_at` does.
            ctag: None,
            sync_token: None,
        }))
    } else if let Some(home) = own.and_then(|r| r.calendar_home_set.as_deref()) {
        // The URL is a principal (or a server answering for the current user anywhere).
        Step::Found(Target::Home(with_slash(follow_link(
            url,
            "names as the calendar home",
            home,
        )?)))
    } else if let Some(href) = named {
        Step::AskPrincipal(follow_link(
            url,
            "names as the current user's principal",
            href,
        )?)
    } else {
        // Neither principal nor home named: the URL may be the home of a server without
        // RFC 5397, the form older servers documented.
        Step::Found(Target::Home(with_slash(url.to_string())))
    };
    Ok((principal, step))
}

/// Why a URL the server handed back is not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfollowable {
    /// From `https://` down to `http://`: whatever the host, the credentials (or the calendars)
    /// would cross unencrypted where the operator asked for encryption.
    Downgrade,
    /// Another host: the credentials go only where the operator pointed calplanebot.
    OtherHost,
}

/// Where a URL the server handed back — a redirect's `Location`, the principal, the calendar
/// home, a calendar or event href — leads from `base`, the URL whose answer held it: resolved
/// against `base`, and only if it stays on `base`'s host and does not step down from
/// `https://` to `http://` (an upgrade from `http://` is fine). Hosts compare without the port.
///
/// Every URL a run sends a request to is configured by the operator, or reached from one
/// through this check, so credentials only ever go to the configured hosts; `DavClient::send`
/// then applies the plain-HTTP rule to each request's own URL.
pub fn follow(base: &str, href: &str) -> Result<String, Unfollowable> {
    let next = resolve(base, href);
    if host_of(&next) != host_of(base) {
        return Err(Unfollowable::OtherHost);
    }
    if base.starts_with("https://") && !next.starts_with("https://") {
        return Err(Unfollowable::Downgrade);
    }
    Ok(next)
}

/// [`follow`], with the refusal as the error that tells the operator what to do. `what` says
/// what the answer did: "redirects to", "names as the calendar home", …
fn follow_link(base: &str, what: &'static str, href: &str) -> Result<String, CalDavError> {
    follow(base, href).map_err(|why| {
        let (from, to) = (base.to_string(), resolve(base, href));
        match why {
            Unfollowable::Downgrade => CalDavError::Downgrade { from, what, to },
            Unfollowable::OtherHost => CalDavError::OtherHost { from, what, to },
        }
    })
}

/// Whether `url` (an absolute URL or a path) names an object directly inside `calendar`: on
/// the same host, its decoded path is the calendar's path plus one segment that is not `.` or
/// `..`. How a caller of [`DavClient::sync_collection`] rejects hrefs outside the calendar,
/// the calendar itself, and anything in a collection below it.
pub fn is_member_of(calendar: &str, url: &str) -> bool {
    if url.contains("://") && host_of(url) != host_of(calendar) {
        return false;
    }
    let calendar_path = with_slash(xml::href_path(calendar));
    match xml::href_path(url).strip_prefix(calendar_path.as_str()) {
        Some(name) => !name.is_empty() && !name.contains('/') && name != "." && name != "..",
        None => false,
    }
}

/// `scheme://authority` of an absolute URL.
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn host_of(url: &str) -> String {
    let origin = origin_of(url);
    let authority = origin.split("://").nth(1).unwrap_or(origin);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => authority[..i].to_ascii_lowercase(),
        _ => authority.to_ascii_lowercase(),
    }
}

/// Resolves an href from a server answer against the URL it was found at (RFC 3986 §5.2, for
/// the three forms servers send: absolute URL, absolute path, relative path).
pub fn resolve(base: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        href.to_string()
    } else if href.starts_with('/') {
        format!("{}{href}", origin_of(base))
    } else {
        let dir = match base.rfind('/') {
            Some(i) if i >= origin_of(base).len() => &base[..=i],
            _ => return format!("{}/{href}", origin_of(base)),
        };
        format!("{dir}{href}")
    }
}

pub fn with_slash(mut url: String) -> String {
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The key under which two hrefs of one resource compare equal: the decoded path without a
/// trailing slash (see [`same_path`]).
fn path_key(href: &str) -> String {
    let path = xml::href_path(href);
    path.trim_end_matches('/').to_string()
}

fn last_segment(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_resolve_in_all_three_forms() {
        let base = "https://dav.example.com:8443/dav/alice/";
        assert_eq!(
            resolve(base, "https://other.example.com/x/"),
            "https://other.example.com/x/"
        );
        assert_eq!(
            resolve(base, "/alice/cal/"),
            "https://dav.example.com:8443/alice/cal/"
        );
        assert_eq!(
            resolve(base, "cal/e.ics"),
            "https://dav.example.com:8443/dav/alice/cal/e.ics"
        );
        assert_eq!(
            resolve("http://127.0.0.1:5232", "/alice/"),
            "http://127.0.0.1:5232/alice/"
        );
    }

    fn fixture_responses(server: &str, name: &str) -> Vec<DavResponse> {
        let path = format!(
            "{}/tests/fixtures/caldav/{server}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("the fixture exists");
        xml::parse_multistatus(&text).expect("the fixture parses")
    }

    /// Discovery's first step on the real answers of both servers, from every URL form.
    #[test]
    fn discovery_classifies_every_url_form_on_both_servers() {
        let base = "https://dav.example:8443";
        let principal = Some(format!("{base}/alice/"));
        let ask = Step::AskPrincipal(format!("{base}/alice/"));
        let home = |path: &str| Step::Found(Target::Home(format!("{base}{path}")));
        let cases = [
            ("radicale", "09-discovery-root.xml", "/", ask.clone()),
            (
                "radicale",
                "09-discovery-principal.xml",
                "/alice/",
                home("/alice/"),
            ),
            ("xandikos", "09-discovery-root.xml", "/", ask.clone()),
            (
                "xandikos",
                "09-discovery-principal.xml",
                "/alice/",
                home("/alice/calendars/"),
            ),
            // The home itself is neither a calendar nor a principal: ask its principal.
            (
                "xandikos",
                "09-discovery-home.xml",
                "/alice/calendars/",
                ask,
            ),
        ];
        for (server, fixture, path, expected) in cases {
            let responses = fixture_responses(server, fixture);
            let (named, step) = classify(&format!("{base}{path}"), &responses).expect("followed");
            assert_eq!(named, principal, "{server} {fixture}");
            assert_eq!(step, expected, "{server} {fixture}");
        }
        for (server, path) in [
            ("radicale", "/alice/team"),
            ("xandikos", "/alice/calendars/team/"),
        ] {
            let responses = fixture_responses(server, "09-discovery-calendar.xml");
            let (_, step) = classify(&format!("{base}{path}"), &responses).expect("followed");
            let Step::Found(Target::Calendar(calendar)) = step else {
                panic!("{server}: a calendar URL is a calendar, got {step:?}");
            };
            assert_eq!(
                calendar.url,
                format!("{base}{}", with_slash(path.to_string()))
            );
            assert_eq!(calendar.displayname.as_deref(), Some("Team"));
            assert_eq!(calendar.components, Some(vec!["VEVENT".to_string()]));
        }
    }

    #[test]
    fn a_propfind_answered_207_with_a_404_response_is_a_404() {
        let body = std::fs::read(format!(
            "{}/tests/fixtures/caldav/xandikos/10-propfind-missing.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("the fixture exists");
        let reply = Reply {
            status: 207,
            headers: http::HeaderMap::new(),
            body,
        };
        // The fixture's href is absolute, on the port it was captured from: paths compare.
        let error = propfind_answer("https://dav.example/alice/calendars/nope/", &reply)
            .expect_err("missing");
        assert!(
            matches!(error, CalDavError::Status { status: 404, .. }),
            "{error}"
        );
        assert!(propfind_answer("https://dav.example/alice/calendars/other/", &reply).is_ok());
    }

    #[test]
    fn a_server_without_principals_makes_the_url_the_home() {
        let answer = r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/dav/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;
        let responses = xml::parse_multistatus(answer).expect("parses");
        let (principal, step) = classify("http://127.0.0.1:1/dav", &responses).expect("followed");
        assert_eq!(principal, None);
        assert_eq!(
            step,
            Step::Found(Target::Home("http://127.0.0.1:1/dav/".into()))
        );
    }

    /// Issue 12, point 5: what a server hands back is followed only on the same host and never
    /// from https:// down to http://, whatever the form of the href.
    #[test]
    fn links_stay_on_the_host_and_never_step_down_to_plain_http() {
        let https = "https://cloud.example.com/.well-known/caldav";
        for (href, expected) in [
            (
                "/remote.php/dav/",
                "https://cloud.example.com/remote.php/dav/",
            ),
            ("dav/", "https://cloud.example.com/.well-known/dav/"),
            (
                "https://Cloud.Example.com:8443/dav/",
                "https://Cloud.Example.com:8443/dav/",
            ),
        ] {
            assert_eq!(follow(https, href).as_deref(), Ok(expected), "{href}");
        }
        // The Nextcloud behind a TLS proxy without `overwriteprotocol`.
        for href in [
            "http://cloud.example.com/remote.php/dav/",
            "http://cloud.example.com:443/remote.php/dav/",
        ] {
            assert_eq!(follow(https, href), Err(Unfollowable::Downgrade), "{href}");
        }
        // Loopback is no exception to the downgrade rule.
        assert_eq!(
            follow("https://127.0.0.1:8443/", "http://127.0.0.1:8080/"),
            Err(Unfollowable::Downgrade)
        );
        for href in [
            "https://p42-caldav.example.com/123/calendars/",
            "http://evil.example/",
            "https://cloud.example.com@evil.example/",
        ] {
            assert_eq!(follow(https, href), Err(Unfollowable::OtherHost), "{href}");
        }
        // An upgrade is fine, and so is plain HTTP where it started.
        let plain = "http://127.0.0.1:5232/";
        assert_eq!(
            follow(plain, "https://127.0.0.1:8443/alice/").as_deref(),
            Ok("https://127.0.0.1:8443/alice/")
        );
        assert_eq!(
            follow(plain, "/alice/").as_deref(),
            Ok("http://127.0.0.1:5232/alice/")
        );
    }

    /// A principal or calendar home named on plain HTTP or on another host ends discovery with
    /// an error that says what to do, before any request goes there.
    #[test]
    fn discovery_refuses_a_principal_or_home_it_must_not_follow() {
        let answer = |prop: &str| {
            format!(
                r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/</d:href><d:propstat><d:prop>{prop}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#
            )
        };
        let base = "https://cloud.example.com/";
        let cases = [
            (
                "<d:current-user-principal><d:href>http://cloud.example.com/alice/</d:href></d:current-user-principal>",
                "'overwriteprotocol' => 'https'",
            ),
            (
                "<c:calendar-home-set><d:href>http://cloud.example.com/alice/</d:href></c:calendar-home-set>",
                "set CALDAV_URL to the https:// URL",
            ),
            (
                "<c:calendar-home-set><d:href>https://other.example/alice/</d:href></c:calendar-home-set>",
                "only to the host of CALDAV_URL",
            ),
        ];
        for (prop, expected) in cases {
            let responses = xml::parse_multistatus(&answer(prop)).expect("parses");
            let error = classify(base, &responses).expect_err(prop).to_string();
            assert!(error.contains(expected), "{error}");
            assert!(
                error.starts_with(
                    "the CalDAV server's answer for https://cloud.example.com/ names as"
                ),
                "{error}"
            );
        }
        // A principal that is only named, not asked, is not followed: no error.
        let calendar = answer(
            "<d:resourcetype><d:collection/><c:calendar/></d:resourcetype><d:current-user-principal><d:href>https://other.example/alice/</d:href></d:current-user-principal>",
        );
        let responses = xml::parse_multistatus(&calendar).expect("parses");
        let (_, step) = classify(base, &responses).expect("a calendar");
        assert!(matches!(step, Step::Found(Target::Calendar(_))), "{step:?}");
    }

    /// Issue 12, point 5: the plain-HTTP rule where every request passes. A request to plain
    /// HTTP of a host that is not loopback is refused before anything is sent — whatever URL
    /// it came from — unless the operator allowed plain HTTP.
    #[test]
    fn a_request_to_plain_http_of_a_remote_host_is_never_sent() {
        let network = crate::config::Network {
            retries: 0,
            timeout: std::time::Duration::from_secs(5),
            connect_timeout: std::time::Duration::from_secs(2),
            ..crate::config::Network::default()
        };
        let password = Secret::new("pw-never-in-clear");
        let dav = DavClient::new("alice", &password, &network, None);
        let url = "http://dav.invalid/alice/calendars/team/";
        let errors = [
            dav.discover(url).map(drop).expect_err("refused"),
            dav.calendar_at(url).map(drop).expect_err("refused"),
            dav.put(&format!("{url}e.ics"), "", Precondition::Absent)
                .map(drop)
                .expect_err("refused"),
            dav.delete(&format!("{url}e.ics"), "\"1\"")
                .expect_err("refused"),
        ];
        for error in errors {
            assert!(matches!(error, CalDavError::Insecure { .. }), "{error}");
            assert!(error.is_fatal());
            let text = error.to_string();
            assert!(text.contains("--allow-insecure-http"), "{text}");
            assert!(!text.contains(password.expose()), "{text}");
        }
        assert_eq!(dav.requests.get(), 0, "nothing was sent");
        // Allowed: the request goes (and fails on the unresolvable host).
        let allowed = crate::config::Network {
            allow_insecure_http: true,
            ..network
        };
        let dav = DavClient::new("alice", &password, &allowed, None);
        let error = dav.calendar_at(url).expect_err("unreachable");
        assert!(!matches!(error, CalDavError::Insecure { .. }), "{error}");
        assert_eq!(dav.requests.get(), 1);
    }

    #[test]
    fn hosts_compare_without_port_and_userinfo() {
        assert_eq!(host_of("https://Dav.Example.com:8443/x"), "dav.example.com");
        assert_eq!(host_of("http://u@[::1]:80/"), "[::1]");
        assert_eq!(host_of("http://127.0.0.1/"), "127.0.0.1");
    }

    fn fixture_sync_page(server: &str, name: &str, calendar: &str) -> Result<SyncPage, String> {
        let path = format!(
            "{}/tests/fixtures/caldav/{server}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("the fixture exists");
        sync_page(
            calendar,
            xml::parse_multistatus_with_token(&text).expect("the fixture parses"),
            name.contains("initial"),
        )
    }

    /// The real answers of both servers to a sync from the token taken before one change, one
    /// delete and one create: exactly those, with the new token.
    #[test]
    fn a_sync_collection_answer_reads_as_changed_removed_and_the_new_token() {
        for (server, calendar, token) in [
            (
                "radicale",
                "https://dav.example/alice/plane-sync/",
                "http://radicale.org/ns/sync/b1d97e3c42c26e99227f75bbc4943ab2ae400e9b1f6950a843029f43b1391a83",
            ),
            (
                "xandikos",
                "https://dav.example/alice/calendars/plane-sync",
                "d9fc54a92bde30d67f2beb0a21c520b2277dd94c",
            ),
        ] {
            let page = fixture_sync_page(server, "12-sync-changes.xml", calendar).expect(server);
            let path = xml::href_path(&with_slash(calendar.to_string()));
            let mut changed: Vec<String> = page.changed.iter().map(|(h, _)| h.clone()).collect();
            changed.sort();
            assert_eq!(
                changed,
                [
                    format!("{path}plane-issue-1.ics"),
                    format!("{path}plane-issue-4.ics")
                ],
                "{server}"
            );
            assert!(
                page.changed.iter().all(|(_, etag)| etag.is_some()),
                "{server}"
            );
            assert_eq!(
                page.removed,
                [format!("{path}plane-issue-2.ics")],
                "{server}"
            );
            assert_eq!(page.token, token);
            assert!(!page.truncated);

            let nothing = fixture_sync_page(server, "12-sync-nothing.xml", calendar).unwrap();
            assert_eq!((nothing.changed.len(), nothing.removed.len()), (0, 0));
            assert_eq!(nothing.token, token, "{server}: the token stays");
            let initial = fixture_sync_page(server, "12-sync-initial.xml", calendar).unwrap();
            assert_eq!((initial.changed.len(), initial.removed.len()), (3, 0));
        }
    }

    #[test]
    fn a_sync_page_leaves_out_the_calendar_and_collections_and_notes_a_507() {
        let calendar = "http://127.0.0.1:1/alice/cal/";
        let answer = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/alice/cal</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status><d:error><d:number-of-matches-within-limits/></d:error></d:response><d:response><d:href>/alice/cal/sub/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:response><d:href>/alice/cal/gone/</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response><d:response><d:href>/alice/cal/a.ics</d:href><d:propstat><d:prop><d:getetag>"1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:response><d:href>/alice/cal/b.ics</d:href><d:propstat><d:prop><d:getetag/></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:sync-token>http://x/sync/2</d:sync-token></d:multistatus>"#;
        let page = sync_page(
            calendar,
            xml::parse_multistatus_with_token(answer).unwrap(),
            false,
        )
        .expect("usable");
        assert_eq!(
            page,
            SyncPage {
                changed: vec![
                    ("/alice/cal/a.ics".into(), Some("\"1\"".into())),
                    ("/alice/cal/b.ics".into(), None),
                ],
                removed: vec![],
                token: "http://x/sync/2".into(),
                truncated: true,
            }
        );
    }

    /// QUIRK: Radicale 3.9 answers an initial sync with the members deleted before as 404s
    /// too (seen in `tests/servers.rs`); RFC 6578 §3.4 forbids that, and from an empty token
    /// nothing can have been removed.
    #[test]
    fn removals_in_the_answer_to_an_initial_sync_are_dropped() {
        let calendar = "http://127.0.0.1:1/alice/cal/";
        let answer = r#"<multistatus xmlns="DAV:"><sync-token>http://x/sync/3</sync-token><response><href>/alice/cal/deleted.ics</href><status>HTTP/1.1 404 Not Found</status></response><response><href>/alice/cal/a.ics</href><propstat><prop><getetag>"1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"#;
        let read = |initial| {
            sync_page(
                calendar,
                xml::parse_multistatus_with_token(answer).unwrap(),
                initial,
            )
            .unwrap()
        };
        let initial = read(true);
        assert_eq!(initial.removed, Vec::<String>::new());
        assert_eq!(initial.changed.len(), 1);
        assert_eq!(read(false).removed, ["/alice/cal/deleted.ics"]);
    }

    #[test]
    fn a_sync_answer_without_a_token_or_with_an_odd_status_is_unavailable() {
        let calendar = "http://127.0.0.1:1/alice/cal/";
        let read = |body: &str| {
            sync_page(
                calendar,
                xml::parse_multistatus_with_token(body).unwrap(),
                false,
            )
        };
        // A 207 without a sync-token: a server that took the REPORT for something else.
        let why = read(r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/alice/cal/a.ics</d:href><d:propstat><d:prop><d:getetag>"1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#)
            .expect_err("no token");
        assert!(why.contains("without a DAV:sync-token"), "{why}");
        let why = read(r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/alice/cal/a.ics</d:href><d:status>HTTP/1.1 403 Forbidden</d:status></d:response><d:sync-token>t</d:sync-token></d:multistatus>"#)
            .expect_err("a member answered 403");
        assert!(
            why.contains("/alice/cal/a.ics") && why.contains("403"),
            "{why}"
        );
    }

    /// RFC 6578 §3.6: a truncated answer is continued from the token it returned; what a later
    /// round says about an href wins, and the order is the order first seen.
    #[test]
    fn rounds_of_a_truncated_sync_merge_with_the_latest_word_winning() {
        let page = |changed: &[(&str, &str)], removed: &[&str], token: &str| SyncPage {
            changed: changed
                .iter()
                .map(|(h, e)| (h.to_string(), Some(e.to_string())))
                .collect(),
            removed: removed.iter().map(|h| h.to_string()).collect(),
            token: token.into(),
            truncated: false,
        };
        let mut changes = SyncChanges::default();
        changes.merge(page(
            &[("/c/a.ics", "1"), ("/c/b.ics", "1")],
            &["/c/x.ics"],
            "t1",
        ));
        // Changed again (spelled differently), removed after a change, re-added after removal.
        changes.merge(page(
            &[("/c/a%2Eics", "2"), ("/c/x.ics", "3")],
            &["/c/b.ics", "/c/y.ics"],
            "t2",
        ));
        assert_eq!(
            changes.into_outcome("t2".into()),
            SyncOutcome::Changes {
                // x.ics was seen first, as removed in the first round.
                changed: vec![
                    ("/c/x.ics".into(), Some("3".into())),
                    ("/c/a%2Eics".into(), Some("2".into())),
                ],
                removed: vec!["/c/b.ics".into(), "/c/y.ics".into()],
                token: "t2".into(),
            }
        );
        assert_eq!(
            SyncChanges::default().into_outcome("t".into()),
            SyncOutcome::Changes {
                changed: vec![],
                removed: vec![],
                token: "t".into()
            }
        );
    }

    #[test]
    fn an_unknown_token_is_told_apart_from_a_server_without_sync_collection() {
        for (server, status) in [("radicale", 403), ("xandikos", 412)] {
            let body = std::fs::read(format!(
                "{}/tests/fixtures/caldav/{server}/12-sync-bad-token.xml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let reply = Reply {
                status,
                headers: http::HeaderMap::new(),
                body,
            };
            let why = sync_refusal(status, &reply);
            assert_eq!(
                why,
                format!(
                    "the server does not know the sync-token (HTTP {status}, DAV:valid-sync-token)"
                )
            );
        }
        let reply = Reply {
            status: 405,
            headers: http::HeaderMap::new(),
            body: b"Method Not Allowed".to_vec(),
        };
        assert_eq!(
            sync_refusal(405, &reply),
            "the server answered the sync-collection REPORT with HTTP 405"
        );
    }

    #[test]
    fn members_are_directly_inside_the_calendar_on_its_host() {
        let calendar = "https://dav.example.com/alice/cal/";
        for member in [
            "https://dav.example.com/alice/cal/a.ics",
            "https://DAV.example.com:443/alice/cal/a%40b.ics",
            "/alice/cal/plane-issue-1.ics",
            "/alice/c%61l/x.ics",
        ] {
            assert!(is_member_of(calendar, member), "{member}");
        }
        assert!(is_member_of(
            "https://dav.example.com/alice/cal",
            "/alice/cal/a.ics"
        ));
        for outsider in [
            "https://dav.example.com/alice/cal/",
            "https://dav.example.com/alice/cal",
            "https://dav.example.com/alice/other/a.ics",
            "https://dav.example.com/alice/cal/sub/a.ics",
            "https://dav.example.com/alice/cal/sub/",
            "https://dav.example.com/alice/calendar.ics",
            "https://dav.example.com/alice/cal/..",
            "https://dav.example.com/alice/cal/%2E%2E",
            "https://dav.example.com/alice/cal/a%2Fb.ics",
            "https://evil.example/alice/cal/a.ics",
            "/alice/a.ics",
            "",
        ] {
            assert!(!is_member_of(calendar, outsider), "{outsider}");
        }
    }

    #[test]
    fn paths_compare_with_or_without_trailing_slash() {
        assert!(same_path("/alice/cal/", "/alice/cal"));
        assert!(!same_path("/alice/cal/", "/alice/cal2/"));
        assert_eq!(
            last_segment("/alice/cal/plane-issue-1.ics"),
            "plane-issue-1.ics"
        );
    }
}
