-- Sessions changed since their week's adherence summary Observation was last
-- refreshed: the summary job takes them (any server), refreshes each week once.
CREATE TABLE summary_queue (
    tenant  TEXT NOT NULL,
    task_id TEXT NOT NULL,
    PRIMARY KEY (tenant, task_id)
) WITHOUT ROWID;
