DROP INDEX sessions_completed;
DROP TABLE monitoring_events;
DROP TABLE rtm_episodes;
DROP TABLE outcome_scores;
DROP TABLE measure_tasks;
DROP TABLE measure_assignments;
