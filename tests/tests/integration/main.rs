//! Integration tests of Tend: the REST API, the command line and the audit trail, each on
//! SQLite and on PostgreSQL (`NAME::sqlite` and `NAME::postgres`).

mod agreement;
mod approvals;
mod audit;
mod availability;
mod binary;
mod calendar_cli;
mod cascade;
mod change;
mod cli_output;
mod common;
mod continuity;
mod cost_entry;
mod docs;
mod idempotency;
mod import;
mod links;
mod list_query;
mod major_incident;
mod problem;
mod problem_fix;
mod rejections;
mod release;
mod reopen;
mod replay;
mod replies;
mod schedules;
mod service_request;
mod simulate;
mod sla;
mod support;
mod timers;
mod trends;
mod user_cli;
mod versions;
mod walkthrough;
