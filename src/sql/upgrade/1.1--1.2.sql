/*
 * pg_kms 1.1 -> 1.2.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.2 install script), so that
 * an upgraded database and a fresh 1.2 install have the same objects;
 * test/t/050_upgrade.pl compares the two catalogs (from 1.0 and from 1.1).
 * The Makefile builds sql/pg_kms--1.1--1.2.sql from this file followed by
 * the install checks (src/sql/060_install_checks.sql), which every update
 * runs again.  Released scripts (sql/pg_kms--1.0.sql, sql/pg_kms--1.1.sql,
 * sql/pg_kms--1.0--1.1.sql) are kept as they shipped.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.2'" to load this file. \quit
