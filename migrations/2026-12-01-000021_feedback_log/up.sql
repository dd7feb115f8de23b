-- An application's feedback log (Application.feedbacks), newest first, all ratings or one.
DROP INDEX message_feedbacks_application_id_idx;
CREATE INDEX message_feedbacks_application_created_idx
    ON message_feedbacks (application_id, created_at DESC, id DESC);
CREATE INDEX message_feedbacks_application_rating_created_idx
    ON message_feedbacks (application_id, rating, created_at DESC, id DESC);
