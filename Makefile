# pg_kms: PGXS build.  `make && make install`, then `make installcheck`
# against a server started with shared_preload_libraries = 'pg_kms'
# (scripts/test.sh does all of it on a throwaway cluster).

EXTENSION = pg_kms
EXTVERSION = 1.3
MODULE_big = pg_kms

# src/pg_kms.c is the module entry; each folder of src/ is one layer's part
# (README.md, "Layout"; make check-layers).
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))

# The install script is assembled from one SQL file per part, in name order.
SQL_PARTS = $(sort $(wildcard src/sql/*.sql))
# Upgrade scripts: src/sql/upgrade/<from>--<to>.sql, then the install checks.
UPGRADES = $(notdir $(wildcard src/sql/upgrade/*--*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(addprefix sql/$(EXTENSION)--,$(UPGRADES))
# Released scripts are kept as they shipped (sql/pg_kms--1.0.sql, 1.1, 1.2, 1.0--1.1, 1.1--1.2);
# the upgrade scripts between them are built from src/sql/upgrade/.
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

PG_CONFIG ?= pg_config

# pg_regress over sql/ in name order; the server must preload pg_kms.
REGRESS = $(basename $(notdir $(sort $(wildcard sql/[0-9]*.sql))))
REGRESS_OPTS = --dbname=contrib_regression
ISOLATION = $(basename $(notdir $(sort $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --outputdir=test/output_iso
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PG_CPPFLAGS = -I$(srcdir)/src -std=gnu99 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -Werror=implicit-function-declaration
# No libpq: the rotation worker logs in with its own SCRAM-only client (src/rotation/scram.c).
SHLIB_LINK = -lcrypto -lcurl
EXTRA_CLEAN = $(DATA_built) test/output_iso results regression.diffs regression.out \
	test/fuzz/fuzz_ciphertext test/kat/kat_gcm test/aws/sigv4_vectors tmp_check

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--%.sql: src/sql/upgrade/%.sql src/sql/060_install_checks.sql
	cat $^ > $@

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

# Stand-alone checks of the crypto core (no server needed).
CRYPTO_STANDALONE = src/crypto/crypto.c
test/kat/kat_gcm: test/kat/kat_gcm.c $(CRYPTO_STANDALONE) src/crypto/crypto.h
	$(CC) -O2 -Wall -I src/crypto -o $@ test/kat/kat_gcm.c $(CRYPTO_STANDALONE) -lcrypto
test/fuzz/fuzz_ciphertext: test/fuzz/fuzz_ciphertext.c $(CRYPTO_STANDALONE) src/crypto/crypto.h
	$(CC) -O1 -g -fsanitize=address,undefined -Wall -I src/crypto -o $@ test/fuzz/fuzz_ciphertext.c $(CRYPTO_STANDALONE) -lcrypto

# Layer check (issue 10): the include and call graph of src/ points down the
# layer order written in scripts/check_layers.py; no cycles; each table of
# schema kms written by the C code of one layer.  Fails on any
# finding (CHECK_LAYERS_FLAGS=--report only prints them).
CHECK_LAYERS_FLAGS ?=
.PHONY: check-standalone bench check-layers
check-layers:
	python3 scripts/check_layers.py $(CHECK_LAYERS_FLAGS)

# The SigV4 signer (plain C too) against the vectors in test/aws/sigv4/.
test/aws/sigv4_vectors: test/aws/sigv4_vectors.c src/aws/sigv4.c src/aws/sigv4.h
	$(CC) -O1 -Wall -I src/aws -o $@ test/aws/sigv4_vectors.c src/aws/sigv4.c -lcrypto

check-standalone: test/kat/kat_gcm test/fuzz/fuzz_ciphertext test/aws/sigv4_vectors
	./test/kat/kat_gcm
	./test/fuzz/fuzz_ciphertext 200000
	./test/aws/sigv4_vectors classic test/aws/sigv4/aws4_testsuite
	./test/aws/sigv4_vectors classic test/aws/sigv4/aws-docs-iam-listusers
	./test/aws/sigv4_vectors classic test/aws/sigv4/derived-json-protocol
	./test/aws/sigv4_vectors v4 test/aws/sigv4/aws-signing-test-suite-v4
	./test/aws/sigv4_vectors key

bench:
	bash bench/run.sh
