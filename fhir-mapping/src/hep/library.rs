//! The starter library: common physical-therapy home exercises, each with step-by-step
//! instructions written for this project, its body region, equipment and a default dose
//! and schedule, as ActivityDefinitions. Marked as starter content for clinicians to
//! review (`meta.tag`) before they use it.

use domain::dose::{Dose, DoseParts, HoldSeconds, Repetitions, SetCount, Side};
use serde_json::{Value, json};

use super::{canonical, dosage};

/// Version of the starter library.
pub const VERSION: &str = "1.0.0";

/// The tag on starter content.
pub fn starter_tag() -> Value {
    json!({"system": canonical("CodeSystem", "content-origin"), "code": "starter",
           "display": "Starter content: review before use"})
}

/// One library exercise.
pub struct Exercise {
    pub id: &'static str,
    pub title: &'static str,
    pub region: &'static str,
    /// Empty when none is needed.
    pub equipment: &'static str,
    pub steps: &'static [&'static str],
    pub sets: u8,
    /// Repetitions per set (0 when the exercise is a hold).
    pub reps: u16,
    /// Seconds held (0 when none).
    pub hold: u16,
    pub per_side: bool,
    pub times_a_day: u8,
}

macro_rules! ex {
    ($id:literal, $title:literal, $region:literal, $equip:literal, [$($step:literal),+ $(,)?], $sets:literal x $reps:literal, hold $hold:literal, $per_side:literal, $per_day:literal) => {
        Exercise { id: $id, title: $title, region: $region, equipment: $equip, steps: &[$($step),+],
                   sets: $sets, reps: $reps, hold: $hold, per_side: $per_side, times_a_day: $per_day }
    };
}

/// The starter exercises.
pub const EXERCISES: &[Exercise] = &[
    // neck
    ex!("chin-tuck", "Chin tuck", "neck", "", ["Sit tall with your shoulders relaxed.", "Draw your chin straight back as if making a double chin, keeping your eyes level.", "Hold, then relax forward slowly."], 2 x 10, hold 5, false, 2),
    ex!("neck-rotation", "Neck rotation", "neck", "", ["Sit tall and look straight ahead.", "Turn your head slowly to one side as far as is comfortable.", "Return to the middle and turn to the other side."], 2 x 10, hold 0, false, 2),
    ex!("upper-trapezius-stretch", "Upper trapezius stretch", "neck", "", ["Sit tall and hold the edge of the seat with one hand.", "Tilt your ear toward the opposite shoulder until you feel a gentle stretch.", "Hold, then come back to upright."], 3 x 0, hold 30, true, 2),
    ex!("levator-scapulae-stretch", "Levator scapulae stretch", "neck", "", ["Sit tall and turn your head toward one armpit.", "Gently bring your chin down toward that armpit.", "Hold the stretch along the back of the neck, then return."], 3 x 0, hold 30, true, 2),
    // shoulder
    ex!("pendulum", "Pendulum", "shoulder", "table", ["Lean forward with your good hand on a table, letting the other arm hang.", "Shift your body weight to swing the hanging arm in small circles.", "Reverse the direction halfway through."], 2 x 10, hold 0, true, 3),
    ex!("shoulder-flexion-wand", "Shoulder flexion with a stick", "shoulder", "stick or broom handle", ["Lie on your back holding a stick with both hands, shoulder-width apart.", "Use your good arm to help lift the stick up over your head.", "Lower slowly to your thighs."], 2 x 10, hold 0, false, 2),
    ex!("external-rotation-band", "External rotation with band", "shoulder", "resistance band", ["Stand with your elbow bent to 90 degrees and tucked against your side.", "Hold the band and rotate your forearm outward, keeping the elbow in place.", "Return slowly to the start."], 3 x 12, hold 0, true, 1),
    ex!("internal-rotation-band", "Internal rotation with band", "shoulder", "resistance band", ["Anchor the band at elbow height beside you.", "With the elbow bent and tucked in, pull your forearm across your stomach.", "Return slowly to the start."], 3 x 12, hold 0, true, 1),
    ex!("scapular-squeeze", "Shoulder blade squeeze", "shoulder", "", ["Sit or stand tall with your arms by your sides.", "Squeeze your shoulder blades back and down together.", "Hold, then relax."], 2 x 10, hold 5, false, 2),
    ex!("wall-slide", "Wall slide", "shoulder", "wall", ["Stand facing a wall with your forearms on it.", "Slide your arms up the wall as far as is comfortable.", "Slide back down with control."], 2 x 10, hold 0, false, 1),
    // elbow and wrist
    ex!("wrist-extension-stretch", "Wrist extensor stretch", "elbow-wrist", "", ["Hold one arm straight in front with the palm down.", "Use the other hand to bend the wrist down gently until you feel a stretch.", "Hold, then release."], 3 x 0, hold 30, true, 2),
    ex!("wrist-flexion-stretch", "Wrist flexor stretch", "elbow-wrist", "", ["Hold one arm straight in front with the palm up.", "Use the other hand to bend the wrist back gently until you feel a stretch.", "Hold, then release."], 3 x 0, hold 30, true, 2),
    ex!("eccentric-wrist-extension", "Slow wrist lowering with weight", "elbow-wrist", "light dumbbell or water bottle", ["Rest your forearm on a table with the hand over the edge, palm down, holding the weight.", "Use the other hand to help lift the wrist up.", "Lower the weight slowly on your own over three seconds."], 3 x 15, hold 0, true, 1),
    ex!("grip-squeeze", "Grip squeeze", "elbow-wrist", "soft ball or rolled towel", ["Hold the ball in your hand.", "Squeeze as firmly as is comfortable.", "Hold, then relax your grip slowly."], 2 x 10, hold 3, true, 2),
    // back
    ex!("knee-to-chest", "Knee to chest", "back", "", ["Lie on your back with your knees bent.", "Bring one knee toward your chest, holding behind the thigh.", "Hold, then lower and switch sides."], 3 x 0, hold 20, true, 2),
    ex!("pelvic-tilt", "Pelvic tilt", "back", "", ["Lie on your back with your knees bent and feet flat.", "Flatten your lower back into the floor by tightening your stomach.", "Hold, then relax."], 2 x 10, hold 5, false, 2),
    ex!("cat-camel", "Cat and camel", "back", "", ["Kneel on hands and knees with your back flat.", "Round your back up toward the ceiling, letting your head drop.", "Then let your back sag gently as you lift your head."], 2 x 10, hold 0, false, 2),
    ex!("prone-press-up", "Press-up lying on your front", "back", "", ["Lie on your front with your hands under your shoulders.", "Push your upper body up, keeping your hips on the floor.", "Lower slowly."], 2 x 10, hold 2, false, 2),
    ex!("lower-trunk-rotation", "Lower trunk rotation", "back", "", ["Lie on your back with your knees bent together.", "Let both knees fall slowly to one side as far as is comfortable.", "Bring them back to the middle and go to the other side."], 2 x 10, hold 0, false, 2),
    // core
    ex!("bird-dog", "Bird dog", "core", "", ["Kneel on hands and knees with your back flat.", "Reach one arm forward and the opposite leg back, keeping your hips level.", "Hold, return, and switch sides."], 2 x 10, hold 3, false, 1),
    ex!("dead-bug", "Dead bug", "core", "", ["Lie on your back with your arms up and knees bent over your hips.", "Lower one arm and the opposite leg toward the floor, keeping your back flat.", "Return and switch sides."], 2 x 10, hold 0, false, 1),
    ex!("bridge", "Bridge", "core", "", ["Lie on your back with your knees bent and feet flat.", "Squeeze your buttocks and lift your hips until your body is in a straight line.", "Hold, then lower slowly."], 3 x 10, hold 3, false, 1),
    ex!("side-plank-knees", "Side plank on knees", "core", "", ["Lie on your side propped on your elbow with your knees bent.", "Lift your hips so your body is straight from head to knees.", "Hold, then lower."], 3 x 0, hold 20, true, 1),
    // hip
    ex!("clamshell", "Clamshell", "hip", "", ["Lie on your side with your knees bent and heels together.", "Keeping your feet together, lift the top knee without rolling your hips back.", "Lower slowly."], 3 x 12, hold 0, true, 1),
    ex!("side-lying-hip-abduction", "Side-lying leg lift", "hip", "", ["Lie on your side with the bottom knee bent for balance.", "Lift the straight top leg toward the ceiling, toes pointing forward.", "Lower slowly."], 3 x 10, hold 0, true, 1),
    ex!("standing-hip-extension", "Standing hip extension", "hip", "chair", ["Stand holding the back of a chair.", "Move one straight leg backward without leaning forward.", "Return slowly."], 2 x 10, hold 0, true, 1),
    ex!("hip-flexor-stretch", "Hip flexor stretch", "hip", "", ["Kneel on one knee with the other foot flat in front.", "Tuck your pelvis under and shift forward until you feel a stretch at the front of the hip.", "Hold, then switch sides."], 3 x 0, hold 30, true, 2),
    ex!("piriformis-stretch", "Piriformis stretch", "hip", "", ["Lie on your back and cross one ankle over the opposite knee.", "Pull the uncrossed thigh toward your chest.", "Hold the stretch in the buttock, then switch sides."], 3 x 0, hold 30, true, 2),
    // knee
    ex!("quad-sets", "Quadriceps sets", "knee", "rolled towel", ["Sit or lie with your leg straight and a towel under the knee.", "Tighten the muscle on top of the thigh, pressing the knee into the towel.", "Hold, then relax."], 3 x 10, hold 5, true, 2),
    ex!("straight-leg-raise", "Straight leg raise", "knee", "", ["Lie on your back with one knee bent and the other leg straight.", "Tighten the thigh of the straight leg and lift it to the height of the other knee.", "Lower slowly."], 3 x 10, hold 0, true, 2),
    ex!("heel-slide", "Heel slide", "knee", "", ["Lie on your back with your legs straight.", "Slide one heel toward your buttock, bending the knee as far as is comfortable.", "Slide it back out."], 2 x 15, hold 0, true, 2),
    ex!("short-arc-quad", "Short arc quad", "knee", "rolled towel or small ball", ["Lie on your back with a roll under the knee.", "Straighten the knee by lifting the heel, keeping the thigh on the roll.", "Hold, then lower slowly."], 3 x 10, hold 3, true, 2),
    ex!("sit-to-stand", "Sit to stand", "knee", "chair", ["Sit near the front of a firm chair with your feet under your knees.", "Lean forward and stand up, using your hands only if needed.", "Sit down slowly with control."], 3 x 10, hold 0, false, 1),
    ex!("mini-squat", "Mini squat", "knee", "chair", ["Stand holding the back of a chair with your feet hip-width apart.", "Bend your knees a little as if sitting back, keeping your knees over your toes.", "Stand back up."], 3 x 10, hold 0, false, 1),
    ex!("step-up", "Step up", "knee", "step", ["Stand facing a low step, holding a rail if you have one.", "Step up with one foot and bring the other up beside it.", "Step down with control, leading with the same foot."], 3 x 10, hold 0, true, 1),
    ex!("hamstring-stretch", "Hamstring stretch", "knee", "towel", ["Lie on your back with a towel around one foot.", "Keep the knee straight and lift the leg with the towel until you feel a stretch behind the thigh.", "Hold, then lower."], 3 x 0, hold 30, true, 2),
    // ankle
    ex!("ankle-pumps", "Ankle pumps", "ankle", "", ["Sit or lie with your legs straight.", "Point your toes away from you, then pull them back toward you.", "Keep the movement smooth and steady."], 2 x 20, hold 0, false, 3),
    ex!("ankle-alphabet", "Ankle alphabet", "ankle", "", ["Sit with your foot off the floor.", "Trace the letters of the alphabet in the air with your big toe.", "Move only at the ankle."], 1 x 1, hold 0, true, 2),
    ex!("calf-raise", "Calf raise", "ankle", "chair", ["Stand holding the back of a chair.", "Rise up onto your toes.", "Lower your heels slowly to the floor."], 3 x 15, hold 0, false, 1),
    ex!("ankle-eversion-band", "Ankle turn-out with band", "ankle", "resistance band", ["Sit with the band looped around both feet.", "Turn one foot outward against the band, keeping the heel on the floor.", "Return slowly."], 3 x 12, hold 0, true, 1),
    ex!("calf-stretch-wall", "Calf stretch at the wall", "ankle", "wall", ["Stand facing a wall with one foot behind the other.", "Keep the back heel down and the knee straight, and lean toward the wall.", "Hold the stretch in the back calf, then switch sides."], 3 x 0, hold 30, true, 2),
    // balance
    ex!("single-leg-stance", "Single-leg stance", "balance", "chair", ["Stand next to a chair, touching it lightly.", "Lift one foot off the floor and keep your balance.", "Hold, then switch legs."], 3 x 0, hold 30, true, 2),
    ex!("tandem-stance", "Heel-to-toe stance", "balance", "counter", ["Stand next to a counter.", "Put one foot directly in front of the other, heel touching toe.", "Hold your balance, then switch feet."], 3 x 0, hold 30, false, 2),
    ex!("tandem-walk", "Heel-to-toe walk", "balance", "hallway wall", ["Walk along a wall, placing the heel of one foot just in front of the toes of the other.", "Look ahead, not at your feet.", "Turn around slowly and walk back."], 2 x 10, hold 0, false, 1),
];

/// The default dose of a library exercise.
pub fn default_dose(e: &Exercise) -> Option<Dose> {
    Dose::new(DoseParts {
        sets: SetCount::new(e.sets).ok(),
        repetitions: (e.reps > 0)
            .then(|| Repetitions::exactly(e.reps).ok())
            .flatten(),
        hold: (e.hold > 0)
            .then(|| HoldSeconds::new(e.hold).ok())
            .flatten(),
        side: e.per_side.then_some(Side::Both),
        ..Default::default()
    })
    .ok()
}

/// The canonical of a library exercise with its version (`url|version`).
pub fn exercise_canonical(id: &str) -> String {
    format!("{}|{VERSION}", canonical("ActivityDefinition", id))
}

fn pascal(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The exercise as an ActivityDefinition.
pub fn activity_definition(e: &Exercise) -> Value {
    let steps: Vec<String> = e
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{}. {s}", i + 1))
        .collect();
    let mut ad = json!({
        "resourceType": "ActivityDefinition",
        "id": e.id,
        "meta": {"tag": [starter_tag()]},
        "url": canonical("ActivityDefinition", e.id),
        "version": VERSION,
        "name": pascal(e.id),
        "title": e.title,
        "status": "active",
        "publisher": "HEP FHIR backend",
        "description": steps.join("\n"),
        "usage": "Starter content: review the instructions and the dose before prescribing.",
        "topic": [{"coding": [{"system": canonical("CodeSystem", "body-region"), "code": e.region}]}],
        "kind": "ServiceRequest",
        "code": {"text": e.title},
        "timingTiming": {"repeat": {"frequency": e.times_a_day, "period": 1, "periodUnit": "d"}},
        "participant": [{"type": "patient"}]
    });
    if let Some(d) = default_dose(e) {
        ad["extension"] = json!([dosage::to_extension(&d)]);
    }
    if !e.equipment.is_empty()
        && let Some(p) = ad["participant"].as_array_mut()
    {
        p.push(json!({"type": "device", "role": {"text": e.equipment}}));
    }
    reorder(ad)
}

fn reorder(v: Value) -> Value {
    const ORDER: &[&str] = &[
        "resourceType",
        "id",
        "meta",
        "extension",
        "url",
        "version",
        "name",
        "title",
        "status",
        "publisher",
        "description",
        "usage",
        "topic",
        "kind",
        "code",
        "timingTiming",
        "participant",
    ];
    let Value::Object(mut m) = v else { return v };
    let mut out = serde_json::Map::new();
    for k in ORDER {
        if let Some(x) = m.shift_remove(*k) {
            out.insert((*k).to_string(), x);
        }
    }
    out.append(&mut m);
    Value::Object(out)
}

/// A protocol template: a named list of library exercises.
pub struct Template {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub exercises: &'static [&'static str],
}

/// The starter templates.
pub const TEMPLATES: &[Template] = &[
    Template {
        id: "knee-osteoarthritis",
        title: "Knee osteoarthritis: strength and mobility",
        description: "Quadriceps and hip strengthening with range of motion for knee osteoarthritis.",
        exercises: &[
            "quad-sets",
            "straight-leg-raise",
            "short-arc-quad",
            "sit-to-stand",
            "clamshell",
            "hamstring-stretch",
        ],
    },
    Template {
        id: "low-back-pain",
        title: "Low back pain: mobility and core control",
        description: "Gentle lumbar mobility and trunk stabilisation for non-specific low back pain.",
        exercises: &[
            "pelvic-tilt",
            "knee-to-chest",
            "cat-camel",
            "lower-trunk-rotation",
            "bird-dog",
            "bridge",
        ],
    },
    Template {
        id: "rotator-cuff",
        title: "Rotator cuff: early strengthening",
        description: "Range of motion and rotator cuff and scapular strengthening.",
        exercises: &[
            "pendulum",
            "shoulder-flexion-wand",
            "scapular-squeeze",
            "external-rotation-band",
            "internal-rotation-band",
            "wall-slide",
        ],
    },
    Template {
        id: "ankle-sprain",
        title: "Ankle sprain: mobility, strength and balance",
        description: "Ankle range of motion, strengthening and balance after a lateral ankle sprain.",
        exercises: &[
            "ankle-pumps",
            "ankle-alphabet",
            "ankle-eversion-band",
            "calf-raise",
            "calf-stretch-wall",
            "single-leg-stance",
        ],
    },
    Template {
        id: "knee-replacement-early",
        title: "Knee replacement: early phase",
        description: "Early phase after total knee replacement: circulation, quadriceps activation and knee bending.",
        exercises: &[
            "ankle-pumps",
            "quad-sets",
            "heel-slide",
            "short-arc-quad",
            "straight-leg-raise",
        ],
    },
];

/// The template as a PlanDefinition: one action per exercise.
pub fn plan_definition(t: &Template) -> Value {
    let actions: Vec<Value> = t
        .exercises
        .iter()
        .filter_map(|id| EXERCISES.iter().find(|e| e.id == *id))
        .map(|e| json!({"title": e.title, "definitionCanonical": exercise_canonical(e.id)}))
        .collect();
    json!({
        "resourceType": "PlanDefinition",
        "id": t.id,
        "meta": {"tag": [starter_tag()]},
        "url": canonical("PlanDefinition", t.id),
        "version": VERSION,
        "name": pascal(t.id),
        "title": t.title,
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/plan-definition-type", "code": "protocol"}]},
        "status": "active",
        "publisher": "HEP FHIR backend",
        "description": t.description,
        "usage": "Starter content: review the exercises and doses before applying.",
        "action": actions
    })
}

/// Every starter resource, as `(resource type, id, JSON)`.
pub fn all() -> Vec<(&'static str, &'static str, Value)> {
    EXERCISES
        .iter()
        .map(|e| ("ActivityDefinition", e.id, activity_definition(e)))
        .chain(
            TEMPLATES
                .iter()
                .map(|t| ("PlanDefinition", t.id, plan_definition(t))),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, ParseLimits, parse_resource};

    #[test]
    fn at_least_forty_exercises_over_every_region() {
        assert!(EXERCISES.len() >= 40, "{}", EXERCISES.len());
        for region in [
            "neck",
            "shoulder",
            "elbow-wrist",
            "back",
            "core",
            "hip",
            "knee",
            "ankle",
            "balance",
        ] {
            assert!(EXERCISES.iter().any(|e| e.region == region), "{region}");
        }
        let mut ids: Vec<&str> = EXERCISES.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), EXERCISES.len(), "ids are unique");
    }

    #[test]
    fn every_exercise_is_a_valid_activity_definition_with_a_dose() {
        for e in EXERCISES {
            assert!(default_dose(e).is_some(), "{}", e.id);
            let json = activity_definition(e);
            let bytes = serde_json::to_vec(&json).unwrap_or_default();
            let parsed = parse_resource(&bytes, Format::Json, &ParseLimits::default())
                .unwrap_or_else(|err| panic!("{}: {err:?}", e.id));
            assert_eq!(parsed.id(), Some(e.id));
            let ext = &json["extension"][0];
            assert_eq!(
                dosage::from_extension(ext, "ActivityDefinition.extension[0]").ok(),
                default_dose(e)
            );
        }
        let quad = EXERCISES
            .iter()
            .find(|e| e.id == "quad-sets")
            .map(activity_definition);
        assert_eq!(
            quad.as_ref().and_then(|q| q["description"]
                .as_str()
                .map(|d| d.starts_with("1. Sit or lie"))),
            Some(true)
        );
    }
}
