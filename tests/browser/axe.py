"""Accessibility checks of the page a browser test is on: axe-core (bundled with
axe-playwright-python) with every rule of WCAG 2.0, 2.1 and 2.2 at levels A and AA
plus axe's best practices, and three checks axe cannot make:

- focus is visible: every control that Tab reaches matches ``:focus-visible`` and
  draws an outline or a shadow (WCAG 2.4.7);
- the skip link is the first thing Tab reaches, and it moves focus to ``<main>``
  (WCAG 2.4.1);
- on the families' pages, at 360 px wide, every link, button and form control is at
  least 24 × 24 CSS pixels, except a link inside a sentence (WCAG 2.5.8), and the
  page is no wider than the phone: nothing to scroll sideways (WCAG 1.4.10).

``Audit.check(page)`` records what is wrong on the page and which page it was;
``Audit.report()`` lists every problem with its rule, impact, target and page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe
from django.urls import Resolver404, resolve

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
PHONE = {"width": 360, "height": 740}
MIN_TARGET_PX = 24
# How many controls past the skip link are tabbed to on each page.
TAB_STOPS = 25

# The element that has focus: what it is, and whether its focus can be seen.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/) : [];
  const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (classes[0] ? '.' + classes.join('.') : '');
  const label = el.innerText || el.value || el.getAttribute('aria-label') || '';
  const text = label.trim().slice(0, 40);
  return {
    tag: el.tagName.toLowerCase(),
    name: name + (text ? ' "' + text + '"' : ''),
    skip: el.classList.contains('skip-link'),
    focusVisible: el.matches(':focus-visible'),
    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
    shadow: style.boxShadow !== 'none' && style.boxShadow !== '',
    onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
      && box.top < document.documentElement.scrollHeight,
  };
}"""

# Links, buttons and form controls smaller than 24 × 24 CSS px. A link (or a button
# drawn as one) that is inline in a sentence is exempt, as WCAG 2.5.8 says.
SMALL_TARGETS = """(minimum) => {
  const controls = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary');
  const blocks = 'p, li, dd, dt, td, th, label, legend, h1, h2, h3, h4, div, span, address';
  const small = [];
  for (const el of controls) {
    if (el.closest('[hidden]') || el.classList.contains('skip-link')) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.width >= minimum && box.height >= minimum) continue;
    if (style.display === 'inline') {
      // In a sentence: the block around it has words besides links and buttons.
      const block = el.parentElement.closest(blocks);
      let around = block ? block.textContent || '' : '';
      for (const other of block ? block.querySelectorAll('a, button') : []) {
        around = around.replace(other.textContent || '', '');
      }
      if (/[\\p{L}\\p{N}]/u.test(around)) continue;
    }
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.getAttribute('name') ? '[name=' + el.getAttribute('name') + ']' : '');
    const text = (el.innerText || el.value || '').trim().slice(0, 40);
    small.push(name + (text ? ' "' + text + '"' : '')
      + ' is ' + box.width.toFixed(1) + ' x ' + box.height.toFixed(1) + ' px');
  }
  return small;
}"""

# Back to the top of the page, as if it had just opened with nothing focused. A page
# sent back with errors focuses their summary, and blurring it alone would leave
# Chromium's next Tab to start from there: the next Tab starts from a mark focused at
# the very start of <body>, then removed.
TO_THE_TOP = """() => {
  window.scrollTo(0, 0);
  document.activeElement?.blur();
  const mark = document.createElement('span');
  mark.tabIndex = -1;
  document.body.prepend(mark);
  mark.focus({preventScroll: true});
  mark.remove();
}"""

PAGE_FACTS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return {
    status: nav ? nav.responseStatus : 0,
    lang: document.documentElement.lang,
    area: document.body.className,
    hasSkipLink: !!document.querySelector('a.skip-link[href="#main"]'),
  };
}"""


@dataclass(frozen=True)
class Problem:
    page: str
    rule: str
    impact: str
    targets: tuple[str, ...]
    help: str

    def __str__(self) -> str:
        targets = "; ".join(self.targets[:6]) + (" …" if len(self.targets) > 6 else "")
        return f"[{self.rule}] ({self.impact}) {self.help}\n    on {self.page}\n    at {targets}"


@dataclass
class Audit:
    """Every page checked in a test, and every problem found on them."""

    axe: Axe = field(default_factory=Axe)
    pages: list[str] = field(default_factory=list)
    patterns: set[str] = field(default_factory=set)
    languages: dict[str, set[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def check(self, page: Any, note: str = "") -> None:
        """Run every check on the page the browser shows now."""
        page.wait_for_load_state()
        facts = page.evaluate(PAGE_FACTS)
        pattern = self._pattern(page.url, facts["status"])
        label = f"{pattern} {urlsplit(page.url).path} [{facts['lang']}]" + (
            f" ({note})" if note else ""
        )
        self.pages.append(label)
        self.patterns.add(pattern)
        self.languages.setdefault(facts["lang"], set()).add(pattern)
        if facts["status"] >= 500:
            self._problem(label, "server-error", "html", f"The page answered {facts['status']}")

        results = self.axe.run(page, options=AXE_OPTIONS).response
        for violation in results["violations"]:
            self.problems.append(
                Problem(
                    page=label,
                    rule=violation["id"],
                    impact=violation.get("impact") or "",
                    targets=tuple(
                        " ".join(str(part) for part in node["target"])
                        for node in violation["nodes"]
                    ),
                    help=violation["help"],
                )
            )
        self._check_keyboard(page, label, facts["hasSkipLink"])
        if "staff" not in facts["area"].split():
            self._check_targets(page, label)

    def _pattern(self, url: str, status: int) -> str:
        if status in (403, 404):
            return f"{status} page"
        try:
            match = resolve(urlsplit(url).path)
        except Resolver404:
            return "404 page"
        return match.url_name or match.route

    def _problem(self, label: str, rule: str, target: str, help_text: str) -> None:
        self.problems.append(
            Problem(page=label, rule=rule, impact="serious", targets=(target,), help=help_text)
        )

    def _check_keyboard(self, page: Any, label: str, has_skip_link: bool) -> None:
        """Tab from the top of the page: the skip link comes first and moves focus to
        <main>; from there every control Tab reaches shows its focus."""
        page.evaluate(TO_THE_TOP)
        page.keyboard.press("Tab")
        first = page.evaluate(FOCUSED)
        seen: set[str] = set()
        if first is not None:
            self._focus_shows(label, first)
            seen.add(first["name"])
        if not has_skip_link:
            self._problem(label, "skip-link-focus", "body", "The page has no skip link to #main")
        elif first is None or not first["skip"]:
            found = first["name"] if first else "nothing"
            self._problem(label, "skip-link-focus", found, "Tab does not reach the skip link first")
        else:
            page.keyboard.press("Enter")
            if page.evaluate("() => document.activeElement.tagName") != "MAIN":
                self._problem(
                    label, "skip-link-focus", "a.skip-link", "The skip link does not focus <main>"
                )
            # Forget the #main the link added: a form without an action would keep it.
            page.evaluate(
                "() => history.replaceState(null, '', location.pathname + location.search)"
            )
        for _ in range(TAB_STOPS):
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
            if focused is None or focused["skip"] or focused["name"] in seen:
                break  # back at the top of the page
            seen.add(focused["name"])
            self._focus_shows(label, focused)

    def _focus_shows(self, label: str, focused: dict[str, Any]) -> None:
        if not focused["onScreen"]:
            self._problem(label, "focus-visible", focused["name"], "Focus is off the screen")
        elif not focused["focusVisible"] or not (focused["outline"] or focused["shadow"]):
            self._problem(
                label, "focus-visible", focused["name"], "Keyboard focus draws no outline"
            )

    def _check_targets(self, page: Any, label: str) -> None:
        """At a phone's width, links, buttons and fields are at least 24 px square."""
        viewport = page.viewport_size
        if viewport != PHONE:
            page.set_viewport_size(PHONE)
        for small in page.evaluate(SMALL_TARGETS, MIN_TARGET_PX):
            self._problem(label, "target-size-24px", small, "Touch target under 24 x 24 px")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            self._problem(
                label, "reflow-360px", f"{width} px wide", "The page scrolls sideways on a phone"
            )
        if viewport != PHONE:
            page.set_viewport_size(viewport)

    def report(self) -> str:
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.rule] = counts.get(problem.rule, 0) + 1
        lines = [
            f"{len(self.problems)} accessibility problems on {len(self.pages)} pages "
            f"({len(self.patterns)} URL patterns); by rule: {counts}",
            *(str(problem) for problem in self.problems),
        ]
        return "\n".join(lines)
