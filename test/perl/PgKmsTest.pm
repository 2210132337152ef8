# Copyright (c) pg_kms authors
#
# PgKmsTest: setup shared by pg_kms's TAP tests (test/t/*.pl), which load it
# with `use lib "$FindBin::RealBin/../perl"`.

package PgKmsTest;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw(master_key_file scram_only_hba);

# Write a master key file of 64 hex digits derived from ($mul, $add), so each
# test has its own fixed key, mode 0600 as pg_kms requires; return its path.
sub master_key_file
{
	my ($dir, $mul, $add) = @_;
	my $path = "$dir/master.key";
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh join('', map { sprintf('%02x', ($_ * $mul + $add) % 256) } 0 .. 31), "\n";
	close($fh);
	chmod(0600, $path) or die "could not chmod $path: $!";
	return $path;
}

# Replace initdb's trust lines so TCP logins really authenticate with SCRAM
# (the local socket stays trusted for the harness).
sub scram_only_hba
{
	my ($node) = @_;
	my $hba = $node->data_dir . '/pg_hba.conf';
	open(my $fh, '>', $hba) or die "could not write $hba: $!";
	print $fh "local all all trust\nlocal replication all trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
	close($fh);
	return;
}

1;
