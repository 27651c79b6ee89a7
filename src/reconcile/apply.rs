//! Carrying out a plan against the CalDAV server with conditional requests: creates with
//! `If-None-Match: *`, updates and deletes with `If-Match: <etag>` (RFC 9110 §13.1), so a
//! concurrent change on the server is never overwritten silently.
//!
//! Every action's error is kept with the action and the run goes on (style rule 6). A 412 means
//! the event changed since it was listed: it is re-read, re-planned and written once more. A
//! create that meets its UID under another name (a moved event) updates that object instead.

use chrono::Utc;

use crate::caldav::{CalDavError, DavClient, Precondition, StoredEvent};
use crate::mapping::event::{self, ManagedFields};
use crate::reconcile::plan::{CalendarChange, Change, Plan};
use crate::reconcile::render::{Action, Failure, Report};

/// Applies `plan`, recording successes and failures in `report`. `workspace` is the run's
/// scope mark: a re-read event is written only if it is still calplanebot's.
///
/// Calendars are created and renamed first, one after the other; then the event writes of up
/// to `concurrency` calendars are in flight at once, each calendar's one after the other.
/// QUIRK: Xandikos answers a second concurrent write into one calendar (one git repository)
/// with 423 Locked, so writes never overlap within a calendar. Everything about one event —
/// the write, a re-read after 412, the retry — happens in one worker, in order. Outcomes are
/// recorded in plan order, so the report does not depend on timing.
pub fn apply(
    dav: &DavClient,
    plan: &Plan,
    workspace: &str,
    report: &mut Report,
    concurrency: usize,
) {
    let mut broken_calendars: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for change in &plan.calendars {
        let (url, action, result) = match change {
            CalendarChange::Create { url, displayname } => (
                url,
                Action::CreateCalendar,
                dav.make_calendar(url, displayname),
            ),
            CalendarChange::Rename { url, to, .. } => {
                (url, Action::RenameCalendar, dav.set_displayname(url, to))
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
                    broken_calendars.insert(url);
                }
                report.failures.push(Failure {
                    url: url.clone(),
                    action,
                    error: error.to_string(),
                });
            }
        }
    }
    let bar = crate::support::progress::bar(plan.changes.len(), "CalDAV");
    let one = |change: &Change| -> Outcome {
        let result = if broken_calendars.contains(calendar_of(change.url())) {
            Err("its calendar could not be created".to_string())
        } else {
            apply_change(dav, change, workspace)
        };
        if let Err(error) = &result {
            bar.suspend(|| log::error!("{} {}: {error}", action_of(change), change.url()));
        }
        bar.inc(1);
        result
    };
    // The changes of each calendar, in plan order (calendars in order of first appearance).
    let mut by_calendar: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut slot: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, change) in plan.changes.iter().enumerate() {
        let calendar = calendar_of(change.url());
        let at = *slot.entry(calendar).or_insert_with(|| {
            by_calendar.push((calendar, Vec::new()));
            by_calendar.len() - 1
        });
        by_calendar[at].1.push(i);
    }
    let mut outcomes: Vec<(usize, Outcome)> =
        in_parallel(&by_calendar, concurrency, |(_, indices)| {
            indices
                .iter()
                .map(|&i| (i, one(&plan.changes[i])))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes = outcomes.into_iter().map(|(_, outcome)| outcome);
    bar.finish_and_clear();
    for (change, result) in plan.changes.iter().zip(outcomes) {
        let written = match result {
            Ok((applied, written)) => {
                match applied {
                    Applied::Created => report.created += 1,
                    Applied::Updated => report.updated += 1,
                    Applied::Deleted => report.deleted += 1,
                    Applied::AlreadyDone => report.unchanged += 1,
                }
                written
            }
            Err(error) => {
                report.failures.push(Failure {
                    url: change.url().to_string(),
                    action: action_of(change),
                    error,
                });
                Written::Unknown {
                    url: change.url().to_string(),
                }
            }
        };
        report.writes.push(written);
    }
}

/// How one change went: what it turned out to be and what it left, or why it failed.
type Outcome = Result<(Applied, Written), String>;

pub use super::render::Written;

/// The calendar collection an event URL is in (everything up to the last `/`).
pub fn calendar_of(url: &str) -> &str {
    url.rfind('/').map_or(url, |i| &url[..=i])
}

/// `work` on every item (event writes, calendar listings), by at most `workers` threads taking the next item as they become
/// free; the results in the items' order. With one worker (or one item) it runs on this thread.
pub(crate) fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(work).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, work(item)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a write worker panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// What a change turned out to be once carried out: a 412 or a UID conflict can turn a
/// planned create into an update elsewhere, or into nothing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applied {
    Created,
    Updated,
    Deleted,
    /// The server already held what was wanted (a retried write had landed, or someone else
    /// made the same change).
    AlreadyDone,
}

fn action_of(change: &Change) -> Action {
    match change {
        Change::Create { .. } => Action::Create,
        Change::Update { .. } => Action::Update,
        Change::Delete { .. } => Action::Delete,
    }
}

fn apply_change(dav: &DavClient, change: &Change, workspace: &str) -> Outcome {
    let url = change.url().to_string();
    let first = match change {
        Change::Create { url, fields, .. } => create(dav, url, fields),
        Change::Update {
            url,
            etag,
            after,
            existing,
            ..
        } => match etag {
            Some(etag) => update(dav, url, existing, etag, after),
            None => {
                return Err(
                    "the server sent no ETag for this event, so it cannot be updated safely".into(),
                );
            }
        },
        Change::Delete { url, etag, .. } => match etag {
            Some(etag) => dav.delete(url, etag).map(|()| None),
            None => {
                return Err(
                    "the server sent no ETag for this event, so it cannot be deleted safely".into(),
                );
            }
        },
    };
    match (first, change) {
        (Ok(put), Change::Create { .. }) => Ok((Applied::Created, stored(url, put))),
        (Ok(put), Change::Update { .. }) => Ok((Applied::Updated, stored(url, put))),
        (Ok(_), Change::Delete { .. }) => Ok((Applied::Deleted, Written::Deleted { url })),
        // Someone changed or removed the event since it was listed (or a retried write had
        // already landed): read it again, decide again, write once more.
        (Err(CalDavError::PreconditionFailed { .. }), _) => {
            log::info!(
                "{} changed on the server meanwhile; re-reading it",
                change.url()
            );
            replan_once(dav, change, workspace).map(|a| (a, Written::Unknown { url }))
        }
        (Err(CalDavError::UidConflict { .. }), Change::Create { fields, .. }) => {
            update_uid_holder(dav, &url, fields, workspace).map(|a| (a, Written::Unknown { url }))
        }
        (Err(error), _) => Err(error.to_string()),
    }
}

/// The ETag and the text of a stored event, as a PUT left it.
type Put = Option<(Option<String>, String)>;

fn stored(url: String, put: Put) -> Written {
    match put {
        Some((etag, data)) => Written::Stored { url, etag, data },
        None => Written::Unknown { url },
    }
}

fn create(dav: &DavClient, url: &str, fields: &ManagedFields) -> Result<Put, CalDavError> {
    let ics = event::render_new(fields, Utc::now());
    let etag = dav.put(url, &ics, Precondition::Absent)?;
    Ok(Some((etag, ics)))
}

fn update(
    dav: &DavClient,
    url: &str,
    existing: &str,
    etag: &str,
    fields: &ManagedFields,
) -> Result<Put, CalDavError> {
    let ics =
        event::render_update(existing, fields, Utc::now()).map_err(|e| CalDavError::Invalid {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    let etag = dav.put(url, &ics, Precondition::Matches(etag))?;
    Ok(Some((etag, ics)))
}

/// Still calplanebot's: our UID for this issue, our workspace, the same project and view.
fn still_ours(
    stored: &StoredEvent,
    like: &ManagedFields,
    workspace: &str,
) -> Option<ManagedFields> {
    let fields = event::read_event(&stored.data).ok()?;
    (fields.uid == like.uid
        && fields.workspace.as_deref() == Some(workspace)
        && fields.project == like.project
        && fields.view == like.view)
        .then_some(fields)
}

/// The 412 path: one more decision on fresh data, one more conditional write, no loop.
fn replan_once(dav: &DavClient, change: &Change, workspace: &str) -> Result<Applied, String> {
    let url = change.url();
    let current = dav.get(url).map_err(|e| e.to_string())?;
    let (second, applied) = match (change, current) {
        // Wanted, and gone meanwhile: create it.
        (Change::Create { fields, .. } | Change::Update { after: fields, .. }, None) => {
            (create(dav, url, fields), Applied::Created)
        }
        // Wanted, and there: write it if it is still ours and not already as wanted.
        (Change::Create { fields, .. } | Change::Update { after: fields, .. }, Some(stored)) => {
            let Some(now) = still_ours(&stored, fields, workspace) else {
                return Err(
                    "the event was replaced by one calplanebot does not own; left alone".into(),
                );
            };
            if now == **fields {
                return Ok(Applied::AlreadyDone);
            }
            let etag = stored
                .etag
                .as_deref()
                .ok_or("the server sent no ETag for this event, so it cannot be updated safely")?;
            (
                update(dav, url, &stored.data, etag, fields),
                Applied::Updated,
            )
        }
        // Unwanted, and gone meanwhile: done.
        (Change::Delete { .. }, None) => return Ok(Applied::AlreadyDone),
        // Unwanted, and there: delete it if it is still ours.
        (Change::Delete { before, .. }, Some(stored)) => {
            if still_ours(&stored, before, workspace).is_none() {
                return Err(
                    "the event was replaced by one calplanebot does not own; left alone".into(),
                );
            }
            let etag = stored
                .etag
                .as_deref()
                .ok_or("the server sent no ETag for this event, so it cannot be deleted safely")?;
            (dav.delete(url, etag).map(|()| None), Applied::Deleted)
        }
    };
    second
        .map(|_| applied)
        .map_err(|e| format!("{e} (after re-reading it once)"))
}

/// A create met its UID under another name in the same calendar (a client moved or copied the
/// event): update that object in place when it is ours, else report. Never loops.
fn update_uid_holder(
    dav: &DavClient,
    url: &str,
    fields: &ManagedFields,
    workspace: &str,
) -> Result<Applied, String> {
    let calendar = &url[..url.rfind('/').map_or(0, |i| i + 1)];
    let mut holders = dav
        .find_uid(calendar, &fields.uid)
        .map_err(|e| e.to_string())?;
    holders.retain(|h| event::holds_uid(&h.data, &fields.uid));
    let [holder] = holders.as_slice() else {
        return Err(format!(
            "the server already holds UID {} in this calendar but calplanebot cannot find it ({} matches; a deleted copy in the server's trash bin can do this: empty the trash)",
            fields.uid,
            holders.len()
        ));
    };
    let Some(now) = still_ours(holder, fields, workspace) else {
        return Err(format!(
            "the server already holds UID {} at {}, in an event calplanebot does not own; remove or rename it",
            fields.uid, holder.url
        ));
    };
    log::info!(
        "the event of {} lives at {}; updating it there",
        fields.uid,
        holder.url
    );
    if now == *fields {
        return Ok(Applied::AlreadyDone);
    }
    let etag = holder
        .etag
        .as_deref()
        .ok_or("the server sent no ETag for this event, so it cannot be updated safely")?;
    update(dav, &holder.url, &holder.data, etag, fields)
        .map(|_| Applied::Updated)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod parallel_tests {
    use super::in_parallel;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn every_item_once_results_in_order_and_never_more_workers_than_asked() {
        let items: Vec<usize> = (0..200).collect();
        for workers in [1, 2, 4, 7, 500] {
            let running = AtomicUsize::new(0);
            let most = AtomicUsize::new(0);
            let results = in_parallel(&items, workers, |i| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            });
            assert_eq!(results, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            let most = most.load(Ordering::SeqCst);
            assert!(most <= workers.min(items.len()), "{workers}: {most}");
            if workers > 1 {
                assert!(most > 1, "{workers} workers ran one at a time");
            }
        }
        assert!(in_parallel(&[] as &[u8], 4, |b| *b).is_empty());
    }
}
