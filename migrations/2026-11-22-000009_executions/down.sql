DROP TABLE node_execution_results;
DROP TABLE execution_records;
