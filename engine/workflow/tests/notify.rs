//! Notification templates: the shipped ones render, user text stays inert, and broken
//! `notify:` blocks and templates are load errors with their place.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tend_workflow::{RuleCheckError, RuleFailure, RuleInput, RuleRunner, load_dir};

/// Takes every rule as present: these tests are about notifications, and the rule
/// scripts are checked by the scripting crate's tests.
struct AnyRules;

impl RuleRunner for AnyRules {
    fn check(&self, _: &str) -> Result<(), RuleCheckError> {
        Ok(())
    }

    fn run(
        &self,
        rule: &str,
        _: &RuleInput<'_>,
    ) -> Result<Vec<tend_domain::ProposedEffect>, RuleFailure> {
        Err(RuleFailure {
            rule: rule.into(),
            message: "not run in notification tests".into(),
        })
    }
}

fn shipped() -> tend_workflow::DefinitionSet {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    load_dir(&root, &AnyRules).expect("the shipped definitions load")
}

fn data(title: &str, description: &str) -> Value {
    json!({
        "record": {
            "number": "INC0000053",
            "process": "incident",
            "process_title": "Incident",
            "title": title,
            "description": description,
            "state": "resolved",
            "state_label": "Resolved",
            "priority": "P3",
            "fields": {
                "assignee": "tech",
                "assignment_group": "service_desk",
                "resolution_notes": "Replaced the <toner> & restarted",
            },
            "url": "http://127.0.0.1:8080/records/INC0000053",
        },
        "event": {
            "name": "on_comment",
            "transition": null,
            "comment": "Please try again & tell me",
            "actor": "tech",
            "actor_name": "tech",
        },
        "recipient": { "name": "user", "address": "user@example.org", "role": "requester" },
    })
}

#[test]
fn every_shipped_template_renders() {
    let set = shipped();
    let names: Vec<&str> = set.notifications.names().collect();
    assert_eq!(
        names,
        [
            "assigned",
            "comment-added",
            "incident-received",
            "incident-resolved",
            "request-received"
        ]
    );
    for name in names {
        let rendered = set
            .notifications
            .render(name, None, &data("Printer jammed", "It jams"))
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(
            rendered.subject.starts_with("[INC0000053] "),
            "{name}: {}",
            rendered.subject
        );
        assert!(
            !rendered.text.trim().is_empty(),
            "{name} has an empty text part"
        );
        assert!(
            rendered.text.contains("INC0000053"),
            "{name}: {}",
            rendered.text
        );
    }
}

#[test]
fn template_syntax_in_user_text_is_inert() {
    let set = shipped();
    let title = "Hello {{ ticket.requester.email }} #{config.smtp_password} ${env:HOME} {% raw %}";
    let description = "Body with {{ 7*7 }} and {{.Values}} and #{ticket.id} and <%= 1+1 %>.";
    let rendered = set
        .notifications
        .render("incident-received", None, &data(title, description))
        .expect("the acknowledgement renders");
    assert_eq!(
        rendered.subject,
        format!("[INC0000053] We received: {title}")
    );
    assert!(rendered.text.contains(description), "{}", rendered.text);
    let html = rendered.html.expect("the acknowledgement has an HTML part");
    assert!(html.contains("{{ 7*7 }}"), "{html}");
    assert!(html.contains("&lt;%"), "{html}");
    assert!(!html.contains("<%="), "{html}");
}

#[test]
fn text_is_not_escaped_and_html_is() {
    let set = shipped();
    let rendered = set
        .notifications
        .render("incident-resolved", None, &data("Printer", "x"))
        .expect("the resolution renders");
    assert!(
        rendered.text.contains("Replaced the <toner> & restarted"),
        "{}",
        rendered.text
    );
    let html = rendered.html.expect("the resolution has an HTML part");
    assert!(
        html.contains("Replaced the &lt;toner&gt; &amp; restarted"),
        "{html}"
    );
}

#[test]
fn locale_variant_is_chosen_by_language() {
    let set = shipped();
    let french = set
        .notifications
        .render("incident-received", Some("fr-CH"), &data("Imprimante", "x"))
        .expect("the French acknowledgement renders");
    assert_eq!(french.subject, "[INC0000053] Demande reçue : Imprimante");
    let other = set
        .notifications
        .render("incident-received", Some("de"), &data("Drucker", "x"))
        .expect("the default acknowledgement renders");
    assert_eq!(other.subject, "[INC0000053] We received: Drucker");
}

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn ticket_dir(notify: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    write(
        &root,
        "workflows/ticket.yaml",
        &format!(
            "process: ticket\ntitle: Ticket\nnumber_prefix: TKT\nfields:\n  requester: {{ type: user }}\nstates:\n  open: {{ initial: true }}\n  done: {{ final: true }}\ntransitions:\n  - {{ name: finish, from: open, to: done, roles: [technician] }}\n{notify}"
        ),
    );
    write(
        &root,
        "workflows/notifications/done/subject.hbs",
        "Done {{record.number}}\n",
    );
    write(&root, "workflows/notifications/done/text.hbs", "Done.\n");
    (dir, root)
}

fn errors(root: &Path) -> Vec<String> {
    match load_dir(root, &AnyRules) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .diagnostics
            .iter()
            .map(|diagnostic| {
                format!(
                    "{}:{}:{}: {}",
                    diagnostic.file.file_name().unwrap().to_string_lossy(),
                    diagnostic.line,
                    diagnostic.column,
                    diagnostic.message
                )
            })
            .collect(),
    }
}

#[test]
fn valid_notify_block_loads() {
    let (_dir, root) =
        ticket_dir("notify:\n  on_finish:\n    - { to: [requester], template: done }\n");
    assert_eq!(errors(&root), Vec::<String>::new());
}

#[test]
fn unknown_transition_is_located() {
    let (_dir, root) =
        ticket_dir("notify:\n  on_finsh:\n    - { to: [requester], template: done }\n");
    let found = errors(&root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("ticket.yaml:12:3: unknown notification event `on_finsh`"),
        "{found:?}"
    );
    assert!(found[0].contains("on_finish"), "{found:?}");
}

#[test]
fn unknown_template_is_located() {
    let (_dir, root) =
        ticket_dir("notify:\n  on_create:\n    - { to: [requester], template: dne }\n");
    let found = errors(&root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("ticket.yaml:13:36:"), "{found:?}");
    assert!(
        found[0].contains("unknown notification template `dne`"),
        "{found:?}"
    );
    assert!(found[0].contains("use one of done"), "{found:?}");
}

#[test]
fn unknown_role_is_located() {
    let (_dir, root) =
        ticket_dir("notify:\n  on_create:\n    - { to: [requestor], template: done }\n");
    let found = errors(&root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("ticket.yaml:13:14:"), "{found:?}");
    assert!(
        found[0].contains("unknown variant `requestor`"),
        "{found:?}"
    );
}

#[test]
fn template_syntax_error_names_file_and_line() {
    let (_dir, root) = ticket_dir("");
    write(
        &root,
        "workflows/notifications/done/text.hbs",
        "Line one\n{{#if record.title}}open\n",
    );
    let found = errors(&root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("text.hbs:"), "{found:?}");
    assert!(found[0].contains("handlebars syntax error"), "{found:?}");
}

#[test]
fn missing_text_part_is_an_error() {
    let (_dir, root) = ticket_dir("");
    std::fs::remove_file(root.join("workflows/notifications/done/text.hbs")).unwrap();
    let found = errors(&root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("has no text.hbs"), "{found:?}");
}

#[test]
fn copied_templates_keep_the_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let original = load_dir(&root, &AnyRules).expect("the shipped definitions load");
    let files = tend_workflow::DefinitionFiles::read(&root).expect("the files read");
    let copy = tempfile::tempdir().unwrap();
    files.write_to(copy.path()).unwrap();
    let copied = load_dir(copy.path(), &AnyRules).expect("the copy loads");
    assert_eq!(copied.version, original.version);
    assert!(copied.notifications.contains("incident-received"));
}
