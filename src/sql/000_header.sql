/* pg_kms install script, assembled from src/sql/*.sql by the Makefile. */
\echo Use "CREATE EXTENSION pg_kms" to load this file. \quit
