//! `calplanebot webhook`: one Plane webhook delivery (on stdin) → a targeted reconcile of the
//! one issue or project it is about.
//!
//! The delivery is only a hint (plane-api.md §7): its signature is checked, then the issue is
//! read fresh from Plane and exactly its one event is created, updated or deleted through the
//! same plan and apply as `sync`. In the common case that costs one Plane request and two
//! CalDAV requests (GET the event, PUT it); the calendar comes from the cache the last run
//! left (see `cache`), so no discovery and no listing. Runs serialise on the sync's lock, and
//! each one compares fresh state, so a burst of deliveries for one edit ends in one write.

use std::io::Read as _;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::cli::WebhookArgs;
use crate::config::{Config, Secret};
use crate::engine::options::{Options, Selection};
use crate::engine::run;
use crate::exit::Status;
use crate::plane::{self};

/// Largest delivery accepted. Plane sends the whole issue, description included; a real one is
/// a few kB.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The delivery (pure): signature and payload.
// ---------------------------------------------------------------------------------------------

/// Why a delivery's signature is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the delivery has no signature (the X-Plane-Signature header, given as --signature or PLANE_WEBHOOK_SIGNATURE)"
    )]
    Missing,
    #[error("the delivery's signature is not 64 hexadecimal digits")]
    Malformed,
    #[error(
        "the delivery's signature does not match its body: it was not sent by this Plane webhook, was altered, or PLANE_WEBHOOK_SECRET is not this webhook's secret"
    )]
    Mismatch,
}

/// Checks `X-Plane-Signature`: lowercase hex HMAC-SHA256 of the raw body bytes, keyed with the
/// webhook's secret (plane-api.md §7), compared in constant time.
pub fn verify_signature(
    secret: &Secret,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing)?;
    let expected = decode_hex(signature).ok_or(SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// 64 hex digits → 32 bytes.
fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(out)
}

/// What a delivery says happened. Plane sends `created`/`updated`/`deleted`; older versions
/// sent `create`/`update`/`delete` (plane-api.md §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
    Other(String),
}

impl Action {
    /// For the log.
    pub fn name(&self) -> &str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Other(other) => other,
        }
    }

    fn parse(action: &str) -> Action {
        match action {
            "created" | "create" => Action::Created,
            "updated" | "update" => Action::Updated,
            "deleted" | "delete" => Action::Deleted,
            other => Action::Other(other.chars().take(64).collect()),
        }
    }
}

/// One delivery, as far as calplanebot cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// An issue changed: `project` is known for created/updated (the full issue is in the
    /// payload), absent for deleted (`data` is only `{"id": …}`).
    Issue {
        action: Action,
        id: String,
        project: Option<String>,
    },
    Project {
        action: Action,
        id: String,
    },
    /// `cycle`, `module`, `issue_comment`, or anything newer: nothing to do.
    Ignored {
        event: String,
    },
}

/// Reads a delivery body. Only the envelope and the ids are used; the rest of the payload is a
/// hint that is never trusted (the issue is read fresh from Plane).
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the delivery is not JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or("the delivery is not a JSON object")?;
    let event = object
        .get("event")
        .and_then(Value::as_str)
        .ok_or("the delivery has no \"event\"")?;
    if event != "issue" && event != "project" {
        return Ok(Delivery::Ignored {
            event: event.chars().take(64).collect(),
        });
    }
    let action = Action::parse(object.get("action").and_then(Value::as_str).unwrap_or(""));
    let data = object
        .get("data")
        .and_then(Value::as_object)
        .ok_or("the delivery has no \"data\" object")?;
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| plane::is_uuid(id))
        .ok_or("the delivery's data.id is missing or not a UUID")?
        .to_string();
    if event == "project" {
        return Ok(Delivery::Project { action, id });
    }
    let project = match data.get("project") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if plane::is_uuid(p) => Some(p.clone()),
        Some(Value::Object(p)) => match p.get("id").and_then(Value::as_str) {
            Some(p) if plane::is_uuid(p) => Some(p.to_string()),
            _ => return Err("the delivery's data.project.id is not a UUID".into()),
        },
        Some(_) => return Err("the delivery's data.project is not a UUID".into()),
    };
    Ok(Delivery::Issue {
        action,
        id,
        project,
    })
}

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

pub fn run(config: &Config, args: &WebhookArgs) -> Status {
    let delivery_id = args
        .delivery
        .as_deref()
        .map(|d| {
            d.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect::<String>()
        })
        .unwrap_or_else(|| "(no id)".into());
    let body = match read_body(std::io::stdin().lock()) {
        Ok(body) => body,
        Err(why) => {
            log::error!("delivery {delivery_id} rejected: {why}; nothing was fetched or written");
            return Status::Rejected;
        }
    };
    match (&config.webhook_secret, args.allow_unsigned) {
        (Some(secret), _) => {
            if let Err(why) = verify_signature(secret, &body, args.signature.as_deref()) {
                log::error!(
                    "delivery {delivery_id} rejected: {why}; nothing was fetched or written"
                );
                return Status::Rejected;
            }
        }
        (None, true) => log::warn!(
            "PLANE_WEBHOOK_SECRET is not set and --allow-unsigned is given: the signature of delivery {delivery_id} is not checked, so anyone who can reach the webhook can trigger runs"
        ),
        (None, false) => {
            log::error!(
                "delivery {delivery_id} rejected: PLANE_WEBHOOK_SECRET is not set, so its signature cannot be checked; set it to the secret Plane showed when the webhook was created (or, unsafe, pass --allow-unsigned / CALPLANEBOT_WEBHOOK_UNSIGNED=1); nothing was fetched or written"
            );
            return Status::Rejected;
        }
    }
    let delivery = match parse_delivery(&body) {
        Ok(delivery) => delivery,
        Err(why) => {
            log::error!("delivery {delivery_id} rejected: {why}; nothing was fetched or written");
            return Status::Rejected;
        }
    };
    let options = Options {
        dry_run: args.dry_run,
        format: args.format,
        guard: crate::reconcile::plan::GuardLimits {
            max_delete: args.guard.max_delete,
            max_percent: args.guard.max_delete_percent,
            force: false,
        },
    };
    match delivery {
        Delivery::Ignored { event } => {
            log::info!("delivery {delivery_id}: event {event:?} does not concern calendars");
            Status::Success
        }
        Delivery::Project {
            action: Action::Deleted,
            id,
        } => {
            log::warn!(
                "delivery {delivery_id}: project {id} was deleted in Plane; calplanebot deletes nothing for it (a webhook never wipes a calendar past the deletion guard): its calendar and events stay until you remove them"
            );
            Status::Success
        }
        Delivery::Project { action, id } => {
            log::info!(
                "delivery {delivery_id}: project {id} {}: reconciling the project",
                action.name()
            );
            run::reconcile(config, &options, &Selection::Hinted(id)).status
        }
        Delivery::Issue {
            action,
            id,
            project,
        } => {
            log::info!("delivery {delivery_id}: work item {id} {}", action.name());
            let selection = Selection::Issue { id, project };
            run::reconcile(config, &options, &selection).status
        }
    }
}

/// The body, up to [`MAX_BODY`] bytes.
fn read_body(input: impl std::io::Read) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    input
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read the delivery from stdin: {e}"))?;
    if body.len() as u64 > MAX_BODY {
        return Err(format!("the delivery is larger than {MAX_BODY} bytes"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the delivery is empty (it is read from stdin)".into());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/plane/webhooks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn captured_signature(name: &str) -> String {
        let headers: Value =
            serde_json::from_slice(&fixture(&format!("{name}.headers.json"))).unwrap();
        headers["headers"]["X-Plane-Signature"]
            .as_str()
            .unwrap()
            .to_string()
    }

    const LAB_SECRET: &str = "plane_wh_lab0000000000000000000000000000001";

    /// The test vector of plane-api.md §7 (computed with Python's json and hmac).
    const VECTOR_SECRET: &str = "plane_wh_00000000000000000000000000000000";
    const VECTOR_BODY: &str = r#"{"event": "project", "action": "deleted", "webhook_id": "11111111-1111-1111-1111-111111111111", "workspace_id": "22222222-2222-2222-2222-222222222222", "data": {"id": "33333333-3333-3333-3333-333333333333"}, "activity": {"field": null, "new_value": null, "old_value": null, "actor": {"id": "44444444-4444-4444-4444-444444444444", "display_name": "J\u00f6rg"}, "old_identifier": null, "new_identifier": null}}"#;
    const VECTOR_SIGNATURE: &str =
        "05b96e3800fbe1e0ce619ae0111fbb41e69a94089b57bf121079ad27a4e38554";

    #[test]
    fn the_plane_api_test_vector_verifies() {
        let secret = Secret::new(VECTOR_SECRET);
        assert_eq!(
            verify_signature(&secret, VECTOR_BODY.as_bytes(), Some(VECTOR_SIGNATURE)),
            Ok(())
        );
        assert_eq!(
            parse_delivery(VECTOR_BODY.as_bytes()),
            Ok(Delivery::Project {
                action: Action::Deleted,
                id: "33333333-3333-3333-3333-333333333333".into()
            })
        );
    }

    #[test]
    fn a_one_byte_change_to_the_body_fails() {
        let secret = Secret::new(VECTOR_SECRET);
        let body = VECTOR_BODY.as_bytes();
        for position in [0, body.len() / 2, body.len() - 1] {
            let mut altered = body.to_vec();
            altered[position] ^= 0x01;
            assert_eq!(
                verify_signature(&secret, &altered, Some(VECTOR_SIGNATURE)),
                Err(SignatureError::Mismatch),
                "byte {position}"
            );
        }
        let mut longer = body.to_vec();
        longer.push(b' ');
        assert_eq!(
            verify_signature(&secret, &longer, Some(VECTOR_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_of_the_wrong_length_or_form_fails() {
        let secret = Secret::new(VECTOR_SECRET);
        let body = VECTOR_BODY.as_bytes();
        for bad in [
            &VECTOR_SIGNATURE[..63],
            &VECTOR_SIGNATURE[..62],
            "",
            "   ",
            "05",
            "zz96e3800fbe1e0ce619ae0111fbb41e69a94089b57bf121079ad27a4e38554",
            "sha256=05b96e3800fbe1e0ce619ae0111fbb41e69a94089b57bf121079ad27a4e38554",
            "05b96e3800fbe1e0ce619ae0111fbb41e69a94089b57bf121079ad27a4e3855400",
            "05b96e3800fbe1e0ce619ae0111fbb41e69a94089b57bf121079ad27a4e3855é",
        ] {
            let result = verify_signature(&secret, body, Some(bad));
            assert!(
                matches!(
                    result,
                    Err(SignatureError::Malformed | SignatureError::Missing)
                ),
                "{bad:?} gave {result:?}"
            );
        }
        assert_eq!(
            verify_signature(&secret, body, None),
            Err(SignatureError::Missing)
        );
        // The right digest under another key.
        assert_eq!(
            verify_signature(&Secret::new("other"), body, Some(VECTOR_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        // Upper-case hex is the same digest.
        assert_eq!(
            verify_signature(&secret, body, Some(&VECTOR_SIGNATURE.to_ascii_uppercase())),
            Ok(())
        );
    }

    #[test]
    fn every_captured_delivery_verifies_and_parses() {
        let secret = Secret::new(LAB_SECRET);
        let issue = "006c0b3e-e09a-4824-a12d-e7e673cdfda2";
        let project = "8063616e-4508-4635-b20d-f71dd7c779d3";
        for (name, want) in [
            (
                "1795319269894-0001",
                Delivery::Issue {
                    action: Action::Created,
                    id: issue.into(),
                    project: Some(project.into()),
                },
            ),
            (
                "1795319272980-0002",
                Delivery::Issue {
                    action: Action::Updated,
                    id: issue.into(),
                    project: Some(project.into()),
                },
            ),
            (
                "1795319273014-0003",
                Delivery::Issue {
                    action: Action::Updated,
                    id: issue.into(),
                    project: Some(project.into()),
                },
            ),
            (
                "1795319377232-0005",
                Delivery::Project {
                    action: Action::Created,
                    id: "bcefa3a3-ead4-4c43-b915-d3966e01acac".into(),
                },
            ),
        ] {
            let body = fixture(&format!("{name}.body"));
            assert_eq!(
                verify_signature(&secret, &body, Some(&captured_signature(name))),
                Ok(()),
                "{name}"
            );
            assert_eq!(parse_delivery(&body), Ok(want), "{name}");
        }
    }

    #[test]
    fn old_and_new_action_names_and_the_delete_payload() {
        let id = "33333333-3333-3333-3333-333333333333";
        for (action, want) in [
            ("created", Action::Created),
            ("create", Action::Created),
            ("updated", Action::Updated),
            ("update", Action::Updated),
            ("deleted", Action::Deleted),
            ("delete", Action::Deleted),
            ("archived", Action::Other("archived".into())),
        ] {
            let body = format!(r#"{{"event":"issue","action":"{action}","data":{{"id":"{id}"}}}}"#);
            assert_eq!(
                parse_delivery(body.as_bytes()),
                Ok(Delivery::Issue {
                    action: want,
                    id: id.into(),
                    project: None
                })
            );
        }
    }

    #[test]
    fn other_events_are_ignored_without_reading_their_data() {
        for event in ["cycle", "module", "issue_comment", "intake"] {
            let body = format!(r#"{{"event":"{event}","action":"created","data":null}}"#);
            assert_eq!(
                parse_delivery(body.as_bytes()),
                Ok(Delivery::Ignored {
                    event: event.into()
                })
            );
        }
    }

    #[test]
    fn malformed_deliveries_are_clear_errors() {
        for (body, says) in [
            ("", "not JSON"),
            ("{", "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"action":"created"}"#, "no \"event\""),
            (r#"{"event":"issue","action":"created"}"#, "no \"data\""),
            (
                r#"{"event":"issue","action":"created","data":{"id":"../../etc"}}"#,
                "not a UUID",
            ),
            (
                r#"{"event":"issue","data":{"id":"33333333-3333-3333-3333-333333333333","project":"x/../y"}}"#,
                "data.project",
            ),
            (
                r#"{"event":"project","data":{"id":42}}"#,
                "data.id is missing or not a UUID",
            ),
        ] {
            let error = parse_delivery(body.as_bytes()).expect_err(body);
            assert!(error.contains(says), "{body}: {error}");
        }
    }

    #[test]
    fn the_body_is_capped_and_must_not_be_empty() {
        assert!(read_body(&b"{}"[..]).is_ok());
        assert!(read_body(&b" \n"[..]).unwrap_err().contains("empty"));
        let huge = std::io::repeat(b' ').take(MAX_BODY + 1);
        assert!(read_body(huge).unwrap_err().contains("larger than"));
    }
}
