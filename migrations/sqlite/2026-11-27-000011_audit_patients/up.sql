-- Which patients' data the audit trail records, by stretch of time: a row per patient
-- and bucket of 65.5 seconds (the first 32 bits of the records' UUID v7 ids, which are
-- the top bits of their millisecond). A search by patient scans the records of the
-- buckets the patient appears in. It replaces an index of every record by patient,
-- whose scattered pages every batch of records rewrote.
CREATE TABLE audit_patients (
    tenant  TEXT   NOT NULL,
    patient TEXT   NOT NULL,
    bucket  BIGINT NOT NULL,
    PRIMARY KEY (tenant, patient, bucket)
) WITHOUT ROWID;
INSERT INTO audit_patients (tenant, patient, bucket)
SELECT DISTINCT tenant, patient,
    ((((((instr('0123456789abcdef', substr(id, 1, 1)) - 1) * 16
    + instr('0123456789abcdef', substr(id, 2, 1)) - 1) * 16
    + instr('0123456789abcdef', substr(id, 3, 1)) - 1) * 16
    + instr('0123456789abcdef', substr(id, 4, 1)) - 1) * 16
    + instr('0123456789abcdef', substr(id, 5, 1)) - 1) * 16
    + instr('0123456789abcdef', substr(id, 6, 1)) - 1) * 256
    + (instr('0123456789abcdef', substr(id, 7, 1)) - 1) * 16
    + instr('0123456789abcdef', substr(id, 8, 1)) - 1
FROM audit_events WHERE patient IS NOT NULL;
DROP INDEX audit_events_patient;
