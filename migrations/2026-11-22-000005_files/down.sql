DROP TABLE file_references;
