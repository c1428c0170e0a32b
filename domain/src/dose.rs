//! The dose of one prescribed exercise: sets, repetitions, hold, rest, load, tempo, side
//! and target effort. Each part is a type that cannot hold an invalid value; `Dose`
//! puts them together and says them in words.

use std::fmt;

/// Why a dose value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoseError {
    #[error("sets must be between 1 and {max}")]
    Sets { max: u8 },
    #[error("repetitions must be between 1 and {max}")]
    Repetitions { max: u16 },
    #[error("a repetition range needs its minimum below its maximum")]
    RepetitionRange,
    #[error("a hold must be between 1 and {max} seconds")]
    Hold { max: u16 },
    #[error("rest must be between 0 and {max} seconds")]
    Rest { max: u16 },
    #[error("a load must be a positive amount up to {max} kg or lb")]
    Load { max: u32 },
    #[error("a resistance is named in 1 to 40 characters")]
    Resistance,
    #[error("a tempo is written like 3-1-3 (seconds down, pause, up), each 0 to 10")]
    Tempo,
    #[error("target effort (RPE) is 0 to 10")]
    Effort,
    #[error("a dose needs repetitions or a hold")]
    Empty,
}

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $repr:ty, $min:expr, $max:expr, $err:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($repr);

        impl $name {
            pub const MIN: $repr = $min;
            pub const MAX: $repr = $max;

            pub fn new(value: $repr) -> Result<Self, DoseError> {
                if (Self::MIN..=Self::MAX).contains(&value) {
                    Ok($name(value))
                } else {
                    Err($err)
                }
            }

            pub fn get(self) -> $repr {
                self.0
            }
        }
    };
}

bounded!(
    /// Number of sets: 1 to 20.
    SetCount, u8, 1, 20, DoseError::Sets { max: 20 }
);
bounded!(
    /// Repetitions in a set: 1 to 300.
    RepCount, u16, 1, 300, DoseError::Repetitions { max: 300 }
);
bounded!(
    /// Seconds a position is held: 1 to 600.
    HoldSeconds, u16, 1, 600, DoseError::Hold { max: 600 }
);
bounded!(
    /// Seconds of rest between sets: 0 to 1800.
    RestSeconds, u16, 0, 1800, DoseError::Rest { max: 1800 }
);
bounded!(
    /// Target effort on the Borg CR10 / RPE scale: 0 to 10.
    Effort, u8, 0, 10, DoseError::Effort
);

/// Repetitions: a number, or a range for the patient to work within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repetitions {
    Exactly(RepCount),
    Range { min: RepCount, max: RepCount },
}

impl Repetitions {
    pub fn exactly(n: u16) -> Result<Self, DoseError> {
        RepCount::new(n).map(Repetitions::Exactly)
    }

    pub fn range(min: u16, max: u16) -> Result<Self, DoseError> {
        let (min, max) = (RepCount::new(min)?, RepCount::new(max)?);
        if min < max {
            Ok(Repetitions::Range { min, max })
        } else {
            Err(DoseError::RepetitionRange)
        }
    }

    /// The repetitions a set is expected to have (the upper end of a range), for dose
    /// adherence.
    pub fn target(self) -> u16 {
        match self {
            Repetitions::Exactly(n) => n.get(),
            Repetitions::Range { max, .. } => max.get(),
        }
    }
}

/// Unit of a weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightUnit {
    Kilogram,
    Pound,
}

impl WeightUnit {
    /// The UCUM code.
    pub fn ucum(self) -> &'static str {
        match self {
            WeightUnit::Kilogram => "kg",
            WeightUnit::Pound => "[lb_av]",
        }
    }

    fn word(self) -> &'static str {
        match self {
            WeightUnit::Kilogram => "kg",
            WeightUnit::Pound => "lb",
        }
    }
}

/// External load: a weight, or a named resistance (a band colour, a cable setting).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Load {
    /// Tenths of the unit (2.5 kg is 25), so the value is exact.
    Weight {
        tenths: u32,
        unit: WeightUnit,
    },
    Resistance(String),
}

impl Load {
    const MAX_WEIGHT: u32 = 500;

    /// A weight given in tenths of its unit (0.1 to 500).
    pub fn weight_tenths(tenths: u32, unit: WeightUnit) -> Result<Self, DoseError> {
        if tenths == 0 || tenths > Self::MAX_WEIGHT * 10 {
            return Err(DoseError::Load {
                max: Self::MAX_WEIGHT,
            });
        }
        Ok(Load::Weight { tenths, unit })
    }

    pub fn resistance(name: &str) -> Result<Self, DoseError> {
        let name = name.trim();
        let len = name.chars().count();
        if len == 0 || len > 40 || name.chars().any(char::is_control) {
            return Err(DoseError::Resistance);
        }
        Ok(Load::Resistance(name.to_string()))
    }
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Load::Weight { tenths, unit } if tenths % 10 == 0 => {
                write!(f, "{} {}", tenths / 10, unit.word())
            }
            Load::Weight { tenths, unit } => {
                write!(f, "{}.{} {}", tenths / 10, tenths % 10, unit.word())
            }
            Load::Resistance(name) => f.write_str(name),
        }
    }
}

/// Tempo of a repetition in seconds: lowering, pause, lifting (`3-1-3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tempo {
    down: u8,
    pause: u8,
    up: u8,
}

impl Tempo {
    pub fn new(down: u8, pause: u8, up: u8) -> Result<Self, DoseError> {
        if down > 10 || pause > 10 || up > 10 || down + pause + up == 0 {
            return Err(DoseError::Tempo);
        }
        Ok(Tempo { down, pause, up })
    }

    pub fn parse(s: &str) -> Result<Self, DoseError> {
        let parts: Vec<&str> = s.trim().split('-').collect();
        match parts.as_slice() {
            [a, b, c] => {
                let n = |p: &str| p.parse::<u8>().map_err(|_| DoseError::Tempo);
                Tempo::new(n(a)?, n(b)?, n(c)?)
            }
            _ => Err(DoseError::Tempo),
        }
    }
}

impl fmt::Display for Tempo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.down, self.pause, self.up)
    }
}

/// Which side of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Left,
    Right,
    Both,
    Alternating,
}

impl Side {
    /// The code used in the dosage extension.
    pub fn code(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
            Side::Both => "both",
            Side::Alternating => "alternating",
        }
    }

    pub fn from_code(code: &str) -> Option<Side> {
        match code {
            "left" => Some(Side::Left),
            "right" => Some(Side::Right),
            "both" => Some(Side::Both),
            "alternating" => Some(Side::Alternating),
            _ => None,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Side::Left => "left side",
            Side::Right => "right side",
            Side::Both => "both sides",
            Side::Alternating => "alternating sides",
        }
    }
}

/// The dose of one exercise. At least repetitions or a hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dose {
    sets: SetCount,
    repetitions: Option<Repetitions>,
    hold: Option<HoldSeconds>,
    rest: Option<RestSeconds>,
    load: Option<Load>,
    tempo: Option<Tempo>,
    side: Option<Side>,
    effort: Option<Effort>,
}

/// The parts of a dose, to build one with [`Dose::new`].
#[derive(Debug, Clone, Default)]
pub struct DoseParts {
    pub sets: Option<SetCount>,
    pub repetitions: Option<Repetitions>,
    pub hold: Option<HoldSeconds>,
    pub rest: Option<RestSeconds>,
    pub load: Option<Load>,
    pub tempo: Option<Tempo>,
    pub side: Option<Side>,
    pub effort: Option<Effort>,
}

impl Dose {
    /// One set unless said otherwise; repetitions or a hold are required.
    pub fn new(parts: DoseParts) -> Result<Dose, DoseError> {
        if parts.repetitions.is_none() && parts.hold.is_none() {
            return Err(DoseError::Empty);
        }
        Ok(Dose {
            sets: parts.sets.unwrap_or(SetCount(1)),
            repetitions: parts.repetitions,
            hold: parts.hold,
            rest: parts.rest,
            load: parts.load,
            tempo: parts.tempo,
            side: parts.side,
            effort: parts.effort,
        })
    }

    pub fn parts(&self) -> DoseParts {
        DoseParts {
            sets: Some(self.sets),
            repetitions: self.repetitions,
            hold: self.hold,
            rest: self.rest,
            load: self.load.clone(),
            tempo: self.tempo,
            side: self.side,
            effort: self.effort,
        }
    }

    pub fn sets(&self) -> SetCount {
        self.sets
    }

    pub fn repetitions(&self) -> Option<Repetitions> {
        self.repetitions
    }

    pub fn hold(&self) -> Option<HoldSeconds> {
        self.hold
    }

    pub fn side(&self) -> Option<Side> {
        self.side
    }

    /// Sets × repetitions prescribed (repetitions count 1 for a hold-only exercise), the
    /// denominator of dose adherence.
    pub fn prescribed_volume(&self) -> u32 {
        u32::from(self.sets.get()) * u32::from(self.repetitions.map_or(1, Repetitions::target))
    }
}

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl fmt::Display for Dose {
    /// The dose in words: "3 sets of 10 repetitions, hold 5 seconds, left side".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sets = u32::from(self.sets.get());
        let mut parts = Vec::new();
        match self.repetitions {
            Some(Repetitions::Exactly(n)) => parts.push(format!(
                "{} of {}",
                plural(sets, "set", "sets"),
                plural(u32::from(n.get()), "repetition", "repetitions")
            )),
            Some(Repetitions::Range { min, max }) => parts.push(format!(
                "{} of {} to {} repetitions",
                plural(sets, "set", "sets"),
                min.get(),
                max.get()
            )),
            None => {}
        }
        if let Some(h) = self.hold {
            let hold = format!("hold {}", plural(u32::from(h.get()), "second", "seconds"));
            if self.repetitions.is_none() {
                // a hold-only exercise (a stretch): "hold 30 seconds, 3 times"
                let times = match sets {
                    1 => "once".to_string(),
                    2 => "twice".to_string(),
                    n => format!("{n} times"),
                };
                parts.push(format!("{hold}, {times}"));
            } else {
                parts.push(hold);
            }
        }
        if let Some(r) = self.rest {
            parts.push(format!(
                "rest {} between sets",
                plural(u32::from(r.get()), "second", "seconds")
            ));
        }
        if let Some(l) = &self.load {
            parts.push(format!("with {l}"));
        }
        if let Some(t) = self.tempo {
            parts.push(format!("tempo {t}"));
        }
        if let Some(s) = self.side {
            parts.push(s.words().to_string());
        }
        if let Some(e) = self.effort {
            parts.push(format!("effort {} out of 10", e.get()));
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dose(parts: DoseParts) -> Dose {
        Dose::new(parts).unwrap_or_else(|e| panic!("valid dose: {e}"))
    }

    #[test]
    fn bounded_values_refuse_out_of_range() {
        assert!(SetCount::new(0).is_err());
        assert!(SetCount::new(21).is_err());
        assert_eq!(SetCount::new(3).map(SetCount::get), Ok(3));
        assert!(RepCount::new(0).is_err());
        assert!(HoldSeconds::new(601).is_err());
        assert!(RestSeconds::new(0).is_ok());
        assert!(Effort::new(11).is_err());
        assert_eq!(Repetitions::range(12, 8), Err(DoseError::RepetitionRange));
        assert_eq!(Repetitions::range(8, 8), Err(DoseError::RepetitionRange));
        assert!(Load::weight_tenths(0, WeightUnit::Kilogram).is_err());
        assert!(Load::weight_tenths(5001, WeightUnit::Pound).is_err());
        assert!(Load::resistance("  ").is_err());
        assert!(Load::resistance(&"x".repeat(41)).is_err());
        assert!(Tempo::parse("3-1").is_err());
        assert!(Tempo::parse("0-0-0").is_err());
        assert!(Tempo::parse("11-0-1").is_err());
        assert_eq!(
            Tempo::parse(" 3-1-3 ").map(|t| t.to_string()),
            Ok("3-1-3".into())
        );
        assert_eq!(Dose::new(DoseParts::default()), Err(DoseError::Empty));
    }

    #[test]
    fn dose_in_words() {
        let d = dose(DoseParts {
            sets: SetCount::new(3).ok(),
            repetitions: Repetitions::exactly(10).ok(),
            hold: HoldSeconds::new(5).ok(),
            side: Some(Side::Left),
            ..Default::default()
        });
        assert_eq!(
            d.to_string(),
            "3 sets of 10 repetitions, hold 5 seconds, left side"
        );
        assert_eq!(d.prescribed_volume(), 30);

        let d = dose(DoseParts {
            repetitions: Repetitions::range(8, 12).ok(),
            rest: RestSeconds::new(60).ok(),
            load: Load::weight_tenths(25, WeightUnit::Kilogram).ok(),
            tempo: Tempo::parse("3-1-3").ok(),
            effort: Effort::new(6).ok(),
            side: Some(Side::Alternating),
            ..Default::default()
        });
        assert_eq!(
            d.to_string(),
            "1 set of 8 to 12 repetitions, rest 60 seconds between sets, with 2.5 kg, tempo 3-1-3, alternating sides, effort 6 out of 10"
        );
        assert_eq!(d.prescribed_volume(), 12);

        let d = dose(DoseParts {
            sets: SetCount::new(2).ok(),
            hold: HoldSeconds::new(30).ok(),
            load: Load::resistance("yellow band").ok(),
            ..Default::default()
        });
        assert_eq!(d.to_string(), "hold 30 seconds, twice, with yellow band");
        assert_eq!(d.prescribed_volume(), 2);
    }

    #[test]
    fn parts_round_trip() {
        let d = dose(DoseParts {
            sets: SetCount::new(4).ok(),
            repetitions: Repetitions::exactly(1).ok(),
            side: Some(Side::Both),
            ..Default::default()
        });
        assert_eq!(Dose::new(d.parts()), Ok(d.clone()));
        assert_eq!(d.to_string(), "4 sets of 1 repetition, both sides");
        for s in [Side::Left, Side::Right, Side::Both, Side::Alternating] {
            assert_eq!(Side::from_code(s.code()), Some(s));
        }
    }
}
