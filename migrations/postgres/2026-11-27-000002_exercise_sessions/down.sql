DROP TABLE schedules;
DROP TABLE sessions;
