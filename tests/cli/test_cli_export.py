"""spikeforge export / run and the artifact written by spikeforge fold."""

from __future__ import annotations

import json

import pytest

from spikeforge.cli.main import main
from spikeforge.interop import load_inference


def _eval_acc(run, capsys) -> float:
    assert main(["eval", str(run), "--json"]) == 0
    return float(json.loads(capsys.readouterr().out)["test_acc"])


def _run_acc(path, capsys, *extra: str) -> float:
    assert main(["run", str(path), "--json", "--limit", "48", *extra]) == 0  # the run's data.limit
    return float(json.loads(capsys.readouterr().out)["test_acc"])


def test_export_spikeforge_and_run_reproduce_eval(tiny_run, tmp_path, capsys) -> None:
    acc = _eval_acc(tiny_run, capsys)
    out = tmp_path / "net.sfnet"
    assert main(["export", str(tiny_run), "--format", "spikeforge", "--out", str(out)]) == 0
    assert "spikes identical" in capsys.readouterr().out
    net = load_inference(out)
    assert net.graph.metadata["data"] == "digits" and net.graph.metadata["T"] == 2
    assert _run_acc(out, capsys) == acc  # dataset, encoding and T come from the artifact


def test_fold_also_writes_the_artifact(tiny_run, tmp_path, capsys) -> None:
    art = tmp_path / "f.sfnet"
    assert main(["fold", str(tiny_run), "--samples", "8", "--out", str(tmp_path / "f.safetensors"),
                 "--artifact", str(art)]) == 0
    assert str(art) in capsys.readouterr().out
    assert _run_acc(art, capsys) == _eval_acc(tiny_run, capsys)


def test_export_nir_refuses_ternary_unless_lossy(tiny_run, tmp_path, capsys) -> None:
    pytest.importorskip("nir")
    out = tmp_path / "net.nir"
    assert main(["export", str(tiny_run), "--format", "nir", "--out", str(out)]) == 2
    assert "ternary spikes" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="ternary spikes"):
        assert main(["export", str(tiny_run), "--format", "nir", "--out", str(out), "--lossy"]) == 0
    capsys.readouterr()
    # the exact network comes back from the spikeforge metadata of the NIR file
    assert _run_acc(out, capsys, "--data", "digits", "--T", "2") == _eval_acc(tiny_run, capsys)


def test_export_onnx_and_run(tiny_run, tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "net.onnx"
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(out)]) == 0
    capsys.readouterr()
    assert _run_acc(out, capsys, "--data", "digits") == _eval_acc(tiny_run, capsys)


def test_run_reports_a_corrupted_artifact(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.sfnet"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    assert main(["run", str(bad), "--data", "digits", "--T", "2"]) == 2
    assert "bad.sfnet" in capsys.readouterr().err
