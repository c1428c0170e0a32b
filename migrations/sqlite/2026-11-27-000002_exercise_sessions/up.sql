-- Exercise sessions (scheduled occurrence Tasks) as adherence and the background jobs
-- need them, kept in step with the Task resources in the same transaction.
CREATE TABLE sessions (
    tenant            TEXT    NOT NULL,
    task_id           TEXT    NOT NULL,
    care_plan_id      TEXT    NOT NULL,
    request_id        TEXT    NOT NULL,
    patient_id        TEXT    NOT NULL,
    due_from          BIGINT  NOT NULL, -- microseconds since the Unix epoch, UTC
    due_until         BIGINT  NOT NULL,
    slot              BIGINT  NOT NULL, -- which of the day's times (0 for the first)
    status            TEXT    NOT NULL, -- requested, completed, failed, cancelled
    completed_at      BIGINT,
    done_volume       BIGINT,
    prescribed_volume BIGINT  NOT NULL, -- sets x repetitions of the prescription in force
    prescribed_sets   BIGINT  NOT NULL,
    prescribed_reps   BIGINT  NOT NULL, -- per set (1 for a hold)
    pain              BIGINT,
    difficulty        BIGINT,
    -- clustered by program and time (SQLite): adherence reads a program's sessions in order
    PRIMARY KEY (tenant, care_plan_id, due_from, task_id)
) WITHOUT ROWID;
-- One live session per prescription, program, window and time of the day (cancelled
-- ones stay as history).
CREATE UNIQUE INDEX sessions_slot ON sessions (tenant, care_plan_id, request_id, due_from, slot)
    WHERE status <> 'cancelled';
CREATE UNIQUE INDEX sessions_task ON sessions (tenant, task_id);
CREATE INDEX sessions_patient ON sessions (tenant, patient_id, due_from);
CREATE INDEX sessions_request ON sessions (tenant, request_id, status, due_from);
-- The missed-session job: open sessions by the end of their window, across tenants.
CREATE INDEX sessions_open ON sessions (status, due_until);

-- Prescriptions of active programs whose schedule goes on past what is scheduled (open
-- ended, or longer than the horizon): the horizon job extends them.
CREATE TABLE schedules (
    tenant          TEXT   NOT NULL,
    care_plan_id    TEXT   NOT NULL,
    request_id      TEXT   NOT NULL,
    scheduled_until BIGINT NOT NULL,
    PRIMARY KEY (tenant, care_plan_id, request_id)
) WITHOUT ROWID;
CREATE INDEX schedules_until ON schedules (scheduled_until);
