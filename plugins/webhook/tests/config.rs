//! Loading the configuration: the shipped file, and the messages for broken ones.

use std::path::Path;
use std::sync::Arc;

use tend_plugin_api::{ParamType, Plugin};
use tend_plugin_webhook::WebhookPlugin;

fn problems(yaml: &str) -> Vec<String> {
    WebhookPlugin::from_yaml("webhook.yaml", yaml)
        .unwrap_err()
        .problems
}

#[test]
fn shipped_file_loads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("webhook.yaml");

    let plugin = WebhookPlugin::load(&file)
        .unwrap_or_else(|error| panic!("{error}"))
        .with_env(Arc::new(|_| None));

    assert_eq!(plugin.name(), "webhook");
    let names: Vec<&str> = plugin.actions().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["notify_chat", "sync_ticket"]);
    let chat = &plugin.actions()[0];
    assert_eq!(chat.roles, ["technician"]);
    assert_eq!(chat.params["note"].kind, ParamType::Text);
    assert!(plugin.actions()[1].idempotent);
    let missing = plugin.missing_env();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(missing[0].ends_with("endpoint `notify_chat` reads environment variable TEND_CHAT_WEBHOOK_URL, which is not set"), "{missing:?}");
    assert!(
        missing[1].ends_with(
            "endpoint `sync_ticket` reads environment variable TEND_BRIDGE_TOKEN, which is not set"
        ),
        "{missing:?}"
    );
}

#[test]
fn missing_file_is_named() {
    let error = WebhookPlugin::load("/nonexistent/webhook.yaml").unwrap_err();

    assert!(
        error.problems[0].starts_with(
            "/nonexistent/webhook.yaml: could not read the webhook plugin's configuration"
        ),
        "{error}"
    );
}

#[test]
fn parse_error_names_endpoint_and_field() {
    let found = problems(
        "endpoints:\n  - name: chat\n    label: Chat\n    url: http://127.0.0.1/x\n    timeout: 5\n",
    );

    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("webhook.yaml:5:5: endpoint `chat` (number 1): field `endpoints[0].timeout`: unknown field `timeout`"),
        "{found:?}"
    );
}

#[test]
fn every_problem_is_listed() {
    let found = problems(
        r#"
endpoints:
  - name: bad
    label: Bad
    url: "https://{{params.host}}/hook"
    method: GET
    headers:
      Content-Length: "10"
      "Bad Header": x
      X-Ticket: "{{record.number}}"
    secret_headers:
      Authorization: {env: "1TOKEN"}
    params:
      host: {type: string}
    body: {text: "{{recrod.title}}", who: "{{params.user}}"}
    timeout_seconds: 5
    request_timeout_seconds: 9
    success_statuses: [200, 700]
    retries: 11
    retry_backoff_ms: 0
    response_limit_bytes: 0
"#,
    );

    let expected = [
        "url `https://{{params.host}}/hook`: template variables are not allowed in the scheme, host or port",
        "method `GET` is not supported. Use POST, PUT or PATCH",
        "header `Content-Length` is set by the HTTP client",
        "`Bad Header` is not a valid header name",
        "header `X-Ticket` contains a template",
        "`secret_headers.Authorization.env` is `1TOKEN`, which is not an environment variable name",
        "body.text: `{{recrod.title}}` starts with `recrod`",
        "body.who: `{{params.user}}` names parameter `user`, which the endpoint does not declare. Declared: `host`",
        "request_timeout_seconds 9 is longer than timeout_seconds 5",
        "success status 700 is not an HTTP status",
        "retries 11 is more than the maximum of 10",
        "retry_backoff_ms is 0",
        "response_limit_bytes is 0",
    ];
    for text in expected {
        assert!(
            found.iter().any(
                |problem| problem.starts_with("webhook.yaml: endpoint `bad`: ")
                    && problem.contains(text)
            ),
            "missing {text:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn url_source_must_be_one() {
    let both = problems(
        "endpoints:\n  - {name: a, label: A, url: 'http://127.0.0.1/', url_env: HOOK, timeout_seconds: 5}\n",
    );
    let none = problems("endpoints:\n  - {name: a, label: A, timeout_seconds: 5}\n");

    assert_eq!(both.len(), 1, "{both:?}");
    assert!(
        both[0].contains("both `url` and `url_env` are set"),
        "{both:?}"
    );
    assert_eq!(none.len(), 1, "{none:?}");
    assert!(none[0].contains("the endpoint has no URL"), "{none:?}");
}

#[test]
fn duplicate_and_invalid_names_are_reported() {
    let found = problems(
        r#"
endpoints:
  - {name: post, label: Post, url: "http://127.0.0.1/a", timeout_seconds: 5}
  - {name: post, label: Again, url: "http://127.0.0.1/b", timeout_seconds: 5}
  - {name: Post-It, label: "", url: "http://127.0.0.1/c", timeout_seconds: 0}
"#,
    );

    assert_eq!(
        found,
        [
            "webhook.yaml: action `post` is declared twice. Rename or remove one of them",
            "webhook.yaml: action name `Post-It` is invalid: it starts with `P`, not a lowercase letter. Use lowercase letters, digits and underscores, such as `post_it`",
            "webhook.yaml: action `Post-It` has no label. Add a short `label` for its button, such as \"Restore file\"",
            "webhook.yaml: action `Post-It` has timeout_seconds 0. Set how many seconds a run may take, such as 60",
        ]
    );
}

#[test]
fn secret_and_plain_header_clash() {
    let found = problems(
        r#"
endpoints:
  - name: a
    label: A
    url: "http://127.0.0.1/a"
    headers: {Authorization: "Basic xyz"}
    secret_headers:
      authorization: {env: TOKEN, prefix: "Bearer "}
    timeout_seconds: 5
"#,
    );

    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("header `authorization` is set in both `headers` and `secret_headers`"),
        "{found:?}"
    );
}
