DROP TABLE installed_plugins;
DROP TABLE plugins;
