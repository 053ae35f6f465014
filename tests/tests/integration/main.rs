//! Integration tests of Tend: the REST API, the command line and the audit trail, each on
//! SQLite and on PostgreSQL (`NAME::sqlite` and `NAME::postgres`).

mod agreement;
mod approvals;
mod audit;
mod binary;
mod change;
mod cascade;
mod cli_output;
mod common;
mod idempotency;
mod import;
mod links;
mod list_query;
mod problem;
mod rejections;
mod reopen;
mod replay;
mod replies;
mod simulate;
mod support;
mod timers;
mod trends;
mod user_cli;
mod versions;
mod walkthrough;
