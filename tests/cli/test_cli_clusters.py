"""``clinfonce clusters build`` and ``sweep`` end to end on generated tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.cli import main
from clinfonce.clusters import build_clusters, cluster_metrics, read_assignment
from clinfonce.clusters.io import file_sha256

OFFICIAL = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "reference"
    / "cl-infonce-official-metadata"
)


def _run(*args: object) -> int:
    return main(["clusters", *(str(a) for a in args)])


@pytest.fixture()
def table_path(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 200
    label = rng.integers(0, 4, n)
    frame = pd.DataFrame(
        {
            "id": [f"img{i:03d}" for i in range(n)],
            "label": label,
            "striped": (label % 2 == 0).astype(int),  # informative
            "noise": rng.integers(0, 2, n),
            "split": np.where(np.arange(n) < 150, "train", "val"),
            "gappy": np.where(np.arange(n) == 7, np.nan, 1.0),
        }
    )
    path = tmp_path / "meta.csv"
    frame.to_csv(path, index=False)
    return path


def test_build_writes_assignment_sidecar_and_prints_metrics(
    table_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "clusters.csv"
    args = ["clusters", "build", str(table_path), "--builder", "attributes", "--k", "1"]
    code = main([*args, "--split", "train", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    train = pd.read_csv(table_path).iloc[:150]
    expected = build_clusters(train, "attributes", k=1)
    metrics = cluster_metrics(expected, train["label"])
    assert f"I(Z;T)         {metrics['i_zt']:.4f}" in printed
    assert "attributes used (in order): " in printed
    assignment = read_assignment(out)
    assert assignment["id"].tolist() == train["id"].tolist()
    assert np.array_equal(assignment["cluster"].to_numpy(), expected)
    meta = json.loads(Path(f"{out}.json").read_text())
    assert meta["builder"] == "attributes"
    assert meta["params"] == {"k": 1}
    assert meta["input"]["sha256"] == file_sha256(table_path)
    assert meta["input"]["rows"] == 150
    assert meta["metrics"]["i_zt"] == pytest.approx(metrics["i_zt"])
    assert meta["label_column"] == "label"


def test_low_information_note(table_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "c.csv"
    code = _run("build", table_path, "--builder", "attributes", "--columns", "noise", "--out", out)
    assert code == 0
    assert "a combined Cl-InfoNCE + InfoNCE objective" in capsys.readouterr().out
    main(["clusters", "build", str(table_path), "--builder", "label", "--out", str(out)])
    assert "combined" not in capsys.readouterr().out  # I(Z;T)/H(T) = 1


def test_config_file_and_command_line_override(
    table_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"table: {table_path}\nbuilder: attributes\ncolumns: [striped, noise]\n"
        f"rank: given\nk: 2\nout: {tmp_path / 'from-config.csv'}\n"
    )
    assert main(["clusters", "build", "--config", str(config), "--k", "1"]) == 0
    ids = read_assignment(tmp_path / "from-config.csv")["cluster"]
    assert ids.tolist() == pd.read_csv(table_path)["striped"].tolist()  # k=1 from the CLI
    config.write_text("builder: attributes\nlevle: 3\n")
    assert main(["clusters", "build", str(table_path), "--config", str(config)]) == 1
    assert "unknown key 'levle'" in capsys.readouterr().err


def test_sweep_writes_table_markdown_and_plot(
    table_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    code = _run(
        "sweep", table_path, "--builder", "attributes", "--values", "1:2",
        "--columns", "striped,noise", "--rank", "given", "--out-dir", out,
    )  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out / "sweep.csv")
    assert frame["k"].tolist() == [1, 2]
    assert frame["num_clusters"].tolist() == [2, 4]
    assert (out / "sweep.md").read_text().startswith("| k | num_clusters |")
    assert (out / "sweep.png").stat().st_size > 1000
    assert "k=2: K=4" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--builder", "attributes", "--columns", "nope"], "'nope' not found in the table"),
        (["--builder", "attributes", "--level", "2"], "--level does not apply to builder"),
        (["--builder", "hierarchy", "--level", "1"], "'hierarchy' needs parents"),
        (["--builder", "label", "--id-column", "striped"], "appear more than once"),
        (["--builder", "label", "--split", "test"], "no rows with split == 'test'"),
        (["--builder", "label", "--label-column", "gappy"], "'gappy' has 1 missing value(s)"),
        (["--builder", "tags", "--tag-column", "a", "--column", "b"], "'column' a second time"),
    ],
)
def test_bad_input_is_one_line_error(
    extra: list[str], message: str, table_path: Path, tmp_path: Path, capsys
) -> None:
    code = main(["clusters", "build", str(table_path), *extra, "--out", str(tmp_path / "c.csv")])
    assert code == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("build", "sweep"):
        with pytest.raises(SystemExit):
            main(["clusters", command, "--help"])
        text = capsys.readouterr().out
        assert "examples:" in text and f"clinfonce clusters {command}" in text


@pytest.mark.skipif(not OFFICIAL.is_dir(), reason="../shared reference data absent")
def test_official_zappos_sweep_matches_paper_notes(tmp_path: Path) -> None:
    table = OFFICIAL / "UT-zappos50K" / "rank_H" / "meta_data_train.csv"
    code = _run(
        "sweep", table, "--builder", "column", "--values", "label_gran_*",
        "--label-column", "class", "--no-ami", "--out-dir", tmp_path,
    )  # fmt: skip
    assert code == 0
    frame = pd.read_csv(tmp_path / "sweep.csv").set_index("column")
    assert frame.index[:4].tolist() == [
        "label_gran_3",
        "label_gran_5",
        "label_gran_7",
        "label_gran_10",
    ]
    assert frame.loc["label_gran_10", "num_clusters"] == 625
    assert round(frame.loc["label_gran_10", "h_z_given_t"], 3) == 6.210
    assert round(frame.loc["label_gran_50", "i_zt"], 3) == 3.012


def test_k_larger_than_the_attribute_columns_is_capped_with_a_note(
    table_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "capped.csv"
    assert _run("build", table_path, "--builder", "attributes", "--k", "10", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "note: k = 10 capped at" in printed
    sweep = tmp_path / "sweep"
    args = ["sweep", table_path, "--builder", "attributes", "--values", "1:9"]
    assert _run(*args, "--out-dir", sweep) == 0
    assert "note: k = " in capsys.readouterr().out


def test_suggest_ranks_the_informative_column_first(
    table_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run("suggest", table_path, "--exclude", "gappy", "--batch-size", "64") == 0
    printed = capsys.readouterr().out
    assert "recommended: striped, method.name=" in printed
    assert printed.index("| striped |") < printed.index("| noise |")


def test_every_builder_parameter_is_an_option_typed_and_explained_by_the_builder() -> None:
    from clinfonce.cli.clusters.options import BUILDER_OPTIONS
    from clinfonce.clusters.builders import BUILDERS

    options = {option.param: option for option in BUILDER_OPTIONS if option.flag != "--tag-column"}
    for builder in BUILDERS.values():
        for name in builder.parameters():
            if name == "label_column":  # a common option: the metrics use it too
                continue
            option = options[name]
            assert option.flag == f"--{name.replace('_', '-')}"
            assert f"{builder.name}: {builder.parameter_docs()[name]}" in option.help
    assert options["rank"].choices == ("entropy", "given")
    assert options["spherical"].boolean and options["columns"].type is not None
