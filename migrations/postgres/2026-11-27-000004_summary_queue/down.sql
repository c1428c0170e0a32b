DROP TABLE summary_queue;
