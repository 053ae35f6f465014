//! Schema migrations of the Tend database. The same migrations serve SQLite and PostgreSQL,
//! so they use only column types and statements that both backends accept.

pub use sea_orm_migration::prelude::*;

mod m20261204_000001_create_records;
mod m20261204_000002_create_journal;
mod m20261204_000003_create_identity;
mod m20261204_000004_create_idempotency_keys;
mod m20261204_000005_create_record_links;
mod m20261204_000006_create_timers;
mod m20261205_000007_create_approvals;
mod m20261205_000008_create_definition_versions;
mod m20261205_000009_create_follow_ons;
mod m20261205_000010_create_sla_clocks;
mod m20261205_000011_create_schedule_runs;
mod m20261205_000012_add_schedule_run_summary;
mod m20261205_000013_create_action_runs;
mod m20261205_000014_create_mail;
mod m20261205_000015_create_alerts;
mod m20261205_000016_create_mail_outbox;
mod m20261205_000018_create_cmdb;
mod m20261205_000019_add_action_run_approval;
mod m20261205_000020_add_user_locale;
mod m20261205_000021_create_inventory;

/// Every migration of the schema, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261204_000001_create_records::Migration),
            Box::new(m20261204_000002_create_journal::Migration),
            Box::new(m20261204_000003_create_identity::Migration),
            Box::new(m20261204_000004_create_idempotency_keys::Migration),
            Box::new(m20261204_000005_create_record_links::Migration),
            Box::new(m20261204_000006_create_timers::Migration),
            Box::new(m20261205_000007_create_approvals::Migration),
            Box::new(m20261205_000008_create_definition_versions::Migration),
            Box::new(m20261205_000009_create_follow_ons::Migration),
            Box::new(m20261205_000010_create_sla_clocks::Migration),
            Box::new(m20261205_000011_create_schedule_runs::Migration),
            Box::new(m20261205_000012_add_schedule_run_summary::Migration),
            Box::new(m20261205_000013_create_action_runs::Migration),
            Box::new(m20261205_000014_create_mail::Migration),
            Box::new(m20261205_000015_create_alerts::Migration),
            Box::new(m20261205_000016_create_mail_outbox::Migration),
            Box::new(m20261205_000018_create_cmdb::Migration),
            Box::new(m20261205_000019_add_action_run_approval::Migration),
            Box::new(m20261205_000020_add_user_locale::Migration),
            Box::new(m20261205_000021_create_inventory::Migration),
        ]
    }
}

/// Names of the tables that the migrations create, for checks after `up` and `down`.
pub const TABLES: [&str; 29] = [
    "records",
    "record_counters",
    "journal",
    "audit_checkpoints",
    "users",
    "api_tokens",
    "sessions",
    "idempotency_keys",
    "record_links",
    "timers",
    "approval_rounds",
    "approval_requests",
    "definition_versions",
    "follow_ons",
    "sla_clocks",
    "schedule_runs",
    "action_runs",
    "mail_messages",
    "attachments",
    "alerts",
    "mail_outbox",
    "mail_addresses",
    "cis",
    "ci_versions",
    "ci_keys",
    "ci_relationships",
    "ci_discovered",
    "ci_sightings",
    "inventory_imports",
];
