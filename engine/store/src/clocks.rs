//! The `sla_clocks` table: each record's clocks as of its last write. It is an index, not
//! the truth (that is the journal), rewritten in the write job of every change to the
//! record, and read by the breaching-soon list and the SLA reports so that neither scans
//! the open records.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde::Serialize;

use crate::entities::{records, sla_clocks};
use crate::records::placeholders;
use crate::{Error, truncate};

/// One clock of a record, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockRow {
    pub policy: String,
    pub target: String,
    pub kind: String,
    pub process: String,
    pub priority: Option<String>,
    pub assignment_group: Option<String>,
    /// `running`, `paused` or `stopped`.
    pub phase: String,
    pub started_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub target_seconds: i64,
    pub elapsed_seconds: i64,
    pub breached: bool,
}

/// Replaces the clock rows of record `record_id` with `rows`, inside a write job.
pub async fn replace_clocks<C: ConnectionTrait>(
    tx: &C,
    record_id: i64,
    rows: &[ClockRow],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    sla_clocks::Entity::delete_many()
        .filter(sla_clocks::Column::RecordId.eq(record_id))
        .exec(tx)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let updated_at = truncate(at);
    let models = rows.iter().map(|row| sla_clocks::ActiveModel {
        record_id: Set(record_id),
        policy: Set(row.policy.clone()),
        target: Set(row.target.clone()),
        kind: Set(row.kind.clone()),
        process: Set(row.process.clone()),
        priority: Set(row.priority.clone()),
        assignment_group: Set(row.assignment_group.clone()),
        phase: Set(row.phase.clone()),
        started_at: Set(truncate(row.started_at)),
        due_at: Set(row.due_at.map(truncate)),
        stopped_at: Set(row.stopped_at.map(truncate)),
        target_seconds: Set(row.target_seconds),
        elapsed_seconds: Set(row.elapsed_seconds),
        breached: Set(row.breached),
        updated_at: Set(updated_at),
        ..Default::default()
    });
    sla_clocks::Entity::insert_many(models).exec(tx).await?;
    Ok(())
}

/// Reads the stored clocks of record `record_id` inside a write job.
pub async fn clocks_in<C: ConnectionTrait>(tx: &C, record_id: i64) -> Result<Vec<ClockRow>, Error> {
    let rows = sla_clocks::Entity::find()
        .filter(sla_clocks::Column::RecordId.eq(record_id))
        .order_by_asc(sla_clocks::Column::Id)
        .all(tx)
        .await?;
    Ok(rows.into_iter().map(to_row).collect())
}

/// A running clock due soon, with its record's number and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueClock {
    pub number: String,
    pub title: String,
    pub policy: String,
    pub target: String,
    pub priority: Option<String>,
    pub assignment_group: Option<String>,
    pub due_at: DateTime<Utc>,
}

/// Rows of one group of an SLA report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    pub policy: Option<String>,
    pub kind: Option<String>,
    pub target: Option<String>,
    pub priority: Option<String>,
    pub assignment_group: Option<String>,
    pub month: Option<String>,
    /// Clocks stopped within their target.
    pub met: i64,
    /// Clocks stopped after their due time, or still running or paused past it.
    pub breached: i64,
    /// Clocks still running or paused within their target.
    pub in_progress: i64,
    /// Share of met among met and breached, in percent; none without decided clocks.
    pub compliance: Option<f64>,
}

/// A dimension an SLA report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportGroup {
    Policy,
    Target,
    Priority,
    Group,
    Month,
}

impl ReportGroup {
    pub fn parse(text: &str) -> Option<ReportGroup> {
        match text {
            "policy" => Some(ReportGroup::Policy),
            "target" => Some(ReportGroup::Target),
            "priority" => Some(ReportGroup::Priority),
            "group" | "assignment_group" => Some(ReportGroup::Group),
            "month" => Some(ReportGroup::Month),
            _ => None,
        }
    }

    pub const NAMES: &'static str = "policy, target, priority, group, month";
}

impl crate::Store {
    /// Returns the stored clocks of one record, in policy and target order.
    pub async fn clocks_of(&self, record_id: i64) -> Result<Vec<ClockRow>, Error> {
        clocks_in(self.db(), record_id).await
    }

    /// Lists the running clocks due after `from` and up to `until`, earliest first, through
    /// the index on (phase, due_at): the cost follows the number of clocks due in the
    /// window, not the number of open records.
    pub async fn clocks_due_between(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<DueClock>, Error> {
        let clocks = sla_clocks::Entity::find()
            .filter(sla_clocks::Column::Phase.eq("running"))
            .filter(sla_clocks::Column::DueAt.gt(truncate(from)))
            .filter(sla_clocks::Column::DueAt.lte(truncate(until)))
            .order_by_asc(sla_clocks::Column::DueAt)
            .order_by_asc(sla_clocks::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?;
        let ids: Vec<i64> = clocks.iter().map(|clock| clock.record_id).collect();
        let titles: std::collections::HashMap<i64, (String, String)> = records::Entity::find()
            .select_only()
            .column(records::Column::Id)
            .column(records::Column::Number)
            .column(records::Column::Title)
            .filter(records::Column::Id.is_in(ids))
            .into_tuple::<(i64, String, String)>()
            .all(self.db())
            .await?
            .into_iter()
            .map(|(id, number, title)| (id, (number, title)))
            .collect();
        Ok(clocks
            .into_iter()
            .filter_map(|clock| {
                let (number, title) = titles.get(&clock.record_id)?.clone();
                Some(DueClock {
                    number,
                    title,
                    policy: clock.policy,
                    target: clock.target,
                    priority: clock.priority,
                    assignment_group: clock.assignment_group,
                    due_at: clock.due_at?,
                })
            })
            .collect())
    }

    /// Counts met, breached and in-progress clocks that started in `[from, to)`, grouped by
    /// `group_by`, as of `now` for the clocks still counting. Aggregated by the database.
    pub async fn sla_report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: &[ReportGroup],
        now: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, Error> {
        let backend = self.db().get_database_backend();
        let month = match backend {
            DbBackend::Postgres => "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM')",
            _ => "substr(started_at, 1, 7)",
        };
        let column = |group: ReportGroup| match group {
            ReportGroup::Policy => "policy",
            ReportGroup::Target => "target",
            ReportGroup::Priority => "priority",
            ReportGroup::Group => "assignment_group",
            ReportGroup::Month => month,
        };
        let mut selected = Vec::new();
        let mut grouped = Vec::new();
        for group in group_by {
            let alias = match group {
                ReportGroup::Policy => "g_policy",
                ReportGroup::Target => "g_target",
                ReportGroup::Priority => "g_priority",
                ReportGroup::Group => "g_group",
                ReportGroup::Month => "g_month",
            };
            selected.push(format!("{} AS {alias}", column(*group)));
            grouped.push(column(*group).to_owned());
            if *group == ReportGroup::Policy {
                selected.push("MIN(kind) AS g_kind".into());
            }
        }
        // A clock still counting is breached once its due time passed; a paused clock
        // keeps the flag of its last write.
        let breached = "(breached OR (phase = 'running' AND due_at IS NOT NULL AND due_at <= $3))";
        selected.push(
            "SUM(CASE WHEN phase = 'stopped' AND NOT breached THEN 1 ELSE 0 END) AS met".to_owned(),
        );
        selected.push(format!(
            "SUM(CASE WHEN {breached} THEN 1 ELSE 0 END) AS breached_count"
        ));
        selected.push(format!(
            "SUM(CASE WHEN phase <> 'stopped' AND NOT {breached} THEN 1 ELSE 0 END) AS in_progress"
        ));
        let mut sql = format!(
            "SELECT {} FROM sla_clocks WHERE started_at >= $1 AND started_at < $2",
            selected.join(", ")
        );
        if !grouped.is_empty() {
            sql.push_str(&format!(" GROUP BY {0} ORDER BY {0}", grouped.join(", ")));
        }
        let statement = Statement::from_sql_and_values(
            backend,
            placeholders(backend, &sql),
            [
                truncate(from).into(),
                truncate(to).into(),
                truncate(now).into(),
            ],
        );
        let rows = self.db().query_all_raw(statement).await?;
        let mut report = Vec::with_capacity(rows.len());
        for row in rows {
            let text = |name: &str, wanted: bool| -> Result<Option<String>, Error> {
                if !wanted {
                    return Ok(None);
                }
                Ok(row.try_get::<Option<String>>("", name)?)
            };
            let has = |group: ReportGroup| group_by.contains(&group);
            let count = |name: &str| -> Result<i64, Error> {
                Ok(row.try_get::<Option<i64>>("", name)?.unwrap_or(0))
            };
            let met = count("met")?;
            let breached = count("breached_count")?;
            let in_progress = count("in_progress")?;
            if met + breached + in_progress == 0 {
                continue;
            }
            report.push(ReportRow {
                policy: text("g_policy", has(ReportGroup::Policy))?,
                kind: text("g_kind", has(ReportGroup::Policy))?,
                target: text("g_target", has(ReportGroup::Target))?,
                priority: text("g_priority", has(ReportGroup::Priority))?,
                assignment_group: text("g_group", has(ReportGroup::Group))?,
                month: text("g_month", has(ReportGroup::Month))?,
                met,
                breached,
                in_progress,
                compliance: (met + breached > 0)
                    .then(|| (met as f64) * 100.0 / ((met + breached) as f64)),
            });
        }
        Ok(report)
    }
}

fn to_row(model: sla_clocks::Model) -> ClockRow {
    ClockRow {
        policy: model.policy,
        target: model.target,
        kind: model.kind,
        process: model.process,
        priority: model.priority,
        assignment_group: model.assignment_group,
        phase: model.phase,
        started_at: model.started_at,
        due_at: model.due_at,
        stopped_at: model.stopped_at,
        target_seconds: model.target_seconds,
        elapsed_seconds: model.elapsed_seconds,
        breached: model.breached,
    }
}
