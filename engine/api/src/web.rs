//! The web console: server-rendered handlebars pages whose forms work without JavaScript.
//!
//! Layout: `session` has login, logout, the page caller and the CSRF check. `forms` reads
//! urlencoded and multipart bodies, turns form text into field values and builds field
//! inputs. `list` is the record list and `create` the new-record form. `detail` is the
//! record page with its transition, comment and edit forms, and `journal` turns journal
//! entries into text. `display` shows machine names (enum values, actions) as labels, and
//! `messages` words a rejected form's error with the labels of the definition. `sla` has
//! the service levels section of the record page and the staff report page. `mail` has
//! the mail quarantine and the page of one stored message. The CMDB pages are for staff, as
//! the CMDB API is. `cmdb` has the CI list and what those pages share, and `cmdb_ci` the CI
//! page. `cmdb_forms` has the CI and relationship forms, `cmdb_imports` the inventory
//! import log and `cmdb_audit` the CMDB audit. `alerts` lists the alerts that monitoring
//! sent, for staff.
//! Templates are `templates/*.hbs`, embedded in the binary and compiled once in [`Web::new`].
//!
//! Every change goes through [`crate::Commands`], like the REST API's. Every POST form carries
//! the session's CSRF token, and handlers check it before anything is written.

mod alerts;
mod approvals;
mod catalog;
mod cmdb;
mod cmdb_audit;
mod cmdb_ci;
mod cmdb_forms;
mod cmdb_imports;
mod create;
mod detail;
mod display;
mod forms;
mod journal;
mod list;
mod mail;
mod messages;
mod session;
mod sla;
mod tools;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

pub use session::{SESSION_TTL, Viewer};

/// Partials, used by the page templates as `{{#> layout}}` and `{{> field}}`.
const PARTIALS: [(&str, &str); 4] = [
    ("layout", include_str!("../templates/layout.hbs")),
    ("field", include_str!("../templates/field.hbs")),
    ("attachments", include_str!("../templates/attachments.hbs")),
    ("cmdb_nav", include_str!("../templates/cmdb_nav.hbs")),
];

/// Page templates, rendered by name.
const PAGES: [(&str, &str); 21] = [
    ("login", include_str!("../templates/login.hbs")),
    ("records", include_str!("../templates/records.hbs")),
    (
        "choose_process",
        include_str!("../templates/choose_process.hbs"),
    ),
    ("new", include_str!("../templates/new.hbs")),
    ("record", include_str!("../templates/record.hbs")),
    ("edit", include_str!("../templates/edit.hbs")),
    ("message", include_str!("../templates/message.hbs")),
    ("catalog", include_str!("../templates/catalog.hbs")),
    ("order", include_str!("../templates/order.hbs")),
    ("approvals", include_str!("../templates/approvals.hbs")),
    ("sla_report", include_str!("../templates/sla_report.hbs")),
    (
        "mail_quarantine",
        include_str!("../templates/mail_quarantine.hbs"),
    ),
    (
        "mail_message",
        include_str!("../templates/mail_message.hbs"),
    ),
    ("cmdb_list", include_str!("../templates/cmdb_list.hbs")),
    ("cmdb_ci", include_str!("../templates/cmdb_ci.hbs")),
    ("cmdb_form", include_str!("../templates/cmdb_form.hbs")),
    ("cmdb_retire", include_str!("../templates/cmdb_retire.hbs")),
    (
        "cmdb_imports",
        include_str!("../templates/cmdb_imports.hbs"),
    ),
    ("cmdb_import", include_str!("../templates/cmdb_import.hbs")),
    ("cmdb_audit", include_str!("../templates/cmdb_audit.hbs")),
    ("alerts", include_str!("../templates/alerts.hbs")),
];

/// Pages allow no script at all and only the inline style of the layout, so text that slips
/// past escaping still cannot run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Templates and settings of the web console.
pub struct Web {
    /// Adds `Secure` to the session cookie; set it whenever the console is served over HTTPS.
    pub secure_cookies: bool,
    /// How long a login lasts.
    pub session_ttl: Duration,
    templates: Handlebars<'static>,
}

impl Web {
    /// Compiles the embedded templates.
    ///
    /// # Panics
    /// When an embedded template does not compile, which the crate's tests catch.
    pub fn new(secure_cookies: bool) -> Web {
        let mut templates = Handlebars::new();
        // A misspelt variable fails the render instead of showing an empty value.
        templates.set_strict_mode(true);
        templates.register_escape_fn(escape_html);
        for (name, source) in PARTIALS {
            if let Err(error) = templates.register_partial(name, source) {
                panic!("the embedded template partial `{name}` does not compile: {error}");
            }
        }
        for (name, source) in PAGES {
            if let Err(error) = templates.register_template_string(name, source) {
                panic!("the embedded page template `{name}` does not compile: {error}");
            }
        }
        Web {
            secure_cookies,
            session_ttl: SESSION_TTL,
            templates,
        }
    }

    /// Renders page `template` inside the layout. `body` must serialize to a JSON object;
    /// the layout adds `page_title`, `viewer` and `csrf` to it.
    pub(crate) fn page<T: Serialize>(
        &self,
        status: StatusCode,
        template: &str,
        viewer: Option<&Viewer>,
        page_title: &str,
        body: &T,
    ) -> Response {
        let mut data = match serde_json::to_value(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => serde_json::Map::new(),
            Err(error) => return render_failure(template, &error),
        };
        data.insert("page_title".into(), json!(page_title));
        data.insert(
            "viewer".into(),
            viewer.map_or(Value::Null, |viewer| viewer.layout_json()),
        );
        data.insert(
            "csrf".into(),
            json!(viewer.and_then(|viewer| viewer.caller.csrf())),
        );
        match self.templates.render(template, &Value::Object(data)) {
            Ok(html) => html_response(status, html),
            Err(error) => render_failure(template, &error),
        }
    }

    /// Renders a page with a heading and one message, for errors and notices.
    pub(crate) fn message(
        &self,
        status: StatusCode,
        viewer: Option<&Viewer>,
        heading: &str,
        message: &str,
    ) -> Response {
        self.page(
            status,
            "message",
            viewer,
            heading,
            &json!({ "heading": heading, "message": message }),
        )
    }

    /// Renders the page for an error that leaves nothing to redisplay. Server errors are
    /// logged and shown as a short reason.
    pub(crate) fn error(&self, viewer: Option<&Viewer>, error: &ApiError) -> Response {
        let status = error.status();
        if status.is_server_error() {
            tracing::error!(%error, "web request failed");
        }
        let heading = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::CONFLICT => "Conflict",
            status if status.is_server_error() => "Server error",
            _ => "Invalid request",
        };
        self.message(status, viewer, heading, &error.public_message())
    }

    /// Renders the 403 page for a POST whose CSRF token is missing or wrong.
    pub(crate) fn csrf_rejected(&self, viewer: &Viewer) -> Response {
        tracing::warn!(
            user = viewer.actor().name,
            "rejected a form without this session's CSRF token"
        );
        self.message(
            StatusCode::FORBIDDEN,
            Some(viewer),
            "Form rejected",
            "The form did not carry this session's security token, so nothing was saved. \
             Reload the page and submit the form again.",
        )
    }
}

/// Routes of the web console; the crate's router merges them beside the API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/records") }))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/records", get(list::list))
        .route("/records/new", get(create::form).post(create::create))
        .route("/records/{number}", get(detail::show))
        .route(
            "/records/{number}/edit",
            get(detail::edit_form).post(detail::edit),
        )
        .route(
            "/records/{number}/transitions/{name}",
            post(detail::transition),
        )
        .route("/records/{number}/comments", post(detail::comment))
        .route("/records/{number}/actions", post(tools::run))
        .route(
            "/records/{number}/action-runs/{id}/decision",
            post(tools::decide),
        )
        .route("/catalog", get(catalog::list))
        .route("/approvals", get(approvals::queue))
        .route("/reports/sla", get(sla::report))
        .route("/catalog/{item}", get(catalog::form).post(catalog::order))
        .route("/records/{number}/approvals/{id}", post(detail::decide))
        .route("/alerts", get(alerts::list))
        .route("/mail/quarantine", get(mail::quarantine))
        .route("/mail/quarantine/{id}/retry", post(mail::retry))
        .route("/mail/messages/{id}", get(mail::message))
        .route("/mail/messages/{id}/html", get(mail::message_html))
        .route("/attachments/{id}/inline", get(mail::inline_attachment))
        .route("/cmdb", get(cmdb::list))
        .route(
            "/cmdb/new",
            get(cmdb_forms::new_form).post(cmdb_forms::create),
        )
        .route("/cmdb/cis/{id}", get(cmdb_ci::show))
        .route(
            "/cmdb/cis/{id}/edit",
            get(cmdb_forms::edit_form).post(cmdb_forms::edit),
        )
        .route(
            "/cmdb/cis/{id}/retire",
            get(cmdb_forms::retire_form).post(cmdb_forms::retire),
        )
        .route("/cmdb/cis/{id}/relationships", post(cmdb_forms::relate))
        .route(
            "/cmdb/cis/{id}/relationships/{relationship}/remove",
            post(cmdb_forms::unrelate),
        )
        .route("/cmdb/imports", get(cmdb_imports::list))
        .route("/cmdb/imports/{id}", get(cmdb_imports::entry))
        .route("/cmdb/imports/{id}/retry", post(cmdb_imports::retry))
        .route("/cmdb/audit", get(cmdb_audit::report))
        .route("/cmdb/audit/tasks", post(cmdb_audit::open_tasks))
}

/// Escapes text for HTML element content and double-quoted attribute values: `&`, `<`, `>`,
/// `"` and `'`. Every template quotes its attributes with `"`, so `=` and backticks, which
/// handlebars escapes by default for unquoted attributes, stay as they are and messages such
/// as "field `title` is required" read as written.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages show records of the logged-in user; shared caches must not keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn render_failure(template: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, template, "failed to render a web console page");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server failed to render this page; the cause is in the server log.",
    )
        .into_response()
}

/// Formats a time as the console shows it.
pub(crate) fn format_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile() {
        let web = Web::new(false);
        for (name, _) in PAGES {
            assert!(web.templates.has_template(name), "page `{name}` is missing");
        }
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape_html(r#""><img src=x onerror='a'>&`"#),
            "&quot;&gt;&lt;img src=x onerror=&#x27;a&#x27;&gt;&amp;`"
        );
    }
}
