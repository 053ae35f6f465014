//! Continuity plans and recovery tests through the REST API. The objectives guard and the
//! continuity board's majority come before a plan is in force. A recovery test recommends
//! `recover` for its restore steps, passes only within its targets and leaves its result
//! on the plan.

use serde_json::json;
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, Role, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, read, take};
use crate::support::{
    approve, attempt, create, error_message, links_of_type, number, set_members, update,
};

backend_tests!(plan_approved_and_tested);

async fn plan_approved_and_tested(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    set_members(
        &desk,
        &[("continuity_board", &["olga", "pia", "quinn", "rolf"])],
    )?;
    let olga = desk.server.add_user("olga", &[Role::ProcessOwner]).await?;
    let pia = desk.server.add_user("pia", &[Role::Technician]).await?;
    let quinn = desk.server.add_user("quinn", &[Role::Technician]).await?;
    let tom = &desk.tom.client;
    let body = json!({
        "title": "Payroll recovery plan",
        "fields": {
            "service": "payroll",
            "owner": "olga",
            "rto": 30,
            "rpo": 15,
            "strategy": "restore_from_backup",
            "plan": "Restore the payroll database and file share from the nightly backup",
            "review_date": "2027-03-31",
        }
    });

    let reply = tom
        .post(&format!("{RECORDS}/continuity_plan"), &body)
        .await?;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden", None);
    let plan = number(&create(&olga.client, "continuity_plan", body).await?);
    assert!(plan.starts_with("CONT"), "{plan}");

    let reply = attempt(&olga.client, &plan, "approve", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&reply),
        "A restore_from_backup strategy brings a service back in 240 minutes at the earliest, and the RTO is 30 minutes: choose a faster strategy or a longer RTO"
    );
    assert_eq!(read(tom, &plan).await?["approvals"], json!([]));

    update(
        &olga.client,
        &plan,
        json!({ "strategy": "warm_standby", "rto": 120 }),
    )
    .await?;
    let waiting = take(&olga.client, &plan, "approve", json!({})).await?;
    assert_eq!(waiting["state"], "draft");
    let round = &waiting["approvals"][0];
    assert_eq!(round["total"], 3, "olga asked, so she has no vote");
    assert_eq!(round["required"], 2);
    assert_eq!(approve(&pia, &plan).await?["state"], "draft");
    assert_eq!(approve(&quinn, &plan).await?["state"], "approved");

    let test = create(
        tom,
        "recovery_test",
        json!({
            "title": "Payroll restore test, May",
            "fields": {
                "service": "payroll",
                "ci": "app-01",
                "restore_point": "nightly 2026-05-10",
                "target_rto": 120,
                "target_rpo": 15,
            }
        }),
    )
    .await?;
    let test = number(&test);
    tom.post(
        &format!("{RECORDS}/{test}/links"),
        &json!({ "type": "tests", "target": plan }),
    )
    .await?
    .expect_status(StatusCode::CREATED)?;

    let reply = attempt(tom, &test, "start", json!({})).await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("restore_steps"),
    );
    let running = take(
        tom,
        &test,
        "start",
        json!({ "fields": { "restore_steps": "fs01: /srv/share/payroll\n# then the database files\n/var/lib/payroll\n" } }),
    )
    .await?;
    assert_eq!(running["state"], "running");
    let recommendations = running["recommendations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(recommendations.len(), 1, "{recommendations:?}");
    assert_eq!(recommendations[0]["action"], "recover");
    assert_eq!(
        recommendations[0]["rule"],
        "recovery_test/recommend_recover"
    );
    assert_eq!(
        recommendations[0]["params"],
        json!({
            "restore_point": "nightly 2026-05-10",
            "steps": [
                { "ci": "fs01", "path_hint": "/srv/share/payroll" },
                { "ci": "app-01", "path_hint": "/var/lib/payroll" },
            ]
        })
    );

    let reply = attempt(
        tom,
        &test,
        "pass",
        json!({ "fields": { "measured_rto": 95, "measured_rpo": 40 } }),
    )
    .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "guard_failed",
        None,
    );
    assert_eq!(
        error_message(&reply),
        "40 minutes of data were lost and the target is at most 15: take \"Failed\" and record the findings"
    );
    let passed = take(
        tom,
        &test,
        "pass",
        json!({ "fields": { "measured_rto": 95, "measured_rpo": 10 } }),
    )
    .await?;
    assert_eq!(passed["state"], "passed");

    let plan_record = read(tom, &plan).await?;
    assert_eq!(plan_record["fields"]["last_test"], test.as_str());
    assert_eq!(plan_record["fields"]["last_test_result"], "passed");
    let tested_by = links_of_type(&plan_record, "tests");
    assert_eq!(tested_by.len(), 1);
    assert_eq!(tested_by[0]["label"], "Tested by");
    assert_eq!(tested_by[0]["state"], "passed");
    Ok(())
}
