-- Application stats per UTC hour as well as per 15-minute slot: every bucket of a zone whose
-- offset is whole hours (most of them) is a run of hours, read from a quarter of the rows
-- (a month by day: 720 instead of 2,880); zones at :30 and :45 read the slots. Both are kept
-- by the same function, in the same transaction.

-- The UTC hour a moment falls in.
CREATE FUNCTION weft_stats_hour(at timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT date_bin('1 hour', at, timestamptz '2000-01-01 00:00:00+00') $$;

CREATE TABLE application_stats_hourly (
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
CREATE INDEX application_stats_hourly_workspace_slot_idx ON application_stats_hourly (workspace_id, slot);

CREATE OR REPLACE FUNCTION weft_bump_application_stats(
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
    INSERT INTO application_stats_hourly AS s (workspace_id, application_id, slot, conversations, messages,
                                               total_tokens, likes, dislikes, failed_replies, latencies)
    VALUES (_workspace, _application, weft_stats_hour(_at), _conversations, _messages, _tokens,
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

-- The hours of what the slots already count.
INSERT INTO application_stats_hourly (workspace_id, application_id, slot, conversations, messages,
                                      total_tokens, likes, dislikes, failed_replies, latencies)
SELECT c.workspace_id, c.application_id, c.hour, c.conversations, c.messages, c.total_tokens,
       c.likes, c.dislikes, c.failed_replies, COALESCE(l.latencies, '{}'::jsonb)
FROM (SELECT workspace_id, application_id, weft_stats_hour(slot) AS hour,
             sum(conversations) AS conversations, sum(messages) AS messages,
             sum(total_tokens) AS total_tokens, sum(likes) AS likes, sum(dislikes) AS dislikes,
             sum(failed_replies) AS failed_replies
      FROM application_stats GROUP BY 1, 2, 3) c
LEFT JOIN (SELECT application_id, hour, jsonb_object_agg(bin, n) AS latencies
           FROM (SELECT application_id, weft_stats_hour(slot) AS hour, h.key AS bin,
                        sum(h.value::integer) AS n
                 FROM application_stats, jsonb_each_text(latencies) h GROUP BY 1, 2, 3) b
           GROUP BY 1, 2) l ON l.application_id = c.application_id AND l.hour = c.hour;
