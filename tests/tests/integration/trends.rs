//! Trend detection: recurring incidents on one configuration item open a problem, and
//! later incidents of the same pattern are linked to it.

use serde_json::{Value, json};
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, create_incident, read};

backend_tests!(
    three_incidents_on_one_ci_open_a_problem,
    incidents_on_other_cis_open_nothing
);

fn problems_linked(record: &Value) -> Vec<String> {
    record["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|link| link["type"] == "incident_of")
        .filter_map(|link| link["number"].as_str().map(str::to_owned))
        .collect()
}

async fn on_ci(desk: &Desk, title: &str, ci: &str) -> anyhow::Result<String> {
    let record = create_incident(
        &desk.alice,
        title,
        "The application times out when it saves.",
        json!({ "ci": ci }),
    )
    .await?;
    Ok(record["number"].as_str().unwrap_or_default().to_owned())
}

async fn three_incidents_on_one_ci_open_a_problem(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let first = on_ci(&desk, "Payroll app times out", "srv-db-01").await?;
    let second = on_ci(&desk, "Invoices fail to save", "srv-db-01").await?;
    let before = read(&desk.tom.client, &second).await?;
    assert!(problems_linked(&before).is_empty(), "two are no trend yet");

    let third = on_ci(&desk, "Reports hang", "srv-db-01").await?;
    let mut problems = Vec::new();
    for number in [&first, &second, &third] {
        let record = read(&desk.tom.client, number).await?;
        problems.extend(problems_linked(&record));
    }
    problems.dedup();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let problem = read(&desk.tom.client, &problems[0]).await?;
    assert_eq!(problem["process"], "problem");
    assert_eq!(problem["fields"]["ci"], "srv-db-01");
    assert!(
        problem["description"]
            .as_str()
            .is_some_and(|text| text.contains(&first) && text.contains(&third)),
        "{}",
        problem["description"]
    );
    assert_eq!(problem["links"].as_array().map(Vec::len), Some(3));

    let fourth = on_ci(&desk, "Time sheets time out", "srv-db-01").await?;
    let record = read(&desk.tom.client, &fourth).await?;
    assert_eq!(problems_linked(&record), vec![problems[0].clone()]);
    let problem = read(&desk.tom.client, &problems[0]).await?;
    assert_eq!(problem["links"].as_array().map(Vec::len), Some(4));
    Ok(())
}

async fn incidents_on_other_cis_open_nothing(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let mut numbers = Vec::new();
    for ci in ["srv-db-01", "srv-db-02", "srv-web-01"] {
        numbers.push(on_ci(&desk, "Application times out", ci).await?);
    }
    for number in &numbers {
        let record = read(&desk.tom.client, number).await?;
        assert!(problems_linked(&record).is_empty(), "{number} was linked");
    }
    Ok(())
}
