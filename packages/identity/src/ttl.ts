import { IdentityError } from './errors.ts';

/**
 * `90s`, `10m`, `1h`, or plain seconds → seconds. Throws IDENTITY_INPUT_INVALID,
 * naming what is wrong: a lifetime of zero, a unit other than s, m or h (`10y`,
 * `2d`), or text that is no lifetime at all.
 */
export function parseTtl(text: string): number {
  const written = String(text).trim();
  const m = /^([0-9]{1,7})([smh]?)$/.exec(written);
  if (!m) {
    const unit = /^[0-9]+([a-z]+)$/i.exec(written)?.[1];
    const why = unit !== undefined ? `${unit} is not a unit of lifetime: use s, m or h` : 'a lifetime looks like 90s, 10m or 1h';
    throw new IdentityError('IDENTITY_INPUT_INVALID', why);
  }
  const n = Number(m[1]);
  if (n === 0) throw new IdentityError('IDENTITY_INPUT_INVALID', 'a lifetime of 0 is none: give one of at least 1s, as 90s, 10m or 1h');
  return m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : n;
}
