DROP TABLE store_settings;
