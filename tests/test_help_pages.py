"""The node help pages (``web/docs/<NodeId>.md`` and ``web/docs/<NodeId>/zh.md``) and the
translations (``locales/{en,zh}/{nodeDefs,main}.json``): every node id has both pages and both
locale entries, every input and output of every node is translated, the English base and the
pages' inputs/outputs tables are exactly what ``scripts/make_locales.py`` makes of the nodes
(so neither can go stale), and a live host serves them: ``/i18n`` carries our Chinese entries and
the help pages come from the address the frontend's help panel fetches."""
import json
import os
import re

import pytest
import requests

import make_locales as ml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CJK = re.compile(r"[\u4e00-\u9fff]")


def _json(*parts):
    with open(os.path.join(ROOT, "locales", *parts), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def info(N):
    """``/object_info`` of our nodes, as the server builds it for V3 nodes, in-process."""
    return {node_id: cls.GET_NODE_INFO_V1() for node_id, cls in N.items()}


@pytest.fixture(scope="module")
def en():
    return _json("en", "nodeDefs.json")


@pytest.fixture(scope="module")
def zh():
    return _json("zh", "nodeDefs.json")


def test_every_node_has_both_pages_and_both_locale_entries(N, en, zh):
    ids = set(N)
    assert len(ids) >= 13 and all(i.startswith("LumosX") for i in ids)
    assert set(en) == ids and set(zh) == ids
    for node_id in ids:
        for lang in ml.LANGS:
            path = ml.page_path(node_id, lang)
            assert os.path.isfile(path), f"{node_id}: no help page {os.path.relpath(path, ROOT)}"


def test_en_locale_is_what_the_generator_makes_of_the_nodes(info, en):
    assert en == ml.node_defs(info), "locales/en is stale: run scripts/make_locales.py"
    assert _json("en", "main.json") == ml.categories(info)


def test_every_input_and_output_is_translated_into_chinese(info, en, zh):
    assert set(_json("zh", "main.json")["nodeCategories"]) == \
        set(ml.categories(info)["nodeCategories"])
    for node_id, base in en.items():
        z = zh[node_id]
        assert CJK.search(z["display_name"]) and "LumosX" in z["display_name"], node_id
        if "description" in base:
            assert CJK.search(z.get("description", "")), f"{node_id}: description"
        for part in ("inputs", "outputs"):
            assert set(z[part]) == set(base[part]), f"{node_id}.{part}: keys differ from en"
            for key, entry in base[part].items():
                got = z[part][key]
                assert got.get("name"), f"{node_id}.{part}.{key}: no name"
                if entry.get("tooltip"):
                    assert CJK.search(got.get("tooltip", "")), \
                        f"{node_id}.{part}.{key}: tooltip not translated"
    # inputs and outputs really are all there: the schema's every input / output has a row
    for node_id, node in info.items():
        schema_inputs = {n for sec in ("required", "optional")
                         for n in node["input"].get(sec, {})}
        assert set(en[node_id]["inputs"]) == schema_inputs
        assert len(en[node_id]["outputs"]) == len(node["output"])


def test_no_chinese_text_is_older_than_its_english(en):
    """Each Chinese text was translated from today's English (``translated_from.json``); an
    English text changed without its translation is named."""
    source = _json("zh", "translated_from.json")
    assert ml.stale_translations(en, source) == [], \
        "translate these in locales/zh/nodeDefs.json, then: scripts/make_locales.py --zh-done"
    changed = json.loads(json.dumps(en))
    changed["LumosXBind"]["inputs"]["prompt"]["tooltip"] += " More."
    changed["LumosXBind"]["outputs"]["0"]["name"] = "pos"
    assert ml.stale_translations(changed, source) == [
        "LumosXBind.inputs.prompt.tooltip", "LumosXBind.outputs.0.name"]


def test_help_pages_are_current_and_complete(info, zh):
    pages = ml.help_pages(info)
    for path, text in pages.items():
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            assert f.read() == text, f"{rel}: inputs/outputs stale: run scripts/make_locales.py"
        zh_page = rel.endswith("zh.md")
        heads = ("## 输入", "## 输出", "## 典型连接", "## 常见错误") if zh_page else \
            ("## Inputs", "## Outputs", "## Typical wiring", "## Common errors")
        for h in heads:
            assert h in text, f"{rel}: no '{h}'"
        assert bool(CJK.search(text.split(ml.IO_BEGIN)[0])) == zh_page, rel
        for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            # the help panel resolves a relative picture against /extensions/<pack>/docs/
            assert not img.startswith(("/", "http")), f"{rel}: {img}"
            assert os.path.isfile(os.path.join(ml.DOCS, img)), f"{rel}: {img} not in web/docs"


def test_tables_escape_markup():
    assert ml._cell("models/<pack>/ a|b\nc") == "models/&lt;pack&gt;/ a\\|b c"


# -- served by a live host ----------------------------------------------------------------

@pytest.mark.host_matrix
def test_i18n_serves_our_chinese_entries(server, zh):
    got = server.get("/i18n")
    assert {k: got["zh"]["nodeDefs"][k] for k in zh} == zh
    assert got["zh"]["nodeCategories"]["LumosX"] == _json("zh", "main.json")["nodeCategories"]["LumosX"]
    assert {k: got["en"]["nodeDefs"][k] for k in zh} == _json("en", "nodeDefs.json")


@pytest.mark.host_matrix
def test_help_pages_are_served_where_the_help_panel_looks(server):
    info = server.get("/object_info")
    pack = info["LumosXBind"]["python_module"].split(".")[1]   # as the frontend extracts it
    assert pages_ok(server.url, pack, sorted(ml.our_nodes(info)))


def pages_ok(url, pack, node_ids):
    for node_id in node_ids:
        for lang, address in (("en", f"{node_id}.md"), ("zh", f"{node_id}/zh.md")):
            r = requests.get(f"{url}/extensions/{pack}/docs/{address}", timeout=10)
            assert r.status_code == 200, (address, r.status_code)
            # the newer help panel refuses an answer served as HTML
            assert "text/html" not in r.headers.get("content-type", ""), address
            with open(ml.page_path(node_id, lang), encoding="utf-8") as f:
                assert r.content.decode("utf-8") == f.read()
    r = requests.get(f"{url}/extensions/{pack}/docs/bind_report.png", timeout=10)
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    return True
