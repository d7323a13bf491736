-- An upload is recorded before its rows are published and marked complete
-- after Kafka acknowledged every one: a dataset still 'publishing' was cut
-- short (broker or database away, gateway killed) and is not trained on.
-- Uploads recorded before this migration were complete.
ALTER TABLE datasets ADD COLUMN status text NOT NULL DEFAULT 'complete'
    CHECK (status IN ('publishing', 'complete'));
ALTER TABLE datasets ADD COLUMN completed_at timestamptz;
