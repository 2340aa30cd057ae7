import type { DatabaseSync } from 'node:sqlite';
import type { CorralRole, HumanIdentity } from './oidc.ts';

export interface HumanRecord extends HumanIdentity {
  lastLoginAt: string;
}

/** People who signed in, with the roles their last sign-in mapped to. */
export class HumanRegistry {
  readonly #db: DatabaseSync;
  readonly #now: () => number;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  /** Records a sign-in; roles are replaced by the ones this sign-in mapped (a removed group takes effect at next sign-in). */
  record(human: HumanIdentity): HumanRecord {
    this.#db
      .prepare(`INSERT INTO humans (issuer, subject, email, name, roles, last_login_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (issuer, subject) DO UPDATE SET email = excluded.email, name = excluded.name, roles = excluded.roles, last_login_at = excluded.last_login_at`)
      .run(human.issuer, human.subject, human.email ?? null, human.name ?? null, JSON.stringify({ roles: human.roles, groups: human.groups }), this.#now());
    return this.list().find((h) => h.issuer === human.issuer && h.subject === human.subject)!;
  }

  list(): HumanRecord[] {
    const rows = this.#db.prepare('SELECT * FROM humans ORDER BY email, subject').all() as unknown as {
      issuer: string;
      subject: string;
      email: string | null;
      name: string | null;
      roles: string;
      last_login_at: number;
    }[];
    return rows.map((r) => {
      const { roles, groups } = JSON.parse(r.roles) as { roles: CorralRole[]; groups: string[] };
      return {
        issuer: r.issuer,
        subject: r.subject,
        ...(r.email !== null ? { email: r.email } : {}),
        ...(r.name !== null ? { name: r.name } : {}),
        groups,
        roles,
        lastLoginAt: new Date(r.last_login_at).toISOString(),
      };
    });
  }
}
