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
    fn keeps(&self, name: &str) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|fields| fields.iter().any(|f| f == name))
    }

    fn expands(&self, name: &str) -> bool {
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
            Json::Arr(
                issue
                    .assignees
                    .iter()
                    .filter_map(|id| world.user(id))
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
