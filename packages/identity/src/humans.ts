import type { DatabaseSync } from 'node:sqlite';
import { IdentityError } from './errors.ts';
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
    return this.get(human.issuer, human.subject)!;
  }

  /**
   * Records a sign-in the issuer verified (OidcClient.verifyLogin), as the
   * console and `corral identity login` both do. One that maps a role is
   * recorded (record) and answered. One that maps none is refused with
   * IDENTITY_OIDC_NO_ROLE: a person who signed in before is first recorded
   * as holding no role, which ends their console sessions (a session ends
   * once the recorded roles differ from its own); anyone else the issuer
   * knows is not kept. get() tells the caller which it was.
   */
  signIn(human: HumanIdentity): HumanRecord {
    if (human.roles.length > 0) return this.record(human);
    // One statement: a person recorded meanwhile by another process is demoted all the same, and no one new is added.
    const demoted = this.#db
      .prepare('UPDATE humans SET email = ?, name = ?, roles = ?, last_login_at = ? WHERE issuer = ? AND subject = ?')
      .run(human.email ?? null, human.name ?? null, JSON.stringify({ roles: [], groups: human.groups }), this.#now(), human.issuer, human.subject);
    throw new IdentityError(
      'IDENTITY_OIDC_NO_ROLE',
      demoted.changes > 0
        ? 'no group or role claim maps to a Corral role: recorded as holding no role now, which ends their console sessions'
        : 'no group or role claim maps to a Corral role',
    );
  }

  /** The person `issuer` and `subject` name, as their last sign-in recorded them, or undefined when they never signed in. */
  get(issuer: string, subject: string): HumanRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM humans WHERE issuer = ? AND subject = ?').get(issuer, subject) as Row | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /**
   * Ends every console session begun before now of the people `name` names:
   * their verified address, or `oidc:ISSUER#SUBJECT` (as `corral identity
   * humans` shows them). For someone the issuer no longer lets sign in, it is
   * what ends their access: a session would otherwise last its 12 hours.
   * Throws IDENTITY_USER_NOT_FOUND when `name` names no one who signed in.
   */
  signOut(name: string): HumanRecord[] {
    const named = this.list().filter((h) => h.email === name || `oidc:${h.issuer}#${h.subject}` === name);
    if (named.length === 0) throw new IdentityError('IDENTITY_USER_NOT_FOUND', `no one who signed in is named ${JSON.stringify(name)}: corral identity humans lists who did`);
    const at = this.#now();
    const ended = this.#db.prepare('INSERT INTO human_sign_outs (issuer, subject, at) VALUES (?, ?, ?) ON CONFLICT (issuer, subject) DO UPDATE SET at = excluded.at');
    for (const h of named) ended.run(h.issuer, h.subject, at);
    return named;
  }

  /** When the sessions of the person `issuer` and `subject` name were last ended (ms since the epoch), or undefined. */
  signedOutAt(issuer: string, subject: string): number | undefined {
    const row = this.#db.prepare('SELECT at FROM human_sign_outs WHERE issuer = ? AND subject = ?').get(issuer, subject) as { at: number } | undefined;
    return row?.at;
  }

  list(): HumanRecord[] {
    return (this.#db.prepare('SELECT * FROM humans ORDER BY email, subject').all() as unknown as Row[]).map(fromRow);
  }
}

interface Row {
  issuer: string;
  subject: string;
  email: string | null;
  name: string | null;
  roles: string;
  last_login_at: number;
}

function fromRow(r: Row): HumanRecord {
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
}
