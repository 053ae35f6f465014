//! Major incidents through the REST API: a P1 incident opens a major incident linked with
//! `major_incident_of`, further incidents join it, and resolving the major incident
//! resolves the incidents that are still open (`incident/follow_major`).

use serde_json::{Value, json};
use tend_test_support::reqwest::StatusCode;
use tend_test_support::{Backend, backend_tests};

use crate::common::{Desk, RECORDS, assert_error, create_incident, read, take};
use crate::support::{attempt, last_transition, links_of_type, number, update};

backend_tests!(p1_incident_opens_major, resolving_major_resolves_incidents);

/// Returns the numbers of the major incidents linked to an incident.
fn majors_of(incident: &Value) -> Vec<String> {
    links_of_type(incident, "major_incident_of")
        .iter()
        .map(number)
        .collect()
}

async fn p1_incident_opens_major(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let incident = create_incident(
        &desk.alice,
        "Nobody can send mail",
        "Outlook says the server is unavailable.",
        json!({ "impact": "high", "urgency": "high", "ci": "mail-01" }),
    )
    .await?;
    assert_eq!(incident["fields"]["priority"], "P1");
    let incident_number = number(&incident);

    let incident = read(tom, &incident_number).await?;
    let links = links_of_type(&incident, "major_incident_of");
    assert_eq!(links.len(), 1, "{}", incident["links"]);
    assert_eq!(links[0]["label"], "Major incident");
    assert_eq!(links[0]["direction"], "incoming");
    assert_eq!(links[0]["process"], "major_incident");
    let major_number = number(&links[0]);
    assert!(major_number.starts_with("MAJ"), "{major_number}");

    let major = read(tom, &major_number).await?;
    assert_eq!(major["state"], "declared");
    assert_eq!(major["title"], "Major incident: Nobody can send mail");
    assert_eq!(
        major["description"],
        "Outlook says the server is unavailable."
    );
    assert_eq!(major["fields"]["ci"], "mail-01");
    let back = links_of_type(&major, "major_incident_of");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["label"], "Major incident of");
    assert_eq!(back[0]["direction"], "outgoing");
    assert_eq!(back[0]["number"], incident_number.as_str());
    assert_eq!(major["journal"][0]["actor"], "rule:incident/major");

    // A P2 incident opens no major incident, but raising it to P1 later does.
    let later = create_incident(
        &desk.bob,
        "Mail is slow",
        "Messages take ten minutes.",
        json!({ "impact": "high", "urgency": "medium" }),
    )
    .await?;
    let later_number = number(&later);
    assert_eq!(later["fields"]["priority"], "P2");
    assert!(majors_of(&read(tom, &later_number).await?).is_empty());
    let raised = update(tom, &later_number, json!({ "urgency": "high" })).await?;
    assert_eq!(raised["fields"]["priority"], "P1");
    let majors = majors_of(&read(tom, &later_number).await?);
    assert_eq!(majors.len(), 1, "{majors:?}");
    assert_ne!(majors[0], major_number, "a separate outage gets its own");

    // An incident already part of a major incident gets no second one.
    let joined = create_incident(
        &desk.bob,
        "Calendar invitations fail",
        "Meeting requests bounce.",
        json!({ "impact": "medium", "urgency": "medium" }),
    )
    .await?;
    let joined_number = number(&joined);
    tom.post(
        &format!("{RECORDS}/{major_number}/links"),
        &json!({ "type": "major_incident_of", "target": joined_number }),
    )
    .await?
    .expect_status(StatusCode::CREATED)?;
    update(
        tom,
        &joined_number,
        json!({ "impact": "high", "urgency": "high" }),
    )
    .await?;
    assert_eq!(
        majors_of(&read(tom, &joined_number).await?),
        vec![major_number.clone()]
    );
    let major = read(tom, &major_number).await?;
    assert_eq!(links_of_type(&major, "major_incident_of").len(), 2);
    Ok(())
}

async fn resolving_major_resolves_incidents(backend: Backend) -> anyhow::Result<()> {
    let desk = Desk::open(backend).await?;
    let tom = &desk.tom.client;
    let first = create_incident(
        &desk.alice,
        "The intranet is down",
        "Every page returns 502.",
        json!({ "impact": "high", "urgency": "high", "ci": "web-cluster" }),
    )
    .await?;
    let first = number(&first);
    let major = majors_of(&read(tom, &first).await?)
        .pop()
        .ok_or_else(|| anyhow::anyhow!("{first} opened no major incident"))?;

    // bob's incident joins the outage, and tom already gave it a resolution code.
    let second = create_incident(
        &desk.bob,
        "Cannot book a meeting room",
        "The booking page does not load.",
        json!({ "impact": "low", "urgency": "medium" }),
    )
    .await?;
    let second = number(&second);
    update(
        tom,
        &second,
        json!({ "resolution_code": "restored_by_failover" }),
    )
    .await?;
    tom.post(
        &format!("{RECORDS}/{major}/links"),
        &json!({ "type": "major_incident_of", "target": second }),
    )
    .await?
    .expect_status(StatusCode::CREATED)?;
    // A third incident of the outage, resolved before, keeps its own resolution.
    let third = create_incident(
        &desk.bob,
        "Wiki search returns nothing",
        "Search shows no results.",
        json!({ "impact": "low", "urgency": "low" }),
    )
    .await?;
    let third = number(&third);
    take(
        tom,
        &third,
        "resolve",
        json!({ "fields": { "resolution_code": "index_rebuilt" } }),
    )
    .await?;
    tom.post(
        &format!("{RECORDS}/{major}/links"),
        &json!({ "type": "major_incident_of", "target": third }),
    )
    .await?
    .expect_status(StatusCode::CREATED)?;

    let reply = attempt(
        tom,
        &major,
        "resolve",
        json!({ "fields": { "coordinator": "tom" } }),
    )
    .await?;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "required_field_missing",
        Some("resolution_notes"),
    );
    assert_eq!(read(tom, &first).await?["state"], "new");

    take(
        tom,
        &major,
        "mitigate",
        json!({ "fields": { "coordinator": "tom", "mitigation": "Traffic moved to the standby cluster" } }),
    )
    .await?;
    assert_eq!(
        read(tom, &first).await?["state"],
        "new",
        "mitigation resolves nothing"
    );
    let resolved = take(
        tom,
        &major,
        "resolve",
        json!({ "fields": { "resolution_notes": "Replaced the failed load balancer" } }),
    )
    .await?;
    assert_eq!(resolved["state"], "resolved");

    let first = read(&desk.alice.client, &first).await?;
    assert_eq!(first["state"], "resolved");
    assert_eq!(
        first["fields"]["resolution_code"],
        "resolved_by_major_incident"
    );
    let step = last_transition(&first);
    assert_eq!(step["transition"], "resolve");
    assert_eq!(step["actor"], "rule:incident/follow_major");

    let second = read(tom, &second).await?;
    assert_eq!(second["state"], "resolved");
    assert_eq!(second["fields"]["resolution_code"], "restored_by_failover");

    let third = read(tom, &third).await?;
    assert_eq!(third["state"], "resolved");
    assert_eq!(third["fields"]["resolution_code"], "index_rebuilt");
    assert_eq!(last_transition(&third)["actor"], "tom");

    // The requester may still reopen her own incident.
    let reopened = take(
        &desk.alice.client,
        &number(&first),
        "reopen",
        json!({ "comment": "My team still gets 502 errors" }),
    )
    .await?;
    assert_eq!(reopened["state"], "in_progress");
    Ok(())
}
