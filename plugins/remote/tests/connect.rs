//! Links for records with configuration items, hostile CI names, and broken
//! configurations.

use std::path::Path;

use serde_json::{Value, json};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, CancellationToken, OutcomeStatus, ParamType, Plugin, PluginError,
    RecordContext,
};
use tend_plugin_remote::RemotePlugin;

fn shipped() -> RemotePlugin {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("remote.yaml");
    RemotePlugin::load(file).unwrap_or_else(|error| panic!("{error}"))
}

fn record(cis: Value) -> RecordContext {
    let Value::Array(cis) = cis else {
        panic!("cis must be an array");
    };
    RecordContext {
        number: String::from("INC0000007"),
        process: String::from("incident"),
        title: String::from("Cannot log in"),
        state: String::from("new"),
        fields: json!({}),
        cis,
    }
}

fn request(params: Value, record: Option<RecordContext>) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 3,
        plugin: String::from("remote"),
        action: String::from("connect"),
        params,
        record,
        actor: String::from("bob"),
    }
}

async fn connect(
    plugin: &RemotePlugin,
    params: Value,
    record: Option<RecordContext>,
) -> ActionOutcome {
    plugin
        .run(request(params, record), CancellationToken::new())
        .await
        .unwrap_or_else(|error| panic!("the run was not carried out: {error}"))
}

fn urls(outcome: &ActionOutcome) -> Vec<&str> {
    outcome.data["links"]
        .as_array()
        .unwrap_or_else(|| panic!("no links in {}", outcome.data))
        .iter()
        .map(|link| link["url"].as_str().unwrap())
        .collect()
}

#[test]
fn shipped_file_declares_connect() {
    let plugin = shipped();

    assert_eq!(plugin.name(), "remote");
    let [spec] = plugin.actions() else {
        panic!("expected one action, got {:?}", plugin.actions());
    };
    assert_eq!(spec.name, "connect");
    assert_eq!(spec.roles, ["technician"]);
    assert!(spec.idempotent);
    assert_eq!(spec.params["ci"].kind, ParamType::String);
    assert_eq!(spec.params["protocol"].kind, ParamType::Enum);
    assert_eq!(spec.params["protocol"].values, ["ssh", "vnc", "rdp"]);
}

#[tokio::test]
async fn server_gets_ssh_link() {
    let plugin = shipped();
    let record = record(json!([{"name": "srv-db1", "field": "ci"}]));

    let outcome = connect(&plugin, json!({"protocol": "ssh"}), Some(record)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(
        outcome.data,
        json!({"links": [{
            "ci": "srv-db1",
            "protocol": "ssh",
            "url": "ssh://admin@srv-db1.corp.example",
            "label": "SSH to srv-db1",
        }]})
    );
    assert_eq!(
        outcome.summary,
        "SSH to srv-db1: ssh://admin@srv-db1.corp.example"
    );
    assert_eq!(
        outcome.output,
        "SSH to srv-db1: ssh://admin@srv-db1.corp.example"
    );
}

#[tokio::test]
async fn every_protocol_without_param() {
    let plugin = shipped();
    let record = record(json!([{"name": "ws-0042", "field": "ci"}]));

    let outcome = connect(&plugin, json!({}), Some(record)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(
        urls(&outcome),
        [
            "rdp://full%20address=s:ws-0042.corp.example:3389",
            "vnc://ws-0042.corp.example:5900"
        ]
    );
    assert_eq!(
        outcome.summary,
        "2 links for ws-0042: rdp://full%20address=s:ws-0042.corp.example:3389, vnc://ws-0042.corp.example:5900"
    );
    assert_eq!(outcome.data["links"][0]["label"], "RDP to ws-0042");
}

#[tokio::test]
async fn chosen_ci_and_qualified_name() {
    let plugin = shipped();
    let record = record(json!([
        {"name": "ws-1", "field": "ci"},
        {"name": "db-2.lab.example", "field": "ci"},
    ]));

    let outcome = connect(
        &plugin,
        json!({"ci": "db-2.lab.example", "protocol": "vnc"}),
        Some(record),
    )
    .await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(urls(&outcome), ["vnc://db-2.lab.example:5900"]);
}

#[tokio::test]
async fn field_assigns_class() {
    let plugin = shipped();
    // The name matches no pattern, but the `server` field makes it a server.
    let record = record(json!([{"name": "mailhub", "field": "server"}]));

    let outcome = connect(&plugin, json!({"protocol": "ssh"}), Some(record)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(urls(&outcome), ["ssh://admin@mailhub.corp.example"]);
}

#[tokio::test]
async fn default_class_catches_the_rest() {
    let plugin = shipped();
    let record = record(json!([{"name": "kiosk7", "field": "ci"}]));

    let outcome = connect(&plugin, json!({"protocol": "rdp"}), Some(record)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(
        urls(&outcome),
        ["rdp://full%20address=s:kiosk7.corp.example:3389"]
    );
}

#[tokio::test]
async fn ci_attributes_replace_defaults() {
    let plugin = shipped();
    // A CI as a CMDB would give it: its own class, user and fqdn.
    let record = record(json!([{
        "name": "legacy",
        "field": "ci",
        "class": "server",
        "user": "ops",
        "fqdn": "legacy.dc2.example",
    }]));

    let outcome = connect(&plugin, json!({"protocol": "ssh"}), Some(record)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(urls(&outcome), ["ssh://ops@legacy.dc2.example"]);
}

#[tokio::test]
async fn hostile_names_get_no_link() {
    let plugin = shipped();
    let cases = [
        ("srv-host;rm -rf", "contains `;`"),
        ("evil.com@good", "contains `@`"),
        ("a/b", "contains `/`"),
        (
            "srv-\u{0430}pp",
            "contains `\u{0430}` (U+0430, not an ASCII letter)",
        ),
        (
            "\u{0455}rv-db1",
            "contains `\u{0455}` (U+0455, not an ASCII letter)",
        ),
        ("srv-db1\u{200b}", "contains the character U+200B"),
        ("-oProxyCommand", "starts with `-`"),
        ("srv-1:22", "contains `:`"),
        ("srv-1%0a", "contains `%`"),
    ];

    for (name, problem) in cases {
        let record = record(json!([{"name": name, "field": "ci"}]));

        let outcome = connect(&plugin, json!({}), Some(record)).await;

        assert_eq!(
            outcome.status,
            OutcomeStatus::Failed,
            "{name:?} got {}",
            outcome.data
        );
        assert_eq!(
            outcome.summary,
            format!(
                "No link built: the configuration item name {name:?} {problem}, so no link is built. Names in links may contain only ASCII letters, digits, `.`, `-` and `_`, and may not start with `-` or `.`. Correct the name on INC0000007"
            )
        );
        assert_eq!(outcome.data, Value::Null);
    }
}

#[tokio::test]
async fn hostile_ci_attribute_gets_no_link() {
    let plugin = shipped();
    let record = record(json!([{"name": "srv-1", "field": "ci", "user": "root@evil"}]));

    let outcome = connect(&plugin, json!({"protocol": "ssh"}), Some(record)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.contains(
            "attribute `user` of `srv-1` is \"root@evil\", which contains `@`, so no link is built"
        ),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn good_ci_beside_hostile_one() {
    let plugin = shipped();
    let record = record(json!([
        {"name": "evil.com@good", "field": "ci"},
        {"name": "srv-ok", "field": "ci"},
    ]));

    let outcome = connect(
        &plugin,
        json!({"ci": "srv-ok", "protocol": "ssh"}),
        Some(record),
    )
    .await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(urls(&outcome), ["ssh://admin@srv-ok.corp.example"]);
}

#[tokio::test]
async fn unknown_class_is_reported() {
    let plugin = RemotePlugin::from_yaml(
        "remote.yaml",
        r#"
allowed_schemes: [ssh]
classes:
  server:
    names: ["srv-*"]
    links: {ssh: "ssh://{{host}}"}
"#,
    )
    .unwrap();
    let record = record(json!([{"name": "printer3", "field": "asset"}]));

    let outcome = connect(&plugin, json!({}), Some(record)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "No link built: the configuration item `printer3` (from field `asset`) belongs to no class in remote.yaml. Add a pattern that matches it under `names`, or the field under `fields`, of a class, or set `default_class`"
    );
}

#[tokio::test]
async fn unknown_own_class_falls_back_to_patterns() {
    let plugin = shipped();
    let record = record(json!([{"name": "srv-9", "field": "ci", "class": "printer"}]));

    let outcome = connect(&plugin, json!({"protocol": "ssh"}), Some(record)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(urls(&outcome), ["ssh://admin@srv-9.corp.example"]);
}

#[tokio::test]
async fn protocol_missing_from_class() {
    let plugin = shipped();
    let record = record(json!([{"name": "ws-1", "field": "ci"}]));

    let outcome = connect(&plugin, json!({"protocol": "ssh"}), Some(record)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "No link built: class `workstation` of `ws-1` has no `ssh` link. It offers `rdp`, `vnc`"
    );
}

#[tokio::test]
async fn ci_not_on_record() {
    let plugin = shipped();
    let record = record(json!([{"name": "srv-1", "field": "ci"}, {"name": "ws-2", "field": "ci"}]));

    let outcome = connect(&plugin, json!({"ci": "srv-2"}), Some(record)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "No link built: `srv-2` is not a configuration item of INC0000007. Choose one of `srv-1`, `ws-2`"
    );
}

#[tokio::test]
async fn record_without_cis() {
    let plugin = shipped();

    let outcome = connect(&plugin, json!({}), Some(record(json!([])))).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "No link built: INC0000007 names no configuration item. Fill in its configuration-item field, then run connect again"
    );
}

#[tokio::test]
async fn run_without_record() {
    let plugin = shipped();

    let outcome = connect(&plugin, json!({}), None).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.contains("this run has no record"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn invalid_protocol_param() {
    let plugin = shipped();

    let result = plugin
        .run(
            request(
                json!({"protocol": "telnet"}),
                Some(record(json!([{"name": "srv-1"}]))),
            ),
            CancellationToken::new(),
        )
        .await;

    let Err(PluginError::Failed(message)) = result else {
        panic!("expected invalid parameters, got {result:?}");
    };
    assert!(
        message.contains("parameter `protocol` (value \"telnet\")"),
        "{message}"
    );
}

#[tokio::test]
async fn other_action_is_unknown() {
    let plugin = shipped();
    let mut request = request(json!({}), None);
    request.action = String::from("open");

    let result = plugin.run(request, CancellationToken::new()).await;

    assert!(
        matches!(&result, Err(PluginError::UnknownAction { action, .. }) if action == "open"),
        "{result:?}"
    );
}

#[test]
fn missing_file_is_named() {
    let error = RemotePlugin::load("/nonexistent/remote.yaml").unwrap_err();

    assert!(
        error.problems[0].starts_with(
            "/nonexistent/remote.yaml: could not read the remote plugin's configuration"
        ),
        "{error}"
    );
}

#[test]
fn broken_config_lists_every_problem() {
    let error = RemotePlugin::from_yaml(
        "remote.yaml",
        r#"
allowed_schemes: [ssh, javascript, "RDP://"]
default_class: laptop
classes:
  Server:
    names: [""]
    domain: "corp example"
    attributes: {user: "ad min", host: x, "Port": "22"}
    links:
      ssh: "ssh://{{usr}}@{{fqdn}}"
      web: "https://{{host}}"
      bad: "data:text/html,{{name}}"
  empty:
    links: {}
"#,
    )
    .unwrap_err();

    let expected = [
        "remote.yaml: allowed scheme `javascript` is never allowed",
        "remote.yaml: allowed scheme `RDP://` is invalid",
        "remote.yaml: class `Server`: the class name is invalid",
        "remote.yaml: class `Server`: `names` contains an empty pattern",
        "remote.yaml: class `Server`: domain `corp example` contains the character U+0020",
        "remote.yaml: class `Server`: attribute `user` is \"ad min\", which contains the character U+0020",
        "remote.yaml: class `Server`: attribute `host` is computed from the CI",
        "remote.yaml: class `Server`: attribute name `Port` is invalid",
        "remote.yaml: class `Server`: link `ssh`: `ssh://{{usr}}@{{fqdn}}` uses `{{usr}}`, which is not an attribute of the class",
        "remote.yaml: class `Server`: link `web`: `https://{{host}}` uses the scheme `https`, which is not in `allowed_schemes`",
        "remote.yaml: class `Server`: link `bad`: `data:text/html,{{name}}` uses the scheme `data`, which is never allowed",
        "remote.yaml: class `empty`: `links` is empty",
        "remote.yaml: default_class `laptop` is not a class. Use one of `Server`, `empty`",
    ];
    for text in expected {
        assert!(
            error
                .problems
                .iter()
                .any(|problem| problem.starts_with(text)),
            "missing {text:?} in {:#?}",
            error.problems
        );
    }
    assert_eq!(
        error.problems.len(),
        expected.len(),
        "{:#?}",
        error.problems
    );
}

#[test]
fn bad_roles_are_reported() {
    let error = RemotePlugin::from_yaml(
        "remote.yaml",
        "roles: [Tech, tech, tech]\nallowed_schemes: [ssh]\nclasses:\n  server: {links: {ssh: \"ssh://{{host}}\"}}\n",
    )
    .unwrap_err();

    assert_eq!(error.problems.len(), 2, "{:#?}", error.problems);
    assert!(
        error.problems[0].contains("role `Tech` is invalid"),
        "{:#?}",
        error.problems
    );
    assert!(
        error.problems[1].contains("lists role `tech` twice"),
        "{:#?}",
        error.problems
    );
}

#[test]
fn parse_error_has_position() {
    let error = RemotePlugin::from_yaml(
        "remote.yaml",
        "allowed_schemes: [ssh]\nclasses:\n  server:\n    link: {ssh: \"ssh://{{host}}\"}\n",
    )
    .unwrap_err();

    assert_eq!(error.problems.len(), 1);
    assert!(
        error.problems[0]
            .starts_with("remote.yaml:4:5: field `classes.server.link`: unknown field `link`"),
        "{:#?}",
        error.problems
    );
}
