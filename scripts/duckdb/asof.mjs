// The DuckDB side of scripts/bench.sh's dataset benchmark: the same point-in-time join that
// `quiver dataset create` does — an ASOF LEFT JOIN of the entity rows with each view's
// deduplicated offline rows — written as zstd Parquet like the snapshot. Prints one JSON line.
//
//   node asof.mjs OUT.parquet ENTITIES.parquet VIEW=GLOB[:f0,f1,...] ...
import { DuckDBInstance } from '@duckdb/node-api';

const [out, entities, ...views] = process.argv.slice(2);
const threads = process.env.THREADS || '2';
const q = (s) => `'${s.replaceAll("'", "''")}'`;
const cols = [];
const joins = [];
views.forEach((spec, i) => {
  const [name, rest] = spec.split('=');
  const [glob, feats] = rest.split(':');
  const a = `v${i}`;
  for (const f of feats.split(',')) cols.push(`${a}.${f} AS ${name}__${f}`);
  joins.push(`ASOF LEFT JOIN read_parquet(${q(glob)}) ${a} ON e.entity_id = ${a}.entity_id AND e.event_timestamp >= ${a}.event_ts`);
});
const sql = `COPY (SELECT e.*, ${cols.join(', ')} FROM read_parquet(${q(entities)}) e ${joins.join(' ')}) ` +
  `TO ${q(out)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 131072)`;
const t0 = performance.now();
const inst = await DuckDBInstance.create(':memory:', { threads });
const con = await inst.connect();
const r = await con.runAndReadAll(sql);
const seconds = (performance.now() - t0) / 1000;
const rows = Number(r.getRows()[0]?.[0] ?? 0);
console.log(JSON.stringify({ seconds, rows, threads: Number(threads), sql }));
