//! The CMDB over the REST API: CIs checked against their classes and versioned on every
//! change, unique attributes, relationships checked against their types, and impact
//! analysis down and up, through cycles and past relationships that carry no impact.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{ApiClient, Backend, backend_tests};

use crate::common::{Desk, assert_error, create_incident};

backend_tests!(
    ci_changes_keep_history,
    ci_attributes_are_checked,
    unique_attribute_names_holder,
    relationships_are_checked,
    impact_follows_service_tree,
    impact_cycle_lists_each_once,
    impact_skips_non_impact_types,
    ci_list_filters_and_pages,
    records_show_impact_to_rules,
    collections_select_and_target_releases,
    remote_links_use_cmdb_attributes,
);

const CIS: &str = "/api/v1/cis";

async fn create_ci(client: &ApiClient, body: Value) -> anyhow::Result<Value> {
    let reply = client.post(CIS, &body).await?;
    Ok(reply.expect_status(StatusCode::CREATED)?.body)
}

fn id_of(ci: &Value) -> i64 {
    ci["id"].as_i64().unwrap_or_default()
}

async fn relate(client: &ApiClient, kind: &str, source: i64, target: i64) -> anyhow::Result<i64> {
    let reply = client
        .post(
            "/api/v1/relationships",
            &json!({ "type": kind, "source": source, "target": target }),
        )
        .await?;
    let body = reply.expect_status(StatusCode::CREATED)?.body;
    Ok(body["id"].as_i64().unwrap_or_default())
}

/// Creates a CI of `class` named `name` with `attributes` and returns its id.
async fn ci(client: &ApiClient, class: &str, name: &str, attributes: Value) -> anyhow::Result<i64> {
    let body = json!({ "class": class, "name": name, "attributes": attributes });
    Ok(id_of(&create_ci(client, body).await?))
}

async fn impact(client: &ApiClient, path: &str) -> anyhow::Result<Value> {
    Ok(client.get(path).await?.expect_status(StatusCode::OK)?.body)
}

/// Returns name → depth of the affected CIs of an impact result.
fn depths(result: &Value) -> BTreeMap<String, i64> {
    result["affected"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|hit| {
            (
                hit["name"].as_str().unwrap_or_default().to_owned(),
                hit["depth"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

fn affected<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["affected"]
        .as_array()
        .and_then(|hits| hits.iter().find(|hit| hit["name"] == name))
        .unwrap_or(&Value::Null)
}

fn path_types(hit: &Value) -> Vec<String> {
    hit["path"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| step["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn ci_changes_keep_history(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let room = ci(tom, "location", "Room 4.12", json!({ "city": "Lyon" })).await?;
    let created = create_ci(
        tom,
        json!({
            "class": "server",
            "name": "db-01",
            "attributes": {
                "serial_number": "CZ1234ABC",
                "memory_mb": 16384,
                "ip_addresses": ["10.0.0.5"],
                "location": "room 4.12",
                "owner": "tom",
                "environment": "production"
            }
        }),
    )
    .await?;
    let id = id_of(&created);
    assert_eq!(created["status"], "active");
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["attributes"]["location"], room,
        "a reference by name is stored as the CI's id"
    );
    assert_eq!(created["class_label"], "Server");
    let before_update = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let reply = tom
        .patch(
            &format!("{CIS}/{id}"),
            &json!({ "name": "db-01.example.org", "attributes": { "memory_mb": 32768, "environment": null }, "version": 1 }),
        )
        .await?;
    let updated = reply.expect_status(StatusCode::OK)?.body;
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["attributes"]["memory_mb"], 32768);
    assert!(updated["attributes"].get("environment").is_none());
    let history = updated["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["actor"], "tom");
    assert_eq!(history[1]["source"], "person");
    assert_eq!(
        history[1]["changes"]["memory_mb"],
        json!({ "before": 16384, "after": 32768 })
    );
    assert_eq!(
        history[1]["changes"]["name"],
        json!({ "before": "db-01", "after": "db-01.example.org" })
    );

    // A stale version is rejected and changes nothing.
    let stale = tom
        .patch(
            &format!("{CIS}/{id}"),
            &json!({ "attributes": { "memory_mb": 1 }, "version": 1 }),
        )
        .await?;
    assert_error(&stale, StatusCode::CONFLICT, "conflict", None);
    assert!(
        stale.text.contains("expected version 1, found 2"),
        "{}",
        stale.text
    );

    let at = before_update.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let past = tom
        .get(&format!("{CIS}/{id}?at={}", at.replace('+', "%2B")))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(past["name"], "db-01");
    assert_eq!(past["version"], 1);
    assert_eq!(past["attributes"]["memory_mb"], 16384);
    assert_eq!(past["attributes"]["environment"], "production");

    let too_early = tom
        .get(&format!("{CIS}/{id}?at=2001-01-01T00:00:00Z"))
        .await?;
    assert_error(&too_early, StatusCode::NOT_FOUND, "not_found", None);
    let bad_time = tom.get(&format!("{CIS}/{id}?at=yesterday")).await?;
    assert_error(
        &bad_time,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("at"),
    );

    let host = ci(tom, "server", "hv-01", json!({})).await?;
    let vm = ci(tom, "virtual_machine", "vm-01", json!({})).await?;
    let hosted = relate(tom, "hosted_by", vm, host).await?;
    let retired = tom
        .post(&format!("{CIS}/{host}/retire"), &json!({}))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(retired["status"], "retired");
    assert!(retired["retired_at"].is_string());
    assert_eq!(retired["retired_relationships"], json!([hosted]));
    assert_eq!(retired["relationships"], json!([]));
    let again = tom
        .post(&format!("{CIS}/{host}/retire"), &json!({}))
        .await?;
    assert_error(&again, StatusCode::BAD_REQUEST, "invalid_input", None);
    let change_retired = tom
        .patch(
            &format!("{CIS}/{host}"),
            &json!({ "attributes": { "cpu": "x" } }),
        )
        .await?;
    assert_error(
        &change_retired,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        None,
    );

    // An incident naming the CI is listed on it while open.
    let incident = create_incident(
        &desk.alice,
        "Database is slow",
        "Queries take seconds.",
        json!({ "ci": "db-01.example.org" }),
    )
    .await?;
    let read = tom
        .get(&format!("{CIS}/{id}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(read["records"][0]["number"], incident["number"]);

    // Requesters see nothing of the CMDB.
    let forbidden = desk.alice.client.get(&format!("{CIS}/{id}")).await?;
    assert_error(&forbidden, StatusCode::FORBIDDEN, "forbidden", None);
    let forbidden = desk.alice.client.get(CIS).await?;
    assert_error(&forbidden, StatusCode::FORBIDDEN, "forbidden", None);
    Ok(())
}

async fn ci_attributes_are_checked(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let cases = [
        (
            json!({ "class": "sever", "name": "x" }),
            "unknown_class",
            "class",
            "unknown CI class `sever`",
        ),
        (
            json!({ "class": "computer", "name": "x" }),
            "abstract_class",
            "class",
            "CI class `computer` is abstract",
        ),
        (
            json!({ "class": "server", "name": "x", "attributes": { "colour": "red" } }),
            "unknown_attribute",
            "attributes.colour",
            "class `server` has no attribute `colour`",
        ),
        (
            json!({ "class": "server", "name": "x", "attributes": { "memory_mb": "lots" } }),
            "invalid_attribute",
            "attributes.memory_mb",
            "attribute `memory_mb` of class `server` is \"lots\": send a JSON number",
        ),
        (
            json!({ "class": "server", "name": "x", "attributes": { "environment": "prod" } }),
            "invalid_attribute",
            "attributes.environment",
            "send one of production, staging, test, development",
        ),
        (
            json!({ "class": "contract", "name": "x", "attributes": { "supplier": "A", "kind": "support", "starts_on": "31/12/2026" } }),
            "invalid_attribute",
            "attributes.starts_on",
            "send a date as YYYY-MM-DD",
        ),
        (
            json!({ "class": "server", "name": "x", "attributes": { "ip_addresses": "10.0.0.1" } }),
            "invalid_attribute",
            "attributes.ip_addresses",
            "send a JSON array",
        ),
        (
            json!({ "class": "server", "name": "x", "attributes": { "ip_addresses": ["10.0.0.1", 7] } }),
            "invalid_attribute",
            "attributes.ip_addresses[1]",
            "send a JSON string",
        ),
        (
            json!({ "class": "business_service", "name": "Payroll" }),
            "missing_attribute",
            "attributes.criticality",
            "attribute `criticality` of class `business_service` is required",
        ),
        (
            json!({ "class": "server", "name": "x", "attributes": { "location": "Nowhere" } }),
            "unknown_ci",
            "attributes.location",
            "no CI of class `location` that is not retired has that id or name",
        ),
        (
            json!({ "class": "server", "name": "x", "attributes": { "owner": "nobody" } }),
            "unknown_user",
            "attributes.owner",
            "names user `nobody`, who does not exist",
        ),
        (
            json!({ "class": "server", "name": "x", "status": "retired" }),
            "invalid_status",
            "status",
            "retire a CI with POST /api/v1/cis/{id}/retire",
        ),
        (
            json!({ "class": "server", "name": "  " }),
            "invalid_name",
            "name",
            "give 1 to 200 characters",
        ),
    ];
    for (body, code, field, message) in cases {
        let reply = tom.post(CIS, &body).await?;
        assert_error(&reply, StatusCode::BAD_REQUEST, code, Some(field));
        let text = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "expected `{message}` for {body}: {text}"
        );
    }

    // A reference to a CI of the wrong class is refused like a missing one.
    let server = ci(tom, "server", "web-01", json!({})).await?;
    let wrong = tom
        .post(
            CIS,
            &json!({ "class": "server", "name": "web-02", "attributes": { "location": server } }),
        )
        .await?;
    assert_error(
        &wrong,
        StatusCode::BAD_REQUEST,
        "unknown_ci",
        Some("attributes.location"),
    );

    let listed = tom.get(CIS).await?.expect_status(StatusCode::OK)?.body;
    assert_eq!(
        listed["cis"].as_array().map(Vec::len),
        Some(1),
        "refused CIs are not stored: {listed}"
    );
    Ok(())
}

async fn unique_attribute_names_holder(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let first = ci(tom, "server", "app-01", json!({ "serial_number": "SN-1" })).await?;

    // Serial numbers are unique among all computers, whatever their class and case.
    let reply = tom
        .post(
            CIS,
            &json!({ "class": "laptop", "name": "lt-7", "attributes": { "serial_number": " sn-1" } }),
        )
        .await?;
    assert_error(&reply, StatusCode::CONFLICT, "duplicate", None);
    assert!(
        reply.text.contains(&format!(
            "value `sn-1` is already used by CI {first} (app-01)"
        )),
        "{}",
        reply.text
    );

    let second = ci(tom, "server", "app-02", json!({ "serial_number": "SN-2" })).await?;
    let reply = tom
        .patch(
            &format!("{CIS}/{second}"),
            &json!({ "attributes": { "serial_number": "SN-1" } }),
        )
        .await?;
    assert_error(&reply, StatusCode::CONFLICT, "duplicate", None);
    let unchanged = tom
        .get(&format!("{CIS}/{second}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(unchanged["attributes"]["serial_number"], "SN-2");
    assert_eq!(unchanged["version"], 1);

    // A retired CI gives its unique values up.
    tom.post(&format!("{CIS}/{first}/retire"), &json!({}))
        .await?
        .expect_status(StatusCode::OK)?;
    let reused = tom
        .patch(
            &format!("{CIS}/{second}"),
            &json!({ "attributes": { "serial_number": "SN-1" } }),
        )
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(reused["attributes"]["serial_number"], "SN-1");

    // A network device declares its own serial number, unique among network devices only.
    ci(
        tom,
        "network_device",
        "sw-1",
        json!({ "kind": "switch", "serial_number": "SN-1" }),
    )
    .await?;
    Ok(())
}

async fn relationships_are_checked(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let app = ci(tom, "application", "CRM", json!({ "criticality": "high" })).await?;
    let server = ci(tom, "server", "crm-01", json!({})).await?;
    let vm = ci(tom, "virtual_machine", "crm-vm", json!({})).await?;
    let post = |body: Value| async move { tom.post("/api/v1/relationships", &body).await };

    let wrong_end = post(json!({ "type": "runs_on", "source": server, "target": app })).await?;
    assert_error(
        &wrong_end,
        StatusCode::BAD_REQUEST,
        "class_not_allowed",
        Some("source"),
    );
    assert!(
        wrong_end
            .text
            .contains("its source must be of class application, database"),
        "{}",
        wrong_end.text
    );
    let unknown = post(json!({ "type": "runs", "source": app, "target": vm })).await?;
    assert_error(
        &unknown,
        StatusCode::BAD_REQUEST,
        "unknown_relationship_type",
        Some("type"),
    );
    let missing = post(json!({ "type": "runs_on", "source": app, "target": 999_999 })).await?;
    assert_error(
        &missing,
        StatusCode::BAD_REQUEST,
        "unknown_ci",
        Some("target"),
    );
    let itself = post(json!({ "type": "depends_on", "source": app, "target": app })).await?;
    assert_error(&itself, StatusCode::BAD_REQUEST, "invalid_input", None);

    // A subclass matches: a virtual machine is a computer. Names work as well as ids.
    let runs_on = relate(tom, "runs_on", app, vm).await?;
    let duplicate = post(json!({ "type": "runs_on", "source": "crm", "target": "CRM-VM" })).await?;
    assert_error(&duplicate, StatusCode::CONFLICT, "duplicate", None);

    let read = tom
        .get(&format!("{CIS}/{vm}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let relationships = read["relationships"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(relationships.len(), 1);
    assert_eq!(relationships[0]["label"], "Runs");
    assert_eq!(relationships[0]["direction"], "incoming");
    assert_eq!(relationships[0]["ci"]["name"], "CRM");
    let read = tom
        .get(&format!("{CIS}/{app}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(read["relationships"][0]["label"], "Runs on");
    assert_eq!(read["relationships"][0]["direction"], "outgoing");

    let retired = tom
        .delete(&format!("/api/v1/relationships/{runs_on}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(retired["retired_by"], "tom");
    let read = tom
        .get(&format!("{CIS}/{vm}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(read["relationships"], json!([]));
    let again = tom
        .delete(&format!("/api/v1/relationships/{runs_on}"))
        .await?;
    assert_error(&again, StatusCode::BAD_REQUEST, "invalid_input", None);
    let recreated = relate(tom, "runs_on", app, vm).await?;
    assert_ne!(recreated, runs_on);

    // Containment refuses a cycle when it is saved.
    let site = ci(tom, "location", "Site A", json!({})).await?;
    let building = ci(tom, "location", "Building 1", json!({})).await?;
    let floor = ci(tom, "location", "Floor 2", json!({})).await?;
    relate(tom, "located_in", building, site).await?;
    relate(tom, "located_in", floor, building).await?;
    let cycle = post(json!({ "type": "located_in", "source": site, "target": floor })).await?;
    assert_error(&cycle, StatusCode::BAD_REQUEST, "invalid_input", None);
    assert!(cycle.text.contains("would close a cycle"), "{}", cycle.text);
    Ok(())
}

/// Builds business service ← application → database → virtual machine → host server,
/// and returns their ids in that order.
async fn service_tree(tom: &ApiClient) -> anyhow::Result<[i64; 5]> {
    let service = ci(
        tom,
        "business_service",
        "Payroll",
        json!({ "criticality": "critical" }),
    )
    .await?;
    let app = ci(
        tom,
        "application",
        "payroll-app",
        json!({ "criticality": "high" }),
    )
    .await?;
    let db = ci(
        tom,
        "database",
        "payroll-db",
        json!({ "engine": "postgresql" }),
    )
    .await?;
    let vm = ci(tom, "virtual_machine", "payroll-vm", json!({})).await?;
    let host = ci(tom, "server", "esx-07", json!({})).await?;
    relate(tom, "used_by", app, service).await?;
    relate(tom, "depends_on", app, db).await?;
    relate(tom, "runs_on", db, vm).await?;
    relate(tom, "hosted_by", vm, host).await?;
    Ok([service, app, db, vm, host])
}

async fn impact_follows_service_tree(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let [service, app, db, vm, host] = service_tree(tom).await?;

    let down = impact(tom, &format!("{CIS}/{host}/impact?direction=down&depth=5")).await?;
    assert_eq!(
        depths(&down),
        BTreeMap::from([
            ("payroll-vm".to_owned(), 1),
            ("payroll-db".to_owned(), 2),
            ("payroll-app".to_owned(), 3),
            ("Payroll".to_owned(), 4),
        ])
    );
    let payroll = affected(&down, "Payroll");
    assert_eq!(
        path_types(payroll),
        ["hosted_by", "runs_on", "depends_on", "used_by"]
    );
    assert_eq!(payroll["path"][0]["from"], host);
    assert_eq!(payroll["path"][0]["to"], vm);
    assert_eq!(payroll["path"][0]["label"], "Hosts");
    assert_eq!(payroll["path"][3]["label"], "Used by");
    assert_eq!(payroll["criticality"], "critical");
    assert_eq!(down["services"].as_array().map(Vec::len), Some(1));
    assert_eq!(down["services"][0]["id"], service);
    assert_eq!(down["start"][0]["id"], host);
    assert_eq!(down["cycles"], json!([]));
    assert_eq!(
        down["queries"], 5,
        "one query per level, the last finds nothing"
    );

    let shallow = impact(tom, &format!("{CIS}/{host}/impact?depth=2")).await?;
    assert_eq!(
        depths(&shallow),
        BTreeMap::from([("payroll-vm".to_owned(), 1), ("payroll-db".to_owned(), 2)])
    );

    let up = impact(tom, &format!("{CIS}/{service}/impact?direction=up")).await?;
    assert_eq!(
        depths(&up),
        BTreeMap::from([
            ("payroll-app".to_owned(), 1),
            ("payroll-db".to_owned(), 2),
            ("payroll-vm".to_owned(), 3),
            ("esx-07".to_owned(), 4),
        ])
    );
    assert_eq!(affected(&up, "esx-07")["path"][3]["label"], "Hosted by");

    // Several start CIs: each affected CI once, at its shortest depth from any start.
    let many = impact(
        tom,
        &format!("/api/v1/impact?ids={host},{db}&direction=down"),
    )
    .await?;
    assert_eq!(
        depths(&many),
        BTreeMap::from([
            ("payroll-vm".to_owned(), 1),
            ("payroll-app".to_owned(), 1),
            ("Payroll".to_owned(), 2),
        ])
    );
    let posted = tom
        .post(
            "/api/v1/impact",
            &json!({ "ids": [host, db], "direction": "down" }),
        )
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(depths(&posted), depths(&many));
    let with_ids = impact(tom, &format!("{CIS}/{host}/impact?ids={db}")).await?;
    assert_eq!(depths(&with_ids), depths(&many));

    let too_deep = tom.get(&format!("{CIS}/{host}/impact?depth=11")).await?;
    assert_error(
        &too_deep,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("depth"),
    );
    assert!(
        too_deep.text.contains("use a value from 1 to 10"),
        "{}",
        too_deep.text
    );
    let sideways = tom
        .get(&format!("{CIS}/{host}/impact?direction=sideways"))
        .await?;
    assert_error(
        &sideways,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("direction"),
    );
    let no_ci = tom.get(&format!("{CIS}/999999/impact")).await?;
    assert_error(&no_ci, StatusCode::NOT_FOUND, "not_found", None);
    let bad_ids = tom.get("/api/v1/impact?ids=1,x").await?;
    assert_error(
        &bad_ids,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("ids"),
    );
    let _ = app;
    Ok(())
}

async fn impact_cycle_lists_each_once(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let app_a = ci(tom, "application", "app-A", json!({ "criticality": "low" })).await?;
    let db_b = ci(tom, "database", "db-B", json!({ "engine": "mysql" })).await?;
    let storage_c = ci(tom, "server", "storage-C", json!({})).await?;
    let app_d = ci(tom, "application", "app-D", json!({ "criticality": "low" })).await?;
    relate(tom, "depends_on", app_a, db_b).await?;
    relate(tom, "depends_on", db_b, storage_c).await?;
    relate(tom, "depends_on", storage_c, app_a).await?;
    relate(tom, "depends_on", app_d, db_b).await?;

    let started = std::time::Instant::now();
    let down = impact(
        tom,
        &format!("{CIS}/{storage_c}/impact?direction=down&depth=10"),
    )
    .await?;
    let elapsed = started.elapsed();
    assert_eq!(
        depths(&down),
        BTreeMap::from([
            ("db-B".to_owned(), 1),
            ("app-A".to_owned(), 2),
            ("app-D".to_owned(), 2),
        ])
    );
    assert_eq!(down["start"][0]["name"], "storage-C");
    assert_eq!(down["cycles"], json!([[storage_c, db_b, app_a, storage_c]]));
    assert!(
        down["warnings"][0]
            .as_str()
            .is_some_and(|warning| warning.contains("form a cycle")),
        "{down}"
    );
    assert!(
        elapsed < std::time::Duration::from_millis(100),
        "the walk took {elapsed:?}"
    );
    Ok(())
}

async fn impact_skips_non_impact_types(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let rack = ci(tom, "rack", "R1", json!({ "units": 42 })).await?;
    let s1 = ci(tom, "server", "S1", json!({})).await?;
    let s2 = ci(tom, "server", "S2", json!({})).await?;
    let v1 = ci(tom, "virtual_machine", "V1", json!({})).await?;
    let app = ci(
        tom,
        "application",
        "payroll-app",
        json!({ "criticality": "high" }),
    )
    .await?;
    let payroll = ci(
        tom,
        "business_service",
        "Payroll",
        json!({ "criticality": "high" }),
    )
    .await?;
    let package = ci(tom, "software_package", "openssl 3.0", json!({})).await?;
    let contract = ci(
        tom,
        "contract",
        "Rack maintenance",
        json!({ "supplier": "ACME", "kind": "maintenance", "starts_on": "2026-01-01" }),
    )
    .await?;
    relate(tom, "located_in", s1, rack).await?;
    relate(tom, "located_in", s2, rack).await?;
    relate(tom, "hosted_by", v1, s1).await?;
    relate(tom, "runs_on", app, v1).await?;
    relate(tom, "used_by", app, payroll).await?;
    // Neither carries impact: a contract does not fail with the rack it covers, and a
    // package does not fail with its host.
    relate(tom, "covered_by", rack, contract).await?;
    relate(tom, "installed_on", package, s1).await?;

    let down = impact(tom, &format!("{CIS}/{rack}/impact?direction=down")).await?;
    assert_eq!(
        depths(&down),
        BTreeMap::from([
            ("S1".to_owned(), 1),
            ("S2".to_owned(), 1),
            ("V1".to_owned(), 2),
            ("payroll-app".to_owned(), 3),
            ("Payroll".to_owned(), 4),
        ])
    );
    let up = impact(tom, &format!("{CIS}/{s1}/impact?direction=up")).await?;
    assert_eq!(depths(&up), BTreeMap::from([("R1".to_owned(), 1)]));

    let schema = tom
        .get("/api/v1/ci-classes")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let blind: Vec<&str> = schema["classes_without_impact"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(blind.contains(&"software_package"), "{blind:?}");
    assert!(!blind.contains(&"rack"), "{blind:?}");
    Ok(())
}

async fn ci_list_filters_and_pages(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let mut computers = Vec::new();
    for i in 0..5 {
        computers.push(
            ci(
                tom,
                "server",
                &format!("srv-{i}"),
                json!({ "serial_number": format!("SER-{i}") }),
            )
            .await?,
        );
    }
    computers.push(
        ci(
            tom,
            "virtual_machine",
            "vm-9",
            json!({ "uuid": "4C4C4544-0042" }),
        )
        .await?,
    );
    let service = ci(
        tom,
        "business_service",
        "Mail",
        json!({ "criticality": "high" }),
    )
    .await?;
    let names = |page: &Value| -> Vec<String> {
        page["cis"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|ci| ci["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    let all = tom
        .get(&format!("{CIS}?class=computer&limit=500"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(
        names(&all),
        ["srv-0", "srv-1", "srv-2", "srv-3", "srv-4", "vm-9"]
    );

    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    for _ in 0..10 {
        let path = match after {
            Some(after) => format!("{CIS}?class=computer&limit=4&after={after}"),
            None => format!("{CIS}?class=computer&limit=4"),
        };
        let page = tom.get(&path).await?.expect_status(StatusCode::OK)?.body;
        seen.extend(names(&page));
        match page["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, names(&all));

    let by_name = tom
        .get(&format!("{CIS}?q=SRV-3"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(names(&by_name), ["srv-3"]);
    let by_serial = tom
        .get(&format!("{CIS}?q=ser-2"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(names(&by_serial), ["srv-2"]);
    let by_uuid = tom
        .get(&format!("{CIS}?q=4c4c4544-0042"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(names(&by_uuid), ["vm-9"]);

    tom.post(&format!("{CIS}/{}/retire", computers[0]), &json!({}))
        .await?
        .expect_status(StatusCode::OK)?;
    let active = tom
        .get(&format!("{CIS}?class=server"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(names(&active), ["srv-1", "srv-2", "srv-3", "srv-4"]);
    let retired = tom
        .get(&format!("{CIS}?status=retired"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(names(&retired), ["srv-0"]);
    let services = tom
        .get(&format!("{CIS}?class=business_service"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(services["cis"][0]["id"], service);

    let unknown = tom.get(&format!("{CIS}?class=mainframe")).await?;
    assert_error(
        &unknown,
        StatusCode::BAD_REQUEST,
        "unknown_class",
        Some("class"),
    );
    let too_many = tom.get(&format!("{CIS}?limit=501")).await?;
    assert_error(
        &too_many,
        StatusCode::BAD_REQUEST,
        "invalid_query",
        Some("limit"),
    );
    Ok(())
}

/// A change on a server that a critical service depends on is high risk through the CMDB,
/// and an incident on that server lists the change, the known error and the requester's
/// own CIs.
async fn records_show_impact_to_rules(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let payroll = ci(
        tom,
        "business_service",
        "Payroll",
        json!({ "criticality": "critical" }),
    )
    .await?;
    let app = ci(
        tom,
        "application",
        "payroll-app",
        json!({ "criticality": "high" }),
    )
    .await?;
    let server = ci(
        tom,
        "server",
        "srv-pay-1",
        json!({ "serial_number": "SRV-PAY-1" }),
    )
    .await?;
    relate(tom, "used_by", app, payroll).await?;
    relate(tom, "runs_on", app, server).await?;
    ci(tom, "workstation", "ws-alice", json!({ "owner": "alice" })).await?;

    let body = json!({
        "title": "Patch the payroll server",
        "description": "Kernel update",
        "fields": { "type": "normal", "impact": "medium", "urgency": "medium", "ci": "srv-pay-1" },
    });
    let change = tom
        .post("/api/v1/records/change", &body)
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;
    assert_eq!(change["fields"]["risk"], "high", "{change}");
    let number = change["number"].as_str().unwrap_or_default().to_owned();
    let read = tom
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let affected = &read["cmdb"]["affected"];
    assert_eq!(affected["services"][0]["name"], "Payroll", "{read}");
    assert_eq!(affected["highest_criticality"], "critical");
    assert_eq!(affected["count"], 2, "{read}");

    let body = json!({
        "title": "Payroll server hangs on boot",
        "description": "Known issue",
        "fields": { "ci": "srv-pay-1", "root_cause": "Driver bug", "workaround": "Boot the older kernel" },
    });
    let known_error = tom
        .post("/api/v1/records/known_error", &body)
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;

    let incident = create_incident(
        &desk.alice,
        "Payroll is down",
        "The payroll application does not answer",
        json!({ "ci": "srv-pay-1" }),
    )
    .await?;
    let incident_number = incident["number"].as_str().unwrap_or_default();
    // The critical service behind the CI raises the incident's impact.
    assert_eq!(incident["fields"]["impact"], "high", "{incident}");
    let read = tom
        .get(&format!("/api/v1/records/{incident_number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let cmdb = &read["cmdb"];
    assert_eq!(cmdb["open_changes"][0]["number"], number.as_str(), "{cmdb}");
    assert_eq!(
        cmdb["known_errors"][0]["number"], known_error["number"],
        "{cmdb}"
    );
    assert_eq!(cmdb["requester_cis"][0]["name"], "ws-alice", "{cmdb}");
    assert_eq!(cmdb["cis"][0]["name"], "srv-pay-1");
    // Requesters do not see the CMDB.
    let own = desk
        .alice
        .client
        .get(&format!("/api/v1/records/{incident_number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert!(own.get("cmdb").is_none(), "{own}");
    Ok(())
}

/// The shipped collections select CIs by operating system, memory, owner and location,
/// count them by value, and a release that targets an empty collection cannot start.
async fn collections_select_and_target_releases(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let berlin = ci(tom, "location", "Berlin HQ", json!({})).await?;
    for (class, name, attributes) in [
        (
            "workstation",
            "ws-1",
            json!({ "os_name": "Debian GNU/Linux 12", "memory_mb": 4096, "owner": "alice", "location": berlin }),
        ),
        (
            "laptop",
            "lt-1",
            json!({ "os_name": "Ubuntu 24.04", "memory_mb": 16384, "location": "Berlin HQ" }),
        ),
        (
            "workstation",
            "ws-2",
            json!({ "os_name": "Windows 11 Pro", "memory_mb": 8192, "ip_addresses": ["10.7.7.7"] }),
        ),
        (
            "server",
            "srv-1",
            json!({ "os_name": "Debian GNU/Linux 12", "environment": "production" }),
        ),
    ] {
        ci(tom, class, name, attributes).await?;
    }
    let members = |name: &str, query: &str| {
        let path = format!("/api/v1/collections/{name}{query}");
        async move { impact(tom, &path).await }
    };
    let names = |body: &Value| -> Vec<String> {
        body["cis"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|ci| ci["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    let linux = members("linux_computers", "").await?;
    assert_eq!(names(&linux), ["ws-1", "lt-1", "srv-1"], "{linux}");
    assert_eq!(linux["total"], 3);
    let windows = members("windows_workstations", "").await?;
    assert_eq!(names(&windows), ["ws-2"], "{windows}");
    let small = members("small_memory_computers", "").await?;
    assert_eq!(names(&small), ["ws-1"], "{small}");
    let unowned = members("unowned_computers", "").await?;
    assert_eq!(names(&unowned), ["lt-1", "ws-2"], "{unowned}");
    let production = members("production_servers", "").await?;
    assert_eq!(names(&production), ["srv-1"], "{production}");

    // Reports count the members by a value; pages follow `next_after`.
    let grouped = members("linux_computers", "?group_by=class").await?;
    assert_eq!(grouped["groups"]["workstation"], 1, "{grouped}");
    assert_eq!(grouped["groups"]["laptop"], 1);
    assert_eq!(grouped["groups"]["server"], 1);
    let first = members("linux_computers", "?limit=2").await?;
    assert_eq!(names(&first), ["ws-1", "lt-1"]);
    let after = first["next_after"].as_i64().unwrap_or_default();
    let second = members("linux_computers", &format!("?limit=2&after={after}")).await?;
    assert_eq!(names(&second), ["srv-1"]);
    assert!(second["next_after"].is_null());

    // The CI list finds a CI by an indexed IP address, and the CIs in a location by the
    // location's name.
    let by_ip = impact(tom, "/api/v1/cis?q=10.7.7.7").await?;
    assert_eq!(names(&by_ip), ["ws-2"], "{by_ip}");
    let in_berlin = impact(tom, "/api/v1/cis?q=Berlin%20HQ").await?;
    assert_eq!(
        names(&in_berlin),
        ["Berlin HQ", "ws-1", "lt-1"],
        "{in_berlin}"
    );

    let listed = impact(tom, "/api/v1/collections").await?;
    assert!(
        listed["collections"]
            .as_array()
            .is_some_and(|all| all.len() >= 5),
        "{listed}"
    );
    let missing = tom.get("/api/v1/collections/nope").await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let colour = tom
        .get("/api/v1/collections/linux_computers?group_by=colour")
        .await?;
    assert_error(
        &colour,
        StatusCode::BAD_REQUEST,
        "unknown_attribute",
        Some("group_by"),
    );

    // A release shows the members of its target collection.
    let body = json!({
        "title": "Office suite 24.2",
        "description": "Rollout",
        "fields": { "version": "24.2", "target_collection": "windows_workstations" },
    });
    let release = tom
        .post("/api/v1/records/release", &body)
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;
    let number = release["number"].as_str().unwrap_or_default();
    let read = impact(tom, &format!("/api/v1/records/{number}")).await?;
    assert_eq!(read["cmdb"]["target"]["count"], 1, "{read}");
    assert_eq!(read["cmdb"]["target"]["cis"][0]["name"], "ws-2");
    Ok(())
}

/// The remote-control plugin builds its links from the CMDB: the CI's class picks the
/// templates and its FQDN is the host.
async fn remote_links_use_cmdb_attributes(backend: Backend) -> anyhow::Result<()> {
    use tend_test_support::tend_api::actions::ActionWorker;
    use tend_test_support::tend_plugin_api::{CancellationToken, PluginRegistry};

    let mut plugins = PluginRegistry::new();
    let config = tend_test_support::repo_root().join("plugins/remote/remote.yaml");
    plugins.add(std::sync::Arc::new(tend_plugin_remote::RemotePlugin::load(
        &config,
    )?));
    let database = tend_test_support::TestDatabase::create(backend).await?;
    let server = tend_test_support::TestServer::in_process_with(database, plugins).await?;
    let desk = Desk::with_users(server).await?;
    let tom = &desk.tom.client;
    ci(
        tom,
        "virtual_machine",
        "payroll-vm",
        json!({ "fqdn": "payroll-vm.dc.example.net", "uuid": "VM-1" }),
    )
    .await?;
    ci(
        tom,
        "laptop",
        "lt-42",
        json!({ "ip_addresses": ["10.9.8.7"] }),
    )
    .await?;

    let commands = desk.server.commands().expect("in-process").clone();
    let worker = ActionWorker::new(commands.clone(), "node-a", 2, CancellationToken::new());
    let mut urls = Vec::new();
    for name in ["payroll-vm", "lt-42"] {
        let incident = create_incident(
            &desk.alice,
            "Cannot connect",
            "Please look",
            json!({ "ci": name }),
        )
        .await?;
        let number = incident["number"].as_str().unwrap_or_default().to_owned();
        let queued = tom
            .post(
                &format!("/api/v1/records/{number}/actions"),
                &json!({ "plugin": "remote", "action": "connect", "params": {} }),
            )
            .await?
            .expect_status(StatusCode::ACCEPTED)?;
        let id = queued.body["id"].as_i64().unwrap_or_default();
        let mut run = None;
        for _ in 0..100 {
            worker.pass().await?;
            let current = commands.action_run(id).await?;
            if current.status.is_final() {
                run = Some(serde_json::to_value(&current)?);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let run = run.ok_or_else(|| anyhow::anyhow!("run {id} did not end"))?;
        assert_eq!(run["status"], "succeeded", "{run}");
        let links = run["data"]["links"].as_array().cloned().unwrap_or_default();
        urls.push(
            links
                .iter()
                .filter_map(|link| link["url"].as_str().map(str::to_owned))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(urls[0], ["ssh://admin@payroll-vm.dc.example.net"]);
    assert_eq!(
        urls[1],
        [
            "rdp://full%20address=s:10.9.8.7:3389",
            "vnc://10.9.8.7:5900"
        ]
    );
    Ok(())
}
