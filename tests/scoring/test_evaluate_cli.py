"""dialogpt-eval / scripts/evaluate_multiref.py end to end: every input format, DSTC7 selection,
the table row and JSON, perplexity against a manual loss, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from metrics_helpers import REF_DIR, REPO_ROOT, TOL, load_case

from dialogpt.cli.eval import main
from dialogpt.legacy_tsv import write_refs
from dialogpt.scoring import METRIC_KEYS, score_all, select_references

DEMO = REF_DIR / "demo"


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_demo_case_end_to_end_with_meteor(tmp_path, capsys):
    js = tmp_path / "scores.json"
    rc, out, err = _run(capsys, "--hyp", DEMO / "hyp.txt", "--refs", DEMO / "refs.txt", "--output-json", js)
    assert rc == 0, err
    got = json.loads(js.read_text())
    assert list(got) == METRIC_KEYS
    _, _, exp = load_case("demo")
    for k in METRIC_KEYS:
        assert got[k] == pytest.approx(exp[k], abs=TOL), k
    lines = out.strip().splitlines()
    assert lines[0] == ("| Experiment | NIST2 | NIST4 | BLEU2 | BLEU4 | METEOR | ENT-4 | DIST-1 | DIST-2 "
                        "| Avg. Len |")
    assert lines[2] == "| hyp.txt | 2.08 | 2.19 | 44.10% | 32.24% | 27.14% | 1.79 | 86.67% | 100.00% | 5.0 |"


HYPS = ["he is a rocket scientist .", "i love it !", "no way , man"]
SEVEN = [[f"he is {w} ." for w in ("a scientist", "the human", "a trader", "an engineer", "a rocket man", "ok", "x")],
         [f"i {w} it !" for w in ("love", "human", "like", "hate", "adore", "made", "saw")],
         [f"{w} way , man" for w in ("no", "human", "any", "some", "that", "this", "my")]]


def test_seed_refs_file_uses_dstc_py_slots_by_default(tmp_path, capsys):
    (tmp_path / "hyp.txt").write_text("\n".join(HYPS) + "\n")
    write_refs(tmp_path / "test.refs.txt", [(f"context {i} EOS more", r) for i, r in enumerate(SEVEN)])
    js = tmp_path / "s.json"
    rc, out, err = _run(capsys, "--hyp", tmp_path / "hyp.txt", "--refs", tmp_path / "test.refs.txt",
                        "--no-meteor", "--output-json", js)
    assert rc == 0, err
    got = json.loads(js.read_text())
    # dstc.py defaults: 6 slots, vshuman=1 -> refs [0, 2, 2, 3, 4, 5]; the "human" refs never count
    slots = [[r[i] for i in (0, 2, 2, 3, 4, 5)] for r in SEVEN]
    assert got == pytest.approx(score_all(HYPS, slots, compute_meteor=False), abs=1e-12)
    assert "meteor" not in got and "| - |" in out
    rc, _, _ = _run(capsys, "--hyp", tmp_path / "hyp.txt", "--refs", tmp_path / "test.refs.txt", "--no-meteor",
                    "--vshuman", "-1", "--n-refs", "7", "--output-json", js)
    all7 = json.loads(js.read_text())
    assert all7 == pytest.approx(score_all(HYPS, SEVEN, compute_meteor=False), abs=1e-12)
    assert all7["nist4"] != pytest.approx(got["nist4"], abs=1e-6)


def test_dstc7_submission_with_keys_matches_the_sorted_tsv(tmp_path, capsys):
    (tmp_path / "keys.txt").write_text("h2\nh0\nh1\n")
    (tmp_path / "sub.txt").write_text("h1\tctx\tI love it!\nhX\tctx\tunused\nh0\tctx\tHe is a rocket scientist.\n"
                                      "h2\tctx\told\nh2\tctx\tno way, man\n")
    write_refs(tmp_path / "refs.txt", [(f"h{i}", r) for i, r in enumerate(SEVEN)])
    js = tmp_path / "s.json"
    rc, out, err = _run(capsys, "--hyp", tmp_path / "sub.txt", "--refs", tmp_path / "refs.txt", "--keys",
                        tmp_path / "keys.txt", "--clean", "--no-meteor", "--output-json", js)
    assert rc == 0, err
    slots = [[r[i] for i in (0, 2, 2, 3, 4, 5)] for r in SEVEN]
    assert json.loads(js.read_text()) == pytest.approx(score_all(HYPS, slots, clean=True, compute_meteor=False))


def test_plain_tsv_refs_are_used_as_given(tmp_path, capsys):
    hyps, refs, exp = load_case("he_baseline")
    js = tmp_path / "s.json"
    rc, _, err = _run(capsys, "--hyp", REF_DIR / "he_baseline" / "hyp.txt", "--refs",
                      REF_DIR / "he_baseline" / "refs.txt", "--no-meteor", "--output-json", js)
    assert rc == 0, err
    got = json.loads(js.read_text())
    for k in got:
        assert got[k] == pytest.approx(exp[k], abs=TOL), k


@pytest.fixture()
def dialog_dataset(tmp_path):
    """A dataset folder as the builder exports it: Parquet per split, `turns` + `references`."""
    import datasets

    rows = [
        {"turns": [{"text": "how are you ?", "weight": 0.0}, {"text": "fine , thanks", "weight": 1.0},
                   {"text": "good to hear", "weight": 1.0}], "references": ["good to hear", "great"]},
        {"turns": [{"text": "what is this ?", "weight": 0.0}, {"text": "a test", "weight": 1.0}],
         "references": ["a test", "just a test", "a trial"]},
        {"turns": [{"text": "single turn only", "weight": 1.0}], "references": ["ok"]},
    ]
    d = tmp_path / "ds"
    (d / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(d / "data" / "test-00000-of-00001.parquet"))
    return d, rows


def test_dataset_references_and_perplexity_of_the_tiny_model(tmp_path, capsys, dialog_dataset, tiny_model_dir):
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogpt.chat_format import encode_session, install_chat_template

    d, rows = dialog_dataset
    (tmp_path / "hyp.txt").write_text("good to hear\na test\nok\n")
    js = tmp_path / "s.json"
    rc, out, err = _run(capsys, "--hyp", tmp_path / "hyp.txt", "--refs", d, "--split", "test",
                        "--model", tiny_model_dir, "--no-meteor", "--output-json", js)
    assert rc == 0, err
    got = json.loads(js.read_text())
    # the dataset's references are the multi-reference test set: dstc.py's slots by default
    slots = [select_references(r["references"], 6, vshuman=1) for r in rows]
    assert slots[1] == ["a test", "a trial", "a trial", "a test", "a trial", "a trial"]
    expected = score_all(["good to hear", "a test", "ok"], slots, compute_meteor=False)
    assert {k: got[k] for k in expected} == pytest.approx(expected)
    assert "perplexity" in out and "6 reference slots per hypothesis, skipping reference index 1" in err

    # the same number by hand: one session at a time, labels from encode_session
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    install_chat_template(tok)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for r in rows:
            enc = encode_session(tok, r["turns"], 128)
            if enc.num_label_tokens == 0:
                continue  # the single-turn row has nothing to predict
            logits = model(torch.tensor([enc.input_ids])).logits[0, :-1]
            labels = torch.tensor(enc.labels[1:])
            nll += F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum").item()
            n += int((labels != -100).sum())
    assert got["eval_tokens"] == n
    assert got["eval_loss"] == pytest.approx(nll / n, rel=1e-5)
    assert got["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-5)


def test_dataset_without_references_column_or_split(tmp_path, capsys, dialog_dataset):
    d, _ = dialog_dataset
    (tmp_path / "hyp.txt").write_text("a\nb\nc\n")
    rc, _, err = _run(capsys, "--hyp", tmp_path / "hyp.txt", "--refs", d, "--split", "validation", "--no-meteor")
    assert rc == 2 and "validation" in err and "Traceback" not in err


@pytest.mark.parametrize("hyp_text, refs_text, message", [
    ("a\nb\nc\n", "x\ty\nz\n", "hyp.txt has 3 hypotheses but {refs} has 2 reference rows ({hyp}:3 has no partner)"),
    ("a\n\nc\n", "x\ny\nz\n", "{hyp}:2: empty hypothesis"),
])
def test_user_mistakes_are_one_line_errors_naming_file_and_line(tmp_path, capsys, hyp_text, refs_text, message):
    hyp, refs = tmp_path / "hyp.txt", tmp_path / "refs.tsv"
    hyp.write_text(hyp_text)
    refs.write_text(refs_text)
    rc, out, err = _run(capsys, "--hyp", hyp, "--refs", refs, "--no-meteor")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("dialogpt-eval: error: ") and "Traceback" not in err
    assert message.format(hyp=hyp, refs=refs) in err


def test_missing_files_and_allow_empty(tmp_path, capsys):
    rc, _, err = _run(capsys, "--hyp", tmp_path / "nope.txt", "--refs", DEMO / "refs.txt", "--no-meteor")
    assert rc == 2 and f"{tmp_path / 'nope.txt'}: no such file" in err
    rc, _, err = _run(capsys, "--hyp", DEMO / "hyp.txt", "--refs", tmp_path / "refs.txt", "--no-meteor")
    assert rc == 2 and "refs.txt: no such references file" in err
    rc, _, err = _run(capsys, "--hyp", DEMO / "hyp.txt", "--refs", "./no-such-dataset", "--no-meteor")
    assert rc == 2 and "./no-such-dataset: no such file or dataset directory" in err
    (tmp_path / "hyp.txt").write_text("i love it !\n\n")
    (tmp_path / "refs.tsv").write_text("i love it !\nsomething\n")
    js = tmp_path / "s.json"
    rc, _, err = _run(capsys, "--hyp", tmp_path / "hyp.txt", "--refs", tmp_path / "refs.tsv", "--allow-empty",
                      "--no-meteor", "--output-json", js)
    assert rc == 0, err
    # the empty line is scored as DSTC7's "__empty__" segment: 5 mteval tokens, 0 for avg_len
    assert json.loads(js.read_text())["avg_len"] == 2.0


def test_script_is_a_thin_wrapper(tmp_path):
    js = tmp_path / "s.json"
    out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "evaluate_multiref.py"), "--hyp",
                          str(DEMO / "hyp.txt"), "--refs", str(DEMO / "refs.txt"), "--no-meteor",
                          "--output-json", str(js), "--name", "demo"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "| demo | 2.08 | 2.19 | 44.10% | 32.24% | - |" in out.stdout
    assert json.loads(js.read_text())["bleu4"] == pytest.approx(0.3223894034, abs=TOL)


def test_unreadable_inputs_and_outputs_are_one_line_errors(tmp_path, capsys):
    def err_of(*argv):
        rc, out, err = _run(capsys, *argv)
        assert rc == 2 and out == "" and "Traceback" not in err
        assert err.count("\n") == 1 and err.startswith("dialogpt-eval: error: "), err
        return err

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\ncaf\xe9\n")
    assert f"{bad}:2: not UTF-8 text (byte 0xe9)" in err_of("--hyp", bad, "--refs", DEMO / "refs.txt")
    assert f"{bad}:2: not UTF-8" in err_of("--hyp", DEMO / "hyp.txt", "--refs", bad, "--no-meteor")
    # a DSTC7 refs file read through --keys (not sniffed) says the same
    (tmp_path / "keys.txt").write_text("k1\n")
    (tmp_path / "sub.txt").write_text("k1\tctx\thi\n")
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes(b"k1\t1.0|caf\xe9\n")
    assert f"{legacy}:1: not UTF-8" in err_of("--hyp", tmp_path / "sub.txt", "--refs", legacy, "--keys",
                                              tmp_path / "keys.txt", "--no-meteor")
    assert f"{DEMO}: is a directory" in err_of("--hyp", DEMO, "--refs", DEMO / "refs.txt", "--no-meteor")
    # --output-json is checked before any scoring
    js = tmp_path / "missing" / "s.json"
    assert f"--output-json {js}: folder {js.parent} does not exist" in err_of(
        "--hyp", DEMO / "hyp.txt", "--refs", DEMO / "refs.txt", "--output-json", js)
    assert "is a directory" in err_of("--hyp", DEMO / "hyp.txt", "--refs", DEMO / "refs.txt", "--output-json",
                                      tmp_path)


def test_bad_model_or_dataset_folder_for_perplexity(tmp_path, capsys, dialog_dataset):
    d, _ = dialog_dataset
    rc, _, err = _run(capsys, "--model", tmp_path / "nomodel", "--dataset", d)
    assert rc == 2 and f"--model {tmp_path / 'nomodel'}: no such model directory" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = _run(capsys, "--model", tmp_path / "empty", "--dataset", d)
    assert rc == 2 and err.count("\n") == 1 and f"--model {tmp_path / 'empty'}: cannot load" in err
    # a folder of text files that is no dataset (datasets raised DatasetGenerationError)
    rc, _, err = _run(capsys, "--model", tmp_path / "empty", "--dataset", DEMO)
    assert rc == 2 and f"--dataset {DEMO}: cannot load it as a dataset" in err and "Traceback" not in err


def test_empty_response_in_a_dstc7_submission_names_its_line(tmp_path, capsys):
    (tmp_path / "keys.txt").write_text("h0\nh1\n")
    # h1's first line is replaced by its last one (dstc.py keeps the last line of a duplicated hash)
    (tmp_path / "sub.txt").write_text("h1\tctx\tfine\nh0\tctx\thi there\nh1\tctx\t \n")
    write_refs(tmp_path / "refs.txt", [("h0", ["hello"]), ("h1", ["ok"])])
    sub = tmp_path / "sub.txt"
    rc, out, err = _run(capsys, "--hyp", sub, "--refs", tmp_path / "refs.txt", "--keys", tmp_path / "keys.txt",
                        "--no-meteor")
    assert rc == 2 and out == "" and f"{sub}:3: empty response for key 'h1'" in err


@pytest.mark.parametrize("sep", [" ||| ", ","])
def test_one_field_refs_with_a_separator_get_a_one_line_warning(tmp_path, capsys, sep):
    hyps, refs, exp = load_case("demo")
    joined = tmp_path / "refs.txt"
    joined.write_text("".join(sep.join(r) + "\n" for r in refs))
    rc, _, err = _run(capsys, "--hyp", DEMO / "hyp.txt", "--refs", joined, "--no-meteor")
    assert rc == 0, err
    warnings = [x for x in err.splitlines() if "warning" in x]
    assert len(warnings) == 1 and repr(sep) in warnings[0] and str(joined) in warnings[0]
    # TAB-separated (the real multi-reference layout) or one plain reference per line: no warning
    rc, _, err = _run(capsys, "--hyp", DEMO / "hyp.txt", "--refs", DEMO / "refs.txt", "--no-meteor")
    assert rc == 0 and "warning" not in err
    single = tmp_path / "single.txt"
    single.write_text("".join(r[0] + "\n" for r in refs))
    rc, _, err = _run(capsys, "--hyp", DEMO / "hyp.txt", "--refs", single, "--no-meteor")
    assert rc == 0 and "warning" not in err


def test_help_documents_every_refs_format_and_the_meteor_heap(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fmt in ("legacy:", "tsv:", "dataset:", "auto (default):"):
        assert fmt in text
    assert "key TAB score|ref" in text and "' ||| '" in text and "--meteor-heap SIZE" in text


def test_meteor_out_of_memory_is_one_line_naming_the_flag(capsys):
    rc, out, err = _run(capsys, "--hyp", DEMO / "hyp.txt", "--refs", DEMO / "refs.txt", "--meteor-heap", "8m")
    assert rc == 2 and out == "" and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "java.lang.OutOfMemoryError" in line and "--meteor-heap" in line


def test_metric_only_runs_do_not_import_torch():
    """Perplexity needs torch (about 2 s to import); scoring text files must not pay for it."""
    code = "import sys, dialogpt.cli.eval; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
