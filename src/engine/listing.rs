//! How a run reads the calendars (issue 14): where they are (the recorded layout, else
//! discovery), what the server says about each (one PROPFIND of the home, or of the one
//! calendar), then each calendar from the listing snapshot, from a change report, or in full —
//! several calendars at once — and afterwards what the snapshot records. See
//! `support::snapshot` for the rules of trust.

use std::collections::HashMap;

use crate::caldav::{self, CalDavError, Calendar, Claim, DavClient, StoredEvent, SyncOutcome};
use crate::config::CalDav;
use crate::engine::snapshot::{
    self, CalendarRecord, Listing, PendingWrite, RecordedEvent, Snapshot, Validators,
};
use crate::mapping::event;
use crate::reconcile::apply::Written;
use crate::reconcile::placement::Layout;
use crate::reconcile::plan::{CalendarJob, CalendarState};

/// Where the run's calendars are, and what the server reported about them.
pub struct Survey {
    pub layout: Layout,
    /// The calendars of the home (home layout), or the one calendar when it answered.
    pub calendars: Vec<Calendar>,
}

/// The layout and its calendars: with a recorded layout that is not due for a new discovery,
/// one request (PROPFIND Depth 1 of the home, or Depth 0 of the single calendar); else
/// discovery first. A recorded layout that does not answer as expected is discovered again.
pub fn survey(
    settings: &CalDav,
    dav: &DavClient,
    snapshot: &mut Snapshot,
) -> Result<Survey, CalDavError> {
    if let Some(url) = &settings.calendar_url {
        let url = caldav::with_slash(url.clone());
        let calendars = single_calendar(dav, &url)?;
        return Ok(Survey {
            layout: Layout::Single(url),
            calendars,
        });
    }
    if let Some(recorded) = snapshot.layout().cloned() {
        match (&recorded.home, &recorded.single) {
            (Some(home), _) => match dav.calendars(home) {
                Ok(calendars) => {
                    return Ok(Survey {
                        layout: Layout::Home(home.clone()),
                        calendars,
                    });
                }
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => log::info!(
                    "the calendar home found earlier did not answer ({error}); discovering it again"
                ),
            },
            (None, Some(single)) => match dav.calendar_at(single) {
                Ok(Some(calendar)) => {
                    return Ok(Survey {
                        layout: Layout::Single(single.clone()),
                        calendars: vec![calendar],
                    });
                }
                Err(error) if error.is_fatal() => return Err(error),
                _ => log::info!(
                    "the calendar CALDAV_URL named earlier is not one now; discovering again"
                ),
            },
            (None, None) => {}
        }
        snapshot.forget_layout();
    }
    let now = snapshot.now();
    let layout = layout(settings, dav)?;
    match &layout {
        Layout::Home(home) => {
            let calendars = dav.calendars(home)?;
            snapshot.set_layout(Some(home), None, now);
            Ok(Survey { layout, calendars })
        }
        Layout::Single(url) => {
            let calendars = single_calendar(dav, url)?;
            snapshot.set_layout(None, Some(url), now);
            Ok(Survey { layout, calendars })
        }
    }
}

/// The single calendar's properties; a calendar that does not answer is listed in full (and
/// the listing reports the error as it always did).
fn single_calendar(dav: &DavClient, url: &str) -> Result<Vec<Calendar>, CalDavError> {
    match dav.calendar_at(url) {
        Ok(found) => Ok(found.into_iter().collect()),
        Err(error) if error.is_fatal() => Err(error),
        Err(error) => {
            log::debug!("cannot read the properties of {url}: {error}");
            Ok(Vec::new())
        }
    }
}

/// How one calendar was read, and what to record of it.
#[derive(Debug)]
pub struct Listed {
    /// The events read; taken by the job they are read for (`sync::fill_actual`).
    pub events: Vec<StoredEvent>,
    pub ctag: Option<String>,
    pub sync_token: Option<String>,
    pub listed_at: i64,
    pub how: How,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// The snapshot: the server reported the recorded validators.
    Snapshot,
    /// The snapshot and the server's report of what changed since it.
    Changes,
    /// A full listing.
    Full,
}

/// Reads every existing calendar of `jobs`, up to `concurrency` at once; each result in the
/// jobs' order (`None` for a calendar that does not exist yet).
pub fn list_calendars(
    dav: &DavClient,
    jobs: &[CalendarJob],
    calendars: &[Calendar],
    snapshot: &Snapshot,
    concurrency: usize,
) -> Vec<Option<Result<Listed, CalDavError>>> {
    let reported: HashMap<String, &Calendar> = calendars
        .iter()
        .map(|c| (caldav::xml::href_path(&c.url), c))
        .collect();
    let now = snapshot.now();
    crate::reconcile::apply::in_parallel(jobs, concurrency, |job| {
        let CalendarState::Exists { .. } = job.target.state else {
            return None;
        };
        let url = &job.target.url;
        let server = reported.get(&caldav::xml::href_path(url));
        let validators = Validators {
            ctag: server.and_then(|c| c.ctag.as_deref()),
            sync_token: server.and_then(|c| c.sync_token.as_deref()),
        };
        let listing = snapshot::choose(snapshot.calendar(url), validators);
        Some(read_calendar(
            dav,
            url,
            job.view.as_deref(),
            listing,
            validators,
            now,
        ))
    })
}

/// Reads one calendar for the events of assignee view `view` (`None`: the default view).
fn read_calendar(
    dav: &DavClient,
    url: &str,
    view: Option<&str>,
    listing: Listing<'_>,
    validators: Validators<'_>,
    now: i64,
) -> Result<Listed, CalDavError> {
    match listing {
        Listing::Unchanged(record) => Ok(Listed {
            events: record
                .events
                .iter()
                .map(|e| StoredEvent {
                    url: e.url.clone(),
                    etag: Some(e.etag.clone()),
                    data: e.data.clone(),
                })
                .collect(),
            ctag: record.ctag.clone(),
            sync_token: record.sync_token.clone(),
            listed_at: record.listed_at,
            how: How::Snapshot,
        }),
        Listing::Changes(record, from) => match read_changes(dav, url, view, record, from)? {
            Some(listed) => Ok(listed),
            None => read_calendar(dav, url, view, Listing::Full, validators, now),
        },
        Listing::Full => Ok(Listed {
            events: dav.owned_events(url, |name| claim(name, view), &event::uid_marker(view))?,
            ctag: validators.ctag.map(str::to_string),
            sync_token: validators.sync_token.map(str::to_string),
            listed_at: now,
            how: How::Full,
        }),
    }
}

/// Whether `name` is one of assignee view `view`'s resource names.
pub fn is_our_resource_name(name: &str, view: Option<&str>) -> bool {
    event::issue_id_from_resource_name(name, view).is_some()
}

/// Whose a resource name is for a run of assignee view `view`: its own names, the names of
/// calplanebot's other views (another configuration sharing the calendar: never read), or
/// another name.
pub fn claim(name: &str, view: Option<&str>) -> Claim {
    if is_our_resource_name(name, view) {
        Claim::Ours
    } else if event::is_resource_name_of_any_view(name) {
        Claim::Theirs
    } else {
        Claim::Unknown
    }
}

/// The calendar from `record` and the server's changes since `from`: only the changed members
/// that may be ours are read (by name, or — for other names — those the server says carry
/// our UID, as in a full listing). `None` when the server cannot answer from that token or its
/// answer contradicts the record: then the calendar is listed in full.
fn read_changes(
    dav: &DavClient,
    url: &str,
    view: Option<&str>,
    record: &CalendarRecord,
    from: &str,
) -> Result<Option<Listed>, CalDavError> {
    let (changed, removed, token) = match dav.sync_collection(url, from)? {
        SyncOutcome::Changes {
            changed,
            removed,
            token,
        } => (changed, removed, token),
        SyncOutcome::Unavailable(why) => {
            log::debug!(
                "{url}: no change report from the recorded token ({why}); listing it in full"
            );
            return Ok(None);
        }
    };
    let inside = |href: &str| {
        caldav::follow(url, href).is_ok_and(|target| caldav::is_member_of(url, &target))
    };
    if let Some(stray) = changed
        .iter()
        .map(|(href, _)| href)
        .chain(&removed)
        .find(|href| !inside(href))
    {
        log::warn!(
            "{url}: the change report names {stray:?}, outside the calendar; listing it in full"
        );
        return Ok(None);
    }
    let Some(merged) = snapshot::merge_changes(record, &changed, &removed) else {
        log::debug!(
            "{url}: the change report does not show calplanebot's last writes as made; listing it in full"
        );
        return Ok(None);
    };
    let name_of = |href: &str| {
        let path = caldav::xml::href_path(href);
        path.rsplit('/').next().unwrap_or_default().to_string()
    };
    let mut to_read = Vec::new();
    let mut others = Vec::new();
    for href in merged.to_read {
        match claim(&name_of(&href), view) {
            Claim::Ours => to_read.push(href),
            Claim::Unknown => others.push(href),
            Claim::Theirs => {}
        }
    }
    if !others.is_empty() {
        match dav.uid_holders(url, &event::uid_marker(view)) {
            Ok(holders) => {
                let holders: std::collections::HashSet<String> =
                    holders.iter().map(|h| caldav::xml::href_path(h)).collect();
                to_read.extend(
                    others
                        .into_iter()
                        .filter(|href| holders.contains(&caldav::xml::href_path(href))),
                );
            }
            Err(error) if error.is_fatal() => return Err(error),
            // As in a full listing (`DavClient::owned_events`): the run goes on; a create at
            // our name then meets the UID and updates its holder in place.
            Err(error) => log::warn!(
                "cannot ask {url} which of its events carry calplanebot's UIDs ({error}); events of calplanebot stored there under other names are not seen this run"
            ),
        }
    }
    let mut events = merged.known;
    if !to_read.is_empty() {
        events.extend(dav.multiget(url, &to_read)?);
    }
    Ok(Some(Listed {
        events,
        // The ctag the home listing reported predates this report: only the token describes
        // the state now recorded.
        ctag: None,
        sync_token: Some(token),
        listed_at: record.listed_at,
        how: How::Changes,
    }))
}

/// Records what this run knows of each calendar: the state it listed plus its own writes,
/// which the next run expects in the server's change report. A calendar the run created is
/// checked right away with one initial `sync-collection` (hrefs and ETags only), so the next
/// run need not list it in full. A calendar with a write that went another way than planned,
/// or that could not be listed, is forgotten: the next run lists it in full.
pub fn record(
    dav: &DavClient,
    snapshot: &mut Snapshot,
    jobs: &[CalendarJob],
    listed: &HashMap<String, Listed>,
    writes: &[Written],
    failed_calendars: &[String],
) {
    let mut by_calendar: HashMap<&str, Vec<&Written>> = HashMap::new();
    for write in writes {
        by_calendar
            .entry(crate::reconcile::apply::calendar_of(write.url()))
            .or_default()
            .push(write);
    }
    for job in jobs {
        let url = job.target.url.as_str();
        let writes = by_calendar.remove(url).unwrap_or_default();
        let pending: Option<Vec<PendingWrite>> = writes
            .iter()
            .map(|write| match write {
                Written::Stored {
                    url,
                    etag: Some(etag),
                    data,
                } => Some(PendingWrite {
                    url: url.clone(),
                    etag: Some(etag.clone()),
                    data: Some(data.clone()),
                }),
                Written::Deleted { url } => Some(PendingWrite {
                    url: url.clone(),
                    etag: None,
                    data: None,
                }),
                Written::Stored { etag: None, .. } | Written::Unknown { .. } => None,
            })
            .collect();
        let record = match (pending, &job.target.state, listed.get(url)) {
            (None, _, _) => None,
            (Some(_), _, _) if failed_calendars.iter().any(|f| f == url) => None,
            (Some(pending), CalendarState::Missing, _) => {
                created_calendar(dav, url, job.view.as_deref(), pending, snapshot.now())
            }
            (Some(pending), CalendarState::Exists { .. }, Some(listed)) => {
                // The listed events are the job's now (`sync::fill_actual`).
                let events = job
                    .actual
                    .values()
                    .chain(job.copies.iter().map(|(_, copy)| copy))
                    .map(|e| (&e.url, &e.etag, &e.data));
                listed_calendar(listed, events, pending)
            }
            (Some(_), CalendarState::Exists { .. }, None) => None,
        };
        match record {
            Some(record) => snapshot.record(url, record),
            None => snapshot.forget(url),
        }
    }
}

/// The record of a calendar read this run: its validators, its events (url, ETag, text; every
/// one must have an ETag) and the run's writes into it.
fn listed_calendar<'a>(
    listed: &Listed,
    events: impl Iterator<Item = (&'a String, &'a Option<String>, &'a String)>,
    pending: Vec<PendingWrite>,
) -> Option<CalendarRecord> {
    if listed.ctag.is_none() && listed.sync_token.is_none() {
        return None;
    }
    let events = events
        .map(|(url, etag, data)| {
            etag.as_ref().map(|etag| RecordedEvent {
                url: url.clone(),
                etag: etag.clone(),
                data: data.clone(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(CalendarRecord {
        ctag: listed.ctag.clone(),
        sync_token: listed.sync_token.clone(),
        listed_at: listed.listed_at,
        events,
        pending,
    })
}

/// A calendar this run made: empty before its writes, so an initial change report that shows
/// exactly those writes, with the ETags the server gave them, proves its whole state.
fn created_calendar(
    dav: &DavClient,
    url: &str,
    view: Option<&str>,
    pending: Vec<PendingWrite>,
    now: i64,
) -> Option<CalendarRecord> {
    let made = CalendarRecord {
        ctag: None,
        sync_token: Some(String::new()),
        listed_at: now,
        events: Vec::new(),
        pending,
    };
    let listed = match read_changes(dav, url, view, &made, "") {
        Ok(Some(listed)) => listed,
        Ok(None) => return None,
        Err(error) => {
            log::debug!("{url}: cannot check the new calendar's state ({error})");
            return None;
        }
    };
    let events = listed.events.iter().map(|e| (&e.url, &e.etag, &e.data));
    listed_calendar(&listed, events, Vec::new()).map(|record| CalendarRecord {
        listed_at: now,
        ..record
    })
}

/// `CALDAV_CALENDAR_URL` when set; else what discovery finds at `CALDAV_URL`, where a calendar
/// means single-calendar mode.
pub fn layout(settings: &CalDav, dav: &DavClient) -> Result<Layout, CalDavError> {
    if let Some(url) = &settings.calendar_url {
        return Ok(Layout::Single(caldav::with_slash(url.clone())));
    }
    let discovery = dav.discover(&settings.url)?;
    Ok(match discovery.target {
        caldav::Target::Home(home) => Layout::Home(home),
        caldav::Target::Calendar(calendar) => {
            log::info!(
                "CALDAV_URL is a calendar ({}): single-calendar mode, every project's events go into it",
                calendar.displayname.as_deref().unwrap_or(&calendar.url)
            );
            Layout::Single(calendar.url)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_claims_its_own_names_leaves_other_views_names_and_asks_about_the_rest() {
        let issue = "9d577c4e-d35e-4940-9f10-02bd22540b3b";
        let alice = event::view_id(&["5d2bb0f2-1c4e-4a7b-9f0e-3a1b2c3d4e5f"]);
        let team_name = event::resource_name(issue, None);
        let alice_name = event::resource_name(issue, Some(&alice));
        assert_eq!(claim(&team_name, None), Claim::Ours);
        assert_eq!(claim(&alice_name, None), Claim::Theirs);
        assert_eq!(claim(&alice_name, Some(&alice)), Claim::Ours);
        assert_eq!(claim(&team_name, Some(&alice)), Claim::Theirs);
        for view in [None, Some(alice.as_str())] {
            assert_eq!(claim("dentist.ics", view), Claim::Unknown);
        }
    }
}
