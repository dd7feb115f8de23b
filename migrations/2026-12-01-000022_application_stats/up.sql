-- Usage analytics kept current at write time, in the transaction of the row that changes them
-- (Application.stats, Workspace.usage). Everything is counted per 15-minute UTC slot: every
-- IANA time zone's hours, days and weeks start on such a slot, so any bucket is a run of slots.

-- The slot a moment falls in.
CREATE FUNCTION weft_stats_slot(at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT date_bin('15 minutes', at, timestamptz '2000-01-01 00:00:00+00') $$;

-- A reply latency (seconds) as the key of a latency histogram: milliseconds to two significant
-- digits (exact under 100 ms, then steps of 10 ms under a second, 100 ms under ten seconds...).
CREATE FUNCTION weft_latency_bin(seconds double precision) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN ms < 100 THEN ms::text
        ELSE (round(ms / 10::numeric ^ (length(ms::text) - 2)) * 10::numeric ^ (length(ms::text) - 2))::bigint::text
    END
    FROM (SELECT GREATEST(round(seconds * 1000), 0)::bigint AS ms) s
$$;

-- Per application and slot: conversations started, end-user messages, reply tokens, ratings given,
-- failed replies and the histogram of reply latencies ({"<ms>": count}).
CREATE TABLE application_stats (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    application_id uuid        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    slot           timestamptz NOT NULL,
    conversations  integer     NOT NULL DEFAULT 0,
    messages       integer     NOT NULL DEFAULT 0,
    total_tokens   bigint      NOT NULL DEFAULT 0,
    likes          integer     NOT NULL DEFAULT 0,
    dislikes       integer     NOT NULL DEFAULT 0,
    failed_replies integer     NOT NULL DEFAULT 0,
    latencies      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (application_id, slot)
);
CREATE INDEX application_stats_workspace_slot_idx ON application_stats (workspace_id, slot);

-- Who sent a message to which application in which slot (distinct end users per bucket).
CREATE TABLE application_active_end_users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    application_id uuid        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    end_user_id    uuid        NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    slot           timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (application_id, slot, end_user_id)
);
CREATE INDEX application_active_end_users_workspace_slot_idx
    ON application_active_end_users (workspace_id, slot) INCLUDE (end_user_id);
CREATE INDEX application_active_end_users_end_user_id_idx ON application_active_end_users (end_user_id);

-- Per workspace, slot and status: the runs created in the slot now in that status.
CREATE TABLE workspace_run_stats (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slot         timestamptz NOT NULL,
    status       varchar(20) NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'STOPPED')),
    runs         integer     NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, slot, status)
);

-- Per workspace, slot, provider and model: the tokens model calls used (chat and embeddings).
CREATE TABLE workspace_token_usage (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slot              timestamptz  NOT NULL,
    provider_id       uuid         NOT NULL,
    provider_name     varchar(255) NOT NULL,
    model             varchar(100) NOT NULL,
    prompt_tokens     bigint       NOT NULL DEFAULT 0,
    completion_tokens bigint       NOT NULL DEFAULT 0,
    total_tokens      bigint       NOT NULL DEFAULT 0,
    calls             integer      NOT NULL DEFAULT 0,
    created_at        timestamptz  NOT NULL DEFAULT now(),
    updated_at        timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, slot, provider_id, model)
);

-- Adds to an application's slot.
CREATE FUNCTION weft_bump_application_stats(
    _workspace uuid, _application uuid, _at timestamptz,
    _conversations integer, _messages integer, _tokens bigint,
    _likes integer, _dislikes integer, _failed integer,
    _latency_out text, _latency_in text
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    histogram jsonb := '{}'::jsonb;
BEGIN
    IF _latency_in IS NOT NULL THEN
        histogram := jsonb_build_object(_latency_in, 1);
    END IF;
    INSERT INTO application_stats AS s (workspace_id, application_id, slot, conversations, messages,
                                        total_tokens, likes, dislikes, failed_replies, latencies)
    VALUES (_workspace, _application, weft_stats_slot(_at), _conversations, _messages, _tokens,
            _likes, _dislikes, _failed, histogram)
    ON CONFLICT (application_id, slot) DO UPDATE SET
        conversations  = s.conversations + excluded.conversations,
        messages       = s.messages + excluded.messages,
        total_tokens   = s.total_tokens + excluded.total_tokens,
        likes          = s.likes + excluded.likes,
        dislikes       = s.dislikes + excluded.dislikes,
        failed_replies = s.failed_replies + excluded.failed_replies,
        latencies      = weft_histogram_move(s.latencies, _latency_out, _latency_in),
        updated_at     = now();
END;
$$;

-- A histogram with one count moved out of one key and into another (either may be NULL).
CREATE FUNCTION weft_histogram_move(histogram jsonb, out_key text, in_key text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer;
BEGIN
    IF out_key IS NOT NULL AND histogram ? out_key THEN
        n := (histogram ->> out_key)::integer - 1;
        histogram := CASE WHEN n > 0 THEN jsonb_set(histogram, ARRAY[out_key], to_jsonb(n))
                          ELSE histogram - out_key END;
    END IF;
    IF in_key IS NOT NULL THEN
        histogram := jsonb_set(histogram, ARRAY[in_key],
                               to_jsonb(COALESCE((histogram ->> in_key)::integer, 0) + 1));
    END IF;
    RETURN histogram;
END;
$$;

CREATE FUNCTION weft_count_conversation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM weft_bump_application_stats(NEW.workspace_id, NEW.application_id, NEW.created_at,
                                        1, 0, 0, 0, 0, 0, NULL, NULL);
    RETURN NULL;
END;
$$;
CREATE TRIGGER count_conversation AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION weft_count_conversation();

-- A message counts when it is written (an end user's turn; a reply's tokens, failure and latency)
-- and again when a reply's outcome changes (a streamed reply finishing).
CREATE FUNCTION weft_count_message() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    end_user uuid;
    old_tokens bigint := 0;
    old_failed integer := 0;
    old_latency text;
BEGIN
    IF NEW.role = 'USER' THEN
        IF TG_OP = 'INSERT' THEN
            PERFORM weft_bump_application_stats(NEW.workspace_id, NEW.application_id, NEW.created_at,
                                                0, 1, 0, 0, 0, 0, NULL, NULL);
            SELECT c.end_user_id INTO end_user FROM conversations c WHERE c.id = NEW.conversation_id;
            IF end_user IS NOT NULL THEN
                INSERT INTO application_active_end_users (workspace_id, application_id, end_user_id, slot)
                VALUES (NEW.workspace_id, NEW.application_id, end_user, weft_stats_slot(NEW.created_at))
                ON CONFLICT DO NOTHING;
            END IF;
        END IF;
        RETURN NULL;
    END IF;
    IF NEW.role <> 'ASSISTANT' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- Nothing counted changes (a reply starting to stream): no row is touched, so a run
        -- being claimed never waits on its application's slot.
        IF OLD.total_tokens = NEW.total_tokens AND (OLD.status = 'FAILED') = (NEW.status = 'FAILED')
           AND weft_latency_bin(OLD.latency) IS NOT DISTINCT FROM weft_latency_bin(NEW.latency) THEN
            RETURN NULL;
        END IF;
        old_tokens := OLD.total_tokens;
        old_failed := (OLD.status = 'FAILED')::integer;
        old_latency := weft_latency_bin(OLD.latency);
    END IF;
    PERFORM weft_bump_application_stats(NEW.workspace_id, NEW.application_id, NEW.created_at,
                                        0, 0, NEW.total_tokens - old_tokens, 0, 0,
                                        (NEW.status = 'FAILED')::integer - old_failed,
                                        old_latency, weft_latency_bin(NEW.latency));
    RETURN NULL;
END;
$$;
CREATE TRIGGER count_message AFTER INSERT OR UPDATE OF total_tokens, status, latency ON messages
    FOR EACH ROW EXECUTE FUNCTION weft_count_message();

-- Ratings count in the slot they were first given in; a changed rating moves there. Like messages,
-- ratings stay counted when their rows go (deletes only come with the workspace or application).
CREATE FUNCTION weft_count_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM weft_bump_application_stats(OLD.workspace_id, OLD.application_id, OLD.created_at,
                                            0, 0, 0, -(OLD.rating = 'LIKE')::integer,
                                            -(OLD.rating = 'DISLIKE')::integer, 0, NULL, NULL);
    END IF;
    PERFORM weft_bump_application_stats(NEW.workspace_id, NEW.application_id, NEW.created_at,
                                        0, 0, 0, (NEW.rating = 'LIKE')::integer,
                                        (NEW.rating = 'DISLIKE')::integer, 0, NULL, NULL);
    RETURN NULL;
END;
$$;
CREATE TRIGGER count_feedback AFTER INSERT OR UPDATE OF rating ON message_feedbacks
    FOR EACH ROW EXECUTE FUNCTION weft_count_feedback();

-- Runs by status: a run counts in the slot it was created in, under its current status.
CREATE FUNCTION weft_bump_run_stats(_workspace uuid, _at timestamptz, _status text, _delta integer)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO workspace_run_stats AS s (workspace_id, slot, status, runs)
    VALUES (_workspace, weft_stats_slot(_at), _status, _delta)
    ON CONFLICT (workspace_id, slot, status) DO UPDATE SET runs = s.runs + excluded.runs, updated_at = now()
$$;

CREATE FUNCTION weft_count_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = NEW.status THEN
            RETURN NULL;
        END IF;
        PERFORM weft_bump_run_stats(OLD.workspace_id, OLD.created_at, OLD.status, -1);
    END IF;
    PERFORM weft_bump_run_stats(NEW.workspace_id, NEW.created_at, NEW.status, 1);
    RETURN NULL;
END;
$$;
CREATE TRIGGER count_run AFTER INSERT OR UPDATE OF status ON execution_records
    FOR EACH ROW EXECUTE FUNCTION weft_count_run();

-- What is already there is counted once.
INSERT INTO application_stats (workspace_id, application_id, slot, conversations)
SELECT workspace_id, application_id, weft_stats_slot(created_at), count(*)
FROM conversations GROUP BY 1, 2, 3;
INSERT INTO application_stats AS s (workspace_id, application_id, slot, messages, total_tokens, failed_replies, latencies)
SELECT workspace_id, application_id, slot, sum(messages), sum(tokens), sum(failed),
       COALESCE(jsonb_object_agg(bin, n) FILTER (WHERE bin IS NOT NULL), '{}'::jsonb)
FROM (SELECT workspace_id, application_id, weft_stats_slot(created_at) AS slot,
             CASE WHEN role = 'ASSISTANT' THEN weft_latency_bin(latency) END AS bin,
             count(*) FILTER (WHERE role = 'USER') AS messages,
             sum(total_tokens) FILTER (WHERE role = 'ASSISTANT') AS tokens,
             count(*) FILTER (WHERE role = 'ASSISTANT' AND status = 'FAILED') AS failed,
             count(*) FILTER (WHERE role = 'ASSISTANT' AND latency IS NOT NULL) AS n
      FROM messages GROUP BY 1, 2, 3, 4) m
GROUP BY 1, 2, 3
ON CONFLICT (application_id, slot) DO UPDATE SET
    messages = excluded.messages, total_tokens = COALESCE(excluded.total_tokens, 0),
    failed_replies = excluded.failed_replies, latencies = excluded.latencies;
INSERT INTO application_stats AS s (workspace_id, application_id, slot, likes, dislikes)
SELECT workspace_id, application_id, weft_stats_slot(created_at),
       count(*) FILTER (WHERE rating = 'LIKE'), count(*) FILTER (WHERE rating = 'DISLIKE')
FROM message_feedbacks GROUP BY 1, 2, 3
ON CONFLICT (application_id, slot) DO UPDATE SET likes = excluded.likes, dislikes = excluded.dislikes;
INSERT INTO application_active_end_users (workspace_id, application_id, end_user_id, slot)
SELECT DISTINCT m.workspace_id, m.application_id, c.end_user_id, weft_stats_slot(m.created_at)
FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.role = 'USER' AND c.end_user_id IS NOT NULL;
INSERT INTO workspace_run_stats (workspace_id, slot, status, runs)
SELECT workspace_id, weft_stats_slot(created_at), status, count(*) FROM execution_records GROUP BY 1, 2, 3;
