"""The operator's records: the event log and the charging sessions, in one SQLite file."""
