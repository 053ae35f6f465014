//! Trend detection: several records of a process that share field values within a time
//! window open one record of another process (a problem for recurring incidents), and
//! each of them is linked to it.

use serde_json::Value;
use tend_domain::{Actor, Fields, Record, Role};
use tend_workflow::model::TrendDef;

use crate::commands::{Commands, NewRecord};
use crate::error::ApiError;

/// Name of the system actor that opens and links records for trends.
pub const TRENDS_ACTOR: &str = "trends";

/// Most records of the window one trend check reads.
const MAX_WINDOW_RECORDS: u64 = 5_000;

impl Commands {
    /// Checks the definition's trends for a newly created record. Failures are logged:
    /// the record itself is already written.
    /// The future is boxed because opening a record creates one, which checks trends again.
    pub(crate) fn detect_trends<'a>(
        &'a self,
        record: &'a Record,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let Ok(definition) = self.engine.definition(&record.process) else {
                return;
            };
            for trend in &definition.trends {
                if let Err(error) = self.detect_trend(record, trend).await {
                    tracing::warn!(
                        record.number = record.number,
                        trend = trend.name,
                        %error,
                        "trend detection failed"
                    );
                }
            }
        })
    }

    async fn detect_trend(&self, record: &Record, trend: &TrendDef) -> Result<(), ApiError> {
        let mut values = Vec::new();
        for field in &trend.match_fields {
            match record.fields.get(field) {
                Some(value) if !value.is_null() && value != "" => {
                    values.push((field.as_str(), value))
                }
                _ => return Ok(()),
            }
        }
        let since = record.created_at - trend.within.duration();
        let matching: Vec<Record> = self
            .store
            .records_touched_since(&record.process, since, MAX_WINDOW_RECORDS)
            .await?
            .into_iter()
            .filter(|other| other.created_at >= since)
            .filter(|other| {
                values
                    .iter()
                    .all(|(field, value)| other.fields.get(*field) == Some(*value))
            })
            .collect();
        let threshold = usize::try_from(trend.threshold).unwrap_or(usize::MAX);
        if matching.len() < threshold {
            return Ok(());
        }
        let actor = Actor::new(TRENDS_ACTOR, vec![Role::Admin]);

        // A trend that already opened a record, still open, gathers the new records there.
        let mut target = None;
        let mut linked = Vec::new();
        for other in &matching {
            for link in self.store.links_of(other.id).await? {
                if link.link_type == trend.link_type
                    && link.direction.is_outgoing()
                    && link.process == trend.open
                {
                    linked.push(other.number.clone());
                    if link.open && target.is_none() {
                        target = Some(link.number.clone());
                    }
                }
            }
        }
        let target = match target {
            Some(number) => number,
            None => {
                self.open_trend_record(record, trend, &values, &matching, &actor)
                    .await?
            }
        };
        for other in &matching {
            if linked.contains(&other.number) {
                continue;
            }
            match self
                .link(&actor, &other.number, &trend.link_type, &target)
                .await
            {
                Ok(_) | Err(ApiError::Duplicate(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    async fn open_trend_record(
        &self,
        record: &Record,
        trend: &TrendDef,
        values: &[(&str, &Value)],
        matching: &[Record],
        actor: &Actor,
    ) -> Result<String, ApiError> {
        let target = self.engine.definition(&trend.open)?;
        let shared: Vec<String> = values
            .iter()
            .map(|(field, value)| match value {
                Value::String(text) => format!("{field} {text}"),
                other => format!("{field} {other}"),
            })
            .collect();
        let mut fields = Fields::new();
        for (field, value) in values {
            if target.fields.contains_key(*field) {
                fields.insert((*field).to_owned(), (*value).clone());
            }
        }
        let numbers: Vec<&str> = matching.iter().map(|r| r.number.as_str()).collect();
        let label = trend.label.as_deref().unwrap_or(&trend.name);
        let input = NewRecord {
            title: format!(
                "{label}: {} {} records with {}",
                matching.len(),
                record.process,
                shared.join(", ")
            ),
            description: format!(
                "Opened by trend `{}`: {} {} records with {} were created within {} ({}).",
                trend.name,
                matching.len(),
                record.process,
                shared.join(", "),
                trend.within.describe(),
                numbers.join(", ")
            ),
            fields,
            idempotency_key: None,
            preset: Fields::new(),
        };
        let (opened, _) = self.create(actor, &trend.open, input).await?;
        tracing::info!(
            record.number = record.number,
            opened = opened.number,
            trend = trend.name,
            "a trend opened a record"
        );
        Ok(opened.number)
    }
}
