//! Impact analysis over CI relationships: a breadth-first walk that reads one level of the
//! graph per query (`WHERE target_id IN (…) OR source_id IN (…)`). The queries go through
//! the indexes on `(target_id, kind)` and `(source_id, kind)`, so the cost grows with the
//! CIs the walk reaches and not with the size of the CMDB. Each CI is reached once, at its shortest depth, so a
//! cycle never makes the walk loop.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use crate::Error;
use crate::entities::ci_relationships;

/// Ids per `IN (…)` list, well below the bind-parameter limits of SQLite and PostgreSQL.
pub(crate) const CHUNK: usize = 500;

/// Relationship types that a walk follows, by the direction it crosses them.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// Types walked from target to source: a CI reached as the target leads to the source.
    pub target_to_source: Vec<String>,
    /// Types walked from source to target.
    pub source_to_target: Vec<String>,
}

/// One relationship crossed by a walk, in the direction it was crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub relationship: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub from: i64,
    pub to: i64,
}

/// A CI that a walk reached, with the steps from the start CI that reached it first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reached {
    pub ci: i64,
    pub depth: u32,
    pub path: Vec<Step>,
}

/// The outcome of a walk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalkResult {
    /// The CIs reached, start CIs excluded, by depth and then by id.
    pub reached: Vec<Reached>,
    /// Cycles met on the way, each as the CI ids around it (the first one repeated at
    /// the end). A cycle in impact-carrying relationships is usually a modelling error.
    pub cycles: Vec<Vec<i64>>,
    /// Queries the walk ran, one per level and chunk of the level's CIs.
    pub queries: u32,
}

/// Walks from `starts` to at most `max_depth` relationships away.
pub async fn walk<C: ConnectionTrait>(
    db: &C,
    starts: &[i64],
    follow: &Walk,
    max_depth: u32,
) -> Result<WalkResult, Error> {
    let mut result = WalkResult::default();
    // For every CI reached (start CIs included): its depth and the step that reached it.
    let mut seen: HashMap<i64, (u32, Option<Step>)> = HashMap::new();
    for start in starts {
        seen.insert(*start, (0, None));
    }
    let mut cycles_seen: HashSet<Vec<i64>> = HashSet::new();
    let mut frontier: Vec<i64> = starts.to_vec();
    frontier.sort_unstable();
    frontier.dedup();
    if follow.target_to_source.is_empty() && follow.source_to_target.is_empty() {
        return Ok(result);
    }

    for depth in 1..=max_depth {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for chunk in frontier.chunks(CHUNK) {
            let rows = level(db, chunk, follow).await?;
            result.queries += 1;
            let in_chunk: HashSet<i64> = chunk.iter().copied().collect();
            for row in rows {
                let mut steps = Vec::with_capacity(2);
                if in_chunk.contains(&row.target_id) && follow.target_to_source.contains(&row.kind)
                {
                    steps.push((row.target_id, row.source_id));
                }
                if in_chunk.contains(&row.source_id) && follow.source_to_target.contains(&row.kind)
                {
                    steps.push((row.source_id, row.target_id));
                }
                for (from, to) in steps {
                    let step = Step {
                        relationship: row.id,
                        kind: row.kind.clone(),
                        from,
                        to,
                    };
                    if seen.contains_key(&to) {
                        if let Some(cycle) = cycle_through(&seen, &step)
                            && cycles_seen.insert(canonical(&cycle))
                        {
                            result.cycles.push(cycle);
                        }
                        continue;
                    }
                    seen.insert(to, (depth, Some(step)));
                    next.push(to);
                }
            }
        }
        next.sort_unstable();
        frontier = next;
    }

    let mut reached: Vec<Reached> = seen
        .iter()
        .filter(|(_, (depth, _))| *depth > 0)
        .map(|(ci, (depth, _))| Reached {
            ci: *ci,
            depth: *depth,
            path: path_to(&seen, *ci),
        })
        .collect();
    reached.sort_by_key(|hit| (hit.depth, hit.ci));
    result.reached = reached;
    Ok(result)
}

/// Reads the active relationships that lead away from the CIs of `chunk` under `follow`.
async fn level<C: ConnectionTrait>(
    db: &C,
    chunk: &[i64],
    follow: &Walk,
) -> Result<Vec<ci_relationships::Model>, Error> {
    let mut any = Condition::any();
    if !follow.target_to_source.is_empty() {
        any = any.add(
            Condition::all()
                .add(ci_relationships::Column::RetiredAt.is_null())
                .add(ci_relationships::Column::TargetId.is_in(chunk.iter().copied()))
                .add(
                    ci_relationships::Column::Kind
                        .is_in(follow.target_to_source.iter().map(String::as_str)),
                ),
        );
    }
    if !follow.source_to_target.is_empty() {
        any = any.add(
            Condition::all()
                .add(ci_relationships::Column::RetiredAt.is_null())
                .add(ci_relationships::Column::SourceId.is_in(chunk.iter().copied()))
                .add(
                    ci_relationships::Column::Kind
                        .is_in(follow.source_to_target.iter().map(String::as_str)),
                ),
        );
    }
    Ok(ci_relationships::Entity::find()
        .filter(any)
        .order_by_asc(ci_relationships::Column::Id)
        .all(db)
        .await?)
}

/// Returns the steps from a start CI to `ci`.
fn path_to(seen: &HashMap<i64, (u32, Option<Step>)>, ci: i64) -> Vec<Step> {
    let mut path = Vec::new();
    let mut current = ci;
    while let Some((_, Some(step))) = seen.get(&current) {
        path.push(step.clone());
        current = step.from;
    }
    path.reverse();
    path
}

/// Returns the cycle that `step` closes when its end lies on the path to its start:
/// the CIs from the end around to the end again.
fn cycle_through(seen: &HashMap<i64, (u32, Option<Step>)>, step: &Step) -> Option<Vec<i64>> {
    let mut chain = vec![step.from];
    let mut current = step.from;
    while current != step.to {
        let (_, Some(previous)) = seen.get(&current)? else {
            return None;
        };
        current = previous.from;
        chain.push(current);
    }
    chain.reverse();
    chain.push(step.to);
    Some(chain)
}

/// Sorts the CIs of a cycle, so that the same cycle met twice is kept once.
fn canonical(cycle: &[i64]) -> Vec<i64> {
    let mut ids = cycle.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Finds a chain of active `kind` relationships from CI `from` to CI `to`, following
/// each from source to target. Returns the CI ids along it, or `None`.
pub async fn path_between<C: ConnectionTrait>(
    db: &C,
    kind: &str,
    from: i64,
    to: i64,
) -> Result<Option<Vec<i64>>, Error> {
    let follow = Walk {
        target_to_source: Vec::new(),
        source_to_target: vec![kind.to_owned()],
    };
    // A containment chain deeper than this is not plausible; the bound keeps a broken
    // graph from costing unbounded queries.
    let result = walk(db, &[from], &follow, 64).await?;
    Ok(result.reached.iter().find(|hit| hit.ci == to).map(|hit| {
        let mut ids = vec![from];
        ids.extend(hit.path.iter().map(|step| step.to));
        ids
    }))
}
