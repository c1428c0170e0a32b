//! A referral to the clinic (a Task fulfilling a referral ServiceRequest): its lifecycle,
//! who may move it, when a reason must be given and the business status each step
//! reports back to the referrer.
//!
//! The referrer (an EHR) creates the referral `requested`; the clinic accepts or rejects
//! it, starts it, puts it on hold, fails or completes it; the referrer cancels it or marks
//! it entered in error. The server starts a referral when its home exercise program
//! starts and completes it when the program ends. Rejected, failed, cancelled and
//! entered-in-error referrals are closed; a completed one is final: further work needs a
//! new referral.

/// Where a referral stands: the statuses of the Physical Activity IG's referral Task
/// (FHIR task-status without draft, received and ready).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Sent by the referrer; the clinic has not answered yet.
    Requested,
    /// The clinic will take the patient on.
    Accepted,
    /// The clinic will not take the patient on.
    Rejected,
    /// The patient's program has started.
    InProgress,
    /// Paused by the clinic (the patient is unwell, away, ...).
    OnHold,
    /// The clinic could not carry the referral out.
    Failed,
    /// Done: the program ended and its results were returned.
    Completed,
    /// Withdrawn by the referrer.
    Cancelled,
    /// Sent by mistake (marked by the referrer).
    EnteredInError,
}

/// Every status, in lifecycle order.
pub const STATUSES: [Status; 9] = [
    Status::Requested,
    Status::Accepted,
    Status::Rejected,
    Status::InProgress,
    Status::OnHold,
    Status::Failed,
    Status::Completed,
    Status::Cancelled,
    Status::EnteredInError,
];

impl Status {
    /// The FHIR task-status code.
    pub fn code(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::InProgress => "in-progress",
            Status::OnHold => "on-hold",
            Status::Failed => "failed",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::EnteredInError => "entered-in-error",
        }
    }

    /// The status of a FHIR task-status code; `None` for the codes a referral does not
    /// use (draft, received, ready) and for anything else.
    pub fn from_code(code: &str) -> Option<Status> {
        STATUSES.into_iter().find(|s| s.code() == code)
    }

    /// Whether the status never changes again: rejected, failed, completed, cancelled
    /// and entered-in-error.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Rejected
                | Status::Failed
                | Status::Completed
                | Status::Cancelled
                | Status::EnteredInError
        )
    }
}

/// Who changes a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The clinic: the referral's performer (`owner`).
    Clinic,
    /// The referrer (`requester`).
    Referrer,
    /// The server itself, when a program starts or ends.
    Server,
    /// Not known (no authorization yet): may make any move the clinic or the referrer
    /// could make, but not the server's own moves.
    Unknown,
}

impl Actor {
    /// The actor in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Actor::Clinic => "the clinic",
            Actor::Referrer => "the referrer",
            Actor::Server => "the server",
            Actor::Unknown => "an unidentified user",
        }
    }
}

/// A status that cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a new referral Task is requested, not {}", .status.code())]
    Initial { status: Status },
    #[error("a referral Task cannot go from {} to {}", .from.code(), .to.code())]
    NotAllowed { from: Status, to: Status },
    #[error("{} cannot move a referral Task from {} to {}", .actor.describe(), .from.code(), .to.code())]
    NotBy {
        actor: Actor,
        from: Status,
        to: Status,
    },
    #[error("a referral Task with status {} is closed: its status does not change", .status.code())]
    Closed { status: Status },
    #[error("a completed referral Task is final; further work needs a new Task")]
    Completed,
}

/// Checks the status of a new referral: always requested.
pub fn check_initial(status: Status) -> Result<(), TransitionError> {
    match status {
        Status::Requested => Ok(()),
        status => Err(TransitionError::Initial { status }),
    }
}

/// Who sets a referral to `to` (requested is only ever the initial status).
fn setter(to: Status) -> Option<Actor> {
    use Status::*;
    match to {
        Requested => None,
        Accepted | Rejected | InProgress | OnHold | Failed | Completed => Some(Actor::Clinic),
        Cancelled | EnteredInError => Some(Actor::Referrer),
    }
}

/// The moves of the clinic and the referrer.
fn is_move(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Requested, Accepted | Rejected | Cancelled | EnteredInError)
            | (
                Accepted,
                InProgress | OnHold | Failed | Completed | Cancelled | EnteredInError
            )
            | (
                InProgress,
                OnHold | Failed | Completed | Cancelled | EnteredInError
            )
            | (OnHold, InProgress | Failed | Cancelled | EnteredInError)
    )
}

/// The server's moves: it starts a referral when its program starts (accepting it
/// implicitly, or resuming it) and completes it when the program ends.
fn is_server_move(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Requested | Accepted | OnHold, InProgress) | (Accepted | InProgress | OnHold, Completed)
    )
}

/// Whether `actor` may change a referral from `from` to `to`.
///
/// An update that keeps the status (`from == to`) is an edit of the content and is
/// allowed to anyone, except on a completed referral, which is frozen: this function
/// is the one check of an update, edit or move. Otherwise the clinic sets accepted,
/// rejected, in-progress, on-hold, failed and completed, the referrer cancelled and
/// entered-in-error, along the moves requested -> accepted | rejected | cancelled |
/// entered-in-error; accepted -> in-progress | on-hold | failed | completed | cancelled |
/// entered-in-error; in-progress -> on-hold | failed | completed | cancelled |
/// entered-in-error; on-hold -> in-progress | failed | cancelled | entered-in-error. The
/// server moves requested, accepted or on-hold to in-progress and accepted, in-progress
/// or on-hold to completed, and nothing else. An unknown actor may make every move of
/// the clinic and the referrer.
pub fn transition(from: Status, to: Status, actor: Actor) -> Result<(), TransitionError> {
    if from == Status::Completed {
        return Err(TransitionError::Completed);
    }
    if from == to {
        return Ok(());
    }
    if from.is_terminal() {
        return Err(TransitionError::Closed { status: from });
    }
    let general = is_move(from, to);
    let server = is_server_move(from, to);
    let allowed = match actor {
        Actor::Server => server,
        Actor::Unknown => general,
        Actor::Clinic | Actor::Referrer => general && setter(to) == Some(actor),
    };
    match (allowed, general || server) {
        (true, _) => Ok(()),
        (false, true) => Err(TransitionError::NotBy { actor, from, to }),
        (false, false) => Err(TransitionError::NotAllowed { from, to }),
    }
}

/// Whether a referral in `status` must give its reason, and may not give one otherwise
/// (Physical Activity IG invariant pa-taskrm-1): rejected, on-hold, failed and
/// cancelled.
pub fn requires_reason(status: Status) -> bool {
    matches!(
        status,
        Status::Rejected | Status::OnHold | Status::Failed | Status::Cancelled
    )
}

/// A reason given, or missing, against [`requires_reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error(
        "a referral Task with status {} says why (statusReason is required when rejected, on-hold, failed or cancelled)",
        .0.code()
    )]
    Missing(Status),
    #[error(
        "statusReason is not permitted with status {} (only when rejected, on-hold, failed or cancelled)",
        .0.code()
    )]
    NotPermitted(Status),
}

/// Checks that a reason is given exactly when `status` requires one.
pub fn check_reason(status: Status, given: bool) -> Result<(), ReasonError> {
    match (requires_reason(status), given) {
        (true, false) => Err(ReasonError::Missing(status)),
        (false, true) => Err(ReasonError::NotPermitted(status)),
        _ => Ok(()),
    }
}

/// The business status a referral in `status` reports to the referrer, as (code,
/// display) of the BSeR STU1 Task business status code system; `None` for on-hold and
/// entered-in-error, which keep the business status they had.
pub fn business_status(status: Status) -> Option<(&'static str, &'static str)> {
    use Status::*;
    Some(match status {
        Requested => ("2.0", "Service Request Created"),
        Accepted => ("3.0", "Service Request Accepted"),
        Rejected => ("4.0", "Service Request Declined"),
        InProgress => ("5.x", "Service Request Event State Change"),
        Cancelled | Failed => ("6.0", "Service Request Fulfillment Cancelled"),
        Completed => ("7.0", "Service Request Fulfillment Completed"),
        OnHold | EnteredInError => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn codes_round_trip_and_the_other_task_statuses_are_not_ours() {
        for s in STATUSES {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        for code in ["draft", "received", "ready", "active", ""] {
            assert_eq!(Status::from_code(code), None, "{code}");
        }
        assert_eq!(InProgress.code(), "in-progress");
        assert_eq!(EnteredInError.code(), "entered-in-error");
    }

    #[test]
    fn a_new_referral_is_requested() {
        assert!(check_initial(Requested).is_ok());
        for s in STATUSES.into_iter().filter(|s| *s != Requested) {
            assert_eq!(
                check_initial(s),
                Err(TransitionError::Initial { status: s })
            );
        }
        assert_eq!(
            check_initial(Accepted).map_err(|e| e.to_string()),
            Err("a new referral Task is requested, not accepted".to_string())
        );
    }

    /// Every move of the clinic and the referrer, with who makes it.
    const MOVES: &[(Status, Status, Actor)] = &[
        (Requested, Accepted, Actor::Clinic),
        (Requested, Rejected, Actor::Clinic),
        (Requested, Cancelled, Actor::Referrer),
        (Requested, EnteredInError, Actor::Referrer),
        (Accepted, InProgress, Actor::Clinic),
        (Accepted, OnHold, Actor::Clinic),
        (Accepted, Failed, Actor::Clinic),
        (Accepted, Completed, Actor::Clinic),
        (Accepted, Cancelled, Actor::Referrer),
        (Accepted, EnteredInError, Actor::Referrer),
        (InProgress, OnHold, Actor::Clinic),
        (InProgress, Failed, Actor::Clinic),
        (InProgress, Completed, Actor::Clinic),
        (InProgress, Cancelled, Actor::Referrer),
        (InProgress, EnteredInError, Actor::Referrer),
        (OnHold, InProgress, Actor::Clinic),
        (OnHold, Failed, Actor::Clinic),
        (OnHold, Cancelled, Actor::Referrer),
        (OnHold, EnteredInError, Actor::Referrer),
    ];

    const SERVER_MOVES: &[(Status, Status)] = &[
        (Requested, InProgress),
        (Accepted, InProgress),
        (OnHold, InProgress),
        (Accepted, Completed),
        (InProgress, Completed),
        (OnHold, Completed),
    ];

    #[test]
    fn every_move_is_made_by_its_actor_and_an_unknown_one() {
        for &(from, to, by) in MOVES {
            assert_eq!(transition(from, to, by), Ok(()), "{from:?} -> {to:?}");
            assert_eq!(
                transition(from, to, Actor::Unknown),
                Ok(()),
                "{from:?} -> {to:?}"
            );
            let other = match by {
                Actor::Clinic => Actor::Referrer,
                _ => Actor::Clinic,
            };
            assert_eq!(
                transition(from, to, other),
                Err(TransitionError::NotBy {
                    actor: other,
                    from,
                    to
                }),
                "{from:?} -> {to:?} by {other:?}"
            );
        }
    }

    #[test]
    fn the_server_only_starts_and_completes() {
        for &(from, to) in SERVER_MOVES {
            assert_eq!(
                transition(from, to, Actor::Server),
                Ok(()),
                "{from:?} -> {to:?}"
            );
        }
        for &(from, to, _) in MOVES {
            if !SERVER_MOVES.contains(&(from, to)) {
                assert!(
                    transition(from, to, Actor::Server).is_err(),
                    "{from:?} -> {to:?}"
                );
            }
        }
        // the server's own moves are not the clinic's, nor an unknown actor's
        for by in [Actor::Clinic, Actor::Referrer, Actor::Unknown] {
            assert_eq!(
                transition(Requested, InProgress, by),
                Err(TransitionError::NotBy {
                    actor: by,
                    from: Requested,
                    to: InProgress
                })
            );
            assert!(transition(OnHold, Completed, by).is_err());
        }
    }

    #[test]
    fn every_other_move_is_refused() {
        let listed = |from, to| {
            MOVES.iter().any(|m| (m.0, m.1) == (from, to)) || SERVER_MOVES.contains(&(from, to))
        };
        let mut refused = 0;
        for from in STATUSES {
            for to in STATUSES {
                if from == to || listed(from, to) {
                    continue;
                }
                for by in [
                    Actor::Clinic,
                    Actor::Referrer,
                    Actor::Server,
                    Actor::Unknown,
                ] {
                    assert!(
                        transition(from, to, by).is_err(),
                        "{from:?} -> {to:?} by {by:?}"
                    );
                }
                refused += 1;
            }
        }
        // 9 x 8 moves between different statuses, 19 + 2 (server only) allowed
        assert_eq!(refused, 72 - 21);
        assert_eq!(
            transition(Accepted, Requested, Actor::Unknown),
            Err(TransitionError::NotAllowed {
                from: Accepted,
                to: Requested
            })
        );
        assert_eq!(
            transition(Requested, OnHold, Actor::Clinic),
            Err(TransitionError::NotAllowed {
                from: Requested,
                to: OnHold
            })
        );
        assert_eq!(
            transition(Rejected, Accepted, Actor::Clinic),
            Err(TransitionError::Closed { status: Rejected })
        );
        assert_eq!(
            transition(Cancelled, InProgress, Actor::Server),
            Err(TransitionError::Closed { status: Cancelled })
        );
        assert_eq!(
            transition(EnteredInError, Requested, Actor::Unknown),
            Err(TransitionError::Closed {
                status: EnteredInError
            })
        );
    }

    #[test]
    fn an_edit_keeps_the_status_except_on_a_completed_referral() {
        for s in STATUSES.into_iter().filter(|s| *s != Completed) {
            for by in [
                Actor::Clinic,
                Actor::Referrer,
                Actor::Server,
                Actor::Unknown,
            ] {
                assert_eq!(transition(s, s, by), Ok(()), "{s:?} by {by:?}");
            }
        }
        for to in STATUSES {
            assert_eq!(
                transition(Completed, to, Actor::Unknown),
                Err(TransitionError::Completed)
            );
        }
        assert_eq!(
            TransitionError::Completed.to_string(),
            "a completed referral Task is final; further work needs a new Task"
        );
        assert_eq!(
            TransitionError::NotBy {
                actor: Actor::Referrer,
                from: Requested,
                to: Accepted
            }
            .to_string(),
            "the referrer cannot move a referral Task from requested to accepted"
        );
    }

    #[test]
    fn a_reason_is_given_exactly_when_required() {
        let required: Vec<Status> = STATUSES
            .into_iter()
            .filter(|s| requires_reason(*s))
            .collect();
        assert_eq!(required, [Rejected, OnHold, Failed, Cancelled]);
        for s in STATUSES {
            let needed = requires_reason(s);
            assert_eq!(check_reason(s, needed), Ok(()), "{s:?}");
            let wrong = check_reason(s, !needed);
            if needed {
                assert_eq!(wrong, Err(ReasonError::Missing(s)));
            } else {
                assert_eq!(wrong, Err(ReasonError::NotPermitted(s)));
            }
        }
        assert!(
            ReasonError::NotPermitted(Accepted)
                .to_string()
                .contains("not permitted with status accepted")
        );
    }

    #[test]
    fn business_statuses_follow_bser() {
        let expected = [
            (Requested, Some("2.0")),
            (Accepted, Some("3.0")),
            (Rejected, Some("4.0")),
            (InProgress, Some("5.x")),
            (OnHold, None),
            (Failed, Some("6.0")),
            (Completed, Some("7.0")),
            (Cancelled, Some("6.0")),
            (EnteredInError, None),
        ];
        for (s, code) in expected {
            assert_eq!(business_status(s).map(|b| b.0), code, "{s:?}");
        }
        assert_eq!(
            business_status(Rejected),
            Some(("4.0", "Service Request Declined"))
        );
        assert_eq!(
            business_status(Completed),
            Some(("7.0", "Service Request Fulfillment Completed"))
        );
    }
}
