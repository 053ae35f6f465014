//! `tend import-tickets` on the hand-written helpdesk fixture: what it imports, what it
//! rejects and why, and the category agreement it prints.

use std::collections::HashMap;
use std::ffi::OsString;

use tend_test_support::tend_store::RecordFilter;
use tend_test_support::{Backend, TestDatabase, backend_tests, repo_root, run_tend};
use tend_tests::fixture;

backend_tests!(import_reports_and_stores_tickets);

/// Words of the body that the importer uses as the title of a ticket without one.
const DERIVED_TITLE_WORDS: usize = 8;

type Labels = HashMap<String, HashMap<String, String>>;

struct Ticket {
    title: String,
    category: String,
    urgency: String,
    impact: String,
}

fn read_fixture() -> anyhow::Result<(Vec<Ticket>, Labels)> {
    let labels: Labels =
        serde_norway::from_str(&std::fs::read_to_string(fixture("helpdesk-labels.yaml"))?)?;
    let mut reader = csv::Reader::from_path(fixture("helpdesk-tickets.csv"))?;
    let mut tickets = Vec::new();
    for row in reader.records() {
        let row = row?;
        let (title, body) = (row[0].trim(), row[1].trim());
        let title = if title.is_empty() {
            body.split_whitespace()
                .take(DERIVED_TITLE_WORDS)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            title.to_owned()
        };
        tickets.push(Ticket {
            title,
            category: row[3].to_owned(),
            urgency: row[7].to_owned(),
            impact: row[8].to_owned(),
        });
    }
    Ok((tickets, labels))
}

async fn import_reports_and_stores_tickets(backend: Backend) -> anyhow::Result<()> {
    let database = TestDatabase::create(backend).await?;
    let mut args: Vec<OsString> = vec![
        "import-tickets".into(),
        fixture("helpdesk-tickets.csv").into(),
        "--labels".into(),
        fixture("helpdesk-labels.yaml").into(),
        "--definitions".into(),
        repo_root().into(),
    ];
    args.extend(database.store_args());
    let output = run_tend(args, None).await?;
    assert!(output.success(), "{output}");
    let stdout = &output.stdout;

    let summary = stdout.lines().next().unwrap_or_default();
    assert!(
        summary.starts_with("imported 10 tickets, rejected 2 ("),
        "summary: {summary}\n{output}"
    );
    assert!(
        stdout.contains("\n  rejected line 12: the ticket has neither a title nor a body\n"),
        "{output}"
    );
    assert!(
        stdout.contains(
            "\n  rejected line 13: invalid title: it is 353 characters long; the limit is 300\n"
        ),
        "{output}"
    );

    // What the store holds: the ten valid tickets, with the labelled urgency and impact.
    let (tickets, labels) = read_fixture()?;
    let store = database.connect().await?;
    // P1 tickets also open major incidents, which are not tickets of the file.
    let page = store
        .list_records(&RecordFilter {
            limit: 500,
            process: Some("incident".to_owned()),
            ..RecordFilter::default()
        })
        .await?;
    assert_eq!(page.records.len(), 10, "incidents in the store");
    let mut agree = 0;
    for record in &page.records {
        let ticket = tickets
            .iter()
            .find(|ticket| ticket.title == record.title)
            .unwrap_or_else(|| {
                panic!("{} `{}` is not in the fixture", record.number, record.title)
            });
        assert_eq!(record.process, "incident");
        assert_eq!(record.state, "new");
        assert_eq!(
            record.field_str("contact_type"),
            Some("email"),
            "{}",
            record.number
        );
        for (field, code) in [("urgency", &ticket.urgency), ("impact", &ticket.impact)] {
            let expected = labels[field].get(code).map_or("medium", String::as_str);
            assert_eq!(
                record.field_str(field),
                Some(expected),
                "{field} of `{}` (code {code})",
                ticket.title
            );
        }
        assert!(
            record.field_str("priority").is_some(),
            "the rules set a priority on {}",
            record.number
        );
        let label = labels["category"].get(&ticket.category);
        if label.map(String::as_str) == record.field_str("category") {
            agree += 1;
        }
    }
    let agreement = format!("category agreement with the labels: {agree} of 10 (");
    assert!(
        stdout.contains(&agreement),
        "expected `{agreement}`:\n{output}"
    );

    // The per-category counts add up to the imported tickets.
    let counted: usize = stdout
        .lines()
        .skip_while(|line| *line != "records per category:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().last()?.parse::<usize>().ok())
        .sum();
    assert_eq!(counted, 10, "{output}");
    Ok(())
}
