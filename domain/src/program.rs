//! The lifecycle of a home exercise program (CarePlan) and of each prescribed exercise
//! (exercise ServiceRequest): which status changes are allowed, with `now` passed in.
//! A prescription is never edited once active: a change of dose or schedule is a new
//! prescription that replaces the old one, which is revoked.

use jiff::Timestamp;

use crate::dose::Dose;
use crate::schedule::Schedule;

/// Status of a program or a prescription (the FHIR RequestStatus codes used here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Draft,
    Active,
    OnHold,
    Completed,
    Revoked,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::OnHold => "on-hold",
            Status::Completed => "completed",
            Status::Revoked => "revoked",
        }
    }

    pub fn from_code(code: &str) -> Option<Status> {
        match code {
            "draft" => Some(Status::Draft),
            "active" => Some(Status::Active),
            "on-hold" => Some(Status::OnHold),
            "completed" => Some(Status::Completed),
            "revoked" => Some(Status::Revoked),
            _ => None,
        }
    }

    /// Completed and revoked are final.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Revoked)
    }

    /// Whether `self -> to` is allowed: draft -> active -> on-hold -> active, and from
    /// any non-final status to completed (not from draft) or revoked.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Draft, Active)
                | (Active, OnHold)
                | (OnHold, Active)
                | (Active | OnHold, Completed)
                | (Draft | Active | OnHold, Revoked)
        )
    }
}

/// Why a lifecycle change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("a {} program or prescription cannot become {}", .from.code(), .to.code())]
    Transition { from: Status, to: Status },
    #[error("a program needs at least one prescribed exercise to become active")]
    NoExercises,
    #[error(
        "an active prescription is not edited: prescribe the new dose or schedule as a new one that replaces it"
    )]
    EditedWhileActive,
    #[error("only an active or on-hold prescription can be replaced")]
    NotReplaceable,
}

/// A program's lifecycle, with the instants of its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    status: Status,
    activated: Option<Timestamp>,
    ended: Option<Timestamp>,
}

impl Default for Program {
    fn default() -> Self {
        Program::draft()
    }
}

impl Program {
    pub fn draft() -> Program {
        Program {
            status: Status::Draft,
            activated: None,
            ended: None,
        }
    }

    /// A program as stored (its instants may be unknown).
    pub fn restore(
        status: Status,
        activated: Option<Timestamp>,
        ended: Option<Timestamp>,
    ) -> Program {
        Program {
            status,
            activated,
            ended,
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn activated(&self) -> Option<Timestamp> {
        self.activated
    }

    pub fn ended(&self) -> Option<Timestamp> {
        self.ended
    }

    fn change(&mut self, to: Status, now: Timestamp) -> Result<(), LifecycleError> {
        if !self.status.can_become(to) {
            return Err(LifecycleError::Transition {
                from: self.status,
                to,
            });
        }
        if to == Status::Active && self.activated.is_none() {
            self.activated = Some(now);
        }
        if to.is_terminal() {
            self.ended = Some(now);
        }
        self.status = to;
        Ok(())
    }

    /// Draft to active; a program with no exercise cannot start.
    pub fn activate(&mut self, exercises: usize, now: Timestamp) -> Result<(), LifecycleError> {
        if exercises == 0 && self.status == Status::Draft {
            return Err(LifecycleError::NoExercises);
        }
        self.change(Status::Active, now)
    }

    pub fn hold(&mut self, now: Timestamp) -> Result<(), LifecycleError> {
        self.change(Status::OnHold, now)
    }

    pub fn resume(&mut self, now: Timestamp) -> Result<(), LifecycleError> {
        self.change(Status::Active, now)
    }

    pub fn complete(&mut self, now: Timestamp) -> Result<(), LifecycleError> {
        self.change(Status::Completed, now)
    }

    pub fn revoke(&mut self, now: Timestamp) -> Result<(), LifecycleError> {
        self.change(Status::Revoked, now)
    }

    /// Applies a requested status (as in an update of the CarePlan).
    pub fn set_status(
        &mut self,
        to: Status,
        exercises: usize,
        now: Timestamp,
    ) -> Result<(), LifecycleError> {
        match to {
            s if s == self.status => Ok(()),
            Status::Active => self.activate(exercises, now),
            other => self.change(other, now),
        }
    }
}

/// One prescribed exercise: which exercise (the canonical of its ActivityDefinition, with
/// version), the dose and the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prescription {
    exercise: String,
    dose: Dose,
    schedule: Schedule,
    status: Status,
}

impl Prescription {
    pub fn draft(exercise: &str, dose: Dose, schedule: Schedule) -> Prescription {
        Prescription {
            exercise: exercise.to_string(),
            dose,
            schedule,
            status: Status::Draft,
        }
    }

    pub fn restore(exercise: &str, dose: Dose, schedule: Schedule, status: Status) -> Prescription {
        Prescription {
            exercise: exercise.to_string(),
            dose,
            schedule,
            status,
        }
    }

    pub fn exercise(&self) -> &str {
        &self.exercise
    }

    pub fn dose(&self) -> &Dose {
        &self.dose
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Checks an update of this prescription to `next`: while a draft anything may
    /// change; afterwards only the status, along the lifecycle.
    pub fn check_update(&self, next: &Prescription) -> Result<(), LifecycleError> {
        let content_changed = self.exercise != next.exercise
            || self.dose != next.dose
            || self.schedule != next.schedule;
        if self.status != Status::Draft && content_changed {
            return Err(LifecycleError::EditedWhileActive);
        }
        if self.status != next.status && !self.status.can_become(next.status) {
            return Err(LifecycleError::Transition {
                from: self.status,
                to: next.status,
            });
        }
        Ok(())
    }

    pub fn set_status(&mut self, to: Status) -> Result<(), LifecycleError> {
        if to == self.status {
            return Ok(());
        }
        if !self.status.can_become(to) {
            return Err(LifecycleError::Transition {
                from: self.status,
                to,
            });
        }
        self.status = to;
        Ok(())
    }

    /// Replaces this prescription with a new dose and schedule: the new one is active,
    /// this one is revoked. Occurrences already done stay attributed to this one.
    pub fn replace(
        &mut self,
        dose: Dose,
        schedule: Schedule,
    ) -> Result<Prescription, LifecycleError> {
        if !matches!(self.status, Status::Active | Status::OnHold) {
            return Err(LifecycleError::NotReplaceable);
        }
        self.status = Status::Revoked;
        Ok(Prescription {
            exercise: self.exercise.clone(),
            dose,
            schedule,
            status: Status::Active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dose::{DoseParts, Repetitions, SetCount};
    use crate::schedule::{Days, Duration, ScheduleParts};
    use jiff::civil::date;
    use proptest::prelude::*;

    const ALL: [Status; 5] = [
        Status::Draft,
        Status::Active,
        Status::OnHold,
        Status::Completed,
        Status::Revoked,
    ];

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or_default()
    }

    fn dose(sets: u8, reps: u16) -> Dose {
        Dose::new(DoseParts {
            sets: SetCount::new(sets).ok(),
            repetitions: Repetitions::exactly(reps).ok(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn schedule(per_day: u8) -> Schedule {
        Schedule::new(ScheduleParts {
            per_day,
            days: Days::Every,
            times: Vec::new(),
            start: date(2027, 1, 4),
            duration: Duration::Weeks(6),
            count: None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn program_lifecycle() {
        let mut p = Program::draft();
        assert_eq!(p.activate(0, t(0)), Err(LifecycleError::NoExercises));
        assert_eq!(
            p.complete(t(0)),
            Err(LifecycleError::Transition {
                from: Status::Draft,
                to: Status::Completed
            })
        );
        assert_eq!(p.activate(3, t(1)), Ok(()));
        assert_eq!(p.activated(), Some(t(1)));
        assert_eq!(p.hold(t(2)), Ok(()));
        assert_eq!(p.resume(t(3)), Ok(()));
        // the first activation is kept
        assert_eq!(p.activated(), Some(t(1)));
        assert_eq!(p.complete(t(4)), Ok(()));
        assert_eq!(p.ended(), Some(t(4)));
        assert!(p.resume(t(5)).is_err());
        assert!(p.revoke(t(5)).is_err());
        assert_eq!(p.status(), Status::Completed);
        let mut q = Program::draft();
        assert_eq!(q.revoke(t(1)), Ok(()));
        assert_eq!(q.set_status(Status::Revoked, 1, t(2)), Ok(()));
    }

    #[test]
    fn codes_round_trip() {
        for s in ALL {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        assert_eq!(Status::from_code("entered-in-error"), None);
    }

    #[test]
    fn prescriptions_are_replaced_not_edited() {
        let mut rx = Prescription::draft(
            "http://example.org/ActivityDefinition/quad-sets|1.0",
            dose(3, 10),
            schedule(2),
        );
        // a draft may be edited
        let edited = Prescription::draft(rx.exercise(), dose(3, 12), schedule(2));
        assert_eq!(rx.check_update(&edited), Ok(()));
        assert!(
            rx.replace(dose(3, 12), schedule(2)).is_err(),
            "a draft is edited, not replaced"
        );
        assert_eq!(rx.set_status(Status::Active), Ok(()));
        let edited = Prescription::restore(rx.exercise(), dose(3, 12), schedule(2), Status::Active);
        assert_eq!(
            rx.check_update(&edited),
            Err(LifecycleError::EditedWhileActive)
        );
        let held = Prescription::restore(rx.exercise(), dose(3, 10), schedule(2), Status::OnHold);
        assert_eq!(rx.check_update(&held), Ok(()));
        let new = rx
            .replace(dose(4, 12), schedule(1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rx.status(), Status::Revoked);
        assert_eq!(new.status(), Status::Active);
        assert_eq!(new.dose(), &dose(4, 12));
        assert_eq!(new.exercise(), rx.exercise());
        assert_eq!(
            rx.replace(dose(1, 1), schedule(1)),
            Err(LifecycleError::NotReplaceable)
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Activate(usize),
        Hold,
        Resume,
        Complete,
        Revoke,
    }

    proptest! {
        /// Whatever is asked, a program only moves along allowed edges, a final status
        /// never changes, and its instants are set once and in order.
        #[test]
        fn program_moves_only_along_the_lifecycle(ops in prop::collection::vec(
            prop_oneof![
                (0usize..3).prop_map(Op::Activate),
                Just(Op::Hold), Just(Op::Resume), Just(Op::Complete), Just(Op::Revoke)
            ], 0..20)) {
            let mut p = Program::draft();
            for (i, op) in ops.iter().enumerate() {
                let before = p.clone();
                let now = t(i as i64);
                let r = match op {
                    Op::Activate(n) => p.activate(*n, now),
                    Op::Hold => p.hold(now),
                    Op::Resume => p.resume(now),
                    Op::Complete => p.complete(now),
                    Op::Revoke => p.revoke(now),
                };
                match r {
                    Ok(()) => prop_assert!(before.status().can_become(p.status())),
                    Err(_) => prop_assert_eq!(&before, &p),
                }
                if before.status().is_terminal() {
                    prop_assert_eq!(&before, &p);
                }
                if let (Some(a), Some(e)) = (p.activated(), p.ended()) {
                    prop_assert!(a <= e);
                }
            }
        }
    }
}
