//! HTTP channels of Tend: the JSON REST API under `/api/v1`, the web console (server-rendered
//! handlebars pages that work without JavaScript) and the health check.

pub mod actions;
pub mod alert_intake;
pub mod approvals;
pub mod auth;
pub mod calendars;
mod cascade;
pub mod catalog;
pub mod ci_rules;
pub mod clocks;
pub mod cmdb;
pub mod cmdb_audit;
pub mod collections;
pub mod commands;
pub mod error;
pub mod inventory;
pub mod mail_intake;
pub mod outbound;
pub mod outbox_worker;
mod plugin_mail;
pub mod record_cmdb;
pub mod reports;
pub mod rest;
pub mod rest_actions;
pub mod rest_cmdb;
pub mod rest_inventory;
pub mod scheduled_rules;
pub mod schedules;
mod trends;
pub mod versions;
pub mod views;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;

pub use commands::{Commands, Created, Engine, NewRecord, Pinned, Replied};
pub use error::ApiError;
pub use schedules::{SCHEDULE_ACTOR, ScheduleRunReport};
pub use versions::{LoadFailure, Loaded, ReloadOutcome, ReloadStatus};

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Shared state of every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub commands: Commands,
    pub web: Arc<web::Web>,
    pub tokens: Arc<auth::TokenCache>,
}

impl AppState {
    pub fn new(commands: Commands, secure_cookies: bool) -> AppState {
        AppState {
            commands,
            web: Arc::new(web::Web::new(secure_cookies)),
            tokens: Arc::new(auth::TokenCache::default()),
        }
    }
}

/// Builds the router with every route; tests call it directly or through [`serve`].
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/records", get(rest::list))
        .route(
            "/records/{key}",
            get(rest::read).post(rest::create).patch(rest::update),
        )
        .route(
            "/records/{number}/transitions/{name}",
            post(rest::transition),
        )
        .route("/records/{number}/comments", post(rest::comment))
        .route("/records/{number}/replies", post(rest::reply))
        .route("/records/{number}/links", post(rest::link))
        .route("/records/{number}/approvals/{id}", post(rest::decide))
        .route("/records/{number}/actions", post(rest_actions::queue))
        .route(
            "/records/{number}/recommendations/{index}/run",
            post(rest_actions::run_recommendation),
        )
        .route("/action-runs/{id}", get(rest_actions::run))
        .route("/action-runs/{id}/approve", post(rest_actions::approve))
        .route("/action-runs/{id}/reject", post(rest_actions::reject))
        .route("/plugins", get(rest_actions::plugins))
        .route("/approvals", get(rest::my_approvals))
        .route("/catalog", get(rest::catalog))
        .route("/catalog/{item}", post(rest::order))
        .route("/reports/sla", get(reports::sla))
        .route("/reports/sla/breaching", get(reports::breaching))
        .route("/cis", get(rest_cmdb::list).post(rest_cmdb::create))
        .route("/cis/{id}", get(rest_cmdb::read).patch(rest_cmdb::update))
        .route("/cis/{id}/retire", post(rest_cmdb::retire))
        .route("/cis/{id}/impact", get(rest_cmdb::impact_of))
        .route(
            "/impact",
            get(rest_cmdb::impact_many).post(rest_cmdb::impact_post),
        )
        .route("/relationships", post(rest_cmdb::relate))
        .route("/relationships/{id}", delete(rest_cmdb::unrelate))
        .route("/ci-classes", get(rest_cmdb::classes))
        .route("/collections", get(rest_cmdb::collections))
        .route("/collections/{name}", get(rest_cmdb::collection_members))
        .route("/cmdb/audit", get(rest_cmdb::audit))
        .route("/cmdb/audit/tasks", post(rest_cmdb::audit_tasks))
        .route("/inventory", post(rest_inventory::import))
        .route("/inventory/imports", get(rest_inventory::imports))
        .route("/inventory/imports/{id}", get(rest_inventory::import_entry))
        .route("/inventory/imports/{id}/retry", post(rest_inventory::retry))
        .route("/processes", get(rest::processes))
        .route("/definitions", get(rest::definitions))
        .route("/definitions/reload", post(rest::reload))
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(rest::healthz))
        .merge(web::routes())
        .merge(alert_intake::routes())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Raw mail has its own limit per mailbox, so its routes join after the API's limit.
        .merge(mail_intake::routes())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
