//! The CMDB pages of the web console, used as a technician does: logged in through the
//! login form, with the session's CSRF token in every POST. The CI list, the CI page with
//! its relationships, discovery, history and impact, the create and edit forms, the
//! inventory import log and the audit. Requesters get 403, as from the API.

use serde_json::{Value, json};
use tend_test_support::reqwest::{self, Method, StatusCode};
use tend_test_support::{ApiClient, Backend, Role, TEST_PASSWORD, TestServer, backend_tests};

use crate::common::Desk;

backend_tests!(
    cmdb_pages_are_for_staff,
    create_form_checks_and_keeps_input,
    stale_edit_is_rejected,
    relationships_added_and_removed,
    ci_page_shows_discovery_and_history,
    imports_page_imports_again,
    audit_page_opens_tasks,
    record_page_shows_configuration,
);

/// A browser session: the session cookie, and redirects left for the test to check.
pub(crate) struct Console {
    http: reqwest::Client,
    base_url: String,
}

/// A response with its body as text.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    location: String,
    pub(crate) text: String,
}

impl Console {
    pub(crate) async fn log_in(server: &TestServer, user: &str) -> anyhow::Result<Console> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let console = Console {
            http,
            base_url: server.base_url().to_owned(),
        };
        let reply = console
            .post(
                "/login",
                &[
                    ("user", user),
                    ("password", TEST_PASSWORD),
                    ("next", "/cmdb"),
                ],
            )
            .await?;
        anyhow::ensure!(
            reply.status == StatusCode::SEE_OTHER,
            "the login of {user} failed with {}: {}",
            reply.status,
            reply.text
        );
        Ok(console)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Page> {
        let response = request.send().await?;
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await?;
        Ok(Page {
            status,
            location,
            text,
        })
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Page> {
        let url = format!("{}{path}", self.base_url);
        self.send(self.http.request(Method::GET, url)).await
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> anyhow::Result<Page> {
        let url = format!("{}{path}", self.base_url);
        self.send(self.http.request(Method::POST, url).form(pairs))
            .await
    }

    /// Reads the page at `path` and posts `pairs` with the page's CSRF token to `action`.
    async fn submit(
        &self,
        path: &str,
        action: &str,
        pairs: &[(&str, &str)],
    ) -> anyhow::Result<Page> {
        let page = self.get(path).await?;
        anyhow::ensure!(
            page.status == StatusCode::OK,
            "{path} returned {}: {}",
            page.status,
            page.text
        );
        let csrf = hidden_value(&page.text, "csrf");
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post(action, &all).await
    }
}

/// Returns the value of the first hidden input named `name`.
fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let Some(start) = html.find(&marker).map(|at| at + marker.len()) else {
        return String::new();
    };
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Returns the part of `html` from the element with id `id` to the end of its section.
fn section<'h>(html: &'h str, id: &str) -> &'h str {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker).unwrap_or(html.len());
    let rest = &html[start..];
    let end = rest.find("</section>").unwrap_or(rest.len());
    &rest[..end]
}

fn id_of(body: &Value) -> i64 {
    body["id"].as_i64().unwrap_or_default()
}

async fn create_ci(
    client: &ApiClient,
    class: &str,
    name: &str,
    attributes: Value,
) -> anyhow::Result<i64> {
    let body = json!({ "class": class, "name": name, "attributes": attributes });
    let reply = client.post("/api/v1/cis", &body).await?;
    Ok(id_of(&reply.expect_status(StatusCode::CREATED)?.body))
}

async fn read_ci(client: &ApiClient, id: i64) -> anyhow::Result<Value> {
    Ok(client
        .get(&format!("/api/v1/cis/{id}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body)
}

/// Posts a GLPI agent JSON inventory and returns the report.
async fn import(client: &ApiClient, document: &Value) -> anyhow::Result<tend_test_support::Reply> {
    client
        .send(
            client
                .request(Method::POST, "/api/v1/inventory")
                .header("Content-Type", "application/json")
                .body(document.to_string()),
        )
        .await
}

fn computer(device: &str, name: &str, serial: &str, uuid: &str) -> Value {
    json!({
        "deviceid": device,
        "action": "inventory",
        "itemtype": "Computer",
        "content": {
            "hardware": { "name": name, "uuid": uuid },
            "bios": { "ssn": serial },
            "softwares": [{ "name": "bash", "version": "5.2" }]
        }
    })
}

async fn cmdb_pages_are_for_staff(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let id = create_ci(
        tom,
        "server",
        "db-01",
        json!({ "serial_number": "SN-1", "fqdn": "db-01.example.org" }),
    )
    .await?;
    let incident = desk
        .alice
        .client
        .post(
            "/api/v1/records/incident",
            &json!({ "title": "Database is slow", "description": "Queries time out.", "fields": { "ci": "db-01" } }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;
    let number = incident["number"].as_str().unwrap_or_default().to_owned();

    let console = Console::log_in(&desk.server, "tom").await?;
    let pages = [
        "/cmdb".to_owned(),
        "/cmdb?class=computer&q=db&status=active".to_owned(),
        "/cmdb/new".to_owned(),
        "/cmdb/new?class=server".to_owned(),
        format!("/cmdb/cis/{id}"),
        format!("/cmdb/cis/{id}/edit"),
        format!("/cmdb/cis/{id}/retire"),
        "/cmdb/imports".to_owned(),
        "/cmdb/audit".to_owned(),
    ];
    for path in &pages {
        let page = console.get(path).await?;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
    }

    // The list links each CI and shows its key attributes.
    let list = console.get("/cmdb?class=computer").await?;
    assert!(
        list.text
            .contains(&format!("href=\"/cmdb/cis/{id}\">db-01</a>")),
        "{}",
        list.text
    );
    assert!(list.text.contains("Serial number: SN-1"), "{}", list.text);
    assert!(
        list.text.contains("FQDN: db-01.example.org"),
        "{}",
        list.text
    );
    assert!(list.text.contains("href=\"/cmdb/new\""));
    let none = console.get("/cmdb?class=application").await?;
    assert!(
        none.text.contains("No CI matches these filters."),
        "{}",
        none.text
    );
    let unknown = console.get("/cmdb?class=spaceship").await?;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.text.contains("unknown CI class `spaceship`"),
        "{}",
        unknown.text
    );

    // The navigation links the CMDB for staff, and the record links its CI.
    let record = console.get(&format!("/records/{number}")).await?;
    assert!(
        record.text.contains("<a href=\"/cmdb\">CMDB</a>"),
        "{}",
        record.text
    );
    assert!(
        record
            .text
            .contains(&format!("<a href=\"/cmdb/cis/{id}\">db-01</a>")),
        "{}",
        record.text
    );
    let ci_page = console.get(&format!("/cmdb/cis/{id}")).await?;
    let records = section(&ci_page.text, "records");
    assert!(
        records.contains(&format!("href=\"/records/{number}\"")),
        "{records}"
    );

    // A requester gets 403 on every page and form, and no CMDB link.
    let alice = Console::log_in(&desk.server, "alice").await?;
    for path in &pages {
        let page = alice.get(path).await?;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.text);
    }
    let own = alice.get(&format!("/records/{number}")).await?;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert!(!own.text.contains("/cmdb"), "{}", own.text);
    let csrf = hidden_value(&own.text, "csrf");
    for action in [
        "/cmdb/new".to_owned(),
        format!("/cmdb/cis/{id}/edit"),
        format!("/cmdb/cis/{id}/retire"),
        format!("/cmdb/cis/{id}/relationships"),
        "/cmdb/audit/tasks".to_owned(),
    ] {
        let page = alice
            .post(
                &action,
                &[("csrf", &csrf), ("class", "server"), ("name", "x")],
            )
            .await?;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "{action}: {}",
            page.text
        );
    }
    assert_eq!(
        read_ci(tom, id).await?["version"],
        1,
        "a refused form changed the CI"
    );
    Ok(())
}

async fn create_form_checks_and_keeps_input(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let console = Console::log_in(&desk.server, "tom").await?;

    // The class's attributes get inputs by type.
    let form = console.get("/cmdb/new?class=laptop").await?;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(
        form.text
            .contains("type=\"checkbox\" id=\"ci-attribute-encrypted\""),
        "{}",
        form.text
    );
    assert!(
        form.text
            .contains("<textarea id=\"ci-attribute-ip_addresses\""),
        "{}",
        form.text
    );
    assert!(
        form.text
            .contains("type=\"number\" id=\"ci-attribute-memory_mb\""),
        "{}",
        form.text
    );
    let abstract_class = console.get("/cmdb/new?class=computer").await?;
    assert_eq!(abstract_class.status, StatusCode::BAD_REQUEST);
    assert!(
        abstract_class
            .text
            .contains("CI class `computer` is abstract"),
        "{}",
        abstract_class.text
    );

    // Without the CSRF token nothing is created.
    let forged = console
        .post("/cmdb/new", &[("class", "server"), ("name", "forged")])
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);

    let fields = |memory: &'static str, location: &'static str| {
        vec![
            ("class", "server"),
            ("name", "db-01"),
            ("status", "maintenance"),
            ("attributes.serial_number", "SN-1"),
            ("attributes.memory_mb", memory),
            ("attributes.ip_addresses", "10.0.0.5\r\n10.0.0.6"),
            ("attributes.environment", "production"),
            ("attributes.location", location),
        ]
    };

    // A value of the wrong type: the class's message beside the input, the input kept.
    let rejected = console
        .submit("/cmdb/new?class=server", "/cmdb/new", &fields("lots", ""))
        .await?;
    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.text
    );
    assert!(
        rejected.text.contains(
            "<p class=\"error\" id=\"ci-attribute-memory_mb-error\">attribute `memory_mb` of class `server` is &quot;lots&quot;: send a JSON number, such as 4096</p>"
        ),
        "{}",
        rejected.text
    );
    assert!(
        rejected.text.contains("name=\"name\" value=\"db-01\""),
        "{}",
        rejected.text
    );
    assert!(rejected.text.contains("value=\"SN-1\""));
    assert!(
        rejected.text.contains(">10.0.0.5\n10.0.0.6</textarea>"),
        "{}",
        rejected.text
    );
    assert!(
        rejected
            .text
            .contains("<option value=\"production\" selected>")
    );
    assert!(
        rejected
            .text
            .contains("<option value=\"maintenance\" selected>")
    );

    // A reference to a CI that does not exist.
    let rejected = console
        .submit(
            "/cmdb/new?class=server",
            "/cmdb/new",
            &fields("16384", "Room 4.12"),
        )
        .await?;
    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.text
    );
    assert!(
        rejected
            .text
            .contains("`attributes.location` names CI `Room 4.12`, but no CI of class `location`"),
        "{}",
        rejected.text
    );
    assert!(rejected.text.contains("value=\"Room 4.12\""));
    let listed = tom
        .get("/api/v1/cis")
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(listed["cis"], json!([]), "a rejected form created a CI");

    let room = create_ci(tom, "location", "Room 4.12", json!({})).await?;
    let created = console
        .submit(
            "/cmdb/new?class=server",
            "/cmdb/new",
            &fields("16384", "room 4.12"),
        )
        .await?;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let id: i64 = created
        .location
        .trim_start_matches("/cmdb/cis/")
        .parse()
        .unwrap_or_else(|_| panic!("the form leads to the CI page: {}", created.location));
    let ci = read_ci(tom, id).await?;
    assert_eq!(ci["name"], "db-01");
    assert_eq!(ci["status"], "maintenance");
    assert_eq!(ci["attributes"]["memory_mb"], 16384);
    assert_eq!(
        ci["attributes"]["ip_addresses"],
        json!(["10.0.0.5", "10.0.0.6"])
    );
    assert_eq!(ci["attributes"]["location"], room);
    assert_eq!(ci["history"][0]["actor"], "tom");

    // The CI page links the location the attribute names.
    let page = console.get(&created.location).await?;
    let attributes = section(&page.text, "attributes");
    assert!(
        attributes.contains(&format!(
            "<a href=\"/cmdb/cis/{room}\">Room 4.12 (Location)</a>"
        )),
        "{attributes}"
    );
    assert!(attributes.contains("discovery"), "{attributes}");

    // A unique value taken by another CI is the API's 409, the input kept.
    let taken = console
        .submit("/cmdb/new?class=server", "/cmdb/new", &fields("1", ""))
        .await?;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert!(
        taken.text.contains("is already used by CI"),
        "{}",
        taken.text
    );

    // A ticked checkbox is true; an unticked one leaves the attribute unset.
    let laptop = console
        .submit(
            "/cmdb/new?class=laptop",
            "/cmdb/new",
            &[
                ("class", "laptop"),
                ("name", "lt-1"),
                ("attributes.encrypted", "true"),
            ],
        )
        .await?;
    assert_eq!(laptop.status, StatusCode::SEE_OTHER, "{}", laptop.text);
    let id: i64 = laptop.location.trim_start_matches("/cmdb/cis/").parse()?;
    let ci = read_ci(tom, id).await?;
    assert_eq!(ci["attributes"], json!({ "encrypted": true }));
    assert_eq!(ci["status"], "active");
    Ok(())
}

async fn stale_edit_is_rejected(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let id = create_ci(
        tom,
        "laptop",
        "lt-7",
        json!({ "asset_tag": "IT-7", "memory_mb": 8192, "encrypted": true }),
    )
    .await?;
    let console = Console::log_in(&desk.server, "tom").await?;
    let edit = format!("/cmdb/cis/{id}/edit");
    let form = console.get(&edit).await?;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    let csrf = hidden_value(&form.text, "csrf");
    assert_eq!(hidden_value(&form.text, "version"), "1");
    assert!(form.text.contains("value=\"IT-7\""), "{}", form.text);
    assert!(
        form.text.contains("value=\"true\" checked"),
        "{}",
        form.text
    );

    // Someone else changes the CI after the form was opened.
    tom.patch(
        &format!("/api/v1/cis/{id}"),
        &json!({ "attributes": { "memory_mb": 16384 }, "version": 1 }),
    )
    .await?
    .expect_status(StatusCode::OK)?;

    let sent = [
        ("csrf", csrf.as_str()),
        ("version", "1"),
        ("name", "lt-7-renamed"),
        ("status", "active"),
        ("attributes.asset_tag", ""),
        ("attributes.memory_mb", "8192"),
    ];
    let stale = console.post(&edit, &sent).await?;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    assert!(
        stale.text.contains(&format!(
            "CI {id} was changed by another writer (expected version 1, found 2)"
        )),
        "{}",
        stale.text
    );
    assert!(
        stale.text.contains("value=\"lt-7-renamed\""),
        "{}",
        stale.text
    );
    assert_eq!(
        hidden_value(&stale.text, "version"),
        "2",
        "the form now carries the current version"
    );
    // The field the person left alone shows the other writer's value, so saving the page
    // as it is does not undo that change.
    assert!(stale.text.contains("value=\"16384\""), "{}", stale.text);
    assert!(!stale.text.contains("value=\"8192\""), "{}", stale.text);
    let unchanged = read_ci(tom, id).await?;
    assert_eq!(unchanged["name"], "lt-7");
    assert_eq!(unchanged["version"], 2);

    // Saved again at the current version, the form replaces it. The emptied asset tag is
    // removed and the unticked box sets `false`, since the CI had a value.
    let mut again = sent;
    again[1] = ("version", "2");
    let saved = console.post(&edit, &again).await?;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(saved.location, format!("/cmdb/cis/{id}"));
    let ci = read_ci(tom, id).await?;
    assert_eq!(ci["name"], "lt-7-renamed");
    assert_eq!(ci["version"], 3);
    assert_eq!(
        ci["attributes"],
        json!({ "memory_mb": 8192, "encrypted": false })
    );

    // A bad value is the class's error beside the input.
    let bad = console
        .post(
            &edit,
            &[
                ("csrf", &csrf),
                ("version", "3"),
                ("name", " "),
                ("status", "active"),
            ],
        )
        .await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(
        bad.text
            .contains("id=\"ci-name-error\">CI name ` ` is invalid"),
        "{}",
        bad.text
    );

    // Retired through the confirmation page, the CI can no longer be edited.
    let retired = console
        .submit(
            &format!("/cmdb/cis/{id}/retire"),
            &format!("/cmdb/cis/{id}/retire"),
            &[],
        )
        .await?;
    assert_eq!(retired.status, StatusCode::SEE_OTHER, "{}", retired.text);
    assert_eq!(read_ci(tom, id).await?["status"], "retired");
    let page = console.get(&format!("/cmdb/cis/{id}")).await?;
    assert!(page.text.contains("Retired"), "{}", page.text);
    assert!(
        !page.text.contains(&edit),
        "a retired CI offers the edit form"
    );
    let closed = console.get(&edit).await?;
    assert_eq!(closed.status, StatusCode::BAD_REQUEST, "{}", closed.text);
    Ok(())
}

async fn relationships_added_and_removed(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let server = create_ci(tom, "server", "db-01", json!({})).await?;
    let app = create_ci(
        tom,
        "application",
        "payroll-app",
        json!({ "criticality": "high" }),
    )
    .await?;
    let service = create_ci(
        tom,
        "business_service",
        "Payroll",
        json!({ "criticality": "critical" }),
    )
    .await?;
    let console = Console::log_in(&desk.server, "tom").await?;
    let app_page = format!("/cmdb/cis/{app}");
    let relate = format!("/cmdb/cis/{app}/relationships");

    // The form offers the types whose source or target may be an application.
    let page = console.get(&app_page).await?;
    assert!(
        page.text
            .contains("<option value=\"out:runs_on\">Runs on</option>"),
        "{}",
        page.text
    );
    assert!(
        page.text
            .contains("<option value=\"in:used_by\">Uses</option>"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("out:hosted_by"), "{}", page.text);

    for (kind, other) in [("out:runs_on", "db-01"), ("out:used_by", "Payroll")] {
        let added = console
            .submit(&app_page, &relate, &[("type", kind), ("other", other)])
            .await?;
        assert_eq!(
            added.status,
            StatusCode::SEE_OTHER,
            "{kind}: {}",
            added.text
        );
        assert_eq!(added.location, format!("/cmdb/cis/{app}#relationships"));
    }

    // A CI that does not exist, and a relationship that exists already: the API's
    // messages beside the form, with the choice kept.
    let unknown = console
        .submit(
            &app_page,
            &relate,
            &[("type", "out:runs_on"), ("other", "db-99")],
        )
        .await?;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
    let form = section(&unknown.text, "relationships");
    assert!(
        form.contains("`target` names CI `db-99`, but no CI that is not retired"),
        "{form}"
    );
    assert!(
        form.contains("<option value=\"out:runs_on\" selected>"),
        "{form}"
    );
    assert!(form.contains("value=\"db-99\""), "{form}");
    let twice = console
        .submit(
            &app_page,
            &relate,
            &[("type", "out:runs_on"), ("other", &server.to_string())],
        )
        .await?;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.text);
    assert!(
        twice.text.contains("exists already: nothing was added"),
        "{}",
        twice.text
    );
    let missing = console
        .submit(&app_page, &relate, &[("type", ""), ("other", "db-01")])
        .await?;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.text);

    // Both ends read their own label and link the other CI.
    let page = console.get(&app_page).await?;
    let relationships = section(&page.text, "relationships");
    assert!(
        relationships.contains("<td>Runs on</td>"),
        "{relationships}"
    );
    assert!(relationships.contains(&format!("<a href=\"/cmdb/cis/{server}\">db-01</a>")));
    assert!(
        relationships.contains("<td>Used by</td>"),
        "{relationships}"
    );
    assert!(relationships.contains(&format!("<a href=\"/cmdb/cis/{service}\">Payroll</a>")));
    let server_page = console.get(&format!("/cmdb/cis/{server}")).await?;
    let relationships = section(&server_page.text, "relationships");
    assert!(relationships.contains("<td>Runs</td>"), "{relationships}");
    assert!(relationships.contains(&format!("<a href=\"/cmdb/cis/{app}\">payroll-app</a>")));

    // A failure of the server reaches the application and, through it, the service.
    let impact = section(&server_page.text, "impact");
    let services = impact
        .find("Business services")
        .unwrap_or_else(|| panic!("{impact}"));
    let others = impact
        .find("Other CIs")
        .unwrap_or_else(|| panic!("{impact}"));
    assert!(services < others, "business services come first: {impact}");
    assert!(
        impact.contains(&format!(
            "<tr><td><a href=\"/cmdb/cis/{service}\">Payroll</a></td><td>2</td><td>db-01 runs payroll-app · payroll-app used by Payroll</td></tr>"
        )),
        "{impact}"
    );
    assert!(
        impact.contains(&format!(
            "<tr><td><a href=\"/cmdb/cis/{app}\">payroll-app</a></td><td>Application</td><td>1</td><td>db-01 runs payroll-app</td></tr>"
        )),
        "{impact}"
    );

    // Removing the service's relationship leaves the other one.
    let read = read_ci(tom, app).await?;
    let used_by = read["relationships"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["type"] == "used_by"))
        .and_then(|r| r["id"].as_i64())
        .expect("the used_by relationship");
    let remove = format!("/cmdb/cis/{app}/relationships/{used_by}/remove");
    assert!(
        page.text.contains(&format!("action=\"{remove}\"")),
        "{}",
        page.text
    );
    let removed = console.submit(&app_page, &remove, &[]).await?;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.text);
    let read = read_ci(tom, app).await?;
    let types: Vec<&str> = read["relationships"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["type"].as_str())
        .collect();
    assert_eq!(types, ["runs_on"]);
    let page = console.get(&app_page).await?;
    assert!(
        !section(&page.text, "relationships").contains("Payroll"),
        "{}",
        page.text
    );

    // A relationship of another CI is not removed through this CI's page.
    let runs_on = read["relationships"][0]["id"].as_i64().unwrap_or_default();
    let wrong = console
        .submit(
            &app_page,
            &format!("/cmdb/cis/{service}/relationships/{runs_on}/remove"),
            &[],
        )
        .await?;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND, "{}", wrong.text);
    Ok(())
}

async fn ci_page_shows_discovery_and_history(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let agent = desk
        .server
        .add_user("agent", &[Role::InventoryAgent])
        .await?
        .client;
    let report = import(&agent, &computer("d1", "ws-1", "SN-1", "U-1")).await?;
    assert_eq!(report.status, StatusCode::CREATED, "{}", report.text);
    let id = report.body["items"][0]["ci_id"]
        .as_i64()
        .expect("the CI of the import");
    let console = Console::log_in(&desk.server, "tom").await?;
    let path = format!("/cmdb/cis/{id}");

    // Renamed by a person, the CI no longer matches the name the agent reports.
    let renamed = console
        .submit(
            &format!("{path}/edit"),
            &format!("{path}/edit"),
            &[
                ("version", "1"),
                ("name", "ws-1-renamed"),
                ("status", "active"),
            ],
        )
        .await?;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.text);

    let page = console.get(&path).await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let discovery = section(&page.text, "discovery");
    assert!(
        discovery.contains("<td>glpi_agent</td><td>d1</td>"),
        "{discovery}"
    );
    assert!(discovery.contains("<td>SN-1</td>"), "{discovery}");
    assert!(
        discovery.contains("<td class=\"error\">ws-1-renamed (differs)</td>"),
        "{discovery}"
    );
    let attributes = section(&page.text, "attributes");
    assert!(
        attributes.contains("<th scope=\"row\">Serial number</th>"),
        "{attributes}"
    );
    assert!(attributes.contains("<td>SN-1</td>"), "{attributes}");

    // The software the inventory reported is related to the computer.
    let relationships = section(&page.text, "relationships");
    assert!(
        relationships.contains("<td>Has installed</td>"),
        "{relationships}"
    );
    assert!(relationships.contains(">bash"), "{relationships}");

    // The history: the import first, then the person, newest at the top.
    let history = section(&page.text, "history");
    let second = history
        .find("Version 2")
        .unwrap_or_else(|| panic!("{history}"));
    let first = history
        .find("Version 1")
        .unwrap_or_else(|| panic!("{history}"));
    assert!(second < first, "{history}");
    assert!(
        history.contains("<strong>tom</strong> · person"),
        "{history}"
    );
    assert!(
        history.contains("<strong>agent</strong> · import"),
        "{history}"
    );
    assert!(
        history.contains("<li>Name: ws-1 → ws-1-renamed</li>"),
        "{history}"
    );

    // The first version's link shows the CI as it was then.
    let marker = "Version 1 · ";
    let rest = &history[history.find(marker).unwrap_or_default()..];
    let start = rest.find("href=\"").map(|at| at + 6).unwrap_or_default();
    let link = rest[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    let then = console.get(&link).await?;
    assert_eq!(then.status, StatusCode::OK, "{link}: {}", then.text);
    assert!(then.text.contains("<h1>ws-1</h1>"), "{}", then.text);
    assert!(then.text.contains("Shown as it was at"), "{}", then.text);
    assert!(!then.text.contains("id=\"discovery\""), "{}", then.text);
    let before = console.get(&format!("{path}?at=2000-01-01")).await?;
    assert_eq!(before.status, StatusCode::NOT_FOUND, "{}", before.text);
    let garbled = console.get(&format!("{path}?at=yesterday")).await?;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST, "{}", garbled.text);

    // A firmware placeholder is reported, marked and never written.
    let report = import(
        &agent,
        &computer("d2", "ws-2", "To Be Filled By O.E.M.", "U-2"),
    )
    .await?;
    assert_eq!(report.status, StatusCode::CREATED, "{}", report.text);
    let other = report.body["items"][0]["ci_id"]
        .as_i64()
        .expect("the CI of the import");
    let page = console.get(&format!("/cmdb/cis/{other}")).await?;
    let discovery = section(&page.text, "discovery");
    assert!(
        discovery.contains(
            "To Be Filled By O.E.M. <span class=\"muted\">(placeholder, not written)</span>"
        ),
        "{discovery}"
    );
    assert!(
        read_ci(tom, other).await?["attributes"]
            .get("serial_number")
            .is_none()
    );
    Ok(())
}

async fn imports_page_imports_again(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let ws_a = create_ci(
        tom,
        "workstation",
        "ws-a",
        json!({ "serial_number": "SN-A" }),
    )
    .await?;
    let ws_b = create_ci(tom, "workstation", "ws-b", json!({ "uuid": "UUID-B" })).await?;
    // The serial number names one CI and the UUID another: a conflict, kept in the log.
    let conflict = import(tom, &computer("d9", "ws-x", "SN-A", "UUID-B")).await?;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
    let entry = conflict.body["items"][0]["import_id"]
        .as_i64()
        .expect("the log entry");

    let console = Console::log_in(&desk.server, "tom").await?;
    let log = console.get("/cmdb/imports?outcome=conflict").await?;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    assert!(
        log.text
            .contains(&format!("<a href=\"/cmdb/imports/{entry}\">{entry}</a>")),
        "{}",
        log.text
    );
    assert!(log.text.contains("<td>d9</td>"), "{}", log.text);
    assert!(log.text.contains("<td>Conflict</td>"), "{}", log.text);
    assert!(
        log.text.contains("ws-a") && log.text.contains("ws-b"),
        "{}",
        log.text
    );
    let retry = format!("/cmdb/imports/{entry}/retry");
    assert!(
        log.text.contains(&format!("action=\"{retry}\"")),
        "{}",
        log.text
    );
    let created = console.get("/cmdb/imports?outcome=created").await?;
    assert!(
        created.text.contains("No import matches this filter."),
        "{}",
        created.text
    );
    let bad = console.get("/cmdb/imports?outcome=lost").await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);

    let page = console.get(&format!("/cmdb/imports/{entry}")).await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("bytes"), "{}", page.text);
    assert!(page.text.contains(&format!("action=\"{retry}\"")));

    // Still in conflict, importing again reports the conflict and changes nothing.
    let again = console
        .submit("/cmdb/imports", &retry, &[("outcome", "conflict")])
        .await?;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert!(
        again
            .text
            .contains("1 of its 1 items are still in conflict or rejected"),
        "{}",
        again.text
    );
    assert!(
        again.text.contains("<option value=\"conflict\" selected>"),
        "the filter stays"
    );

    // Once the duplicate is retired, the kept document updates the other CI.
    let retired = console
        .submit(
            &format!("/cmdb/cis/{ws_b}/retire"),
            &format!("/cmdb/cis/{ws_b}/retire"),
            &[],
        )
        .await?;
    assert_eq!(retired.status, StatusCode::SEE_OTHER, "{}", retired.text);
    let again = console
        .submit("/cmdb/imports", &retry, &[("outcome", "")])
        .await?;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert!(
        again.text.contains(&format!(
            "The document of import {entry} was imported again.</p>"
        )),
        "{}",
        again.text
    );
    assert!(
        again.text.contains(&format!(
            ": Update (<a href=\"/cmdb/cis/{ws_a}\">open the CI</a>)"
        )),
        "{}",
        again.text
    );
    assert_eq!(read_ci(tom, ws_a).await?["attributes"]["uuid"], "UUID-B");

    let missing = console
        .submit("/cmdb/imports", "/cmdb/imports/999999/retry", &[])
        .await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    assert!(
        missing
            .text
            .contains("inventory import `999999` was not found"),
        "{}",
        missing.text
    );
    Ok(())
}

/// Moves the creation of every CI `days` into the past, so that the audit may find CIs
/// that discovery has not seen since.
async fn age_cis(server: &TestServer, days: i64) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let commands = server
        .commands()
        .ok_or_else(|| anyhow::anyhow!("the test needs an in-process server"))?;
    let db = commands.store.db();
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => "UPDATE cis SET created_at = ?",
        _ => "UPDATE cis SET created_at = $1",
    };
    let past = chrono::Utc::now() - chrono::Duration::days(days);
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        sql,
        [past.into()],
    ))
    .await?;
    Ok(())
}

async fn audit_page_opens_tasks(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let orphan = create_ci(tom, "workstation", "ws-lonely", json!({})).await?;
    age_cis(&desk.server, 40).await?;
    let console = Console::log_in(&desk.server, "tom").await?;

    let page = console.get("/cmdb/audit").await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    for heading in [
        "Stale CIs (1)",
        "Disagreements with discovery (0)",
        "CIs without relationships (1)",
        "Import conflicts in the last 30 days (0)",
    ] {
        assert!(page.text.contains(heading), "{heading}: {}", page.text);
    }
    let orphans = section(&page.text, "orphans");
    assert!(
        orphans.contains(&format!("<a href=\"/cmdb/cis/{orphan}\">ws-lonely</a>")),
        "{orphans}"
    );
    let stale = section(&page.text, "stale");
    assert!(stale.contains("<td>never</td>"), "{stale}");
    let bad = console.get("/cmdb/audit?stale_days=0").await?;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);

    let opened = console
        .submit("/cmdb/audit", "/cmdb/audit/tasks", &[("stale_days", "")])
        .await?;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);
    let start = opened
        .text
        .find("href=\"/records/CMA")
        .unwrap_or_else(|| panic!("a task link: {}", opened.text));
    let number = opened.text[start + "href=\"/records/".len()..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        opened.text.contains("CIs without relationships (1)"),
        "{}",
        opened.text
    );
    let task = tom
        .get(&format!("/api/v1/records/{number}"))
        .await?
        .expect_status(StatusCode::OK)?
        .body;
    assert_eq!(task["process"], "cmdb_audit");
    assert!(
        task["description"]
            .as_str()
            .unwrap_or_default()
            .contains("ws-lonely"),
        "{task}"
    );

    // Asked again on the same day, the audit returns the same tasks.
    let again = console
        .submit("/cmdb/audit", "/cmdb/audit/tasks", &[("stale_days", "")])
        .await?;
    assert!(
        again.text.contains(&format!("href=\"/records/{number}\"")),
        "{}",
        again.text
    );
    let forged = console
        .post("/cmdb/audit/tasks", &[("stale_days", "")])
        .await?;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    Ok(())
}

/// An incident's page shows what its CI affects and the open change and known error on
/// the same CI, for staff; the requester's page has no Configuration section.
async fn record_page_shows_configuration(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let mut ids = Vec::new();
    for body in [
        json!({ "class": "business_service", "name": "Payroll", "attributes": { "criticality": "critical" } }),
        json!({ "class": "application", "name": "payroll-app", "attributes": { "criticality": "high" } }),
        json!({ "class": "server", "name": "srv-pay-1", "attributes": {} }),
    ] {
        let created = tom
            .post("/api/v1/cis", &body)
            .await?
            .expect_status(StatusCode::CREATED)?;
        ids.push(created.body["id"].as_i64().unwrap_or_default());
    }
    for (kind, source, target) in [("used_by", ids[1], ids[0]), ("runs_on", ids[1], ids[2])] {
        tom.post(
            "/api/v1/relationships",
            &json!({ "type": kind, "source": source, "target": target }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?;
    }
    let change = tom
        .post(
            "/api/v1/records/change",
            &json!({ "title": "Patch srv-pay-1", "description": "Kernel", "fields": { "type": "normal", "impact": "low", "urgency": "low", "ci": "srv-pay-1" } }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;
    let known_error = tom
        .post(
            "/api/v1/records/known_error",
            &json!({ "title": "Hangs on boot", "description": "Driver", "fields": { "ci": "srv-pay-1", "root_cause": "Driver bug", "workaround": "Older kernel" } }),
        )
        .await?
        .expect_status(StatusCode::CREATED)?
        .body;
    let incident = crate::common::create_incident(
        &desk.alice,
        "Payroll is down",
        "No answer",
        json!({ "ci": "srv-pay-1" }),
    )
    .await?;
    let number = incident["number"].as_str().unwrap_or_default();

    let console = Console::log_in(&desk.server, "tom").await?;
    let page = console.get(&format!("/records/{number}")).await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("id=\"cmdb-heading\""), "{}", page.text);
    assert!(page.text.contains(">Payroll</a>"), "{}", page.text);
    assert!(page.text.contains("(critical)"), "{}", page.text);
    for linked in [&change["number"], &known_error["number"]] {
        let linked = linked.as_str().unwrap_or_default();
        assert!(
            page.text.contains(&format!("href=\"/records/{linked}\"")),
            "{linked} missing"
        );
    }

    let own = Console::log_in(&desk.server, "alice").await?;
    let page = own.get(&format!("/records/{number}")).await?;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(!page.text.contains("cmdb-heading"), "{}", page.text);
    Ok(())
}
