//! Calls against a real HTTP server on 127.0.0.1 that records every request it gets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, CancellationToken, OutcomeStatus, Plugin, PluginError,
    RecordContext,
};
use tend_plugin_webhook::WebhookPlugin;

const TOKEN: &str = "s3cret-token-value";

/// A request as the test server received it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no header {name}"))
            .to_str()
            .unwrap()
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

struct Server {
    base: String,
    log: Log,
}

impl Server {
    async fn start() -> Self {
        let log: Log = Arc::default();
        let app = Router::new().fallback(answer).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { base, log }
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.uri.starts_with(path))
            .count()
    }

    fn plugin(&self, yaml: &str) -> WebhookPlugin {
        let text = yaml.replace("{base}", &self.base);
        WebhookPlugin::from_yaml("webhook.yaml", &text)
            .unwrap_or_else(|error| panic!("{error}"))
            .with_env(Arc::new(|name| match name {
                "TEST_TOKEN" => Some(TOKEN.to_owned()),
                _ => None,
            }))
    }
}

/// Responds by path: `/ok`, `/created`, `/flaky` (500 on the first call), `/down` (always
/// 503), `/missing` (404), `/slow` (10 s), `/redirect` (302 to `/ok`), `/away?to=URL`
/// (302 to URL), `/echo` (returns the Authorization header) and `/big` (100,000 bytes).
async fn answer(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let previous = {
        let mut log = log.lock().unwrap();
        let previous = log.iter().filter(|r| r.uri.starts_with(&path)).count();
        log.push(Received {
            method,
            uri: uri.to_string(),
            headers: headers.clone(),
            body,
        });
        previous
    };
    match path.as_str() {
        "/created" => (StatusCode::CREATED, "created").into_response(),
        "/flaky" if previous == 0 => (StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response(),
        "/flaky" => "ok after retry".into_response(),
        "/down" => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
        "/missing" => (StatusCode::NOT_FOUND, "no such hook").into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "late".into_response()
        }
        "/redirect" => (StatusCode::FOUND, [(header::LOCATION, "/ok")]).into_response(),
        "/away" => {
            let target = uri.query().unwrap_or_default().trim_start_matches("to=");
            (StatusCode::FOUND, [(header::LOCATION, target.to_owned())]).into_response()
        }
        "/echo" => {
            let auth = headers
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            format!("you sent {auth} to {uri}").into_response()
        }
        "/big" => "x".repeat(100_000).into_response(),
        _ => "accepted".into_response(),
    }
}

fn record(title: &str) -> RecordContext {
    RecordContext {
        number: String::from("INC0000012"),
        process: String::from("incident"),
        title: title.to_owned(),
        state: String::from("in_progress"),
        fields: json!({"priority": 2, "service": "mail"}),
        cis: vec![json!({"name": "srv-mail1", "field": "ci"})],
    }
}

fn request(action: &str, params: Value, record: Option<RecordContext>) -> ActionRequest {
    let Value::Object(params) = params else {
        panic!("params must be an object");
    };
    ActionRequest {
        protocol: tend_plugin_api::PROTOCOL_VERSION,
        run_id: 42,
        plugin: String::from("webhook"),
        action: action.to_owned(),
        params,
        record,
        actor: String::from("alice"),
    }
}

async fn run(plugin: &WebhookPlugin, request: ActionRequest) -> ActionOutcome {
    plugin
        .run(request, CancellationToken::new())
        .await
        .unwrap_or_else(|error| panic!("the run was not carried out: {error}"))
}

const TICKET: &str = r#"
endpoints:
  - name: post_ticket
    label: Post ticket
    url: "{base}/ok/{{record.number}}?by={{actor}}"
    method: PUT
    headers:
      X-Source: tend
    secret_headers:
      Authorization: {env: TEST_TOKEN, prefix: "Bearer "}
    params:
      note: {type: text, required: true}
      urgent: {type: boolean, default: false}
    body:
      number: "{{record.number}}"
      priority: "{{record.fields.priority}}"
      urgent: "{{params.urgent}}"
      text: "{{record.number}}: {{record.title}} ({{record.state}})"
      note: "{{params.note}}"
      cis: "{{#each record.cis}}{{name}} {{/each}}"
      run: "{{run_id}}"
      fixed: [1, true, null]
    timeout_seconds: 10
    roles: [technician]
"#;

#[tokio::test]
async fn body_and_headers_arrive() {
    let server = Server::start().await;
    let plugin = server.plugin(TICKET);

    let outcome = run(
        &plugin,
        request(
            "post_ticket",
            json!({"note": "two\nlines"}),
            Some(record("Mail is down")),
        ),
    )
    .await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    let call = &received[0];
    assert_eq!(call.method, Method::PUT);
    assert_eq!(call.uri, "/ok/INC0000012?by=alice");
    assert_eq!(call.header("content-type"), "application/json");
    assert_eq!(call.header("x-source"), "tend");
    assert_eq!(call.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(
        call.json(),
        json!({
            "number": "INC0000012",
            "priority": 2,
            "urgent": false,
            "text": "INC0000012: Mail is down (in_progress)",
            "note": "two\nlines",
            "cis": "srv-mail1 ",
            "run": 42,
            "fixed": [1, true, null],
        })
    );
    assert_eq!(
        outcome.summary,
        format!(
            "post_ticket: PUT {}/ok/INC0000012?by=alice answered 200 OK",
            server.base
        )
    );
    assert_eq!(outcome.output, "accepted");
    assert_eq!(outcome.data["status"], 200);
    assert_eq!(outcome.data["attempts"], json!([{"status": 200}]));
    assert_eq!(outcome.data["response_cut"], false);
    let everything = serde_json::to_string(&outcome).unwrap();
    assert!(!everything.contains(TOKEN), "{everything}");
}

#[tokio::test]
async fn hostile_titles_stay_one_string() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/ok"
    body: {title: "{{record.title}}", text: "Ticket: {{record.title}}", admin: false}
    timeout_seconds: 10
"#,
    );
    let titles = [
        r#"say "hi""#,
        r"back\slash \\ and \u0041",
        "line one\nline two\r\nend\ttab",
        r#""}, "admin": true, {""#,
        r#"{{actor}} and {{{record.number}}}"#,
        "control \u{1b}[2J and nul \u{0}",
        "ünïcödé ✓ 🎉",
    ];

    for title in titles {
        let outcome = run(&plugin, request("post", json!({}), Some(record(title)))).await;

        assert_eq!(
            outcome.status,
            OutcomeStatus::Succeeded,
            "{}",
            outcome.summary
        );
        let body = server.received().last().unwrap().json();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["admin", "text", "title"], "{title:?}");
        assert_eq!(body["admin"], false, "{title:?}");
        assert_eq!(body["title"], title);
        assert_eq!(body["text"], format!("Ticket: {title}"));
    }
}

#[tokio::test]
async fn path_values_are_encoded() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/ok/{{params.id}}?q={{params.id}}"
    params:
      id: {type: string, required: true}
    timeout_seconds: 10
"#,
    );

    let outcome = run(
        &plugin,
        request("post", json!({"id": "../admin?x=1#@evil.example"}), None),
    )
    .await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    let call = &server.received()[0];
    assert_eq!(
        call.uri,
        "/ok/..%2Fadmin%3Fx%3D1%23%40evil.example?q=..%2Fadmin%3Fx%3D1%23%40evil.example"
    );
    assert_eq!(call.method, Method::POST);
    assert!(call.body.is_empty(), "no body was configured");
}

#[tokio::test]
async fn server_error_is_retried() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/flaky"
    body: {n: "{{record.number}}"}
    retries: 2
    retry_backoff_ms: 50
    timeout_seconds: 10
"#,
    );

    let outcome = run(&plugin, request("post", json!({}), Some(record("t")))).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(server.count("/flaky"), 2);
    assert!(
        outcome
            .summary
            .ends_with("answered 200 OK (after 2 attempts)"),
        "{}",
        outcome.summary
    );
    assert_eq!(
        outcome.data["attempts"],
        json!([{"status": 500}, {"status": 200}])
    );
    assert_eq!(outcome.output, "ok after retry");
    let bodies: Vec<Value> = server.received().iter().map(Received::json).collect();
    assert_eq!(bodies[0], bodies[1], "a retry sends the same body");
}

#[tokio::test]
async fn retries_run_out() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/down"
    retries: 2
    retry_backoff_ms: 20
    timeout_seconds: 10
"#,
    );

    let outcome = run(&plugin, request("post", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(server.count("/down"), 3);
    assert_eq!(
        outcome.summary,
        format!(
            "post: POST {}/down answered 503 Service Unavailable, but only 2xx counts as success (after 3 attempts)",
            server.base
        )
    );
    assert_eq!(outcome.output, "down");
}

#[tokio::test]
async fn not_found_fails_without_retry() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/missing"
    retries: 3
    timeout_seconds: 10
"#,
    );

    let outcome = run(&plugin, request("post", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .ends_with("/missing answered 404 Not Found, but only 2xx counts as success"),
        "{}",
        outcome.summary
    );
    assert_eq!(outcome.output, "no such hook");
    assert_eq!(outcome.data["status"], 404);
    assert_eq!(server.count("/missing"), 1);
}

#[tokio::test]
async fn success_statuses_are_exact() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: strict
    label: Strict
    url: "{base}/created"
    success_statuses: [200, 204]
    timeout_seconds: 10
  - name: lenient
    label: Lenient
    url: "{base}/created"
    success_statuses: [201]
    timeout_seconds: 10
"#,
    );

    let strict = run(&plugin, request("strict", json!({}), None)).await;
    let lenient = run(&plugin, request("lenient", json!({}), None)).await;

    assert_eq!(strict.status, OutcomeStatus::Failed);
    assert!(
        strict
            .summary
            .ends_with("answered 201 Created, but only 200, 204 counts as success"),
        "{}",
        strict.summary
    );
    assert_eq!(
        lenient.status,
        OutcomeStatus::Succeeded,
        "{}",
        lenient.summary
    );
}

#[tokio::test]
async fn slow_answer_times_out() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/slow"
    request_timeout_seconds: 1
    retries: 2
    timeout_seconds: 10
"#,
    );
    let started = Instant::now();

    let outcome = run(&plugin, request("post", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        format!("post: POST {}/slow got no answer within 1 s", server.base)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.count("/slow"), 1, "a timeout is not retried");
    assert_eq!(outcome.data["status"], Value::Null);
}

#[tokio::test]
async fn cancel_stops_waiting_call() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/slow"
    timeout_seconds: 30
"#,
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let started = Instant::now();

    let result = plugin.run(request("post", json!({}), None), cancel).await;

    assert!(matches!(result, Err(PluginError::Cancelled)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cancel_stops_backoff() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/down"
    retries: 3
    retry_backoff_ms: 20000
    timeout_seconds: 120
"#,
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();

    let result = plugin.run(request("post", json!({}), None), cancel).await;

    assert!(matches!(result, Err(PluginError::Cancelled)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.count("/down"), 1);
}

#[tokio::test]
async fn refused_connection_is_retried() {
    // Bind a port, then free it, so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let yaml = format!(
        r#"
endpoints:
  - name: post
    label: Post
    url: "http://{address}/hook"
    retries: 2
    retry_backoff_ms: 20
    timeout_seconds: 10
"#
    );
    let plugin = WebhookPlugin::from_yaml("webhook.yaml", &yaml).unwrap();

    let outcome = run(&plugin, request("post", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.starts_with(&format!(
            "post: POST http://{address}/hook could not connect: "
        )),
        "{}",
        outcome.summary
    );
    assert!(
        outcome.summary.ends_with("(after 3 attempts)"),
        "{}",
        outcome.summary
    );
    let attempts = outcome.data["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: plain
    label: Plain
    url: "{base}/redirect"
    timeout_seconds: 10
  - name: follow
    label: Follow
    url: "{base}/redirect"
    follow_redirects: true
    timeout_seconds: 10
"#,
    );

    let plain = run(&plugin, request("plain", json!({}), None)).await;

    assert_eq!(plain.status, OutcomeStatus::Failed);
    assert!(
        plain.summary.contains("answered 302 Found"),
        "{}",
        plain.summary
    );
    assert!(
        plain
            .summary
            .contains("It redirects to /ok, which is not followed"),
        "{}",
        plain.summary
    );
    assert_eq!(server.count("/ok"), 0);

    let follow = run(&plugin, request("follow", json!({}), None)).await;

    assert_eq!(
        follow.status,
        OutcomeStatus::Succeeded,
        "{}",
        follow.summary
    );
    assert_eq!(server.count("/ok"), 1);
    assert_eq!(follow.output, "accepted");
}

#[tokio::test]
async fn redirect_to_other_host_is_not_followed() {
    let server = Server::start().await;
    let other = Server::start().await;
    let plugin = server.plugin(&format!(
        r#"
endpoints:
  - name: follow
    label: Follow
    url: "{{base}}/away?to={}/ok"
    follow_redirects: true
    timeout_seconds: 10
"#,
        other.base
    ));

    let outcome = run(&plugin, request("follow", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.summary.contains(&format!(
            "answered 302 Found, but only 2xx counts as success. It redirects to {}/ok, which is on another host and is not followed",
            other.base
        )),
        "{}",
        outcome.summary
    );
    assert!(other.received().is_empty());
}

#[tokio::test]
async fn secrets_never_reach_outcome() {
    let server = Server::start().await;
    let url = format!("{}/echo?token={TOKEN}", server.base);
    let plugin = WebhookPlugin::from_yaml(
        "webhook.yaml",
        r#"
endpoints:
  - name: chat
    label: Chat
    url_env: CHAT_URL
    secret_headers:
      Authorization: {env: TEST_TOKEN, prefix: "Bearer "}
    body: {text: "{{record.title}}"}
    timeout_seconds: 10
"#,
    )
    .unwrap()
    .with_env(Arc::new(move |name| match name {
        "CHAT_URL" => Some(url.clone()),
        "TEST_TOKEN" => Some(TOKEN.to_owned()),
        _ => None,
    }));

    let outcome = run(&plugin, request("chat", json!({}), Some(record("hi")))).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(server.received()[0].uri, format!("/echo?token={TOKEN}"));
    assert_eq!(outcome.summary, "chat: POST $CHAT_URL answered 200 OK");
    assert_eq!(
        outcome.output,
        "you sent Bearer [redacted] to /echo?token=[redacted]"
    );
    assert_eq!(outcome.data["url"], "$CHAT_URL");
    let everything = serde_json::to_string(&outcome).unwrap();
    assert!(!everything.contains(TOKEN), "{everything}");
}

#[tokio::test]
async fn secret_url_hidden_in_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}/hooks/{TOKEN}");
    let plugin = WebhookPlugin::from_yaml(
        "webhook.yaml",
        "endpoints:\n  - {name: chat, label: Chat, url_env: CHAT_URL, timeout_seconds: 10}\n",
    )
    .unwrap()
    .with_env(Arc::new(move |name| {
        (name == "CHAT_URL").then(|| url.clone())
    }));

    let outcome = run(&plugin, request("chat", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome
            .summary
            .starts_with("chat: POST $CHAT_URL could not connect: "),
        "{}",
        outcome.summary
    );
    let everything = serde_json::to_string(&outcome).unwrap();
    assert!(!everything.contains(TOKEN), "{everything}");
    assert!(!everything.contains("/hooks/"), "{everything}");
}

#[tokio::test]
async fn missing_secret_is_not_sent() {
    let server = Server::start().await;
    let plugin = WebhookPlugin::from_yaml("webhook.yaml", &TICKET.replace("{base}", &server.base))
        .unwrap()
        .with_env(Arc::new(|_| None));

    let outcome = run(
        &plugin,
        request("post_ticket", json!({"note": "x"}), Some(record("t"))),
    )
    .await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "post_ticket: not sent: the environment variable TEST_TOKEN for header `authorization` is not set. Set it in Tend's environment and restart Tend"
    );
    assert!(server.received().is_empty());
    assert_eq!(
        plugin.missing_env(),
        [
            "webhook.yaml: endpoint `post_ticket` reads environment variable TEST_TOKEN, which is not set"
        ]
    );
}

#[tokio::test]
async fn secret_url_must_be_http() {
    let plugin = WebhookPlugin::from_yaml(
        "webhook.yaml",
        "endpoints:\n  - {name: chat, label: Chat, url_env: CHAT_URL, timeout_seconds: 10}\n",
    )
    .unwrap()
    .with_env(Arc::new(|_| Some(format!("ftp://files.example/{TOKEN}"))));

    let outcome = run(&plugin, request("chat", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "chat: not sent: the environment variable CHAT_URL does not hold a usable http or https URL: the scheme `ftp` is not supported. Use http or https. Fix the variable and restart Tend"
    );
}

#[tokio::test]
async fn big_response_is_cut() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/big"
    response_limit_bytes: 1000
    timeout_seconds: 10
"#,
    );

    let outcome = run(&plugin, request("post", json!({}), None)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(
        outcome.output,
        format!(
            "{}\n[response cut: only the first 1000 bytes were kept]",
            "x".repeat(1000)
        )
    );
    assert_eq!(outcome.data["response_bytes"], 1000);
    assert_eq!(outcome.data["response_cut"], true);
}

#[tokio::test]
async fn invalid_params_are_rejected() {
    let server = Server::start().await;
    let plugin = server.plugin(TICKET);

    let result = plugin
        .run(
            request("post_ticket", json!({"note": 5, "urgnt": true}), None),
            CancellationToken::new(),
        )
        .await;

    let Err(PluginError::Failed(message)) = result else {
        panic!("expected invalid parameters, got {result:?}");
    };
    assert!(message.contains("parameter `note` (value 5)"), "{message}");
    assert!(message.contains("Did you mean `urgent`?"), "{message}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn run_without_record_sends_nulls() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/ok"
    body: {number: "{{record.number}}", text: "[{{record.title}}]", by: "{{actor}}"}
    timeout_seconds: 10
"#,
    );

    let outcome = run(&plugin, request("post", json!({}), None)).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    assert_eq!(
        server.received()[0].json(),
        json!({"number": null, "text": "[]", "by": "alice"})
    );
}

#[tokio::test]
async fn url_without_value_is_not_sent() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/ok/{{record.number}}"
    timeout_seconds: 10
"#,
    );

    let outcome = run(&plugin, request("post", json!({}), None)).await;

    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.summary,
        "post: not sent: the URL variable `{{record.number}}` has no value in this run. Give it a value, or remove it from the URL"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn unknown_action_is_an_error() {
    let server = Server::start().await;
    let plugin = server.plugin(TICKET);

    let result = plugin
        .run(request("nope", json!({}), None), CancellationToken::new())
        .await;

    assert!(
        matches!(&result, Err(PluginError::UnknownAction { plugin, action }) if plugin == "webhook" && action == "nope"),
        "{result:?}"
    );
}

#[tokio::test]
async fn configured_content_type_is_sent() {
    let server = Server::start().await;
    let plugin = server.plugin(
        r#"
endpoints:
  - name: post
    label: Post
    url: "{base}/ok"
    method: PATCH
    headers: {Content-Type: "application/merge-patch+json"}
    body: {state: "{{record.state}}"}
    timeout_seconds: 10
"#,
    );

    let outcome = run(&plugin, request("post", json!({}), Some(record("t")))).await;

    assert_eq!(
        outcome.status,
        OutcomeStatus::Succeeded,
        "{}",
        outcome.summary
    );
    let call = &server.received()[0];
    assert_eq!(call.method, Method::PATCH);
    assert_eq!(call.header("content-type"), "application/merge-patch+json");
    assert_eq!(call.json(), json!({"state": "in_progress"}));
}
