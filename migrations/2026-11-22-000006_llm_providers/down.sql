DROP TABLE llm_providers;
