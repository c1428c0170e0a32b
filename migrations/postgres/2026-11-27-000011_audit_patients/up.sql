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
);
INSERT INTO audit_patients (tenant, patient, bucket)
SELECT DISTINCT tenant, patient, ('x' || substr(id, 1, 8))::bit(32)::bigint
FROM audit_events WHERE patient IS NOT NULL;
DROP INDEX audit_events_patient;
