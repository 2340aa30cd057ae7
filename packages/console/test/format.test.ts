// How the console writes what approvers decide on: amounts, time left,
// command lines, payments. Runs the console's own modules under Node.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCountdown, formatMoney, formatTime, issueText, lookAlikes, oddSpaces, shortHash, summaryToCheck, visible } from '../ui/format.ts';
import { actionTitle, chained, commandLine, envNames, paymentOf, shellQuote } from '../ui/pages/approvals/action.ts';

describe('formatMoney', () => {
  it('reads the amount as cents', () => {
    assert.match(formatMoney(125_000, 'EUR'), /1,250\.00/);
    assert.match(formatMoney(1, 'USD'), /0\.01/);
  });

  it('reads minor units by the currency\'s ISO 4217 exponent: a yen is its own minor unit, a Bahraini dinar has 1,000 fils (regression: ¥5,000,000 showed as ¥50,000)', () => {
    assert.match(formatMoney(5_000_000, 'JPY'), /5,000,000/);
    assert.doesNotMatch(formatMoney(5_000_000, 'JPY'), /50,000(?!,)/);
    assert.match(formatMoney(1234, 'BHD'), /1\.234/);
    assert.match(formatMoney(1234, 'IQD'), /1\.234/);
  });

  it('still shows the number and the code for a currency Intl does not know', () => {
    assert.equal(formatMoney(1999, 'not-a-currency'), '19.99 not-a-currency');
  });

  it('reads a code in lower case by the same exponent as in upper case, as Intl does (regression: 5,000,000 "jpy" showed as ¥50,000.00)', () => {
    assert.equal(formatMoney(5_000_000, 'jpy'), formatMoney(5_000_000, 'JPY'));
    assert.equal(formatMoney(1234, 'bhd'), formatMoney(1234, 'BHD'));
  });

  it('spells out what draws nothing or reorders the line in a code it does not know, since the agent chose it (regression: a bidi override beside the amount)', () => {
    assert.equal(formatMoney(1999, 'EUR\u202E00.0001'), '19.99 EUR\\u202E00.0001');
  });
});

describe('formatCountdown', () => {
  it('counts minutes and seconds below an hour, hours and minutes above', () => {
    assert.equal(formatCountdown(14 * 60_000 + 5_000), '14m 05s');
    assert.equal(formatCountdown(2 * 3_600_000 + 3 * 60_000 + 59_000), '2h 03m');
  });

  it('says expired at zero and below', () => {
    assert.equal(formatCountdown(0), 'expired');
    assert.equal(formatCountdown(-1), 'expired');
  });
});

describe('shellQuote', () => {
  it('leaves plain words alone', () => {
    assert.equal(commandLine(['ls', '-la', '/srv/invoices/inbox']), 'ls -la /srv/invoices/inbox');
  });

  it('quotes an argument with a space, so two arguments never look like one', () => {
    assert.notEqual(commandLine(['printf', 'a b']), commandLine(['printf', 'a', 'b']));
    assert.equal(commandLine(['printf', 'a b']), "printf 'a b'");
  });

  it('quotes a single quote inside an argument so the line cannot be closed early', () => {
    assert.equal(shellQuote("it's; rm -rf /"), `'it'\\''s; rm -rf /'`);
  });

  it('spells out with $\'…\' what would draw nothing or reorder the line: a bidi override, a newline, a zero-width space, a no-break space', () => {
    assert.equal(commandLine(['printf', 'harmless\u202Etxt.exe']), "printf $'harmless\\u202Etxt.exe'");
    assert.notEqual(commandLine(['echo', 'a\nb']), commandLine(['echo', 'a b']));
    assert.equal(shellQuote('a\nb'), "$'a\\u000Ab'");
    assert.equal(shellQuote('rm\u200B'), "$'rm\\u200B'");
    assert.equal(shellQuote('a\u00A0b'), "$'a\\u00A0b'");
  });

  it('escapes backslashes and quotes inside $\'…\', so a spelled-out character cannot be faked', () => {
    assert.equal(shellQuote("it's \\u202E\u2066"), "$'it\\'s \\\\u202E\\u2066'");
  });

  it('quotes the empty argument', () => {
    assert.equal(shellQuote(''), "''");
  });
});

describe('an approval action', () => {
  it('is titled by its command line, else by its named command', () => {
    assert.equal(actionTitle({ argv: ['printf', 'x y'] }), "printf 'x y'");
    assert.equal(actionTitle({ command: 'payment.create', params: { amount: 5 } }), 'payment.create');
  });

  it('finds the payment in a named command\'s params, amount in cents', () => {
    const payment = paymentOf({ command: 'payment.create', params: { amount: 250_000, currency: 'EUR', payee: 'ACME GmbH', reference: 'INV-7' } });
    assert.deepEqual(payment, { amount: 250_000, currency: 'EUR', payee: 'ACME GmbH', rest: { reference: 'INV-7' } });
  });

  it('has no payment when the amount is not a number', () => {
    assert.equal(paymentOf({ params: { amount: '250000' } }), undefined);
    assert.equal(paymentOf({ argv: ['ls'] }), undefined);
  });

  it('shows environment names only, from a list or an object', () => {
    assert.deepEqual(envNames(['LANG', 'TZ']), ['LANG', 'TZ']);
    assert.deepEqual(envNames({ API_KEY: 'secret-value' }), ['API_KEY']);
    assert.deepEqual(envNames(undefined), []);
  });

  it('writes every chained command as its own line', () => {
    assert.deepEqual(chained([['echo', 'hi'], ['rm', '-rf', '/tmp/x y']]), ['echo hi', "rm -rf '/tmp/x y'"]);
  });
});

describe('visible', () => {
  it('writes bidi controls, zero-width and control characters as \\u escapes, so they cannot reorder or hide what an approver reads', () => {
    assert.equal(visible('ACME GmbH\u202E\u2066'), 'ACME GmbH\\u202E\\u2066');
    assert.equal(visible('a\u200Bb\tc\u0000'), 'a\\u200Bb\\u0009c\\u0000');
    assert.equal(visible('\u{E0041}'), '\\U000E0041');
  });

  it('spells out the characters that draw nothing though they are letters or marks (Hangul fillers, the combining grapheme joiner, variation selectors, the Braille blank), so /srv/data\\u3164 cannot pass for /srv/data (regression: they reached the approver raw)', () => {
    assert.equal(visible('/srv/data\u3164'), '/srv/data\\u3164');
    assert.equal(visible('r\u034Fm \u115F\u1160\uFFA0'), 'r\\u034Fm \\u115F\\u1160\\uFFA0');
    assert.equal(visible('ls\uFE0F\u{E0100}'), 'ls\\uFE0F\\U000E0100');
    assert.equal(visible('a\u2800b'), 'a\\u2800b');
    assert.equal(shellQuote('/srv/data\u3164'), "$'/srv/data\\u3164'");
  });

  it('leaves ordinary text alone, letters beyond ASCII and the plain space included', () => {
    assert.equal(visible('Zahlung an Müller & Söhne, 東京'), 'Zahlung an Müller & Söhne, 東京');
  });

  it('keeps four combining marks on a letter and says how many more it removed, so stacked marks cannot paint over the rows and buttons around them (regression: thousands of them on one letter reached the page)', () => {
    assert.equal(visible(`x${'\u0316'.repeat(3000)}y`), `x${'\u0316'.repeat(4)}[2996 combining marks removed]y`);
    assert.equal(visible(`a${'\u0300'.repeat(5)}b${'\u0301'.repeat(6)}`), `a${'\u0300'.repeat(4)}[1 combining mark removed]b${'\u0301'.repeat(4)}[2 combining marks removed]`);
  });

  it('keeps the marks of ordinary text: Vietnamese and pointed Hebrew written with combining marks', () => {
    const vietnamese = 'Vie\u0323\u0302t Nam'; // ệ as e, dot below, circumflex
    const hebrew = '\u05E9\u05C1\u05BC\u05B8\u0591'; // shin, shin dot, dagesh, qamats, etnahta
    assert.equal(visible(vietnamese), vietnamese);
    assert.equal(visible(hebrew), hebrew);
  });

  it("spells out a combining mark with no letter of its own before it, so it cannot draw over a quote, a colon or a list number the console writes beside it (regression: an enclosing circle as an argument drew over the quote of the command line, and a long solidus overlay could strike through it)", () => {
    assert.equal(visible('\u20DDx'), '\\u20DDx');
    assert.equal(visible("a '\u0338b"), "a '\\u0338b");
    assert.equal(visible('a \u0336\u0336'), 'a \\u0336\u0336');
    assert.equal(shellQuote('\u20DD'), "$'\\u20DD'");
  });

  it('spells out a zero-width joiner between runs of marks before counting them, so the runs cannot all stack on one letter', () => {
    assert.equal(visible(`x${'\u0316'.repeat(3)}\u200D${'\u0316'.repeat(6)}`), `x${'\u0316'.repeat(3)}\\u200D${'\u0316'.repeat(4)}[2 combining marks removed]`);
  });
});

describe('lookAlikes', () => {
  it('names each letter beyond ASCII once, with its code point and script, so a Cyrillic а cannot pass for a Latin a', () => {
    assert.deepEqual(lookAlikes('https://ex\u0430mple.com/\u0430'), ['\u0430 U+0430 Cyrillic']);
    assert.deepEqual(lookAlikes('g\u043Eogle.c\u03BFm pa\u0131d'), ['\u043E U+043E Cyrillic', '\u03BF U+03BF Greek', '\u0131 U+0131 Latin']);
  });

  it('finds nothing in ASCII, the empty text or a field left out', () => {
    assert.deepEqual(lookAlikes('https://example.com/pay?to=ACME GmbH'), []);
    assert.deepEqual(lookAlikes(''), []);
    assert.deepEqual(lookAlikes(null), []);
  });

  it('names a combining mark on a dotted circle, as Unicode shows a mark alone, so it does not draw over the comma or colon before it', () => {
    assert.deepEqual(lookAlikes('e\u0301'), ['\u25CC\u0301 U+0301 Inherited']);
  });

  it('leaves to visible() what it spells out already (a bidi override, a zero-width space)', () => {
    assert.deepEqual(lookAlikes('harmless\u202Etxt.exe\u200B'), []);
  });

  it('lists at most eight characters of a field and counts the rest', () => {
    assert.deepEqual(lookAlikes('\u0430\u0431\u0432\u0433\u0434\u0435\u0436\u0437\u0438\u0439').slice(-2), ['\u0437 U+0437 Cyrillic', 'and 2 more']);
  });
});

describe('summaryToCheck', () => {
  it("leaves out the arrow and the cut mark the gateway writes in summaries, so a plain record raises no look-alike note (regression: every row with an outcome showed 'Check: → U+2192 Common')", () => {
    assert.deepEqual(lookAlikes(summaryToCheck('agent invoice-bot node.invoke true: allow (permit true) → success exit 0')), []);
    assert.deepEqual(lookAlikes(summaryToCheck(`agent a node.invoke ${'x'.repeat(40)}\u2026`)), []);
  });

  it('keeps every character the record chose: a Cyrillic letter in the command is still named', () => {
    assert.deepEqual(lookAlikes(summaryToCheck('agent a node.invoke curl https://ex\u0430mple.com: allow → success')), ['\u0430 U+0430 Cyrillic']);
  });
});

describe('oddSpaces', () => {
  it('names the spaces a page does not show: at the start, at the end, several in a row', () => {
    assert.deepEqual(oddSpaces(' ACME GmbH'), ['a space at the start']);
    assert.deepEqual(oddSpaces('ACME GmbH  '), ['2 spaces at the end']);
    assert.deepEqual(oddSpaces('ACME  GmbH   AG'), ['3 spaces in a row']);
    assert.deepEqual(oddSpaces(' ACME  GmbH '), ['a space at the start', 'a space at the end', '2 spaces in a row']);
  });

  it('finds nothing in text whose every space shows, nor in the empty text', () => {
    assert.deepEqual(oddSpaces('ACME GmbH'), []);
    assert.deepEqual(oddSpaces(''), []);
    assert.deepEqual(oddSpaces(undefined), []);
  });

  it('counts a value of spaces alone once, at the start', () => {
    assert.deepEqual(oddSpaces('   '), ['3 spaces at the start']);
  });
});

describe('issueText', () => {
  it('names the file, line and column the gateway gave, and no more', () => {
    assert.equal(issueText({ file: 'run.cedar', line: 3, column: 14, message: 'unexpected token' }), 'run.cedar:3:14 unexpected token');
    assert.equal(issueText({ file: 'entities.json', message: 'not JSON' }), 'entities.json not JSON');
  });
});

describe('formatTime', () => {
  it('writes a time in UTC and says so, whatever zone the browser keeps (regression: local time with no zone, so 14:00 could be either)', () => {
    assert.equal(formatTime(Date.UTC(2026, 10, 27, 14, 0, 5)), '2026-11-27 14:00:05 UTC');
    assert.equal(formatTime('2026-11-27T23:30:00.000+02:00'), '2026-11-27 21:30:00 UTC');
  });

  it('writes a dash for a time left out, and spells out what draws nothing in a value that is not a time', () => {
    assert.equal(formatTime(null), '—');
    assert.equal(formatTime(''), '—');
    assert.equal(formatTime('soon\u202E'), 'soon\\u202E');
  });
});

describe('shortHash', () => {
  it('keeps short ids whole and cuts long ones to 12 characters', () => {
    assert.equal(shortHash('abc'), 'abc');
    assert.equal(shortHash('a'.repeat(64)), `${'a'.repeat(12)}…`);
  });
});
