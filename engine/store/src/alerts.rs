//! Alerts of monitoring systems: one row per alert (source and fingerprint), written when
//! a delivery arrives and before the alert acts on a record, then updated with what it
//! did. A repeated delivery finds the record of the first one through this row.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::entities::alerts;
use crate::{Error, Store, truncate};

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub source: String,
    pub fingerprint: String,
    pub alertname: String,
    pub status: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub count: i64,
    pub episode: i64,
    pub record_number: Option<String>,
    pub effect: Option<String>,
    pub last_note_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub last_payload: serde_json::Value,
}

impl From<alerts::Model> for Alert {
    fn from(row: alerts::Model) -> Alert {
        Alert {
            id: row.id,
            source: row.source,
            fingerprint: row.fingerprint,
            alertname: row.alertname,
            status: row.status,
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            count: row.count,
            episode: row.episode,
            record_number: row.record_number,
            effect: row.effect,
            last_note_at: row.last_note_at,
            resolved_at: row.resolved_at,
            last_payload: serde_json::from_str(&row.last_payload)
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A delivery of one alert.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub source: String,
    pub fingerprint: String,
    pub alertname: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub received_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// Outcome of an alert, written after it acted.
#[derive(Debug, Clone, Default)]
pub struct AlertOutcome {
    pub record_number: Option<Option<String>>,
    pub effect: Option<String>,
    pub episode: Option<i64>,
    pub last_note_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<Option<DateTime<Utc>>>,
}

impl Store {
    /// Stores a delivery of an alert in its own write: a new row, or the known row with the
    /// new status, last seen time, payload and (when firing) one more in `count`. Returns
    /// the row as it was before, if any, and as it is now.
    pub async fn record_alert(&self, alert: NewAlert) -> Result<(Option<Alert>, Alert), Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let at = truncate(alert.received_at);
                let payload = alert.payload.to_string();
                let firing = i64::from(alert.status == "firing");
                let before = find(tx, &alert.source, &alert.fingerprint).await?;
                let row = match &before {
                    None => alerts::ActiveModel {
                        id: NotSet,
                        source: Set(alert.source.clone()),
                        fingerprint: Set(alert.fingerprint.clone()),
                        alertname: Set(alert.alertname.clone()),
                        status: Set(alert.status.clone()),
                        first_seen: Set(at),
                        last_seen: Set(at),
                        count: Set(firing),
                        episode: Set(1),
                        record_number: Set(None),
                        effect: Set(None),
                        last_note_at: Set(None),
                        resolved_at: Set(None),
                        last_payload: Set(payload),
                    },
                    Some(row) => alerts::ActiveModel {
                        id: Set(row.id),
                        source: Set(row.source.clone()),
                        fingerprint: Set(row.fingerprint.clone()),
                        alertname: Set(alert.alertname.clone()),
                        status: Set(alert.status.clone()),
                        first_seen: Set(row.first_seen),
                        last_seen: Set(at),
                        count: Set(row.count + firing),
                        episode: Set(row.episode),
                        record_number: Set(row.record_number.clone()),
                        effect: Set(row.effect.clone()),
                        last_note_at: Set(row.last_note_at),
                        resolved_at: Set(row.resolved_at),
                        last_payload: Set(payload),
                    },
                };
                let after = if before.is_some() {
                    row.update(tx).await?
                } else {
                    row.insert(tx)
                        .await
                        .map_err(|error| Error::from_insert(error, "alert", &alert.fingerprint))?
                };
                Ok((before.map(Alert::from), Alert::from(after)))
            })
        })
        .await
    }

    /// Records what alert `id` did.
    pub async fn finish_alert(&self, id: i64, outcome: AlertOutcome) -> Result<Alert, Error> {
        self.write(move |tx| {
            Box::pin(async move {
                let mut row = alerts::ActiveModel {
                    id: Set(id),
                    ..Default::default()
                };
                if let Some(number) = outcome.record_number {
                    row.record_number = Set(number);
                }
                if let Some(effect) = outcome.effect {
                    row.effect = Set(Some(effect));
                }
                if let Some(episode) = outcome.episode {
                    row.episode = Set(episode);
                }
                if let Some(at) = outcome.last_note_at {
                    row.last_note_at = Set(Some(truncate(at)));
                }
                if let Some(at) = outcome.resolved_at {
                    row.resolved_at = Set(at.map(truncate));
                }
                Ok(Alert::from(row.update(tx).await?))
            })
        })
        .await
    }

    /// Reads one alert.
    pub async fn alert(&self, source: &str, fingerprint: &str) -> Result<Option<Alert>, Error> {
        Ok(find(self.db(), source, fingerprint).await?.map(Alert::from))
    }

    /// Lists the alerts last seen most recently first.
    pub async fn list_alerts(&self, limit: u64) -> Result<Vec<Alert>, Error> {
        Ok(alerts::Entity::find()
            .order_by_desc(alerts::Column::LastSeen)
            .order_by_desc(alerts::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?
            .into_iter()
            .map(Alert::from)
            .collect())
    }
}

async fn find<C: ConnectionTrait>(
    tx: &C,
    source: &str,
    fingerprint: &str,
) -> Result<Option<alerts::Model>, Error> {
    Ok(alerts::Entity::find()
        .filter(alerts::Column::Source.eq(source))
        .filter(alerts::Column::Fingerprint.eq(fingerprint))
        .one(tx)
        .await?)
}
