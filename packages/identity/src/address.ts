// An email address as Corral keeps one for a person: an agent's owner, a
// local console user's address. Both are compared, without case, when an
// approver's request is their own (four eyes), so both are held to one rule.

/**
 * A plain address, `local@domain`: no control, format or separator character
 * in the local part (at most 64 characters), and a domain of DNS labels. An
 * address is printed in listings, where an escape sequence would rewrite the
 * terminal and a zero-width or bidi character make another address look like
 * alice's.
 */
export const EMAIL = /^[^\s\p{C}\p{Z}@<>()",;:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$/u;

/** The longest address a person's may be (RFC 5321's path of 256 octets, less its angle brackets). */
export const MAX_EMAIL = 254;
