CREATE INDEX audit_events_patient ON audit_events (tenant, patient, id) WHERE patient IS NOT NULL;
DROP TABLE audit_patients;
