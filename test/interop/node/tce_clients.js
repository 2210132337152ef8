// node-postgres write and read paths of an encrypted column
// (test/interop/test_tce_clients.py runs it).
//
//   node tce_clients.js write TABLE PREFIX   rows 300..: untyped $1, typed
//                                            ($2::text, $2::encrypted_text),
//                                            a named statement run twice,
//                                            Buffer parameters (binary format)
//   node tce_clients.js read TABLE           prints JSON {id: [t, b]} of the
//                                            node rows as node-postgres reads them
//   node tce_clients.js denied TABLE         exits 0 iff reading t fails with 42501
// Connection from PGHOST/PGPORT/PGUSER/PGDATABASE.
'use strict';
const { Client } = require('pg');

async function main() {
  const [mode, table, prefix] = process.argv.slice(2);
  const c = new Client();
  await c.connect();
  try {
    if (mode === 'write') {
      const ins = `INSERT INTO ${table} (id, path, t, b) VALUES ($1, $2, $3, $4)`;
      // untyped parameters: the server infers encrypted_text / encrypted_bytea
      await c.query(ins, [300, 'node untyped', `${prefix}-node-untyped`, Buffer.from(`${prefix}-node-untyped-b`)]);
      // typed in the SQL text
      await c.query(`INSERT INTO ${table} (id, path, t, b) VALUES ($1, $2, $3::text, $4::bytea)`,
        [301, 'node typed text', `${prefix}-node-typed-text`, Buffer.from(`${prefix}-node-typed-text-b`)]);
      await c.query(`INSERT INTO ${table} (id, path, t, b) VALUES ($1, $2, $3::encrypted_text, $4::encrypted_bytea)`,
        [302, 'node typed encrypted', `${prefix}-node-typed-enc`, Buffer.from(`${prefix}-node-typed-enc-b`)]);
      // a named (prepared) statement, executed twice
      for (const id of [303, 304]) {
        await c.query({ name: 'tce_ins', text: ins, values: [id, 'node named', `${prefix}-node-named-${id}`, Buffer.from(`${prefix}-node-named-${id}-b`)] });
      }
      // a Buffer for the text column too: binary format, encrypted_text's receive
      await c.query(ins, [305, 'node buffer', Buffer.from(`${prefix}-node-buffer`), Buffer.from(`${prefix}-node-buffer-b`)]);
      // UPDATE with a parameter
      await c.query(`UPDATE ${table} SET t = $2 WHERE id = $1`, [300, `${prefix}-node-untyped`]);
    } else if (mode === 'read') {
      const r = await c.query(`SELECT id, t, b FROM ${table} WHERE id BETWEEN 300 AND 399 ORDER BY id`);
      const out = {};
      for (const row of r.rows) out[row.id] = [row.t, row.b];
      process.stdout.write(JSON.stringify(out));
    } else if (mode === 'denied') {
      try {
        await c.query(`SELECT t FROM ${table} WHERE id = 300`);
        console.error('read succeeded');
        process.exitCode = 1;
      } catch (e) {
        if (e.code !== '42501') {
          console.error(`unexpected error ${e.code}: ${e.message}`);
          process.exitCode = 1;
        }
      }
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } finally {
    await c.end();
  }
}

main().catch((e) => { console.error(e.message); process.exit(1); });
