//! sea-orm entities, one per table created by the `tend-migrations` crate.

pub mod action_runs;
pub mod alerts;
pub mod api_tokens;
pub mod approval_requests;
pub mod approval_rounds;
pub mod attachments;
pub mod audit_checkpoints;
pub mod ci_keys;
pub mod ci_relationships;
pub mod ci_versions;
pub mod cis;
pub mod definition_versions;
pub mod follow_ons;
pub mod idempotency_keys;
pub mod journal;
pub mod mail_addresses;
pub mod mail_messages;
pub mod mail_outbox;
pub mod record_links;
pub mod records;
pub mod schedule_runs;
pub mod sessions;
pub mod sla_clocks;
pub mod timers;
pub mod users;
