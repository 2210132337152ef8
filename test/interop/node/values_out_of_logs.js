// Store and read a secret with node-postgres, the value passed as a bind
// parameter ($1: the extended protocol), so the statement text never holds
// it.  Connection from the PG* environment variables.  argv: name value.
'use strict';
const { Client } = require('pg');

async function main() {
  const [name, value] = process.argv.slice(2);
  const client = new Client();
  await client.connect();
  try {
    await client.query("SET log_statement = 'all'");
    await client.query('SELECT create_secret($1, $2)', [name, value]);
    const res = await client.query('SELECT get_secret($1) AS v', [name]);
    if (res.rows[0].v !== value) {
      throw new Error('get_secret returned another value');
    }
    process.stdout.write('node-postgres round trip ok\n');
  } finally {
    await client.end();
  }
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
