import { IdentityError } from './errors.ts';

/** `90s`, `10m`, `1h`, or plain seconds → seconds. Throws IDENTITY_INPUT_INVALID. */
export function parseTtl(text: string): number {
  const m = /^([1-9][0-9]{0,6})([smh]?)$/.exec(String(text).trim());
  if (!m) throw new IdentityError('IDENTITY_INPUT_INVALID', 'a lifetime looks like 90s, 10m or 1h');
  const n = Number(m[1]);
  return m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : n;
}
