// Whether a part of the page has stayed as it is for a moment: a button is not
// clicked by a click meant for what was there a moment before. Rows come, go
// or move; a row changes what it says (a node asking to pair asks again under
// a longer platform, widening its row and sliding the buttons along); or the
// window comes to the front under the pointer (another site's window over the
// console, closed on the first click of a double click, hands the second
// click to whatever lies beneath it). Each starts the wait again.
import { useEffect, useLayoutEffect, useState } from 'react';
import { flushSync } from 'react-dom';

/**
 * Marks an element whose text is a time that moves on by itself (a countdown,
 * when a node was last seen): its text changing is no change of what the
 * region shows. Where the region's buttons lie is still watched.
 */
const TICKS = '[data-ticks]';

/** How many times this window has gained the focus or changed visibility since the page loaded. */
function useTimesShown(): number {
  const [times, setTimes] = useState(0);
  useEffect(() => {
    const shown = () => setTimes((n) => n + 1);
    window.addEventListener('focus', shown);
    document.addEventListener('visibilitychange', shown);
    return () => {
      window.removeEventListener('focus', shown);
      document.removeEventListener('visibilitychange', shown);
    };
  }, []);
  return times;
}

/** The text `region` shows, but for elements marked TICKS, each run of text apart. */
function textOf(region: Element): string[] {
  const texts: string[] = [];
  const walker = document.createTreeWalker(region, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node instanceof Element ? (node.matches(TICKS) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_SKIP) : NodeFilter.FILTER_ACCEPT),
  });
  for (let node = walker.nextNode(); node; node = walker.nextNode()) texts.push((node as Text).data);
  return texts;
}

/** Where each button of `region` lies on the page (not in the window: scrolling the page moves none). */
function buttonsOf(region: Element): number[] {
  const boxes: number[] = [];
  for (const button of region.querySelectorAll('button')) {
    const box = button.getBoundingClientRect();
    boxes.push(box.left + window.scrollX, box.top + window.scrollY, box.width, box.height);
  }
  return boxes;
}

/** A text not in any TICKS element, changed, added or taken away (an attribute is not text). */
function changesText(record: MutationRecord): boolean {
  if (record.type === 'attributes') return false;
  const element = record.target instanceof Element ? record.target : record.target.parentElement;
  return element?.closest(TICKS) == null;
}

/**
 * `settled` is false for `ms` after the element given to `region` (a page, or
 * the part of it holding the rows and their buttons) first appears, after
 * what it shows changes (a row comes, goes, or says something else: any of
 * its text outside elements marked `data-ticks`), after any of its buttons
 * moves on the page (the region's rows or anything above them changed), and
 * after the window comes to the front; then true. Refreshed with the same
 * rows, the page shows the same: the wait does not start again. A change
 * disables the buttons before the browser handles any other event, a click
 * already on its way included.
 */
export function useSettled(ms: number): { region: (element: HTMLElement | null) => void; settled: boolean } {
  const [element, setElement] = useState<HTMLElement | null>(null);
  const [changes, setChanges] = useState(0);
  const current = `${useTimesShown()} ${changes}`;
  const [settled, setSettled] = useState<string>();

  useLayoutEffect(() => {
    if (!element) return;
    let text = JSON.stringify(textOf(element));
    let buttons = JSON.stringify(buttonsOf(element));
    const check = (records: readonly MutationRecord[] | undefined) => {
      const nowText = records === undefined || records.some((r) => element.contains(r.target) && changesText(r)) ? JSON.stringify(textOf(element)) : text;
      const nowButtons = JSON.stringify(buttonsOf(element));
      if (nowText === text && nowButtons === buttons) return;
      text = nowText;
      buttons = nowButtons;
      // At once, not at React's next turn: a click handled in between would reach a button still enabled.
      flushSync(() => setChanges((n) => n + 1));
    };
    const mutations = new MutationObserver((records) => check(records));
    // The whole page: what changes above the region moves its buttons.
    mutations.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    const sizes = new ResizeObserver(() => check(undefined));
    sizes.observe(element);
    const resized = () => check(undefined);
    window.addEventListener('resize', resized);
    return () => {
      mutations.disconnect();
      sizes.disconnect();
      window.removeEventListener('resize', resized);
    };
  }, [element]);

  useEffect(() => {
    const timer = setTimeout(() => setSettled(current), ms);
    return () => clearTimeout(timer);
  }, [current, ms]);

  return { region: setElement, settled: element !== null && settled === current };
}
