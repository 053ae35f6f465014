//! Rules of one hook run in order on the record with the definition's defaults, and each
//! reads what the rules before it set, whatever channel created the record.

use std::sync::Arc;

use chrono::Utc;
use tend_domain::{Actor, Command, Fields, Role};
use tend_scripting::RuleHost;
use tend_workflow::{Context, load_dir};

const TICKET: &str = r#"
process: ticket
title: Ticket
number_prefix: TCK
fields:
  type: { type: enum, values: [incident, request], default: incident }
  category: { type: enum, values: [network, hardware] }
  sla: { type: string, read_only: true }
states:
  new: { initial: true }
  done: { final: true }
transitions:
  - { name: finish, from: [new], to: done, roles: [technician] }
rules:
  on_create: [ticket/category_from_subject, ticket/sla_from_category]
"#;

const CATEGORY: &str = r#"
if matches(record.title, "^\\[NET\\]") {
    set_field("category", "network", "The subject starts with [NET]");
} else if matches(record.title, "^\\[HW\\]") {
    set_field("category", "hardware", "The subject starts with [HW]");
}
"#;

const SLA: &str = r#"
if record.category == "network" && record.type == "incident" {
    set_field("sla", "Network P2", "Network incidents get the network SLA");
}
"#;

fn write(root: &std::path::Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

#[test]
fn second_rule_sees_default_and_first_rule() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "workflows/ticket.yaml", TICKET);
    write(
        dir.path(),
        "rules/ticket/category_from_subject.rhai",
        CATEGORY,
    );
    write(dir.path(), "rules/ticket/sla_from_category.rhai", SLA);
    let host = Arc::new(RuleHost::new(dir.path()));
    let set = load_dir(dir.path(), host.as_ref()).unwrap();
    let definition = set.get("ticket").unwrap();

    // The same subject from a requester with no type (as a mail would arrive) and from a
    // technician's form that names the type gives the same record.
    let senders = [
        (Actor::new("mailer", vec![Role::Requester]), Fields::new()),
        (
            Actor::new("tom", vec![Role::Technician]),
            serde_json::from_value(serde_json::json!({ "type": "incident" })).unwrap(),
        ),
    ];
    let mut outcomes = Vec::new();
    for (actor, fields) in &senders {
        let context = Context {
            definition,
            version: &set.version,
            rules: host.as_ref(),
            actor,
            now: Utc::now(),
            groups: &set.groups,
            links: &[],
            cmdb: None,
        };
        let command = Command::Create {
            title: "[NET] Switch down in room 3".into(),
            description: String::new(),
            fields: fields.clone(),
            preset: Fields::new(),
        };
        let record = tend_workflow::execute(&context, None, &command)
            .unwrap()
            .record;
        assert_eq!(record.field_str("type"), Some("incident"));
        assert_eq!(record.field_str("category"), Some("network"));
        assert_eq!(record.field_str("sla"), Some("Network P2"));
        outcomes.push(record.fields);
    }
    assert_eq!(outcomes[0], outcomes[1]);
}
