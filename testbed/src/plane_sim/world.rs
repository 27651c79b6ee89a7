//! What the simulated Plane holds: the seed format (a JSON file that can stay minimal because
//! every field has Plane's default) and the [`World`] built from it, which tests edit between
//! runs.
//!
//! A seed may name things instead of spelling UUIDs, so a hand-written one stays readable: an
//! issue's `project` may be the project's id or identifier, its `state` a state id or name, its
//! `labels` label ids or names, its `assignees` user ids, display names or emails. Starting the
//! simulator replaces every name by its id and fills every default, so the [`World`] holds ids
//! only. Missing ids are generated deterministically ([`generated_id`]), so two runs of the same
//! seed see the same UUIDs.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::clock;
use super::json::Json;

/// The API key a seed gets when it names none.
pub const DEFAULT_TOKEN: &str = "plane_api_0123456789abcdef0123456789abcdef";

/// Timestamps generated for seed objects that carry none start here (projects, then their
/// states and labels, then issues one hour apart in seed order). Users come before, one hour
/// apart from [`GENERATED_USERS_EPOCH`].
const GENERATED_EPOCH: &str = "2026-10-01T08:00:00Z";
const GENERATED_USERS_EPOCH: &str = "2026-09-01T08:00:00Z";

/// Plane's workspace roles (`ROLE_CHOICES`).
pub const ROLE_ADMIN: i64 = 20;
pub const ROLE_MEMBER: i64 = 15;
pub const ROLE_GUEST: i64 = 5;

/// A whole simulated workspace, as read from a seed file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    /// Workspace slug (the first path segment of every route).
    pub workspace: String,
    /// Workspace UUID (`workspace` in every object); generated when empty.
    pub workspace_id: String,
    /// Workspace display name (in `expand=workspace`); the slug when empty.
    pub workspace_name: String,
    /// The one valid API key; its owner is the first user.
    pub token: String,
    /// Requests a minute for the key (Plane's `API_KEY_RATE_LIMIT`); `None` = unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// The id of the workspace's one webhook (`webhook_id` of every delivery); generated when
    /// empty, from its own namespace so it does not shift the other generated ids.
    pub webhook_id: String,
    pub users: Vec<SeedUser>,
    pub projects: Vec<SeedProject>,
    pub issues: Vec<SeedIssue>,
}

impl Default for Seed {
    fn default() -> Seed {
        Seed {
            workspace: "acme".to_owned(),
            workspace_id: String::new(),
            workspace_name: String::new(),
            token: DEFAULT_TOKEN.to_owned(),
            rate_limit_per_minute: None,
            webhook_id: String::new(),
            users: Vec::new(),
            projects: Vec::new(),
            issues: Vec::new(),
        }
    }
}

impl Seed {
    /// Reads a seed from JSON text.
    pub fn from_json(text: &str) -> Result<Seed, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The world of the real Plane server the captures in `tests/fixtures/plane/` were taken
    /// from (workspace `acme`, projects ALPHA and BETA, five work items, one of them deleted),
    /// rebuilt from what the captures show: ids, names, timestamps. Tests add what later
    /// captures saw (see `plane_sim_fidelity.rs` and the webhook tests).
    pub fn lab() -> Seed {
        Seed::from_json(include_str!("lab_seed.json")).expect("the lab seed parses")
    }

    /// The world of the captures of 2026-12-02 (`60`-`67` and deliveries `0135`, `0136`): a
    /// fresh lab database with a second member, Bea, and the work item "Team offsite planning"
    /// assigned to both users, as it stood after the last capture. The users' `created_at` is in
    /// no answer, only their order (the admin before Bea), so those two stamps are made up.
    pub fn lab_2026_12_02() -> Seed {
        Seed::from_json(include_str!("lab_2026_12_02_seed.json"))
            .expect("the 2026-12-02 lab seed parses")
    }

    /// The world of the probe captures of 2026-12-07 (`90`-`92`): workspace `perf`, its first
    /// project (identifier `PL01`, named in the descriptions) with 50 work items, rebuilt from
    /// capture `92` (every field it lists, in sequence order). What no capture shows is made
    /// up: the project's name, the state names and groups (the five ids in order of first
    /// use), the label names, and every `created_at` (only their order is known: `92` is
    /// `order_by=created_at`, `90` the default `-created_at`; each is set just below the
    /// earliest `updated_at` of its own and the later items, so it never follows its own
    /// update). The rate limit is the captures' 100000 a minute.
    pub fn lab_2026_12_07_perf() -> Seed {
        Seed::from_json(include_str!("lab_2026_12_07_perf_seed.json"))
            .expect("the 2026-12-07 perf seed parses")
    }

    /// Reads a seed file.
    pub fn from_file(path: impl AsRef<Path>) -> std::io::Result<Seed> {
        let text = std::fs::read_to_string(path.as_ref())?;
        Seed::from_json(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.as_ref().display()),
            )
        })
    }
}

/// A Plane user (UserLite), a member of the workspace. The first user of a seed owns the API
/// key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedUser {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// Generated from the email's local part when empty.
    pub display_name: String,
    /// Plane sends `""` for a user without an uploaded avatar.
    pub avatar: String,
    pub avatar_url: Option<String>,
    /// The workspace role: 20 Admin, 15 Member, 5 Guest (`ROLE_CHOICES`). When absent: 20 for
    /// the key's owner, 15 for everyone else. A Guest's key may not list the workspace's
    /// members (403) but reads the projects it is a member of.
    pub role: Option<i64>,
    /// RFC 3339. Users (and so the members lists and expanded assignees) are ordered newest
    /// first by it; when absent, the seed's users were created one hour apart in seed order,
    /// before anything else of the workspace.
    pub created_at: Option<String>,
}

/// A project of the workspace, with its states and labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedProject {
    pub id: String,
    /// Short uppercase key (`WEB`); Plane forbids `-` in it.
    pub identifier: String,
    pub name: String,
    pub description: String,
    /// Whether the key's owner is an active member. A public (`network: 2`) project the owner
    /// is not a member of is still listed, with `is_member: false`; its issues answer 403.
    pub is_member: bool,
    /// Set on an archived project (a datetime in Plane): listed, but its issues and states
    /// are empty.
    pub archived_at: Option<String>,
    /// 2 = public, 0 = secret (a secret project is invisible to non-members).
    pub network: i64,
    /// Empty in the seed = Plane's default set (Backlog, Todo, In Progress, Done, Cancelled,
    /// Triage).
    pub states: Vec<SeedState>,
    pub labels: Vec<SeedLabel>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// The member's own sort order (Plane's default 65535.0); always `null` for non-members.
    pub sort_order: Option<f64>,
    /// The member's role (20 admin, 15 member, 5 guest); always `null` for non-members. The
    /// owner's workspace role when absent.
    pub member_role: Option<i64>,
    /// The project's members (`…/members/`): user ids, display names or emails. Absent = every
    /// user of the seed. The key's owner is listed exactly when `is_member` is true.
    pub members: Option<Vec<String>>,
    pub total_members: i64,
    pub emoji: Option<String>,
    pub logo_props: Json,
}

impl Default for SeedProject {
    fn default() -> SeedProject {
        SeedProject {
            id: String::new(),
            identifier: String::new(),
            name: String::new(),
            description: String::new(),
            is_member: true,
            archived_at: None,
            network: 2,
            states: Vec::new(),
            labels: Vec::new(),
            created_at: None,
            updated_at: None,
            sort_order: None,
            member_role: None,
            members: None,
            total_members: 1,
            emoji: None,
            logo_props: Json::obj(),
        }
    }
}

/// A workflow state of a project.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedState {
    pub id: String,
    pub name: String,
    /// Plane's default colour of the group when empty.
    pub color: String,
    /// `backlog`, `unstarted`, `started`, `completed`, `cancelled` or `triage`.
    pub group: String,
    pub description: String,
    /// Position; `15000 + 10000 × index` when absent.
    pub sequence: Option<f64>,
    /// The project's default state (new issues get it). When no state says so, the first
    /// backlog state is the default.
    pub default: bool,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// A label of a project.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedLabel {
    pub id: String,
    pub name: String,
    pub color: String,
    pub description: String,
    pub parent: Option<String>,
    /// `65535 + 10000 × index` when absent (Plane appends new labels that way).
    pub sort_order: Option<f64>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// A work item (issue).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedIssue {
    pub id: String,
    /// Project id (or identifier, in a seed).
    pub project: String,
    /// Per-project counter; the next free number when 0.
    pub sequence_id: i64,
    pub name: String,
    pub description_html: String,
    /// `urgent`, `high`, `medium`, `low` or `none`.
    pub priority: String,
    /// State id (or name, in a seed). `None` in a seed means the project's default state, as
    /// Plane assigns on save; set it to `None` in the [`World`] to send `"state": null`.
    pub state: Option<String>,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    /// `YYYY-MM-DD`.
    pub start_date: Option<String>,
    /// `YYYY-MM-DD`: the due date calplanebot mirrors.
    pub target_date: Option<String>,
    /// RFC 3339; generated (increasing in seed order) when absent.
    pub created_at: Option<String>,
    /// RFC 3339; `created_at` when absent.
    pub updated_at: Option<String>,
    /// RFC 3339; `updated_at` when absent and the state is in the `completed` group.
    pub completed_at: Option<String>,
    /// A date `YYYY-MM-DD` (Plane's Issue.archived_at is a DateField). Hidden from the API.
    pub archived_at: Option<String>,
    /// A legacy draft. Hidden from the API.
    pub is_draft: bool,
    /// Soft deletion. Hidden from the API.
    pub deleted_at: Option<String>,
    pub sort_order: f64,
    pub parent: Option<String>,
    /// The key owner when absent.
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub external_source: Option<String>,
    pub external_id: Option<String>,
}

impl Default for SeedIssue {
    fn default() -> SeedIssue {
        SeedIssue {
            id: String::new(),
            project: String::new(),
            sequence_id: 0,
            name: String::new(),
            description_html: "<p></p>".to_owned(),
            priority: "none".to_owned(),
            state: None,
            labels: Vec::new(),
            assignees: Vec::new(),
            start_date: None,
            target_date: None,
            created_at: None,
            updated_at: None,
            completed_at: None,
            archived_at: None,
            is_draft: false,
            deleted_at: None,
            sort_order: 65535.0,
            parent: None,
            created_by: None,
            updated_by: None,
            external_source: None,
            external_id: None,
        }
    }
}

impl SeedIssue {
    /// A new issue with Plane's defaults, for [`World::add_issue`].
    pub fn new(project: impl Into<String>, name: impl Into<String>) -> SeedIssue {
        SeedIssue {
            project: project.into(),
            name: name.into(),
            ..SeedIssue::default()
        }
    }

    /// Builder: sets the due date.
    pub fn due(mut self, target_date: &str) -> SeedIssue {
        self.target_date = Some(target_date.to_owned());
        self
    }
}

/// Plane's `DEFAULT_STATES` for a new project: (name, colour, sequence, group).
const DEFAULT_STATES: [(&str, &str, f64, &str); 6] = [
    ("Backlog", "#60646C", 15000.0, "backlog"),
    ("Todo", "#60646C", 25000.0, "unstarted"),
    ("In Progress", "#F59E0B", 35000.0, "started"),
    ("Done", "#46A758", 45000.0, "completed"),
    ("Cancelled", "#9AA4BC", 55000.0, "cancelled"),
    ("Triage", "#4E5355", 65000.0, "triage"),
];

/// The state groups, in Plane's order (`StateGroup`).
pub const STATE_GROUPS: [&str; 6] = [
    "backlog",
    "unstarted",
    "started",
    "completed",
    "cancelled",
    "triage",
];

/// Issue priorities, most urgent first.
pub const PRIORITIES: [&str; 5] = ["urgent", "high", "medium", "low", "none"];

fn default_color(group: &str) -> &'static str {
    DEFAULT_STATES
        .iter()
        .find(|(_, _, _, g)| *g == group)
        .map_or("#60646C", |(_, color, _, _)| color)
}

/// A deterministic UUID-shaped id (version 4 and variant bits set): the `n`th id of the
/// namespace. Not random, so the same seed yields the same ids on every run.
pub fn generated_id(namespace: &str, n: u64) -> String {
    fn mix(mut z: u64) -> u64 {
        // splitmix64's finaliser.
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    // FNV-1a of the namespace.
    let ns = namespace.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    let hi = (mix(ns ^ mix(n)) & !0xF000) | 0x4000;
    let lo = (mix(hi ^ n.rotate_left(17)) & !(0xC << 60)) | (0x8 << 60);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// The simulated Plane's data. Fields are public so tests can edit anything between runs;
/// the methods cover the common edits.
#[derive(Clone, Debug)]
pub struct World {
    pub workspace: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub token: String,
    /// The id of the workspace's webhook, in every delivery.
    pub webhook_id: String,
    pub users: Vec<SeedUser>,
    pub projects: Vec<SeedProject>,
    pub issues: Vec<SeedIssue>,
    next_id: u64,
    last_micros: i64,
    deliveries: u64,
}

impl World {
    /// Builds the world of a seed: fills defaults, resolves names to ids, checks references.
    pub fn from_seed(seed: Seed) -> Result<World, String> {
        let workspace = if seed.workspace.is_empty() {
            "acme".to_owned()
        } else {
            seed.workspace
        };
        let mut world = World {
            workspace_id: seed.workspace_id,
            workspace_name: if seed.workspace_name.is_empty() {
                workspace.clone()
            } else {
                seed.workspace_name
            },
            workspace,
            token: if seed.token.is_empty() {
                DEFAULT_TOKEN.to_owned()
            } else {
                seed.token
            },
            webhook_id: seed.webhook_id,
            users: Vec::new(),
            projects: Vec::new(),
            issues: Vec::new(),
            next_id: 0,
            last_micros: 0,
            deliveries: 0,
        };
        if world.workspace_id.is_empty() {
            world.workspace_id = world.new_id();
        }
        if world.webhook_id.is_empty() {
            world.webhook_id = generated_id(&format!("{}/webhook", world.workspace), 1);
        }
        let mut users = seed.users;
        if users.is_empty() {
            users.push(SeedUser {
                first_name: "Plane".to_owned(),
                last_name: "User".to_owned(),
                email: "user@example.test".to_owned(),
                ..SeedUser::default()
            });
        }
        let users_epoch = clock::parse_timestamp(GENERATED_USERS_EPOCH).expect("valid constant");
        for (index, mut user) in users.into_iter().enumerate() {
            if user.id.is_empty() {
                user.id = world.new_id();
            }
            if user.display_name.is_empty() {
                user.display_name = user.email.split('@').next().unwrap_or_default().to_owned();
            }
            let role = *user
                .role
                .get_or_insert(if index == 0 { ROLE_ADMIN } else { ROLE_MEMBER });
            if ![ROLE_ADMIN, ROLE_MEMBER, ROLE_GUEST].contains(&role) {
                return Err(format!(
                    "user {:?}: role {role} is not 20, 15 or 5",
                    user.email
                ));
            }
            if user.created_at.is_none() {
                let at = users_epoch + index as i64 * 3_600_000_000;
                user.created_at = Some(clock::format_timestamp(at));
            }
            normalize_timestamp(&mut user.created_at, "user created_at")?;
            world.users.push(user);
        }
        let epoch = clock::parse_timestamp(GENERATED_EPOCH).expect("valid constant");
        for (index, project) in seed.projects.into_iter().enumerate() {
            let generated_at = epoch + index as i64 * 86_400_000_000 + 125_564;
            let project = world.resolve_project(project, generated_at)?;
            world.projects.push(project);
        }
        let first_issue_at = world
            .projects
            .iter()
            .filter_map(|p| p.created_at.as_deref().and_then(clock::parse_timestamp))
            .max()
            .unwrap_or(epoch)
            + 3_600_000_000;
        for (index, mut issue) in seed.issues.into_iter().enumerate() {
            if issue.created_at.is_none() {
                let at = first_issue_at + index as i64 * 3_600_137_531;
                issue.created_at = Some(clock::format_timestamp(at));
            }
            let issue = world
                .resolve_issue(issue)
                .map_err(|e| format!("issue #{}: {e}", index + 1))?;
            world.issues.push(issue);
        }
        world.check_unique_ids()?;
        world.last_micros = world.latest_timestamp();
        Ok(world)
    }

    fn check_unique_ids(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        let ids = self
            .users
            .iter()
            .map(|u| &u.id)
            .chain(self.projects.iter().map(|p| &p.id))
            .chain(
                self.projects
                    .iter()
                    .flat_map(|p| p.states.iter().map(|s| &s.id)),
            )
            .chain(
                self.projects
                    .iter()
                    .flat_map(|p| p.labels.iter().map(|l| &l.id)),
            )
            .chain(self.issues.iter().map(|i| &i.id));
        for id in ids {
            if !seen.insert(id) {
                return Err(format!("id {id} is used twice"));
            }
        }
        let mut identifiers = HashSet::new();
        for project in &self.projects {
            if !identifiers.insert(&project.identifier) {
                return Err(format!(
                    "project identifier {} is used twice",
                    project.identifier
                ));
            }
        }
        Ok(())
    }

    fn latest_timestamp(&self) -> i64 {
        let project_times = self.projects.iter().flat_map(|p| {
            [&p.created_at, &p.updated_at, &p.archived_at]
                .into_iter()
                .chain(p.states.iter().flat_map(|s| [&s.created_at, &s.updated_at]))
                .chain(p.labels.iter().flat_map(|l| [&l.created_at, &l.updated_at]))
        });
        let issue_times = self
            .issues
            .iter()
            .flat_map(|i| [&i.created_at, &i.updated_at, &i.completed_at, &i.deleted_at]);
        let user_times = self.users.iter().map(|u| &u.created_at);
        project_times
            .chain(issue_times)
            .chain(user_times)
            .filter_map(|t| t.as_deref().and_then(clock::parse_timestamp))
            .max()
            .unwrap_or(0)
    }

    fn resolve_project(
        &mut self,
        mut project: SeedProject,
        generated_at: i64,
    ) -> Result<SeedProject, String> {
        if project.identifier.is_empty() || project.identifier.contains('-') {
            return Err(format!(
                "project {:?}: identifier must be non-empty and without '-'",
                project.name
            ));
        }
        if project.id.is_empty() {
            project.id = self.new_id();
        }
        let created = match &project.created_at {
            Some(t) => checked_timestamp(t, "project created_at")?,
            None => generated_at,
        };
        project.created_at = Some(clock::format_timestamp(created));
        if project.updated_at.is_none() {
            project.updated_at = Some(clock::format_timestamp(created + 26));
        }
        normalize_timestamp(&mut project.updated_at, "project updated_at")?;
        normalize_timestamp(&mut project.archived_at, "project archived_at")?;
        let owner_role = self.owner().role.unwrap_or(ROLE_ADMIN);
        if project.is_member {
            project.sort_order.get_or_insert(65535.0);
            project.member_role.get_or_insert(owner_role);
        } else {
            project.sort_order = None;
            project.member_role = None;
        }
        if let Some(members) = project.members.take() {
            let ids = members
                .iter()
                .map(|wanted| {
                    self.find_user(wanted).map(|u| u.id.clone()).ok_or_else(|| {
                        format!("project {}: unknown member {wanted:?}", project.identifier)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            project.members = Some(ids);
        }
        if project.states.is_empty() {
            project.states = DEFAULT_STATES
                .iter()
                .map(|(name, color, sequence, group)| SeedState {
                    name: (*name).to_owned(),
                    color: (*color).to_owned(),
                    group: (*group).to_owned(),
                    sequence: Some(*sequence),
                    ..SeedState::default()
                })
                .collect();
        }
        let mut at = created + 10_817;
        for (index, state) in project.states.iter_mut().enumerate() {
            if !STATE_GROUPS.contains(&state.group.as_str()) {
                return Err(format!(
                    "project {}: state {:?} has unknown group {:?}",
                    project.identifier, state.name, state.group
                ));
            }
            if state.id.is_empty() {
                state.id = self.new_id();
            }
            if state.color.is_empty() {
                state.color = default_color(&state.group).to_owned();
            }
            state
                .sequence
                .get_or_insert(15000.0 + 10000.0 * index as f64);
            fill_times(&mut state.created_at, &mut state.updated_at, &mut at)?;
        }
        if !project.states.iter().any(|s| s.default) {
            let default = project
                .states
                .iter()
                .position(|s| s.group == "backlog")
                .or_else(|| project.states.iter().position(|s| s.group != "triage"));
            if let Some(i) = default {
                project.states[i].default = true;
            }
        }
        for (index, label) in project.labels.iter_mut().enumerate() {
            if label.id.is_empty() {
                label.id = self.new_id();
            }
            label
                .sort_order
                .get_or_insert(65535.0 + 10000.0 * index as f64);
            fill_times(&mut label.created_at, &mut label.updated_at, &mut at)?;
        }
        Ok(project)
    }

    /// Fills an issue's defaults and turns its names into ids.
    fn resolve_issue(&mut self, mut issue: SeedIssue) -> Result<SeedIssue, String> {
        let project = self
            .projects
            .iter()
            .find(|p| p.id == issue.project || p.identifier == issue.project)
            .ok_or_else(|| format!("unknown project {:?}", issue.project))?;
        issue.project = project.id.clone();
        issue.state = match issue.state.take() {
            Some(wanted) => Some(
                project
                    .states
                    .iter()
                    .find(|s| s.id == wanted || s.name == wanted)
                    .map(|s| s.id.clone())
                    .ok_or_else(|| format!("unknown state {wanted:?}"))?,
            ),
            None => project
                .states
                .iter()
                .find(|s| s.default)
                .map(|s| s.id.clone()),
        };
        issue.labels = issue
            .labels
            .iter()
            .map(|wanted| {
                project
                    .labels
                    .iter()
                    .find(|l| l.id == *wanted || l.name == *wanted)
                    .map(|l| l.id.clone())
                    .ok_or_else(|| format!("unknown label {wanted:?}"))
            })
            .collect::<Result<_, _>>()?;
        issue.assignees = issue
            .assignees
            .iter()
            .map(|wanted| {
                self.find_user(wanted)
                    .map(|u| u.id.clone())
                    .ok_or_else(|| format!("unknown assignee {wanted:?}"))
            })
            .collect::<Result<_, _>>()?;
        let completed = issue.state.as_deref().is_some_and(|id| {
            project
                .states
                .iter()
                .any(|s| s.id == id && s.group == "completed")
        });
        if !PRIORITIES.contains(&issue.priority.as_str()) {
            return Err(format!("unknown priority {:?}", issue.priority));
        }
        for (what, date) in [
            ("start_date", &issue.start_date),
            ("target_date", &issue.target_date),
            ("archived_at", &issue.archived_at),
        ] {
            if let Some(d) = date {
                clock::parse_date(d).ok_or_else(|| format!("{what} {d:?} is not YYYY-MM-DD"))?;
            }
        }
        if issue.sequence_id == 0 {
            issue.sequence_id = self.next_sequence_id(&issue.project);
        }
        if issue.id.is_empty() {
            issue.id = self.new_id();
        }
        let created = match &issue.created_at {
            Some(t) => checked_timestamp(t, "created_at")?,
            None => self.tick(),
        };
        issue.created_at = Some(clock::format_timestamp(created));
        if issue.updated_at.is_none() {
            issue.updated_at = issue.created_at.clone();
        }
        normalize_timestamp(&mut issue.updated_at, "updated_at")?;
        normalize_timestamp(&mut issue.completed_at, "completed_at")?;
        normalize_timestamp(&mut issue.deleted_at, "deleted_at")?;
        if completed && issue.completed_at.is_none() {
            issue.completed_at = issue.updated_at.clone();
        }
        if issue.created_by.is_none() {
            issue.created_by = Some(self.owner().id.clone());
        }
        Ok(issue)
    }

    /// A fresh deterministic id.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        generated_id(&self.workspace, self.next_id)
    }

    /// A fresh deterministic `X-Plane-Delivery` id, from a namespace of its own so deliveries
    /// leave the ids of new objects alone.
    pub(crate) fn new_delivery_id(&mut self) -> String {
        self.deliveries += 1;
        generated_id(&format!("{}/delivery", self.workspace), self.deliveries)
    }

    /// The simulated clock: the real time, but always after every timestamp in the world and
    /// strictly increasing, so an edit always looks newer than what came before.
    fn tick(&mut self) -> i64 {
        self.last_micros = clock::now_micros().max(self.last_micros + 1);
        self.last_micros
    }

    /// "Now" on the simulated clock, rendered like Plane renders it.
    pub fn now(&mut self) -> String {
        let now = self.tick();
        clock::format_timestamp(now)
    }

    /// The user who owns the API key.
    pub fn owner(&self) -> &SeedUser {
        &self.users[0]
    }

    pub fn user(&self, id: &str) -> Option<&SeedUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// A user by id, display name or email (how a seed may name one).
    fn find_user(&self, wanted: &str) -> Option<&SeedUser> {
        self.users
            .iter()
            .find(|u| u.id == wanted || u.display_name == wanted || u.email == wanted)
    }

    /// The workspace's users, newest first (Plane's `User` and `WorkspaceMember` order by
    /// `-created_at`; ties keep the seed order).
    pub fn users_newest_first(&self) -> Vec<&SeedUser> {
        let mut users: Vec<&SeedUser> = self.users.iter().collect();
        users.sort_by_key(|u| {
            std::cmp::Reverse(
                u.created_at
                    .as_deref()
                    .and_then(clock::parse_timestamp)
                    .unwrap_or(0),
            )
        });
        users
    }

    /// Whether a user is a member of a project: listed in its `members` (every user when
    /// absent), except the key's owner, whose membership is `is_member` whatever the list says.
    pub fn is_project_member(&self, project: &SeedProject, user_id: &str) -> bool {
        if user_id == self.owner().id {
            return project.is_member;
        }
        project
            .members
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|id| id == user_id))
    }

    /// A project by id or identifier.
    pub fn project(&self, id_or_identifier: &str) -> Option<&SeedProject> {
        self.projects
            .iter()
            .find(|p| p.id == id_or_identifier || p.identifier == id_or_identifier)
    }

    /// A project by id or identifier; panics when there is none.
    pub fn project_mut(&mut self, id_or_identifier: &str) -> &mut SeedProject {
        self.projects
            .iter_mut()
            .find(|p| p.id == id_or_identifier || p.identifier == id_or_identifier)
            .unwrap_or_else(|| panic!("no project {id_or_identifier}"))
    }

    /// The id of a project's state, by state name or (failing that) by group.
    pub fn state_id(&self, project: &str, name_or_group: &str) -> Option<String> {
        let states = &self.project(project)?.states;
        states
            .iter()
            .find(|s| s.name == name_or_group)
            .or_else(|| states.iter().find(|s| s.group == name_or_group))
            .map(|s| s.id.clone())
    }

    /// The id of a project's label, by name.
    pub fn label_id(&self, project: &str, name: &str) -> Option<String> {
        self.project(project)?
            .labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.id.clone())
    }

    pub fn issue(&self, id: &str) -> Option<&SeedIssue> {
        self.issues.iter().find(|i| i.id == id)
    }

    /// An issue for editing, as a save through Plane's API or web app would: `updated_at`
    /// becomes now and `updated_by` the key owner. Panics when there is no such issue.
    pub fn issue_mut(&mut self, id: &str) -> &mut SeedIssue {
        let now = self.now();
        let owner = self.owner().id.clone();
        let issue = self.issue_mut_keep_updated_at(id);
        issue.updated_at = Some(now);
        issue.updated_by = Some(owner);
        issue
    }

    /// An issue for editing without touching `updated_at`, like the changes Plane makes with
    /// `bulk_update` (timeline drag, auto-archive, auto-close). Panics when there is no such
    /// issue.
    pub fn issue_mut_keep_updated_at(&mut self, id: &str) -> &mut SeedIssue {
        self.issues
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("no issue {id}"))
    }

    /// Adds an issue as Plane's create would: defaults filled, names resolved, `created_at`
    /// now (unless given), the next sequence id. Returns its id. Panics on a bad reference.
    pub fn add_issue(&mut self, issue: SeedIssue) -> String {
        let issue = self
            .resolve_issue(issue)
            .unwrap_or_else(|e| panic!("add_issue: {e}"));
        let id = issue.id.clone();
        self.issues.push(issue);
        id
    }

    /// Soft-deletes an issue (`deleted_at` = now), as `DELETE …/work-items/{id}/` does.
    pub fn delete_issue(&mut self, id: &str) {
        let now = self.now();
        self.issue_mut_keep_updated_at(id).deleted_at = Some(now);
    }

    /// Archives an issue (`archived_at` = today) without touching `updated_at`, like Plane's
    /// daily auto-archive.
    pub fn archive_issue(&mut self, id: &str) {
        let today = clock::format_date(self.tick().div_euclid(86_400_000_000));
        self.issue_mut_keep_updated_at(id).archived_at = Some(today);
    }

    /// The sequence id Plane would give the next issue of a project (deleted issues keep
    /// their numbers).
    pub fn next_sequence_id(&self, project_id: &str) -> i64 {
        self.issues
            .iter()
            .filter(|i| i.project == project_id)
            .map(|i| i.sequence_id)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// Whether Plane's `Issue.issue_objects` manager would return this issue: not deleted, not
    /// archived, not a draft, not in a triage state, and its project not archived.
    pub fn is_listable(&self, issue: &SeedIssue) -> bool {
        let Some(project) = self.projects.iter().find(|p| p.id == issue.project) else {
            return false;
        };
        let triage = issue.state.as_deref().is_some_and(|id| {
            project
                .states
                .iter()
                .any(|s| s.id == id && s.group == "triage")
        });
        issue.deleted_at.is_none()
            && issue.archived_at.is_none()
            && !issue.is_draft
            && !triage
            && project.archived_at.is_none()
    }
}

fn checked_timestamp(t: &str, what: &str) -> Result<i64, String> {
    clock::parse_timestamp(t).ok_or_else(|| format!("{what} {t:?} is not an RFC 3339 timestamp"))
}

/// Rewrites a timestamp the way Plane renders it (UTC, `Z`, microseconds), or fails.
fn normalize_timestamp(time: &mut Option<String>, what: &str) -> Result<(), String> {
    if let Some(t) = time {
        *t = clock::format_timestamp(checked_timestamp(t, what)?);
    }
    Ok(())
}

/// Fills missing created/updated stamps of a state or label from a running clock.
fn fill_times(
    created: &mut Option<String>,
    updated: &mut Option<String>,
    at: &mut i64,
) -> Result<(), String> {
    normalize_timestamp(created, "created_at")?;
    normalize_timestamp(updated, "updated_at")?;
    created.get_or_insert_with(|| clock::format_timestamp(*at));
    updated.get_or_insert_with(|| clock::format_timestamp(*at + 15));
    *at += 31_013;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Seed {
        Seed::from_json(
            r#"{
              "workspace": "acme",
              "users": [{"first_name": "Ada", "email": "ada@acme.test"}],
              "projects": [{"identifier": "WEB", "name": "Web", "labels": [{"name": "bug"}]}],
              "issues": [
                {"project": "WEB", "name": "One", "state": "Done", "labels": ["bug"],
                 "assignees": ["ada"], "target_date": "2026-12-31"},
                {"project": "WEB", "name": "Two"}
              ]
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn names_resolve_to_ids_and_defaults_fill() {
        let world = World::from_seed(seed()).unwrap();
        let web = &world.projects[0];
        assert_eq!(web.states.len(), 6);
        assert!(web.states[0].default);
        let one = &world.issues[0];
        assert_eq!(one.project, web.id);
        assert_eq!(one.state.as_deref(), Some(web.states[3].id.as_str()));
        assert_eq!(one.labels, [web.labels[0].id.clone()]);
        assert_eq!(one.assignees, [world.users[0].id.clone()]);
        assert_eq!(one.sequence_id, 1);
        assert_eq!(one.completed_at, one.updated_at);
        let two = &world.issues[1];
        assert_eq!(two.sequence_id, 2);
        assert_eq!(two.state.as_deref(), Some(web.states[0].id.as_str()));
        assert!(two.created_at > one.created_at);
    }

    #[test]
    fn generation_is_deterministic() {
        let a = World::from_seed(seed()).unwrap();
        let b = World::from_seed(seed()).unwrap();
        assert_eq!(a.issues[0].id, b.issues[0].id);
        assert_eq!(a.issues[0].id.len(), 36);
        assert_eq!(&a.issues[0].id[14..15], "4");
    }

    #[test]
    fn bad_references_are_reported() {
        let mut s = seed();
        s.issues[0].state = Some("Nope".to_owned());
        let err = World::from_seed(s).unwrap_err();
        assert!(err.contains("unknown state"), "{err}");
    }

    #[test]
    fn edits_move_the_clock_forward() {
        let mut world = World::from_seed(seed()).unwrap();
        let id = world.issues[0].id.clone();
        let before = world.issues[0].updated_at.clone();
        world.issue_mut(&id).name = "Renamed".to_owned();
        assert!(world.issues[0].updated_at > before);
        world.delete_issue(&id);
        assert!(!world.is_listable(&world.issues[0]));
        let new = world.add_issue(SeedIssue::new("WEB", "Three").due("2027-01-05"));
        assert_eq!(world.issue(&new).unwrap().sequence_id, 3);
    }
}
