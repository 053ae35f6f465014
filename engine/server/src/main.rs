//! The `tend` binary: command line, configuration and wiring of the crates.

mod admin;
mod calendar;
mod cli;
mod imap;
mod import;
mod inventory;
mod mail;
mod migrate;
mod plugins;
mod reload;
mod replay;
mod replay_journals;
mod serve;
mod setup;
mod simulate;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    setup::init_tracing(&cli.command, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Validate(args) => admin::validate(args),
        Command::TestRules(args) => admin::test_rules(args),
        Command::User(command) => admin::user(command).await,
        Command::Token(command) => admin::token(command).await,
        Command::Audit(command) => admin::audit(command).await,
        Command::ImportTickets(args) => import::run(args).await,
        Command::ImportInventory(args) => inventory::run(args).await,
        Command::ReplayLog(args) => replay::run(args).await,
        Command::Graph(args) => admin::graph(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Reload(args) => reload::run(args).await,
        Command::MigrateRecords(args) => migrate::run(args).await,
        Command::Replay(args) => replay_journals::run(args).await,
        Command::Calendar(command) => calendar::run(command),
        Command::Schedule(command) => calendar::schedule(command),
        Command::MailGateway(args) => mail::gateway(args).await,
        Command::Mail(command) => mail::run(command).await,
        Command::Cmdb(cli::CmdbCommand::Audit(args)) => inventory::audit(args).await,
    }
}
