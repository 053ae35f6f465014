//! Latency of an impact analysis to depth 5 from one CI, in a CMDB of 100,000 CIs and
//! 500,000 relationships, on SQLite and PostgreSQL. The walk reads one level per query
//! through the indexes on the relationships' ends, so its cost should follow
//! the number of CIs it reaches, not the size of the CMDB.
//!
//! `bench/cmdb-impact.sh` runs it (`cargo bench -p tend-store --bench cmdb_impact`).
//! Settings, all optional:
//!
//! - `TEND_BENCH_BACKENDS`: `sqlite`, `postgres` or both (default both).
//! - `TEND_BENCH_DIR`: directory of the SQLite database (default
//!   `$TMPDIR/tend-bench-cmdb`); the database is rebuilt on every run.
//! - `TEND_BENCH_POSTGRES_URL`: a PostgreSQL server; the benchmark drops and creates the
//!   database `tend_bench_cmdb` on it (default `postgres://postgres@127.0.0.1:5432/test`).
//! - `TEND_BENCH_ITERATIONS`: timed walks per backend (default 300).
//!
//! The generated CMDB is layered like a data centre with its desktops. It has 2,000
//! servers and 18,000 virtual machines, each hosted by one server. 5,000 databases and
//! 10,000 applications each run on one virtual machine. Each application depends on two
//! databases and is used by one of 1,000 business services. 40,000 workstations are each
//! connected to one of 1,000 network devices, and there are 23,000 software packages. The
//! remaining 397,000 relationships install packages on computers and carry no impact,
//! as most relationships of a real CMDB do. Ends are drawn with a fixed seed.
//! Each walk starts from a server, a virtual machine, a database or a network device
//! drawn at random, walks down with the shipped impact-carrying types and reads the
//! reached CIs, as `GET /api/v1/cis/{id}/impact` does.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Database};
use tend_store::Store;
use tend_store::cmdb::load_cis;
use tend_store::impact::{Walk, walk};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Rows per INSERT statement while populating.
const ROWS_PER_INSERT: usize = 1_000;
/// Relationships in total.
const RELATIONSHIPS: usize = 500_000;
/// Untimed walks before the measurement.
const WARM_UP: usize = 30;
const DEPTH: u32 = 5;

/// The classes of the generated CIs with their counts, in id order.
const LAYERS: [(&str, usize); 8] = [
    ("server", 2_000),
    ("virtual_machine", 18_000),
    ("database", 5_000),
    ("application", 10_000),
    ("business_service", 1_000),
    ("network_device", 1_000),
    ("workstation", 40_000),
    ("software_package", 23_000),
];

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

async fn run() -> BenchResult<()> {
    let backends =
        std::env::var("TEND_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let iterations: usize = match std::env::var("TEND_BENCH_ITERATIONS") {
        Ok(text) => text
            .parse()
            .map_err(|_| format!("TEND_BENCH_ITERATIONS is `{text}`: give a whole number"))?,
        Err(_) => 300,
    };
    for backend in backends.split(',').map(str::trim) {
        let url = match backend {
            "sqlite" => sqlite_url()?,
            "postgres" => postgres_url().await?,
            other => {
                return Err(format!(
                    "TEND_BENCH_BACKENDS names `{other}`: use sqlite, postgres or both"
                )
                .into());
            }
        };
        let store = Store::connect(&url).await?;
        let started = Instant::now();
        let starts = populate(&store).await?;
        let populated = started.elapsed();
        measure(&store, backend, &starts, iterations, populated).await?;
    }
    Ok(())
}

fn sqlite_url() -> BenchResult<String> {
    let dir = match std::env::var("TEND_BENCH_DIR") {
        Ok(dir) => std::path::PathBuf::from(dir),
        Err(_) => std::env::temp_dir().join("tend-bench-cmdb"),
    };
    std::fs::create_dir_all(&dir)?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("cmdb.db{suffix}")));
    }
    Ok(format!(
        "sqlite://{}?mode=rwc",
        dir.join("cmdb.db").display()
    ))
}

/// Drops and creates `tend_bench_cmdb` on the configured server; returns its URL.
async fn postgres_url() -> BenchResult<String> {
    let server = std::env::var("TEND_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = Database::connect(&server).await?;
    admin
        .execute_unprepared("DROP DATABASE IF EXISTS tend_bench_cmdb WITH (FORCE)")
        .await?;
    admin
        .execute_unprepared("CREATE DATABASE tend_bench_cmdb")
        .await?;
    admin.close().await?;
    let base = server.split('?').next().unwrap_or(&server);
    let cut = base
        .rfind('/')
        .ok_or("TEND_BENCH_POSTGRES_URL has no database name")?;
    Ok(format!("{}/tend_bench_cmdb", &base[..cut]))
}

/// Returns the first id and the count of each layer; ids are assigned from 1 in order.
fn ranges() -> Vec<(&'static str, i64, i64)> {
    let mut next = 1;
    LAYERS
        .iter()
        .map(|(class, count)| {
            let first = next;
            next += *count as i64;
            (*class, first, *count as i64)
        })
        .collect()
}

fn range(class: &str) -> (i64, i64) {
    ranges()
        .into_iter()
        .find(|(name, _, _)| *name == class)
        .map(|(_, first, count)| (first, count))
        .unwrap_or((1, 1))
}

/// Fills the CMDB and returns the CIs that walks start from.
async fn populate(store: &Store) -> BenchResult<Vec<i64>> {
    let db = store.db();
    let mut rows = Vec::with_capacity(ROWS_PER_INSERT);
    for (class, first, count) in ranges() {
        for id in first..first + count {
            rows.push(format!(
                "({id}, '{class}', '{class}-{id}', '{class}-{id}', 'active', '{{}}', 1, '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')"
            ));
            if rows.len() == ROWS_PER_INSERT {
                insert(db, "cis (id, class, name, name_key, status, attributes, version, created_at, updated_at)", &mut rows).await?;
            }
        }
    }
    insert(
        db,
        "cis (id, class, name, name_key, status, attributes, version, created_at, updated_at)",
        &mut rows,
    )
    .await?;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Explicit ids leave the sequence behind; later inserts would collide.
        db.execute_unprepared("SELECT setval('cis_id_seq', (SELECT max(id) FROM cis))")
            .await?;
    }

    let mut random = StdRng::seed_from_u64(6);
    let mut edges: Vec<(&str, i64, i64)> = Vec::with_capacity(RELATIONSHIPS);
    let pick = |random: &mut StdRng, class: &str| {
        let (first, count) = range(class);
        first + random.gen_range(0..count)
    };
    let (vm_first, vms) = range("virtual_machine");
    for vm in vm_first..vm_first + vms {
        edges.push(("hosted_by", vm, pick(&mut random, "server")));
    }
    let (db_first, dbs) = range("database");
    for database in db_first..db_first + dbs {
        edges.push(("runs_on", database, pick(&mut random, "virtual_machine")));
    }
    let (app_first, apps) = range("application");
    for app in app_first..app_first + apps {
        edges.push(("runs_on", app, pick(&mut random, "virtual_machine")));
        let first_db = pick(&mut random, "database");
        let mut second_db = pick(&mut random, "database");
        if second_db == first_db {
            second_db = if first_db + 1 < db_first + dbs {
                first_db + 1
            } else {
                db_first
            };
        }
        edges.push(("depends_on", app, first_db));
        edges.push(("depends_on", app, second_db));
        edges.push(("used_by", app, pick(&mut random, "business_service")));
    }
    let (ws_first, workstations) = range("workstation");
    for workstation in ws_first..ws_first + workstations {
        edges.push((
            "connected_to",
            workstation,
            pick(&mut random, "network_device"),
        ));
    }
    // Installed packages fill up to the total. A (package, computer) pair drawn twice is
    // skipped, because only one active relationship of a type may join two CIs.
    let mut installed = std::collections::HashSet::new();
    let computers = [
        range("server"),
        range("virtual_machine"),
        range("workstation"),
    ];
    while edges.len() < RELATIONSHIPS {
        let package = pick(&mut random, "software_package");
        let (first, count) = computers[random.gen_range(0..computers.len())];
        let computer = first + random.gen_range(0..count);
        if installed.insert((package, computer)) {
            edges.push(("installed_on", package, computer));
        }
    }
    for (kind, source, target) in edges {
        rows.push(format!(
            "('{kind}', {source}, {target}, 'bench', 'import', '2026-12-01T00:00:00Z')"
        ));
        if rows.len() == ROWS_PER_INSERT {
            insert(db, "ci_relationships (kind, source_id, target_id, created_by, created_via, created_at)", &mut rows).await?;
        }
    }
    insert(
        db,
        "ci_relationships (kind, source_id, target_id, created_by, created_via, created_at)",
        &mut rows,
    )
    .await?;
    // Fresh statistics, as a CMDB that has been running would have.
    db.execute_unprepared("ANALYZE").await?;

    let mut starts = Vec::new();
    for class in ["server", "virtual_machine", "database", "network_device"] {
        let (first, count) = range(class);
        starts.extend(first..first + count);
    }
    Ok(starts)
}

async fn insert(
    db: &sea_orm::DatabaseConnection,
    table: &str,
    rows: &mut Vec<String>,
) -> BenchResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!("INSERT INTO {table} VALUES {}", rows.join(", "));
    db.execute_unprepared(&sql).await?;
    rows.clear();
    Ok(())
}

async fn measure(
    store: &Store,
    backend: &str,
    starts: &[i64],
    iterations: usize,
    populated: Duration,
) -> BenchResult<()> {
    let follow = Walk {
        target_to_source: [
            "depends_on",
            "runs_on",
            "hosted_by",
            "connected_to",
            "located_in",
        ]
        .map(str::to_owned)
        .to_vec(),
        source_to_target: vec!["used_by".to_owned()],
    };
    let mut random = StdRng::seed_from_u64(67);
    let mut times = Vec::with_capacity(iterations);
    let mut reached_total = 0usize;
    let mut reached_max = 0usize;
    for i in 0..WARM_UP + iterations {
        let start = starts[random.gen_range(0..starts.len())];
        let began = Instant::now();
        let result = walk(store.db(), &[start], &follow, DEPTH).await?;
        let ids: Vec<i64> = result.reached.iter().map(|hit| hit.ci).collect();
        let cis = load_cis(store.db(), &ids).await?;
        let elapsed = began.elapsed();
        if i >= WARM_UP {
            times.push(elapsed);
            reached_total += cis.len();
            reached_max = reached_max.max(cis.len());
        }
    }
    times.sort();
    let quantile = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{{\"backend\":\"{backend}\",\"cis\":100000,\"relationships\":{RELATIONSHIPS},\"depth\":{DEPTH},\"walks\":{},\"p50_ms\":{:.2},\"p95_ms\":{:.2},\"max_ms\":{:.2},\"mean_reached\":{:.1},\"max_reached\":{reached_max},\"populate_s\":{:.1}}}",
        times.len(),
        ms(quantile(0.50)),
        ms(quantile(0.95)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
        reached_total as f64 / times.len().max(1) as f64,
        populated.as_secs_f64()
    );
    Ok(())
}
