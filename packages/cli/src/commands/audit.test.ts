// `corral audit …` run as a user would: the real command, a temp state directory.
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { openAuditLog, postgresWhere, readWitness, recordBytes, sha256Hasher, verifyConsistency, verifyInclusion, witnessPath, type AuditEventInput } from '@corral/audit';
import { startPostgres, type TestPostgres } from '../../../../scripts/testing/postgres.ts';
import { CORRAL_BIN, corral, tempStateDir } from '../../test/corral.ts';

const event = (i: number): AuditEventInput => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
  actor: { kind: 'agent', id: 'agent:invoice-intake', onBehalfOf: { kind: 'human', id: 'alice@example.com' } },
  action: i % 2 ? 'net.connect' : 'run.exec',
  resource: i % 2 ? { kind: 'endpoint', id: 'api.example.com:443' } : { kind: 'command', id: '/bin/sh' },
  decision: { effect: i === 7 ? 'deny' : 'allow', policies: ['invoice-intake'] },
  outcome: { status: 'success', exitCode: 0 },
  details: { argv: ['/bin/sh', '-c', `echo ${i}`] },
  node: 'node-1',
});

let dir: string;
const cleanup: string[] = [];
const run = (args: string[]) => corral(['--state-dir', dir, 'audit', ...args]);

before(async () => {
  dir = tempStateDir();
  cleanup.push(dir);
  const log = await openAuditLog({ stateDir: dir, checkpointEvery: 5 });
  for (let i = 0; i < 12; i++) await log.append(event(i));
  await log.close();
});
after(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('corral audit', () => {
  it('tail -n 3 --json prints the last three records', async () => {
    const r = await run(['tail', '-n', '3', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).seq), [9, 10, 11]);
  });
  it('show 4 --json prints record 4 with its hashes', async () => {
    const r = await run(['show', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rec = JSON.parse(r.stdout);
    assert.equal(rec.seq, 4);
    assert.equal(sha256Hasher.leaf(rec.canonical), rec.hash);
  });
  it('show 99 fails naming the missing record, as a usage error (exit 2), in JSON with --json', async () => {
    const r = await run(['show', '99']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /AUDIT_NOT_FOUND/);
    const json = await run(['show', '99', '--json']);
    assert.deepEqual([json.code, JSON.parse(json.stdout).error.code], [2, 'AUDIT_NOT_FOUND']);
  });
  it('show with a non-number is a usage error', async () => {
    assert.equal((await run(['show', 'abc'])).code, 2);
  });
  it('verify --json passes the untouched log', async () => {
    const r = await run(['verify', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.sealed, 12);
  });
  it('proof inclusion 6 --json gives a proof that verifies against the signed root', async () => {
    const p = JSON.parse((await run(['proof', 'inclusion', '6', '--json'])).stdout);
    verifyInclusion(sha256Hasher, 6, p.treeSize, p.leafHash, p.proof, p.root);
    assert.equal(p.treeSize, 10);
  });
  it('proof consistency 5 12 --json gives a proof that verifies', async () => {
    const p = JSON.parse((await run(['proof', 'consistency', '5', '12', '--json'])).stdout);
    verifyConsistency(sha256Hasher, 5, 12, p.proof, p.root1, p.root2);
  });
  it('export --format ocsf writes OCSF 1.8.0 events, one per line: a run as its Launch and its Terminate', async () => {
    const r = await run(['export', '--format', 'ocsf']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.length, 18);
    assert.deepEqual([...new Set(events.map((e) => e.class_uid))].sort(), [1007, 4001]);
    assert.ok(events.every((e) => e.metadata.version === '1.8.0' && e.type_uid === e.class_uid * 100 + e.activity_id));
    assert.deepEqual(events.filter((e) => e.metadata.sequence === 4).map((e) => [e.class_uid, e.activity_name]), [[1007, 'Launch'], [1007, 'Terminate']]);
    assert.equal(events.filter((e) => e.action === 'Denied').length, 1);
  });
  it('export --since/--until selects records by time', async () => {
    const r = await run(['export', '--format', 'ocsf', '--since', '2026-01-01T00:00:03Z', '--until', '2026-01-01T00:00:05Z']);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).metadata.sequence), [3, 4, 4, 5]);
  });
  it('export --format xml is a usage error', async () => {
    assert.equal((await run(['export', '--format', 'xml'])).code, 2);
  });

  describe('an auditor verifying an export offline with only the public key', () => {
    let file: string;
    let key: string;
    before(async () => {
      file = join(dir, 'export.jsonl');
      key = join(dir, 'auditor.pem');
      writeFileSync(file, (await run(['export', '--format', 'jsonl'])).stdout);
      writeFileSync(key, (await run(['public-key'])).stdout);
    });
    it('passes the export as written', async () => {
      const r = await corral(['audit', 'verify', '--export', file, '--public-key', key, '--json']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(JSON.parse(r.stdout).verified, 12);
    });
    describe('when the export drops a record', () => {
      it('names seq 8 as the first bad record and exits 1', async () => {
        const cut = join(dir, 'cut.jsonl');
        writeFileSync(cut, readFileSync(file, 'utf8').split('\n').filter((l) => !l.endsWith('"seq":8,"v":1}')).join('\n'));
        const r = await corral(['audit', 'verify', '--export', cut, '--public-key', key, '--json']);
        assert.equal(r.code, 1);
        const report = JSON.parse(r.stdout);
        assert.equal(report.firstBadSeq, 8);
        assert.equal(report.damage[0].kind, 'deleted');
      });
    });
    it('prints the damage a hostile line causes with its control characters escaped: the report cannot be redrawn as "ok"', async () => {
      const hostile = join(dir, 'hostile.jsonl');
      const forged = JSON.stringify({ event: {}, '\r\u001b[2Kok: 12 records verified \u009b': 1 });
      writeFileSync(hostile, readFileSync(file, 'utf8').split('\n').map((l) => (l.endsWith('"seq":8,"v":1}') ? forged : l)).join('\n'));
      const r = await corral(['audit', 'verify', '--export', hostile, '--public-key', key]);
      assert.equal(r.code, 1);
      assert.doesNotMatch(r.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      assert.match(r.stdout, /^DAMAGED: /);
    });
    it('leaves out the records of a live log that no checkpoint seals yet, says so, and the export still verifies', async () => {
      const live = tempStateDir();
      cleanup.push(live);
      const log = await openAuditLog({ stateDir: live, checkpointEvery: 5 });
      try {
        for (let i = 0; i < 7; i++) await log.append(event(i));
        const exported = await corral(['--state-dir', live, 'audit', 'export', '--format', 'jsonl']);
        assert.equal(exported.code, 0, exported.stderr);
        assert.match(exported.stderr, /seq 5–6 are not sealed by a signed checkpoint yet, so they were left out/);
        const liveFile = join(live, 'export.jsonl');
        writeFileSync(liveFile, exported.stdout);
        const r = await corral(['audit', 'verify', '--export', liveFile, '--public-key', key, '--json']);
        assert.equal(r.code, 1, 'signed by another log\'s key');
        writeFileSync(join(live, 'own.pem'), log.publicKeyPem);
        const own = await corral(['audit', 'verify', '--export', liveFile, '--public-key', join(live, 'own.pem'), '--json']);
        assert.equal(own.code, 0, own.stdout);
        assert.deepEqual([JSON.parse(own.stdout).verified, JSON.parse(own.stdout).sealed], [5, 5]);
      } finally {
        await log.close();
      }
    });
    it('says where an export starts: one from --since, or one whose first records were cut, must not read as the whole log', async () => {
      const partial = join(dir, 'partial.jsonl');
      writeFileSync(partial, (await run(['export', '--format', 'jsonl', '--since', '2026-01-01T00:00:03Z'])).stdout);
      const r = await corral(['audit', 'verify', '--export', partial, '--public-key', key]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok: .*: seq 3–11 \(9 records\) verified, sealed by /);
      assert.match(r.stdout, /note: this export starts at seq 3: seq 0–2 are not in it, and nothing here verifies them/);
      assert.doesNotMatch(r.stdout, /not yet covered/);
      const json = await corral(['audit', 'verify', '--export', partial, '--public-key', key, '--json']);
      assert.deepEqual([JSON.parse(json.stdout).from, JSON.parse(json.stdout).verified], [3, 9]);
    });
    it('refuses an export piped in on /dev/stdin as a usage error saying to save it first, instead of reporting its records missing', async () => {
      const r = await corral(['audit', 'verify', '--export', '/dev/stdin', '--public-key', key], { input: readFileSync(file, 'utf8') });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /is not a regular file.*save it to a file first.*AUDIT_BAD_ARGUMENT/);
      assert.equal(r.stdout, '');
    });
    it('refuses --export without --public-key as a usage error', async () => {
      assert.equal((await corral(['audit', 'verify', '--export', file])).code, 2);
    });
    it('refuses the signing key given as --public-key, naming the file and never printing the key (regression: the public key derived from it was trusted)', async () => {
      const pem = readFileSync(join(dir, 'audit-signing-key.pem'), 'utf8');
      const r = await corral(['audit', 'verify', '--export', file, '--public-key', join(dir, 'audit-signing-key.pem')]);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stderr, /audit-signing-key\.pem holds a private key.*AUDIT_KEY_UNAVAILABLE/);
      for (const l of pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))) assert.ok(!(r.stdout + r.stderr).includes(l.slice(0, 16)), 'the private key was printed');
    });
    it('names a missing public key file', async () => {
      const r = await corral(['audit', 'verify', '--export', file, '--public-key', join(dir, 'nope.pem')]);
      assert.equal(r.code, 3, 'could not check: not damage (1)');
      assert.match(r.stderr, /AUDIT_KEY_UNAVAILABLE/);
      assert.match(r.stderr, /cannot read the public key \S*nope\.pem: there is no such file/);
      assert.doesNotMatch(r.stderr, /ENOENT/);
    });
    it('names a missing export as a bad argument in words, not as a malformed export by its errno name', async () => {
      const r = await corral(['audit', 'verify', '--export', join(dir, 'nope.jsonl'), '--public-key', key, '--json']);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(JSON.parse(r.stdout).error.code, 'AUDIT_BAD_ARGUMENT');
      assert.match(r.stderr, /cannot read the export \S*nope\.jsonl: there is no such file/);
      assert.doesNotMatch(r.stderr, /ENOENT/);
    });
  });

  describe('when the live database is edited', () => {
    /** A state directory of its own holding a closed log of six records, removed after the file's tests. */
    async function sixRecordLog(): Promise<string> {
      const copy = tempStateDir();
      cleanup.push(copy);
      const log = await openAuditLog({ stateDir: copy });
      for (let i = 0; i < 6; i++) await log.append(event(i));
      await log.close();
      return copy;
    }

    it('export --since/--until leaves out rows in the window at seq -1 and beyond the head, which no append put there, however well they hash (regression: the ocsf export sent them to the SIEM as the log\'s)', async () => {
      const copy = await sixRecordLog();
      const db = new DatabaseSync(join(copy, 'audit.db'));
      const row = db.prepare('SELECT time_ms, hash, body FROM audit_records WHERE seq = 4').get() as { time_ms: number; hash: Uint8Array; body: string };
      const prev = Buffer.from(row.hash).toString('hex');
      const insert = db.prepare("INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES (?, ?, ?, ?, x'', ?)");
      for (const seq of [-1, 6]) insert.run(seq, row.time_ms, Buffer.from(prev, 'hex'), Buffer.from(sha256Hasher.leaf(recordBytes(seq, prev, row.body)), 'hex'), row.body);
      db.close();
      for (const format of ['ocsf', 'jsonl']) {
        const r = await corral(['--state-dir', copy, 'audit', 'export', '--format', format, '--since', '2026-01-01T00:00:04Z', '--until', '2026-01-01T00:00:04Z']);
        assert.equal(r.code, 0, r.stderr);
        const seqs = r.stdout.trim().split('\n').flatMap((l) => {
          const line = JSON.parse(l);
          return format === 'ocsf' ? [line.metadata.sequence] : line.seq === undefined ? [] : [line.seq];
        });
        // The jsonl export is a contiguous run of the log's records: it may hold more than the window, never those rows.
        if (format === 'ocsf') assert.deepEqual([...new Set(seqs)], [4], r.stdout);
        else assert.ok(seqs.includes(4) && seqs.every((s) => s >= 0 && s < 6), `jsonl: ${seqs}`);
      }
    });

    it('verify exits 1 naming seq 5 as misindexed when its time index is moved out of the window export --since selects by (regression: verify said ok, and the export left the record out)', async () => {
      const copy = await sixRecordLog();
      const db = new DatabaseSync(join(copy, 'audit.db'));
      db.exec('UPDATE audit_records SET time_ms = 0 WHERE seq = 5');
      db.close();
      const r = await corral(['--state-dir', copy, 'audit', 'verify']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^ {2}misindexed at seq 5: /m);
      const json = await corral(['--state-dir', copy, 'audit', 'verify', '--json']);
      assert.deepEqual(JSON.parse(json.stdout).damage.map((d: { kind: string; seq: number }) => [d.kind, d.seq]), [['misindexed', 5]]);
    });

    const unchained = (db: DatabaseSync) => {
      // A record 3 that passes its own leaf check, chained onto no record of the log.
      const { body } = db.prepare('SELECT body FROM audit_records WHERE seq = 3').get() as { body: string };
      const prev = 'ab'.repeat(32);
      db.prepare('UPDATE audit_records SET prev = ?, hash = ? WHERE seq = 3').run(Buffer.from(prev, 'hex'), Buffer.from(sha256Hasher.leaf(recordBytes(3, prev, body)), 'hex'));
    };
    for (const [what, alter, says] of [
      ['deleted', (db: DatabaseSync) => db.exec('DELETE FROM audit_records WHERE seq = 3'), /holds no record 3\b.*\[AUDIT_CHAIN_BROKEN\]/],
      ['rehashed onto another predecessor', unchained, /record 3 that does not chain onto record 2.*\[AUDIT_CHAIN_BROKEN\]/],
    ] as const) {
      it(`tail stops with exit 1 and AUDIT_CHAIN_BROKEN at a record ${what}, after the records before it (regression: it printed on as if the chain were whole)`, async () => {
        const copy = await sixRecordLog();
        const db = new DatabaseSync(join(copy, 'audit.db'));
        alter(db);
        db.close();
        const r = await corral(['--state-dir', copy, 'audit', 'tail', '-n', '5', '--json']);
        assert.equal(r.code, 1, r.stderr);
        const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
        assert.deepEqual(lines.map((l) => l.seq ?? l.error.code), [1, 2, 'AUDIT_CHAIN_BROKEN']);
        assert.match(r.stderr, says);
      });
    }

    it('verify names seq 2 as edited and exits 1', async () => {
      const copy = await sixRecordLog();
      const db = new DatabaseSync(join(copy, 'audit.db'));
      db.exec(`UPDATE audit_records SET body = replace(body, 'echo 2', 'echo X') WHERE seq = 2`);
      db.close();
      const r = await corral(['--state-dir', copy, 'audit', 'verify', '--json']);
      assert.equal(r.code, 1);
      const report = JSON.parse(r.stdout);
      assert.equal(report.firstBadSeq, 2);
      assert.equal(report.damage[0].kind, 'edited');
      for (const args of [['show', '2'], ['proof', 'inclusion', '2'], ['tail', '-n', '5']]) {
        const refused = await corral(['--state-dir', copy, 'audit', ...args]);
        assert.equal(refused.code, 1, `${args.join(' ')} vouched for the edited record: ${refused.stdout}`);
        assert.match(refused.stderr, /record 2 no longer hashes to the leaf hash stored when it was appended: it was altered.*AUDIT_CHAIN_BROKEN/);
      }
      assert.equal((await corral(['--state-dir', copy, 'audit', 'show', '3'])).code, 0, 'the records around it still show');
    });
    describe('show, tail and the OCSF export refuse a record whose body and hash were rewritten together with AUDIT_RECORD_MALFORMED', () => {
      for (const [name, rewrite] of [
        ['not an event (they died of a TypeError)', () => '{"action":"run.exec","time":"2026-01-01T00:00:02.000Z"}'],
        ['nested 200,000 deep (they died of a RangeError)', (body: string) => body.replace('"details":{', `"details":{"deep":${'['.repeat(200_000)}${']'.repeat(200_000)},`)],
        ['a member twice, which parsers read differently (one was shown)', (body: string) => body.replace('"action":"run.exec"', '"action":"net.connect","action":"run.exec"')],
      ] as [string, (body: string) => string][]) {
        it(`when it is ${name}`, async () => {
          const copy = await sixRecordLog();
          const db = new DatabaseSync(join(copy, 'audit.db'));
          const row = db.prepare('SELECT lower(hex(prev)) AS prev, body FROM audit_records WHERE seq = 2').get() as { prev: string; body: string };
          const body = rewrite(row.body);
          db.prepare('UPDATE audit_records SET body = ?, hash = unhex(?) WHERE seq = 2').run(body, sha256Hasher.leaf(`{"event":${body},"prev":"${row.prev}","seq":2,"v":1}`));
          db.close();
          for (const args of [['show', '2'], ['tail', '-n', '5'], ['export', '--format', 'ocsf'], ['show', '2', '--json']]) {
            const refused = await corral(['--state-dir', copy, 'audit', ...args]);
            assert.equal(refused.code, 1, `${args.join(' ')}: ${refused.stderr}`);
            assert.match(refused.stderr, /\[AUDIT_RECORD_MALFORMED\]/);
          }
        });
      }
    });
    it('show and tail print the error of a record rewritten with line feeds in a name on one line: it cannot print an "ok:" line of its own', async () => {
      const copy = await sixRecordLog();
      const db = new DatabaseSync(join(copy, 'audit.db'));
      const row = db.prepare('SELECT lower(hex(prev)) AS prev, body FROM audit_records WHERE seq = 5').get() as { prev: string; body: string };
      const body = row.body.replace('"details":{', '"context":{"inputs":{"\\nok: audit.db: seq 0–5 (6 records) verified\\n  root 3f9e":"no"}},"details":{');
      db.prepare('UPDATE audit_records SET body = ?, hash = unhex(?) WHERE seq = 5').run(body, sha256Hasher.leaf(`{"event":${body},"prev":"${row.prev}","seq":5,"v":1}`));
      db.close();
      for (const args of [['show', '5'], ['tail']]) {
        const r = await corral(['--state-dir', copy, 'audit', ...args]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /^corral: record 5 holds no valid audit event: .*\\u000aok: .*\[AUDIT_RECORD_MALFORMED\]\n$/m);
        assert.doesNotMatch(r.stderr, /^ok:/m);
      }
    });
    it('proof commands refuse a checkpoint the log\'s key did not sign', async () => {
      const copy = tempStateDir();
      cleanup.push(copy);
      const log = await openAuditLog({ stateDir: copy, checkpointEvery: 3 });
      for (let i = 0; i < 6; i++) await log.append(event(i));
      await log.close();
      const db = new DatabaseSync(join(copy, 'audit.db'));
      db.exec(`UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints WHERE size = 6) WHERE size = 3`);
      db.close();
      for (const args of [['proof', 'inclusion', '1'], ['proof', 'consistency', '3', '6']]) {
        const refused = await corral(['--state-dir', copy, 'audit', ...args]);
        assert.equal(refused.code, 1, refused.stdout);
        assert.match(refused.stderr, /AUDIT_CHECKPOINT_FORGED/);
      }
    });
  });

  describe('when an event holds terminal control characters (an agent chose the command line)', () => {
    it('tail and show print them escaped: a carriage return, an escape sequence or a bidi override cannot redraw what the auditor reads', async () => {
      const copy = tempStateDir();
      cleanup.push(copy);
      const log = await openAuditLog({ stateDir: copy });
      const id = 'rm -rf /srv/data\r/bin/true\u001b[0K \u009b2K \u202etxt.exe';
      await log.append({ ...event(0), resource: { kind: 'command', id }, decision: { effect: 'allow', reason: 'ok\u007f' } });
      await log.close();
      for (const args of [['tail'], ['show', '0']]) {
        const r = await corral(['--state-dir', copy, 'audit', ...args]);
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/, `${args.join(' ')} printed a control character raw`);
        assert.match(r.stdout, /rm -rf \/srv\/data\\u000d\/bin\/true\\u001b\[0K/);
      }
      const json = await corral(['--state-dir', copy, 'audit', 'show', '0', '--json']);
      assert.equal(JSON.parse(json.stdout).event.resource.id, id, '--json keeps the exact text');
    });
  });

  describe('bad input', () => {
    it('names the missing log of an empty state directory', async () => {
      const r = await corral(['audit', 'tail']);
      assert.equal(r.code, 3);
      assert.match(r.stderr, /no audit log at .*audit\.db: nothing has recorded to this state directory yet .*, or the log is in another one \[AUDIT_STORE_UNAVAILABLE\]/);
    });
    it('names the count option by both its spellings, -n (--lines), exit 2 (regression: --lines alone, which a command line with -n does not hold)', async () => {
      const r = await corral(['audit', 'tail', '-n', 'ten']);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, "corral: -n (--lines) must be a non-negative integer, got 'ten'\n");
    });
    it('names a foreign database', async () => {
      const other = tempStateDir();
      cleanup.push(other);
      writeFileSync(join(other, 'audit.db'), 'not sqlite at all\n'.repeat(100));
      const r = await corral(['--state-dir', other, 'audit', 'verify', '--json']);
      assert.equal(r.code, 3, 'could not check: not damage (1)');
      assert.match(r.stderr, /AUDIT_STORE_FOREIGN/);
      assert.equal(JSON.parse(r.stdout).error.code, 'AUDIT_STORE_FOREIGN');
    });
  });

  describe('a --checkpoint file that is not a checkpoint', () => {
    for (const [name, text] of [['text that is not JSON', 'not json\n'], ['an empty file', ''], ['null', 'null\n']] as const) {
      it(`holding ${name} is a usage error naming the file, not an internal error`, async () => {
        const file = join(dir, `bad-${name.replaceAll(' ', '-')}.cp`);
        writeFileSync(file, text);
        const r = await run(['verify', '--checkpoint', file]);
        assert.equal(r.code, 2, r.stderr);
        assert.ok(r.stderr.includes(`${file} is not a checkpoint`), r.stderr);
        assert.match(r.stderr, /\[AUDIT_CHECKPOINT_MALFORMED\]/);
        assert.doesNotMatch(r.stderr, /internal error/);
      });
    }
  });

  it('names a --checkpoint file that is not there in words, a usage error (regression: ENOENT)', async () => {
    const r = await run(['verify', '--checkpoint', join(dir, 'nope.cp')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--checkpoint: cannot read the checkpoint \S*nope\.cp: there is no such file/);
    assert.doesNotMatch(r.stderr, /ENOENT/);
  });

  describe('when the log is rolled back to an earlier copy of its database', () => {
    it('verify --checkpoint with a checkpoint kept from before the copy still names the rollback against the checkpoint the state directory kept (regression: the kept checkpoint replaced it, and the rolled-back log passed, exit 0)', async () => {
      const state = tempStateDir();
      cleanup.push(state);
      const db = join(state, 'audit.db');
      const sidecars = ['', '-wal', '-shm'];
      const first = await openAuditLog({ stateDir: state, checkpointEvery: 5 });
      for (let i = 0; i < 10; i++) await first.append(event(i));
      await first.close();
      for (const s of sidecars) if (existsSync(db + s)) copyFileSync(db + s, `${db}.copy${s}`);
      const exported = await corral(['--state-dir', state, 'audit', 'export', '--format', 'jsonl']);
      const kept = join(state, 'kept.json');
      writeFileSync(kept, exported.stdout.split('\n').find((l) => l.startsWith('{"checkpoint":{') && JSON.parse(l).checkpoint.size === 5) as string);
      const second = await openAuditLog({ stateDir: state, checkpointEvery: 5 });
      for (let i = 10; i < 20; i++) await second.append(event(i));
      await second.close();
      assert.equal(readWitness(witnessPath(state))?.size, 20);
      for (const s of sidecars) {
        rmSync(db + s, { force: true });
        if (existsSync(`${db}.copy${s}`)) copyFileSync(`${db}.copy${s}`, db + s);
      }
      for (const args of [[], ['--checkpoint', kept]]) {
        const r = await corral(['--state-dir', state, 'audit', 'verify', '--json', ...args]);
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.deepEqual(JSON.parse(r.stdout).damage.map((d: { kind: string; seq: number; checkpointSize: number }) => [d.kind, d.seq, d.checkpointSize]), [['rolled-back', 10, 20]], args.join(' '));
      }
    });
  });

  describe('--since and --until', () => {
    for (const bad of ['12', '2026-02-30', '2026-01-01T00:00:03', '2026-01-01T24:00:00Z']) {
      it(`refuse '${bad}' as a usage error naming --since (Date.parse reads 12 as 2001 and rolls 02-30 into March)`, async () => {
        const r = await run(['export', '--format', 'ocsf', '--since', bad]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /--since must be a date/);
      });
    }
    it('accept a time with an offset', async () => {
      const r = await run(['export', '--format', 'ocsf', '--since', '2026-01-01T01:00:03+01:00', '--until', '2026-01-01T00:00:04.000Z']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l).metadata.sequence), [3, 4, 4]);
    });
    it('take a date as the whole day: --until 2026-01-01 keeps that day\'s records (regression: it meant midnight at its start, and dropped the day)', async () => {
      const r = await run(['export', '--format', 'ocsf', '--since', '2026-01-01', '--until', '2026-01-01']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split('\n').length, 18);
      assert.equal((await run(['export', '--format', 'ocsf', '--until', '2025-12-31'])).stdout, '');
    });
    it('select by --until alone the records of any year from 0000, out of order too (regression: a time before 1970 was left out)', async () => {
      const state = tempStateDir();
      cleanup.push(state);
      const log = await openAuditLog({ stateDir: state, checkpointEvery: 1 });
      for (const time of ['1969-12-31T23:59:59.999Z', '0000-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z']) await log.append({ ...event(0), time });
      await log.close();
      for (const format of ['ocsf', 'jsonl']) {
        const r = await corral(['--state-dir', state, 'audit', 'export', '--format', format, '--until', '2025-12-31']);
        assert.equal(r.code, 0, r.stderr);
        const seqs = r.stdout.trim().split('\n').flatMap((l) => {
          const line = JSON.parse(l);
          return format === 'ocsf' ? [line.metadata.sequence] : line.seq === undefined ? [] : [line.seq];
        });
        // The jsonl export is the contiguous run from the first record in the window to the last (docs/audit.md).
        assert.deepEqual([...new Set(seqs)], format === 'ocsf' ? [0, 1, 3] : [0, 1, 2, 3], `${format}: ${r.stdout}`);
      }
    });
    it('refuse --since later than --until as a usage error', async () => {
      const r = await run(['export', '--format', 'jsonl', '--since', '2026-01-02', '--until', '2026-01-01']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--since .* is later than --until/);
    });
  });

  describe('when the state directory holds another key than the log was created with', () => {
    it('public-key refuses with AUDIT_KEY_UNAVAILABLE instead of printing the other key beside the log\'s key id', async () => {
      const copy = tempStateDir();
      cleanup.push(copy);
      const log = await openAuditLog({ stateDir: copy });
      await log.append(event(0));
      await log.close();
      const { privateKey } = generateKeyPairSync('ed25519');
      writeFileSync(join(copy, 'audit-signing-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
      const r = await corral(['--state-dir', copy, 'audit', 'public-key', '--json']);
      assert.equal(r.code, 3, r.stdout);
      assert.equal(JSON.parse(r.stdout).error.code, 'AUDIT_KEY_UNAVAILABLE', 'the error, and no key');
      assert.ok(r.stderr.includes(log.keyId), r.stderr);
      assert.match(r.stderr, /AUDIT_KEY_UNAVAILABLE/);
    });
  });

  describe('when a column of the live database holds a value of another type', () => {
    it("verify reports root = 'zzz' as damage to the checkpoint at size 10 and show a text hash as AUDIT_RECORD_MALFORMED", async () => {
      const copy = tempStateDir();
      cleanup.push(copy);
      const log = await openAuditLog({ stateDir: copy, checkpointEvery: 5 });
      for (let i = 0; i < 12; i++) await log.append(event(i));
      await log.close();
      const db = new DatabaseSync(join(copy, 'audit.db'));
      db.exec("UPDATE audit_checkpoints SET root = 'zzz' WHERE size = 10; UPDATE audit_records SET hash = lower(hex(hash)) WHERE seq = 3");
      db.close();
      const r = await corral(['--state-dir', copy, 'audit', 'verify', '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).damage.map((d: { kind: string; seq: number | null; checkpointSize?: number }) => [d.kind, d.seq, d.checkpointSize]), [
        ['malformed', 3, undefined],
        ['checkpoint-forged', null, 10],
      ]);
      const show = await corral(['--state-dir', copy, 'audit', 'show', '3']);
      assert.equal(show.code, 1);
      assert.match(show.stderr, /audit_records row seq 3: column hash is text .*\[AUDIT_RECORD_MALFORMED\]/);
    });
  });

  it('tail -f prints a record appended after it started', async () => {
    const child = spawn(CORRAL_BIN, ['--state-dir', dir, 'audit', 'tail', '-n', '1', '-f', '--json'], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const waitFor = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`tail -f never printed ${text}: ${out}`)), 15_000);
        const check = () => out.includes(text) && (clearTimeout(timer), resolve());
        child.stdout.on('data', (c: Buffer) => ((out += c.toString()), check()));
        check();
      });
    try {
      await waitFor('"seq":11');
      const log = await openAuditLog({ stateDir: dir });
      await log.append(event(12));
      await log.close();
      await waitFor('"seq":12');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('export says on stderr how many lines it has written once it has taken 2 s (here: a reader slower than it), the export alone on stdout (regression: nothing for as long as it took)', async () => {
    const big = tempStateDir();
    cleanup.push(big);
    const log = await openAuditLog({ stateDir: big });
    // Far more than a pipe and the streams' buffers hold: the export waits on its reader.
    for (let i = 0; i < 1000; i++) await log.append(event(i));
    await log.close();
    const child = spawn(CORRAL_BIN, ['--state-dir', big, 'audit', 'export', '--format', 'jsonl'], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
    const chunks: string[] = [];
    child.stdout!.setEncoding('utf8');
    // The first lines say the export has begun; then nothing is read for 3 s, however slow this machine is.
    await once(child.stdout!, 'readable');
    chunks.push(child.stdout!.read() as string);
    await new Promise((r) => setTimeout(r, 3000));
    child.stdout!.on('data', (c: string) => chunks.push(c));
    assert.equal(await closed, 0, stderr);
    assert.match(stderr, /^(corral: export: \d+ lines written\n)+$/);
    const lines = chunks.join('').trimEnd().split('\n');
    assert.ok(lines.length > 1000, `${lines.length} lines`);
    for (const line of lines) JSON.parse(line);
  });

  describe('when standard output cannot be written (a full disk: /dev/full)', () => {
    for (const args of [['export', '--format', 'jsonl'], ['export', '--format', 'ocsf'], ['verify', '--json'], ['show', '1'], ['tail'], ['public-key'], ['proof', 'inclusion', '1']]) {
      it(`${args.join(' ')} exits 3 naming ENOSPC, without a stack trace (regression: an uncaught error's stack trace, exit 1)`, () => {
        const full = openSync('/dev/full', 'w');
        try {
          const r = spawnSync(CORRAL_BIN, ['--state-dir', dir, 'audit', ...args], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
          assert.equal(r.status, 3, r.stderr);
          assert.equal(r.stderr, 'corral: cannot write the output: ENOSPC; what was written is incomplete\n');
        } finally {
          closeSync(full);
        }
      });
    }
  });

  describe('tail -f when the log it follows is taken away', () => {
    /** Starts `tail -f` on a log of six records, waits for its last one, does `change`, and resolves with how tail ended. */
    async function followThrough(change: (stateDir: string) => void): Promise<{ code: number | null; stderr: string }> {
      const copy = tempStateDir();
      cleanup.push(copy);
      const log = await openAuditLog({ stateDir: copy });
      for (let i = 0; i < 6; i++) await log.append(event(i));
      await log.close();
      const child = spawn(CORRAL_BIN, ['--state-dir', copy, 'audit', 'tail', '-n', '1', '-f', '--json'], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const ended = new Promise<number | null>((resolve) => child.once('close', resolve));
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      try {
        await new Promise<void>((resolve) => child.stdout.setEncoding('utf8').on('data', (c: string) => ((out += c), out.includes('"seq":5') && resolve())));
        change(copy);
        return { code: await ended, stderr };
      } finally {
        clearTimeout(timer);
        child.kill('SIGTERM');
      }
    }

    it('stops with exit 3 naming the log when its state directory is removed (regression: it waited on the removed file for ever, printing nothing of the new log)', async () => {
      const r = await followThrough((copy) => rmSync(copy, { recursive: true, force: true }));
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /audit\.db was removed while it was followed/);
    });

    it('stops with exit 3 when the log file is replaced by another', async () => {
      const r = await followThrough((copy) => {
        writeFileSync(join(copy, 'audit.db.new'), readFileSync(join(copy, 'audit.db')));
        renameSync(join(copy, 'audit.db.new'), join(copy, 'audit.db'));
      });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /audit\.db was replaced by another file while it was followed/);
    });

    it('stops with exit 1 and AUDIT_ROLLED_BACK when the log goes back behind the records it printed (regression: it went on from the smaller size, printing other records under seqs already shown)', async () => {
      const r = await followThrough((copy) => {
        const db = new DatabaseSync(join(copy, 'audit.db'));
        db.exec('UPDATE audit_head SET size = 3');
        db.close();
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /went back from 6 to 3 records.*\[AUDIT_ROLLED_BACK\]/);
    });

    it('stops with exit 1 and AUDIT_ROLLED_BACK when the log goes back and grows past the records it printed between two looks (regression: it went on, printing records of another history after the ones it had shown)', async () => {
      const other = tempStateDir();
      cleanup.push(other);
      const log = await openAuditLog({ stateDir: other });
      for (let i = 0; i < 8; i++) await log.append(event(100 + i));
      await log.close();
      const r = await followThrough((copy) => {
        const db = new DatabaseSync(join(copy, 'audit.db'));
        db.exec(`ATTACH '${join(other, 'audit.db')}' AS other`);
        db.exec('BEGIN; DELETE FROM audit_records WHERE seq >= 3; INSERT INTO audit_records SELECT * FROM other.audit_records WHERE seq >= 3; UPDATE audit_head SET size = 8; COMMIT');
        db.close();
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /no longer holds record 5 as it was printed.*\[AUDIT_ROLLED_BACK\]/);
    });
  });
});

describe('corral audit --postgres', () => {
  let cluster: TestPostgres;
  before(async () => {
    cluster = await startPostgres();
  });
  after(() => cluster?.stop());

  it('tails and verifies a PostgreSQL log', async () => {
    const state = tempStateDir();
    cleanup.push(state);
    const url = cluster.createDatabase('cli_audit');
    const log = await openAuditLog({ stateDir: state, postgresUrl: url });
    for (let i = 0; i < 5; i++) await log.append(event(i));
    await log.close();
    const tail = await corral(['--state-dir', state, 'audit', '--postgres', url, 'tail', '--json']);
    assert.equal(tail.code, 0, tail.stderr);
    assert.equal(tail.stdout.trim().split('\n').length, 5);
    const verify = await corral(['--state-dir', state, 'audit', 'verify', '--json'], { env: { CORRAL_AUDIT_POSTGRES_URL: url } });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.equal(JSON.parse(verify.stdout).sealed, 5);
    // After the command words too, as --state-dir (regression: an unknown option, exit 2).
    const after = await corral(['audit', 'verify', '--postgres', url, '--state-dir', state, '--json']);
    assert.equal(after.code, 0, after.stdout + after.stderr);
    assert.equal(JSON.parse(after.stdout).sealed, 5);
    const proof = await corral(['audit', 'proof', 'inclusion', '2', '--postgres', url, '--state-dir', state, '--json']);
    assert.equal(proof.code, 0, proof.stdout + proof.stderr);
  });

  it('verify while writers keep appending and signing keeps the checkpoint it verified as its witness (regression: a newer checkpoint signed meanwhile made it keep none)', async () => {
    const state = tempStateDir();
    cleanup.push(state);
    const url = cluster.createDatabase('cli_audit_live_witness');
    const log = await openAuditLog({ stateDir: state, postgresUrl: url, checkpointEvery: 1 });
    let stop = false;
    let appended = 0;
    try {
      for (; appended < 200; appended++) await log.append(event(appended));
      const writing = (async () => {
        while (!stop) await log.append(event(appended++));
      })();
      // The auditor's machine: a state directory of its own, the log's public key.
      const auditor = tempStateDir();
      cleanup.push(auditor);
      const r = await corral(['audit', 'verify', '--postgres', url, '--state-dir', auditor, '--public-key', join(state, 'audit-signing-key.pub.pem'), '--json']);
      stop = true;
      await writing;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const report = JSON.parse(r.stdout);
      assert.ok(report.ok && report.sealed >= 200, r.stdout);
      assert.ok(appended > report.sealed, 'no checkpoint was signed while verify ran');
      assert.equal(readWitness(witnessPath(auditor, postgresWhere(url, 'public')))?.size, report.sealed);
    } finally {
      stop = true;
      await log.close();
    }
  });

  it('tail -f goes on through a restart of the server: says it lost the log, retries, says it is back, and prints every record appended before, during and after once, in order (regression: it exited at the restart)', { timeout: 120_000 }, async () => {
    const state = tempStateDir();
    cleanup.push(state);
    const url = cluster.createDatabase('cli_audit_tail_restart');
    const log = await openAuditLog({ stateDir: state, postgresUrl: url });
    for (let i = 0; i < 3; i++) await log.append(event(i));
    const child = spawn(CORRAL_BIN, ['--state-dir', state, 'audit', '--postgres', url, 'tail', '-f', '--json'], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
    const waitFor = async (what: () => boolean, name: string) => {
      for (const until = Date.now() + 60_000; !what(); await new Promise((r) => setTimeout(r, 50))) {
        if (Date.now() > until || child.exitCode !== null) throw new Error(`tail -f never ${name}: ${out}\n${stderr}`);
      }
    };
    const seqs = () => out.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).seq as number);
    try {
      await waitFor(() => seqs().length === 3, 'printed the first records');
      // Appended while tail waits for its next look, then the server restarts (every connection cut), and stays
      // down until tail has looked and found it away (a restart quicker than tail's looks would go unseen).
      for (let i = 3; i < 5; i++) await log.append(event(i));
      await cluster.restart(() => waitFor(() => stderr.includes('corral: lost the audit log'), 'said it lost the log'));
      for (let i = 5; i < 8; i++) {
        for (;;) {
          try {
            await log.append(event(i));
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
      await waitFor(() => seqs().length >= 8, 'printed the records appended after the restart');
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(seqs(), [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.match(stderr, /^corral: lost the audit log at postgresql:\/\/127\.0\.0\.1:\d+\/cli_audit_tail_restart \(schema public\) \(.*\); retrying until it is back, to go on from seq [35]\ncorral: the audit log at \S+ \(schema public\) is back after \d+ s; following from seq [35]\n$/);
    } finally {
      child.kill('SIGINT');
      await log.close();
    }
    assert.equal(await closed, 0, stderr);
  });

  it('verify on a machine with no state directory, trusting a key it was given: the verdict alone under --json, exit 0, a warning that it keeps no witness (regression: the report, then EPERM or ENOENT of the witness as a second document, exit 1 as if damaged)', async () => {
    const state = tempStateDir();
    cleanup.push(state);
    const url = cluster.createDatabase('cli_audit_elsewhere');
    const log = await openAuditLog({ stateDir: state, postgresUrl: url });
    for (let i = 0; i < 3; i++) await log.append(event(i));
    await log.close();
    const nowhere = join(tempStateDir(), 'not-made');
    const r = await corral(['audit', 'verify', '--postgres', url, '--state-dir', nowhere, '--public-key', join(state, 'audit-signing-key.pub.pem'), '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual([report.ok, report.sealed], [true, 3]);
    assert.match(r.stderr, /^corral: warning: the log is intact, but the checkpoint it was verified to extend could not be kept in \S+audit-witness-[0-9a-f]{16}\.json \(ENOENT\): the next verify checks for a rollback only against the checkpoint kept before, if any\n$/);
  });
});
