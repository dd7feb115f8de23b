-- The function calls an agent made while writing a reply (id, name, arguments, result or
-- error, in the order they were made), so that a conversation's history shows them.
ALTER TABLE messages
    ADD COLUMN tool_calls jsonb NOT NULL DEFAULT '[]'::jsonb
        CONSTRAINT messages_tool_calls_is_array CHECK (jsonb_typeof(tool_calls) = 'array');
