//! Cost of firing due timers and of listing the clocks due within the next hour, with
//! 10,000 to 1,000,000 open records carrying clocks, on SQLite and PostgreSQL. Both reads
//! go through an index (`timers.due_at`, `sla_clocks (phase, due_at)`), so their cost
//! should follow the number of rows they return, not the number of open records.
//!
//! `bench/sla-timers.sh` runs it (`cargo bench -p tend-store --bench sla_timers`) and turns
//! its output into docs/benchmarks.md. Settings, all optional:
//!
//! - `TEND_BENCH_DIR`: where the SQLite databases and the population notes are kept, so
//!   that a second run reuses them (default `$TMPDIR/tend-bench-sla-timers`).
//! - `TEND_BENCH_SIZES`: record counts, comma-separated (default `10000,100000,1000000`).
//! - `TEND_BENCH_BACKENDS`: `sqlite`, `postgres` or both (default both).
//! - `TEND_BENCH_POSTGRES_SIZES`: record counts for PostgreSQL (default `TEND_BENCH_SIZES`).
//! - `TEND_BENCH_POSTGRES_URL`: a PostgreSQL server; the benchmark creates and keeps the
//!   databases `tend_bench_sla_<N>` on it (default `postgres://postgres@127.0.0.1:5432/test`).
//! - `TEND_BENCH_ITERATIONS`: timed calls of each operation per database, rounded up to a
//!   multiple of the 10 rounds that visit every database in turn (default 200).
//! - `TEND_BENCH_OUT`: file that receives one JSON object per backend and size (default
//!   standard output).
//!
//! The data: every record is an open incident with a stopped response clock and a
//! resolution clock. One record in ten is pending, with its resolution clock paused and no
//! timer. Every other record has one SLA timer, at the due time of its resolution clock.
//! The due times of 100 records lie in the 50 minutes before the fixed instant [`now`]. The
//! others are spread evenly, in shuffled order, over the 225 hours after it, so 0.4 % of
//! the records fall due within the next hour.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, Database, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use tend_store::entities::{records, sla_clocks, timers};
use tend_store::{Backend, SLA_TIMER, SlaTimer, Store};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Timers due at [`now`]: one firing batch of the engine.
const DUE_NOW: usize = 100;
/// Minimum number of records that put more than [`SHORT_LIST`] clocks within the next hour.
const MIN_RECORDS: usize = 10_000;
/// The clocks that are not due yet fall due evenly over this span after [`now`].
const SPREAD_HOURS: i64 = 225;
/// Records per insert transaction while populating.
const CHUNK: usize = 10_000;
/// Untimed calls of each operation before the measurement.
const WARM_UP: usize = 20;
/// Rounds over all databases; each round times an equal share of the iterations.
const ROUNDS: usize = 10;
/// Maximum clocks the breaching-soon list returns (`BREACHING_LIMIT` of the API).
const LIST_LIMIT: u64 = 500;
/// Rows of the short list, fewer than the clocks due within the hour at every size.
const SHORT_LIST: u64 = 25;
/// Changes whenever the generated data changes, so that older databases are rebuilt.
const DATA_VERSION: u32 = 1;

/// Returns the instant the benchmark uses as now, a Monday morning. It is fixed, so a
/// database populated in an earlier run has the same timers due.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2027-01-04T10:00:00Z")
        .expect("valid instant")
        .with_timezone(&Utc)
}

fn main() -> BenchResult<()> {
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to check.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

#[derive(Debug, Serialize)]
struct Measurement {
    backend: &'static str,
    records: usize,
    clocks: u64,
    timers: u64,
    populate_seconds: f64,
    reused: bool,
    iterations: usize,
    /// Reading the due timers and deleting them, and each part alone.
    firing: Timings,
    firing_read: Timings,
    firing_write: Timings,
    /// Rows the breaching-soon list returns.
    list_rows: usize,
    list: Timings,
    /// The first [`SHORT_LIST`] clocks due within the hour: as many rows at every size.
    short_list: Timings,
    plans: Plans,
}

#[derive(Debug, Serialize)]
struct Plans {
    due_timers: Vec<String>,
    clocks_due: Vec<String>,
    record_lookup: Vec<String>,
}

/// Note on a populated database (data version, size, population time), written beside it
/// once population finished.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Population {
    version: u32,
    records: usize,
    seconds: f64,
}

async fn run() -> BenchResult<()> {
    let dir = std::env::var_os("TEND_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("tend-bench-sla-timers"));
    std::fs::create_dir_all(&dir)
        .map_err(|error| format!("failed to create {}: {error}", dir.display()))?;
    let sizes = sizes("TEND_BENCH_SIZES", "10000,100000,1000000")?;
    let postgres_sizes = match std::env::var("TEND_BENCH_POSTGRES_SIZES") {
        Ok(_) => sizes_of("TEND_BENCH_POSTGRES_SIZES")?,
        Err(_) => sizes.clone(),
    };
    let backends =
        std::env::var("TEND_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let iterations: usize = match std::env::var("TEND_BENCH_ITERATIONS") {
        Ok(text) => text
            .parse()
            .ok()
            .filter(|count| *count > 0)
            .ok_or_else(|| {
                format!("invalid TEND_BENCH_ITERATIONS `{text}`: use a positive count")
            })?,
        Err(_) => 200,
    };
    let postgres_url = std::env::var("TEND_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut out: Box<dyn std::io::Write> = match std::env::var_os("TEND_BENCH_OUT") {
        Some(path) => Box::new(std::fs::File::create(&path).map_err(|error| {
            format!("failed to create {}: {error}", Path::new(&path).display())
        })?),
        None => Box::new(std::io::stdout()),
    };

    let mut subjects = Vec::new();
    for backend in backends
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let (kind, counts) = match backend {
            "sqlite" => (Backend::Sqlite, &sizes),
            "postgres" => (Backend::Postgres, &postgres_sizes),
            other => {
                return Err(format!(
                    "invalid backend `{other}` in TEND_BENCH_BACKENDS: use sqlite, postgres or both"
                )
                .into());
            }
        };
        for &count in counts {
            subjects.push(Subject::open(kind, count, &dir, &postgres_url).await?);
        }
    }

    // Every database gets its share of each round, so that a slower spell of the machine
    // slows all of them alike instead of the ones measured during it.
    for subject in &mut subjects {
        subject.measure(WARM_UP).await?;
        subject.samples = Samples::default();
    }
    let per_round = iterations.div_ceil(ROUNDS);
    for round in 0..ROUNDS {
        eprintln!("round {} of {ROUNDS}", round + 1);
        for subject in &mut subjects {
            subject.measure(per_round).await?;
        }
    }

    for subject in subjects {
        let measurement = subject.finish().await?;
        eprintln!(
            "{} {}: firing p50 {:.2} ms, list p50 {:.2} ms ({} rows)",
            measurement.backend,
            measurement.records,
            measurement.firing.p50_ms,
            measurement.list.p50_ms,
            measurement.list_rows
        );
        writeln!(out, "{}", serde_json::to_string(&measurement)?)?;
        out.flush()?;
    }
    Ok(())
}

fn sizes(name: &str, default: &str) -> BenchResult<Vec<usize>> {
    match std::env::var(name) {
        Ok(_) => sizes_of(name),
        Err(_) => parse_sizes(name, default),
    }
}

fn sizes_of(name: &str) -> BenchResult<Vec<usize>> {
    let text = std::env::var(name)?;
    parse_sizes(name, &text)
}

fn parse_sizes(name: &str, text: &str) -> BenchResult<Vec<usize>> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<usize>()
                .ok()
                .filter(|count| *count >= MIN_RECORDS && *count % DUE_NOW == 0)
                .ok_or_else(|| {
                    format!(
                        "invalid record count `{item}` in {name}: use a multiple of {DUE_NOW} \
                         of at least {MIN_RECORDS}"
                    )
                    .into()
                })
        })
        .collect()
}

/// A populated database under measurement, with the samples taken so far.
struct Subject {
    backend: &'static str,
    count: usize,
    store: Store,
    populate_seconds: f64,
    reused: bool,
    samples: Samples,
}

/// Milliseconds per call, one list per timed part.
#[derive(Default)]
struct Samples {
    firing: Vec<f64>,
    firing_read: Vec<f64>,
    firing_write: Vec<f64>,
    list: Vec<f64>,
    short_list: Vec<f64>,
}

impl Subject {
    /// Opens the database of `count` records on `backend`, reusing the one populated by an
    /// earlier run or populating a new one, and makes its [`DUE_NOW`] timers due.
    async fn open(
        backend: Backend,
        count: usize,
        dir: &Path,
        postgres_url: &str,
    ) -> BenchResult<Subject> {
        let name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let note = dir.join(format!("{name}-{count}.json"));
        let previous: Option<Population> = std::fs::read_to_string(&note)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .filter(|population: &Population| {
                population.version == DATA_VERSION && population.records == count
            });
        let database = format!("tend_bench_sla_{count}");
        if previous.is_none() {
            // Start from an empty database: a run stopped while populating leaves a partial one.
            let _ = std::fs::remove_file(&note);
            clear(
                backend,
                &dir.join(format!("sqlite-{count}")),
                postgres_url,
                &database,
            )
            .await?;
        }

        // `sqlite_url` creates the directory again after a removal.
        let url = match backend {
            Backend::Sqlite => Store::sqlite_url(&dir.join(format!("sqlite-{count}"))),
            Backend::Postgres => server_database_url(postgres_url, &database),
        };
        let store = Store::connect(&url)
            .await
            .map_err(|error| format!("failed to open {url}: {error}"))?;

        let (seconds, reused) = match previous {
            Some(population) => {
                eprintln!("{name} {count}: reusing the database populated earlier");
                (population.seconds, true)
            }
            None => {
                eprintln!("{name} {count}: populating");
                let started = Instant::now();
                populate(&store, count).await?;
                let seconds = started.elapsed().as_secs_f64();
                let population = Population {
                    version: DATA_VERSION,
                    records: count,
                    seconds,
                };
                std::fs::write(&note, serde_json::to_string(&population)?)
                    .map_err(|error| format!("failed to write {}: {error}", note.display()))?;
                eprintln!("{name} {count}: populated in {seconds:.1} s");
                (seconds, false)
            }
        };

        // A run stopped between consuming and restoring leaves the due timers incomplete.
        restore_due_timers(&store, count, true).await?;
        if list(&store, SHORT_LIST).await? != SHORT_LIST as usize {
            return Err(
                format!("fewer than {SHORT_LIST} clocks are due within the next hour").into(),
            );
        }

        Ok(Subject {
            backend: name,
            count,
            store,
            populate_seconds: seconds,
            reused,
            samples: Samples::default(),
        })
    }

    /// Times `times` calls of each measured operation.
    async fn measure(&mut self, times: usize) -> BenchResult<()> {
        let samples = &mut self.samples;
        for _ in 0..times {
            let [both, read, write] = fire(&self.store, self.count).await?;
            samples.firing.push(milliseconds(both));
            samples.firing_read.push(milliseconds(read));
            samples.firing_write.push(milliseconds(write));
        }
        for _ in 0..times {
            samples
                .list
                .push(milliseconds(list_timed(&self.store, LIST_LIMIT).await?));
        }
        for _ in 0..times {
            samples
                .short_list
                .push(milliseconds(list_timed(&self.store, SHORT_LIST).await?));
        }
        Ok(())
    }

    /// Summarizes the samples and adds the row counts and query plans of the database.
    async fn finish(self) -> BenchResult<Measurement> {
        let store = &self.store;
        let clocks = sla_clocks::Entity::find().count(store.db()).await?;
        let timer_rows = timers::Entity::find().count(store.db()).await?;
        let list_rows = list(store, LIST_LIMIT).await?;
        let plans = plans(store).await?;
        store.db().clone().close().await.ok();
        let samples = self.samples;
        Ok(Measurement {
            backend: self.backend,
            records: self.count,
            clocks,
            timers: timer_rows,
            populate_seconds: self.populate_seconds,
            reused: self.reused,
            iterations: samples.firing.len(),
            firing: Timings::of(samples.firing),
            firing_read: Timings::of(samples.firing_read),
            firing_write: Timings::of(samples.firing_write),
            list_rows,
            list: Timings::of(samples.list),
            short_list: Timings::of(samples.short_list),
            plans,
        })
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Deletes the SQLite directory `data`, or drops and creates the PostgreSQL database
/// `database` on the server of `postgres_url`.
async fn clear(
    backend: Backend,
    data: &Path,
    postgres_url: &str,
    database: &str,
) -> BenchResult<()> {
    match backend {
        Backend::Sqlite => {
            if data.exists() {
                std::fs::remove_dir_all(data)
                    .map_err(|error| format!("failed to remove {}: {error}", data.display()))?;
            }
        }
        Backend::Postgres => {
            let admin = Database::connect(postgres_url).await.map_err(|error| {
                format!(
                    "PostgreSQL at {postgres_url} is unreachable: {error}; start it \
                     (scripts/ensure-postgres.sh) or set TEND_BENCH_POSTGRES_URL"
                )
            })?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {database}"))
                .await?;
            admin.close().await?;
        }
    }
    Ok(())
}

/// Replaces the database name (the last path segment) of a PostgreSQL server URL.
fn server_database_url(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |at| at + 3);
    let server = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Milliseconds of one timed part over the iterations.
#[derive(Debug, Serialize)]
struct Timings {
    p50_ms: f64,
    mean_ms: f64,
    p99_ms: f64,
}

impl Timings {
    fn of(mut samples: Vec<f64>) -> Timings {
        samples.sort_by(f64::total_cmp);
        let at = |share: f64| samples[((samples.len() - 1) as f64 * share).round() as usize];
        Timings {
            p50_ms: at(0.5),
            mean_ms: samples.iter().sum::<f64>() / samples.len() as f64,
            p99_ms: at(0.99),
        }
    }
}

/// Times the store's part of firing: reads the due timers, earliest first, and consumes
/// them in one write (the engine consumes each in the write that applies its effect).
/// Then puts them back, untimed. Returns the time of both, of the read and of the write.
async fn fire(store: &Store, count: usize) -> BenchResult<[Duration; 3]> {
    let started = Instant::now();
    let due = tend_store::due_timers(store.db(), now(), DUE_NOW as u64).await?;
    let read = started.elapsed();
    if due.len() != DUE_NOW {
        return Err(format!("expected {DUE_NOW} due timers, read {}", due.len()).into());
    }
    let writing = Instant::now();
    let ids: Vec<i64> = due.iter().map(|timer| timer.id).collect();
    let consumed = store
        .write(move |tx| {
            Box::pin(async move {
                let mut consumed = 0;
                for id in ids {
                    if tend_store::consume_timer(tx, id).await? {
                        consumed += 1;
                    }
                }
                Ok(consumed)
            })
        })
        .await?;
    let (elapsed, write) = (started.elapsed(), writing.elapsed());
    if consumed != DUE_NOW {
        return Err(format!("expected to consume {DUE_NOW} timers, consumed {consumed}").into());
    }
    restore_due_timers(store, count, false).await?;
    Ok([elapsed, read, write])
}

/// Lists the running clocks due within the next hour, as the breaching-soon list does.
async fn list(store: &Store, limit: u64) -> BenchResult<usize> {
    let clocks = store
        .clocks_due_between(now(), now() + TimeDelta::hours(1), limit)
        .await?;
    if clocks.is_empty() {
        return Err("no clock is due within the next hour: the data is not as populated".into());
    }
    Ok(clocks.len())
}

async fn list_timed(store: &Store, limit: u64) -> BenchResult<Duration> {
    let started = Instant::now();
    list(store, limit).await?;
    Ok(started.elapsed())
}

/// Returns the ids and due times of the records whose timers are due at [`now`]. They are
/// spread through the table, and none is paused (paused records have ids divisible by 10).
fn due_now_records(count: usize) -> impl Iterator<Item = (i64, DateTime<Utc>)> {
    let step = count / DUE_NOW;
    (0..DUE_NOW).map(move |k| {
        let id = (1 + k * step) as i64;
        (id, now() - TimeDelta::seconds(((DUE_NOW - k) * 30) as i64))
    })
}

fn is_paused(id: i64) -> bool {
    id % 10 == 0
}

/// Inserts the [`DUE_NOW`] timers due at [`now`]. With `delete_due_first`, it first
/// deletes any timers already due, which a run stopped midway leaves behind. The timed
/// loop skips that step because it has just consumed them all.
async fn restore_due_timers(
    store: &Store,
    count: usize,
    delete_due_first: bool,
) -> BenchResult<()> {
    let tx = store.db().begin().await?;
    if delete_due_first {
        timers::Entity::delete_many()
            .filter(timers::Column::DueAt.lte(now()))
            .exec(&tx)
            .await?;
    }
    let rows = due_now_records(count)
        .map(|(id, due_at)| timer_row(id, priority_of(id), due_at))
        .collect::<BenchResult<Vec<_>>>()?;
    timers::Entity::insert_many(rows)
        .exec_without_returning(&tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

fn priority_of(id: i64) -> &'static str {
    ["P1", "P2", "P3", "P3", "P4", "P4", "P3", "P2", "P4", "P3"][(id % 10) as usize]
}

/// Policy and resolution target of a priority, as in workflows/sla/incident.yaml.
fn resolution_of(priority: &str) -> (&'static str, i64) {
    match priority {
        "P1" => ("incident_critical", 4 * 60),
        "P2" => ("incident_critical", 8 * 60),
        "P3" => ("incident_standard", 3 * 8 * 60),
        _ => ("incident_standard", 5 * 8 * 60),
    }
}

fn timer_row(id: i64, priority: &str, due_at: DateTime<Utc>) -> BenchResult<timers::ActiveModel> {
    let (policy, target_minutes) = resolution_of(priority);
    let detail = SlaTimer {
        policy: policy.to_owned(),
        target: "resolution".to_owned(),
        percent: 100,
        target_minutes,
        due_at,
    };
    Ok(timers::ActiveModel {
        record_id: Set(id),
        transition: Set(String::new()),
        due_at: Set(due_at),
        state_changed_at: Set(due_at - TimeDelta::minutes(target_minutes)),
        created_at: Set(due_at - TimeDelta::minutes(target_minutes)),
        kind: Set(SLA_TIMER.to_owned()),
        detail: Set(Some(serde_json::to_string(&detail)?)),
        ..Default::default()
    })
}

const GROUPS: [&str; 8] = [
    "service-desk",
    "network",
    "database",
    "workplace",
    "identity",
    "storage",
    "applications",
    "security",
];

/// Inserts `count` open incidents with their clocks and timers, [`CHUNK`] records per
/// transaction, through multi-row inserts.
async fn populate(store: &Store, count: usize) -> BenchResult<()> {
    let due = due_times(count);
    let db = store.db();
    for first in (1..=count).step_by(CHUNK) {
        let last = (first + CHUNK - 1).min(count);
        let tx = db.begin().await?;
        let mut records = Vec::with_capacity(CHUNK);
        let mut clocks = Vec::with_capacity(2 * CHUNK);
        let mut timers = Vec::with_capacity(CHUNK);
        for index in first..=last {
            let id = index as i64;
            let priority = priority_of(id);
            let group = GROUPS[index % GROUPS.len()];
            let (policy, target_minutes) = resolution_of(priority);
            let resolution_due = due[index - 1];
            let created_at = resolution_due.unwrap_or(now()) - TimeDelta::minutes(target_minutes);
            let paused = is_paused(id);
            records.push(records::ActiveModel {
                id: Set(id),
                number: Set(format!("INC{id:07}")),
                process: Set("incident".into()),
                definition_version: Set("bench".into()),
                state: Set(if paused {
                    "awaiting_user_info"
                } else {
                    "in_progress"
                }
                .into()),
                title: Set(format!("Benchmark incident {id}")),
                description: Set(String::new()),
                fields: Set(format!(
                    r#"{{"priority":"{priority}","assignment_group":"{group}"}}"#
                )),
                recommendations: Set("[]".into()),
                priority: Set(Some(priority.into())),
                assignee: Set(None),
                assignment_group: Set(Some(group.into())),
                requester: Set(Some(format!("user{}", index % 5000))),
                ci: Set(None),
                is_open: Set(true),
                created_at: Set(created_at),
                updated_at: Set(created_at + TimeDelta::minutes(10)),
                state_changed_at: Set(created_at + TimeDelta::minutes(10)),
                revision: Set(2),
                journal_seq: Set(0),
                journal_head: Set(String::new()),
            });
            let clock = |target: &str, phase: &str| sla_clocks::ActiveModel {
                record_id: Set(id),
                policy: Set(policy.into()),
                target: Set(target.into()),
                kind: Set("sla".into()),
                process: Set("incident".into()),
                priority: Set(Some(priority.into())),
                assignment_group: Set(Some(group.into())),
                phase: Set(phase.into()),
                started_at: Set(created_at),
                due_at: Set(None),
                stopped_at: Set(None),
                target_seconds: Set(target_minutes * 60),
                elapsed_seconds: Set(0),
                breached: Set(false),
                updated_at: Set(created_at + TimeDelta::minutes(10)),
                ..Default::default()
            };
            let mut response = clock("response", "stopped");
            response.due_at = Set(Some(created_at + TimeDelta::minutes(30)));
            response.stopped_at = Set(Some(created_at + TimeDelta::minutes(10)));
            response.target_seconds = Set(30 * 60);
            response.elapsed_seconds = Set(10 * 60);
            clocks.push(response);
            let mut resolution = clock("resolution", if paused { "paused" } else { "running" });
            resolution.due_at = Set(resolution_due);
            clocks.push(resolution);
            if let Some(due_at) = resolution_due {
                timers.push(timer_row(id, priority, due_at)?);
            }
        }
        // Each statement stays below SQLite's default maximum of 32,766 bound parameters.
        for part in records.chunks(1_000) {
            records::Entity::insert_many(part.to_vec())
                .exec_without_returning(&tx)
                .await?;
        }
        for part in clocks.chunks(2_000) {
            sla_clocks::Entity::insert_many(part.to_vec())
                .exec_without_returning(&tx)
                .await?;
        }
        for part in timers.chunks(4_000) {
            timers::Entity::insert_many(part.to_vec())
                .exec_without_returning(&tx)
                .await?;
        }
        tx.commit().await?;
    }
    if store.backend() == Backend::Postgres {
        // Records were inserted with their ids; later inserts must not reuse them.
        db.execute_unprepared(&format!(
            "SELECT setval(pg_get_serial_sequence('records', 'id'), {count})"
        ))
        .await?;
        // Autovacuum analyzes the tables after a load this size, at a time of its own.
        // Analyzing now keeps the plans measured independent of that time.
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}

/// Returns the due time of each record's resolution clock, at index id - 1. A paused
/// clock has none. The [`DUE_NOW`] records with due timers are due before [`now`]. The
/// others spread evenly over [`SPREAD_HOURS`] after [`now`], in an order shuffled with a
/// fixed seed, so due order and record order differ as in production data.
fn due_times(count: usize) -> Vec<Option<DateTime<Utc>>> {
    let mut due = vec![None; count];
    for (id, due_at) in due_now_records(count) {
        due[(id - 1) as usize] = Some(due_at);
    }
    let open: Vec<usize> = (0..count)
        .filter(|&index| !is_paused(index as i64 + 1) && due[index].is_none())
        .collect();
    let mut order: Vec<usize> = (0..open.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(count as u64));
    let span = TimeDelta::hours(SPREAD_HOURS)
        .num_microseconds()
        .unwrap_or(i64::MAX);
    for (index, position) in open.iter().zip(order) {
        let offset = span / open.len() as i64 * (position as i64 + 1);
        due[*index] = Some(now() + TimeDelta::microseconds(offset));
    }
    due
}

/// Returns the plans of the three reads of this benchmark, built as the store builds them.
async fn plans(store: &Store) -> BenchResult<Plans> {
    let backend = store.db().get_database_backend();
    let due = timers::Entity::find()
        .filter(timers::Column::DueAt.lte(now()))
        .order_by_asc(timers::Column::DueAt)
        .order_by_asc(timers::Column::Id)
        .limit(DUE_NOW as u64)
        .build(backend);
    let clocks = sla_clocks::Entity::find()
        .filter(sla_clocks::Column::Phase.eq("running"))
        .filter(sla_clocks::Column::DueAt.gt(now()))
        .filter(sla_clocks::Column::DueAt.lte(now() + TimeDelta::hours(1)))
        .order_by_asc(sla_clocks::Column::DueAt)
        .order_by_asc(sla_clocks::Column::Id)
        .limit(LIST_LIMIT)
        .build(backend);
    let lookup = records::Entity::find()
        .select_only()
        .column(records::Column::Id)
        .column(records::Column::Number)
        .column(records::Column::Title)
        .filter(records::Column::Id.is_in((1..=LIST_LIMIT as i64).collect::<Vec<_>>()))
        .build(backend);
    Ok(Plans {
        due_timers: explain(store, due).await?,
        clocks_due: explain(store, clocks).await?,
        record_lookup: explain(store, lookup).await?,
    })
}

async fn explain(store: &Store, statement: Statement) -> BenchResult<Vec<String>> {
    let (prefix, column) = match statement.db_backend {
        DbBackend::Postgres => ("EXPLAIN ", "QUERY PLAN"),
        _ => ("EXPLAIN QUERY PLAN ", "detail"),
    };
    let sql = format!("{prefix}{}", statement.sql);
    let rows = store
        .db()
        .query_all_raw(Statement { sql, ..statement })
        .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        lines.push(row.try_get::<String>("", column)?);
    }
    Ok(lines)
}
