//! Record lists: filters on indexed columns and keyset paging, newest update first.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select, Statement,
};
use tend_domain::Record;

use crate::entities::records::{self, Column};
use crate::records::to_record;
use crate::{Backend, Error, Store};

/// Largest page that `list_records` returns.
pub const MAX_LIMIT: u32 = 500;

/// Filter and page of a record list. Every set filter must match (AND), and `None` leaves a
/// filter out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFilter {
    pub process: Option<String>,
    pub state: Option<String>,
    pub assignee: Option<String>,
    pub assignment_group: Option<String>,
    pub requester: Option<String>,
    pub priority: Option<String>,
    pub open: Option<bool>,
    /// Case-insensitive text that the title or the description contains.
    pub q: Option<String>,
    /// Page size, from 1 to `MAX_LIMIT`.
    pub limit: u32,
    /// `next_cursor` of the previous page; `None` starts at the newest record.
    pub cursor: Option<String>,
}

impl Default for RecordFilter {
    fn default() -> Self {
        RecordFilter {
            process: None,
            state: None,
            assignee: None,
            assignment_group: None,
            requester: None,
            priority: None,
            open: None,
            q: None,
            limit: 50,
            cursor: None,
        }
    }
}

/// One page of records, most recently updated first.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    pub records: Vec<Record>,
    /// Opaque position after the last record of this page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl Store {
    /// Lists records matching `filter`, ordered by `updated_at` then id, both descending.
    /// Pages are keyset-based, so a page costs the same however deep it is. A record updated
    /// while a client pages moves to the front and may be skipped or seen twice.
    pub async fn list_records(&self, filter: &RecordFilter) -> Result<RecordPage, Error> {
        let query = build_query(filter)?;
        let mut rows = query.all(self.db()).await?;
        let more = rows.len() > filter.limit as usize;
        rows.truncate(filter.limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(encode_cursor(last.updated_at, last.id)),
            _ => None,
        };
        let records = rows.into_iter().map(to_record).collect::<Result<_, _>>()?;
        Ok(RecordPage {
            records,
            next_cursor,
        })
    }

    /// Lists up to `limit` records of `process` whose state is one of `states` and whose id
    /// is above `after_id`, by id. Scheduled rule runs page through their records with it:
    /// the id order visits each record once however the records change meanwhile.
    pub async fn records_in_states(
        &self,
        process: &str,
        states: &[String],
        after_id: i64,
        limit: u64,
    ) -> Result<Vec<Record>, Error> {
        records::Entity::find()
            .filter(Column::Process.eq(process))
            .filter(Column::State.is_in(states.iter().map(String::as_str)))
            .filter(Column::Id.gt(after_id))
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_record)
            .collect()
    }

    /// Returns the database's query plan for `list_records(filter)`, one line per step, to
    /// check that a filter reads an index.
    pub async fn explain_list_records(&self, filter: &RecordFilter) -> Result<Vec<String>, Error> {
        let backend = self.db().get_database_backend();
        let statement = build_query(filter)?.build(backend);
        let (prefix, column) = match self.backend() {
            Backend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
            Backend::Postgres => ("EXPLAIN ", "QUERY PLAN"),
        };
        let explain = Statement {
            sql: format!("{prefix}{}", statement.sql),
            ..statement
        };
        let rows = self.db().query_all_raw(explain).await?;
        rows.iter()
            .map(|row| row.try_get::<String>("", column).map_err(Error::from))
            .collect()
    }
}

fn build_query(filter: &RecordFilter) -> Result<Select<records::Entity>, Error> {
    if filter.limit == 0 || filter.limit > MAX_LIMIT {
        return Err(Error::Invalid(format!(
            "invalid limit {}: use a page size from 1 to {MAX_LIMIT}",
            filter.limit
        )));
    }
    let mut query = records::Entity::find();
    let equal = [
        (Column::Process, &filter.process),
        (Column::State, &filter.state),
        (Column::Assignee, &filter.assignee),
        (Column::AssignmentGroup, &filter.assignment_group),
        (Column::Requester, &filter.requester),
        (Column::Priority, &filter.priority),
    ];
    for (column, value) in equal {
        if let Some(value) = value {
            query = query.filter(column.eq(value.as_str()));
        }
    }
    if let Some(open) = filter.open {
        query = query.filter(Column::IsOpen.eq(open));
    }
    if let Some(text) = filter.q.as_deref().filter(|text| !text.trim().is_empty()) {
        query = query.filter(contains_text(text));
    }
    if let Some(cursor) = &filter.cursor {
        let (updated_at, id) = decode_cursor(cursor)?;
        query = query.filter(
            Condition::any().add(Column::UpdatedAt.lt(updated_at)).add(
                Condition::all()
                    .add(Column::UpdatedAt.eq(updated_at))
                    .add(Column::Id.lt(id)),
            ),
        );
    }

    // One row more than the page shows whether another page follows.
    Ok(query
        .order_by_desc(Column::UpdatedAt)
        .order_by_desc(Column::Id)
        .limit(u64::from(filter.limit) + 1))
}

/// Matches records whose title or description contains `text`, ignoring case (on SQLite,
/// ASCII case only, because its `lower()` leaves other letters alone). `%`, `_`
/// and `\` in `text` match themselves.
fn contains_text(text: &str) -> Condition {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for character in text.to_lowercase().chars() {
        if matches!(character, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped.push('%');
    let pattern = || LikeExpr::new(escaped.clone()).escape('\\');
    Condition::any()
        .add(Expr::expr(Func::lower(Expr::col(Column::Title))).like(pattern()))
        .add(Expr::expr(Func::lower(Expr::col(Column::Description))).like(pattern()))
}

fn encode_cursor(updated_at: DateTime<Utc>, id: i64) -> String {
    hex::encode(format!("{}:{id}", updated_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, i64), Error> {
    let invalid = || {
        Error::Invalid(format!(
            "invalid cursor `{cursor}`: pass the next_cursor of the previous page unchanged"
        ))
    };
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let id: i64 = id.parse().map_err(|_| invalid())?;
    let updated_at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((updated_at, id))
}

impl Store {
    /// Returns the records of `process` updated at or after `since`, newest first, at most
    /// `limit`. Every record created since then was also updated since then, so callers
    /// that look for records created in a window filter these by `created_at`; the query
    /// uses the `updated_at` index.
    pub async fn records_touched_since(
        &self,
        process: &str,
        since: chrono::DateTime<chrono::Utc>,
        limit: u64,
    ) -> Result<Vec<Record>, Error> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
        let rows = crate::entities::records::Entity::find()
            .filter(crate::entities::records::Column::UpdatedAt.gte(since))
            .filter(crate::entities::records::Column::Process.eq(process))
            .order_by_desc(crate::entities::records::Column::UpdatedAt)
            .limit(limit)
            .all(self.db())
            .await?;
        rows.into_iter().map(crate::records::to_record).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let at = crate::now();
        let cursor = encode_cursor(at, 42);
        assert_eq!(decode_cursor(&cursor).unwrap(), (at, 42));
    }

    #[test]
    fn cursor_rejects_garbage() {
        for cursor in [
            "",
            "zz",
            &hex::encode("12"),
            &hex::encode("a:1"),
            &hex::encode("1:b"),
        ] {
            let error = decode_cursor(cursor).unwrap_err();
            assert!(error.to_string().contains("invalid cursor"), "{error}");
        }
    }
}
