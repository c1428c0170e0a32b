//! One scheduled occurrence of a prescribed exercise (a Task): its lifecycle and what the
//! patient reports when doing it.

use std::fmt;

/// Where an occurrence stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Due (or due later); nothing reported yet.
    Requested,
    /// Done, with what the patient reported.
    Completed,
    /// Not done: missed (its window passed) or the patient could not do it.
    Failed,
    /// No longer wanted: the program or the prescription changed.
    Cancelled,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn from_code(code: &str) -> Option<Status> {
        Some(match code {
            "requested" => Status::Requested,
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            _ => return None,
        })
    }
}

/// A change of status that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an exercise occurrence cannot go from {from} to {to}")]
    NotAllowed {
        from: &'static str,
        to: &'static str,
    },
    #[error("a completed exercise occurrence is final: it cannot be changed")]
    Final,
    #[error("a cancelled exercise occurrence cannot be changed")]
    Cancelled,
}

/// Whether an occurrence may go from `from` to `to`: requested becomes completed,
/// failed (missed, or could not do it) or cancelled; a missed one may still be
/// completed late. Completed and cancelled ones are final.
pub fn transition(from: Status, to: Status) -> Result<(), TransitionError> {
    use Status::*;
    match (from, to) {
        (Requested, Requested | Completed | Failed | Cancelled) => Ok(()),
        (Failed, Completed | Failed) => Ok(()),
        (Completed, _) => Err(TransitionError::Final),
        (Cancelled, _) => Err(TransitionError::Cancelled),
        (from, to) => Err(TransitionError::NotAllowed {
            from: from.code(),
            to: to.code(),
        }),
    }
}

/// A score from 0 to 10 (pain: LOINC 72514-3; difficulty: 0 very easy, 10 could not be
/// harder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("a score is from 0 to 10, not {0}")]
    Score(i64),
    #[error("sets done are from 0 to {max}, not {value}")]
    Sets { value: i64, max: u8 },
    #[error("repetitions done are from 0 to {max}, not {value}")]
    Repetitions { value: i64, max: u16 },
    #[error("repetitions are given for {reps} sets but {sets} sets were done")]
    SetsMismatch { reps: usize, sets: u8 },
    #[error("the note has {0} characters; at most {MAX_NOTE} are kept")]
    NoteTooLong(usize),
}

impl Score {
    pub fn new(v: i64) -> Result<Score, ReportError> {
        u8::try_from(v)
            .ok()
            .filter(|v| *v <= 10)
            .map(Score)
            .ok_or(ReportError::Score(v))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/10", self.0)
    }
}

/// Most sets a report may state.
pub const MAX_SETS: u8 = 20;
/// Most repetitions in one set (or in all, when given once).
pub const MAX_REPS: u16 = 1000;
/// Longest note kept.
pub const MAX_NOTE: usize = 2000;

/// What the patient reports for a done occurrence. Each part is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    sets_done: Option<u8>,
    /// Repetitions per set (one value: per set when sets are given, else in all).
    reps_done: Vec<u16>,
    pain: Option<Score>,
    difficulty: Option<Score>,
    note: Option<String>,
}

/// The raw parts of a report, checked by [`Report::new`].
#[derive(Debug, Clone, Default)]
pub struct ReportParts {
    pub sets_done: Option<i64>,
    pub reps_done: Vec<i64>,
    pub pain: Option<i64>,
    pub difficulty: Option<i64>,
    pub note: Option<String>,
}

impl Report {
    /// Checks every part; all problems are returned.
    pub fn new(p: ReportParts) -> Result<Report, Vec<ReportError>> {
        let mut errors = Vec::new();
        let sets_done =
            p.sets_done
                .and_then(|v| match u8::try_from(v).ok().filter(|v| *v <= MAX_SETS) {
                    Some(s) => Some(s),
                    None => {
                        errors.push(ReportError::Sets {
                            value: v,
                            max: MAX_SETS,
                        });
                        None
                    }
                });
        let mut reps_done = Vec::new();
        for v in p.reps_done {
            match u16::try_from(v).ok().filter(|v| *v <= MAX_REPS) {
                Some(r) => reps_done.push(r),
                None => errors.push(ReportError::Repetitions {
                    value: v,
                    max: MAX_REPS,
                }),
            }
        }
        if let Some(sets) = sets_done
            && reps_done.len() > 1
            && reps_done.len() != usize::from(sets)
        {
            errors.push(ReportError::SetsMismatch {
                reps: reps_done.len(),
                sets,
            });
        }
        let mut score = |v: Option<i64>| {
            v.and_then(|v| match Score::new(v) {
                Ok(s) => Some(s),
                Err(e) => {
                    errors.push(e);
                    None
                }
            })
        };
        let pain = score(p.pain);
        let difficulty = score(p.difficulty);
        if let Some(n) = &p.note
            && n.chars().count() > MAX_NOTE
        {
            errors.push(ReportError::NoteTooLong(n.chars().count()));
        }
        if errors.is_empty() {
            Ok(Report {
                sets_done,
                reps_done,
                pain,
                difficulty,
                note: p.note,
            })
        } else {
            Err(errors)
        }
    }

    pub fn pain(&self) -> Option<Score> {
        self.pain
    }

    pub fn difficulty(&self) -> Option<Score> {
        self.difficulty
    }

    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    pub fn sets_done(&self) -> Option<u8> {
        self.sets_done
    }

    pub fn reps_done(&self) -> &[u16] {
        &self.reps_done
    }

    /// Sets x repetitions done, the numerator of dose adherence, given the prescribed
    /// sets and repetitions per set. A report that states neither sets nor repetitions
    /// counts as the prescribed dose (completing says it was done).
    pub fn done_volume(&self, prescribed_sets: u8, prescribed_reps: u16) -> u32 {
        let reps: u32 = self.reps_done.iter().map(|r| u32::from(*r)).sum();
        match (self.sets_done, self.reps_done.len()) {
            (None, 0) => u32::from(prescribed_sets) * u32::from(prescribed_reps),
            (Some(sets), 0) => u32::from(sets) * u32::from(prescribed_reps),
            (Some(sets), 1) => u32::from(sets) * reps,
            (None, 1) => reps,
            // repetitions per set
            (_, _) => reps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        use Status::*;
        assert!(transition(Requested, Completed).is_ok());
        assert!(transition(Requested, Failed).is_ok());
        assert!(transition(Requested, Cancelled).is_ok());
        assert!(transition(Failed, Completed).is_ok(), "late completion");
        assert_eq!(transition(Completed, Failed), Err(TransitionError::Final));
        assert_eq!(
            transition(Completed, Completed),
            Err(TransitionError::Final)
        );
        assert_eq!(
            transition(Cancelled, Completed),
            Err(TransitionError::Cancelled)
        );
        assert!(transition(Failed, Requested).is_err());
        assert!(transition(Failed, Cancelled).is_err());
        for s in [Requested, Completed, Failed, Cancelled] {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn reports_are_checked_and_give_the_volume_done() {
        let r = Report::new(ReportParts {
            sets_done: Some(3),
            reps_done: vec![10, 8, 6],
            pain: Some(3),
            difficulty: Some(5),
            note: Some("ok".into()),
        })
        .expect("valid");
        assert_eq!(r.done_volume(3, 10), 24);
        let r = Report::new(ReportParts {
            sets_done: Some(2),
            reps_done: vec![10],
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(r.done_volume(3, 10), 20);
        let r = Report::new(ReportParts::default()).expect("valid");
        assert_eq!(r.done_volume(3, 10), 30);
        let errors = Report::new(ReportParts {
            sets_done: Some(2),
            reps_done: vec![10, 10, 10, -1],
            pain: Some(11),
            difficulty: Some(-1),
            note: Some("x".repeat(MAX_NOTE + 1)),
        })
        .expect_err("invalid");
        assert_eq!(errors.len(), 5, "{errors:?}");
    }
}
