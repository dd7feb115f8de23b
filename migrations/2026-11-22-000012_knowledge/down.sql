DROP TABLE dataset_application_joins;
DROP TABLE document_segments;
DROP TABLE documents;
DROP TABLE datasets;
