"""Loss/perplexity PNG of a run folder: drawn from the run's own CSV logs, one-line errors otherwise."""

from __future__ import annotations

import math

import pytest

from dialogpt.train.plot import PLOT_FILE, plot_run, read_run_logs

TRAIN_HEADER = ("epoch,global_step,step,loss,ppl,mean_loss,mean_ppl,n_token_real,n_token_total,"
                "tokens_per_sec,lr,padding_efficiency,epoch_time")
EVAL_HEADER = "epoch,global_step,step,eval_loss,eval_ppl,eval_tokens"


def _write_run(d, losses, evals=()):
    d.mkdir(parents=True, exist_ok=True)
    rows = [TRAIN_HEADER]
    for i, loss in enumerate(losses, 1):
        rows.append(f"1,{i},{2 * i},{loss},{math.exp(loss)},{loss + 0.1},{math.exp(loss + 0.1)},10,12,100.0,1e-4,0.8,1.0")
    rows.append("1,99,198,0.5")  # a line cut short by a killed run: skipped, not a crash
    (d / "train_log.txt").write_text("\n".join(rows) + "\n")
    if evals:
        (d / "eval_log.txt").write_text(EVAL_HEADER + "\n" + "".join(
            f"1,{s},{2 * s},{v},{math.exp(v)},100\n" for s, v in evals))
    return d


def test_plot_is_a_png_in_the_run_folder_drawn_from_its_logs(tmp_path):
    import matplotlib.image

    run = _write_run(tmp_path / "run", [5.0, 4.0, 3.5, 3.0], evals=[(2, 4.2), (4, 3.3)])
    train, evals = read_run_logs(run)
    assert train["global_step"] == [1, 2, 3, 4] and train["loss"] == [5.0, 4.0, 3.5, 3.0]
    assert evals["eval_loss"] == [4.2, 3.3]
    path = plot_run(run)
    assert path == run / PLOT_FILE and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(str(path))
    assert img.shape[:2] == (380, 1000)
    other = plot_run(_write_run(tmp_path / "other", [1.0, 9.0, 1.0, 9.0]))  # other curves, other pixels
    assert matplotlib.image.imread(str(other)).tolist() != img.tolist()


def test_missing_or_empty_logs_raise_naming_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        plot_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no train_log.txt"):
        plot_run(tmp_path / "empty")
    (tmp_path / "empty" / "train_log.txt").write_text(TRAIN_HEADER + "\n")
    with pytest.raises(ValueError, match="no step lines yet"):
        plot_run(tmp_path / "empty")
    (tmp_path / "empty" / "train_log.txt").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a dialogpt-hf log"):
        plot_run(tmp_path / "empty")


@pytest.mark.slow
def test_a_finished_run_has_the_plot_in_its_folder_and_card_and_the_cli_redraws_it(tmp_path, tokenizer_dir,
                                                                                   capsys):
    from huggingface_hub import ModelCard
    from train_helpers import base_config, write_parquet_dataset

    from dialogpt.cli.train import main
    from dialogpt.train.loop import train

    ds = write_parquet_dataset(tmp_path / "ds", n_train=32, n_valid=8)
    res = train(base_config(tmp_path, ds, tokenizer_dir, num_optim_steps=4, eval_steps=2))
    run = tmp_path / "run"
    png = run / PLOT_FILE
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_run_logs(run)[0]["global_step"] == [1, 2, 3, 4] and res.global_step == 4
    card = ModelCard.load(run / "README.md")
    assert f"]({PLOT_FILE})" in card.text  # the card shows the curves (relative link: works on the Hub too)
    png.unlink()
    capsys.readouterr()
    assert main(["plot", str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / PLOT_FILE) and png.is_file()
    assert main(["plot", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such run folder" in err and err.count("\n") == 1
