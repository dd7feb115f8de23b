-- The durable queue of runs (workflow runs and chat replies). A row exists from the moment a
-- run is requested until it has finished; workers of every instance claim rows with
-- FOR UPDATE SKIP LOCKED and hold them by a lease they renew. A row whose lease ran out
-- belongs to an instance that died: its run is finished as FAILED ("interrupted").
CREATE TABLE execution_jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    execution_id     uuid         NOT NULL UNIQUE REFERENCES execution_records (id) ON DELETE CASCADE,
    -- The assistant message the run replies with (chat), if any.
    message_id       uuid REFERENCES messages (id) ON DELETE CASCADE,
    -- sys variables and what the run needs beyond the execution's inputs.
    context          jsonb        NOT NULL DEFAULT '{}'::jsonb,
    -- The instance running it, until when.
    leased_by        varchar(100),
    lease_expires_at timestamptz,
    attempts         integer      NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    stop_requested   boolean      NOT NULL DEFAULT false,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT execution_jobs_lease CHECK ((leased_by IS NULL) = (lease_expires_at IS NULL))
);
CREATE INDEX execution_jobs_workspace_created_idx ON execution_jobs (workspace_id, created_at);
CREATE INDEX execution_jobs_ready_idx ON execution_jobs (created_at) WHERE leased_by IS NULL;
CREATE INDEX execution_jobs_lease_idx ON execution_jobs (lease_expires_at) WHERE leased_by IS NOT NULL;
CREATE INDEX execution_jobs_message_id_idx ON execution_jobs (message_id);
SELECT weft_manage_updated_at('execution_jobs');

-- Annotation reply: questions matched by trigram similarity.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX message_annotations_question_trgm_idx ON message_annotations
    USING gin (question gin_trgm_ops);
