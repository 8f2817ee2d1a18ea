"""distnewton.yamlio (the user's YAML, issue 28) and distnewton.stopping's local cut:
what the corpus (tests/test_corpus_hangs.py) does not reach through the CLI."""

import signal
import time

import pytest

from distnewton import stopping
from distnewton.errors import UserError
from distnewton.inputs import require_regular
from distnewton.loop import stop_message
from distnewton.yamlio import MAX_NODES, expanded_nodes, load_text


def test_merge_keys_and_anchors_are_not_duplicates():
    text = "base: &b {lr: 1, batch: 2}\nrun:\n  <<: *b\n  lr: 3\n"
    assert load_text(text, "c.yaml") == {"base": {"lr": 1, "batch": 2},
                                         "run": {"lr": 3, "batch": 2}}


def test_duplicate_key_names_both_lines():
    with pytest.raises(UserError, match=r"^c\.yaml:4: duplicate key 'x' \(first at line 2\)$"):
        load_text("a:\n  x: 1\n  y: 2\n  x: 3\n", "c.yaml")


def test_same_key_in_different_mappings_is_fine():
    assert load_text("a: {x: 1}\nb: {x: 2}\n", "c.yaml") == {"a": {"x": 1}, "b": {"x": 2}}


def test_alias_expansion_is_counted_exactly():
    # keys a and b, list a (1 + 10 scalars), list b (1 + 10 aliases of 11 nodes), the map
    text = "a: &a [" + ", ".join("x" * 10) + "]\nb: [" + ", ".join(["*a"] * 10) + "]\n"
    assert expanded_nodes(text)[0] == 2 + 11 + (1 + 10 * 11) + 1
    assert load_text(text, "c.yaml")["b"][0] == list("x" * 10)


def test_billion_laughs_refused_fast_without_building():
    text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
        for i in range(8))
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=f"past {MAX_NODES} nodes") as err:
        load_text(text, "c.yaml")
    assert time.perf_counter() - t0 < 1.0        # 10^9 nodes would take hours
    assert "lol" not in str(err.value)           # the document is never printed


def test_control_character_names_the_line():
    with pytest.raises(UserError, match=r"^c\.yaml:3: characters YAML cannot read"):
        load_text("a: 1\nb: 2\nc: x\x01y\n", "c.yaml")


def test_long_key_is_truncated_in_the_message():
    key = "k" * 500
    with pytest.raises(UserError) as err:
        load_text(f"{key}: 1\n{key}: 2\n", "c.yaml")
    assert len(str(err.value)) < 120


def test_require_regular(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "link").symlink_to(f)
    require_regular(f)
    require_regular(tmp_path / "link")           # a symlink to a regular file
    require_regular(tmp_path / "missing")        # left to the opener's message
    with pytest.raises(UserError, match=r"^k: .*: not a regular file \(a directory\)$"):
        require_regular(tmp_path, "k")


def test_local_range_cuts_after_one_step(monkeypatch):
    monkeypatch.setattr(stopping, "_requested", None)
    monkeypatch.setattr(stopping, "_cut", None)
    assert list(stopping.local_range(5)) == [0, 1, 2, 3, 4]
    monkeypatch.setattr(stopping, "_requested", "SIGTERM")
    assert list(stopping.local_range(5, "local Newton steps")) == [0]   # one step still
    assert stopping.cut() == ("local Newton steps", 1, 5)


def test_loading_signal_raises_interrupted(monkeypatch):
    monkeypatch.setattr(stopping, "_requested", None)
    monkeypatch.setattr(stopping, "_loading", True)
    with pytest.raises(stopping.Interrupted) as err:
        stopping._handler(signal.SIGTERM, None)
    assert err.value.exit_code == 143
    assert "SIGTERM received while loading the input" in str(err.value)
    monkeypatch.setattr(stopping, "_loading", False)
    stopping._handler(signal.SIGUSR1, None)      # iterating: only the flag
    assert stopping.pending() == "SIGUSR1"


def test_stop_messages():
    assert "during the local phase of round 7: cut after 3 of 100000 local Newton steps" \
        in stop_message("SIGTERM", None, 7, ("local Newton steps", 3, 100000))
    assert stop_message("SIGINT", "SIGINT", 7, None).startswith("SIGINT received: stopped")
    assert "--resume" in stop_message("SIGTERM", None, 2, None)


def test_a_stored_config_with_an_escaped_lone_surrogate_still_reads():
    """PyYAML dumps a file name that is not UTF-8 as ``"\\uDCFE"``, which libyaml
    refuses: such a document is read with U+FFFD in its place; a plain scalar
    holding the same six characters elsewhere stays as written."""
    import yaml
    from distnewton.yamlio import load_text
    text = yaml.safe_dump({"train": "/d\udcfe.svm", "note": "x"})
    assert '"/d\\uDCFE.svm"' in text
    assert load_text(text, "c") == {"train": "/d\ufffd.svm", "note": "x"}
    assert load_text("k: a\\uDCFEb\n", "c") == {"k": "a\\uDCFEb"}
    assert load_text('k: "\\\\uDCFE"\n', "c") == {"k": "\\uDCFE"}
