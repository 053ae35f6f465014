use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::distributions::Alphanumeric;
use tend_api::actions::ActionWorker;
use tend_api::outbox_worker::OutboxWorker;
use tend_api::{AppState, Commands};
use tend_domain::Role;
use tend_plugin_api::CancellationToken;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::setup::{open_engine, open_store, redact};

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let url = args.store.url();
    let store = open_store(&url).await?;
    tracing::info!(store = %redact(&url), "store opened");
    let source = &args.definitions.definitions;
    let engine = Arc::new(open_engine(store.clone(), source).await?);
    let set = engine.definitions();
    tracing::info!(
        definitions.version = %set.version,
        processes = set.definitions.len(),
        "definitions loaded from {}",
        source.display()
    );
    // Held until the server stops: dropping the watcher ends the watch.
    let _watcher = if args.no_watch {
        tracing::info!("definitions are reloaded only by `tend reload`: --no-watch is set");
        None
    } else {
        Some(crate::reload::watch(engine.clone(), source)?)
    };
    bootstrap_admin(&store).await?;
    if args.checkpoint_seconds > 0 {
        tokio::spawn(checkpoints(
            store.clone(),
            Duration::from_secs(args.checkpoint_seconds),
        ));
    }

    let plugins_dir = args
        .plugins_dir
        .clone()
        .unwrap_or_else(|| source.join("plugins"));
    let plugins = crate::plugins::registry(&plugins_dir)?;
    let outbound = tend_api::outbound::OutboundConfig {
        console_url: args
            .console_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.listen)),
        ..tend_api::outbound::OutboundConfig::default()
    };
    let commands = Commands::new(store, engine)
        .with_plugins(plugins)
        .with_outbound(outbound);
    match &args.smtp_url {
        Some(url) => {
            let sender = tend_mail::outbound::SmtpSender::from_url(url)?;
            tracing::info!(
                smtp = sender.display_url(),
                "notifications are sent through this SMTP server"
            );
            let worker = OutboxWorker::new(commands.clone(), sender, node_name());
            tokio::spawn(send_mail(
                worker,
                Duration::from_secs(args.mail_seconds.max(1)),
            ));
        }
        None => tracing::warn!(
            "notifications are not being sent: they stay queued until a server runs with --smtp-url (TEND_SMTP_URL)"
        ),
    }
    match commands.group_warnings().await {
        Ok(warnings) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
        }
        Err(error) => tracing::warn!(%error, "checking the group members against the users failed"),
    }
    if args.timer_seconds > 0 {
        tokio::spawn(fire_timers(
            commands.clone(),
            Duration::from_secs(args.timer_seconds),
        ));
    } else {
        tracing::warn!(
            "timers are off (SLA thresholds, automatic transitions, approval deadlines): --timer-seconds is 0"
        );
    }
    if args.schedule_seconds > 0 {
        tokio::spawn(run_schedules(
            commands.clone(),
            Duration::from_secs(args.schedule_seconds),
        ));
    } else {
        tracing::warn!("cron schedules are off: --schedule-seconds is 0");
    }
    start_imap_pollers(&commands, source, args.no_imap);
    let stopping = CancellationToken::new();
    let worker = (args.action_workers > 0).then(|| {
        let worker = ActionWorker::new(
            commands.clone(),
            node_name(),
            args.action_workers,
            stopping.clone(),
        );
        tokio::spawn(run_actions(worker.clone()));
        worker
    });
    if worker.is_none() {
        tracing::warn!("this node runs no plugin actions: --action-workers is 0");
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| anyhow::anyhow!("failed to listen on {}: {error}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "tend is serving");
    println!("Tend is listening on http://{address}/ (web console) and http://{address}/api/v1/");
    tend_api::serve(
        listener,
        AppState::new(commands, args.secure_cookies),
        shutdown_signal(),
    )
    .await?;
    if let Some(worker) = worker {
        // Runs in progress are cancelled and journaled as failed; runs not yet claimed
        // stay queued for the next node.
        stopping.cancel();
        worker.drain(Duration::from_secs(10)).await;
    }
    tracing::info!("tend stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts one IMAP poller per mailbox with an `imap:` section. A mailbox that gets one
/// later is polled from the next start.
fn start_imap_pollers(commands: &Commands, definitions: &std::path::Path, off: bool) {
    let set = commands.engine.definitions();
    let polled: Vec<String> = set
        .mailboxes
        .values()
        .filter(|mailbox| mailbox.file.imap.is_some())
        .map(|mailbox| mailbox.name.clone())
        .collect();
    if polled.is_empty() {
        return;
    }
    if off {
        tracing::warn!(mailboxes = ?polled, "IMAP polling is off: --no-imap is set");
        return;
    }
    for mailbox in polled {
        tracing::info!(mailbox, "starting the IMAP poller");
        tokio::spawn(crate::imap::run_poller(
            commands.clone(),
            mailbox,
            definitions.to_path_buf(),
        ));
    }
}

/// Writes an audit checkpoint at every `interval`, the first one after one interval. A
/// failed checkpoint is logged and tried again at the next interval.
async fn checkpoints(store: tend_store::Store, interval: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.checkpoint().await {
            Ok(()) => tracing::info!("audit checkpoint written"),
            Err(error) => {
                tracing::error!(%error, "audit checkpoint failed; retrying at the next interval")
            }
        }
    }
}

/// Takes the automatic transitions, handles the approval deadlines and resumes follow-on
/// work that stopped nodes left, at every `interval`, the first time right away. A
/// failed run is logged and the due timers are claimed again at the next interval.
async fn fire_timers(commands: Commands, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match commands.fire_due_timers(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(taken) => tracing::info!(taken, "automatic transitions taken"),
            Err(error) => {
                tracing::error!(%error, "taking automatic transitions failed; retrying at the next interval")
            }
        }
        match commands.handle_approval_deadlines(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(handled) => tracing::info!(handled, "approval deadlines handled"),
            Err(error) => {
                tracing::error!(%error, "handling approval deadlines failed; retrying at the next interval")
            }
        }
        match commands.resume_follow_ons(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(resumed) => tracing::info!(resumed, "follow-on work of stopped nodes done"),
            Err(error) => {
                tracing::error!(%error, "resuming follow-on work failed; retrying at the next interval")
            }
        }
    }
}

/// Opens the records of the cron schedules due, at every `interval`, the first time right
/// away, so that runs missed while no server ran are handled on start. A due time more
/// than twice the interval (and at least a minute) old counts as missed: passes on time
/// never see one. A failed pass is logged, and the next pass picks up where it stopped.
async fn run_schedules(commands: Commands, interval: Duration) {
    let grace = chrono::TimeDelta::from_std(interval * 2)
        .unwrap_or(chrono::TimeDelta::MAX)
        .max(chrono::TimeDelta::minutes(1));
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match commands.run_due_schedules(chrono::Utc::now(), grace).await {
            Ok(reports) => {
                let opened = reports
                    .iter()
                    .filter(|report| report.record_number.is_some())
                    .count();
                if opened > 0 {
                    tracing::info!(opened, "scheduled records opened");
                }
            }
            Err(error) => {
                tracing::error!(%error, "running the cron schedules failed; retrying at the next interval")
            }
        }
    }
}

/// Claims and runs queued plugin action runs every second, renews the leases of the runs
/// in progress, and ends the leases of stopped nodes. A failed pass is logged and tried
/// again a second later.
async fn run_actions(worker: ActionWorker) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = worker.pass().await {
            tracing::error!(%error, "running plugin actions failed; retrying in a second");
        }
    }
}

/// Sends the queued notifications now due at every `interval`. A failed pass is logged
/// and tried again at the next interval; the rows stay queued.
async fn send_mail(worker: OutboxWorker, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = worker.pass(chrono::Utc::now()).await {
            tracing::error!(%error, "sending notifications failed; retrying at the next pass");
        }
    }
}

/// Names this node in the runs it claims: host name and process id.
fn node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Creates the `admin` user with a random one-time password when the store has no user.
async fn bootstrap_admin(store: &tend_store::Store) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    store
        .add_user("admin", None, &[Role::Admin], &password)
        .await?;
    println!("Created the first user `admin` with password: {password}");
    println!("Log in at the web console and keep this password safe; it is not shown again.");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "failed to listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
