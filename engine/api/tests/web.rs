//! The web console driven as a browser would: forms posted to the router, with a real
//! SQLite store in a temporary directory and a small definitions directory. Its one rule
//! assigns, prioritises and recommends, and its reply policy reopens or follows up.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::Value;
use tempfile::TempDir;
use tend_api::{AppState, Commands, Engine};
use tend_domain::{Actor, Command, Fields, Role};
use tend_scripting::RuleHost;
use tend_store::{RecordFilter, Store};
use tower::ServiceExt;

const TICKET: &str = r#"
process: ticket
title: Ticket
number_prefix: TCK
description: A request for help, used by the web console tests.
fields:
  impact: { type: enum, label: Impact, values: [high, medium, low], default: medium }
  category: { type: enum, label: Category, values: [network, end_user_device] }
  contact_type: { type: enum, label: Contact type, values: [self_service, walk_in], default: self_service, set_by: [technician] }
  priority: { type: enum, label: Priority, values: [P1, P3], read_only: true }
  requester: { type: user, label: Requester }
  assignment_group: { type: group, label: Assignment group }
  assignee: { type: user, label: Assigned to }
  effort: { type: integer, label: Effort in hours, read_only_in: [closed] }
  billing_code: { type: string, label: Billing code, set_by: [admin] }
  resolution_code: { type: string, label: Resolution code, required_in: [resolved, closed], set_by: [technician] }
  notes: { type: text, label: Notes }
  follow_up_of: { type: string, label: Follow-up of, max_length: 40 }
  catalog_item: { type: string, label: Catalog item, set_by: [admin] }
  variables: { type: text, label: Details, set_by: [admin] }
  approvers: { type: text, label: Approvers, set_by: [admin] }
states:
  new: { label: New, initial: true }
  in_progress: { label: In progress }
  resolved: { label: Resolved, open: false }
  closed: { label: Closed, final: true }
transitions:
  - { name: start, label: Start work, from: [new], to: in_progress, roles: [technician] }
  - { name: resolve, label: Resolve, from: [new, in_progress], to: resolved, roles: [technician], requires: [resolution_code] }
  - { name: reopen, label: Reopen, from: [resolved], to: in_progress, roles: [requester, technician], comment_required: true }
  - { name: close, label: Close, from: [resolved], to: closed, roles: [requester, technician] }
  - { name: order_parts, label: Order parts, from: [in_progress], to: in_progress, roles: [technician], approval: { approvers: ["user:root"] } }
replies:
  reopen: reopen
  reopen_within: 7d
  follow_up_in: [closed]
  follow_up_field: follow_up_of
rules:
  on_create: [ticket/route]
automatic_actions: [network/restart_vpn]
"#;

const ROUTE_RULE: &str = r#"
let text = lower(record.title + " " + record.description);
if text.contains("vpn") {
    assign_group("network", "the text mentions VPN, which the network team runs");
    recommend("network/restart_vpn", #{ host: "vpn1", window: () }, "VPN outages usually end with a restart of the gateway");
}
if text.contains("restart now") {
    run_action("network/restart_vpn", #{ host: "vpn2" }, "The requester asked for a restart now");
    run_action("network/reboot_core", #{}, "Rules may not reboot the core");
}
if record.impact == "high" {
    set_field("priority", "P1", "high impact");
} else {
    set_field("priority", "P3", "impact is not high");
}
"#;

const XSS_TITLE: &str = r#""><img src=x onerror=alert(document.domain)>"#;
const XSS_DESCRIPTION: &str = "<b onmouseover=alert(1)>click</b><script>alert(2)</script>";
const XSS_EXTRA: &str = r#"<script>alert("x")</script>"#;

struct App {
    router: Router,
    store: Store,
    commands: Commands,
    _dir: TempDir,
}

struct Session {
    cookie: String,
    csrf: String,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

fn write_definitions(root: &Path) {
    std::fs::create_dir_all(root.join("workflows")).unwrap();
    std::fs::create_dir_all(root.join("rules/ticket")).unwrap();
    std::fs::write(root.join("workflows/ticket.yaml"), TICKET).unwrap();
    std::fs::write(root.join("rules/ticket/route.rhai"), ROUTE_RULE).unwrap();
    std::fs::create_dir_all(root.join("workflows/catalog")).unwrap();
    std::fs::write(root.join("workflows/catalog/items.yaml"), CATALOG).unwrap();
}

const CATALOG: &str = r#"
items:
  vpn_access:
    title: VPN access
    description: Remote access to the office network.
    process: ticket
    fulfil_in: in_progress
    form:
      reason: { type: text, label: Why do you need it?, required: true }
      duration: { type: enum, label: For how long, values: [month, year], default: month, required: true }
  server_room:
    title: Server room key
    process: ticket
    fulfil_in: in_progress
    roles: [technician]
"#;

/// An SLA policy for P1 tickets only, so that a P3 ticket has no clocks. Resolved tickets
/// pause the clocks and closed ones stop them.
const TICKET_SLA: &str = r#"
policies:
  ticket_p1:
    label: Urgent tickets
    kind: sla
    process: ticket
    calendar: 24x7
    pause_in: [resolved]
    stop_in: [closed]
    targets:
      response:
        label: First response
        durations: { P1: 30m }
        stop_in: [in_progress]
        resumes: false
      resolution:
        label: Resolution
        durations: { P1: 4h }
    thresholds:
      - at: 50%
      - at: 100%
"#;

const CALENDAR_24X7: &str = r#"
calendar: 24x7
timezone: UTC
hours:
  every_day: "00:00-24:00"
"#;

fn write_sla_definitions(root: &Path) {
    std::fs::create_dir_all(root.join("workflows/sla")).unwrap();
    std::fs::create_dir_all(root.join("workflows/calendars")).unwrap();
    std::fs::write(root.join("workflows/sla/ticket.yaml"), TICKET_SLA).unwrap();
    std::fs::write(root.join("workflows/calendars/24x7.yaml"), CALENDAR_24X7).unwrap();
}

async fn app_with(secure_cookies: bool) -> App {
    build_app(secure_cookies, false).await
}

/// Builds the console with the ticket SLA policy loaded.
async fn sla_app() -> App {
    build_app(false, true).await
}

async fn build_app(secure_cookies: bool, with_sla: bool) -> App {
    build_app_with(
        secure_cookies,
        with_sla,
        tend_plugin_api::PluginRegistry::new(),
    )
    .await
}

async fn build_app_with(
    secure_cookies: bool,
    with_sla: bool,
    plugins: tend_plugin_api::PluginRegistry,
) -> App {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("definitions");
    write_definitions(&root);
    if with_sla {
        write_sla_definitions(&root);
    }
    let rules = Arc::new(RuleHost::new(&root));
    let definitions = tend_workflow::load_dir(&root, rules.as_ref()).unwrap();
    let store = Store::connect(&Store::sqlite_url(&dir.path().join("data")))
        .await
        .unwrap();
    store
        .add_user("tech", None, &[Role::Technician], "tech-password")
        .await
        .unwrap();
    store
        .add_user("ann", None, &[Role::Requester], "ann-password")
        .await
        .unwrap();
    store
        .add_user("root", None, &[Role::Admin], "root-password")
        .await
        .unwrap();
    let engine = Arc::new(Engine::new(definitions, rules));
    let commands = Commands::new(store.clone(), engine).with_plugins(plugins);
    let state = AppState::new(commands.clone(), secure_cookies);
    App {
        router: tend_api::router(state),
        store,
        commands,
        _dir: dir,
    }
}

async fn app() -> App {
    app_with(false).await
}

impl App {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, session: Option<&Session>) -> Reply {
        let mut request = Request::get(path);
        if let Some(session) = session {
            request = request.header(header::COOKIE, &session.cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post_form(
        &self,
        path: &str,
        session: Option<&Session>,
        pairs: &[(&str, &str)],
    ) -> Reply {
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(session) = session {
            request = request.header(header::COOKIE, &session.cookie);
        }
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    async fn login(&self, user: &str, password: &str) -> Session {
        let reply = self
            .post_form("/login", None, &[("user", user), ("password", password)])
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let set_cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let page = self.get("/records", Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK);
        session.csrf = hidden_value(&page.body, "csrf");
        session
    }

    async fn record_count(&self) -> usize {
        let filter = RecordFilter {
            limit: 500,
            ..RecordFilter::default()
        };
        self.store
            .list_records(&filter)
            .await
            .unwrap()
            .records
            .len()
    }

    /// Opens the new-ticket form and returns its form token.
    async fn new_form_token(&self, session: &Session) -> String {
        let form = self.get("/records/new?process=ticket", Some(session)).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        hidden_value(&form.body, "form_token")
    }

    /// Creates a ticket through the form and returns its number.
    async fn create_ticket(&self, session: &Session, title: &str, description: &str) -> String {
        let token = self.new_form_token(session).await;
        let reply = self
            .post_form(
                "/records/new?process=ticket",
                Some(session),
                &[
                    ("csrf", &session.csrf),
                    ("form_token", &token),
                    ("title", title),
                    ("description", description),
                    ("impact", "high"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        reply.location().trim_start_matches("/records/").to_owned()
    }
}

/// Lists the options of the select with id `id` as (value, label) pairs.
fn select_options(html: &str, id: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!(r#"<select id="{id}""#))
        .unwrap_or_else(|| panic!("no select `{id}` in:\n{html}"));
    let end = html[start..].find("</select>").unwrap() + start;
    html[start..end]
        .split("<option value=\"")
        .skip(1)
        .map(|option| {
            let (value, rest) = option.split_once('"').unwrap();
            let label_start = rest.find('>').unwrap() + 1;
            let label_end = rest.find("</option>").unwrap();
            (value.to_owned(), rest[label_start..label_end].to_owned())
        })
        .collect()
}

/// Returns the transition form whose action ends in `transitions/NAME`.
fn transition_form<'h>(html: &'h str, name: &str) -> &'h str {
    let start = html
        .find(&format!(r#"/transitions/{name}""#))
        .unwrap_or_else(|| panic!("no form for transition `{name}` in:\n{html}"));
    let end = html[start..].find("</form>").unwrap() + start;
    &html[start..end]
}

fn technician() -> Actor {
    Actor::new("tech", vec![Role::Technician])
}

/// Resolves a ticket as the technician at time `at`.
async fn resolve_at(app: &App, number: &str, at: chrono::DateTime<chrono::Utc>) {
    let mut fields = Fields::new();
    fields.insert("resolution_code".into(), Value::from("fixed"));
    let command = Command::Transition {
        name: "resolve".into(),
        fields,
        comment: None,
    };
    app.commands
        .apply_at(&technician(), number, command, Some(at))
        .await
        .unwrap();
}

/// Extracts the value of the hidden input `name` from a page.
fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden input `{name}` in:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

fn assert_no_raw_markup(html: &str, page: &str) {
    for raw in ["<script>alert", "<img src=x", "<b onmouseover", "<script"] {
        assert!(!html.contains(raw), "{page} contains raw `{raw}`:\n{html}");
    }
}

#[tokio::test]
async fn login_with_wrong_password_fails() {
    let app = app().await;
    let reply = app
        .post_form("/login", None, &[("user", "tech"), ("password", "wrong")])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.body.contains("Invalid user name or password"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains(r#"value="tech""#),
        "the user name is kept"
    );
    assert!(reply.headers.get(header::SET_COOKIE).is_none());

    let unknown = app
        .post_form("/login", None, &[("user", "nobody"), ("password", "x")])
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_sets_session_cookie() {
    let app = app().await;
    let reply = app
        .post_form(
            "/login",
            None,
            &[("user", "tech"), ("password", "tech-password")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/records");
    let cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("tend_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");

    let secure = app_with(true).await;
    let reply = secure
        .post_form(
            "/login",
            None,
            &[("user", "tech"), ("password", "tech-password")],
        )
        .await;
    let cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn login_returns_to_requested_page() {
    let app = app().await;
    let page = app.get("/records?q=vpn", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login?next=%2Frecords%3Fq%3Dvpn");
    let form = app.get(page.location(), None).await;
    let next = hidden_value(&form.body, "next");
    assert_eq!(next, "/records?q=vpn");
    let reply = app
        .post_form(
            "/login",
            None,
            &[
                ("user", "tech"),
                ("password", "tech-password"),
                ("next", "/records?q=vpn"),
            ],
        )
        .await;
    assert_eq!(reply.location(), "/records?q=vpn");

    let hostile = app
        .post_form(
            "/login",
            None,
            &[
                ("user", "tech"),
                ("password", "tech-password"),
                ("next", "//evil.test/"),
            ],
        )
        .await;
    assert_eq!(hostile.location(), "/records");
}

#[tokio::test]
async fn pages_redirect_to_login_without_session() {
    let app = app().await;
    let root = app.get("/", None).await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), "/records");

    for path in [
        "/records",
        "/records/new?process=ticket",
        "/records/TCK0000001",
    ] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            reply.location().starts_with("/login?next="),
            "{path}: {}",
            reply.location()
        );
    }

    let stale = Session {
        cookie: "tend_session=not-a-session".into(),
        csrf: String::new(),
    };
    let reply = app.get("/records", Some(&stale)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);

    let post = app
        .post_form(
            "/records/new?process=ticket",
            None,
            &[("title", "No session")],
        )
        .await;
    assert_eq!(post.status, StatusCode::SEE_OTHER);
    assert_eq!(post.location(), "/login");
    assert_eq!(app.record_count().await, 0);

    let api = app.get("/api/v1/records", None).await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn post_without_csrf_is_forbidden() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let token = app.new_form_token(&tech).await;

    let missing = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[("form_token", &token), ("title", "Printer jammed")],
        )
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(
        missing.body.contains("nothing was saved"),
        "{}",
        missing.body
    );

    let mut wrong = tech.csrf.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    let wrong_reply = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &wrong),
                ("form_token", &token),
                ("title", "Printer jammed"),
            ],
        )
        .await;
    assert_eq!(wrong_reply.status, StatusCode::FORBIDDEN);
    assert_eq!(app.record_count().await, 0);

    let number = app.create_ticket(&tech, "Printer jammed", "").await;
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    let entries_before = app.store.journal(record.id).await.unwrap().len();

    let transition = app
        .post_form(
            &format!("/records/{number}/transitions/start"),
            Some(&tech),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(transition.status, StatusCode::FORBIDDEN);
    let comment = app
        .post_form(
            &format!("/records/{number}/comments"),
            Some(&tech),
            &[("text", "hello")],
        )
        .await;
    assert_eq!(comment.status, StatusCode::FORBIDDEN);
    let edit = app
        .post_form(
            &format!("/records/{number}/edit"),
            Some(&tech),
            &[("title", "Changed")],
        )
        .await;
    assert_eq!(edit.status, StatusCode::FORBIDDEN);
    let after = app.store.get_record(&number).await.unwrap().unwrap();
    assert_eq!(after.state, "new");
    assert_eq!(after.title, "Printer jammed");
    assert_eq!(
        app.store.journal(record.id).await.unwrap().len(),
        entries_before
    );

    let logout = app.post_form("/logout", Some(&tech), &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/records", Some(&tech)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_ends_session() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let reply = app
        .post_form("/logout", Some(&tech), &[("csrf", &tech.csrf)])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/login");
    let cleared = reply.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = app.get("/records", Some(&tech)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn create_through_form_shows_record() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let form = app.get("/records/new?process=ticket", Some(&tech)).await;
    assert!(
        form.body.contains(r#"<label for="new-title">"#),
        "{}",
        form.body
    );
    assert!(
        form.body
            .contains(r#"<select id="new-impact" name="impact""#)
    );
    assert!(
        form.body
            .contains(r#"<textarea id="new-notes" name="notes""#)
    );
    assert!(
        form.body
            .contains(r#"<input type="number" id="new-effort" name="effort""#)
    );
    assert!(
        !form.body.contains(r#"name="priority""#),
        "read-only fields are not offered"
    );
    assert!(
        form.body
            .contains(r#"<option value="medium" selected>Medium</option>"#),
        "the default is preselected, with a humanised label"
    );

    let number = app
        .create_ticket(
            &tech,
            "VPN drops every hour",
            "Since Monday.\r\nAll laptops.",
        )
        .await;
    assert_eq!(number, "TCK0000001");
    let page = app.get(&format!("/records/{number}"), Some(&tech)).await;
    assert_eq!(page.status, StatusCode::OK);
    let policy = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    let html = &page.body;
    assert!(html.contains("TCK0000001: VPN drops every hour"), "{html}");
    assert!(html.contains(r#"<span class="state">New</span>"#));
    assert!(
        html.contains("Since Monday.\nAll laptops."),
        "line breaks are normalised"
    );
    assert!(
        html.contains("<dt>Assignment group</dt><dd>network</dd>"),
        "{html}"
    );
    assert!(html.contains("<dt>Priority</dt><dd>P1</dd>"));
    assert!(
        html.contains("<dt>Impact</dt><dd>High</dd>"),
        "enum values are humanised in the field list"
    );
    assert!(html.contains("<dt>Contact type</dt><dd>Self service</dd>"));
    // Why the record was assigned: the recommendation and the journal name rule and reason.
    // The action reads as words and its parameters as a list without the null `window`.
    assert!(html.contains("<strong>Restart vpn</strong>"), "{html}");
    assert!(
        html.contains(r#"<ul class="params"><li>host: vpn1</li></ul>"#),
        "{html}"
    );
    assert!(!html.contains("window"), "null parameters are left out");
    assert!(
        html.contains("No installed plugin offers network/restart_vpn"),
        "without the plugin there is no run form, and the page says why: {html}"
    );
    assert!(html.contains(
        "Why: VPN outages usually end with a restart of the gateway (rule ticket/route)"
    ));
    assert!(html.contains("Recommended action Restart vpn (host: vpn1)"));
    assert!(html.contains("Assignment group: (empty) → network"));
    assert!(html.contains("Rule ticket/route: the text mentions VPN, which the network team runs"));
    assert!(html.contains("Created in state New"));
    // Transitions a technician may take from `new`, each with its own form.
    assert!(html.contains(r#"action="/records/TCK0000001/transitions/start""#));
    assert!(html.contains(r#"action="/records/TCK0000001/transitions/resolve""#));
    assert!(
        html.contains(r#"id="t-resolve-resolution_code""#),
        "resolve asks for its required field"
    );
    assert!(
        !html.contains("transitions/reopen"),
        "reopen is not possible from new"
    );

    let list = app.get("/records", Some(&tech)).await;
    assert!(
        list.body
            .contains(r#"<a href="/records/TCK0000001">TCK0000001</a>"#),
        "{}",
        list.body
    );
    assert!(list.body.contains("<td>VPN drops every hour</td>"));
    assert!(list.body.contains("<td>network</td>"));
}

#[tokio::test]
async fn create_rejection_keeps_input() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let token = app.new_form_token(&tech).await;
    let reply = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("form_token", &token),
                ("title", "Laptop broken"),
                ("effort", "three"),
                ("notes", "keep me"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(
        reply.body.contains(
            r#"<p class="error" id="new-effort-error">Effort in hours must be a whole number.</p>"#
        ),
        "{}",
        reply.body
    );
    assert!(reply.body.contains(r#"value="Laptop broken""#));
    assert!(reply.body.contains(">keep me</textarea>"));
    assert_eq!(
        hidden_value(&reply.body, "form_token"),
        token,
        "the form keeps its token"
    );
    assert_eq!(app.record_count().await, 0);

    let blank = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("form_token", &token),
                ("title", "  "),
            ],
        )
        .await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        blank
            .body
            .contains(r#"id="new-title-error">Title is required.</p>"#),
        "{}",
        blank.body
    );

    let bad_enum = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("form_token", &token),
                ("title", "Laptop broken"),
                ("category", "end user device"),
            ],
        )
        .await;
    assert_eq!(bad_enum.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_enum.body.contains(
            r#"id="new-category-error">Category must be one of Network, End user device.</p>"#
        ),
        "{}",
        bad_enum.body
    );

    // A field that only technicians set, sent by a requester, is named by its label.
    let ann = app.login("ann", "ann-password").await;
    let ann_token = app.new_form_token(&ann).await;
    let forbidden = app
        .post_form(
            "/records/new?process=ticket",
            Some(&ann),
            &[
                ("csrf", &ann.csrf),
                ("form_token", &ann_token),
                ("title", "Laptop broken"),
                ("contact_type", "walk_in"),
            ],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert!(
        forbidden.body.contains(
            "The record was not created: You need the Technician role to set Contact type."
        ),
        "{}",
        forbidden.body
    );
    assert_eq!(app.record_count().await, 0);

    let unknown = app
        .post_form(
            "/records/new?process=nothing",
            Some(&tech),
            &[("csrf", &tech.csrf), ("title", "x")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(app.record_count().await, 0);
}

#[tokio::test]
async fn transition_and_comment_through_forms() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let number = app.create_ticket(&tech, "Mail stuck", "").await;
    let record_path = format!("/records/{number}");

    let missing = app
        .post_form(
            &format!("{record_path}/transitions/resolve"),
            Some(&tech),
            &[("csrf", &tech.csrf), ("resolution_code", "")],
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.body
    );
    assert!(
        missing.body.contains(r#"id="t-resolve-resolution_code-error">Resolution code is required to resolve this ticket.</p>"#),
        "{}",
        missing.body
    );
    assert_eq!(
        missing.body.matches("is required to").count(),
        1,
        "the message is shown once, beside its field"
    );
    assert!(
        !missing.body.contains("`resolution_code`"),
        "no machine names"
    );

    // The REST API keeps the machine names that its clients send.
    let token = app.store.create_token("tech", "test").await.unwrap();
    let api = app
        .send(
            Request::post(format!("/api/v1{record_path}/transitions/resolve"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(api.status, StatusCode::UNPROCESSABLE_ENTITY);
    let json: Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(
        json["error"]["message"],
        "field `resolution_code` is required to take transition `resolve`"
    );

    let resolved = app
        .post_form(
            &format!("{record_path}/transitions/resolve"),
            Some(&tech),
            &[("csrf", &tech.csrf), ("resolution_code", "fixed")],
        )
        .await;
    assert_eq!(resolved.status, StatusCode::SEE_OTHER, "{}", resolved.body);
    assert_eq!(resolved.location(), record_path);
    let page = app.get(&record_path, Some(&tech)).await;
    assert!(page.body.contains(r#"<span class="state">Resolved</span>"#));
    assert!(page.body.contains("Resolve: New → Resolved"));
    assert!(page.body.contains("<dt>Resolution code</dt><dd>fixed</dd>"));
    assert!(
        page.body
            .contains(r#"<textarea id="t-reopen-comment" name="comment" rows="3" required>"#),
        "reopen asks for a comment"
    );

    let no_comment = app
        .post_form(
            &format!("{record_path}/transitions/reopen"),
            Some(&tech),
            &[("csrf", &tech.csrf)],
        )
        .await;
    assert_eq!(no_comment.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_comment.body.contains(
            r#"<p class="error" id="t-reopen-comment-error">Reopen needs a comment that says why.</p>"#
        ),
        "the message sits under the comment: {}",
        no_comment.body
    );

    let stale = app
        .post_form(
            &format!("{record_path}/transitions/start"),
            Some(&tech),
            &[("csrf", &tech.csrf)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(
        stale
            .body
            .contains("Start work is not possible while this ticket is Resolved."),
        "{}",
        stale.body
    );

    let comment = app
        .post_form(
            &format!("{record_path}/comments"),
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("text", "Restarted the queue.\r\nWatching it."),
            ],
        )
        .await;
    assert_eq!(comment.status, StatusCode::SEE_OTHER);
    let page = app.get(&record_path, Some(&tech)).await;
    assert!(
        page.body.contains(
            r#"<div class="text">Restarted the queue.
Watching it.</div>"#
        ),
        "{}",
        page.body
    );

    let empty = app
        .post_form(
            &format!("{record_path}/comments"),
            Some(&tech),
            &[("csrf", &tech.csrf), ("text", " ")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty.body.contains(
            r#"id="comment-error">The comment is empty, so nothing was sent. Write the comment first.</p>"#
        ),
        "{}",
        empty.body
    );

    // A requester who tries a technician's transition learns which role it takes.
    let ann = app.login("ann", "ann-password").await;
    let mine = app.create_ticket(&ann, "Screen flickers", "").await;
    let forbidden = app
        .post_form(
            &format!("/records/{mine}/transitions/start"),
            Some(&ann),
            &[("csrf", &ann.csrf)],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert!(
        forbidden.body.contains(
            r#"<p class="alert" role="alert">You need the Technician role to start work.</p>"#
        ),
        "{}",
        forbidden.body
    );
}

#[tokio::test]
async fn requester_sees_own_records_only() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let ann = app.login("ann", "ann-password").await;
    let theirs = app.create_ticket(&tech, "Server room too warm", "").await;
    let mine = app.create_ticket(&ann, "VPN slow", "").await;

    let list = app.get("/records", Some(&ann)).await;
    assert!(list.body.contains(&mine), "{}", list.body);
    assert!(!list.body.contains(&theirs));
    assert!(
        !list.body.contains(r#"name="requester""#),
        "requesters cannot filter by requester"
    );
    let other = app.get(&format!("/records/{theirs}"), Some(&ann)).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);

    let page = app.get(&format!("/records/{mine}"), Some(&ann)).await;
    assert!(page.body.contains("<dt>Requester</dt><dd>ann</dd>"));
    assert!(
        !page.body.contains("Recommendations"),
        "recommendations are for staff"
    );
    assert!(
        !page.body.contains("transitions/start"),
        "a requester cannot start work"
    );
    assert!(!page.body.contains("/edit"), "a requester cannot edit");
    assert_eq!(
        app.get(&format!("/records/{mine}/edit"), Some(&ann))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(
        page.body
            .contains(r#"action="/records/TCK0000002/comments""#)
    );

    let forced = app.get("/records?requester=tech", Some(&ann)).await;
    assert!(!forced.body.contains(&theirs));
}

#[tokio::test]
async fn list_filters_and_pages() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    for i in 0..52 {
        let title = if i % 2 == 0 {
            format!("VPN issue {i}")
        } else {
            format!("Printer issue {i}")
        };
        app.create_ticket(&tech, &title, "").await;
    }
    let first = app.get("/records", Some(&tech)).await;
    assert_eq!(
        first.body.matches("<tr>").count(),
        1 + 50,
        "a header row and 50 records"
    );
    let next = first
        .body
        .split(r#"<a href=""#)
        .find_map(|part| {
            part.split_once(r#"" rel="next">Next page</a>"#)
                .map(|(href, _)| href.to_owned())
        })
        .expect("a next page link");
    let next = next.replace("&amp;", "&");
    let second = app.get(&next, Some(&tech)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body.matches("<tr>").count(), 1 + 2);
    assert!(second.body.contains("First page"));
    assert!(!second.body.contains("Next page"));

    let filtered = app
        .get("/records?q=printer&open=true&process=ticket", Some(&tech))
        .await;
    assert_eq!(filtered.body.matches("<tr>").count(), 1 + 26);
    assert!(
        filtered
            .body
            .contains(r#"<input type="text" id="f-q" name="q" value="printer">"#)
    );
    let group = app
        .get("/records?assignment_group=network", Some(&tech))
        .await;
    assert_eq!(group.body.matches("<tr>").count(), 1 + 26);
    let none = app.get("/records?open=false", Some(&tech)).await;
    assert!(none.body.contains("No records match these filters."));

    let invalid = app.get("/records?open=maybe", Some(&tech)).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert!(invalid.body.contains("invalid value `maybe` for open"));
    let cursor = app.get("/records?cursor=zz", Some(&tech)).await;
    assert_eq!(cursor.status, StatusCode::BAD_REQUEST);
    let process = app.get("/records?process=nothing", Some(&tech)).await;
    assert_eq!(process.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn edit_form_updates_record() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let number = app.create_ticket(&tech, "Old title", "").await;
    let form = app
        .get(&format!("/records/{number}/edit"), Some(&tech))
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"value="Old title""#));
    let revision = hidden_value(&form.body, "revision");

    let saved = app
        .post_form(
            &format!("/records/{number}/edit"),
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("revision", &revision),
                ("title", "New title"),
                ("description", ""),
                ("assignee", "tech"),
                ("effort", "4"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    assert_eq!(record.title, "New title");
    assert_eq!(record.fields["effort"], Value::from(4));
    assert_eq!(record.fields["assignee"], "tech");

    let stale = app
        .post_form(
            &format!("/records/{number}/edit"),
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("revision", &revision),
                ("title", "Lost update"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body.contains("was changed by someone else"));
    assert!(
        stale.body.contains(r#"value="Lost update""#),
        "the input is kept"
    );
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    assert_eq!(record.title, "New title");
}

/// Markup typed into form fields is shown as text on every page and kept literally in the
/// JSON API.
#[tokio::test]
async fn script_in_form_fields_is_escaped() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let token = app.new_form_token(&tech).await;
    let escaped_title = "&quot;&gt;&lt;img src=x onerror=alert(document.domain)&gt;";
    let escaped_description =
        "&lt;b onmouseover=alert(1)&gt;click&lt;/b&gt;&lt;script&gt;alert(2)&lt;/script&gt;";

    let with_extra = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("form_token", &token),
                ("title", XSS_TITLE),
                ("description", XSS_DESCRIPTION),
                ("requester_name", XSS_EXTRA),
            ],
        )
        .await;
    assert_eq!(
        with_extra.status,
        StatusCode::BAD_REQUEST,
        "{}",
        with_extra.body
    );
    assert!(
        with_extra.body.contains("unknown field `requester_name`"),
        "{}",
        with_extra.body
    );
    assert!(
        with_extra
            .body
            .contains(&format!(r#"value="{escaped_title}""#)),
        "{}",
        with_extra.body
    );
    assert!(
        with_extra
            .body
            .contains(&format!(">{escaped_description}</textarea>"))
    );
    assert!(
        !with_extra.body.contains("alert(\"x\")"),
        "the unknown field's value is not echoed"
    );
    assert_no_raw_markup(&with_extra.body, "rejected new form");
    assert_eq!(app.record_count().await, 0);

    let created = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("form_token", &token),
                ("title", XSS_TITLE),
                ("description", XSS_DESCRIPTION),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let path = created.location().to_owned();

    let detail = app.get(&path, Some(&tech)).await;
    assert!(detail.body.contains(escaped_title), "{}", detail.body);
    assert!(detail.body.contains(escaped_description));
    assert_no_raw_markup(&detail.body, "detail page");

    let list = app.get("/records", Some(&tech)).await;
    assert!(
        list.body.contains(&format!("<td>{escaped_title}</td>")),
        "{}",
        list.body
    );
    assert_no_raw_markup(&list.body, "list page");

    let edit = app.get(&format!("{path}/edit"), Some(&tech)).await;
    assert!(
        edit.body.contains(&format!(r#"value="{escaped_title}""#)),
        "{}",
        edit.body
    );
    assert!(
        edit.body
            .contains(&format!(">{escaped_description}</textarea>"))
    );
    assert_no_raw_markup(&edit.body, "edit form");

    let filtered = app.get("/records?q=%3Cscript%3Ealert", Some(&tech)).await;
    assert!(filtered.body.contains(r#"value="&lt;script&gt;alert""#));
    assert_no_raw_markup(&filtered.body, "list filtered by markup");

    let token = app.store.create_token("tech", "test").await.unwrap();
    let number = path.trim_start_matches("/records/");
    let api = app
        .send(
            Request::get(format!("/api/v1/records/{number}"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(api.status, StatusCode::OK);
    let json: Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(json["title"], XSS_TITLE);
    assert_eq!(json["description"], XSS_DESCRIPTION);
}

/// The same form posted twice, one after the other or at once, creates one record.
#[tokio::test]
async fn double_submit_creates_one_record() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let token = app.new_form_token(&tech).await;
    let pairs = [
        ("csrf", tech.csrf.as_str()),
        ("form_token", token.as_str()),
        ("title", "Double click"),
    ];
    let first = app
        .post_form("/records/new?process=ticket", Some(&tech), &pairs)
        .await;
    let second = app
        .post_form("/records/new?process=ticket", Some(&tech), &pairs)
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(second.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location(), second.location());
    assert_eq!(app.record_count().await, 1);

    let token = app.new_form_token(&tech).await;
    let pairs = [
        ("csrf", tech.csrf.as_str()),
        ("form_token", token.as_str()),
        ("title", "Concurrent click"),
    ];
    let (one, two) = tokio::join!(
        app.post_form("/records/new?process=ticket", Some(&tech), &pairs),
        app.post_form("/records/new?process=ticket", Some(&tech), &pairs),
    );
    assert_eq!(one.status, StatusCode::SEE_OTHER, "{}", one.body);
    assert_eq!(two.status, StatusCode::SEE_OTHER, "{}", two.body);
    assert_eq!(one.location(), two.location());
    assert_ne!(one.location(), first.location());
    assert_eq!(app.record_count().await, 2);

    // The same token from another user is another user's form.
    let ann = app.login("ann", "ann-password").await;
    let theirs = app
        .post_form(
            "/records/new?process=ticket",
            Some(&ann),
            &[
                ("csrf", &ann.csrf),
                ("form_token", &token),
                ("title", "Concurrent click"),
            ],
        )
        .await;
    assert_eq!(theirs.status, StatusCode::SEE_OTHER);
    assert_ne!(theirs.location(), one.location());
    assert_eq!(app.record_count().await, 3);
}

fn multipart_request(
    session: Option<&Session>,
    csrf_header: Option<&str>,
    body: &'static str,
) -> Request<Body> {
    let mut request = Request::post("/records/new?process=ticket").header(
        header::CONTENT_TYPE,
        r#"multipart/form-data; boundary="boundary""#,
    );
    if let Some(session) = session {
        request = request.header(header::COOKIE, &session.cookie);
    }
    if let Some(csrf) = csrf_header {
        request = request.header("x-csrf-token", csrf);
    }
    request.body(Body::from(body)).unwrap()
}

/// An empty or cut multipart body is a client error, never a server error.
#[tokio::test]
async fn malformed_multipart_is_rejected() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;

    let empty = "--boundary--";
    assert_eq!(empty.len(), 12);
    let reply = app
        .send(multipart_request(Some(&tech), Some(&tech.csrf), empty))
        .await;
    assert!(
        reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::UNPROCESSABLE_ENTITY,
        "{}: {}",
        reply.status,
        reply.body
    );
    assert!(reply.body.contains("Title is required."), "{}", reply.body);
    assert_eq!(app.record_count().await, 0);

    let token = app.store.create_token("tech", "test").await.unwrap();
    let mut with_token = multipart_request(None, None, empty);
    with_token.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let reply = app.send(with_token).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert!(reply.body.contains("Title is required."));

    // Pages work for token callers too; they have no session, so no logout button.
    let form_page = Request::get("/records/new?process=ticket")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let form_page = app.send(form_page).await;
    assert_eq!(form_page.status, StatusCode::OK, "{}", form_page.body);
    assert!(
        form_page
            .body
            .contains(r#"<input type="hidden" name="csrf" value="">"#)
    );
    assert!(!form_page.body.contains("Log out"));

    let no_csrf = app.send(multipart_request(Some(&tech), None, empty)).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);

    let cut = "--boundary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nPrinter on fi";
    let reply = app
        .send(multipart_request(Some(&tech), Some(&tech.csrf), cut))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body.contains("malformed"), "{}", reply.body);
    assert_eq!(app.record_count().await, 0);

    let whole = "--boundary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nPrinter on fire\r\n--boundary\r\nContent-Disposition: form-data; name=\"impact\"\r\n\r\nhigh\r\n--boundary--\r\n";
    let reply = app
        .send(multipart_request(Some(&tech), Some(&tech.csrf), whole))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let record = app.store.get_record("TCK0000001").await.unwrap().unwrap();
    assert_eq!(record.title, "Printer on fire");
    assert_eq!(record.fields["priority"], "P1");
}

#[tokio::test]
async fn new_record_chooser_lists_processes() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let chooser = app.get("/records/new", Some(&tech)).await;
    assert_eq!(chooser.status, StatusCode::OK);
    assert!(
        chooser
            .body
            .contains(r#"<a href="/records/new?process=ticket">Ticket</a>"#),
        "{}",
        chooser.body
    );
    let unknown = app.get("/records/new?process=nothing", Some(&tech)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body.contains("unknown process `nothing`"),
        "{}",
        unknown.body
    );
}

/// Forms show only the fields the viewer may set, enum values read as words, and a select
/// whose field has a default offers no empty choice.
#[tokio::test]
async fn forms_offer_only_settable_fields() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let ann = app.login("ann", "ann-password").await;
    let root = app.login("root", "root-password").await;

    let form = app.get("/records/new?process=ticket", Some(&tech)).await;
    let impact = select_options(&form.body, "new-impact");
    let impact_values: Vec<&str> = impact.iter().map(|(value, _)| value.as_str()).collect();
    assert_eq!(impact_values, ["high", "medium", "low"], "no empty choice");
    assert_eq!(
        select_options(&form.body, "new-category")[0],
        ("".to_owned(), "(none)".to_owned()),
        "a field without a default keeps its empty choice"
    );
    assert_eq!(
        select_options(&form.body, "new-contact_type"),
        [
            ("self_service".to_owned(), "Self service".to_owned()),
            ("walk_in".to_owned(), "Walk in".to_owned()),
        ]
    );
    assert!(
        !form.body.contains(r#"name="billing_code""#),
        "billing codes are set by admins"
    );
    let requester_form = app.get("/records/new?process=ticket", Some(&ann)).await;
    for field in ["contact_type", "resolution_code", "billing_code"] {
        assert!(
            !requester_form.body.contains(&format!(r#"name="{field}""#)),
            "a requester is offered `{field}`"
        );
    }
    let admin_form = app.get("/records/new?process=ticket", Some(&root)).await;
    assert!(admin_form.body.contains(r#"name="billing_code""#));

    // The technician creates a ticket for the requester, by the form, as a walk-in.
    let token = app.new_form_token(&tech).await;
    let created = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("form_token", &token),
                ("title", "Badge reader dead"),
                ("impact", "high"),
                ("contact_type", "walk_in"),
                ("requester", "ann"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let number = created
        .location()
        .trim_start_matches("/records/")
        .to_owned();
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    assert_eq!(
        record.fields["contact_type"], "walk_in",
        "the raw value is stored"
    );
    let page = app.get(created.location(), Some(&tech)).await;
    assert!(page.body.contains("<dt>Contact type</dt><dd>Walk in</dd>"));

    let edit = app
        .get(&format!("/records/{number}/edit"), Some(&tech))
        .await;
    assert!(edit.body.contains(r#"name="contact_type""#));
    assert!(
        edit.body
            .contains(r#"<option value="walk_in" selected>Walk in</option>"#)
    );
    assert!(!edit.body.contains(r#"name="billing_code""#));
    assert!(
        !edit.body.contains(r#"name="priority""#),
        "set by rules only"
    );
    let admin_edit = app
        .get(&format!("/records/{number}/edit"), Some(&root))
        .await;
    assert!(admin_edit.body.contains(r#"name="billing_code""#));

    let revision = hidden_value(&edit.body, "revision");
    let saved = app
        .post_form(
            &format!("/records/{number}/edit"),
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("revision", &revision),
                ("title", "Badge reader dead"),
                ("impact", "low"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = app.get(created.location(), Some(&tech)).await;
    assert!(
        page.body.contains("Impact: High → Low"),
        "the journal humanises enum values: {}",
        page.body
    );

    // Closing requires the resolution code, which only technicians set.
    resolve_at(&app, &number, chrono::Utc::now()).await;
    let tech_page = app.get(created.location(), Some(&tech)).await;
    assert!(transition_form(&tech_page.body, "close").contains(r#"name="resolution_code""#));
    let ann_page = app.get(created.location(), Some(&ann)).await;
    let ann_close = transition_form(&ann_page.body, "close");
    assert!(
        !ann_close.contains(r#"name="resolution_code""#),
        "{ann_close}"
    );
    assert!(ann_close.contains("<button type=\"submit\">Close</button>"));

    // Effort is locked once the ticket is closed.
    let closed = app
        .post_form(
            &format!("/records/{number}/transitions/close"),
            Some(&ann),
            &[("csrf", &ann.csrf)],
        )
        .await;
    assert_eq!(closed.status, StatusCode::SEE_OTHER, "{}", closed.body);
    let closed_edit = app
        .get(&format!("/records/{number}/edit"), Some(&tech))
        .await;
    assert!(!closed_edit.body.contains(r#"name="effort""#));
    assert!(closed_edit.body.contains(r#"name="notes""#));
}

/// A requester's comment on a ticket resolved two days ago reopens it; a technician's
/// comment on the same ticket does not.
#[tokio::test]
async fn requester_reply_reopens_recent_resolution() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let ann = app.login("ann", "ann-password").await;
    let number = app.create_ticket(&ann, "Printer offline", "").await;
    let path = format!("/records/{number}");
    resolve_at(
        &app,
        &number,
        chrono::Utc::now() - chrono::TimeDelta::days(2),
    )
    .await;

    let staff_comment = app
        .post_form(
            &format!("{path}/comments"),
            Some(&tech),
            &[("csrf", &tech.csrf), ("text", "Replaced the toner.")],
        )
        .await;
    assert_eq!(staff_comment.status, StatusCode::SEE_OTHER);
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    assert_eq!(
        record.state, "resolved",
        "a technician's comment is no reply"
    );
    let tech_page = app.get(&path, Some(&tech)).await;
    assert!(!tech_page.body.contains(r#"class="hint""#));

    let page = app.get(&path, Some(&ann)).await;
    assert!(
        page.body
            .contains(r#"<p class="hint">Your comment reopens this ticket.</p>"#),
        "{}",
        page.body
    );
    let reply = app
        .post_form(
            &format!("{path}/comments"),
            Some(&ann),
            &[("csrf", &ann.csrf), ("text", "Still offline after lunch.")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), path);
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    assert_eq!(record.state, "in_progress");
    let page = app.get(&path, Some(&ann)).await;
    assert!(
        page.body.contains("Reopen: Resolved → In progress"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Still offline after lunch."));
    assert_eq!(app.record_count().await, 1, "no follow-up record");
}

/// A requester's comment on a closed ticket, or on one resolved longer ago than the
/// reopen window, opens a follow-up ticket and leaves the original as it was.
#[tokio::test]
async fn requester_reply_opens_follow_up() {
    let app = app().await;
    let ann = app.login("ann", "ann-password").await;
    let closed = app.create_ticket(&ann, "Mailbox full", "").await;
    resolve_at(&app, &closed, chrono::Utc::now()).await;
    let close = Command::Transition {
        name: "close".into(),
        fields: Fields::new(),
        comment: None,
    };
    app.commands
        .apply(&technician(), &closed, close)
        .await
        .unwrap();
    let original = app.store.get_record(&closed).await.unwrap().unwrap();
    let entries_before = app.store.journal(original.id).await.unwrap().len();

    let page = app.get(&format!("/records/{closed}"), Some(&ann)).await;
    assert!(
        page.body.contains(
            "This ticket is Closed, so your comment opens a new ticket that refers to it."
        ),
        "{}",
        page.body
    );
    let reply = app
        .post_form(
            &format!("/records/{closed}/comments"),
            Some(&ann),
            &[("csrf", &ann.csrf), ("text", "It is full again.")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let follow_up = reply.location().trim_start_matches("/records/").to_owned();
    assert_ne!(follow_up, closed, "the reply lands on a new record");
    let record = app.store.get_record(&follow_up).await.unwrap().unwrap();
    assert_eq!(record.fields["follow_up_of"], closed.as_str());
    assert_eq!(record.fields["requester"], "ann");
    assert_eq!(record.title, format!("Follow-up of {closed}: Mailbox full"));
    assert_eq!(record.description, "It is full again.");
    let page = app.get(reply.location(), Some(&ann)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(&format!("<dt>Follow-up of</dt><dd>{closed}</dd>"))
    );
    let original_after = app.store.get_record(&closed).await.unwrap().unwrap();
    assert_eq!(original_after.state, "closed");
    assert_eq!(
        app.store.journal(original.id).await.unwrap().len(),
        entries_before,
        "the closed ticket gets no entry"
    );

    // Past the 7-day reopen window, a resolved ticket is followed up as well.
    let old = app.create_ticket(&ann, "Headset crackles", "").await;
    resolve_at(&app, &old, chrono::Utc::now() - chrono::TimeDelta::days(10)).await;
    let page = app.get(&format!("/records/{old}"), Some(&ann)).await;
    assert!(page.body.contains(
        "This ticket is Resolved, so your comment opens a new ticket that refers to it."
    ));
    let reply = app
        .post_form(
            &format!("/records/{old}/comments"),
            Some(&ann),
            &[("csrf", &ann.csrf), ("text", "Crackling again.")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_ne!(reply.location(), format!("/records/{old}"));
    let old_after = app.store.get_record(&old).await.unwrap().unwrap();
    assert_eq!(old_after.state, "resolved");
    assert_eq!(app.record_count().await, 4);
}

#[tokio::test]
async fn approver_decides_through_record_page() {
    let app = app().await;
    let tech = app.login("tech", "tech-password").await;
    let created = app
        .post_form(
            "/records/new?process=ticket",
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("title", "Disk failing in the file server"),
            ],
        )
        .await;
    let number = created
        .location()
        .trim_start_matches("/records/")
        .to_owned();
    let path = format!("/records/{number}");
    for step in ["start", "order_parts"] {
        let reply = app
            .post_form(
                &format!("{path}/transitions/{step}"),
                Some(&tech),
                &[("csrf", &tech.csrf)],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{step}: {}",
            reply.body
        );
    }
    // The technician who asked is shown the round but no decision form.
    let page = app.get(&path, Some(&tech)).await;
    assert!(page.body.contains("Round 1: Order parts"), "{}", page.body);
    assert!(
        !page.body.contains("/transitions/order_parts"),
        "a pending round is not asked for again: {}",
        page.body
    );
    assert!(!page.body.contains("value=\"approve\""), "{}", page.body);

    let root = app.login("root", "root-password").await;
    let queue = app.get("/approvals", Some(&root)).await;
    assert!(queue.body.contains(&number), "{}", queue.body);
    let page = app.get(&path, Some(&root)).await;
    let action = page
        .body
        .split("action=\"")
        .find_map(|rest| rest.split('"').next().filter(|a| a.contains("/approvals/")))
        .unwrap_or_else(|| panic!("no decision form: {}", page.body))
        .to_owned();

    let no_reason = app
        .post_form(
            &action,
            Some(&root),
            &[
                ("csrf", &root.csrf),
                ("decision", "reject"),
                ("reason", " "),
            ],
        )
        .await;
    assert_eq!(
        no_reason.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_reason.body
    );
    assert!(
        no_reason.body.contains("a rejection needs a reason"),
        "{}",
        no_reason.body
    );

    let approved = app
        .post_form(
            &action,
            Some(&root),
            &[
                ("csrf", &root.csrf),
                ("decision", "approve"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let page = app.get(&path, Some(&root)).await;
    assert!(page.body.contains("Approved by user:root"), "{}", page.body);
    assert!(!page.body.contains("value=\"approve\""), "{}", page.body);
    let queue = app.get("/approvals", Some(&root)).await;
    assert!(!queue.body.contains(&number), "{}", queue.body);
}

#[tokio::test]
async fn requester_orders_from_catalog_page() {
    let app = app().await;
    let ann = app.login("ann", "ann-password").await;
    let catalog = app.get("/catalog", Some(&ann)).await;
    assert_eq!(catalog.status, StatusCode::OK);
    assert!(catalog.body.contains("VPN access"), "{}", catalog.body);
    assert!(
        !catalog.body.contains("Server room key"),
        "technicians only: {}",
        catalog.body
    );
    let form = app.get("/catalog/vpn_access", Some(&ann)).await;
    assert_eq!(form.status, StatusCode::OK);
    let durations = select_options(&form.body, "order-duration");
    assert!(
        durations.iter().all(|(value, _)| !value.is_empty()),
        "a required choice offers no empty option: {durations:?}"
    );
    let hidden = app.get("/catalog/server_room", Some(&ann)).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    let missing = app
        .post_form(
            "/catalog/vpn_access",
            Some(&ann),
            &[("csrf", &ann.csrf), ("duration", "year")],
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert!(missing.body.contains("needs an answer"), "{}", missing.body);
    assert_eq!(app.record_count().await, 0);

    let ordered = app
        .post_form(
            "/catalog/vpn_access",
            Some(&ann),
            &[
                ("csrf", &ann.csrf),
                ("reason", "Working from the branch office"),
                ("duration", "year"),
            ],
        )
        .await;
    assert_eq!(ordered.status, StatusCode::SEE_OTHER, "{}", ordered.body);
    let page = app.get(ordered.location(), Some(&ann)).await;
    assert!(page.body.contains("VPN access"), "{}", page.body);
    assert!(
        page.body
            .contains("Why do you need it?: Working from the branch office"),
        "{}",
        page.body
    );
    assert!(page.body.contains("For how long: year"), "{}", page.body);
}

/// Formats a time as the console shows it.
fn shown_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Creates a ticket as the technician at `at`. High impact makes it P1, which the SLA
/// policy covers.
async fn ticket_at(
    app: &App,
    title: &str,
    impact: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut fields = Fields::new();
    fields.insert("impact".into(), Value::from(impact));
    let input = tend_api::NewRecord {
        title: title.into(),
        description: "The SLA tests of the console".into(),
        fields,
        ..Default::default()
    };
    let (record, _) = app
        .commands
        .create_at(&technician(), "ticket", input, at)
        .await
        .unwrap();
    record.number
}

async fn transition_at(
    app: &App,
    number: &str,
    name: &str,
    comment: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) {
    let command = Command::Transition {
        name: name.into(),
        fields: Fields::new(),
        comment: comment.map(str::to_owned),
    };
    app.commands
        .apply_at(&technician(), number, command, Some(at))
        .await
        .unwrap_or_else(|error| panic!("{name} failed: {error}"));
}

/// Returns the part of the record page about the clock of target `label`.
fn clock_block<'h>(html: &'h str, label: &str) -> &'h str {
    let start = html
        .find(&format!("<h3>{label} "))
        .unwrap_or_else(|| panic!("no clock `{label}` in:\n{html}"));
    let end = html[start..].find("</div>").unwrap() + start;
    &html[start..end]
}

#[tokio::test]
async fn record_page_shows_sla_clocks() {
    let app = sla_app().await;
    let tech = app.login("tech", "tech-password").await;
    let opened = chrono::Utc::now() - chrono::TimeDelta::hours(3);
    let minutes = |count: i64| opened + chrono::TimeDelta::minutes(count);

    // Work starts 15 minutes after the 30-minute response target. The ticket waits as
    // resolved for an hour, which pauses the resolution clock, and is reopened.
    let number = ticket_at(&app, "Mail server down", "high", opened).await;
    app.commands.fire_due_timers(minutes(40)).await.unwrap();
    transition_at(&app, &number, "start", None, minutes(45)).await;
    resolve_at(&app, &number, minutes(60)).await;
    transition_at(
        &app,
        &number,
        "reopen",
        Some("Mail stopped again"),
        minutes(120),
    )
    .await;
    app.commands
        .fire_due_timers(chrono::Utc::now())
        .await
        .unwrap();

    let page = app.get(&format!("/records/{number}"), Some(&tech)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<h2 id=\"clocks-heading\">Service levels</h2>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Urgent tickets · SLA"), "{}", page.body);

    let response = clock_block(&page.body, "First response");
    assert!(
        response.contains("<span class=\"state\">Stopped</span>"),
        "{response}"
    );
    assert!(
        response.contains(&shown_time(minutes(30))),
        "due time: {response}"
    );
    assert!(
        response.contains(&format!(
            "<dt>Stopped</dt><dd>{}</dd>",
            shown_time(minutes(45))
        )),
        "{response}"
    );
    assert!(
        response.contains("<dt>Outcome</dt><dd class=\"error\">Breached by 15 min</dd>"),
        "{response}"
    );
    assert!(response.contains("45 min of 30 min"), "{response}");
    assert!(
        response.contains("<dt>Thresholds reached</dt><dd>50 %, 100 %</dd>"),
        "{response}"
    );
    assert!(
        response.contains(&format!("Started {}", shown_time(opened))),
        "{response}"
    );
    assert!(response.contains("calendar 24x7 (UTC)"), "{response}");
    assert!(
        !response.contains("not counted"),
        "the stop is shown on its own line: {response}"
    );

    // Resolution: 1 h before the pause and 1 h since, so 2 h of 4 h are used, and the
    // hour of the pause moves the due time from 4 h to 5 h after the start.
    let resolution = clock_block(&page.body, "Resolution");
    assert!(
        resolution.contains("<span class=\"state\">Running</span>"),
        "{resolution}"
    );
    assert!(
        resolution.contains(&shown_time(minutes(300))),
        "due time: {resolution}"
    );
    assert!(
        resolution.contains("<dt>Time left</dt><dd>"),
        "{resolution}"
    );
    // 4 h less the 2 h used and the seconds the test took so far.
    assert!(
        resolution.contains("<dt>Time left</dt><dd>1 h 5"),
        "{resolution}"
    );
    assert!(
        resolution.contains("<dt>Thresholds reached</dt><dd>50 %</dd>"),
        "{resolution}"
    );
    assert!(
        resolution.contains(&format!("100 % at {}", shown_time(minutes(300)))),
        "next threshold: {resolution}"
    );
    assert!(
        resolution.contains(&format!(
            "not counted: {} to {}",
            shown_time(minutes(60)),
            shown_time(minutes(120))
        )),
        "paused period: {resolution}"
    );

    // Resolving it again pauses the resolution clock, which leaves its due time open.
    let paused_at = chrono::Utc::now();
    resolve_at(&app, &number, paused_at).await;
    let page = app.get(&format!("/records/{number}"), Some(&tech)).await;
    let resolution = clock_block(&page.body, "Resolution");
    assert!(
        resolution.contains("<span class=\"state\">Paused</span>"),
        "{resolution}"
    );
    assert!(
        resolution.contains("<dt>Due</dt><dd>not set while the clock is paused</dd>"),
        "{resolution}"
    );
    assert!(
        resolution.contains(&format!("; paused since {}.", shown_time(paused_at))),
        "{resolution}"
    );

    // A P3 ticket is not covered by the policy, so its page has no section.
    let other = ticket_at(&app, "Printer toner low", "low", chrono::Utc::now()).await;
    let page = app.get(&format!("/records/{other}"), Some(&tech)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("Service levels</h2>"), "{}", page.body);
}

#[tokio::test]
async fn sla_report_page_for_technicians() {
    let app = sla_app().await;
    let tech = app.login("tech", "tech-password").await;
    let now = chrono::Utc::now();
    let opened = now - chrono::TimeDelta::minutes(150);

    // Breached response, resolution due in 1 h 30 min.
    let late = ticket_at(&app, "Mail server down", "high", opened).await;
    transition_at(
        &app,
        &late,
        "start",
        None,
        opened + chrono::TimeDelta::minutes(45),
    )
    .await;
    // Met response, resolution due in 4 h.
    let met = ticket_at(&app, "Laptop will not boot", "high", now).await;
    transition_at(&app, &met, "start", None, now).await;
    // Both clocks running, the response due in 30 minutes.
    let fresh = app
        .create_ticket(&tech, "VPN gateway unreachable", "")
        .await;

    let records = app.get("/records", Some(&tech)).await;
    assert!(
        records
            .body
            .contains("<a href=\"/reports/sla\">Service levels</a>"),
        "{}",
        records.body
    );

    let from = (opened - chrono::TimeDelta::days(1))
        .date_naive()
        .to_string();
    let to = now.date_naive().to_string();
    let page = app
        .get(&format!("/reports/sla?from={from}&to={to}"), Some(&tech))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("<tr><td>Urgent tickets</td><td>SLA</td><td>1</td><td>1</td><td>4</td><td>50.0 %</td></tr>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<td><strong>50.0 %</strong></td>"),
        "total: {}",
        page.body
    );
    assert!(
        page.body.contains(r#"value="policy" checked"#),
        "{}",
        page.body
    );

    // Only the fresh ticket's response falls due within the default hour.
    assert!(
        page.body
            .contains(&format!("<a href=\"/records/{fresh}\">{fresh}</a>")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&format!("/records/{late}\"")),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&format!("/records/{met}\"")),
        "{}",
        page.body
    );

    let wider = app
        .get(
            &format!("/reports/sla?from={from}&to={to}&group_by=policy&within=2h"),
            Some(&tech),
        )
        .await;
    assert_eq!(wider.status, StatusCode::OK, "{}", wider.body);
    assert!(
        wider
            .body
            .contains(&format!("<a href=\"/records/{late}\">{late}</a>")),
        "{}",
        wider.body
    );
    assert!(
        !wider.body.contains(&format!("/records/{met}\"")),
        "{}",
        wider.body
    );

    // Each ticked box sends a `group_by`, and the form's empty one means none was ticked.
    let by_priority = app
        .get(
            &format!("/reports/sla?from={from}&to={to}&group_by=&group_by=priority"),
            Some(&tech),
        )
        .await;
    assert_eq!(by_priority.status, StatusCode::OK, "{}", by_priority.body);
    assert!(
        by_priority
            .body
            .contains("<tr><td>P1</td><td>1</td><td>1</td><td>4</td><td>50.0 %</td></tr>"),
        "{}",
        by_priority.body
    );
    assert!(
        by_priority.body.contains(r#"value="priority" checked"#),
        "{}",
        by_priority.body
    );
    assert!(
        !by_priority.body.contains(r#"value="policy" checked"#),
        "{}",
        by_priority.body
    );

    let invalid = app
        .get(
            &format!("/reports/sla?from={from}&within=soon"),
            Some(&tech),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{}", invalid.body);
    assert!(
        invalid.body.contains("value=\"soon\""),
        "input kept: {}",
        invalid.body
    );
    assert!(
        invalid.body.contains("<td>Urgent tickets</td>"),
        "report still shown: {}",
        invalid.body
    );

    let reversed = app
        .get(&format!("/reports/sla?from={to}&to={from}"), Some(&tech))
        .await;
    assert_eq!(
        reversed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        reversed.body
    );
    assert!(
        reversed.body.contains("is before the start date"),
        "{}",
        reversed.body
    );
}

#[tokio::test]
async fn sla_report_page_refused_for_requesters() {
    let app = sla_app().await;
    let ann = app.login("ann", "ann-password").await;
    let records = app.get("/records", Some(&ann)).await;
    assert!(!records.body.contains("/reports/sla"), "{}", records.body);

    let page = app.get("/reports/sla", Some(&ann)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(
        page.body.contains("SLA reports are for technicians"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Breaching soon"), "{}", page.body);

    let anonymous = app.get("/reports/sla", None).await;
    assert_eq!(
        anonymous.status,
        StatusCode::SEE_OTHER,
        "{}",
        anonymous.body
    );
}

/// The `network` plugin of the run-form test: `restart_vpn` records the host it was given.
struct NetworkPlugin {
    actions: Vec<tend_plugin_api::ActionSpec>,
    restarted: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl tend_plugin_api::Plugin for NetworkPlugin {
    fn name(&self) -> &str {
        "network"
    }

    fn description(&self) -> &str {
        "Network tools of the web tests"
    }

    fn actions(&self) -> &[tend_plugin_api::ActionSpec] {
        &self.actions
    }

    async fn run(
        &self,
        request: tend_plugin_api::ActionRequest,
        _cancel: tend_plugin_api::CancellationToken,
    ) -> Result<tend_plugin_api::ActionOutcome, tend_plugin_api::PluginError> {
        let host = request.params["host"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.restarted.lock().unwrap().push(host.clone());
        Ok(tend_plugin_api::ActionOutcome::succeeded(
            format!("Restarted {host}"),
            "",
        ))
    }
}

fn network_plugins(
    restarted: Arc<std::sync::Mutex<Vec<String>>>,
) -> tend_plugin_api::PluginRegistry {
    let spec: tend_plugin_api::ActionSpec = serde_json::from_value(serde_json::json!({
        "name": "restart_vpn",
        "label": "Restart VPN gateway",
        "params": {
            "host": { "type": "string", "label": "Gateway", "required": true, "max_length": 60 },
            "drain": { "type": "boolean", "label": "Drain sessions first", "default": true }
        },
        "timeout_seconds": 10,
        "roles": ["technician"]
    }))
    .unwrap();
    let mut plugins = tend_plugin_api::PluginRegistry::new();
    plugins.add(Arc::new(NetworkPlugin {
        actions: vec![spec],
        restarted,
    }));
    plugins
}

#[tokio::test]
async fn recommended_action_runs_from_record_page() {
    let restarted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = build_app_with(false, false, network_plugins(restarted.clone())).await;
    let tech = app.login("tech", "tech-password").await;
    let number = app
        .create_ticket(&tech, "VPN down", "no tunnel since 9:00")
        .await;
    let path = format!("/records/{number}");

    // The form is filled from the recommendation: no retyping.
    let page = app.get(&path, Some(&tech)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    assert!(
        html.contains("<strong>Restart VPN gateway</strong>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"action="/records/{number}/actions""#)),
        "{html}"
    );
    assert!(html.contains(r#"name="param.host" value="vpn1""#), "{html}");
    assert!(html.contains(r#"name="param.drain" checked"#), "{html}");
    assert!(html.contains("Run Restart VPN gateway"), "{html}");

    // A cleared required value comes back beside the form, with the input kept.
    let rejected = app
        .post_form(
            &format!("/records/{number}/actions"),
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("plugin", "network"),
                ("action", "restart_vpn"),
                (
                    "reason",
                    "VPN outages usually end with a restart of the gateway",
                ),
                ("recommendation", "0"),
                ("param.host", ""),
            ],
        )
        .await;
    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.body
    );
    assert!(rejected.body.contains("host"), "{}", rejected.body);
    assert!(
        rejected.body.contains(r#"role="alert""#),
        "{}",
        rejected.body
    );

    let queued = app
        .post_form(
            &format!("/records/{number}/actions"),
            Some(&tech),
            &[
                ("csrf", &tech.csrf),
                ("plugin", "network"),
                ("action", "restart_vpn"),
                (
                    "reason",
                    "VPN outages usually end with a restart of the gateway",
                ),
                ("recommendation", "0"),
                ("param.host", "vpn1"),
                ("param.drain", "on"),
            ],
        )
        .await;
    assert_eq!(queued.status, StatusCode::SEE_OTHER, "{}", queued.body);
    assert_eq!(queued.location(), format!("/records/{number}#runs"));

    let worker = tend_api::actions::ActionWorker::new(
        app.commands.clone(),
        "web-test",
        1,
        tend_plugin_api::CancellationToken::new(),
    );
    let mut page = app.get(&path, Some(&tech)).await;
    for _ in 0..50 {
        worker.pass().await.unwrap();
        page = app.get(&path, Some(&tech)).await;
        if page.body.contains("Restarted vpn1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(page.body.contains(r#"id="runs""#), "{}", page.body);
    assert!(page.body.contains("<td>Succeeded</td>"), "{}", page.body);
    assert!(
        page.body.contains("<td>Restarted vpn1</td>"),
        "{}",
        page.body
    );
    assert_eq!(*restarted.lock().unwrap(), ["vpn1"]);
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    let runs = app.store.action_runs_of(record.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].params,
        serde_json::json!({ "host": "vpn1", "drain": true })
    );
    assert_eq!(runs[0].actor, "tech");
}

/// A rule runs an action the definition allows by itself, as `rule:NAME`; an action the
/// definition does not allow is refused and journaled.
#[tokio::test]
async fn rule_runs_allowed_action_by_itself() {
    let restarted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = build_app_with(false, false, network_plugins(restarted.clone())).await;
    let tech = app.login("tech", "tech-password").await;
    let number = app
        .create_ticket(&tech, "VPN down", "please restart now")
        .await;
    let record = app.store.get_record(&number).await.unwrap().unwrap();
    let runs = app.store.action_runs_of(record.id, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].actor, "rule:ticket/route");
    assert_eq!(runs[0].action, "restart_vpn");
    assert_eq!(
        runs[0].reason.as_deref(),
        Some("The requester asked for a restart now")
    );
    let worker = tend_api::actions::ActionWorker::new(
        app.commands.clone(),
        "web-test",
        1,
        tend_plugin_api::CancellationToken::new(),
    );
    for _ in 0..50 {
        worker.pass().await.unwrap();
        if !restarted.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(*restarted.lock().unwrap(), ["vpn2"]);

    let journal = app.store.journal(record.id).await.unwrap();
    let refused = journal
        .iter()
        .find_map(|entry| match &entry.event {
            tend_domain::JournalEvent::FollowOnFailed { effect, error, .. } => {
                Some((effect.clone(), error.clone()))
            }
            _ => None,
        })
        .expect("the refused action is journaled");
    assert_eq!(refused.0, "run `network/reboot_core`");
    assert!(
        refused
            .1
            .contains("does not let rules run network/reboot_core by themselves"),
        "{}",
        refused.1
    );
}

/// The API runs a recommendation without retyping its parameters, and with a changed one.
#[tokio::test]
async fn recommendation_runs_over_api() {
    let restarted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = build_app_with(false, false, network_plugins(restarted)).await;
    let tech = app.login("tech", "tech-password").await;
    let number = app.create_ticket(&tech, "VPN down", "no tunnel").await;
    let post = |path: String, body: &'static str| {
        let mut request = Request::post(path)
            .header(header::COOKIE, &tech.cookie)
            .header("x-csrf-token", &tech.csrf);
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        request.body(Body::from(body)).unwrap()
    };
    let as_is = app
        .send(post(
            format!("/api/v1/records/{number}/recommendations/0/run"),
            "",
        ))
        .await;
    assert_eq!(as_is.status, StatusCode::ACCEPTED, "{}", as_is.body);
    let run: Value = serde_json::from_str(&as_is.body).unwrap();
    assert_eq!(
        run["params"],
        serde_json::json!({ "host": "vpn1", "drain": true })
    );
    assert_eq!(
        run["reason"],
        "VPN outages usually end with a restart of the gateway"
    );

    let changed = app
        .send(post(
            format!("/api/v1/records/{number}/recommendations/0/run"),
            r#"{"params": {"host": "vpn3"}}"#,
        ))
        .await;
    assert_eq!(changed.status, StatusCode::ACCEPTED, "{}", changed.body);
    let run: Value = serde_json::from_str(&changed.body).unwrap();
    assert_eq!(run["params"]["host"], "vpn3");

    let missing = app
        .send(post(
            format!("/api/v1/records/{number}/recommendations/4/run"),
            "",
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
}
