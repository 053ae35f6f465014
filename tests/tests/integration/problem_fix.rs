//! A problem's permanent fix through the REST API. `raise_change` opens a change linked
//! with `solves` (`problem/raise_change`), and the problem follows that change
//! (`problem/track_change`). `fix_change` is filled in once the change moves, and closing
//! the change leaves a note on the problem.

use serde_json::json;
use tend_test_support::{Backend, Role, backend_tests};

use crate::common::{Desk, read, take};
use crate::support::{approve, create, entries, links_of_type, number, set_members};

backend_tests!(raised_change_is_tracked);

async fn raised_change_is_tracked(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    set_members(&desk, &[("change_managers", &["mia"])])?;
    let mia = desk.server.add_user("mia", &[Role::Technician]).await?;
    let tom = &desk.tom.client;
    let problem = create(
        tom,
        "problem",
        json!({
            "title": "Print spooler crashes every Monday",
            "description": "The spooler on prn-01 stops after the weekly driver push.",
            "fields": { "impact": "medium", "urgency": "medium", "category": "hardware", "ci": "prn-01" }
        }),
    )
    .await?;
    let problem = number(&problem);
    take(
        tom,
        &problem,
        "analyse",
        json!({ "fields": { "assignee": "tom" } }),
    )
    .await?;
    let fixing = take(
        tom,
        &problem,
        "raise_change",
        json!({ "fields": {
            "root_cause": "Driver 7.1 leaks spooler handles",
            "workaround": "Restart the spooler on Monday morning"
        } }),
    )
    .await?;
    assert_eq!(fixing["state"], "fix_in_progress");

    let problem_record = read(tom, &problem).await?;
    let solved_by = links_of_type(&problem_record, "solves");
    assert_eq!(solved_by.len(), 1, "{}", problem_record["links"]);
    assert_eq!(solved_by[0]["label"], "Solved by");
    assert_eq!(solved_by[0]["direction"], "incoming");
    assert_eq!(solved_by[0]["state"], "new");
    assert_eq!(
        problem_record["fields"]["fix_change"],
        serde_json::Value::Null,
        "the change has not moved yet"
    );
    let change = number(&solved_by[0]);
    assert!(change.starts_with("CHG"), "{change}");

    let change_record = read(tom, &change).await?;
    assert_eq!(
        change_record["title"],
        format!("Fix for {problem}: Print spooler crashes every Monday")
    );
    let fields = &change_record["fields"];
    assert_eq!(fields["type"], "normal");
    assert_eq!(fields["requester"], "tom");
    assert_eq!(fields["category"], "hardware");
    assert_eq!(fields["ci"], "prn-01");
    assert_eq!(
        fields["reason"],
        format!(
            "Permanent fix for problem {problem}.\n\nRoot cause: Driver 7.1 leaks spooler handles\n\nWorkaround until then: Restart the spooler on Monday morning"
        )
    );
    assert_eq!(
        links_of_type(&change_record, "solves")[0]["label"],
        "Solves"
    );

    // A second request while the change is pending opens no other change.
    take(tom, &problem, "raise_change", json!({})).await?;
    let problem_record = read(tom, &problem).await?;
    assert_eq!(links_of_type(&problem_record, "solves").len(), 1);
    let notes = entries(&problem_record, "note");
    assert_eq!(
        notes.last().map(|note| note["text"].clone()),
        Some(json!(format!(
            "Change {change} (new) already fixes this problem, so no change was opened"
        )))
    );

    update_plan(&desk, &change).await?;
    take(tom, &change, "submit", json!({})).await?;
    let problem_record = read(tom, &problem).await?;
    assert_eq!(problem_record["fields"]["fix_change"], change.as_str());
    let filled = entries(&problem_record, "field_changed")
        .into_iter()
        .find(|entry| entry["field"] == "fix_change")
        .cloned()
        .unwrap_or_default();
    assert_eq!(filled["rule"], "problem/track_change");

    take(tom, &change, "authorize", json!({})).await?;
    approve(&mia, &change).await?;
    take(tom, &change, "start", json!({})).await?;
    take(
        tom,
        &change,
        "complete",
        json!({ "fields": { "outcome": "successful" } }),
    )
    .await?;
    take(tom, &change, "close", json!({})).await?;
    let problem_record = read(tom, &problem).await?;
    let notes = entries(&problem_record, "note");
    assert_eq!(
        notes.last().map(|note| note["text"].clone()),
        Some(json!(format!(
            "Change {change}, which fixes this problem, was closed"
        )))
    );
    let resolved = take(
        tom,
        &problem,
        "resolve",
        json!({ "fields": { "closure_code": "fixed" } }),
    )
    .await?;
    assert_eq!(resolved["state"], "resolved", "the guard finds the change");
    Ok(())
}

/// Fills in the window and plans that scheduling the change requires.
async fn update_plan(desk: &Desk, change: &str) -> anyhow::Result<()> {
    crate::support::update(
        &desk.tom.client,
        change,
        json!({
            "planned_start": "2026-03-16T06:00:00Z",
            "planned_end": "2026-03-16T07:00:00Z",
            "implementation_plan": "Roll back the driver to 7.0 on prn-01",
            "backout_plan": "Reinstall driver 7.1",
        }),
    )
    .await?;
    Ok(())
}
