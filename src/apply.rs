//! Carrying out a plan against the CalDAV server with conditional requests: creates with
//! `If-None-Match: *`, updates and deletes with `If-Match: <etag>` (RFC 9110 §13.1), so a
//! concurrent change on the server is never overwritten silently.
//!
//! Every action's error is kept with the action and the run goes on (style rule 6).

use chrono::Utc;

use crate::caldav::{DavClient, Precondition};
use crate::event;
use crate::plan::{CalendarChange, Change, Plan};
use crate::render::{Failure, Report};

/// Applies `plan`, recording successes and failures in `report`.
pub fn apply(dav: &DavClient, plan: &Plan, report: &mut Report) {
    let mut broken_calendars: Vec<String> = Vec::new();
    for change in &plan.calendars {
        let (url, action, result) = match change {
            CalendarChange::Create { url, displayname } => {
                (url, "create calendar", dav.make_calendar(url, displayname))
            }
            CalendarChange::Rename { url, to, .. } => {
                (url, "rename calendar", dav.set_displayname(url, to))
            }
        };
        match result {
            Ok(()) => match change {
                CalendarChange::Create { .. } => report.calendars_created += 1,
                CalendarChange::Rename { .. } => report.calendars_renamed += 1,
            },
            Err(error) => {
                log::error!("{error}");
                if matches!(change, CalendarChange::Create { .. }) {
                    broken_calendars.push(url.clone());
                }
                report.failures.push(Failure {
                    url: url.clone(),
                    action: action.into(),
                    error: error.to_string(),
                });
            }
        }
    }
    for change in &plan.changes {
        let in_broken_calendar = broken_calendars
            .iter()
            .any(|calendar| change.url().starts_with(calendar.as_str()));
        let result = if in_broken_calendar {
            Err("its calendar could not be created".to_string())
        } else {
            apply_change(dav, change)
        };
        match (result, change) {
            (Ok(()), Change::Create { .. }) => report.created += 1,
            (Ok(()), Change::Update { .. }) => report.updated += 1,
            (Ok(()), Change::Delete { .. }) => report.deleted += 1,
            (Err(error), _) => {
                log::error!("{} {}: {error}", action_name(change), change.url());
                report.failures.push(Failure {
                    url: change.url().to_string(),
                    action: action_name(change).into(),
                    error,
                });
            }
        }
    }
}

fn action_name(change: &Change) -> &'static str {
    match change {
        Change::Create { .. } => "create",
        Change::Update { .. } => "update",
        Change::Delete { .. } => "delete",
    }
}

fn apply_change(dav: &DavClient, change: &Change) -> Result<(), String> {
    let now = Utc::now();
    match change {
        Change::Create { url, fields, .. } => {
            let ics = event::render_new(fields, now);
            dav.put(url, &ics, Precondition::Absent)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Change::Update {
            url,
            etag,
            after,
            existing,
            ..
        } => {
            let ics = event::render_update(existing, after, now).map_err(|e| e.to_string())?;
            let etag = etag
                .as_deref()
                .ok_or("the server sent no ETag for this event, so it cannot be updated safely")?;
            dav.put(url, &ics, Precondition::Matches(etag))
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Change::Delete { url, etag, .. } => {
            let etag = etag
                .as_deref()
                .ok_or("the server sent no ETag for this event, so it cannot be deleted safely")?;
            dav.delete(url, etag).map_err(|e| e.to_string())
        }
    }
}
