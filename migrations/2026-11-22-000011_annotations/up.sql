-- Builders' annotations of replies and end users' feedback on them (seed 000, section 6).
CREATE TABLE message_annotations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id      uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    application_id  uuid        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    question        text,
    content         text        NOT NULL,
    annotation_type varchar(50) NOT NULL DEFAULT 'CORRECTION'
                    CHECK (annotation_type IN ('CORRECTION', 'IMPROVEMENT', 'NOTE')),
    hit_count       integer     NOT NULL DEFAULT 0 CHECK (hit_count >= 0),
    annotated_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_annotations_workspace_created_idx ON message_annotations (workspace_id, created_at DESC);
CREATE INDEX message_annotations_message_id_idx ON message_annotations (message_id);
CREATE INDEX message_annotations_conversation_id_idx ON message_annotations (conversation_id);
CREATE INDEX message_annotations_application_id_idx ON message_annotations (application_id);
CREATE INDEX message_annotations_annotated_by_idx ON message_annotations (annotated_by);
SELECT weft_manage_updated_at('message_annotations');

CREATE TABLE message_feedbacks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id      uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    application_id  uuid        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    end_user_id     uuid        NOT NULL REFERENCES end_users (id) ON DELETE CASCADE,
    rating          varchar(20) NOT NULL CHECK (rating IN ('LIKE', 'DISLIKE')),
    content         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- One feedback per message and end user; a repeat replaces it.
    UNIQUE (message_id, end_user_id)
);
CREATE INDEX message_feedbacks_workspace_created_idx ON message_feedbacks (workspace_id, created_at DESC);
CREATE INDEX message_feedbacks_conversation_id_idx ON message_feedbacks (conversation_id);
CREATE INDEX message_feedbacks_application_id_idx ON message_feedbacks (application_id);
CREATE INDEX message_feedbacks_end_user_id_idx ON message_feedbacks (end_user_id);
SELECT weft_manage_updated_at('message_feedbacks');
