#!/usr/bin/env bash
# test/aws/make_ca.sh DIR: a throwaway CA and a server certificate for
# 127.0.0.1 / localhost signed by it (DIR/ca.pem, DIR/server.pem,
# DIR/server.key), for the emulator; the tests point the client at ca.pem,
# so TLS verification stays on.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
	-subj "/CN=pg_kms test CA" -addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
	-subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-out server.pem -days 2 -extfile ext.cnf 2>/dev/null
chmod 600 server.key ca.key
