-- Outcome measures assigned to programs: which Questionnaire, on which schedule, and
-- how far its due Tasks are made (kept in step with the program CarePlan).
CREATE TABLE measure_assignments (
    tenant        TEXT    NOT NULL,
    care_plan_id  TEXT    NOT NULL,
    questionnaire TEXT    NOT NULL, -- canonical URL of the Questionnaire
    patient_id    TEXT    NOT NULL,
    started_at    BIGINT  NOT NULL, -- microseconds since the Unix epoch: the baseline's due start
    every_micros  BIGINT,           -- repeat interval; NULL: at start only
    at_discharge  BOOLEAN NOT NULL,
    next_due      BIGINT,           -- due start of the next follow-up to make; NULL: none
    active        BOOLEAN NOT NULL, -- the program is active and lists the measure
    PRIMARY KEY (tenant, care_plan_id, questionnaire)
);
-- The horizon job: active repeating assignments by their next follow-up.
CREATE INDEX measure_assignments_next ON measure_assignments (next_due);

-- The questionnaire Tasks the server made for assigned measures.
CREATE TABLE measure_tasks (
    tenant        TEXT   NOT NULL,
    task_id       TEXT   NOT NULL,
    care_plan_id  TEXT   NOT NULL,
    questionnaire TEXT   NOT NULL,
    patient_id    TEXT   NOT NULL,
    occasion      TEXT   NOT NULL, -- baseline, follow-up, discharge
    due_from      BIGINT NOT NULL,
    due_until     BIGINT NOT NULL,
    status        TEXT   NOT NULL, -- requested, completed, failed, cancelled
    PRIMARY KEY (tenant, task_id)
);
CREATE INDEX measure_tasks_patient ON measure_tasks (tenant, patient_id, questionnaire, status, due_from);
CREATE INDEX measure_tasks_plan ON measure_tasks (tenant, care_plan_id, status);
CREATE INDEX measure_tasks_open ON measure_tasks (status, due_until);

-- One score per scored QuestionnaireResponse, as $outcomes and the baseline need it.
CREATE TABLE outcome_scores (
    tenant         TEXT   NOT NULL,
    response_id    TEXT   NOT NULL,
    observation_id TEXT   NOT NULL,
    patient_id     TEXT   NOT NULL,
    care_plan_id   TEXT,            -- the program the response is based on, when stated
    questionnaire  TEXT   NOT NULL,
    scored_at      BIGINT NOT NULL, -- the response's authored instant
    score          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, response_id)
);
CREATE INDEX outcome_scores_patient ON outcome_scores (tenant, patient_id, questionnaire, scored_at);
CREATE INDEX outcome_scores_plan ON outcome_scores (tenant, care_plan_id, questionnaire, scored_at);

-- Remote therapeutic monitoring episodes of programs (the program's rtm-episode extension).
CREATE TABLE rtm_episodes (
    tenant       TEXT NOT NULL,
    care_plan_id TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    start_date   TEXT NOT NULL, -- YYYY-MM-DD in the patient's time zone
    end_date     TEXT,          -- last day, when the episode ended
    PRIMARY KEY (tenant, care_plan_id)
);
CREATE INDEX rtm_episodes_patient ON rtm_episodes (tenant, patient_id);

-- What counts for remote therapeutic monitoring besides completed sessions (those are
-- read from sessions): one row per resource, replaced when it changes.
CREATE TABLE monitoring_events (
    tenant     TEXT   NOT NULL,
    res_type   TEXT   NOT NULL,
    res_id     TEXT   NOT NULL,
    patient_id TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT   NOT NULL, -- data, time, call, message-clinician, message-patient
    minutes    BIGINT NOT NULL, -- treatment-management minutes (kind time)
    who        TEXT,            -- the clinician (kind time)
    what       TEXT,            -- what was done (kind time)
    PRIMARY KEY (tenant, res_type, res_id)
);
CREATE INDEX monitoring_events_patient ON monitoring_events (tenant, patient_id, at);

-- Remote therapeutic monitoring reads a clinic's completed sessions by when they were done.
CREATE INDEX sessions_completed ON sessions (tenant, completed_at);
