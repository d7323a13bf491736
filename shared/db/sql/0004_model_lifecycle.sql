-- Models that stay right: a shadow beside the champion, the history of
-- activations, the honest gate's evidence, labels that arrive late, and the
-- latest drift and degradation of each model.

ALTER TABLE models ADD COLUMN shadow boolean NOT NULL DEFAULT false;
-- At most one shadow per stream and task, never the champion itself.
CREATE UNIQUE INDEX models_one_shadow ON models (stream, task) WHERE shadow;
ALTER TABLE models ADD CONSTRAINT models_shadow_not_active CHECK (NOT (shadow AND active));
ALTER TABLE models ADD COLUMN monitoring jsonb NOT NULL DEFAULT '{}';

-- Every change of alias, with who or what made it and why.
CREATE TABLE model_activations (
    id                bigserial PRIMARY KEY,
    stream            text        NOT NULL,
    task              text        NOT NULL,
    model_id          bigint      NOT NULL REFERENCES models (id),
    alias             text        NOT NULL CHECK (alias IN ('champion', 'shadow', 'retired')),
    previous_model_id bigint      REFERENCES models (id),
    trigger           text        NOT NULL,
    actor             text        NOT NULL,
    reason            text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_activations_task ON model_activations (stream, task, created_at DESC);

-- The gate's evidence: how many held-out events neither model was trained on.
ALTER TABLE training_runs ADD COLUMN gate_rows integer;
ALTER TABLE training_runs ADD COLUMN reason text;

-- A shadow's predictions are kept apart from the champion's (never served).
ALTER TABLE predictions ADD COLUMN role text NOT NULL DEFAULT 'champion' CHECK (role IN ('champion', 'shadow'));

-- Labels for events not scored yet: joined when their predictions are
-- written, dead-lettered when none come within the bound.
CREATE TABLE pending_labels (
    event_id         text        NOT NULL,
    stream           text        NOT NULL,
    field            text        NOT NULL,
    value            jsonb       NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    origin_topic     text        NOT NULL,
    origin_partition integer     NOT NULL,
    origin_offset    bigint      NOT NULL,
    raw              bytea       NOT NULL,
    PRIMARY KEY (event_id, field)
);
CREATE INDEX pending_labels_age ON pending_labels (received_at);
