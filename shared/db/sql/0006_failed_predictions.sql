-- A model that raises while scoring leaves 'failed' rows under its own
-- version, told apart from 'unscored' (no model yet, version 0).
ALTER TABLE predictions DROP CONSTRAINT predictions_status_check;
ALTER TABLE predictions ADD CONSTRAINT predictions_status_check CHECK (status IN ('scored', 'unscored', 'failed'));
