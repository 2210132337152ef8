/*
 * pg_kms 1.0 -> 1.1.  Applied by ALTER EXTENSION pg_kms UPDATE.  Each
 * change below mirrors one in src/sql/ (the 1.1 install script), so that
 * an upgraded database and a fresh 1.1 install have the same objects;
 * test/t/050_upgrade.pl compares the two schema dumps.
 */
\echo Use "ALTER EXTENSION pg_kms UPDATE TO '1.1'" to load this file. \quit
