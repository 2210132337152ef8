/*
 * Secrets Manager fidelity (issue 15): the secret's Type (CreateSecret and
 * UpdateSecret take it, DescribeSecret returns it), and whether the secret
 * ever had tags (DescribeSecret has no Tags member for a secret that was
 * never tagged, and "Tags": [] once the last tag is removed, as AWS).
 * Added after every other part's columns of kms.secret, so that an updated
 * database has the columns in the same order as a fresh install.
 */
ALTER TABLE kms.secret
	ADD COLUMN secret_type text CHECK (length(secret_type) <= 256),
	ADD COLUMN tagged boolean NOT NULL DEFAULT false;
