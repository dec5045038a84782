// query.mjs runs a SQL script in an in-memory DuckDB and prints the last statement's rows as
// JSON lines (one array per row; BIGINT and timestamps as strings, doubles as JSON numbers).
// Quiver's tests use it as an independent reference engine; benchmarks time it.
//
//   node scripts/duckdb/query.mjs script.sql [--quiet]
//
// --quiet prints only {"rows": N, "seconds": S} for the last statement instead of its rows.
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: node query.mjs script.sql [--quiet]');
  process.exit(2);
}
const statements = readFileSync(file, 'utf8')
  .split(/;\s*\n/)
  .map((s) => s.trim())
  .filter((s) => s.length > 0);
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
const t0 = process.hrtime.bigint();
for (let i = 0; i < statements.length - 1; i++) {
  await conn.run(statements[i]);
}
const last = statements[statements.length - 1];
if (quiet) {
  const r = await conn.run(last);
  const changed = r.rowsChanged;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ rows: Number(changed), seconds }) + '\n');
} else {
  const reader = await conn.runAndReadAll(last);
  const rows = reader.getRowsJson();
  const out = [];
  for (const row of rows) out.push(JSON.stringify(row));
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
}
conn.closeSync();
