-- How many feedback rows a message has, kept by a trigger on message_feedbacks, so that a page
-- of messages looks for the feedback of only the messages that have some (most have none: a
-- user's own messages never do).
ALTER TABLE messages
    ADD COLUMN feedback_count integer NOT NULL DEFAULT 0
        CONSTRAINT messages_feedback_count_check CHECK (feedback_count >= 0);

-- A change of the count alone is not an edit of the message: its updated_at stays (the
-- backfill below included).
DROP TRIGGER set_updated_at ON messages;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON messages FOR EACH ROW
    WHEN (OLD.feedback_count IS NOT DISTINCT FROM NEW.feedback_count)
    EXECUTE FUNCTION weft_set_updated_at();

UPDATE messages m SET feedback_count = f.n
FROM (SELECT message_id, count(*)::integer AS n FROM message_feedbacks GROUP BY message_id) f
WHERE f.message_id = m.id;

CREATE FUNCTION weft_count_message_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE messages SET feedback_count = feedback_count + 1 WHERE id = NEW.message_id;
    ELSE
        UPDATE messages SET feedback_count = feedback_count - 1 WHERE id = OLD.message_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER count_message_feedback AFTER INSERT OR DELETE ON message_feedbacks
    FOR EACH ROW EXECUTE FUNCTION weft_count_message_feedback();
