//! Issue → VEVENT mapping (pure, no I/O): the seed's rules from `shared/design.md`.
//!
//! [`desired_event`] turns an issue into the values of the properties calplanebot manages
//! ([`ManagedFields`]); [`read_event`] reads the same values back from whatever a server stored,
//! so the plan compares parsed values, never bytes (servers reorder, refold and re-escape).
//! [`render_new`] writes a complete object for a create; [`render_update`] rewrites only the
//! managed properties of a stored object and keeps everything calendar users added (alarms,
//! unknown properties with quoted parameters) byte-faithful, through [`crate::mapping::ics`].

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::mapping::html::html_to_text;
use crate::mapping::ics::{self, Component, Property};
use crate::plane::{Issue, Priority, Project, State, StateGroup, is_uuid};

/// Our PRODID (RFC 5545 §3.7.3); exactly one per object.
pub const PRODID: &str = concat!(
    "-//calplanebot//calplanebot ",
    env!("CARGO_PKG_VERSION"),
    "//EN"
);

const UID_PREFIX: &str = "plane-issue-";
/// The end of every UID calplanebot writes: what a server is asked to match when looking for
/// our events under names that are not ours.
pub const UID_SUFFIX: &str = "@calplanebot";
const RESOURCE_SUFFIX: &str = ".ics";

/// The scope marks of `shared/design.md` ("Identity and ownership").
pub const WORKSPACE_MARK: &str = "X-CALPLANEBOT-WORKSPACE";
pub const PROJECT_MARK: &str = "X-CALPLANEBOT-PROJECT";
/// The mark of an assignee view's events (`--assignee`); the default view has none.
pub const VIEW_MARK: &str = "X-CALPLANEBOT-VIEW";

/// What `render_update` removes from the master VEVENT before writing the desired values.
/// UID stays (it is the identity); DURATION goes because we always write DTEND (RFC 5545
/// §3.6.1: a VEVENT has DTEND or DURATION, never both).
const MANAGED_NAMES: &[&str] = &[
    "SUMMARY",
    "DESCRIPTION",
    "DTSTART",
    "DTEND",
    "DURATION",
    "STATUS",
    "COLOR",
    "CATEGORIES",
    "URL",
    WORKSPACE_MARK,
    PROJECT_MARK,
    VIEW_MARK,
    "DTSTAMP",
    "LAST-MODIFIED",
    "SEQUENCE",
];

/// What the mapping needs besides the issue itself.
#[derive(Clone, Debug)]
pub struct MappingContext<'a> {
    /// Workspace slug: part of the issue URL and the `X-CALPLANEBOT-WORKSPACE` scope mark.
    pub workspace_slug: &'a str,
    /// Origin for issue links (`PLANE_WEB_URL`), without a trailing slash.
    pub web_url: &'a str,
    /// Which days an event covers (`--span`).
    pub span: Span,
}

pub use crate::config::Span;

/// The first day of an issue's event: its start date under [`Span::StartToDue`] when that is on
/// or before the due date, else the due date. `Err` carries the start date that was passed over
/// because it lies after the due date (for a log line).
pub fn first_day(issue: &Issue, span: Span) -> Result<NaiveDate, NaiveDate> {
    match (span, issue.start_date) {
        (Span::StartToDue, Some(start)) if start <= issue.target_date => Ok(start),
        (Span::StartToDue, Some(start)) => Err(start),
        (Span::StartToDue, None) | (Span::Due, _) => Ok(issue.target_date),
    }
}

/// The properties calplanebot manages on an event, as parsed values.
///
/// `desired_event` fills every field; `read_event` fills what it finds in a stored event
/// (a missing or malformed property becomes `None`/empty), so `desired == actual` is the
/// "nothing to do" test of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManagedFields {
    pub uid: String,
    pub summary: String,
    pub description: String,
    pub dtstart: Option<NaiveDate>,
    pub dtend: Option<NaiveDate>,
    pub status: Option<String>,
    pub color: Option<String>,
    pub categories: Vec<String>,
    pub url: Option<String>,
    pub workspace: Option<String>,
    pub project: Option<String>,
    /// The assignee view the event belongs to (`X-CALPLANEBOT-VIEW`); `None` in the default
    /// view and in the feeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
}

/// A stored event could not be read or merged.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not an iCalendar object: {0}")]
    Malformed(String),
    #[error("no VEVENT in the calendar object")]
    NoEvent,
}

/// The id of the assignee view of these members (design.md, "Identity and ownership"): the
/// first 12 hex digits of SHA-256 over `calplanebot-view:` and the lowercased member ids,
/// sorted and joined by `,`. Short (it is part of every UID and resource name of the view),
/// stable without state, the same whatever order the members are given in.
pub fn view_id(member_ids: &[&str]) -> String {
    use sha2::Digest as _;
    let mut ids: Vec<String> = member_ids.iter().map(|id| id.to_lowercase()).collect();
    ids.sort();
    ids.dedup();
    let digest = sha2::Sha256::digest(format!("calplanebot-view:{}", ids.join(",")).as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `view` has the form [`view_id`] gives.
fn is_view_id(view: &str) -> bool {
    view.len() == 12
        && view
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The part of a UID or resource name that follows the issue id: `-{view}` in a view.
fn view_suffix(view: Option<&str>) -> String {
    view.map(|v| format!("-{v}")).unwrap_or_default()
}

/// The UID of an issue's event: `plane-issue-{id}@calplanebot`, or in an assignee view
/// `plane-issue-{id}-{view}@calplanebot`.
pub fn uid_for(issue_id: &str, view: Option<&str>) -> String {
    format!("{UID_PREFIX}{issue_id}{}{UID_SUFFIX}", view_suffix(view))
}

/// The resource name of an issue's event: `plane-issue-{id}.ics`, or in an assignee view
/// `plane-issue-{id}-{view}.ics`.
pub fn resource_name(issue_id: &str, view: Option<&str>) -> String {
    format!(
        "{UID_PREFIX}{issue_id}{}{RESOURCE_SUFFIX}",
        view_suffix(view)
    )
}

/// What every UID of `view` ends with, for a server's text match: `@calplanebot`, or
/// `-{view}@calplanebot` in an assignee view.
pub fn uid_marker(view: Option<&str>) -> String {
    format!("{}{UID_SUFFIX}", view_suffix(view))
}

/// The issue id of one of `view`'s resource names, the inverse of [`resource_name`]; `None`
/// for every other name, including another view's.
pub fn issue_id_from_resource_name<'a>(name: &'a str, view: Option<&str>) -> Option<&'a str> {
    issue_id_in(
        name.strip_prefix(UID_PREFIX)?
            .strip_suffix(RESOURCE_SUFFIX)?,
        view,
    )
}

/// The issue id of one of `view`'s UIDs, the inverse of [`uid_for`]; `None` for every other
/// UID, including another view's.
pub fn issue_id_from_uid<'a>(uid: &'a str, view: Option<&str>) -> Option<&'a str> {
    issue_id_in(
        uid.strip_prefix(UID_PREFIX)?.strip_suffix(UID_SUFFIX)?,
        view,
    )
}

/// `{uuid}` (no view) or `{uuid}-{view}` (that view) → the uuid.
fn issue_id_in<'a>(rest: &'a str, view: Option<&str>) -> Option<&'a str> {
    let id = match view {
        None => rest,
        Some(view) => rest.strip_suffix(view)?.strip_suffix('-')?,
    };
    is_uuid(id).then_some(id)
}

/// Whether `name` is a resource name calplanebot gives an event in any view, the default one
/// included: `plane-issue-{uuid}.ics` or `plane-issue-{uuid}-{view}.ics`.
pub fn is_resource_name_of_any_view(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(UID_PREFIX)
        .and_then(|r| r.strip_suffix(RESOURCE_SUFFIX))
    else {
        return false;
    };
    match rest.split_at_checked(36) {
        Some((id, "")) => is_uuid(id),
        Some((id, view)) => is_uuid(id) && view.strip_prefix('-').is_some_and(is_view_id),
        None => false,
    }
}

/// The view of a UID or resource name of any view, for a log line: `Some(view)` for
/// `plane-issue-{uuid}-{view}…`.
pub fn view_of_uid(uid: &str) -> Option<&str> {
    let rest = uid.strip_prefix(UID_PREFIX)?.strip_suffix(UID_SUFFIX)?;
    let (id, view) = rest.split_at_checked(36)?;
    let view = view.strip_prefix('-')?;
    (is_uuid(id) && is_view_id(view)).then_some(view)
}

/// The event of `fields` as the assignee view `view` writes it: the view's UID and mark.
pub fn in_view(mut fields: ManagedFields, issue_id: &str, view: Option<&str>) -> ManagedFields {
    fields.uid = ics::normalize_text(&uid_for(issue_id, view));
    fields.view = view.map(str::to_string);
    fields
}

/// The event an issue should have: the table "Issue → event mapping" of `shared/design.md`.
///
/// Every text is normalised as [`ics::normalize_text`] does (CRLF/CR → LF, control characters
/// dropped), which is exactly what [`read_event`] gets back after a round trip, so an
/// unchanged issue compares equal to its stored event.
pub fn desired_event(issue: &Issue, project: &Project, ctx: &MappingContext) -> ManagedFields {
    let labels = sorted_names(&issue.labels);
    let assignee_names: Vec<String> = issue.assignees.iter().map(|a| a.name.clone()).collect();
    let assignees = sorted_names(&assignee_names);
    let url = format!(
        "{}/{}/projects/{}/issues/{}",
        ctx.web_url.trim_end_matches('/'),
        ctx.workspace_slug,
        issue.project_id,
        issue.id
    );
    ManagedFields {
        uid: ics::normalize_text(&uid_for(&issue.id, None)),
        summary: ics::normalize_text(&format!("[{}] {}", issue.sequence_id, issue.name)),
        description: description(issue, project, &labels, &assignees),
        dtstart: Some(first_day(issue, ctx.span).unwrap_or(issue.target_date)),
        // DTEND is exclusive for all-day events (RFC 5545 §3.6.1): the day after the due date,
        // whichever day the event starts.
        dtend: issue.target_date.succ_opt(),
        status: Some(status_for(issue.state.as_ref()).to_owned()),
        color: color_for(issue.priority).map(str::to_owned),
        categories: labels,
        url: Some(clean_uri(&url)),
        workspace: Some(ics::normalize_text(ctx.workspace_slug)),
        project: Some(ics::normalize_text(&project.id)),
        view: None,
    }
}

/// Normalised, non-empty names sorted case-insensitively, then exactly: Plane returns labels
/// and assignees (many-to-many relations) in no stable order, and a reordering must not cause
/// an update.
fn sorted_names(names: &[String]) -> Vec<String> {
    let mut names: Vec<String> = names
        .iter()
        .map(|name| ics::normalize_text(name))
        .filter(|name| !name.is_empty())
        .collect();
    names.sort_by_cached_key(|name| (name.to_lowercase(), name.clone()));
    names
}

/// The plain text of the description, a line `---`, then the metadata, one item per line.
fn description(
    issue: &Issue,
    project: &Project,
    labels: &[String],
    assignees: &[String],
) -> String {
    let one_line = |text: &str| ics::normalize_text(text).replace('\n', " ");
    let list = |names: &[String]| {
        names
            .iter()
            .map(|name| one_line(name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = html_to_text(&issue.description_html);
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str("---");
    let _ = write!(text, "\nPriority: {}", priority_name(issue.priority));
    if let Some(state) = &issue.state {
        let _ = write!(text, "\nState: {}", one_line(&state.name));
    }
    if !assignees.is_empty() {
        let _ = write!(text, "\nAssignees: {}", list(assignees));
    }
    if !labels.is_empty() {
        let _ = write!(text, "\nLabels: {}", list(labels));
    }
    let _ = write!(text, "\nProject: {}", one_line(&project.name));
    ics::normalize_text(&text)
}

fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Urgent => "Urgent",
        Priority::High => "High",
        Priority::Medium => "Medium",
        Priority::Low => "Low",
        Priority::None => "None",
    }
}

/// STATUS (RFC 5545 §3.8.1.11): finished work no longer needs the user's time.
fn status_for(state: Option<&State>) -> &'static str {
    match state.map(|state| state.group) {
        Some(StateGroup::Completed | StateGroup::Cancelled) => "CANCELLED",
        Some(
            StateGroup::Backlog | StateGroup::Unstarted | StateGroup::Started | StateGroup::Triage,
        )
        | None => "CONFIRMED",
    }
}

/// COLOR (RFC 7986 §5.9) is a CSS3 colour name.
fn color_for(priority: Priority) -> Option<&'static str> {
    match priority {
        Priority::Urgent => Some("red"),
        Priority::High => Some("orange"),
        Priority::Medium => Some("yellow"),
        Priority::Low => Some("green"),
        Priority::None => None,
    }
}

/// A URI value (RFC 5545 §3.3.13) is not TEXT-escaped, so it must not carry line breaks or
/// other control characters.
fn clean_uri(uri: &str) -> String {
    uri.chars().filter(|&c| c >= ' ' && c != '\u{7f}').collect()
}

/// `YYYYMMDDTHHMMSSZ` (RFC 5545 §3.3.5, form #2: UTC).
fn utc_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `YYYYMMDD` (RFC 5545 §3.3.4).
fn ics_date(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// The desired managed properties, in the order they are written (UID excluded: a new object
/// writes it first, an update keeps the stored one).
fn managed_properties(fields: &ManagedFields, dtstamp: DateTime<Utc>) -> Vec<Property> {
    let text = |name: &str, value: &str| Property::new(name, &[], &ics::escape_text(value));
    let mut properties = vec![
        Property::new("DTSTAMP", &[], &utc_stamp(dtstamp)),
        text("SUMMARY", &fields.summary),
        text("DESCRIPTION", &fields.description),
    ];
    // sabre/dav requires VALUE=DATE on all-day DTSTART (shared/caldav.md).
    if let Some(date) = fields.dtstart {
        properties.push(Property::new(
            "DTSTART",
            &[("VALUE", "DATE")],
            &ics_date(date),
        ));
    }
    if let Some(date) = fields.dtend {
        properties.push(Property::new(
            "DTEND",
            &[("VALUE", "DATE")],
            &ics_date(date),
        ));
    }
    if let Some(status) = &fields.status {
        properties.push(text("STATUS", status));
    }
    if let Some(color) = &fields.color {
        properties.push(text("COLOR", color));
    }
    if !fields.categories.is_empty() {
        properties.push(Property::new(
            "CATEGORIES",
            &[],
            &ics::join_text_list(&fields.categories),
        ));
    }
    if let Some(url) = &fields.url {
        properties.push(Property::new("URL", &[], &clean_uri(url)));
    }
    if let Some(workspace) = &fields.workspace {
        properties.push(text(WORKSPACE_MARK, workspace));
    }
    if let Some(project) = &fields.project {
        properties.push(text(PROJECT_MARK, project));
    }
    if let Some(view) = &fields.view {
        properties.push(text(VIEW_MARK, view));
    }
    properties
}

/// The VEVENT of a new event: UID, the managed properties, TRANSP. What a CalDAV create and a
/// subscription feed both carry.
pub fn vevent(fields: &ManagedFields, dtstamp: DateTime<Utc>) -> Component {
    let mut event = Component::new("VEVENT");
    event
        .properties
        .push(Property::new("UID", &[], &ics::escape_text(&fields.uid)));
    event.properties.extend(managed_properties(fields, dtstamp));
    // A due date must not block free/busy time (RFC 5545 §3.8.2.7). Unmanaged: written only
    // on create, so a user may change it.
    event
        .properties
        .push(Property::new("TRANSP", &[], "TRANSPARENT"));
    event
}

/// A complete calendar object for a create. Never METHOD (RFC 4791 §4.1 forbids it in stored
/// objects), ORGANIZER or ATTENDEE: the event is a mirror, not an invitation.
pub fn render_new(fields: &ManagedFields, dtstamp: DateTime<Utc>) -> String {
    let event = vevent(fields, dtstamp);
    let mut calendar = Component::new("VCALENDAR");
    calendar.properties = vec![
        Property::new("VERSION", &[], "2.0"),
        Property::new("PRODID", &[], PRODID),
        Property::new("CALSCALE", &[], "GREGORIAN"),
    ];
    calendar.children.push(event);
    calendar.to_ics()
}

/// The stored object with the managed properties of its master VEVENT replaced by `fields`.
///
/// The master is the VEVENT whose UID is `fields.uid` and that has no RECURRENCE-ID. Its
/// managed properties are removed and the desired ones written right after its UID, with
/// LAST-MODIFIED = `dtstamp` and SEQUENCE bumped (RFC 5545 §3.8.7.4). The calendar gets our
/// PRODID, exactly once. Everything else — alarms, unknown properties, VTIMEZONE, overridden
/// instances — keeps its original lines.
pub fn render_update(
    existing: &str,
    fields: &ManagedFields,
    dtstamp: DateTime<Utc>,
) -> Result<String, EventError> {
    let mut calendar = parse_calendar(existing)?;
    let event = calendar
        .children
        .iter_mut()
        .find(|c| c.name == "VEVENT" && is_master(c) && uid_of(c).as_deref() == Some(&fields.uid))
        .ok_or(EventError::NoEvent)?;

    let sequence = event
        .properties_named("SEQUENCE")
        .find_map(|p| p.value().trim().parse::<i64>().ok())
        .map_or(1, |old| old.saturating_add(1).max(1));
    let mut desired = managed_properties(fields, dtstamp);
    desired.push(Property::new("LAST-MODIFIED", &[], &utc_stamp(dtstamp)));
    desired.push(Property::new("SEQUENCE", &[], &sequence.to_string()));

    let old = std::mem::take(&mut event.properties);
    let mut desired = Some(desired);
    for property in old {
        if MANAGED_NAMES.contains(&property.name()) {
            continue;
        }
        let is_uid = property.name() == "UID";
        event.properties.push(property);
        if is_uid {
            event
                .properties
                .extend(desired.take().into_iter().flatten());
        }
    }

    // Exactly one PRODID, ours, where the first one was; and a VERSION (RFC 5545 §3.6).
    let old = std::mem::take(&mut calendar.properties);
    let mut prodid = Some(Property::new("PRODID", &[], PRODID));
    for property in old {
        match property.name() {
            "PRODID" => calendar.properties.extend(prodid.take()),
            _ => calendar.properties.push(property),
        }
    }
    let has_version = calendar.property("VERSION").is_some();
    if let Some(prodid) = prodid {
        let after_version = calendar
            .properties
            .iter()
            .position(|p| p.name() == "VERSION")
            .map_or(0, |i| i + 1);
        calendar.properties.insert(after_version, prodid);
    }
    if !has_version {
        calendar
            .properties
            .insert(0, Property::new("VERSION", &[], "2.0"));
    }
    Ok(calendar.to_ics())
}

/// Whether the stored object `data` is the event with exactly this UID (a server's UID search
/// may also answer substrings or other cases).
pub fn holds_uid(data: &str, uid: &str) -> bool {
    read_event(data).is_ok_and(|fields| fields.uid == uid)
}

/// The managed values of a stored object's master VEVENT (the first VEVENT without
/// RECURRENCE-ID), read tolerantly: any order, any folding, lowercase names, `;` escaped or
/// not, DTSTART with or without `VALUE=DATE`.
pub fn read_event(ics: &str) -> Result<ManagedFields, EventError> {
    let calendar = parse_calendar(ics)?;
    let event = calendar
        .children_named("VEVENT")
        .find(|c| is_master(c))
        .ok_or(EventError::NoEvent)?;
    let text = |name: &str| event.property(name).map(|p| text_value(p.value()));
    Ok(ManagedFields {
        uid: text("UID").unwrap_or_default(),
        summary: text("SUMMARY").unwrap_or_default(),
        description: text("DESCRIPTION").unwrap_or_default(),
        dtstart: event.property("DTSTART").and_then(date_value),
        dtend: event.property("DTEND").and_then(date_value),
        status: text("STATUS").map(|s| s.to_uppercase()),
        color: text("COLOR").map(|s| s.to_lowercase()),
        // RFC 5545 §3.8.1.2: CATEGORIES may occur several times.
        categories: event
            .properties_named("CATEGORIES")
            .flat_map(|p| ics::split_text_list(p.value()))
            .map(|value| normalize_newlines(&value))
            .filter(|value| !value.is_empty())
            .collect(),
        // A URI cannot contain a backslash (RFC 3986), so a `\,` or `\;` here is a server's
        // TEXT escaping and undoing it is safe.
        url: text("URL"),
        workspace: text(WORKSPACE_MARK),
        project: text(PROJECT_MARK),
        view: text(VIEW_MARK),
    })
}

fn parse_calendar(text: &str) -> Result<Component, EventError> {
    let calendar = ics::parse(text).map_err(|e| EventError::Malformed(e.to_string()))?;
    if calendar.name != "VCALENDAR" {
        return Err(EventError::Malformed(format!(
            "top-level component is {}, not VCALENDAR",
            calendar.name
        )));
    }
    Ok(calendar)
}

/// The master of a recurring set has no RECURRENCE-ID (RFC 5545 §3.8.4.4).
fn is_master(event: &Component) -> bool {
    event.property("RECURRENCE-ID").is_none()
}

fn uid_of(event: &Component) -> Option<String> {
    event.property("UID").map(|p| text_value(p.value()))
}

fn text_value(raw: &str) -> String {
    normalize_newlines(&ics::unescape_text(raw))
}

fn normalize_newlines(text: &str) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_owned()
    }
}

/// A DATE value (RFC 5545 §3.3.4): `VALUE=DATE` or no VALUE with eight digits. A DATE-TIME
/// reads as `None`, so it differs from the desired date and gets corrected.
fn date_value(property: &Property) -> Option<NaiveDate> {
    if property
        .param("VALUE")
        .is_some_and(|v| !v.eq_ignore_ascii_case("DATE"))
    {
        return None;
    }
    let value = property.value().trim();
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(value, "%Y%m%d").ok()
}

impl ManagedFields {
    /// One human-readable line per managed property, for the dry-run diff.
    pub fn lines(&self) -> Vec<String> {
        let none = || "(none)".to_owned();
        let one_line = |text: &str| text.replace('\n', "\\n");
        let date = |date: Option<NaiveDate>| date.map_or_else(none, |d| d.to_string());
        let text = |value: &Option<String>| value.as_deref().map_or_else(none, one_line);
        let categories = if self.categories.is_empty() {
            none()
        } else {
            self.categories
                .iter()
                .map(|c| one_line(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = vec![
            format!("SUMMARY: {}", one_line(&self.summary)),
            format!("DTSTART: {}", date(self.dtstart)),
            format!("DTEND: {}", date(self.dtend)),
            format!("STATUS: {}", text(&self.status)),
            format!("COLOR: {}", text(&self.color)),
            format!("CATEGORIES: {categories}"),
            format!("URL: {}", text(&self.url)),
            format!("{WORKSPACE_MARK}: {}", text(&self.workspace)),
            format!("{PROJECT_MARK}: {}", text(&self.project)),
        ];
        if self.view.is_some() {
            lines.push(format!("{VIEW_MARK}: {}", text(&self.view)));
        }
        lines.push("DESCRIPTION:".to_owned());
        if !self.description.is_empty() {
            lines.extend(self.description.split('\n').map(|line| format!("  {line}")));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use chrono::TimeZone;

    use super::*;
    use crate::plane::Assignee;

    const ISSUE_ID: &str = "0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c";

    /// Assignees with these names (and made-up ids: the mapping uses only the names).
    fn assignees(names: &[&str]) -> Vec<Assignee> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| Assignee {
                id: format!("00000000-0000-4000-8000-{i:012}"),
                name: (*name).into(),
            })
            .collect()
    }
    const PROJECT_ID: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";

    fn project() -> Project {
        Project {
            id: PROJECT_ID.into(),
            identifier: "ALPHA".into(),
            name: "Alpha".into(),
        }
    }

    fn ctx() -> MappingContext<'static> {
        MappingContext {
            workspace_slug: "acme",
            web_url: "https://plane.example.com",
            span: Span::Due,
        }
    }

    fn issue() -> Issue {
        Issue {
            id: ISSUE_ID.into(),
            project_id: PROJECT_ID.into(),
            sequence_id: 42,
            name: "Fix login".into(),
            description_html: "<p>Users cannot <strong>log in</strong>.</p>".into(),
            priority: Priority::High,
            state: Some(State {
                name: "In Progress".into(),
                group: StateGroup::Started,
            }),
            labels: vec!["frontend".into(), "Bug".into()],
            assignees: assignees(&["Zoe", "adam"]),
            target_date: NaiveDate::from_ymd_opt(2026, 12, 24).unwrap(),
            start_date: None,
            updated_at: None,
        }
    }

    fn desired(issue: &Issue) -> ManagedFields {
        desired_event(issue, &project(), &ctx())
    }

    fn stamp() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 30, 5).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    /// Every physical line of a rendered object is at most 75 octets and ends in CRLF.
    fn assert_lines_folded(ics: &str) {
        assert!(ics.ends_with("\r\n"));
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
            assert!(!line.contains('\r') && !line.contains('\n'));
        }
    }

    fn round_trip(fields: &ManagedFields) -> ManagedFields {
        let ics = render_new(fields, stamp());
        assert_lines_folded(&ics);
        read_event(&ics).unwrap()
    }

    // --- the mapping table ---

    #[test]
    fn desired_event_follows_the_design_table() {
        let fields = desired(&issue());
        assert_eq!(
            fields,
            ManagedFields {
                uid: format!("plane-issue-{ISSUE_ID}@calplanebot"),
                summary: "[42] Fix login".into(),
                description: "Users cannot log in.\n---\nPriority: High\nState: In Progress\n\
                              Assignees: adam, Zoe\nLabels: Bug, frontend\nProject: Alpha"
                    .into(),
                dtstart: date(2026, 12, 24),
                dtend: date(2026, 12, 25),
                status: Some("CONFIRMED".into()),
                color: Some("orange".into()),
                categories: vec!["Bug".into(), "frontend".into()],
                url: Some(format!(
                    "https://plane.example.com/acme/projects/{PROJECT_ID}/issues/{ISSUE_ID}"
                )),
                workspace: Some("acme".into()),
                project: Some(PROJECT_ID.into()),
                view: None,
            }
        );
    }

    #[test]
    fn empty_description_no_state_no_labels_no_assignees() {
        let mut issue = issue();
        issue.description_html = "<p></p>".into();
        issue.state = None;
        issue.labels.clear();
        issue.assignees.clear();
        issue.priority = Priority::None;
        let fields = desired(&issue);
        assert_eq!(fields.description, "---\nPriority: None\nProject: Alpha");
        assert_eq!(fields.categories, Vec::<String>::new());
        assert_eq!(fields.color, None);
        assert_eq!(fields.status.as_deref(), Some("CONFIRMED"));
        let ics = render_new(&fields, stamp());
        assert!(!ics.contains("COLOR"));
        assert!(!ics.contains("CATEGORIES"));
        assert_eq!(round_trip(&fields), fields);
    }

    #[test]
    fn a_span_starts_on_the_start_date_only_when_it_is_not_after_the_due_date() {
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let spanned = MappingContext {
            span: Span::StartToDue,
            ..ctx()
        };
        for (start, first, why) in [
            (Some(ymd(2026, 12, 1)), ymd(2026, 12, 1), None),
            (Some(ymd(2026, 12, 3)), ymd(2026, 12, 3), None),
            (
                Some(ymd(2026, 12, 5)),
                ymd(2026, 12, 3),
                Some(ymd(2026, 12, 5)),
            ),
            (None, ymd(2026, 12, 3), None),
        ] {
            let mut issue = issue();
            issue.target_date = ymd(2026, 12, 3);
            issue.start_date = start;
            let fields = desired_event(&issue, &project(), &spanned);
            assert_eq!(fields.dtstart, Some(first), "{start:?}");
            assert_eq!(fields.dtend, Some(ymd(2026, 12, 4)), "{start:?}");
            assert_eq!(first_day(&issue, Span::StartToDue).err(), why);
            assert_eq!(round_trip(&fields), fields);
            // The default is the seed rule, whatever the start date.
            assert_eq!(desired(&issue).dtstart, Some(ymd(2026, 12, 3)));
            assert_eq!(first_day(&issue, Span::Due), Ok(ymd(2026, 12, 3)));
        }
    }

    #[test]
    fn dtend_is_the_next_day_across_leap_day_and_year_end() {
        for ((y, m, d), end) in [
            ((2028, 2, 29), date(2028, 3, 1)),
            ((2026, 12, 31), date(2027, 1, 1)),
            ((2027, 2, 28), date(2027, 3, 1)),
        ] {
            let mut issue = issue();
            issue.target_date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let fields = desired(&issue);
            assert_eq!(fields.dtstart, date(y, m, d));
            assert_eq!(fields.dtend, end);
            let ics = render_new(&fields, stamp());
            let end = end.unwrap().format("%Y%m%d").to_string();
            assert!(
                ics.contains(&format!("\r\nDTEND;VALUE=DATE:{end}\r\n")),
                "{ics}"
            );
            assert_eq!(round_trip(&fields), fields);
        }
    }

    #[test]
    fn every_priority_has_its_colour_and_name() {
        for (priority, color, name) in [
            (Priority::Urgent, Some("red"), "Urgent"),
            (Priority::High, Some("orange"), "High"),
            (Priority::Medium, Some("yellow"), "Medium"),
            (Priority::Low, Some("green"), "Low"),
            (Priority::None, None, "None"),
        ] {
            let mut issue = issue();
            issue.priority = priority;
            let fields = desired(&issue);
            assert_eq!(fields.color.as_deref(), color);
            assert!(
                fields
                    .description
                    .contains(&format!("\nPriority: {name}\n"))
            );
            assert_eq!(round_trip(&fields), fields);
        }
    }

    #[test]
    fn every_state_group_has_its_status() {
        for (group, status) in [
            (Some(StateGroup::Backlog), "CONFIRMED"),
            (Some(StateGroup::Unstarted), "CONFIRMED"),
            (Some(StateGroup::Started), "CONFIRMED"),
            (Some(StateGroup::Triage), "CONFIRMED"),
            (Some(StateGroup::Completed), "CANCELLED"),
            (Some(StateGroup::Cancelled), "CANCELLED"),
            (None, "CONFIRMED"),
        ] {
            let mut issue = issue();
            issue.state = group.map(|group| State {
                name: "Somewhere".into(),
                group,
            });
            let fields = desired(&issue);
            assert_eq!(fields.status.as_deref(), Some(status), "{group:?}");
            assert_eq!(
                fields.description.contains("\nState: Somewhere\n"),
                group.is_some()
            );
            assert_eq!(round_trip(&fields), fields);
        }
    }

    #[test]
    fn labels_and_assignees_are_sorted_so_plane_order_causes_no_churn() {
        let mut a = issue();
        a.labels = vec!["b".into(), "B".into(), "a".into(), "A".into()];
        a.assignees = assignees(&["bob", "Alice"]);
        let mut b = a.clone();
        b.labels.reverse();
        b.assignees.reverse();
        assert_eq!(desired(&a), desired(&b));
        assert_eq!(desired(&a).categories, ["A", "a", "B", "b"]);
        assert!(
            desired(&a)
                .description
                .contains("\nAssignees: Alice, bob\n")
        );
    }

    #[test]
    fn url_tolerates_a_trailing_slash_on_the_origin() {
        let ctx = MappingContext {
            workspace_slug: "acme",
            web_url: "https://plane.example.com/",
            span: Span::Due,
        };
        let fields = desired_event(&issue(), &project(), &ctx);
        assert_eq!(
            fields.url.unwrap(),
            format!("https://plane.example.com/acme/projects/{PROJECT_ID}/issues/{ISSUE_ID}")
        );
    }

    // --- rendering and reading back ---

    #[test]
    fn render_new_writes_a_complete_object() {
        let ics = render_new(&desired(&issue()), stamp());
        assert_lines_folded(&ics);
        assert!(ics.starts_with(&format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\nCALSCALE:GREGORIAN\r\n\
             BEGIN:VEVENT\r\nUID:plane-issue-{ISSUE_ID}@calplanebot\r\n\
             DTSTAMP:20260501T123005Z\r\nSUMMARY:[42] Fix login\r\n"
        )));
        for line in [
            "DTSTART;VALUE=DATE:20261224",
            "DTEND;VALUE=DATE:20261225",
            "STATUS:CONFIRMED",
            "COLOR:orange",
            "CATEGORIES:Bug,frontend",
            "X-CALPLANEBOT-WORKSPACE:acme",
            &format!("X-CALPLANEBOT-PROJECT:{PROJECT_ID}"),
            "TRANSP:TRANSPARENT",
        ] {
            assert!(ics.contains(&format!("\r\n{line}\r\n")), "{line} in {ics}");
        }
        assert!(ics.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert_eq!(ics.matches("PRODID").count(), 1);
        for forbidden in ["METHOD", "ORGANIZER", "ATTENDEE"] {
            assert!(!ics.contains(forbidden));
        }
        let parsed = ics::parse(&ics).unwrap();
        let event = &parsed.children[0];
        assert_eq!(
            event.property("URL").unwrap().value(),
            format!("https://plane.example.com/acme/projects/{PROJECT_ID}/issues/{ISSUE_ID}")
        );
    }

    #[test]
    fn special_characters_round_trip() {
        let mut issue = issue();
        issue.name = "a, b; c\\d\ne\r\nf\rg \\n \\, ,;".into();
        issue.description_html =
            "<p>x, y; z \\ back</p><p>line\\nnot a newline</p><pre>a\r\n\tb</pre>".into();
        issue.labels = vec![
            "x,y".into(),
            "back\\slash".into(),
            "semi;colon".into(),
            "new\nline".into(),
        ];
        issue.assignees = assignees(&["O'Brien, Pat"]);
        issue.state = Some(State {
            name: "Done; really, \\".into(),
            group: StateGroup::Completed,
        });
        let fields = desired(&issue);
        assert_eq!(fields.summary, "[42] a, b; c\\d\ne\nf\ng \\n \\, ,;");
        assert_eq!(
            fields.categories,
            ["back\\slash", "new\nline", "semi;colon", "x,y"]
        );
        assert!(
            fields
                .description
                .starts_with("x, y; z \\ back\nline\\nnot a newline\na\n\tb\n---")
        );
        assert_eq!(round_trip(&fields), fields);
    }

    #[test]
    fn control_characters_are_dropped_the_same_way_on_both_sides() {
        let mut issue = issue();
        issue.name = "bell\u{7}del\u{7f}nul\u{0}tab\t".into();
        issue.labels = vec!["esc\u{1b}".into()];
        let fields = desired(&issue);
        assert_eq!(fields.summary, "[42] belldelnultab\t");
        assert_eq!(fields.categories, ["esc"]);
        assert_eq!(round_trip(&fields), fields);
    }

    #[test]
    fn emoji_and_cjk_never_split_and_round_trip() {
        let mut issue = issue();
        issue.name = "🎉 发布新版本 — リリース準備 ✅ ".repeat(12);
        issue.description_html = format!("<p>{}</p>", "日本語のテキスト😀é".repeat(40));
        issue.labels = vec!["緊急🔥".repeat(10), "ß".repeat(50)];
        let fields = desired(&issue);
        let ics = render_new(&fields, stamp());
        assert_lines_folded(&ics);
        assert_eq!(read_event(&ics).unwrap(), fields);
    }

    #[test]
    fn a_name_cannot_inject_components() {
        let mut issue = issue();
        issue.name = "x\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil\r\nATTENDEE:mailto:a@b".into();
        issue.labels = vec!["l\r\nEND:VCALENDAR".into()];
        issue.description_html = "<p>d</p>\r\nEND:VEVENT\r\nBEGIN:VEVENT".into();
        let fields = desired(&issue);
        let ics = render_new(&fields, stamp());
        let calendar = ics::parse(&ics).unwrap();
        assert_eq!(calendar.children.len(), 1);
        let event = &calendar.children[0];
        assert_eq!(event.name, "VEVENT");
        assert!(event.children.is_empty());
        assert_eq!(event.properties_named("UID").count(), 1);
        assert_eq!(event.properties_named("ATTENDEE").count(), 0);
        let read = read_event(&ics).unwrap();
        assert_eq!(
            read.summary,
            "[42] x\nEND:VEVENT\nBEGIN:VEVENT\nUID:evil\nATTENDEE:mailto:a@b"
        );
        assert_eq!(read, fields);
    }

    #[test]
    fn urls_and_marks_are_stripped_of_line_breaks() {
        let ctx = MappingContext {
            workspace_slug: "ac\r\nme",
            web_url: "https://x.example\r\nX-EVIL:1",
            span: Span::Due,
        };
        let fields = desired_event(&issue(), &project(), &ctx);
        assert!(!fields.url.as_ref().unwrap().contains(['\r', '\n']));
        let ics = render_new(&fields, stamp());
        let calendar = ics::parse(&ics).unwrap();
        assert!(calendar.children[0].property("X-EVIL").is_none());
        assert_eq!(read_event(&ics).unwrap(), fields);
    }

    // --- updates ---

    const STORED: &str = "BEGIN:VCALENDAR\r\n\
        PRODID:-//Apple Inc.//macOS 14.0//EN\r\n\
        VERSION:2.0\r\n\
        PRODID:-//duplicate//EN\r\n\
        BEGIN:VTIMEZONE\r\n\
        TZID:Europe/Berlin\r\n\
        BEGIN:STANDARD\r\n\
        DTSTART:19701025T030000\r\n\
        TZOFFSETFROM:+0200\r\n\
        TZOFFSETTO:+0100\r\n\
        END:STANDARD\r\n\
        END:VTIMEZONE\r\n\
        BEGIN:VEVENT\r\n\
        CREATED:20260101T000000Z\r\n\
        UID:plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c@calplanebot\r\n\
        DTSTAMP:20260101T000000Z\r\n\
        SUMMARY:[42] Old name\r\n\
        DESCRIPTION:old\r\n\
        DTSTART;VALUE=DATE:20261201\r\n\
        DURATION:P1D\r\n\
        STATUS:CONFIRMED\r\n\
        COLOR:red\r\n\
        CATEGORIES:old\r\n\
        CATEGORIES:older\r\n\
        URL:https://old.example/x\r\n\
        X-CALPLANEBOT-WORKSPACE:acme\r\n\
        X-CALPLANEBOT-PROJECT:9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a\r\n\
        SEQUENCE:3\r\n\
        LAST-MODIFIED:20260101T000000Z\r\n\
        TRANSP:OPAQUE\r\n\
        X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-TITLE=\"Room: 1; B\":geo:1,2\r\n\
        X-MOZ-LASTACK:20260102T000000Z\r\n\
        BEGIN:VALARM\r\n\
        ACTION:DISPLAY\r\n\
        DESCRIPTION:Reminder\\, please\r\n\
        TRIGGER;RELATED=START:-PT15M\r\n\
        X-WR-ALARMUID:ABC\r\n\
        END:VALARM\r\n\
        END:VEVENT\r\n\
        BEGIN:VEVENT\r\n\
        UID:plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c@calplanebot\r\n\
        RECURRENCE-ID;VALUE=DATE:20261208\r\n\
        SUMMARY:user override\r\n\
        DTSTART;VALUE=DATE:20261209\r\n\
        END:VEVENT\r\n\
        END:VCALENDAR\r\n";

    const VALARM: &str = "BEGIN:VALARM\r\n\
        ACTION:DISPLAY\r\n\
        DESCRIPTION:Reminder\\, please\r\n\
        TRIGGER;RELATED=START:-PT15M\r\n\
        X-WR-ALARMUID:ABC\r\n\
        END:VALARM\r\n";

    #[test]
    fn render_update_replaces_managed_properties_and_keeps_the_rest() {
        let fields = desired(&issue());
        let later = stamp() + chrono::Duration::days(1);
        let updated = render_update(STORED, &fields, later).unwrap();
        assert_lines_folded(&updated);

        assert!(
            updated.contains(VALARM),
            "VALARM kept byte-identical:\n{updated}"
        );
        let location = "X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-TITLE=\"Room: 1; B\":geo:1,2\r\n";
        assert!(updated.contains(location));
        assert!(updated.contains("\r\nX-MOZ-LASTACK:20260102T000000Z\r\n"));
        assert!(updated.contains("\r\nCREATED:20260101T000000Z\r\n"));
        assert!(
            updated.contains("\r\nTRANSP:OPAQUE\r\n"),
            "unmanaged TRANSP is the user's"
        );
        assert!(updated.contains("TZID:Europe/Berlin\r\nBEGIN:STANDARD\r\n"));
        assert!(updated.contains("SUMMARY:user override\r\n"));

        assert_eq!(updated.matches("PRODID:").count(), 1);
        assert!(updated.contains(&format!("\r\nPRODID:{PRODID}\r\n")));
        assert!(!updated.contains("DURATION"));
        assert!(!updated.contains("older"));
        assert_eq!(updated.matches("\r\nSEQUENCE:").count(), 1);
        assert!(updated.contains("\r\nSEQUENCE:4\r\n"));
        assert!(updated.contains("\r\nLAST-MODIFIED:20260502T123005Z\r\n"));
        assert!(updated.contains("\r\nDTSTAMP:20260502T123005Z\r\n"));

        let calendar = ics::parse(&updated).unwrap();
        let original = ics::parse(STORED).unwrap();
        assert_eq!(calendar.children[0], original.children[0], "VTIMEZONE");
        assert_eq!(calendar.children[2], original.children[2], "override");
        assert_eq!(
            calendar.children[1].children, original.children[1].children,
            "VALARM"
        );
        assert_eq!(read_event(&updated).unwrap(), fields);
    }

    #[test]
    fn render_update_starts_sequence_at_one_and_is_stable() {
        let fields = desired(&issue());
        let created = render_new(&fields, stamp());
        let once = render_update(&created, &fields, stamp()).unwrap();
        assert!(once.contains("\r\nSEQUENCE:1\r\n"));
        let twice = render_update(&once, &fields, stamp()).unwrap();
        assert!(twice.contains("\r\nSEQUENCE:2\r\n"));
        assert_eq!(once.replace("SEQUENCE:1", "SEQUENCE:2"), twice);
        assert_eq!(twice.matches("PRODID").count(), 1);
        assert_eq!(twice.matches("TRANSP:TRANSPARENT").count(), 1);
        assert_eq!(read_event(&twice).unwrap(), fields);
    }

    #[test]
    fn render_update_adds_a_missing_prodid_and_version() {
        let stored = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n\
                      UID:plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c@calplanebot\r\n\
                      END:VEVENT\r\nEND:VCALENDAR\r\n";
        let fields = desired(&issue());
        let updated = render_update(stored, &fields, stamp()).unwrap();
        assert!(updated.starts_with(&format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{PRODID}\r\nBEGIN:VEVENT\r\n"
        )));
        assert_eq!(read_event(&updated).unwrap(), fields);
    }

    #[test]
    fn render_update_errors() {
        let fields = desired(&issue());
        for bad in [
            "",
            "garbage",
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR",
        ] {
            assert!(matches!(
                render_update(bad, &fields, stamp()),
                Err(EventError::Malformed(_))
            ));
        }
        let foreign = render_new(&desired(&issue()), stamp()).replace(ISSUE_ID, "other");
        assert!(matches!(
            render_update(&foreign, &fields, stamp()),
            Err(EventError::NoEvent)
        ));
        let only_override = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n\
            UID:plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c@calplanebot\r\n\
            RECURRENCE-ID;VALUE=DATE:20261208\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(matches!(
            render_update(only_override, &fields, stamp()),
            Err(EventError::NoEvent)
        ));
    }

    // --- reading what servers store ---

    /// Folds every line at `width` octets with LF line ends and a TAB continuation, as a
    /// different writer might.
    fn refold(lines: &[&str], width: usize) -> String {
        let mut out = String::new();
        for line in lines {
            let mut rest = *line;
            let mut first = true;
            while !rest.is_empty() {
                let mut cut = rest.len().min(width);
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                if !first {
                    out.push('\t');
                }
                out.push_str(&rest[..cut]);
                out.push('\n');
                rest = &rest[cut..];
                first = false;
            }
        }
        out
    }

    #[test]
    fn read_event_tolerates_a_radicale_style_rewrite() {
        let mut issue = issue();
        issue.name = "Semi; colon, comma \\ back".into();
        issue.labels = vec!["x,y".into(), "plain".into(), "semi;colon".into()];
        issue.priority = Priority::Urgent;
        let fields = desired(&issue);
        let description = ics::escape_text(&fields.description).replace("\\n", "\\N");
        let summary = format!(
            "summary;language=en:{}",
            ics::escape_text(&fields.summary).replace("\\;", ";")
        );
        let description = format!("Description:{description}");
        let url = format!("URL;VALUE=URI:{}", fields.url.as_ref().unwrap());
        let lines = [
            "BEGIN:VCALENDAR",
            "PRODID:-//Radicale//NONSGML Radicale Server//EN",
            "VERSION:2.0",
            "BEGIN:VEVENT",
            "x-calplanebot-project:9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
            "CATEGORIES:plain,semi\\;colon",
            "dtend;value=date:20261225",
            "COLOR:Red",
            &description,
            "UID:plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c@calplanebot",
            "DTSTART:20261224",
            &summary,
            "CATEGORIES:x\\,y",
            "status:confirmed",
            &url,
            "X-CALPLANEBOT-WORKSPACE:acme",
            "DTSTAMP:20260501T123005Z",
            "END:VEVENT",
            "END:VCALENDAR",
        ];
        for width in [20, 60, 74, 200] {
            let text = refold(&lines, width);
            let mut read = read_event(&text).unwrap();
            assert_eq!(read.categories, ["plain", "semi;colon", "x,y"]);
            read.categories = fields.categories.clone();
            assert_eq!(read, fields, "width {width}");
        }
    }

    #[test]
    fn read_event_marks_what_is_missing_or_not_a_date() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:u\n\
                    DTSTART;TZID=Europe/Berlin:20261224T100000\nDURATION:PT1H\n\
                    DESCRIPTION:a\\r\\nb\r\n\
                    END:VEVENT\nEND:VCALENDAR\n";
        let read = read_event(text).unwrap();
        assert_eq!(
            read,
            ManagedFields {
                uid: "u".into(),
                summary: String::new(),
                description: "a\\r\nb".into(),
                dtstart: None,
                dtend: None,
                status: None,
                color: None,
                categories: vec![],
                url: None,
                workspace: None,
                project: None,
                view: None,
            }
        );
        let date_time = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE-TIME:20261224\n\
                         DTEND:2026122\nEND:VEVENT\nEND:VCALENDAR\n";
        let read = read_event(date_time).unwrap();
        assert_eq!((read.dtstart, read.dtend), (None, None));
    }

    #[test]
    fn read_event_normalises_crlf_inside_values() {
        // A writer that put a raw CR (not a line break) into the escaped text.
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDESCRIPTION:a\rb\\nc\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(read_event(text).unwrap().description, "a\nb\nc");
    }

    #[test]
    fn read_event_picks_the_master_not_an_override() {
        let read = read_event(STORED).unwrap();
        assert_eq!(read.summary, "[42] Old name");
        assert_eq!(read.categories, ["old", "older"]);
        assert_eq!(read.dtstart, date(2026, 12, 1));
        assert_eq!(read.dtend, None);
        assert_eq!(read.color.as_deref(), Some("red"));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let deep = "BEGIN:VCALENDAR\n".to_owned()
            + &"BEGIN:X\n".repeat(10_000)
            + &"END:X\n".repeat(10_000)
            + "END:VCALENDAR\n";
        for bad in [
            "",
            "garbage",
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n",
            "BEGIN:VCALENDAR\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n",
            "BEGIN:VCALENDAR\r\nX;Y=\"unterminated:z\r\nEND:VCALENDAR\r\n",
            deep.as_str(),
        ] {
            assert!(
                matches!(read_event(bad), Err(EventError::Malformed(_))),
                "{bad:.60}"
            );
        }
        assert!(matches!(
            read_event(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
            ),
            Err(EventError::NoEvent)
        ));
    }

    #[test]
    fn a_one_mebibyte_description_renders_and_reads_back() {
        let mut issue = issue();
        let paragraph = "<p>Lorem ipsum, dolor; sit \\ amet &amp; 日本語 😀 <em>emphasis</em></p>";
        issue.description_html = paragraph.repeat((1 << 20) / paragraph.len() + 1);
        assert!(issue.description_html.len() > 1 << 20);
        let started = Instant::now();
        let fields = desired(&issue);
        let ics = render_new(&fields, stamp());
        assert_lines_folded(&ics);
        assert_eq!(read_event(&ics).unwrap(), fields);
        let updated = render_update(&ics, &fields, stamp()).unwrap();
        assert_eq!(read_event(&updated).unwrap(), fields);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    // --- identity ---

    #[test]
    fn ids_come_back_from_resource_names_and_uids() {
        assert_eq!(
            issue_id_from_resource_name(&resource_name(ISSUE_ID, None), None),
            Some(ISSUE_ID)
        );
        assert_eq!(
            issue_id_from_uid(&uid_for(ISSUE_ID, None), None),
            Some(ISSUE_ID)
        );
        let upper = ISSUE_ID.to_uppercase();
        assert_eq!(
            issue_id_from_uid(&uid_for(&upper, None), None),
            Some(upper.as_str())
        );
        for name in [
            "plane-issue-.ics",
            "plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c.ICS",
            "plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7.ics",
            "plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7cc.ics",
            "plane-issue-0b6a3c1e08f2d-4e7a-9c1b-2d3e4f5a6b7c.ics",
            "plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7g.ics",
            "plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c@calplanebot",
            "x-plane-issue-0b6a3c1e-8f2d-4e7a-9c1b-2d3e4f5a6b7c.ics",
            "plane-issue-../../etc.ics",
        ] {
            assert_eq!(issue_id_from_resource_name(name, None), None, "{name}");
        }
        assert_eq!(
            issue_id_from_uid(&resource_name(ISSUE_ID, None), None),
            None
        );
        assert_eq!(issue_id_from_uid("plane-issue-1@calplanebot", None), None);
    }

    #[test]
    fn a_views_ids_are_its_own_and_no_other_views() {
        const ALICE: &str = "5d2bb0f2-1c4e-4a7b-9f0e-3a1b2c3d4e5f";
        const BOB: &str = "6e3cc1a3-2d5f-4b8c-a01f-4b2c3d4e5f60";
        let alice = view_id(&[ALICE]);
        assert_eq!(alice.len(), 12);
        assert!(is_view_id(&alice), "{alice}");
        assert_eq!(
            alice,
            view_id(&[&ALICE.to_uppercase()]),
            "case does not matter"
        );
        assert_eq!(
            view_id(&[ALICE, BOB]),
            view_id(&[BOB, ALICE, BOB]),
            "nor order"
        );
        assert_ne!(alice, view_id(&[BOB]));
        assert_ne!(alice, view_id(&[ALICE, BOB]));
        let (mine, other) = (Some(alice.as_str()), view_id(&[BOB]));
        let uid = uid_for(ISSUE_ID, mine);
        let name = resource_name(ISSUE_ID, mine);
        assert_eq!(uid, format!("plane-issue-{ISSUE_ID}-{alice}@calplanebot"));
        assert_eq!(name, format!("plane-issue-{ISSUE_ID}-{alice}.ics"));
        assert_eq!(issue_id_from_uid(&uid, mine), Some(ISSUE_ID));
        assert_eq!(issue_id_from_resource_name(&name, mine), Some(ISSUE_ID));
        assert_eq!(view_of_uid(&uid), mine);
        assert_eq!(view_of_uid(&uid_for(ISSUE_ID, None)), None);
        // Another view's, or the default view's, names are not this view's, and the other way
        // round.
        for foreign in [Some(other.as_str()), None] {
            assert_eq!(issue_id_from_uid(&uid, foreign), None);
            assert_eq!(issue_id_from_resource_name(&name, foreign), None);
        }
        assert_eq!(issue_id_from_uid(&uid_for(ISSUE_ID, None), mine), None);
        // Every view's names, the default one's included, are calplanebot's.
        for name in [&name, &resource_name(ISSUE_ID, None)] {
            assert!(is_resource_name_of_any_view(name), "{name}");
        }
        for name in [
            format!("plane-issue-{ISSUE_ID}-{alice}x.ics"),
            format!("plane-issue-{ISSUE_ID}-.ics"),
            format!("plane-issue-{ISSUE_ID}{alice}.ics"),
            format!("plane-issue-{ISSUE_ID}-{}.ics", alice.to_uppercase()),
            "dentist.ics".to_string(),
        ] {
            assert!(!is_resource_name_of_any_view(&name), "{name}");
        }
        assert_eq!(
            issue_id_from_resource_name(&resource_name(ISSUE_ID, None), mine),
            None
        );
    }

    #[test]
    fn a_views_event_carries_its_mark_and_reads_back_equal() {
        let view = view_id(&["5d2bb0f2-1c4e-4a7b-9f0e-3a1b2c3d4e5f"]);
        let fields = in_view(desired(&issue()), ISSUE_ID, Some(&view));
        let ics = render_new(&fields, stamp());
        assert!(
            ics.contains(&format!("\r\nX-CALPLANEBOT-VIEW:{view}\r\n")),
            "{ics}"
        );
        assert_eq!(read_event(&ics).unwrap(), fields);
        // The default view's event has no mark, and differs from the view's.
        let team = desired(&issue());
        assert!(!render_new(&team, stamp()).contains("X-CALPLANEBOT-VIEW"));
        assert_ne!(read_event(&ics).unwrap(), team);
    }

    #[test]
    fn lines_show_one_field_per_line_and_the_description_indented() {
        let mut fields = desired(&issue());
        fields.summary = "two\nlines".into();
        assert_eq!(
            fields.lines(),
            [
                "SUMMARY: two\\nlines".to_owned(),
                "DTSTART: 2026-12-24".into(),
                "DTEND: 2026-12-25".into(),
                "STATUS: CONFIRMED".into(),
                "COLOR: orange".into(),
                "CATEGORIES: Bug, frontend".into(),
                format!(
                    "URL: https://plane.example.com/acme/projects/{PROJECT_ID}/issues/{ISSUE_ID}"
                ),
                "X-CALPLANEBOT-WORKSPACE: acme".into(),
                format!("X-CALPLANEBOT-PROJECT: {PROJECT_ID}"),
                "DESCRIPTION:".into(),
                "  Users cannot log in.".into(),
                "  ---".into(),
                "  Priority: High".into(),
                "  State: In Progress".into(),
                "  Assignees: adam, Zoe".into(),
                "  Labels: Bug, frontend".into(),
                "  Project: Alpha".into(),
            ]
        );
        let empty = read_event("BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCALENDAR").unwrap();
        let lines = empty.lines();
        assert_eq!(lines[1], "DTSTART: (none)");
        assert_eq!(lines[4], "COLOR: (none)");
        assert_eq!(lines[5], "CATEGORIES: (none)");
        assert_eq!(lines.last().unwrap(), "DESCRIPTION:");
    }
}
