/**
 * The floor for intake: a lean Express app that parses the JSON body, runs the same generated
 * base R4 validator the gateway runs, and stores the body with one INSERT, on the same engine and
 * with the same durability (SQLite WAL with synchronous=FULL, or a PostgreSQL pool). Intake is
 * measured against it in the same run (bench/lean-intake.ts): the ratio is what the gateway's
 * own work (translation, the site check, the referral claim, the Task, the index) costs.
 *
 * LEAN_DATABASE_URL=postgres://... stores in PostgreSQL (a table in a schema of its own); else
 * LEAN_SQLITE_FILE (required then).
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import express from 'express';
import pg from 'pg';
import { FhirValidator } from '../src/fhir/validation/index.js';

const validator = await FhirValidator.load({ profilesDir: 'profiles' });
const databaseUrl = process.env['LEAN_DATABASE_URL'];

let insert: (id: string, content: string) => Promise<void>;
let close: () => Promise<void>;
if (databaseUrl !== undefined) {
  const schema = `lean_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10, options: `-c search_path=${schema}` });
  pool.on('error', () => undefined);
  await pool.query(`create schema ${schema}`);
  await pool.query('create table intake (id text primary key, content jsonb not null)');
  insert = async (id, content) => {
    await pool.query('insert into intake (id, content) values ($1, $2)', [id, content]);
  };
  close = async () => {
    await pool.query(`drop schema ${schema} cascade`);
    await pool.end();
  };
} else {
  const file = process.env['LEAN_SQLITE_FILE'];
  if (file === undefined) throw new Error('Set LEAN_DATABASE_URL or LEAN_SQLITE_FILE');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('create table if not exists intake (id text primary key, content text not null)');
  const statement = db.prepare('insert into intake (id, content) values (?, ?)');
  insert = async (id, content) => {
    statement.run(id, content);
  };
  close = async () => {
    db.close();
  };
}

const app = express();
app.use(express.json({ type: () => true, limit: '5mb' }));
app.post('/fhir/ServiceRequest', async (req, res) => {
  const issues = validator.validateBase(req.body);
  if (issues.some((i) => i.severity === 'error')) {
    res
      .status(400)
      .type('application/fhir+json')
      .send(JSON.stringify({ resourceType: 'OperationOutcome', issue: issues }));
    return;
  }
  const id = randomUUID();
  await insert(id, JSON.stringify({ ...req.body, id }));
  res.status(201).location(`ServiceRequest/${id}`).end();
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ message: 'lean intake listening', port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => server.close(() => void close().then(() => process.exit(0))));
