//! Alerts of monitoring systems through `POST /api/v1/alerts/alertmanager` and
//! `POST /api/v1/alerts`, with the shipped source `workflows/alerts/prometheus.yaml`.
//! Real Alertmanager bodies are taken, or rejected with the field at fault. An alert opens,
//! updates and resolves its incident, and an alert that flaps returns to its incident. An
//! alert inside an approved change window becomes a note on the change.

use std::path::PathBuf;

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::tend_api::Commands;
use tend_test_support::tend_api::alert_intake::{AlertResult, parse_generic};
use tend_test_support::{Backend, Role, TestUser, backend_tests, repo_root};

use crate::common::{Desk, RECORDS, assert_error, read, take};
use crate::support::{approve, create, number, set_members};

backend_tests!(
    shared_payloads_taken_or_rejected,
    open_update_resolve_cycle,
    flapping_alert_keeps_its_incident,
    change_window_suppresses_incident,
    partial_batch_and_auth,
    route_opens_availability_event,
    real_alertmanager,
    alerts_page_lists_alerts,
    capacity_alert_routed_by_rule,
);

const ALERTMANAGER: &str = "/api/v1/alerts/alertmanager?source=prometheus";
const GENERIC: &str = "/api/v1/alerts?source=prometheus";

struct AlertDesk {
    desk: Desk,
    /// The monitoring system's account, with the `alert_source` role only.
    monitor: TestUser,
}

impl AlertDesk {
    async fn open(backend: Backend) -> anyhow::Result<AlertDesk> {
        let desk = Desk::open(backend).await?;
        let monitor = desk
            .server
            .add_user("monitor", &[Role::AlertSource])
            .await?;
        Ok(AlertDesk { desk, monitor })
    }

    fn commands(&self) -> &Commands {
        self.desk.server.commands().expect("in-process server")
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let reply = self.monitor.client.post(path, body).await?;
        Ok(reply.expect_status(StatusCode::OK)?.body)
    }

    async fn record(&self, number: &str) -> anyhow::Result<Value> {
        read(&self.desk.tom.client, number).await
    }

    async fn incidents(&self) -> anyhow::Result<Vec<String>> {
        let page = self
            .desk
            .tom
            .client
            .get(&format!("{RECORDS}?process=incident&limit=500"))
            .await?
            .expect_status(StatusCode::OK)?
            .body;
        Ok(page["records"]
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .filter_map(|record| record["number"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Takes one alert of the generic form at `at`, as if it arrived then.
    async fn take_at(
        &self,
        alert: Value,
        at: chrono::DateTime<Utc>,
    ) -> anyhow::Result<AlertResult> {
        let (good, bad) = parse_generic(&json!({ "alerts": [alert] }))
            .map_err(|problem| anyhow::anyhow!("{problem:?}"))?;
        anyhow::ensure!(bad.is_empty(), "{bad:?}");
        self.commands()
            .take_alert("prometheus", 0, &good[0].1, at)
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))
    }
}

fn alert(status: &str, name: &str, instance: &str) -> Value {
    json!({
        "status": status,
        "labels": { "alertname": name, "instance": instance, "severity": "critical", "job": "node" },
        "annotations": { "summary": format!("{name} on {instance}"), "description": "Free space below 5%" },
        "starts_at": "2026-02-12T09:00:00Z",
    })
}

/// Comments and transition comments of a record's journal.
fn notes(record: &Value) -> Vec<String> {
    record["journal"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| match entry["event"].as_str() {
                    Some("commented") => entry["text"].as_str().map(str::to_owned),
                    Some("transitioned") => entry["comment"].as_str().map(str::to_owned),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn shared_alerts() -> Vec<PathBuf> {
    let directory = repo_root().join("../shared/data/alerts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

async fn shared_payloads_taken_or_rejected(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    let files = shared_alerts();
    if files.is_empty() {
        eprintln!("no shared alert payloads beside the repository: nothing to deliver");
        return Ok(());
    }
    let mut taken = 0;
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let body: Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        let reply = desk.monitor.client.post(ALERTMANAGER, &body).await?;
        if !name.starts_with("alertmanager__") {
            // Zabbix's media type is no Alertmanager message.
            assert_error(
                &reply,
                StatusCode::BAD_REQUEST,
                "invalid_alerts",
                Some("alerts"),
            );
            continue;
        }
        if name.contains("without_mandatory_field") {
            // Neither the message nor its alert has a status, and the alert has no name.
            assert_error(
                &reply,
                StatusCode::BAD_REQUEST,
                "invalid_alerts",
                Some("alerts[0].status"),
            );
            continue;
        }
        let reply = reply.expect_status(StatusCode::OK)?;
        let count = body["alerts"].as_array().map_or(0, Vec::len);
        assert_eq!(reply.body["accepted"], count, "{name}: {}", reply.text);
        assert_eq!(reply.body["rejected"], json!([]), "{name}");
        for result in reply.body["results"].as_array().into_iter().flatten() {
            let effect = result["effect"].as_str().unwrap_or_default();
            let expected: &[&str] = if result["status"] == "resolved" {
                // Nothing fired before, so nothing is resolved.
                &["ignored"]
            } else {
                &["created", "updated", "noted"]
            };
            assert!(expected.contains(&effect), "{name}: {result}");
            if result["status"] == "firing" {
                let record = result["record"].as_str().unwrap_or_default();
                assert!(record.starts_with("INC"), "{name}: {result}");
            }
            taken += 1;
        }
    }
    assert!(taken > 0);

    // Alerts with labels in another order have the same computed fingerprint: the second
    // body of prom_post_request reaches the incident of the first.
    let firing: Vec<&PathBuf> = files
        .iter()
        .filter(|file| {
            file.to_string_lossy()
                .ends_with("card__testdata__prom_post_request.json")
        })
        .collect();
    if let Some(file) = firing.first() {
        let body: Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        let again = desk.post(ALERTMANAGER, &body).await?;
        assert_eq!(again["results"][0]["effect"], "updated", "{again}");
        let record = desk
            .record(again["results"][0]["record"].as_str().unwrap_or_default())
            .await?;
        assert_eq!(
            record["fields"]["ci"],
            "instance-with-hyphen_and_underscore"
        );
        assert_eq!(record["fields"]["impact"], "medium");
        assert_eq!(record["fields"]["contact_type"], "monitoring");
    }
    Ok(())
}

async fn open_update_resolve_cycle(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    let body = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"DiskFull\"}",
        "status": "firing",
        "receiver": "tend",
        "groupLabels": { "alertname": "DiskFull" },
        "commonLabels": { "alertname": "DiskFull" },
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": "firing",
            "labels": { "alertname": "DiskFull", "instance": "web01.example.com:9100", "severity": "critical" },
            "annotations": { "summary": "Disk almost full", "description": "Free space on / is below 5%" },
            "startsAt": "2026-02-12T09:00:00.123456789+01:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=disk",
            "fingerprint": "a1b2c3d4e5f60718"
        }]
    });
    let opened = desk.post(ALERTMANAGER, &body).await?;
    assert_eq!(opened["results"][0]["effect"], "created", "{opened}");
    let number = opened["results"][0]["record"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let incident = desk.record(&number).await?;
    assert_eq!(incident["title"], "DiskFull: Disk almost full");
    assert_eq!(incident["description"], "Free space on / is below 5%");
    assert_eq!(incident["fields"]["ci"], "web01.example.com");
    assert_eq!(incident["fields"]["impact"], "high");
    assert_eq!(incident["fields"]["urgency"], "high");
    assert_eq!(incident["fields"]["priority"], "P1");
    let opened_note = notes(&incident);
    assert_eq!(opened_note.len(), 1, "{opened_note:?}");
    assert!(
        opened_note[0].contains("alert `DiskFull` of source `prometheus` (fingerprint a1b2c3d4e5f60718) on web01.example.com"),
        "{opened_note:?}"
    );

    // Alertmanager repeats the firing alert: no second incident, no second note.
    let again = desk.post(ALERTMANAGER, &body).await?;
    assert_eq!(again["results"][0]["effect"], "updated");
    assert_eq!(again["results"][0]["record"], number.as_str());
    assert_eq!(notes(&desk.record(&number).await?).len(), 1);
    let stored = desk
        .commands()
        .store
        .alert("prometheus", "a1b2c3d4e5f60718")
        .await?
        .expect("the alert is stored");
    assert_eq!(stored.count, 2);
    assert_eq!(stored.status, "firing");

    // Past `note_every` (30 minutes), a repeat adds one note.
    let generic = json!({
        "status": "firing",
        "labels": body["alerts"][0]["labels"],
        "annotations": body["alerts"][0]["annotations"],
        "fingerprint": "a1b2c3d4e5f60718",
    });
    let later = desk
        .take_at(generic, Utc::now() + Duration::minutes(31))
        .await?;
    assert_eq!(later.effect, "noted");
    let incident = desk.record(&number).await?;
    let all = notes(&incident);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].starts_with("Still firing (3 deliveries"), "{all:?}");

    // Resolved: the incident takes `resolve` with the source's resolution code.
    let mut resolved = body.clone();
    resolved["status"] = json!("resolved");
    resolved["alerts"][0]["status"] = json!("resolved");
    resolved["alerts"][0]["endsAt"] = json!("2026-02-12T09:30:00Z");
    let closing = desk.post(ALERTMANAGER, &resolved).await?;
    assert_eq!(closing["results"][0]["effect"], "resolved", "{closing}");
    let incident = desk.record(&number).await?;
    assert_eq!(incident["state"], "resolved");
    assert_eq!(
        incident["fields"]["resolution_code"],
        "resolved_by_monitoring"
    );
    let repeat = desk.post(ALERTMANAGER, &resolved).await?;
    assert_eq!(repeat["results"][0]["effect"], "ignored");
    assert_eq!(desk.incidents().await?, vec![number.clone()]);

    // Staff see the stored alert.
    let list = desk
        .desk
        .tom
        .client
        .get("/api/v1/alerts")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(list["alerts"][0]["record_number"], number.as_str());
    assert_eq!(list["alerts"][0]["status"], "resolved");
    Ok(())
}

async fn flapping_alert_keeps_its_incident(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    let fire = json!({ "alerts": [alert("firing", "HighLoad", "app01:9100")] });
    let resolve = json!({ "alerts": [alert("resolved", "HighLoad", "app01:9100")] });
    let first = desk.post(GENERIC, &fire).await?;
    assert_eq!(first["results"][0]["effect"], "created");
    let number = first["results"][0]["record"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Without a fingerprint, Tend computes one from the sorted labels.
    assert_eq!(
        first["results"][0]["fingerprint"].as_str().map(str::len),
        Some(16)
    );

    for _ in 0..2 {
        let down = desk.post(GENERIC, &resolve).await?;
        assert_eq!(down["results"][0]["effect"], "resolved", "{down}");
        assert_eq!(desk.record(&number).await?["state"], "resolved");
        let up = desk.post(GENERIC, &fire).await?;
        assert_eq!(up["results"][0]["effect"], "reopened", "{up}");
        assert_eq!(up["results"][0]["record"], number.as_str());
        assert_eq!(desk.record(&number).await?["state"], "in_progress");
    }
    assert_eq!(desk.incidents().await?, vec![number.clone()]);
    let incident = desk.record(&number).await?;
    let reopens = notes(&incident)
        .into_iter()
        .filter(|note| note.starts_with("Firing again"))
        .count();
    assert_eq!(reopens, 2);

    // Resolved, then firing again after `reopen_within` (1 hour): a new incident.
    desk.post(GENERIC, &resolve).await?;
    let mut late = alert("firing", "HighLoad", "app01:9100");
    late.as_object_mut()
        .map(|object| object.remove("starts_at"));
    let result = desk.take_at(late, Utc::now() + Duration::hours(2)).await?;
    assert_eq!(result.effect, "created");
    let second = result.record.unwrap_or_default();
    assert_ne!(second, number);
    assert_eq!(desk.record(&number).await?["state"], "resolved");
    assert_eq!(desk.incidents().await?.len(), 2);
    Ok(())
}

async fn change_window_suppresses_incident(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    set_members(&desk.desk, &[("change_managers", &["tom", "mia"])])?;
    let mia = desk
        .desk
        .server
        .add_user("mia", &[Role::Technician])
        .await?;
    let tom = &desk.desk.tom.client;
    let now = Utc::now();
    let fields = json!({
        "ci": "db01",
        "cis": "db01",
        "planned_start": (now - Duration::hours(1)).to_rfc3339(),
        "planned_end": (now + Duration::hours(1)).to_rfc3339(),
        "implementation_plan": "Stop the database, apply the patch, start it",
        "test_plan": "Run the smoke tests",
        "backout_plan": "Restore the snapshot",
    });
    let change = create(
        tom,
        "change",
        json!({ "title": "Patch db01", "fields": fields }),
    )
    .await?;
    let change = number(&change);
    take(tom, &change, "submit", json!({})).await?;

    // Before the change is approved, an alert on db01 opens an incident.
    let early = desk
        .post(
            GENERIC,
            &json!({ "alerts": [alert("firing", "DbDown", "db01:5432")] }),
        )
        .await?;
    assert_eq!(early["results"][0]["effect"], "created", "{early}");

    take(tom, &change, "authorize", json!({})).await?;
    assert_eq!(approve(&mia, &change).await?["state"], "scheduled");
    let during = desk
        .post(
            GENERIC,
            &json!({ "alerts": [alert("firing", "DbSlow", "db01:9187")] }),
        )
        .await?;
    assert_eq!(during["results"][0]["effect"], "suppressed", "{during}");
    assert_eq!(during["results"][0]["record"], change.as_str());
    let noted = notes(&desk.record(&change).await?);
    assert!(
        noted
            .iter()
            .any(|note| note.starts_with("Alert during the planned window")
                && note.contains("DbSlow")),
        "{noted:?}"
    );
    assert_eq!(desk.incidents().await?.len(), 1);

    // Its repeat stays quiet, its resolution is a note on the change.
    let repeat = desk
        .post(
            GENERIC,
            &json!({ "alerts": [alert("firing", "DbSlow", "db01:9187")] }),
        )
        .await?;
    assert_eq!(repeat["results"][0]["effect"], "updated");
    let resolved = desk
        .post(
            GENERIC,
            &json!({ "alerts": [alert("resolved", "DbSlow", "db01:9187")] }),
        )
        .await?;
    assert_eq!(resolved["results"][0]["effect"], "noted");
    let change_record = desk.record(&change).await?;
    assert_eq!(change_record["state"], "scheduled");

    // Another item is not covered by the window.
    let elsewhere = desk
        .post(
            GENERIC,
            &json!({ "alerts": [alert("firing", "DbSlow", "db02:9187")] }),
        )
        .await?;
    assert_eq!(elsewhere["results"][0]["effect"], "created");
    Ok(())
}

async fn partial_batch_and_auth(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    let body = json!({ "alerts": [
        alert("firing", "CpuHot", "web02:9100"),
        { "status": "burning", "labels": { "alertname": "X" } },
        { "status": "firing", "labels": { "instance": "web03" } },
        { "status": "firing", "labels": { "alertname": "Y" }, "severity": "high" },
    ]});
    let reply = desk.post(GENERIC, &body).await?;
    assert_eq!(reply["accepted"], 1);
    let rejected: Vec<&str> = reply["rejected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|problem| problem["field"].as_str())
        .collect();
    assert_eq!(
        rejected,
        [
            "alerts[1].status",
            "alerts[2].labels.alertname",
            "alerts[3].severity"
        ]
    );
    assert!(
        reply["rejected"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"firing\" or \"resolved\""),
        "{reply}"
    );

    let client = &desk.monitor.client;
    assert_error(
        &client.post(GENERIC, &json!({ "alerts": "none" })).await?,
        StatusCode::BAD_REQUEST,
        "invalid_alerts",
        Some("alerts"),
    );
    assert_error(
        &client
            .post("/api/v1/alerts?source=nagios", &json!({ "alerts": [] }))
            .await?,
        StatusCode::BAD_REQUEST,
        "unknown_source",
        Some("source"),
    );
    // The only source is taken when none is named.
    let unnamed = client
        .post(
            "/api/v1/alerts",
            &json!({ "alerts": [alert("firing", "CpuHot", "web02:9100")] }),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    assert_eq!(unnamed.body["results"][0]["effect"], "updated");
    // Requesters and technicians do not hand in alerts; the monitor does not read records.
    let denied = desk.desk.alice.client.post(GENERIC, &body).await?;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden", None);
    let incident = reply["results"][0]["record"].as_str().unwrap_or_default();
    let hidden = client.get(&format!("{RECORDS}/{incident}")).await?;
    assert!(
        hidden.status == StatusCode::FORBIDDEN || hidden.status == StatusCode::NOT_FOUND,
        "{}",
        hidden.text
    );
    Ok(())
}

async fn route_opens_availability_event(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    let down = json!({
        "status": "firing",
        "alerts": [{
            "labels": { "alertname": "InstanceDown", "instance": "mail01.example.com:9100", "job": "node" },
            "annotations": { "summary": "mail01 is down" },
            "startsAt": "2026-02-12T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "0f0f0f0f0f0f0f0f"
        }]
    });
    let opened = desk.post(ALERTMANAGER, &down).await?;
    assert_eq!(opened["results"][0]["effect"], "created", "{opened}");
    let number = opened["results"][0]["record"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(number.starts_with("AVL"), "{number}");
    let event = desk.record(&number).await?;
    assert_eq!(event["state"], "open");
    assert_eq!(event["fields"]["source"], "prometheus");
    assert_eq!(event["fields"]["fingerprint"], "0f0f0f0f0f0f0f0f");
    assert_eq!(event["fields"]["ci"], "mail01.example.com");
    assert_eq!(event["fields"]["severity"], "major");
    assert_eq!(event["fields"]["started_at"], "2026-02-12T09:00:00+00:00");

    // The route's own `resolved` sets `ended_at`, which the availability event requires.
    let mut up = down.clone();
    up["status"] = json!("resolved");
    up["alerts"][0]["endsAt"] = json!("2026-02-12T09:45:00Z");
    let resolved = desk.post(ALERTMANAGER, &up).await?;
    assert_eq!(resolved["results"][0]["effect"], "resolved", "{resolved}");
    let event = desk.record(&number).await?;
    assert_eq!(event["state"], "resolved");
    assert_eq!(event["fields"]["ended_at"], "2026-02-12T09:45:00+00:00");
    assert_eq!(event["fields"]["duration_minutes"], 45);
    Ok(())
}

/// A Prometheus Alertmanager on 127.0.0.1, stopped when dropped.
struct Alertmanager {
    child: std::process::Child,
    api: tend_test_support::ApiClient,
    _directory: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ALERTMANAGER_BINARY: &str = "/usr/bin/prometheus-alertmanager";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Alertmanager {
    /// Starts Alertmanager with a webhook receiver that posts every group to `url` with
    /// `token`, one second after its first alert and one second after each change.
    async fn start(url: &str, token: &str) -> anyhow::Result<Alertmanager> {
        let directory = tempfile::tempdir()?;
        let config = directory.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: tend\n  group_by: [alertname, instance]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: tend\n    webhook_configs:\n      - url: '{url}'\n        send_resolved: true\n        http_config:\n          authorization:\n            credentials: '{token}'\n"
            ),
        )?;
        let port = free_port()?;
        let log = std::fs::File::create(directory.path().join("alertmanager.log"))?;
        let child = std::process::Command::new(ALERTMANAGER_BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                directory.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let manager = Alertmanager {
            child,
            api: tend_test_support::ApiClient::new(format!("http://127.0.0.1:{port}"), None),
            _directory: directory,
        };
        for _ in 0..100 {
            if let Ok(reply) = manager.api.get("/-/ready").await
                && reply.status == StatusCode::OK
            {
                return Ok(manager);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        anyhow::bail!("Alertmanager did not become ready: {}", manager.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._directory.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// Pushes one alert through Alertmanager's API, ending at `ends_at`.
    async fn push(&self, ends_at: chrono::DateTime<Utc>) -> anyhow::Result<()> {
        let alerts = json!([{
            "labels": { "alertname": "NodeFilesystemFull", "instance": "files01:9100", "severity": "warning" },
            "annotations": { "summary": "Filesystem almost full", "description": "Only 3% left on /srv" },
            "startsAt": (Utc::now() - Duration::minutes(5)).to_rfc3339(),
            "endsAt": ends_at.to_rfc3339(),
            "generatorURL": "http://127.0.0.1:9090/graph"
        }]);
        self.api
            .post("/api/v2/alerts", &alerts)
            .await?
            .expect_status(StatusCode::OK)?;
        Ok(())
    }
}

async fn real_alertmanager(backend: Backend) -> anyhow::Result<()> {
    if !std::path::Path::new(ALERTMANAGER_BINARY).exists() {
        // scripts/test.sh sets this, so CI fails instead of skipping.
        anyhow::ensure!(
            std::env::var_os("TEND_REQUIRE_PLUGIN_TOOLS").is_none(),
            "{ALERTMANAGER_BINARY} is missing: run scripts/ensure-alertmanager.sh"
        );
        eprintln!(
            "skipped: {ALERTMANAGER_BINARY} is missing (scripts/ensure-alertmanager.sh installs it)"
        );
        return Ok(());
    }
    let desk = AlertDesk::open(backend).await?;
    let url = format!("{}{ALERTMANAGER}", desk.desk.server.base_url());
    let manager = Alertmanager::start(&url, &desk.monitor.token).await?;
    manager.push(Utc::now() + Duration::hours(1)).await?;

    let mut number = None;
    for _ in 0..300 {
        if let Some(found) = desk.incidents().await?.first() {
            number = Some(found.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let Some(number) = number else {
        anyhow::bail!(
            "Alertmanager's webhook opened no incident: {}",
            manager.log()
        );
    };
    let incident = desk.record(&number).await?;
    assert_eq!(
        incident["title"],
        "NodeFilesystemFull: Filesystem almost full"
    );
    assert_eq!(incident["fields"]["ci"], "files01");
    assert_eq!(incident["state"], "new");

    // An end in the past resolves the alert; Alertmanager sends it with `send_resolved`.
    manager.push(Utc::now() - Duration::seconds(1)).await?;
    let mut state = Value::Null;
    for _ in 0..300 {
        state = desk.record(&number).await?["state"].clone();
        if state == "resolved" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state, "resolved", "{}", manager.log());
    assert_eq!(desk.incidents().await?, vec![number.clone()]);
    let stored = desk.commands().store.list_alerts(10).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, "resolved");
    assert_eq!(stored[0].record_number.as_deref(), Some(number.as_str()));
    Ok(())
}

/// The console's alerts page lists each alert with its labels and the record it opened,
/// filters by status, and is closed to requesters.
async fn alerts_page_lists_alerts(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    for (name, status) in [("DiskFull", "firing"), ("HighLoad", "firing")] {
        let body = json!({
            "alerts": [{
                "status": status,
                "labels": { "alertname": name, "instance": "web01.example.com:9100", "severity": "warning" },
                "annotations": { "summary": format!("{name} on web01") },
            }]
        });
        desk.post(GENERIC, &body).await?;
    }
    let resolved = json!({
        "alerts": [{
            "status": "resolved",
            "labels": { "alertname": "HighLoad", "instance": "web01.example.com:9100", "severity": "warning" },
        }]
    });
    desk.post(GENERIC, &resolved).await?;

    let console = crate::cmdb_console::Console::log_in(&desk.desk.server, "tom").await?;
    let page = console.get("/alerts").await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("DiskFull on web01"), "{}", page.text);
    assert!(
        page.text
            .contains("alertname=DiskFull, instance=web01.example.com:9100, severity=warning"),
        "{}",
        page.text
    );
    assert!(page.text.contains("href=\"/records/INC"), "{}", page.text);
    let firing = console.get("/alerts?status=firing").await?;
    assert!(firing.text.contains("DiskFull"), "{}", firing.text);
    assert!(!firing.text.contains("HighLoad"), "{}", firing.text);

    let requester = crate::cmdb_console::Console::log_in(&desk.desk.server, "alice").await?;
    let denied = requester.get("/alerts").await?;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    Ok(())
}

/// The source's routing rule sends a disk forecast to capacity management: it opens a
/// capacity plan for the alert's CI, repeats stay on it, and the resolution is a note.
async fn capacity_alert_routed_by_rule(backend: Backend) -> anyhow::Result<()> {
    let desk = AlertDesk::open(backend).await?;
    let alert = |status: &str| {
        json!({
            "alerts": [{
                "status": status,
                "labels": { "alertname": "DiskWillFillIn4Hours", "instance": "db01.example.com:9100", "mountpoint": "/var", "severity": "warning" },
                "annotations": { "summary": "/var fills up within 4 hours", "value": "87.5" },
            }]
        })
    };
    let opened = desk.post(GENERIC, &alert("firing")).await?;
    assert_eq!(opened["results"][0]["effect"], "created", "{opened}");
    let number = opened["results"][0]["record"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(number.starts_with("CAP"), "{opened}");
    let plan = desk.record(&number).await?;
    assert_eq!(plan["process"], "capacity_plan");
    assert_eq!(plan["fields"]["service"], "db01.example.com", "{plan}");
    assert_eq!(plan["fields"]["resource"], "DiskWillFillIn4Hours /var");
    assert_eq!(plan["fields"]["current_usage"], 87.5);

    let again = desk.post(GENERIC, &alert("firing")).await?;
    assert_eq!(again["results"][0]["record"], number.as_str(), "{again}");
    let resolved = desk.post(GENERIC, &alert("resolved")).await?;
    assert_eq!(resolved["results"][0]["effect"], "noted", "{resolved}");
    assert!(desk.incidents().await?.is_empty());
    Ok(())
}
