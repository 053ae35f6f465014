//! Approval decisions and deadlines. A decision is decided like any command: the round's
//! new status, and the transition it completes, are computed before the write job, and the
//! write checks that neither the request nor the record changed in between.

use chrono::{DateTime, Utc};
use tend_domain::{Actor, JournalEvent, Record};
use tend_store::approvals::{self, Round};
use tend_workflow::approval::{ApprovalStatus, expand, tally};
use tend_workflow::{Context, DeadlineAction, Rejection};

use crate::cascade::PendingWork;
use crate::commands::{Commands, MAX_CONFLICT_RETRIES, queue_work, replace_timers_of};
use crate::error::ApiError;

/// Name of the system actor whose roles take the transition a round completes, and who
/// writes deadline outcomes. The journal shows a decision's transition under the approver
/// who decided.
pub const APPROVAL_ACTOR: &str = "approvals";

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn parse(text: &str) -> Result<Decision, ApiError> {
        match text.trim() {
            "approve" => Ok(Decision::Approve),
            "reject" => Ok(Decision::Reject),
            other => Err(ApiError::bad_request(
                "invalid_decision",
                format!("unknown decision `{other}`: send `approve` or `reject`"),
                Some("decision"),
            )),
        }
    }

    fn status(self) -> ApprovalStatus {
        match self {
            Decision::Approve => ApprovalStatus::Approved,
            Decision::Reject => ApprovalStatus::Rejected,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// The effect of a round's end on the record: its new state, events and timers.
struct Completion {
    record: Record,
    events: Vec<JournalEvent>,
    entered_state: bool,
    timers: tend_workflow::Outcome,
}

impl Commands {
    /// Lists the group members of the serving definitions that are not active users: their
    /// votes in a board, or their share of a group, can never be cast.
    pub async fn group_warnings(&self) -> Result<Vec<String>, ApiError> {
        let set = self.engine.definitions();
        let users: std::collections::HashSet<String> = self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|user| user.active)
            .map(|user| user.name)
            .collect();
        let mut warnings = Vec::new();
        for (name, group) in &set.groups {
            for member in group.members.iter().filter(|m| !users.contains(*m)) {
                warnings.push(format!(
                    "group `{name}` lists `{member}`, who is not an active user, so approvals asked of them cannot be decided: add the user or remove the name from workflows/groups/"
                ));
            }
        }
        Ok(warnings)
    }

    /// Records `actor`'s decision on approval request `request_id` of record `number`.
    /// When the decision completes the round, the approved transition (or the definition's
    /// `on_reject` transition) is taken in the same write.
    pub async fn decide_approval(
        &self,
        actor: &Actor,
        number: &str,
        request_id: i64,
        decision: Decision,
        reason: &str,
    ) -> Result<Record, ApiError> {
        let reason = reason.trim();
        if decision == Decision::Reject && reason.is_empty() {
            return Err(ApiError::bad_request(
                "reason_required",
                "a rejection needs a reason: say in `reason` what would make the request acceptable",
                Some("reason"),
            ));
        }
        let mut attempt = 0;
        loop {
            let current = self.record_for_approver(actor, number).await?;
            let rounds = self.store.approval_rounds(current.id).await?;
            let Some(round) = rounds
                .iter()
                .find(|round| round.requests.iter().any(|r| r.id == request_id))
            else {
                return Err(ApiError::NotFound {
                    what: "approval request",
                    key: format!("{request_id} of {number}"),
                });
            };
            let request = round
                .requests
                .iter()
                .find(|r| r.id == request_id)
                .expect("the round was found by this request");
            if !request.users.contains(&actor.name) {
                return Err(ApiError::Forbidden(format!(
                    "approval request {request_id} of {number} is asked of {}, and {} is not one of its approvers ({}); the members of a group are listed in workflows/groups/, and a round keeps the members it had when it was opened",
                    request.approver,
                    actor.name,
                    request.users.join(", ")
                )));
            }
            if !round.is_pending() || request.status != approvals::PENDING {
                return Err(ApiError::Duplicate(format!(
                    "approval request {request_id} of {number} is {} (round {} is {}), so the decision was not recorded",
                    request.status, round.round, round.status
                )));
            }
            let status = round_status_after(round, request_id, decision);
            let mut events = vec![JournalEvent::ApprovalDecided {
                round: round.round,
                approver: request.approver.clone(),
                decision: decision.as_str().to_owned(),
                reason: reason.to_owned(),
            }];
            let now = Utc::now();
            let completion = if status == ApprovalStatus::Pending {
                None
            } else {
                Some(self.complete(&current, round, status, reason, now).await?)
            };
            let (record_to_write, entered) = match &completion {
                Some(done) => {
                    events.extend(done.events.clone());
                    (done.record.clone(), done.entered_state)
                }
                None => {
                    let mut record = current.clone();
                    record.updated_at = now;
                    (record, false)
                }
            };
            let number_owned = number.to_owned();
            let actor_name = actor.name.clone();
            let decided = decision.status().as_str();
            let round_id = round.id;
            let round_status = status.as_str();
            let reason_owned = reason.to_owned();
            let (follow_ons, timers) = match completion {
                Some(mut done) => (
                    std::mem::take(&mut done.timers.follow_ons),
                    Some(done.timers),
                ),
                None => (Vec::new(), None),
            };
            let pending = PendingWork::encode(&events, &follow_ons, 0);
            let pinned = self.engine.pinned(&current).await?;
            let (set, definition) = (pinned.set.clone(), pinned.definition.clone());
            let result = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        let mut events = events;
                        approvals::decide_request(
                            tx,
                            &number_owned,
                            request_id,
                            decided,
                            &actor_name,
                            &reason_owned,
                            now,
                        )
                        .await?;
                        if round_status != approvals::PENDING {
                            approvals::complete_round(
                                tx,
                                &number_owned,
                                round_id,
                                round_status,
                                now,
                            )
                            .await?;
                        }
                        let clocks = crate::clocks::prepare(
                            tx,
                            &set,
                            &definition,
                            &record_to_write,
                            &events,
                            record_to_write.updated_at,
                        )
                        .await?;
                        events.extend(clocks.events.iter().cloned());
                        let record =
                            tend_store::update_record(tx, &record_to_write, &actor_name, &events)
                                .await?;
                        clocks.store(tx, &record).await?;
                        if entered && let Some(outcome) = &timers {
                            replace_timers_of(tx, &record, outcome).await?;
                        }
                        let queued = queue_work(tx, &record, pending.as_deref()).await?;
                        Ok((record, events, queued))
                    })
                })
                .await;
            match result {
                Ok((record, events, queued)) => {
                    self.after_commit(&record, &events, follow_ons, 0, queued)
                        .await;
                    return Ok(record);
                }
                Err(tend_store::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Loads a record for someone who may read it: staff see every record, a requester
    /// their own records and the records that asked them for an approval.
    pub async fn record_for_approver(
        &self,
        actor: &Actor,
        number: &str,
    ) -> Result<Record, ApiError> {
        match self.visible(actor, number).await {
            Err(ApiError::NotFound { .. }) => {
                let record = self.store.get_record(number).await?;
                let asked = match &record {
                    Some(record) => self
                        .store
                        .approval_rounds(record.id)
                        .await?
                        .iter()
                        .flat_map(|round| &round.requests)
                        .any(|request| request.users.contains(&actor.name)),
                    None => false,
                };
                match record {
                    Some(record) if asked => Ok(record),
                    _ => Err(ApiError::NotFound {
                        what: "record",
                        key: number.to_owned(),
                    }),
                }
            }
            other => other,
        }
    }

    /// Decides what the end of `round` with `status` does: the approved transition, the
    /// `on_reject` transition, or nothing. A transition that can no longer be taken (the
    /// record moved, a guard now denies it) is journaled and the round still ends.
    async fn complete(
        &self,
        current: &Record,
        round: &Round,
        status: ApprovalStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Completion, ApiError> {
        let pinned = self.engine.pinned(current).await?;
        let links = self.linked_records(current).await?;
        let system = Actor::system(APPROVAL_ACTOR);
        let context = Context {
            definition: &pinned.definition,
            version: &pinned.set.version,
            rules: pinned.rules.as_ref(),
            actor: &system,
            now,
            groups: &pinned.set.groups,
            links: &links,
            cmdb: None,
        };
        let mut events = vec![JournalEvent::ApprovalCompleted {
            round: round.round,
            transition: round.transition.clone(),
            outcome: status.as_str().to_owned(),
        }];
        let step = pinned.definition.transition(&round.transition);
        let next = match status {
            ApprovalStatus::Approved => Some((round.transition.clone(), round.comment.clone())),
            _ => step
                .and_then(|step| step.approval.as_ref())
                .and_then(|approval| approval.on_reject.clone())
                .map(|name| {
                    let comment = if reason.is_empty() {
                        format!("Approval of `{}` was {}", round.transition, status.as_str())
                    } else {
                        format!("Approval of `{}` was rejected: {reason}", round.transition)
                    };
                    (name, Some(comment))
                }),
        };
        let mut record = current.clone();
        record.updated_at = now;
        let mut entered_state = false;
        let mut timers = tend_workflow::Outcome {
            record: current.clone(),
            events: Vec::new(),
            follow_up: None,
            timers: Vec::new(),
            approval: None,
            follow_ons: Vec::new(),
        };
        if let Some((name, comment)) = next {
            let decided =
                match tend_workflow::execute_approved(&context, current, &name, comment.as_deref())
                {
                    // The window may have changed, or another change may have been scheduled,
                    // since the round was opened: check it again before the record moves.
                    Ok(outcome) => match &pinned.definition.schedule {
                        Some(schedule) if schedule.check_on.contains(&name) => self
                            .check_schedule(schedule, &pinned.set, &outcome.record, &name)
                            .await
                            .map(|()| outcome)
                            .map_err(|error| match error {
                                ApiError::Rejected(rejection) => rejection,
                                other => Rejection::InvalidInput {
                                    field: "schedule".into(),
                                    message: other.to_string(),
                                },
                            }),
                        _ => Ok(outcome),
                    },
                    Err(rejection) => Err(rejection),
                };
            match decided {
                Ok(outcome) => {
                    let mut outcome = outcome;
                    crate::calendars::count_business_time(
                        &pinned.set,
                        &pinned.definition,
                        &mut outcome,
                    );
                    events.extend(outcome.events.iter().cloned());
                    record = outcome.record.clone();
                    entered_state = outcome.entered_state();
                    timers = outcome;
                }
                Err(rejection) => events.push(JournalEvent::FollowOnFailed {
                    rule: APPROVAL_ACTOR.to_owned(),
                    effect: format!("transition `{name}`"),
                    error: rejection.to_string(),
                }),
            }
        }
        Ok(Completion {
            record,
            events,
            entered_state,
            timers,
        })
    }

    /// Handles the rounds whose deadline passed: escalates, approves or rejects each one as
    /// its definition sets. Returns how many rounds it handled.
    pub async fn handle_approval_deadlines(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let due = self
            .store
            .write(move |tx| {
                Box::pin(async move { approvals::claim_due_rounds(tx, now, 100).await })
            })
            .await?;
        let mut handled = 0;
        for round in due {
            match self.handle_deadline(&round.number, round.round, now).await {
                Ok(()) => handled += 1,
                Err(error) => tracing::warn!(
                    record.number = round.number,
                    round = round.round,
                    %error,
                    "handling an approval deadline failed"
                ),
            }
        }
        Ok(handled)
    }

    async fn handle_deadline(
        &self,
        number: &str,
        round_number: i64,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let mut attempt = 0;
        loop {
            let current = self.load_record(number).await?;
            let rounds = self.store.approval_rounds(current.id).await?;
            let Some(round) = rounds.iter().find(|r| r.round == round_number) else {
                return Ok(());
            };
            if !round.is_pending() {
                return Ok(());
            }
            let pinned = self.engine.pinned(&current).await?;
            let Some(approval) = pinned
                .definition
                .transition(&round.transition)
                .and_then(|step| step.approval.clone())
            else {
                return Ok(());
            };
            let mut record = current.clone();
            record.updated_at = now;
            let mut events = Vec::new();
            let mut escalation = Vec::new();
            let mut completion = None;
            let mut follow_ons = Vec::new();
            match approval.on_deadline {
                DeadlineAction::Escalate => {
                    let mut excluded = Vec::new();
                    if !approval.allow_self_approval {
                        excluded.push(round.requested_by.as_str());
                        if let Some(requester) = current.field_str("requester") {
                            excluded.push(requester);
                        }
                    }
                    let slots = expand(&approval.escalate_to, &pinned.set.groups, &excluded)
                        .map_err(|message| {
                            ApiError::Rejected(Rejection::ApprovalUnavailable {
                                transition: round.transition.clone(),
                                message,
                            })
                        })?;
                    events.push(JournalEvent::ApprovalEscalated {
                        round: round.round,
                        approvers: slots.iter().map(|s| s.approver.clone()).collect(),
                    });
                    escalation = slots.into_iter().map(|s| (s.approver, s.users)).collect();
                }
                DeadlineAction::Approve | DeadlineAction::Reject => {
                    let status = if approval.on_deadline == DeadlineAction::Approve {
                        ApprovalStatus::Approved
                    } else {
                        ApprovalStatus::Rejected
                    };
                    let done = self
                        .complete(&current, round, status, "the deadline passed", now)
                        .await?;
                    events.extend(done.events.clone());
                    record = done.record.clone();
                    follow_ons = done.timers.follow_ons.clone();
                    completion = Some((status, done));
                }
            }
            let number_owned = number.to_owned();
            let round_id = round.id;
            let record_id = current.id;
            let pending = PendingWork::encode(&events, &follow_ons, 0);
            let (set, definition) = (pinned.set.clone(), pinned.definition.clone());
            let result = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        let mut events = events;
                        match &completion {
                            Some((status, _)) => {
                                approvals::complete_round(
                                    tx,
                                    &number_owned,
                                    round_id,
                                    status.as_str(),
                                    now,
                                )
                                .await?
                            }
                            None => {
                                approvals::escalate_round(tx, round_id, record_id, &escalation)
                                    .await?
                            }
                        }
                        let clocks = crate::clocks::prepare(
                            tx,
                            &set,
                            &definition,
                            &record,
                            &events,
                            record.updated_at,
                        )
                        .await?;
                        events.extend(clocks.events.iter().cloned());
                        let record =
                            tend_store::update_record(tx, &record, APPROVAL_ACTOR, &events).await?;
                        clocks.store(tx, &record).await?;
                        if let Some((_, done)) = &completion
                            && done.entered_state
                        {
                            replace_timers_of(tx, &record, &done.timers).await?;
                        }
                        let queued = queue_work(tx, &record, pending.as_deref()).await?;
                        Ok((record, events, queued))
                    })
                })
                .await;
            match result {
                Ok((record, events, queued)) => {
                    self.after_commit(&record, &events, follow_ons, 0, queued)
                        .await;
                    return Ok(());
                }
                Err(tend_store::Error::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// Returns the status of `round` once request `request_id` is decided. After an escalation the
/// first escalation approver to decide decides the round.
fn round_status_after(round: &Round, request_id: i64, decision: Decision) -> ApprovalStatus {
    if round.escalated {
        return decision.status();
    }
    let counting: Vec<_> = round.counting().collect();
    let decided = |status: ApprovalStatus| {
        counting
            .iter()
            .filter(|r| {
                if r.id == request_id {
                    decision.status() == status
                } else {
                    r.status == status.as_str()
                }
            })
            .count()
    };
    let required = usize::try_from(round.required).unwrap_or(usize::MAX);
    tally(
        required,
        counting.len(),
        decided(ApprovalStatus::Approved),
        decided(ApprovalStatus::Rejected),
    )
}
