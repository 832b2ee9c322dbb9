#!/usr/bin/env python3
"""Build the offline demo data under ``data/demo/`` from real packaged text.

Sources (Debian 12 packages, fetched with ``apt-get download``, never installed):

* ``firefox-esr-l10n-{ar,de,en-gb,fa,fr,hi-in,ru,ur,zh-cn}`` (MPL-2.0): the Firefox ESR language packs. Each holds an
  ``.xpi`` (zip) with the Fluent (``.ftl``) localisation files; the message ids are the same in every locale, so the
  packs are a parallel corpus of short UI strings.
* ``iso-codes`` (LGPL-2.1+): ISO 3166-1 country names (JSON) and their translations (gettext ``.mo`` catalogues).

Outputs (UTF-8 JSON Lines, sorted, deterministic; rerunning rebuilds them byte for byte):

* ``messages/<lang>.jsonl``  ``{"id": "<file>#<message>[.<attribute>]", "text": ...}``: the parallel corpus, i.e. the
  strings present in all nine locales, translated (not an English copy in the non-Latin-script locales) and without
  placeables; the same ids in the same order in every file. Used by the MLM and the sentence-classification tasks.
* ``templates/<lang>.jsonl``  same fields: every string of the locale with a variable (``{ $name }``) or term
  (``{ -brand-short-name }``) placeable, untranslated English copies left out: the NER templates.
* ``names/<lang>.jsonl``  ``{"type": "LOC"|"ORG"|"PER", "id": ..., "name": ..., "source": ...}``: the entity lexicon
  of the silver NER task: translated ISO 3166-1 country names (LOC; untranslated ones left out), the localised
  Firefox/Mozilla brand names of the branding terms (ORG), the people credited in the langpack manifests (PER; by
  script, see PER_SCRIPTS).
* ``PROVENANCE.json``: package, version, file name and sha256 of every .deb used.
* ``LICENSES.md``: the licences and where the text came from.

Strings: select expressions resolved to their default variant (``*[other]``), markup (``<strong>``, ``<a …>``)
removed, whitespace collapsed, keyboard shortcuts / CSS attributes and strings over MAX_CHARS dropped; variable
placeables, term references and message references stay visible as ``{ $name }``, ``{ -term }``, ``{ message }``.

Language codes are the paper's: ar de en fa fr hi ru ur zh (en from en-GB, hi from hi-IN, zh from zh-CN).

Usage: ``python scripts/build_demo_data.py [--out data/demo] [--debs DIR]``
(``--debs`` reuses already downloaded .debs).
"""

from __future__ import annotations

import argparse
import gettext
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# paper language code -> (Debian package, Firefox locale, gettext catalogue directory or None for the JSON names)
LOCALES: dict[str, tuple[str, str, str | None]] = {
    "ar": ("firefox-esr-l10n-ar", "ar", "ar"),
    "de": ("firefox-esr-l10n-de", "de", "de"),
    "en": ("firefox-esr-l10n-en-gb", "en-GB", None),
    "fa": ("firefox-esr-l10n-fa", "fa", "fa"),
    "fr": ("firefox-esr-l10n-fr", "fr", "fr"),
    "hi": ("firefox-esr-l10n-hi-in", "hi-IN", "hi"),
    "ru": ("firefox-esr-l10n-ru", "ru", "ru"),
    "ur": ("firefox-esr-l10n-ur", "ur", "ur"),
    "zh": ("firefox-esr-l10n-zh-cn", "zh-CN", "zh_CN"),
}
LANGUAGES = tuple(LOCALES)
ISO_CODES_PACKAGE = "iso-codes"

# Longest string kept (characters, after cleaning): the demo wants short UI sentences; this drops a few long policy
# texts.
MAX_CHARS = 300
# Locales whose script never legitimately equals the English string: an identical string there is an untranslated
# fallback (hi-IN and ur ship many), so such ids are left out of the parallel corpus.
NON_LATIN = ("ar", "fa", "hi", "ru", "ur", "zh")
_SLOT = re.compile(r"\{ [$-][a-zA-Z]")

# Attributes that are not running text (keyboard shortcuts, CSS, sizes).
SKIP_ATTRIBUTES = frozenset({"accesskey", "commandkey", "key", "keycode", "modifiers", "style", "width", "height"})

# Fluent terms whose value names an organisation or a brand (tagged ORG in the silver NER data). The ids are the same in
# every locale; the localised value is what goes into the lexicon. Descriptive "brand" terms (e.g. "Firefox Home",
# "Firefox Suggest", "MDN Web Docs" which some locales translate into common words) are left out.
ORG_TERMS: tuple[str, ...] = (
    "-brand-full-name",
    "-brand-short-name",
    "-facebook-container-brand-name",
    "-fakespot-brand-name",
    "-focus-brand-name",
    "-mozilla-vpn-brand-name",
    "-mozmonitor-brand-name",
    "-pocket-brand-name",
    "-profiler-brand-name",
    "-relay-brand-name",
    "-screenshots-brand-name",
    "-send-brand-name",
    "-thunderbird-brand-name",
    "-vendor-short-name",
    "-yelp-brand-name",
)


# ----------------------------------------------------------------------------------------------------------------------
# Fluent
# ----------------------------------------------------------------------------------------------------------------------
_IDENT = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")
_ENTRY_HEAD = re.compile(r"(-?[a-zA-Z][a-zA-Z0-9_-]*)[ \t]*=[ \t]*")
_ATTR_HEAD = re.compile(r"\.([a-zA-Z][a-zA-Z0-9_-]*)[ \t]*=[ \t]*")
_FIRST_ARG = re.compile(r"\s*(\$[a-zA-Z][\w-]*|-[a-zA-Z][\w-]*|\"(?:[^\"\\]|\\.)*\"|-?\d+(?:\.\d+)?)")


class FluentError(ValueError):
    """A Fluent entry that could not be parsed."""


def _unescape(literal: str) -> str:
    def repl(m: re.Match) -> str:
        s = m.group(0)
        if s[1] in "uU":
            return chr(int(s[2:], 16))
        return s[1]

    return re.sub(r"\\(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{6}|.)", repl, literal)


def _string_literal(s: str, i: int) -> tuple[str, int]:
    """``s[i]`` is the opening quote; returns (value, index after the closing quote)."""
    j = i + 1
    while j < len(s) and s[j] != '"':
        j += 2 if s[j] == "\\" else 1
    if j >= len(s):
        raise FluentError("unterminated string literal")
    return _unescape(s[i + 1 : j]), j + 1


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t\n":
        i += 1
    return i


def _call_args(s: str, i: int) -> tuple[str, int]:
    """``s[i]`` is ``(``; returns (the argument text, index after the matching ``)``)."""
    depth, j = 0, i
    while j < len(s):
        c = s[j]
        if c == '"':
            _, j = _string_literal(s, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return s[i + 1 : j], j + 1
        j += 1
    raise FluentError("unterminated call arguments")


def _render_arg(arg: str) -> str:
    if arg.startswith('"'):
        return _string_literal(arg, 0)[0]
    if arg.startswith("$") or arg.startswith("-") and not arg[1:2].isdigit():
        return "{ " + arg + " }"
    return arg


def _parse_pattern(s: str, i: int) -> tuple[str, int]:
    """Parse a Fluent pattern starting at ``s[i]``.

    Stops before a line whose first non-blank character starts an attribute (``.``), a variant (``[``, ``*[``) or
    closes a placeable (``}``), or at the end of the entry. Continuation lines lose their indentation and are joined
    with ``\\n`` (so a multi-line value keeps its line structure); the result is stripped.
    """
    out: list[str] = []
    while i < len(s):
        c = s[i]
        if c == "{":
            text, i = _parse_placeable(s, i + 1)
            out.append(text)
        elif c == "}":
            break
        elif c == "\n":
            j = i + 1
            breaks = 1
            while True:  # skip blank lines (kept as empty lines if the pattern goes on)
                k = j
                while k < len(s) and s[k] in " \t":
                    k += 1
                if k < len(s) and s[k] == "\n":
                    j = k + 1
                    breaks += 1
                    continue
                break
            if k >= len(s) or k == j:  # end of entry (or an unindented line)
                i = k if k >= len(s) else j
                break
            ch = s[k]
            if ch in ".[}" or (ch == "*" and s[k + 1 : k + 2] == "["):
                i = j
                break
            out.append("\n" * breaks)
            i = k
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    return "\n".join(line.strip() for line in text.strip().split("\n")), i


def _parse_placeable(s: str, i: int) -> tuple[str, int]:
    """``s[i]`` is just after ``{``; returns (rendered text, index after the matching ``}``)."""
    i = _skip_ws(s, i)
    if i >= len(s):
        raise FluentError("unterminated placeable")
    c = s[i]
    if c == '"':
        text, i = _string_literal(s, i)
    elif c == "{":
        text, i = _parse_placeable(s, i + 1)
    elif c == "$":
        m = _IDENT.match(s, i + 1)
        if not m:
            raise FluentError("bad variable reference")
        text, i = "{ $" + m.group(0) + " }", m.end()
    elif c == "-" and i + 1 < len(s) and s[i + 1].isalpha():
        m = _IDENT.match(s, i + 1)
        text, i = "{ -" + m.group(0) + " }", m.end()
        if s[i : i + 1] == ".":  # term attribute (only meaningful as a selector)
            m = _IDENT.match(s, i + 1)
            i = m.end()
        if s[i : i + 1] == "(":
            _, i = _call_args(s, i)
    elif c.isdigit() or c == "-":
        m = re.compile(r"-?\d+(?:\.\d+)?").match(s, i)
        if not m:
            raise FluentError("bad number literal")
        text, i = m.group(0), m.end()
    elif c.isalpha():
        m = _IDENT.match(s, i)
        name, i = m.group(0), m.end()
        if s[i : i + 1] == "(":  # function call: render its first positional argument
            args, i = _call_args(s, i)
            a = _FIRST_ARG.match(args)
            text = _render_arg(a.group(1)) if a else "{ " + name + "() }"
        else:  # message reference
            if s[i : i + 1] == ".":
                m = _IDENT.match(s, i + 1)
                name, i = name + "." + m.group(0), m.end()
            text = "{ " + name + " }"
    else:
        raise FluentError(f"unexpected {c!r} in placeable")
    i = _skip_ws(s, i)
    if s.startswith("->", i):  # select expression: keep the default variant
        i += 2
        default: str | None = None
        first: str | None = None
        while True:
            i = _skip_ws(s, i)
            if i >= len(s):
                raise FluentError("unterminated select expression")
            if s[i] == "}":
                i += 1
                break
            is_default = s[i] == "*"
            if is_default:
                i += 1
            if s[i : i + 1] != "[":
                raise FluentError("expected a variant key")
            j = s.index("]", i)
            value, i = _parse_pattern(s, j + 1)
            if first is None:
                first = value
            if is_default:
                default = value
        return (default if default is not None else first or ""), i
    if s[i : i + 1] != "}":
        raise FluentError("expected } to close a placeable")
    return text, i + 1


def _entry_blocks(text: str) -> Iterator[str]:
    """Split a Fluent resource into entry blocks: a line starting at column 0 with an identifier (or ``-`` for a term)
    plus its indented (or blank) continuation lines; a placeable's closing ``}`` may sit at column 0. Comments and junk
    lines end a block."""
    block: list[str] | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line[:1] in (" ", "\t", "}") or line.strip() == "":
            if block is not None:
                block.append(line)
            continue
        if block is not None:
            yield "\n".join(block).rstrip()
            block = None
        if _ENTRY_HEAD.match(line):
            block = [line]
    if block is not None:
        yield "\n".join(block).rstrip()


def parse_fluent(text: str) -> list[tuple[str, str | None, str]]:
    """Parse a Fluent (.ftl) resource into ``(entry id, attribute or None, value)`` triples in file order.

    Terms keep their leading ``-`` (``-brand-short-name``); term attributes (``.gender`` and the like, never displayed)
    are dropped. Values: select expressions resolved to their default variant (``*[other]``), string literals inlined,
    ``NUMBER($n)``-style calls rendered as their argument, variables / terms / message references kept as
    ``{ $name }`` / ``{ -term }`` / ``{ message }``; multi-line values keep their line breaks. Entries that fail to
    parse are skipped (Fluent junk).
    """
    out: list[tuple[str, str | None, str]] = []
    for block in _entry_blocks(text):
        m = _ENTRY_HEAD.match(block)
        ident = m.group(1)
        try:
            value, i = _parse_pattern(block, m.end())
            attrs: list[tuple[str, str]] = []
            while True:
                i = _skip_ws(block, i)
                if i >= len(block):
                    break
                a = _ATTR_HEAD.match(block, i)
                if not a:
                    raise FluentError(f"unexpected text in {ident}")
                aval, i = _parse_pattern(block, a.end())
                attrs.append((a.group(1), aval))
        except (FluentError, AttributeError, IndexError, ValueError):
            continue
        if value:
            out.append((ident, None, value))
        if not ident.startswith("-"):
            out.extend((ident, name, aval) for name, aval in attrs if aval)
    return out


_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&apos;": "'", "&nbsp;": "\u00a0"}


def normalise_space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def clean_text(value: str) -> str:
    """HTML-like markup (``<strong>``, ``<a data-l10n-name=…>``) removed, the common character entities decoded,
    whitespace runs collapsed to one space."""
    text = _TAG.sub("", value)
    for ent, ch in _ENTITIES.items():
        text = text.replace(ent, ch)
    return normalise_space(text)


def is_text(value: str) -> bool:
    """A displayable string: at least one letter outside the placeables."""
    bare = re.sub(r"\{[^{}]*\}", "", value)
    return any(ch.isalpha() for ch in bare)


def ftl_resource_path(member: str, locale: str) -> str | None:
    """Map an .xpi member to a locale-independent resource path, or None if it is not a Fluent file of the locale.

    ``browser/localization/fr/browser/x.ftl`` -> ``browser/x.ftl``; ``localization/fr/toolkit/about/y.ftl`` ->
    ``toolkit/about/y.ftl``.
    """
    if not member.endswith(".ftl"):
        return None
    for prefix, keep in ((f"browser/localization/{locale}/", ""), (f"localization/{locale}/", "")):
        if member.startswith(prefix):
            return keep + member[len(prefix) :]
    return None


def messages_from_ftl(resources: dict[str, str]) -> list[dict[str, str]]:
    """``{resource path: .ftl text}`` -> sorted ``[{"id": "<path>#<id>[.<attr>]", "text": ...}]`` of displayable
    strings (see ``clean_text``; keyboard shortcuts, CSS, placeable-only values and strings over MAX_CHARS dropped)."""
    rows: dict[str, str] = {}
    for path in sorted(resources):
        for ident, attr, value in parse_fluent(resources[path]):
            if attr in SKIP_ATTRIBUTES:
                continue
            text = clean_text(value)
            if not is_text(text) or len(text) > MAX_CHARS:
                continue
            key = f"{path}#{ident}" + (f".{attr}" if attr else "")
            rows.setdefault(key, text)
    return [{"id": k, "text": rows[k]} for k in sorted(rows)]


def parallel_ids(messages: dict[str, dict[str, str]], reference: str = "en") -> list[str]:
    """Ids present in every locale of ``messages`` ({lang: {id: text}}) and translated (not identical to the
    ``reference`` string in the NON_LATIN locales), without placeables: the aligned corpus."""
    common = set.intersection(*(set(m) for m in messages.values()))
    ref = messages[reference]
    keep = []
    for key in sorted(common):
        if "#-" in key or any("{" in messages[lang][key] for lang in messages):  # term definitions, placeables
            continue
        if any(lang != reference and messages[lang][key] == ref[key] for lang in NON_LATIN if lang in messages):
            continue
        keep.append(key)
    return keep


def templates(messages: dict[str, str], reference: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The messages of one locale with at least one variable or term placeable (``{ $x }``, ``{ -x }``): the NER
    templates. With ``reference`` (the English strings, for a NON_LATIN locale) untranslated copies are left out."""
    reference = reference or {}
    return [
        {"id": k, "text": messages[k]}
        for k in sorted(messages)
        if _SLOT.search(messages[k]) and reference.get(k) != messages[k]
    ]


def read_xpi_ftl(xpi: Path | str, locale: str) -> dict[str, str]:
    with zipfile.ZipFile(xpi) as z:
        out = {}
        for name in sorted(z.namelist()):
            path = ftl_resource_path(name, locale)
            if path is not None:
                out[path] = z.read(name).decode("utf-8")
        return out


# ----------------------------------------------------------------------------------------------------------------------
# iso-codes
# ----------------------------------------------------------------------------------------------------------------------
def read_mo(path: Path | str) -> dict[str, str]:
    """A gettext .mo catalogue as ``{msgid: msgstr}`` (the header entry and untranslated ids left out)."""
    with open(path, "rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog  # noqa: SLF001  (the parsed catalogue)
    return {k: v for k, v in catalog.items() if isinstance(k, str) and k and v}


def country_names(iso_3166_1: dict, translations: dict[str, str] | None) -> list[dict[str, str]]:
    """Country names from iso-codes' ``iso_3166-1.json``. ``translations`` is the language's catalogue (None: the
    English names). A name is looked up by its ``name``, then ``common_name``; untranslated countries are left out.
    Returns sorted ``[{"type": "LOC", "id": alpha_2, "name": ..., "source": "iso_3166-1"}]``."""
    rows = []
    for entry in iso_3166_1["3166-1"]:
        candidates = [entry.get("common_name"), entry["name"]]  # the short everyday name first
        name = None
        for c in candidates:
            if not c:
                continue
            if translations is None:
                name = c
                break
            if c in translations:
                name = translations[c]
                break
        if name:
            rows.append({"type": "LOC", "id": entry["alpha_2"], "name": normalise_space(name), "source": "iso_3166-1"})
    return sorted(rows, key=lambda r: (r["type"], r["id"]))


def org_names(messages: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """The localised values of the ORG_TERMS (brand / organisation names) found among the messages."""
    wanted = set(ORG_TERMS)
    found: dict[str, str] = {}
    for row in messages:
        path, _, ident = row["id"].partition("#")
        if ident in wanted and "{" not in row["text"]:
            found.setdefault(ident, row["text"])
    return [{"type": "ORG", "id": k, "name": found[k], "source": "firefox-branding"} for k in sorted(found)]


_CREDITS = re.compile(r"^(?P<lead>.*?)\s*\(contributors:\s*(?P<names>.*)\)\s*$", re.S)


def script_of(name: str) -> str:
    """The writing system of a name: the first word of the Unicode name of its first letter (LATIN, ARABIC, …)."""
    for ch in name:
        if ch.isalpha():
            return unicodedata.name(ch, "UNKNOWN").split()[0]
    return "UNKNOWN"


def person_name(candidate: str) -> str | None:
    """A credited person's name, or None. In cased scripts the leading run of capitalised words is kept
    ("Александр Словесник и помощники" -> "Александр Словесник"); a name needs two or more words, no digits, no
    e-mail or web address (drops handles, team and company names such as "mozilla.org" or "L’équipe francophone")."""
    words = []
    for w in candidate.split():
        if any(c.isdigit() for c in w) or "@" in w or "." in w:
            return None
        first = next((c for c in w if c.isalpha()), "")
        if first.lower() != first.upper() and not first.isupper():  # cased script, lower-case word: stop
            break
        words.append(w)
    return " ".join(words) if len(words) >= 2 else None


def credited_people(author: str) -> list[str]:
    """Person names from a langpack manifest's ``author`` field ("Lead (contributors: A, B, …)"): the lead when it is a
    person and every contributor, in the order given, without duplicates."""
    m = _CREDITS.match(author.strip())
    parts = [m.group("lead")] + m.group("names").split(",") if m else [author]
    out: list[str] = []
    for part in parts:
        name = person_name(normalise_space(part))
        if name and "mozilla" not in name.lower() and name not in out:
            out.append(name)
    return out


def read_xpi_manifest(xpi: Path | str) -> dict:
    with zipfile.ZipFile(xpi) as z:
        return json.loads(z.read("manifest.json").decode("utf-8"))


# Scripts whose credited names a language's PER lexicon may use: its own script plus, for languages whose own packs
# credit localisers in Latin script (hi, zh) or have very few credited names (ru), the Latin-script names.
PER_SCRIPTS: dict[str, tuple[str, ...]] = {
    "ar": ("ARABIC",),
    "fa": ("ARABIC",),
    "ur": ("ARABIC",),
    "de": ("LATIN",),
    "en": ("LATIN",),
    "fr": ("LATIN",),
    "hi": ("DEVANAGARI", "LATIN"),
    "ru": ("CYRILLIC", "LATIN"),
    "zh": ("CJK", "LATIN"),
}


def person_names(credits: dict[str, list[str]], lang: str) -> list[dict[str, str]]:
    """The PER lexicon of ``lang``: the people credited in any of the nine langpacks (``credits``: {lang: names}) whose
    names are written in one of PER_SCRIPTS[lang]."""
    rows = []
    for source in sorted(credits):
        for k, name in enumerate(credits[source]):
            if script_of(name) in PER_SCRIPTS[lang]:
                rows.append(
                    {"type": "PER", "id": f"{source}-{k:02d}", "name": name, "source": f"langpack-credits-{source}"}
                )
    return rows


# ----------------------------------------------------------------------------------------------------------------------
# Packages
# ----------------------------------------------------------------------------------------------------------------------
def sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def deb_field(deb: Path, field: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), field], check=True, capture_output=True, text=True
    ).stdout.strip()


def download_debs(packages: Iterable[str], dest: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``dest`` (no install); returns ``{package: .deb path}``."""
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o777)  # let apt's unprivileged _apt user write there
    packages = list(packages)
    subprocess.run(["apt-get", "download", *packages], cwd=dest, check=True)
    return find_debs(packages, dest)


def find_debs(packages: Iterable[str], folder: Path) -> dict[str, Path]:
    out = {}
    for p in packages:
        hits = sorted(folder.glob(f"{p}_*.deb"))
        if not hits:
            raise FileNotFoundError(f"no .deb for {p} in {folder}")
        out[p] = hits[-1]
    return out


def extract_deb(deb: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    return dest


# ----------------------------------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------------------------------
def jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in rows)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


LICENSES_MD = """\
# Licences of the embedded demo data

Everything under `data/demo/` is derived by `scripts/build_demo_data.py` from Debian 12 (bookworm) packages; the exact
package versions and the sha256 of each `.deb` are in `PROVENANCE.json`. Rerunning the script rebuilds the files byte
for byte from the same packages.

## `messages/<lang>.jsonl` and the ORG names in `names/<lang>.jsonl`: Mozilla Public License 2.0

Localised user-interface strings of Firefox ESR, from the language packs
`firefox-esr-l10n-{{ar,de,en-gb,fa,fr,hi-in,ru,ur,zh-cn}}` ({firefox_version}): the Fluent (`.ftl`) files inside
`usr/lib/firefox-esr/browser/extensions/langpack-<locale>@firefox-esr.mozilla.org.xpi`. The strings are the work of
Mozilla and the Mozilla localisation communities, licensed under the Mozilla Public License, v. 2.0
(https://mozilla.org/MPL/2.0/; Debian: `/usr/share/doc/firefox-esr-l10n-*/copyright`). Source form:
https://hg.mozilla.org/l10n-central/ and https://github.com/mozilla-l10n/firefox-l10n. The files here are a
re-formatting of those strings (select expressions resolved to their default variant, whitespace collapsed), i.e.
Covered Software in Source Code Form, available under the same licence. "Firefox" and "Mozilla" are trademarks of the
Mozilla Foundation; they appear here only as the text of the strings.

## LOC names in `names/<lang>.jsonl`: GNU Lesser General Public License 2.1 or later

ISO 3166-1 country names and their translations from Debian's `iso-codes` ({iso_version}):
`usr/share/iso-codes/json/iso_3166-1.json` and the gettext catalogues
`usr/share/locale/<lang>/LC_MESSAGES/iso_3166-1.mo` (zh: `zh_CN`; en: the English names of the JSON file).
Copyright the iso-codes contributors and translators, licensed LGPL-2.1-or-later
(https://salsa.debian.org/iso-codes-team/iso-codes; Debian: `/usr/share/doc/iso-codes/copyright`).

## Derived task data

The task builders in `lib/subnetworks/demo/embedded.py` derive their labels from these files only (message ids, resource
paths, the entity lexicon); no model is involved in labelling.
"""


def collect(debs: dict[str, Path], work: Path) -> dict[str, Any]:
    """Extract the packages under ``work`` and read everything the outputs need: ``{"messages": {lang: {id: text}},
    "names": {lang: [row]}, "provenance": {...}}``."""
    provenance = {"packages": []}
    for package in sorted(debs):
        deb = debs[package]
        provenance["packages"].append(
            {
                "package": deb_field(deb, "Package"),
                "version": deb_field(deb, "Version"),
                "file": deb.name,
                "sha256": sha256(deb),
            }
        )
    iso_root = extract_deb(debs[ISO_CODES_PACKAGE], work / ISO_CODES_PACKAGE)
    iso_3166_1 = json.loads((iso_root / "usr/share/iso-codes/json/iso_3166-1.json").read_text(encoding="utf-8"))
    xpis: dict[str, Path] = {}
    for lang, (package, locale, _) in LOCALES.items():
        root = extract_deb(debs[package], work / package)
        found = sorted(root.glob(f"usr/lib/firefox-esr/browser/extensions/langpack-{locale}@*.xpi"))
        if len(found) != 1:
            raise FileNotFoundError(f"expected one langpack .xpi for {locale} in {package}, found {found}")
        xpis[lang] = found[0]
    credits = {lang: credited_people(read_xpi_manifest(xpi).get("author", "")) for lang, xpi in xpis.items()}
    messages: dict[str, dict[str, str]] = {}
    names: dict[str, list[dict[str, str]]] = {}
    for lang, (_, locale, mo_dir) in LOCALES.items():
        rows = messages_from_ftl(read_xpi_ftl(xpis[lang], locale))
        messages[lang] = {r["id"]: r["text"] for r in rows}
        translations = None
        if mo_dir is not None:
            translations = read_mo(iso_root / "usr/share/locale" / mo_dir / "LC_MESSAGES" / "iso_3166-1.mo")
        names[lang] = country_names(iso_3166_1, translations) + org_names(rows) + person_names(credits, lang)
    return {"messages": messages, "names": names, "provenance": provenance}


def write_outputs(
    out: Path, messages: dict[str, dict[str, str]], names: dict[str, list[dict[str, str]]], provenance: dict[str, Any]
) -> dict[str, int]:
    """Write every output file under ``out`` (see the module docstring); returns a few counts for the log.
    ``messages`` needs "en" (the reference of the parallel corpus and of the untranslated-copy check)."""
    counts: dict[str, int] = {}
    aligned = parallel_ids(messages)
    counts["parallel"] = len(aligned)
    for lang in sorted(messages):
        texts = messages[lang]
        write_text(out / "messages" / f"{lang}.jsonl", jsonl({"id": k, "text": texts[k]} for k in aligned))
        slots = templates(texts, messages["en"] if lang in NON_LATIN else None)
        write_text(out / "templates" / f"{lang}.jsonl", jsonl(slots))
        rows = sorted(names.get(lang, []), key=lambda r: (r["type"], r["id"]))
        write_text(out / "names" / f"{lang}.jsonl", jsonl(rows))
        counts[f"{lang}.strings"] = len(texts)
        counts[f"{lang}.templates"] = len(slots)
        counts[f"{lang}.names"] = len(rows)
    versions = {p["package"]: p["version"] for p in provenance["packages"]}
    write_text(out / "PROVENANCE.json", json.dumps(provenance, ensure_ascii=False, indent=2) + "\n")
    write_text(
        out / "LICENSES.md",
        LICENSES_MD.format(
            firefox_version=versions.get(LOCALES["fr"][0], "?"), iso_version=versions.get(ISO_CODES_PACKAGE, "?")
        ),
    )
    return counts


def build(out: Path, debs: dict[str, Path], work: Path) -> dict[str, int]:
    """Extract the packages and (re)write every output file under ``out``."""
    data = collect(debs, work)
    for sub in ("messages", "templates", "names"):  # no stale files from an earlier language set
        shutil.rmtree(out / sub, ignore_errors=True)
    return write_outputs(out, data["messages"], data["names"], data["provenance"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "demo")
    ap.add_argument("--debs", type=Path, default=None, help="folder with the .debs already downloaded (skips apt-get)")
    args = ap.parse_args(argv)
    packages = [p for p, _, _ in LOCALES.values()] + [ISO_CODES_PACKAGE]
    with tempfile.TemporaryDirectory(prefix="demo-data-") as tmp:
        tmp = Path(tmp)
        debs = find_debs(packages, args.debs) if args.debs else download_debs(packages, tmp / "debs")
        counts = build(args.out, debs, tmp / "x")
    print(json.dumps(counts, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
