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
END;
$$;
DROP TABLE application_stats_hourly;
DROP FUNCTION weft_stats_hour(timestamptz);
