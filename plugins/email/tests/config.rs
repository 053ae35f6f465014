//! Loading the email plugin's configuration and rendering its messages, without a server.

use std::path::Path;

use serde_json::{Value, json};
use tend_plugin_api::{
    ActionRequest, CancellationToken, MailRecipient, OutcomeStatus, PROTOCOL_VERSION, Plugin,
    RecordContext,
};
use tend_plugin_email::EmailPlugin;

const FILE: &str = "plugins/email/email.yaml";

/// Builds a valid message with `extra` appended, which error tests then break one part at
/// a time.
fn message(extra: &str) -> String {
    format!(
        "messages:\n  - name: update\n    label: Update\n    subject: \"Update on {{{{record.title}}}}\"\n    text: \"{{{{params.note}}}}\"\n    params:\n      note: {{type: text, required: true}}\n      to_address: {{type: string}}\n{extra}"
    )
}

fn load_error(text: &str) -> String {
    EmailPlugin::from_yaml(FILE, text).unwrap_err().to_string()
}

fn request(action: &str, title: &str, params: Value) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: PROTOCOL_VERSION,
        run_id: 7,
        plugin: "email".to_owned(),
        action: action.to_owned(),
        params,
        record: Some(RecordContext {
            number: "INC0000042".to_owned(),
            process: "incident".to_owned(),
            title: title.to_owned(),
            state: "in_progress".to_owned(),
            fields: json!({"priority": "P2"}),
            cis: vec![json!({"name": "mail-01", "field": "ci"})],
        }),
        actor: "tech".to_owned(),
    }
}

#[test]
fn shipped_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("email.yaml");

    let plugin = EmailPlugin::load(&path).unwrap();

    let spec = &plugin.actions()[0];
    assert_eq!(spec.name, "vendor_escalation");
    assert_eq!(spec.roles, ["technician"]);
    assert!(spec.params["vendor_address"].required);
    assert!(!spec.idempotent);
}

#[test]
fn missing_recipients_are_a_load_error() {
    let error = load_error(&message(""));

    assert!(
        error.starts_with(&format!("{FILE}: message `update`: ")),
        "{error}"
    );
    assert!(error.contains("the message has no recipients"), "{error}");
    assert!(error.contains("`to.roles`"), "{error}");
}

#[test]
fn address_params_need_allowed_domains() {
    let error = load_error(&message("    to: {params: [to_address]}\n"));

    assert!(error.contains("message `update`"), "{error}");
    assert!(error.contains("`allowed_domains` is empty"), "{error}");
}

#[test]
fn undeclared_address_param_is_named() {
    let error = load_error(&message(
        "    to: {params: [vendor]}\n    allowed_domains: [example.com]\n",
    ));

    assert!(
        error.contains("`to.params` names parameter `vendor`, which the message does not declare"),
        "{error}"
    );
}

#[test]
fn address_param_of_wrong_type_is_named() {
    let error = load_error(&message(
        "    to: {params: [note]}\n    allowed_domains: [example.com]\n",
    ));

    assert!(
        error.contains("parameter `note`, whose type cannot hold an address"),
        "{error}"
    );
}

#[test]
fn bad_fixed_address_and_domain_are_named() {
    let error = load_error(&message(
        "    to: {addresses: [\"Ops <ops@example.com>\"], params: [to_address]}\n    allowed_domains: [\"@example.com\"]\n",
    ));

    assert!(
        error.contains("`to.addresses` has `Ops <ops@example.com>`, which is not an email address"),
        "{error}"
    );
    assert!(
        error.contains("`allowed_domains` has `@example.com`, which is not a domain name"),
        "{error}"
    );
}

#[test]
fn unknown_template_variable_is_named() {
    let text = message("    to: {roles: [requester]}\n").replace("record.title", "ticket.title");

    let error = load_error(&text);

    assert!(
        error.contains("`subject`: `{{ticket.title}}` starts with `ticket`"),
        "{error}"
    );
}

#[test]
fn undeclared_template_param_is_named() {
    let text = message("    to: {roles: [requester]}\n").replace("params.note", "params.comment");

    let error = load_error(&text);

    assert!(
        error.contains("`text`: `{{params.comment}}` names parameter `comment`"),
        "{error}"
    );
}

#[test]
fn invalid_template_syntax_is_named() {
    let text = message("    to: {roles: [requester]}\n    html: \"{{#if record.title}}open\"\n");

    let error = load_error(&text);

    assert!(
        error.contains("`html` is not a valid handlebars template"),
        "{error}"
    );
}

#[test]
fn unknown_role_has_line_and_message() {
    let error = load_error(&message("    to: {roles: [manager]}\n"));

    assert!(error.starts_with(&format!("{FILE}:")), "{error}");
    assert!(error.contains("message `update` (number 1)"), "{error}");
    assert!(error.contains("unknown variant `manager`"), "{error}");
}

#[test]
fn empty_message_list_is_a_load_error() {
    let error = load_error("messages: []\n");

    assert!(error.contains("the file lists no messages"), "{error}");
}

#[test]
fn duplicate_message_names_are_named() {
    let one = message("    to: {roles: [requester]}\n");
    let second = one.trim_start_matches("messages:\n");
    let error = load_error(&format!("{one}{second}"));

    assert!(
        error.contains("action `update` is declared twice"),
        "{error}"
    );
}

fn escalation_plugin() -> EmailPlugin {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("email.yaml");
    EmailPlugin::load(path).unwrap()
}

#[tokio::test]
async fn record_values_stay_inert() {
    let plugin = escalation_plugin();
    let params = json!({"vendor_address": "desk@example.com", "note": "Try {{record.number}} and {{{raw}}}"});

    let outcome = plugin
        .run(
            request(
                "vendor_escalation",
                "Mail down {{7*7}}\nBcc: x@evil.test",
                params,
            ),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    let mail = &outcome.mail[0];
    assert_eq!(
        mail.subject,
        "Escalation: Mail down {{7*7}} Bcc: x@evil.test"
    );
    assert!(
        mail.text.contains("Try {{record.number}} and {{{raw}}}"),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains("incident INC0000042 to you"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("Priority: P2"), "{}", mail.text);
    assert!(
        mail.text.contains("Configuration items: mail-01"),
        "{}",
        mail.text
    );
    assert_eq!(mail.html, None);
}

#[tokio::test]
async fn allowed_recipient_is_returned() {
    let plugin = escalation_plugin();
    let params = json!({"vendor_address": "Desk@Example.NET", "note": "Please look"});

    let outcome = plugin
        .run(
            request("vendor_escalation", "Mail down", params),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(
        outcome.mail[0].recipients,
        [
            MailRecipient::Assignee,
            MailRecipient::Address("desk@example.net".to_owned())
        ]
    );
    assert_eq!(outcome.data["message"], "vendor_escalation");
}

#[tokio::test]
async fn recipient_outside_allowed_domains_is_rejected() {
    let plugin = escalation_plugin();
    let params = json!({"vendor_address": "desk@vendor.test", "note": "Please look"});

    let outcome = plugin
        .run(
            request("vendor_escalation", "Mail down", params),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(outcome.mail.is_empty());
    assert!(
        outcome.summary.starts_with(
            "Not sent: parameter `vendor_address` is `desk@vendor.test`, whose domain vendor.test is not among the domains message `vendor_escalation` may send to (example.com, example.net)"
        ),
        "{}",
        outcome.summary
    );
    assert!(
        outcome
            .summary
            .contains("add vendor.test to the message's `allowed_domains`"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn subdomain_is_not_an_allowed_domain() {
    let plugin = escalation_plugin();
    let params = json!({"vendor_address": "desk@mail.example.com", "note": "Please look"});

    let outcome = plugin
        .run(
            request("vendor_escalation", "Mail down", params),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .contains("domain mail.example.com is not among"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn malformed_recipient_is_rejected() {
    let plugin = escalation_plugin();
    let params = json!({"vendor_address": "desk@example.com, boss@evil.test", "note": "x"});

    let outcome = plugin
        .run(
            request("vendor_escalation", "Mail down", params),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.contains("which is not an email address"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn run_without_record_is_rejected() {
    let plugin = escalation_plugin();
    let mut request = request(
        "vendor_escalation",
        "Mail down",
        json!({"vendor_address": "desk@example.com", "note": "x"}),
    );
    request.record = None;

    let outcome = plugin.run(request, CancellationToken::new()).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.contains("this run belongs to none"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn html_body_escapes_values() {
    let text = message("    to: {roles: [requester]}\n    html: \"<p>{{record.title}}</p>\"\n");
    let plugin = EmailPlugin::from_yaml(FILE, &text).unwrap();

    let outcome = plugin
        .run(
            request("update", "<script>x</script>", json!({"note": "<b>n</b>"})),
            CancellationToken::new(),
        )
        .await
        .unwrap();

    let mail = &outcome.mail[0];
    assert_eq!(
        mail.html.as_deref(),
        Some("<p>&lt;script&gt;x&lt;/script&gt;</p>")
    );
    assert_eq!(mail.text, "<b>n</b>");
    assert_eq!(mail.recipients, [MailRecipient::Requester]);
}
