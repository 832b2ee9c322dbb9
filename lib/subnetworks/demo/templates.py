"""The NER stand-in's templates: Firefox messages whose variable slots hold names, the kind of name each slot takes
(by its variable's name), and the tokenisation of the filled sentences (whitespace words; zh by character)."""

from __future__ import annotations

import random
import re
import unicodedata

_PLACEABLE = re.compile(r"\{ ?([^{}]*?) ?\}")
# variable slots by the kind of name they hold in Firefox
PER_SLOTS = frozenset({"author", "username", "user", "userName", "displayName"})
ORG_SLOTS = frozenset(
    {
        "engine",
        "engineName",
        "currentEngine",
        "newEngine",
        "searchEngineName",
        "provider",
        "addonProvider",
        "issuedBy",
        "issuedTo",
        "sponsorOrSource",
        "homeTeam",
        "awayTeam",
        "telemetryServerOwner",
        "agentName",
        "ownerName",
        "vendor",
        "host",
        "hostname",
        "domain",
        "sitename",
        "website",
        "origin",
        "thirdParty",
    }
)  # sites (host, origin …) are named after their organisation
LOC_SLOTS = frozenset({"city", "region", "country", "location"})
# slots for a name of anything the user or a site chose (a device, profile, tab group, add-on, title …): PER or LOC
ANY_SLOTS = frozenset(
    {
        "name",
        "deviceName",
        "profileName",
        "profilename",
        "profile",
        "otherProfile",
        "tabGroupName",
        "group",
        "container",
        "title",
        "tabTitle",
        "streamTitle",
        "label",
        "appName",
        "app-name",
        "addonName",
        "addon-name",
        "addon",
        "extension",
        "extensionName",
        "extensionTitle",
        "itemName",
        "topic",
        "nickname",
        "originTitle",
    }
)
_NUM_SUFFIXES = ("count", "total", "number", "length", "size", "score", "index", "left", "usage", "num")
_NUM_SLOTS = frozenset(
    {
        "quantity",
        "amount",
        "percentage",
        "percent",
        "minutes",
        "hours",
        "seconds",
        "days",
        "pid",
        "winid",
        "temperature",
        "page",
        "visits",
        "bytes",
        "kb",
        "frames",
        "bits",
        "mem",
        "limit",
        "retries",
        "current",
    }
)


def slot_kind(placeable: str) -> str | None:
    """``-brand-short-name`` / ``$engine`` … -> "ORG", "PER", "LOC", "ANY" (PER or LOC), "NUM", or None (unusable)."""
    if placeable.startswith("-"):
        return "ORG"  # Fluent terms are brand names
    if not placeable.startswith("$"):
        return None  # message references
    name = placeable[1:]
    for kind, names in (("PER", PER_SLOTS), ("ORG", ORG_SLOTS), ("LOC", LOC_SLOTS), ("ANY", ANY_SLOTS)):
        if name in names:
            return kind
    low = name.lower()
    if low in _NUM_SLOTS or low.endswith(_NUM_SUFFIXES):
        return "NUM"
    return None


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x2E80 <= o <= 0x9FFF
        or 0xF900 <= o <= 0xFAFF
        or 0xFF00 <= o <= 0xFFEF
        or 0x20000 <= o <= 0x3FFFF
        or 0x3000 <= o <= 0x303F
    )


def tokenize(text: str, lang: str) -> list[str]:
    """WikiAnn-like tokens: whitespace-separated words with leading / trailing punctuation and symbols split off
    (inner ones, as in "l’onglet" or "e-mail", stay). zh: one token per Han character or CJK punctuation mark; runs of
    other letters and digits (e.g. "Firefox") one token; other punctuation one token each."""
    tokens: list[str] = []
    if lang == "zh":
        word = ""
        for ch in text:
            if ch.isspace() or _is_cjk(ch) or _is_punct(ch):
                if word:
                    tokens.append(word)
                    word = ""
                if not ch.isspace():
                    tokens.append(ch)
            else:
                word += ch
        if word:
            tokens.append(word)
        return tokens
    for chunk in text.split():
        head: list[str] = []
        tail: list[str] = []
        while chunk and _is_punct(chunk[0]):
            head.append(chunk[0])
            chunk = chunk[1:]
        while chunk and _is_punct(chunk[-1]):
            tail.insert(0, chunk[-1])
            chunk = chunk[:-1]
        tokens.extend(head + ([chunk] if chunk else []) + tail)
    return tokens


def parse_template(text: str) -> list[tuple[str, str]] | None:
    """A message text -> ``[("text", s) | (kind, placeable)]`` or None when it has a slot it cannot fill or no entity
    slot at all."""
    parts: list[tuple[str, str]] = []
    pos = 0
    has_entity = False
    for m in _PLACEABLE.finditer(text):
        kind = slot_kind(m.group(1).strip())
        if kind is None:
            return None
        has_entity |= kind != "NUM"
        parts.append(("text", text[pos : m.start()]))
        parts.append((kind, m.group(1).strip()))
        pos = m.end()
    parts.append(("text", text[pos:]))
    if not has_entity or "{" in "".join(s for k, s in parts if k == "text"):
        return None
    return parts


def fill_template(
    parts: list[tuple[str, str]], names: dict[str, list[str]], lang: str, rng: random.Random
) -> tuple[list[str], list[str]]:
    """Fill the slots of a parsed template: entity slots with a random name of their type (ANY: PER or LOC, each
    half the time, when both exist), numeric ones with a number. Returns (tokens, IOB2 tags)."""
    tokens: list[str] = []
    tags: list[str] = []
    for kind, value in parts:
        if kind == "text":
            words = tokenize(value, lang)
            tokens += words
            tags += ["O"] * len(words)
            continue
        if kind == "NUM":
            tokens.append(str(rng.randint(2, 99)))
            tags.append("O")
            continue
        if kind == "ANY":
            kinds = [k for k in ("PER", "LOC") if names.get(k)]
            kind = rng.choice(kinds)
        name_tokens = tokenize(rng.choice(names[kind]), lang)
        tokens += name_tokens
        tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name_tokens) - 1)
    return tokens, tags
