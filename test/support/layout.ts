import type { Page } from "playwright-core";

/** One thing a person would not see whole: what it is and why. */
export interface Hidden {
  what: string;
  why: string;
}

/**
 * In the page: for each element `selector` matches, whether all of its text is on screen. The page is scrolled
 * (vertically only: a number that needs sideways scrolling is not on screen) to bring the element's middle to
 * the viewport's; then its text's box must lie inside the viewport and inside every ancestor that clips, the
 * element must not clip its own text (an ellipsis), and `elementFromPoint` at the text's centre must find it
 * (nothing covers it).
 */
const SCRIPT = `(({ selector, label }) => {
  const hidden = [];
  const name = (el) => label(el);
  for (const el of document.querySelectorAll(selector)) {
    const what = name(el);
    const box = el.getBoundingClientRect();
    window.scrollBy(0, box.top + box.height / 2 - window.innerHeight / 2);
    const range = document.createRange();
    range.selectNodeContents(el);
    const text = range.getBoundingClientRect();
    if (text.width === 0 || text.height === 0) {
      hidden.push({ what, why: "has no visible text" });
      continue;
    }
    const vw = document.documentElement.clientWidth;
    if (text.left < -0.5 || text.right > vw + 0.5 || text.top < -0.5 || text.bottom > window.innerHeight + 0.5) {
      hidden.push({ what, why: "text [" + Math.round(text.left) + ", " + Math.round(text.right) + "] px is outside the viewport (0-" + vw + ")" });
      continue;
    }
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible") {
      hidden.push({ what, why: "clips its own text (" + el.scrollWidth + " px in " + el.clientWidth + ")" });
      continue;
    }
    let clipped = "";
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.overflowX === "visible" && style.overflowY === "visible") continue;
      const b = a.getBoundingClientRect();
      if (text.left < b.left - 0.5 || text.right > b.right + 0.5 || text.top < b.top - 0.5 || text.bottom > b.bottom + 0.5) {
        clipped = "clipped by " + a.tagName.toLowerCase() + (a.id ? "#" + a.id : a.className ? "." + String(a.className).split(" ")[0] : "");
        break;
      }
    }
    if (clipped) {
      hidden.push({ what, why: clipped });
      continue;
    }
    const hit = document.elementFromPoint((text.left + text.right) / 2, (text.top + text.bottom) / 2);
    if (!hit || !el.contains(hit)) {
      hidden.push({ what, why: "covered by " + (hit ? hit.tagName.toLowerCase() + (hit.id ? "#" + hit.id : "") : "nothing") });
    }
  }
  window.scrollTo(0, 0);
  return hidden;
})`;

/**
 * What of `selector`'s elements is not fully on screen (empty: all of it is). `label` is a JS expression of
 * `el` naming an element in the report, e.g. `el.id`.
 */
export function notOnScreen(page: Page, selector: string, label = "el.id || el.className"): Promise<Hidden[]> {
  return page.evaluate(`${SCRIPT}({ selector: ${JSON.stringify(selector)}, label: (el) => ${label} })`);
}

/** How much wider than the viewport the page is, in px (0: no sideways scrolling). */
export function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth");
}
