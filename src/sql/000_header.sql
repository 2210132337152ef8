/* pg_kms install script (the current version), assembled by the Makefile from the files in src/sql. */
\echo Use "CREATE EXTENSION pg_kms" to load this file. \quit
