//! Assignee views (`--assignee`): whom each WHO of the configuration names among the
//! workspace's members, and what a view is — its members, its id (the `{view}` of every UID,
//! resource name and `X-CALPLANEBOT-VIEW` mark it writes), which issues it wants and where its
//! calendar is. Pure: the caller fetches `users/me/` and the members list.

use crate::mapping::event;
use crate::plane::{Assignee, Issue, Member, User, is_uuid};

/// One person a view is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewMember {
    /// The member's UUID, as in an issue's assignees.
    pub id: String,
    /// Plane's display name (the name of the calendar); the UUID when Plane gave none.
    pub display_name: String,
    /// The e-mail address, when known (for `check`).
    pub email: String,
}

/// An assignee view: the dated issues assigned to any of its members, in one calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// [`event::view_id`] of the members.
    pub id: String,
    pub members: Vec<ViewMember>,
}

impl View {
    pub fn new(members: Vec<ViewMember>) -> View {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        View {
            id: event::view_id(&ids),
            members,
        }
    }

    /// Whether the issue is assigned to a member of the view.
    pub fn wants(&self, issue: &Issue) -> bool {
        issue.assignees.iter().any(|a| {
            self.members
                .iter()
                .any(|m| m.id.eq_ignore_ascii_case(&a.id))
        })
    }

    /// The members' display names, for the calendar's name and the log.
    pub fn label(&self) -> String {
        self.members
            .iter()
            .map(|m| m.display_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The calendar name of the view: the configured one (`CALPLANEBOT_CALENDAR_NAME`), else
    /// `Plane: {display name}`.
    pub fn calendar_name(&self, configured: Option<&str>) -> String {
        match configured {
            Some(name) => crate::support::text::server_text(name),
            None => crate::support::text::server_text(&format!("Plane: {}", self.label())),
        }
    }

    /// Where the view's calendar is in the calendar home: `{home}plane-member-{member_id}/`
    /// (a home-mode view has one member).
    pub fn calendar_url(&self, home: &str) -> String {
        let id = self.members.first().map_or("", |m| m.id.as_str());
        format!("{home}plane-member-{id}/")
    }

    /// The key of the view's calendar in the calendar-location cache: its member's id.
    pub fn cache_key(&self) -> &str {
        self.members.first().map_or("", |m| m.id.as_str())
    }
}

/// "1 dated issue", "3 dated issues": what a view holds, for `check` and the plan.
pub fn dated_issues(count: usize) -> String {
    match count {
        1 => "1 dated issue".to_string(),
        n => format!("{n} dated issues"),
    }
}

/// The views of a run: one per member in a calendar home, one for all of them in
/// single-calendar mode (their issues together, each once).
pub fn views(members: Vec<ViewMember>, single_calendar: bool) -> Vec<View> {
    if members.is_empty() {
        Vec::new()
    } else if single_calendar {
        vec![View::new(members)]
    } else {
        members.into_iter().map(|m| View::new(vec![m])).collect()
    }
}

/// What a run knows of the workspace's people when it resolves the WHOs.
#[derive(Clone, Copy, Debug)]
pub struct Directory<'a> {
    /// The key's user (`users/me/`), when a WHO is `me`.
    pub me: Option<&'a User>,
    /// The workspace's members; `None` when the key may not read the list (a Guest's key).
    pub members: Option<&'a [Member]>,
    /// Every assignee of the issues fetched: whom a key without the members list can name.
    pub seen: &'a [Assignee],
}

/// Whether a WHO is `me`.
pub fn is_me(who: &str) -> bool {
    who.trim().eq_ignore_ascii_case("me")
}

/// Resolves each WHO (`me`, an e-mail address, a display name, a member UUID) to one member;
/// the same member named twice counts once. `Err` names the WHO that matches nobody, or more
/// than one member, and what to give instead.
pub fn resolve(whos: &[String], directory: Directory<'_>) -> Result<Vec<ViewMember>, String> {
    let mut resolved: Vec<ViewMember> = Vec::new();
    for who in whos.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
        let member = resolve_one(who, directory)?;
        if !resolved
            .iter()
            .any(|m| m.id.eq_ignore_ascii_case(&member.id))
        {
            resolved.push(member);
        }
    }
    Ok(resolved)
}

fn resolve_one(who: &str, directory: Directory<'_>) -> Result<ViewMember, String> {
    let of_member = |m: &Member| ViewMember {
        id: m.id.clone(),
        display_name: name_or_id(&m.display_name, &m.name, &m.id),
        email: m.email.clone(),
    };
    let of_user = |u: &User| ViewMember {
        id: u.id.clone(),
        display_name: name_or_id(&u.display_name, "", &u.id),
        email: u.email.clone(),
    };
    let of_seen = |a: &Assignee| ViewMember {
        id: a.id.clone(),
        display_name: name_or_id(&a.name, "", &a.id),
        email: String::new(),
    };
    let one = |found: Vec<ViewMember>, what: &str| match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(format!(
            "--assignee {who:?} matches no member of the workspace{what}"
        )),
        n => Err(format!(
            "--assignee {who:?} matches {n} members of the workspace ({}); give an e-mail address or a member UUID",
            found
                .iter()
                .map(|m| m.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    if is_me(who) {
        return directory
            .me
            .map(of_user)
            .ok_or_else(|| "--assignee me: the key's user is not known".to_string());
    }
    let matching = |members: &[Member], keep: &dyn Fn(&Member) -> bool| -> Vec<ViewMember> {
        members.iter().filter(|m| keep(m)).map(of_member).collect()
    };
    let unlisted = " (the API key may not read the workspace's members list, so only `me`, a member UUID or the display name of someone assigned to a dated work item can be given)";
    if is_uuid(who) {
        let by_id = |id: &str| id.eq_ignore_ascii_case(who);
        return match directory.members {
            Some(members) => one(matching(members, &|m| by_id(&m.id)), ""),
            // Without the list a UUID still names one person unambiguously: their name comes
            // from the issues seen, else the UUID stands for it.
            None => Ok(directory
                .seen
                .iter()
                .find(|a| by_id(&a.id))
                .map(of_seen)
                .or_else(|| directory.me.filter(|u| by_id(&u.id)).map(of_user))
                .unwrap_or_else(|| ViewMember {
                    id: who.to_lowercase(),
                    display_name: who.to_lowercase(),
                    email: String::new(),
                })),
        };
    }
    if who.contains('@') {
        let by_email = |email: &str| !email.is_empty() && email.eq_ignore_ascii_case(who);
        return match directory.members {
            Some(members) => one(matching(members, &|m| by_email(&m.email)), ""),
            None => match directory.me.filter(|u| by_email(&u.email)) {
                Some(user) => Ok(of_user(user)),
                None => Err(format!(
                    "--assignee {who:?}: an e-mail address cannot be resolved{unlisted}"
                )),
            },
        };
    }
    // A display name: exactly as Plane spells it, else ignoring case.
    let pick = |candidates: Vec<(String, ViewMember)>| {
        let exact: Vec<ViewMember> = candidates
            .iter()
            .filter(|(name, _)| name == who)
            .map(|(_, m)| m.clone())
            .collect();
        if exact.is_empty() {
            candidates
                .into_iter()
                .filter(|(name, _)| name.to_lowercase() == who.to_lowercase())
                .map(|(_, m)| m)
                .collect()
        } else {
            exact
        }
    };
    match directory.members {
        Some(members) => one(
            pick(
                members
                    .iter()
                    .map(|m| (m.display_name.clone(), of_member(m)))
                    .collect(),
            ),
            " (give a display name, an e-mail address or a member UUID)",
        ),
        None => {
            let mut seen: Vec<(String, ViewMember)> = directory
                .seen
                .iter()
                .map(|a| (a.name.clone(), of_seen(a)))
                .collect();
            seen.dedup_by(|a, b| a.1.id == b.1.id);
            one(pick(seen), unlisted)
        }
    }
}

/// A person's name for a calendar: the display name, else the full name, else the id.
fn name_or_id(display_name: &str, name: &str, id: &str) -> String {
    [display_name, name, id]
        .into_iter()
        .map(str::trim)
        .find(|n| !n.is_empty())
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5d2bb0f2-1c4e-4a7b-9f0e-3a1b2c3d4e5f";
    const BOB: &str = "6e3cc1a3-2d5f-4b8c-a01f-4b2c3d4e5f60";
    const BOB_TOO: &str = "7f4dd2b4-3e60-4c9d-b120-5c3d4e5f6071";

    fn member(id: &str, display_name: &str, email: &str) -> Member {
        Member {
            id: id.into(),
            display_name: display_name.into(),
            email: email.into(),
            name: String::new(),
            role: Some(15),
        }
    }

    fn members() -> Vec<Member> {
        vec![
            member(ALICE, "alice", "Alice@Example.com"),
            member(BOB, "bob", "bob@example.com"),
            member(BOB_TOO, "Bob", "bob2@example.com"),
        ]
    }

    fn me() -> User {
        User {
            id: ALICE.into(),
            display_name: "alice".into(),
            email: "alice@example.com".into(),
        }
    }

    fn ids(resolved: &[ViewMember]) -> Vec<&str> {
        resolved.iter().map(|m| m.id.as_str()).collect()
    }

    fn whos(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn every_form_of_who_names_one_member_once() {
        let (user, list) = (me(), members());
        let directory = Directory {
            me: Some(&user),
            members: Some(&list),
            seen: &[],
        };
        for who in [
            "me",
            " ME ",
            "alice",
            "ALICE",
            "alice@example.com",
            ALICE,
            &ALICE.to_uppercase(),
        ] {
            let resolved = resolve(&whos(&[who]), directory).unwrap();
            assert_eq!(ids(&resolved), [ALICE], "{who}");
            assert_eq!(resolved[0].display_name, "alice");
        }
        let resolved = resolve(&whos(&["me", "alice", "bob@example.com", ""]), directory).unwrap();
        assert_eq!(ids(&resolved), [ALICE, BOB], "each member once, in order");
        // "bob" and "Bob" are two people: the exact spelling decides; a spelling that is
        // neither is ambiguous.
        assert_eq!(
            ids(&resolve(&whos(&["Bob"]), directory).unwrap()),
            [BOB_TOO]
        );
        let error = resolve(&whos(&["BOB"]), directory).unwrap_err();
        assert!(error.contains("matches 2 members"), "{error}");
        for unknown in [
            "nobody@example.com",
            "carol",
            "00000000-0000-4000-8000-000000000000",
        ] {
            let error = resolve(&whos(&[unknown]), directory).unwrap_err();
            assert!(
                error.contains(unknown) && error.contains("no member"),
                "{error}"
            );
        }
    }

    #[test]
    fn without_the_members_list_me_uuids_and_assignees_seen_still_resolve() {
        let user = me();
        let seen = [Assignee {
            id: BOB.into(),
            name: "bob".into(),
        }];
        let directory = Directory {
            me: Some(&user),
            members: None,
            seen: &seen,
        };
        assert_eq!(ids(&resolve(&whos(&["me"]), directory).unwrap()), [ALICE]);
        assert_eq!(ids(&resolve(&whos(&["bob"]), directory).unwrap()), [BOB]);
        assert_eq!(ids(&resolve(&whos(&[BOB]), directory).unwrap()), [BOB]);
        assert_eq!(
            ids(&resolve(&whos(&["alice@example.com"]), directory).unwrap()),
            [ALICE],
            "the key's own e-mail is known from users/me/"
        );
        // A UUID nobody was seen with still names one person; its name is the UUID.
        let unseen = resolve(&whos(&[BOB_TOO]), directory).unwrap();
        assert_eq!(unseen[0].display_name, BOB_TOO);
        let error = resolve(&whos(&["bob@example.com"]), directory).unwrap_err();
        assert!(error.contains("members list"), "{error}");
    }

    #[test]
    fn views_are_one_per_member_in_a_home_and_one_in_a_single_calendar() {
        let list = members();
        let directory = Directory {
            me: None,
            members: Some(&list),
            seen: &[],
        };
        let resolved = resolve(&whos(&["alice", "bob"]), directory).unwrap();
        let home = views(resolved.clone(), false);
        assert_eq!(home.len(), 2);
        assert_eq!(home[0].id, event::view_id(&[ALICE]));
        assert_eq!(
            home[0].calendar_url("https://dav.example.com/cal/u/"),
            format!("https://dav.example.com/cal/u/plane-member-{ALICE}/")
        );
        assert_eq!(home[1].calendar_name(None), "Plane: bob");
        assert_eq!(home[1].calendar_name(Some("My\twork")), "My work");
        let single = views(resolved, true);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].id, event::view_id(&[BOB, ALICE]));
        assert_eq!(single[0].label(), "alice, bob");
        assert!(views(Vec::new(), true).is_empty());
    }
}
