-- Date search values of current versions (Task authored-on, Observation date, ...):
-- the instants [lo, hi) an element covers, microseconds since the Unix epoch (an open
-- end of a Period is the smallest or largest BIGINT).
CREATE TABLE search_dates (
    tenant   TEXT   NOT NULL,
    res_type TEXT   NOT NULL,
    res_id   TEXT   NOT NULL,
    param    TEXT   NOT NULL,
    lo       BIGINT NOT NULL,
    hi       BIGINT NOT NULL,
    PRIMARY KEY (tenant, res_type, res_id, param, lo, hi)
) WITHOUT ROWID;
CREATE INDEX search_dates_lo ON search_dates (tenant, res_type, param, lo);
CREATE INDEX search_dates_hi ON search_dates (tenant, res_type, param, hi);
