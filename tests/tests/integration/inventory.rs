//! Inventory import into the CMDB: real agent output of this machine imported twice, the
//! reconciliation rules (placeholder serials, renamed machines, conflicting keys,
//! people-owned attributes, source precedence), dry runs, the agent protocol, and the
//! sample documents of the GLPI inventory format.

use std::path::PathBuf;

use serde_json::{Value, json};
use tend_test_support::reqwest::{Method, StatusCode};
use tend_test_support::{
    ApiClient, Backend, Reply, Role, TestServer, backend_tests, repo_root, run_tend,
};

backend_tests!(
    agent_output_imports_twice_unchanged,
    running_agent_posts_to_server,
    placeholder_serials_stay_apart,
    renamed_computer_keeps_history,
    conflicting_keys_are_reported,
    people_owned_attributes_are_kept,
    source_precedence_decides,
    dry_run_writes_nothing,
    software_changes_are_linked,
    agent_protocol_and_access,
    sample_documents_import_or_explain,
    cli_import_and_dry_run,
    cmdb_audit_finds_and_opens_tasks,
    ci_rules_place_discovered_machines,
    lower_source_keeps_software_list,
);

const INVENTORY: &str = "/api/v1/inventory";
/// The inventory reader's fixtures: GLPI format samples, this kind of agent's output of a
/// virtual machine, and lshw output.
const FIXTURES: &str = "engine/inventory/tests/fixtures";

/// Posts `bytes` to the inventory endpoint.
async fn post(client: &ApiClient, bytes: Vec<u8>, dry_run: bool) -> anyhow::Result<Reply> {
    let path = if dry_run {
        format!("{INVENTORY}?dry_run=true")
    } else {
        INVENTORY.to_owned()
    };
    client
        .send(
            client
                .request(Method::POST, &path)
                .header("Content-Type", "application/octet-stream")
                .body(bytes),
        )
        .await
}

/// Posts a JSON document and returns the report's only item.
async fn import_one(client: &ApiClient, document: &Value) -> anyhow::Result<Value> {
    let reply = post(client, document.to_string().into_bytes(), false).await?;
    anyhow::ensure!(
        reply.status.is_success(),
        "import failed with {}: {}",
        reply.status,
        reply.text
    );
    Ok(reply.body["items"][0].clone())
}

/// Builds a GLPI agent JSON inventory of a computer, with `extra` merged into `content`.
fn glpi_computer(device: &str, name: &str, serial: &str, uuid: &str, extra: Value) -> Value {
    let mut content = json!({
        "hardware": { "name": name, "uuid": uuid },
        "bios": { "ssn": serial, "smanufacturer": "Contoso", "smodel": "Model 7" },
        "operatingsystem": { "full_name": "Debian GNU/Linux 12 (bookworm)", "version": "12" },
        "versionclient": "GLPI-Agent_v1.7",
    });
    if let (Some(content), Value::Object(extra)) = (content.as_object_mut(), extra) {
        content.extend(extra);
    }
    json!({ "deviceid": device, "action": "inventory", "itemtype": "Computer", "content": content })
}

async fn ci(client: &ApiClient, id: i64) -> anyhow::Result<Value> {
    Ok(client
        .get(&format!("/api/v1/cis/{id}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body)
}

async fn cis_of_class(client: &ApiClient, class: &str) -> anyhow::Result<Vec<Value>> {
    let body = client
        .get(&format!("/api/v1/cis?class={class}&limit=500"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    Ok(body["cis"].as_array().cloned().unwrap_or_default())
}

fn relationships_of_kind(ci: &Value, kind: &str) -> usize {
    ci["relationships"]
        .as_array()
        .map(|all| all.iter().filter(|r| r["type"] == kind).count())
        .unwrap_or_default()
}

/// Checks that an inventory program is installed; without it the test fails under
/// `TEND_REQUIRE_INVENTORY_TOOLS` and is skipped with a message otherwise.
fn tool(path: &str) -> anyhow::Result<bool> {
    if std::path::Path::new(path).exists() {
        return Ok(true);
    }
    anyhow::ensure!(
        std::env::var_os("TEND_REQUIRE_INVENTORY_TOOLS").is_none(),
        "{path} is missing: run scripts/ensure-inventory-tools.sh"
    );
    eprintln!("skipped: {path} is missing (run scripts/ensure-inventory-tools.sh)");
    Ok(false)
}

/// Runs a program and returns its standard output.
async fn output_of(program: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

async fn agent(server: &TestServer) -> anyhow::Result<ApiClient> {
    Ok(server
        .add_user("agent", &[Role::InventoryAgent])
        .await?
        .client)
}

async fn agent_output_imports_twice_unchanged(backend: Backend) -> anyhow::Result<()> {
    if !tool("/usr/bin/fusioninventory-inventory")? || !tool("/usr/bin/lshw")? {
        return Ok(());
    }
    let server = TestServer::in_process(backend).await?;
    let agent = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;

    let first = output_of("/usr/bin/fusioninventory-inventory", &[]).await?;
    let reply = post(&agent, first, false).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let item = &reply.body["items"][0];
    assert_eq!(item["action"], "create", "{item}");
    assert_eq!(reply.body["source"], "fusioninventory");
    let id = item["ci_id"].as_i64().unwrap_or_default();
    let software = item["software"]["added"].as_array().map_or(0, Vec::len);
    assert!(software > 50, "only {software} packages linked: {item}");
    let created = ci(&staff, id).await?;
    let version = created["version"].clone();
    assert_eq!(relationships_of_kind(&created, "installed_on"), software);
    assert!(
        created["attributes"]["mac_addresses"].is_array(),
        "{created}"
    );

    // A second run of the agent describes the same machine: nothing changes.
    let second = output_of("/usr/bin/fusioninventory-inventory", &[]).await?;
    let reply = post(&agent, second, false).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let item = &reply.body["items"][0];
    assert_eq!(item["action"], "unchanged", "{item}");
    assert_eq!(item["ci_id"].as_i64(), Some(id));
    let again = ci(&staff, id).await?;
    assert_eq!(again["version"], version);
    assert_eq!(relationships_of_kind(&again, "installed_on"), software);
    assert_eq!(cis_of_class(&staff, "computer").await?.len(), 1);

    // lshw of the same machine matches it by MAC address and, ranking first for memory,
    // sets the installed memory; the agent's next report keeps it.
    let lshw = output_of("/usr/bin/lshw", &["-json", "-quiet"]).await?;
    let reply = post(&agent, lshw, false).await?;
    assert!(reply.status.is_success(), "{}", reply.text);
    let item = &reply.body["items"][0];
    assert_eq!(item["ci_id"].as_i64(), Some(id), "{item}");
    assert_eq!(reply.body["source"], "lshw");
    let third = output_of("/usr/bin/fusioninventory-inventory", &[]).await?;
    let reply = post(&agent, third, false).await?;
    let item = &reply.body["items"][0];
    assert_eq!(item["action"], "unchanged", "{item}");
    let after = ci(&staff, id).await?;
    let reported = after["discovery"]["reported"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let lshw_memory = reported
        .iter()
        .find(|entry| entry["source"] == "lshw" && entry["attribute"] == "memory_mb")
        .map(|entry| entry["value"].clone());
    if let Some(memory) = lshw_memory {
        assert_eq!(after["attributes"]["memory_mb"], memory, "{after}");
    }
    let sources: Vec<&str> = after["discovery"]["sightings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sighting| sighting["source"].as_str())
        .collect();
    assert_eq!(sources, ["fusioninventory", "lshw"]);
    Ok(())
}

async fn running_agent_posts_to_server(backend: Backend) -> anyhow::Result<()> {
    if !tool("/usr/bin/fusioninventory-agent")? {
        return Ok(());
    }
    let server = TestServer::in_process(backend).await?;
    let agent = server.add_user("agent", &[Role::InventoryAgent]).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let url = format!("{}{INVENTORY}", server.base_url());
    // An empty configuration file, so that only the options below apply.
    let config = tempfile::NamedTempFile::new()?;
    let output = tokio::process::Command::new("/usr/bin/fusioninventory-agent")
        .args(["--config", "file", "--conf-file"])
        .arg(config.path())
        .args([
            "--server",
            &url,
            "--user",
            "agent",
            "--password",
            &agent.token,
            "--tasks",
            "inventory",
            "--no-httpd",
            "--force",
            "--logger",
            "stderr",
        ])
        .output()
        .await?;
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the agent failed:\n{log}");
    let computers = cis_of_class(&staff, "computer").await?;
    assert_eq!(computers.len(), 1, "agent log:\n{log}");
    let imports = staff
        .get("/api/v1/inventory/imports")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(imports["imports"][0]["outcome"], "created", "{imports}");
    assert_eq!(imports["imports"][0]["actor"], "agent");
    Ok(())
}

async fn placeholder_serials_stay_apart(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let machines = [
        (
            "pc-0142",
            "4C4C4544-0042-3510-8052-B4C04F4E3132",
            "Default string",
        ),
        (
            "pc-0177",
            "03000200-0400-0500-0006-000700080009",
            "No Asset Information",
        ),
    ];
    for round in 0..2 {
        for (name, uuid, asset_tag) in machines {
            let document = glpi_computer(
                &format!("{name}-2026"),
                name,
                "To Be Filled By O.E.M.",
                uuid,
                json!({ "bios": { "ssn": "To Be Filled By O.E.M.", "assettag": asset_tag } }),
            );
            let item = import_one(&client, &document).await?;
            let expected = if round == 0 { "create" } else { "unchanged" };
            assert_eq!(item["action"], expected, "{name} round {round}: {item}");
        }
    }
    let computers = cis_of_class(&staff, "computer").await?;
    assert_eq!(computers.len(), 2, "{computers:?}");
    for computer in &computers {
        let id = computer["id"].as_i64().unwrap_or_default();
        let full = ci(&staff, id).await?;
        assert!(full["attributes"].get("serial_number").is_none(), "{full}");
        assert!(full["attributes"].get("asset_tag").is_none(), "{full}");
        let placeholder = full["discovery"]["reported"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|entry| entry["attribute"] == "serial_number")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(placeholder["value"], "To Be Filled By O.E.M.", "{full}");
        assert_eq!(placeholder["placeholder"], true);
    }
    Ok(())
}

async fn renamed_computer_keeps_history(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    server.add_user("alice", &[Role::Requester]).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let software =
        json!({ "softwares": [{ "name": "libreoffice", "version": "7.4", "publisher": "TDF" }] });

    let item = import_one(
        &client,
        &glpi_computer("d1", "pc-0142", "5CG1234XYZ", "U-1", software.clone()),
    )
    .await?;
    assert_eq!(item["action"], "create");
    let id = item["ci_id"].as_i64().unwrap_or_default();
    staff
        .patch(
            &format!("/api/v1/cis/{id}"),
            &json!({ "attributes": { "owner": "alice" } }),
        )
        .await?
        .expect_status(StatusCode::OK)?;

    let ticket = staff
        .post(
            "/api/v1/records/incident",
            &json!({ "title": "Laptop is slow", "description": "Since Monday", "fields": { "ci": "pc-0142" } }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;

    let item = import_one(
        &client,
        &glpi_computer("d1", "fin-laptop-07", "5CG1234XYZ", "U-1", software.clone()),
    )
    .await?;
    assert_eq!(item["action"], "update", "{item}");
    // The open ticket on the machine follows its new name.
    let number = ticket["number"].as_str().unwrap_or_default();
    let followed = staff
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(followed["fields"]["ci"], "fin-laptop-07", "{followed}");
    assert_eq!(
        followed["configuration_item"]["id"].as_i64(),
        Some(id),
        "{followed}"
    );
    assert_eq!(item["ci_id"].as_i64(), Some(id));
    assert_eq!(item["matched_by"], "serial_number");
    let renamed = ci(&staff, id).await?;
    assert_eq!(renamed["name"], "fin-laptop-07");
    assert_eq!(renamed["attributes"]["owner"], "alice");
    assert_eq!(relationships_of_kind(&renamed, "installed_on"), 1);
    let names: Vec<&Value> = renamed["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|version| version["changes"].get("name"))
        .collect();
    assert_eq!(names.len(), 2, "{renamed}");
    assert_eq!(names[1]["before"], "pc-0142");
    assert_eq!(names[1]["after"], "fin-laptop-07");

    // Two machines that share a host name but not their hardware stay apart.
    for (serial, uuid) in [("5CG9999AAA", "U-2"), ("5CG8888BBB", "U-3")] {
        let item = import_one(&client, &glpi_computer(uuid, "PC", serial, uuid, json!({}))).await?;
        assert_eq!(item["action"], "create", "{item}");
    }
    assert_eq!(cis_of_class(&staff, "computer").await?.len(), 3);
    Ok(())
}

async fn conflicting_keys_are_reported(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let mut ids = Vec::new();
    for (name, attributes) in [
        ("ws-a", json!({ "serial_number": "SN-A" })),
        ("ws-b", json!({ "uuid": "UUID-B" })),
    ] {
        let body = json!({ "class": "workstation", "name": name, "attributes": attributes });
        let reply = staff.post("/api/v1/cis", &body).await?;
        ids.push(
            reply.expect_status(StatusCode::CREATED)?.body["id"]
                .as_i64()
                .unwrap_or_default(),
        );
    }

    // The serial number points to one CI and the UUID to another: reported, not guessed.
    let document = glpi_computer("d9", "ws-x", "SN-A", "UUID-B", json!({}));
    let reply = post(&client, document.to_string().into_bytes(), false).await?;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.text);
    let item = &reply.body["items"][0];
    assert_eq!(item["action"], "conflict");
    let message = item["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("ws-a") && message.contains("ws-b"),
        "{message}"
    );
    for id in &ids {
        assert_eq!(ci(&staff, *id).await?["version"], 1);
    }
    let log = staff
        .get("/api/v1/inventory/imports?outcome=conflict")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let entry = &log["imports"][0];
    assert!(
        entry["document_bytes"].as_u64().unwrap_or_default() > 0,
        "{log}"
    );

    // Once the duplicate is retired, the kept document imports.
    staff
        .post(&format!("/api/v1/cis/{}/retire", ids[1]), &json!({}))
        .await?
        .expect_status(StatusCode::OK)?;
    let retry = staff
        .post(
            &format!("/api/v1/inventory/imports/{}/retry", entry["id"]),
            &json!({}),
        )
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(retry["items"][0]["action"], "update", "{retry}");
    assert_eq!(retry["items"][0]["ci_id"].as_i64(), Some(ids[0]));
    let resolved = staff
        .get(&format!("/api/v1/inventory/imports/{}", entry["id"]))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(resolved["import"]["outcome"], "resolved", "{resolved}");

    // A matched CI whose serial number differs from the document's is a changed key.
    let document = glpi_computer("d9", "ws-x", "SN-OTHER", "UUID-B", json!({}));
    let item = &post(&client, document.to_string().into_bytes(), false)
        .await?
        .body["items"][0];
    assert_eq!(item["action"], "conflict", "{item}");
    assert!(
        item["message"]
            .as_str()
            .unwrap_or_default()
            .contains("SN-A"),
        "{item}"
    );
    Ok(())
}

async fn people_owned_attributes_are_kept(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let laptop = |tag: &str| {
        glpi_computer(
            "lt-1",
            "lt-1",
            "LT-SERIAL-1",
            "LT-UUID-1",
            json!({
                "hardware": { "name": "lt-1", "uuid": "LT-UUID-1", "chassis_type": "Notebook" },
                "bios": { "ssn": "LT-SERIAL-1", "assettag": tag },
            }),
        )
    };
    let item = import_one(&client, &laptop("TAG-1")).await?;
    assert_eq!(item["class"], "laptop", "{item}");
    let id = item["ci_id"].as_i64().unwrap_or_default();
    assert_eq!(ci(&staff, id).await?["attributes"]["asset_tag"], "TAG-1");
    staff
        .patch(
            &format!("/api/v1/cis/{id}"),
            &json!({ "attributes": { "asset_tag": "IT-0042" } }),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    let item = import_one(&client, &laptop("TAG-1")).await?;
    assert_eq!(item["action"], "unchanged", "{item}");
    let kept = &item["kept"][0];
    assert_eq!(kept["attribute"], "asset_tag", "{item}");
    assert_eq!(kept["current"], "IT-0042");
    assert_eq!(ci(&staff, id).await?["attributes"]["asset_tag"], "IT-0042");
    Ok(())
}

async fn source_precedence_decides(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let xml = |version: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" ?>
<REQUEST>
  <DEVICEID>srv-9-2026-12-05-10-00-00</DEVICEID>
  <QUERY>INVENTORY</QUERY>
  <CONTENT>
    <BIOS><SSN>SRV-9</SSN><SMANUFACTURER>Contoso</SMANUFACTURER><SMODEL>R7</SMODEL></BIOS>
    <HARDWARE><NAME>srv-9</NAME><UUID>SRV-UUID-9</UUID><OSNAME>Debian GNU/Linux 12</OSNAME><OSVERSION>{version}</OSVERSION></HARDWARE>
    <OPERATINGSYSTEM><FULL_NAME>Debian GNU/Linux 12</FULL_NAME><VERSION>{version}</VERSION></OPERATINGSYSTEM>
  </CONTENT>
</REQUEST>"#
        )
        .into_bytes()
    };
    let reply = post(&client, xml("6.1.0-1"), false).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = reply.body["items"][0]["ci_id"].as_i64().unwrap_or_default();
    assert_eq!(ci(&staff, id).await?["attributes"]["os_version"], "6.1.0-1");

    // The GLPI agent ranks above the FusionInventory agent for computers.
    let glpi = glpi_computer(
        "srv-9-glpi",
        "srv-9",
        "SRV-9",
        "SRV-UUID-9",
        json!({ "operatingsystem": { "full_name": "Debian GNU/Linux 12", "version": "6.1.0-2" } }),
    );
    let item = import_one(&client, &glpi).await?;
    assert_eq!(item["action"], "update", "{item}");
    assert_eq!(ci(&staff, id).await?["attributes"]["os_version"], "6.1.0-2");

    let reply = post(&client, xml("6.1.0-1"), false).await?;
    let item = &reply.body["items"][0];
    assert_eq!(item["action"], "unchanged", "{item}");
    let kept: Vec<&Value> = item["kept"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|kept| kept["attribute"] == "os_version")
        .collect();
    assert_eq!(kept.len(), 1, "{item}");
    assert!(
        kept[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("glpi_agent"),
        "{item}"
    );
    assert_eq!(ci(&staff, id).await?["attributes"]["os_version"], "6.1.0-2");
    Ok(())
}

async fn dry_run_writes_nothing(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let document = glpi_computer("d2", "ws-2", "SN-2", "UUID-2", json!({}));
    let reply = post(&client, document.to_string().into_bytes(), true).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["dry_run"], true);
    assert_eq!(reply.body["items"][0]["action"], "create");
    assert!(cis_of_class(&staff, "computer").await?.is_empty());
    let log = staff.get("/api/v1/inventory/imports").await?.body;
    assert_eq!(log["imports"], json!([]), "{log}");

    let item = import_one(&client, &document).await?;
    let id = item["ci_id"].as_i64().unwrap_or_default();
    let changed = glpi_computer(
        "d2",
        "ws-2",
        "SN-2",
        "UUID-2",
        json!({ "operatingsystem": { "full_name": "Debian GNU/Linux 13 (trixie)", "version": "13" } }),
    );
    let reply = post(&client, changed.to_string().into_bytes(), true).await?;
    let item = &reply.body["items"][0];
    assert_eq!(item["action"], "update", "{item}");
    assert_eq!(item["changes"]["os_version"]["before"], "12");
    assert_eq!(item["changes"]["os_version"]["after"], "13");
    assert_eq!(ci(&staff, id).await?["attributes"]["os_version"], "12");
    Ok(())
}

async fn software_changes_are_linked(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let with = |packages: Value| {
        glpi_computer(
            "d3",
            "ws-3",
            "SN-3",
            "UUID-3",
            json!({ "softwares": packages }),
        )
    };
    let item = import_one(
        &client,
        &with(json!([
            { "name": "openssl", "version": "3.0.11", "publisher": "Debian" },
            { "name": "curl", "version": "7.88.1" },
        ])),
    )
    .await?;
    let id = item["ci_id"].as_i64().unwrap_or_default();
    assert_eq!(item["software"]["new_packages"], 2, "{item}");

    // A second machine with the same package reuses its CI.
    let other = glpi_computer(
        "d4",
        "ws-4",
        "SN-4",
        "UUID-4",
        json!({ "softwares": [{ "name": "openssl", "version": "3.0.11" }] }),
    );
    let item = import_one(&client, &other).await?;
    assert_eq!(item["software"]["new_packages"], 0, "{item}");
    assert_eq!(cis_of_class(&staff, "software_package").await?.len(), 2);

    // An upgrade links the new version and unlinks the old one.
    let item = import_one(
        &client,
        &with(json!([
            { "name": "openssl", "version": "3.0.13", "publisher": "Debian" },
            { "name": "curl", "version": "7.88.1" },
        ])),
    )
    .await?;
    assert_eq!(item["action"], "update", "{item}");
    assert_eq!(item["software"]["added"], json!(["openssl 3.0.13"]));
    assert_eq!(item["software"]["removed"], json!(["openssl 3.0.11"]));
    let computer = ci(&staff, id).await?;
    assert_eq!(relationships_of_kind(&computer, "installed_on"), 2);
    Ok(())
}

async fn agent_protocol_and_access(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let agent_user = server.add_user("agent", &[Role::InventoryAgent]).await?;
    let requester = server.add_user("alice", &[Role::Requester]).await?.client;

    // Without credentials the agent is asked for HTTP Basic ones.
    let anonymous = server.anonymous();
    let reply = post(&anonymous, b"<REQUEST/>".to_vec(), false).await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply
        .headers
        .get("www-authenticate")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(challenge.starts_with("Basic"), "{challenge}");

    let reply = post(&requester, b"<REQUEST/>".to_vec(), false).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);

    // The agent's first contact, compressed, gets a compressed SEND.
    let prolog = b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<REQUEST><DEVICEID>ws-5-2026</DEVICEID><QUERY>PROLOG</QUERY><TOKEN>12345678</TOKEN></REQUEST>";
    let http = tend_test_support::reqwest::Client::new();
    let response = http
        .post(anonymous.url(INVENTORY))
        .basic_auth("agent", Some(&agent_user.token))
        .header("Content-Type", "application/x-compress-zlib")
        .header("User-Agent", "FusionInventory-Agent_v2.6")
        .body(tend_inventory::compress(prolog))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.bytes().await?;
    let reply = tend_inventory::decompress(&body, 1 << 20)?;
    let reply = String::from_utf8(reply)?;
    assert!(reply.contains("<RESPONSE>SEND</RESPONSE>"), "{reply}");

    // Basic credentials must name the token's user.
    let response = http
        .post(anonymous.url(INVENTORY))
        .basic_auth("someone-else", Some(&agent_user.token))
        .body(prolog.to_vec())
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Bad input gets a reason and is kept.
    let reply = post(
        &agent_user.client,
        b"<REQUEST><QUERY>INVENTORY".to_vec(),
        false,
    )
    .await?;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("line"), "{message}");
    assert!(message.contains("kept as import"), "{message}");
    let reply = post(&agent_user.client, b"hello".to_vec(), false).await?;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    Ok(())
}

fn fixtures() -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(FIXTURES))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json" || extension == "xml")
        })
        .collect();
    files.sort();
    Ok(files)
}

async fn sample_documents_import_or_explain(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let files = fixtures()?;
    assert!(files.len() >= 15, "{files:?}");
    // The full inventory of a computer comes before its partial updates.
    let (full, rest): (Vec<&PathBuf>, Vec<&PathBuf>) = files.iter().partition(|path| {
        path.file_name()
            .is_some_and(|name| name == "glpi-computer_1.json")
    });
    for file in full.into_iter().chain(rest) {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let bytes = std::fs::read(file)?;
        for round in 0..2 {
            let reply = post(&client, bytes.clone(), false).await?;
            if name == "glpi-inventory.schema.json" {
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
                let message = reply.body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("schema"), "{name}: {message}");
                break;
            }
            assert!(
                reply.status.is_success() || reply.status == StatusCode::UNPROCESSABLE_ENTITY,
                "{name} round {round}: {} {}",
                reply.status,
                reply.text
            );
            for item in reply.body["items"].as_array().into_iter().flatten() {
                if item["action"] == "rejected" {
                    // Only an item that reports nothing to find it by again is refused.
                    let message = item["message"].as_str().unwrap_or_default();
                    assert!(message.contains("or a name"), "{name}: {item}");
                    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
                } else if round == 1 {
                    assert_eq!(item["action"], "unchanged", "{name}: {item}");
                } else {
                    assert!(
                        ["create", "update", "unchanged"]
                            .contains(&item["action"].as_str().unwrap_or_default()),
                        "{name}: {item}"
                    );
                }
            }
        }
    }
    assert!(!cis_of_class(&staff, "network_device").await?.is_empty());
    assert!(!cis_of_class(&staff, "printer").await?.is_empty());
    assert!(!cis_of_class(&staff, "phone").await?.is_empty());
    Ok(())
}

async fn cli_import_and_dry_run(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let file = repo_root().join(FIXTURES).join("glpi-computer_1.json");
    let run = |dry_run: bool| {
        let mut args: Vec<std::ffi::OsString> =
            vec!["import-inventory".into(), file.clone().into()];
        if dry_run {
            args.push("--dry-run".into());
        }
        args.push("--definitions".into());
        args.push(repo_root().into_os_string());
        args.extend(server.database().store_args());
        run_tend(args, None)
    };
    let output = run(true).await?.expect_success()?;
    assert!(output.stdout.contains("create "), "{output}");
    assert!(output.stdout.contains("(dry run)"), "{output}");
    assert!(cis_of_class(&staff, "computer").await?.is_empty());

    let output = run(false).await?.expect_success()?;
    assert!(output.stdout.contains("create "), "{output}");
    let output = run(false).await?.expect_success()?;
    assert!(output.stdout.contains("unchanged "), "{output}");
    assert_eq!(cis_of_class(&staff, "computer").await?.len(), 1);

    let schema = repo_root()
        .join(FIXTURES)
        .join("glpi-inventory.schema.json");
    let mut args: Vec<std::ffi::OsString> = vec!["import-inventory".into(), schema.into()];
    args.push("--definitions".into());
    args.push(repo_root().into_os_string());
    args.extend(server.database().store_args());
    let output = run_tend(args, None).await?;
    assert_eq!(output.code(), Some(1), "{output}");
    assert!(output.stderr.contains("schema"), "{output}");
    Ok(())
}

/// Moves the creation of every CI, and the sightings of CI `stale`, `days` into the past.
async fn age(server: &TestServer, stale: i64, days: i64) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let commands = server
        .commands()
        .ok_or_else(|| anyhow::anyhow!("the test needs an in-process server"))?;
    let db = commands.store.db();
    let backend = db.get_database_backend();
    let past = chrono::Utc::now() - chrono::Duration::days(days);
    let older = chrono::Utc::now() - chrono::Duration::days(days + 20);
    for (sql, values) in [
        ("UPDATE cis SET created_at = $1", vec![older.into()]),
        (
            "UPDATE ci_sightings SET last_seen_at = $1 WHERE ci_id = $2",
            vec![past.into(), stale.into()],
        ),
    ] {
        let sql = if backend == sea_orm::DbBackend::Sqlite {
            sql.replace('$', "?").replace("?1", "?").replace("?2", "?")
        } else {
            sql.to_owned()
        };
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend, sql, values,
        ))
        .await?;
    }
    Ok(())
}

async fn cmdb_audit_finds_and_opens_tasks(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let software = json!({ "softwares": [{ "name": "bash", "version": "5.2" }] });

    let gone = import_one(
        &client,
        &glpi_computer("a", "ws-gone", "SN-GONE", "U-GONE", software.clone()),
    )
    .await?["ci_id"]
        .as_i64()
        .unwrap_or_default();
    import_one(
        &client,
        &glpi_computer("b", "ws-here", "SN-HERE", "U-HERE", software.clone()),
    )
    .await?;
    let laptop = glpi_computer(
        "c",
        "lt-9",
        "SN-LT9",
        "U-LT9",
        json!({
            "hardware": { "name": "lt-9", "uuid": "U-LT9", "chassis_type": "Notebook" },
            "bios": { "ssn": "SN-LT9", "assettag": "TAG-9" },
            "softwares": [{ "name": "bash", "version": "5.2" }],
        }),
    );
    let laptop_id = import_one(&client, &laptop).await?["ci_id"]
        .as_i64()
        .unwrap_or_default();
    staff
        .patch(
            &format!("/api/v1/cis/{laptop_id}"),
            &json!({ "attributes": { "asset_tag": "IT-0009" } }),
        )
        .await?
        .expect_status(StatusCode::OK)?;
    for body in [
        json!({ "class": "workstation", "name": "ws-manual", "attributes": {} }),
        json!({ "class": "location", "name": "Berlin HQ", "attributes": {} }),
    ] {
        staff
            .post("/api/v1/cis", &body)
            .await?
            .expect_status(StatusCode::CREATED)?;
    }
    age(&server, gone, 40).await?;

    let report = staff
        .get("/api/v1/cmdb/audit?stale_days=30")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let names = |list: &Value, path: &str| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                let ci = if path.is_empty() { item } else { &item[path] };
                ci["name"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    };
    assert_eq!(
        names(&report["stale"]["items"], "ci"),
        ["ws-gone", "ws-manual"],
        "{report}"
    );
    let gone_item = &report["stale"]["items"][0];
    assert!(gone_item["last_seen_at"].is_string(), "{report}");
    assert!(report["stale"]["items"][1]["last_seen_at"].is_null());
    let disagreement = &report["disagreements"]["items"][0];
    assert_eq!(disagreement["ci"]["name"], "lt-9", "{report}");
    assert_eq!(disagreement["attribute"], "asset_tag");
    assert_eq!(disagreement["value"], "IT-0009");
    assert_eq!(disagreement["reported"], "TAG-9");
    assert_eq!(report["disagreements"]["total"], 1);
    let orphans = names(&report["orphans"]["items"], "");
    assert_eq!(orphans, ["ws-manual"], "{report}");

    let opened = staff
        .post("/api/v1/cmdb/audit/tasks?stale_days=30", &json!({}))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    let tasks = opened["tasks"].as_array().cloned().unwrap_or_default();
    let findings: Vec<&str> = tasks
        .iter()
        .filter_map(|task| task["finding"].as_str())
        .collect();
    assert_eq!(findings, ["stale", "disagreements", "orphans"], "{opened}");
    let number = tasks[0]["number"].as_str().unwrap_or_default().to_owned();
    let record = staff
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(record["process"], "cmdb_audit", "{record}");
    let description = record["description"].as_str().unwrap_or_default();
    assert!(description.contains("ws-gone"), "{description}");

    // The same day's audit opens nothing new.
    let again = staff
        .post("/api/v1/cmdb/audit/tasks?stale_days=30", &json!({}))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(again["tasks"][0]["number"], number.as_str());
    Ok(())
}

/// The shipped CI rules give a discovered machine the location of its subnet and relate
/// it to that location, as a version and a relationship from the source `rule`.
async fn ci_rules_place_discovered_machines(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let berlin = staff
        .post(
            "/api/v1/cis",
            &json!({ "class": "location", "name": "Berlin HQ", "attributes": {} }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?
        .body["id"]
        .as_i64()
        .unwrap_or_default();
    let document = glpi_computer(
        "d7",
        "ws-7",
        "SN-7",
        "U-7",
        json!({ "networks": [{ "description": "eth0", "mac": "52:54:00:aa:bb:07", "ipaddress": "10.1.4.20", "virtualdev": false }] }),
    );
    let item = import_one(&client, &document).await?;
    let id = item["ci_id"].as_i64().unwrap_or_default();
    let placed = ci(&staff, id).await?;
    assert_eq!(placed["attributes"]["location"], berlin, "{placed}");
    let located: Vec<&Value> = placed["relationships"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|relationship| relationship["type"] == "located_in")
        .collect();
    assert_eq!(located.len(), 1, "{placed}");
    assert_eq!(located[0]["created_via"], "rule", "{placed}");
    let last = placed["history"]
        .as_array()
        .and_then(|history| history.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["source"], "rule", "{placed}");
    assert_eq!(last["actor"], "cmdb/location_from_subnet");

    // The same document again changes nothing, rules included.
    let item = import_one(&client, &document).await?;
    assert_eq!(item["action"], "unchanged", "{item}");
    assert_eq!(ci(&staff, id).await?["version"], placed["version"]);

    // A subnet whose location CI does not exist is reported in the import's response.
    let lyon = glpi_computer(
        "d9",
        "ws-9",
        "SN-9",
        "U-9",
        json!({ "networks": [{ "description": "eth0", "mac": "52:54:00:aa:bb:09", "ipaddress": "10.2.0.9", "virtualdev": false }] }),
    );
    let item = import_one(&client, &lyon).await?;
    let skipped = item["rules"]["skipped"][0].as_str().unwrap_or_default();
    assert!(skipped.contains("Lyon office"), "{item}");

    // A person's CI with a location gets its relationship too.
    let manual = staff
        .post(
            "/api/v1/cis",
            &json!({ "class": "workstation", "name": "ws-8", "attributes": { "location": "Berlin HQ" } }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;
    let located = manual["relationships"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|relationship| relationship["type"] == "located_in")
        .count();
    assert_eq!(located, 1, "{manual}");
    Ok(())
}

/// The software list of the source ranked first is kept: a FusionInventory document of
/// the same machine neither adds nor removes packages that the GLPI agent reported.
async fn lower_source_keeps_software_list(backend: Backend) -> anyhow::Result<()> {
    let server = TestServer::in_process(backend).await?;
    let client = agent(&server).await?;
    let staff = server.add_user("tom", &[Role::Technician]).await?.client;
    let glpi = glpi_computer(
        "d5",
        "ws-5",
        "SN-5",
        "U-5",
        json!({ "softwares": [{ "name": "bash", "version": "5.2" }, { "name": "curl", "version": "7.88" }] }),
    );
    let id = import_one(&client, &glpi).await?["ci_id"]
        .as_i64()
        .unwrap_or_default();
    let xml = r#"<?xml version="1.0" encoding="UTF-8" ?>
<REQUEST><DEVICEID>ws-5-old</DEVICEID><QUERY>INVENTORY</QUERY><CONTENT>
<BIOS><SSN>SN-5</SSN></BIOS><HARDWARE><NAME>ws-5</NAME><UUID>U-5</UUID></HARDWARE>
<SOFTWARES><NAME>zsh</NAME><VERSION>5.9</VERSION></SOFTWARES>
</CONTENT></REQUEST>"#;
    let reply = post(&client, xml.as_bytes().to_vec(), false).await?;
    let item = &reply.body["items"][0];
    assert_eq!(item["ci_id"].as_i64(), Some(id), "{item}");
    let kept: Vec<&Value> = item["kept"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|kept| kept["attribute"] == "software")
        .collect();
    assert_eq!(kept.len(), 1, "{item}");
    assert!(
        kept[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("glpi_agent"),
        "{item}"
    );
    let computer = ci(&staff, id).await?;
    assert_eq!(
        relationships_of_kind(&computer, "installed_on"),
        2,
        "{computer}"
    );
    Ok(())
}
