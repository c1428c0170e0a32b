DROP TABLE search_dates;
