DROP TABLE message_feedbacks;
DROP TABLE message_annotations;
