//! The JSON shapes of Plane's v1 serializers (`plane/api/serializers/*.py` in CE 1.3.1), key for
//! key and in Plane's key order, with the `fields=` / `expand=` behaviour of `BaseSerializer`.
//!
//! Plane's rules, reproduced literally (quirks included):
//! - `fields=a,b` drops every other declared field; unknown names are ignored.
//! - `expand=x` acts only on a kept field `x`, in the order the names are given. A field with an
//!   expansion serializer (state, project, workspace, parent, created_by, …) becomes that object;
//!   a null foreign key becomes `{}` (DRF renders a serializer without an instance as its empty
//!   initial data). Any other kept field becomes `getattr(instance, "<x>_id")`, i.e. `null`.
//! - `labels`/`assignees` are write-only fields that `IssueSerializer.to_representation` appends
//!   (assignees first). Expanding one inserts its key at that point of the expand loop, which is
//!   why `expand=state,labels,assignees` puts `labels` before `assignees`.

use super::clock;
use super::json::Json;
use super::world::{SeedIssue, SeedLabel, SeedProject, SeedState, SeedUser, World};

/// The `fields` and `expand` query parameters of one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shape {
    /// `None` = every field.
    pub fields: Option<Vec<String>>,
    pub expand: Vec<String>,
}

impl Shape {
    pub(crate) fn keeps(&self, name: &str) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|fields| fields.iter().any(|f| f == name))
    }

    pub(crate) fn expands(&self, name: &str) -> bool {
        self.keeps(name) && self.expand.iter().any(|e| e == name)
    }
}

/// Applies `fields` then `expand` to an object's readable fields. `write_only` names count as
/// fields for both (they are declared), but are not rendered here. `expansion` gives the
/// expanded value of a field, or `None` for fields without an expansion serializer.
fn apply_shape(
    readable: Vec<(&'static str, Json)>,
    write_only: &[&str],
    shape: &Shape,
    expansion: impl Fn(&str) -> Option<Json>,
) -> Json {
    let declared: Vec<&str> = readable
        .iter()
        .map(|(k, _)| *k)
        .chain(write_only.iter().copied())
        .collect();
    let mut out = Json::Obj(
        readable
            .into_iter()
            .filter(|(k, _)| shape.keeps(k))
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    );
    for name in &shape.expand {
        if declared.contains(&name.as_str()) && shape.keeps(name) {
            out.set(name, expansion(name).unwrap_or(Json::Null));
        }
    }
    out
}

/// A lite serializer of an optional related object: `{}` when there is none (see module doc).
fn lite_or_empty<T>(related: Option<T>, lite: impl Fn(T) -> Json) -> Json {
    related.map_or_else(Json::obj, lite)
}

/// UserLite.
pub(crate) fn user_lite(user: &SeedUser) -> Json {
    Json::obj()
        .with("id", Json::str(&user.id))
        .with("first_name", Json::str(&user.first_name))
        .with("last_name", Json::str(&user.last_name))
        .with("email", Json::str(&user.email))
        .with("avatar", Json::str(&user.avatar))
        .with("avatar_url", Json::opt_str(user.avatar_url.as_deref()))
        .with("display_name", Json::str(&user.display_name))
}

/// One entry of the workspace members list: UserLite plus the workspace `role`, added by the
/// view after serializing (`WorkspaceMemberAPIEndpoint.get`).
pub(crate) fn workspace_member(user: &SeedUser) -> Json {
    let mut out = user_lite(user);
    out.set("role", user.role.map_or(Json::Null, Json::Int));
    out
}

/// WorkspaceLite.
fn workspace_lite(world: &World) -> Json {
    Json::obj()
        .with("name", Json::str(&world.workspace_name))
        .with("slug", Json::str(&world.workspace))
        .with("id", Json::str(&world.workspace_id))
}

/// ProjectLite.
fn project_lite(project: &SeedProject) -> Json {
    Json::obj()
        .with("id", Json::str(&project.id))
        .with("identifier", Json::str(&project.identifier))
        .with("name", Json::str(&project.name))
        .with("cover_image", Json::Null)
        .with("icon_prop", Json::Null)
        .with("emoji", Json::opt_str(project.emoji.as_deref()))
        .with("description", Json::str(&project.description))
        .with("cover_image_url", Json::Null)
}

/// StateLite.
fn state_lite(state: &SeedState) -> Json {
    Json::obj()
        .with("id", Json::str(&state.id))
        .with("name", Json::str(&state.name))
        .with("color", Json::str(&state.color))
        .with("group", Json::str(&state.group))
}

/// Expansions every serializer shares (`BaseSerializer`'s map), for an object of `project`.
fn common_expansion(
    world: &World,
    project: &SeedProject,
    name: &str,
    created_by: Option<&str>,
    updated_by: Option<&str>,
) -> Option<Json> {
    let user = |id: Option<&str>| lite_or_empty(id.and_then(|id| world.user(id)), user_lite);
    match name {
        "workspace" => Some(workspace_lite(world)),
        "project" => Some(project_lite(project)),
        "created_by" => Some(user(created_by)),
        "updated_by" => Some(user(updated_by)),
        _ => None,
    }
}

fn owner_id(world: &World) -> Json {
    Json::str(&world.owner().id)
}

/// A project as the project list (`in_list`, which adds the member's `sort_order`) or the
/// project detail renders it (`ProjectSerializer` with the view's annotations).
pub(crate) fn project(world: &World, project: &SeedProject, in_list: bool, shape: &Shape) -> Json {
    let mut fields: Vec<(&'static str, Json)> = vec![
        ("id", Json::str(&project.id)),
        ("total_members", Json::Int(project.total_members)),
        ("total_cycles", Json::Int(0)),
        ("total_modules", Json::Int(0)),
        ("is_member", Json::Bool(project.is_member)),
    ];
    if in_list {
        fields.push((
            "sort_order",
            project.sort_order.map_or(Json::Null, Json::Float),
        ));
    }
    fields.extend([
        (
            "member_role",
            project.member_role.map_or(Json::Null, Json::Int),
        ),
        ("is_deployed", Json::Bool(false)),
        ("cover_image_url", Json::Null),
        ("created_at", Json::opt_str(project.created_at.as_deref())),
        ("updated_at", Json::opt_str(project.updated_at.as_deref())),
        ("deleted_at", Json::Null),
        ("name", Json::str(&project.name)),
        ("description", Json::str(&project.description)),
        ("description_text", Json::Null),
        ("description_html", Json::Null),
        ("network", Json::Int(project.network)),
        ("identifier", Json::str(&project.identifier)),
        ("emoji", Json::opt_str(project.emoji.as_deref())),
        ("icon_prop", Json::Null),
        ("module_view", Json::Bool(false)),
        ("cycle_view", Json::Bool(false)),
        ("issue_views_view", Json::Bool(false)),
        ("page_view", Json::Bool(true)),
        ("intake_view", Json::Bool(false)),
        ("is_time_tracking_enabled", Json::Bool(false)),
        ("is_issue_type_enabled", Json::Bool(false)),
        ("guest_view_all_features", Json::Bool(false)),
        ("cover_image", Json::Null),
        ("archive_in", Json::Int(0)),
        ("close_in", Json::Int(0)),
        ("logo_props", project.logo_props.clone()),
        ("archived_at", Json::opt_str(project.archived_at.as_deref())),
        ("timezone", Json::str("UTC")),
        ("external_source", Json::Null),
        ("external_id", Json::Null),
        ("created_by", owner_id(world)),
        ("updated_by", Json::Null),
        ("workspace", Json::str(&world.workspace_id)),
        ("default_assignee", Json::Null),
        ("project_lead", Json::Null),
        ("cover_image_asset", Json::Null),
        ("estimate", Json::Null),
        ("default_state", Json::Null),
    ]);
    let owner = world.owner().id.as_str();
    apply_shape(fields, &[], shape, |name| match name {
        "default_assignee" | "project_lead" => Some(Json::obj()),
        _ => common_expansion(world, project, name, Some(owner), None),
    })
}

/// A state (`StateSerializer`, all model fields).
pub(crate) fn state(
    world: &World,
    project: &SeedProject,
    state: &SeedState,
    shape: &Shape,
) -> Json {
    let fields = vec![
        ("id", Json::str(&state.id)),
        ("created_at", Json::opt_str(state.created_at.as_deref())),
        ("updated_at", Json::opt_str(state.updated_at.as_deref())),
        ("deleted_at", Json::Null),
        ("name", Json::str(&state.name)),
        ("description", Json::str(&state.description)),
        ("color", Json::str(&state.color)),
        ("slug", Json::str("")),
        ("sequence", Json::Float(state.sequence.unwrap_or(65535.0))),
        ("group", Json::str(&state.group)),
        ("is_triage", Json::Bool(state.group == "triage")),
        ("default", Json::Bool(state.default)),
        ("external_source", Json::Null),
        ("external_id", Json::Null),
        ("created_by", owner_id(world)),
        ("updated_by", Json::Null),
        ("project", Json::str(&project.id)),
        ("workspace", Json::str(&world.workspace_id)),
    ];
    let owner = world.owner().id.as_str();
    apply_shape(fields, &[], shape, |name| {
        common_expansion(world, project, name, Some(owner), None)
    })
}

/// A label (`LabelSerializer`, all model fields).
pub(crate) fn label(
    world: &World,
    project: &SeedProject,
    label: &SeedLabel,
    shape: &Shape,
) -> Json {
    let fields = vec![
        ("id", Json::str(&label.id)),
        ("created_at", Json::opt_str(label.created_at.as_deref())),
        ("updated_at", Json::opt_str(label.updated_at.as_deref())),
        ("deleted_at", Json::Null),
        ("name", Json::str(&label.name)),
        ("description", Json::str(&label.description)),
        ("color", Json::str(&label.color)),
        (
            "sort_order",
            Json::Float(label.sort_order.unwrap_or(65535.0)),
        ),
        ("external_source", Json::Null),
        ("external_id", Json::Null),
        ("created_by", owner_id(world)),
        ("updated_by", Json::Null),
        ("workspace", Json::str(&world.workspace_id)),
        ("project", Json::str(&project.id)),
        ("parent", Json::opt_str(label.parent.as_deref())),
    ];
    let owner = world.owner().id.as_str();
    apply_shape(fields, &[], shape, |name| match name {
        "parent" => Some(lite_or_empty(label.parent.as_deref(), |id| {
            Json::obj().with("id", Json::str(id))
        })),
        _ => common_expansion(world, project, name, Some(owner), None),
    })
}

fn label_created(label: &SeedLabel) -> i64 {
    label
        .created_at
        .as_deref()
        .and_then(clock::parse_timestamp)
        .unwrap_or(0)
}

/// The labels of a project, as Plane's `Label` model orders them (newest first).
pub(crate) fn labels_newest_first(project: &SeedProject) -> Vec<&SeedLabel> {
    let mut labels: Vec<&SeedLabel> = project.labels.iter().collect();
    labels.sort_by_key(|l| std::cmp::Reverse(label_created(l)));
    labels
}

/// A work item (`IssueSerializer`: model fields minus `description_json`/`description_stripped`,
/// then `assignees` and `labels`).
pub(crate) fn issue(world: &World, issue: &SeedIssue, shape: &Shape) -> Json {
    let project = world
        .projects
        .iter()
        .find(|p| p.id == issue.project)
        .expect("issues belong to a project of the world");
    let state = issue
        .state
        .as_deref()
        .and_then(|id| project.states.iter().find(|s| s.id == id));
    let fields = vec![
        ("id", Json::str(&issue.id)),
        ("type_id", Json::Null),
        ("created_at", Json::opt_str(issue.created_at.as_deref())),
        ("updated_at", Json::opt_str(issue.updated_at.as_deref())),
        ("deleted_at", Json::opt_str(issue.deleted_at.as_deref())),
        ("point", Json::Null),
        ("name", Json::str(&issue.name)),
        ("description_html", Json::str(&issue.description_html)),
        ("description_binary", Json::Null),
        ("priority", Json::str(&issue.priority)),
        ("start_date", Json::opt_str(issue.start_date.as_deref())),
        ("target_date", Json::opt_str(issue.target_date.as_deref())),
        ("sequence_id", Json::Int(issue.sequence_id)),
        ("sort_order", Json::Float(issue.sort_order)),
        ("completed_at", Json::opt_str(issue.completed_at.as_deref())),
        ("archived_at", Json::opt_str(issue.archived_at.as_deref())),
        ("is_draft", Json::Bool(issue.is_draft)),
        (
            "external_source",
            Json::opt_str(issue.external_source.as_deref()),
        ),
        ("external_id", Json::opt_str(issue.external_id.as_deref())),
        ("created_by", Json::opt_str(issue.created_by.as_deref())),
        ("updated_by", Json::opt_str(issue.updated_by.as_deref())),
        ("project", Json::str(&project.id)),
        ("workspace", Json::str(&world.workspace_id)),
        ("parent", Json::opt_str(issue.parent.as_deref())),
        ("state", Json::opt_str(issue.state.as_deref())),
        ("estimate_point", Json::Null),
        ("type", Json::Null),
    ];
    let mut out = apply_shape(fields, &["assignees", "labels"], shape, |name| match name {
        "state" => Some(lite_or_empty(state, state_lite)),
        "parent" => Some(lite_or_empty(issue.parent.as_deref(), |id| {
            let parent = world.issue(id);
            Json::obj()
                .with("id", Json::str(id))
                .with(
                    "sequence_id",
                    parent.map_or(Json::Null, |p| Json::Int(p.sequence_id)),
                )
                .with(
                    "project_id",
                    parent.map_or(Json::Null, |p| Json::str(&p.project)),
                )
        })),
        // QUIRK: EstimatePointSerializer is not simulated; estimates are always null here.
        "estimate_point" => Some(Json::Null),
        _ => common_expansion(
            world,
            project,
            name,
            issue.created_by.as_deref(),
            issue.updated_by.as_deref(),
        ),
    });
    if shape.keeps("assignees") {
        let value = if shape.expands("assignees") {
            // `User.objects.filter(pk__in=…)`: the model's order (newest user first), not the
            // order of assignment (captures 66, 67).
            Json::Arr(
                world
                    .users_newest_first()
                    .into_iter()
                    .filter(|u| issue.assignees.contains(&u.id))
                    .map(user_lite)
                    .collect(),
            )
        } else {
            Json::Arr(issue.assignees.iter().map(Json::str).collect())
        };
        out.set("assignees", value);
    }
    if shape.keeps("labels") {
        let value = if shape.expands("labels") {
            // `Label.objects.filter(pk__in=…)`: the model's order (newest first), not the issue's.
            let mut chosen: Vec<(&SeedProject, &SeedLabel)> = world
                .projects
                .iter()
                .flat_map(|p| p.labels.iter().map(move |l| (p, l)))
                .filter(|(_, l)| issue.labels.contains(&l.id))
                .collect();
            chosen.sort_by_key(|(_, l)| std::cmp::Reverse(label_created(l)));
            Json::Arr(
                chosen
                    .into_iter()
                    .map(|(p, l)| label(world, p, l, &Shape::default()))
                    .collect(),
            )
        } else {
            Json::Arr(issue.labels.iter().map(Json::str).collect())
        };
        out.set("labels", value);
    }
    out
}

/// LabelLite.
fn label_lite(label: &SeedLabel) -> Json {
    Json::obj()
        .with("id", Json::str(&label.id))
        .with("name", Json::str(&label.name))
        .with("color", Json::str(&label.color))
}

/// A work item as Plane's webhook sender renders it: `IssueExpandSerializer` with
/// `expand=["labels", "assignees"]` (`plane/api/serializers/issue.py`, `fields = "__all__"`).
///
/// DRF's field order for `__all__` is the pk, the declared fields, the model's plain fields,
/// then its forward relations. Declared: `cycle` and `module` (always skipped: their source
/// `issue_cycle.cycle` hits a reverse-relation manager, which has no `cycle`), `labels` as
/// LabelLite, `assignees` as UserLite (both in the `IssueLabel`/`IssueAssignee` order, the same
/// order as the REST id lists), `state` as StateLite (`null` without a state) and
/// `description` (the `description_json` contents). Unlike the REST shape there is no
/// `type_id`, and `description_json`, `description_stripped` and `description_binary` are
/// present. Checked key for key against `tests/fixtures/plane/webhooks/*-0001.body`.
pub(crate) fn issue_for_webhook(world: &World, issue: &SeedIssue) -> Json {
    let project = world
        .projects
        .iter()
        .find(|p| p.id == issue.project)
        .expect("issues belong to a project of the world");
    let state = issue
        .state
        .as_deref()
        .and_then(|id| project.states.iter().find(|s| s.id == id));
    let labels = issue
        .labels
        .iter()
        .filter_map(|id| {
            world
                .projects
                .iter()
                .flat_map(|p| p.labels.iter())
                .find(|l| l.id == *id)
        })
        .map(label_lite)
        .collect();
    let assignees = issue
        .assignees
        .iter()
        .filter_map(|id| world.user(id))
        .map(user_lite)
        .collect();
    // QUIRK: the simulator keeps no ProseMirror document; an issue created through the API
    // with only `description_html` has Plane's default `{}` here too.
    let description_json = Json::obj();
    // `Issue.save` strips the HTML on every save (`None` for an empty string).
    let stripped = if issue.description_html.is_empty() {
        Json::Null
    } else {
        Json::str(strip_tags(&issue.description_html))
    };
    Json::obj()
        .with("id", Json::str(&issue.id))
        .with("labels", Json::Arr(labels))
        .with("assignees", Json::Arr(assignees))
        .with("state", state.map_or(Json::Null, state_lite))
        .with("description", description_json.clone())
        .with("created_at", Json::opt_str(issue.created_at.as_deref()))
        .with("updated_at", Json::opt_str(issue.updated_at.as_deref()))
        .with("deleted_at", Json::opt_str(issue.deleted_at.as_deref()))
        .with("point", Json::Null)
        .with("name", Json::str(&issue.name))
        .with("description_json", description_json)
        .with("description_html", Json::str(&issue.description_html))
        .with("description_stripped", stripped)
        .with("description_binary", Json::Null)
        .with("priority", Json::str(&issue.priority))
        .with("start_date", Json::opt_str(issue.start_date.as_deref()))
        .with("target_date", Json::opt_str(issue.target_date.as_deref()))
        .with("sequence_id", Json::Int(issue.sequence_id))
        .with("sort_order", Json::Float(issue.sort_order))
        .with("completed_at", Json::opt_str(issue.completed_at.as_deref()))
        .with("archived_at", Json::opt_str(issue.archived_at.as_deref()))
        .with("is_draft", Json::Bool(issue.is_draft))
        .with(
            "external_source",
            Json::opt_str(issue.external_source.as_deref()),
        )
        .with("external_id", Json::opt_str(issue.external_id.as_deref()))
        .with("created_by", Json::opt_str(issue.created_by.as_deref()))
        .with("updated_by", Json::opt_str(issue.updated_by.as_deref()))
        .with("project", Json::str(&project.id))
        .with("workspace", Json::str(&world.workspace_id))
        .with("parent", Json::opt_str(issue.parent.as_deref()))
        .with("estimate_point", Json::Null)
        .with("type", Json::Null)
}

/// A project as Plane's webhook sender renders it: `ProjectSerializer` on a plain
/// `Project.objects.get`, so the declared fields fed by the views' annotations
/// (`total_members`, `total_cycles`, `total_modules`, `is_member`, `sort_order`,
/// `member_role`, `is_deployed`) are skipped and `cover_image_url` (a model property) leads.
/// Checked key for key against `tests/fixtures/plane/webhooks/*-0005.body`.
pub(crate) fn project_for_webhook(world: &World, project: &SeedProject) -> Json {
    let mut out = self::project(world, project, false, &Shape::default());
    for annotation in [
        "total_members",
        "total_cycles",
        "total_modules",
        "is_member",
        "sort_order",
        "member_role",
        "is_deployed",
    ] {
        out.remove(annotation);
    }
    out
}

/// Plane's `strip_tags` (`plane/utils/html_processor.py`): the text `html.parser.HTMLParser`
/// hands to `handle_data` with `convert_charrefs=True` after one `feed` (no `close`). So tags,
/// comments, declarations and processing instructions go; character references are decoded;
/// a `<` that starts nothing is text; and what the parser still holds back at the end (an
/// unfinished tag, or trailing text whose last `&` may begin an unfinished reference) is lost.
/// QUIRK: only `amp`, `lt`, `gt`, `quot`, `apos` and `nbsp` of the HTML5 named references are
/// decoded (others stay as written), numeric references in the C1 range are not remapped to
/// windows-1252, and `<script>`/`<style>` contents are treated like any other text.
pub(crate) fn strip_tags(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < html.len() {
        let Some(lt) = html[i..].find('<').map(|at| i + at) else {
            // Trailing text: held back while its last `&` could still grow into a reference.
            let tail = &html[i..];
            let window = html.len().saturating_sub(34).max(i);
            if let Some(amp) = html[window..].rfind('&').map(|at| window + at)
                && !html[amp..].contains(|c: char| c.is_whitespace() || c == ';')
            {
                break;
            }
            out.push_str(&unescape(tail));
            break;
        };
        out.push_str(&unescape(&html[i..lt]));
        let next = bytes.get(lt + 1).copied();
        let end = match next {
            Some(b) if b.is_ascii_alphabetic() => tag_end(html, lt + 1),
            Some(b'/') if bytes.get(lt + 2).is_some_and(u8::is_ascii_alphabetic) => {
                tag_end(html, lt + 2)
            }
            Some(b'!') if html[lt..].starts_with("<!--") => {
                html[lt + 4..].find("-->").map(|at| lt + 4 + at + 3)
            }
            Some(b'!' | b'?' | b'/') => html[lt..].find('>').map(|at| lt + at + 1),
            Some(_) => {
                out.push('<');
                Some(lt + 1)
            }
            None => None,
        };
        match end {
            Some(end) => i = end,
            // An unfinished construct at the end stays in the parser's buffer.
            None => break,
        }
    }
    out
}

/// The end (past `>`) of a tag whose name starts at `from`, skipping quoted attribute values.
fn tag_end(html: &str, from: usize) -> Option<usize> {
    let mut quote = None;
    for (at, c) in html[from..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(from + at + 1),
            (None, _) => {}
        }
    }
    None
}

/// `html.unescape` for the references [`strip_tags`] knows.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match reference(after) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the reference at the start of `s` (just after `&`): its text and the bytes used.
fn reference(s: &str) -> Option<(String, usize)> {
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix, skip) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16, 2),
            None => (num, 10, 1),
        };
        let len = digits
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits.len());
        if len == 0 {
            return None;
        }
        let code = u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX);
        let c = match code {
            0 => '\u{FFFD}',
            code => char::from_u32(code).unwrap_or('\u{FFFD}'),
        };
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some((c.to_string(), skip + len + semicolon));
    }
    const NAMED: [(&str, &str); 6] = [
        ("amp", "&"),
        ("lt", "<"),
        ("gt", ">"),
        ("quot", "\""),
        ("apos", "'"),
        ("nbsp", "\u{a0}"),
    ];
    NAMED.iter().find_map(|(name, text)| {
        let after = s.strip_prefix(name)?;
        if after.starts_with(';') {
            Some(((*text).to_owned(), name.len() + 1))
        } else if *name != "apos" {
            // HTML5 also accepts these legacy names without the semicolon.
            Some(((*text).to_owned(), name.len()))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::strip_tags;

    #[test]
    fn strip_tags_follows_pythons_html_parser() {
        // Expected values from CPython 3's `html.parser` with Plane's MLStripper.
        assert_eq!(strip_tags("<p></p>"), "");
        assert_eq!(
            strip_tags("<p>Users get logged out after <b>5 min</b>.</p>"),
            "Users get logged out after 5 min."
        );
        assert_eq!(
            strip_tags(
                "<p class=\"x>y\">a &amp; b &lt;c&gt; &#233;&#x1F600; &nbsp;x</p>\
                 <!-- hidden --><p>2 < 3</p>"
            ),
            "a & b <c> é😀 \u{a0}x2 < 3"
        );
        assert_eq!(strip_tags("<p>AT&T</p>"), "AT&T");
        assert_eq!(strip_tags("AT&T"), "");
        assert_eq!(strip_tags("plain"), "plain");
        assert_eq!(strip_tags("<p>a</p>trailing <"), "atrailing ");
    }
}
