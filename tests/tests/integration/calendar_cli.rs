//! `tend calendar due` and `tend calendar elapsed` with the shipped calendars.

use std::ffi::OsString;

use tend_test_support::{CliOutput, repo_root, run_tend};

async fn calendar(args: &[&str]) -> anyhow::Result<CliOutput> {
    let mut all: Vec<OsString> = vec!["calendar".into()];
    all.extend(args.iter().map(OsString::from));
    all.push("--definitions".into());
    all.push(repo_root().into_os_string());
    run_tend(all, None).await
}

#[tokio::test]
async fn due_counts_business_hours() -> anyhow::Result<()> {
    let friday = "2026-12-04T16:00:00+01:00";
    for (pauses, expected) in [
        (vec![], "2026-12-07T12:00:00+01:00"),
        (
            vec![
                "--pause",
                "2026-12-04T16:30:00+01:00/2026-12-07T10:00:00+01:00",
            ],
            "2026-12-07T13:30:00+01:00",
        ),
    ] {
        let mut args = vec![
            "due",
            "--calendar",
            "business-hours",
            "--start",
            friday,
            "--duration",
            "4h",
        ];
        args.extend(pauses);
        let output = calendar(&args).await?;
        assert!(output.success(), "{output}");
        assert_eq!(output.stdout.trim(), expected, "{output}");
    }
    Ok(())
}

#[tokio::test]
async fn elapsed_skips_holidays_and_short_days() -> anyhow::Result<()> {
    let output = calendar(&[
        "elapsed",
        "--calendar",
        "business-hours",
        "--from",
        "2026-12-21T00:00:00Z",
        "--to",
        "2027-01-04T00:00:00Z",
    ])
    .await?;
    assert!(output.success(), "{output}");
    // Six full days, two half days to noon, and the holidays of 25 December and 1 January.
    assert_eq!(output.stdout.trim(), "54h", "{output}");
    Ok(())
}

#[tokio::test]
async fn unknown_calendar_lists_known_ones() -> anyhow::Result<()> {
    let output = calendar(&[
        "due",
        "--calendar",
        "office",
        "--start",
        "2026-12-04T16:00:00Z",
        "--duration",
        "1h",
    ])
    .await?;
    assert!(!output.success(), "{output}");
    assert!(
        output
            .stderr
            .contains("unknown calendar `office`: use one of 24x7, business-hours"),
        "{output}"
    );
    let bad_start = calendar(&[
        "due",
        "--calendar",
        "24x7",
        "--start",
        "yesterday",
        "--duration",
        "1h",
    ])
    .await?;
    assert!(
        bad_start.stderr.contains("invalid --start `yesterday`"),
        "{bad_start}"
    );
    Ok(())
}

#[tokio::test]
async fn schedule_next_lists_runs_in_its_zone() -> anyhow::Result<()> {
    let output = run_tend(
        [
            OsString::from("schedule"),
            "next".into(),
            "cmdb_verification".into(),
            "--after".into(),
            "2026-12-05T00:00:00Z".into(),
            "--count".into(),
            "3".into(),
            "--definitions".into(),
            repo_root().into_os_string(),
        ],
        None,
    )
    .await?;
    assert!(output.success(), "{output}");
    let runs: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(
        runs,
        [
            "2027-01-01T09:00:00+01:00",
            "2027-02-01T09:00:00+01:00",
            "2027-03-01T09:00:00+01:00"
        ]
    );
    Ok(())
}
