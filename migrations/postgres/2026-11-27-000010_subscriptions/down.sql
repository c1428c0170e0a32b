DROP TABLE subscription_events;
DROP TABLE subscription_filters;
DROP TABLE subscriptions;
