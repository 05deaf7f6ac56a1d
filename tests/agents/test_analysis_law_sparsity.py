from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from agents.analysis.law import LawFit, fit_entropy_law
from agents.analysis.sparsity import load_state_dict, param_group, update_sparsity

# --- entropy-performance law ---------------------------------------------------------------

A, B = 0.8, 1.5


def law_points(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    entropy = np.linspace(0.05, 1.2, n)
    return entropy, -A * np.exp(entropy) + B


def test_exact_points_recover_a_and_b() -> None:
    entropy, reward = law_points()
    fit = fit_entropy_law(entropy.tolist(), reward.tolist())
    assert fit is not None
    assert fit.a == pytest.approx(A, abs=1e-10)
    assert fit.b == pytest.approx(B, abs=1e-10)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.n == 20
    assert fit.ceiling == pytest.approx(B - A)


def test_noisy_points_recover_a_and_b_within_tolerance() -> None:
    rng = np.random.default_rng(0)
    entropy = rng.uniform(0.0, 1.5, 400)
    reward = -A * np.exp(entropy) + B + rng.normal(0.0, 0.02, entropy.size)
    fit = fit_entropy_law(entropy, reward)
    assert fit is not None
    assert fit.a == pytest.approx(A, abs=0.01)
    assert fit.b == pytest.approx(B, abs=0.02)
    assert 0.95 < fit.r2 < 1.0


def test_r2_is_low_for_unrelated_reward() -> None:
    rng = np.random.default_rng(1)
    fit = fit_entropy_law(rng.uniform(0, 1, 200), rng.normal(size=200))
    assert fit is not None
    assert fit.r2 < 0.1


def test_too_few_points_or_no_spread_give_none() -> None:
    assert fit_entropy_law([0.1, 0.5], [1.0, 0.5]) is None
    assert fit_entropy_law([], []) is None
    assert fit_entropy_law([0.7] * 10, np.linspace(0, 1, 10).tolist()) is None


def test_non_finite_pairs_are_dropped() -> None:
    entropy, reward = law_points(6)
    entropy_bad = np.concatenate([entropy, [np.nan, 0.3, np.inf, 1e6]])
    reward_bad = np.concatenate([reward, [0.1, np.nan, 0.2, 0.3]])  # 1e6 overflows exp
    fit = fit_entropy_law(entropy_bad, reward_bad)
    assert fit is not None
    assert fit.n == 6
    assert fit.a == pytest.approx(A)
    assert fit.b == pytest.approx(B)
    # Dropping leaves two usable points: no fit.
    assert fit_entropy_law([0.1, np.nan, 0.5, 0.9], [1.0, 0.5, np.nan, 0.2]) is None


def test_constant_reward_r2_convention() -> None:
    fit = fit_entropy_law([0.1, 0.4, 0.9], [0.3, 0.3, 0.3])
    assert fit is not None
    assert fit.a == pytest.approx(0.0, abs=1e-12)
    assert fit.b == pytest.approx(0.3)
    assert fit.r2 == 1.0


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="length"):
        fit_entropy_law([0.1, 0.2, 0.3], [1.0, 2.0])


def test_predict_and_as_dict() -> None:
    fit = LawFit(a=A, b=B, r2=0.9, n=5)
    scalar = fit.predict(0.0)
    assert isinstance(scalar, float)
    assert scalar == pytest.approx(B - A)
    values = fit.predict(np.array([0.0, 1.0]))
    assert isinstance(values, np.ndarray)
    np.testing.assert_allclose(values, [B - A, B - A * math.e])
    assert fit.as_dict() == pytest.approx({"a": A, "b": B, "r2": 0.9, "n": 5, "ceiling": B - A})
    json.dumps(fit.as_dict())


# --- update sparsity -----------------------------------------------------------------------


def test_unchanged_fraction_counts_exactly_changed_entries() -> None:
    before = {"model.layers.0.mlp.up_proj.weight": torch.ones(4, 5)}
    after_w = torch.ones(4, 5)
    after_w[0, :3] = 2.0  # three entries changed
    report = update_sparsity(before, {"model.layers.0.mlp.up_proj.weight": after_w})
    assert report["overall"] == {"params": 20, "unchanged": 17 / 20, "small": 17 / 20}
    assert report["layers"] == {"model.layers.0": report["overall"]}


def test_tiny_relative_change_is_small_but_not_unchanged() -> None:
    before = torch.full((10,), 3.0, dtype=torch.float64)
    after = before.clone()
    after[:4] *= 1 + 1e-7  # relative change 1e-7 <= 1e-5
    after[4] *= 1 + 1e-3  # relative change above the tolerance
    report = update_sparsity({"model.norm.weight": before}, {"model.norm.weight": after})
    assert report["overall"] == {"params": 10, "unchanged": 0.5, "small": 0.9}
    assert report["matrices"] == {}  # 1-D: no rank


def test_change_from_zero_is_not_small() -> None:
    before = {"lm_head.bias": torch.zeros(4)}
    after = {"lm_head.bias": torch.tensor([0.0, 1e-9, 0.0, 0.0])}
    assert update_sparsity(before, after)["overall"]["small"] == 0.75


def test_nan_is_neither_unchanged_nor_small_and_inf_is_unchanged() -> None:
    before = {"x.w": torch.tensor([float("nan"), float("inf"), 1.0])}
    after = {"x.w": torch.tensor([float("nan"), float("inf"), 1.0])}
    overall = update_sparsity(before, after)["overall"]
    assert overall["unchanged"] == pytest.approx(2 / 3)
    assert overall["small"] == pytest.approx(2 / 3)


def test_bfloat16_against_float32_compares_values() -> None:
    values = torch.tensor([1.0, 0.5, -2.0])
    report = update_sparsity({"x.w": values.to(torch.bfloat16)}, {"x.w": values})
    assert report["overall"]["unchanged"] == 1.0


def test_rank_of_outer_product_delta_is_one() -> None:
    rows, cols = 6, 4
    before = torch.randn(rows, cols, generator=torch.Generator().manual_seed(0))
    u = torch.tensor([1.0, -2.0, 0.5, 3.0, 1.0, 2.0])
    v = torch.tensor([2.0, 1.0, -1.0, 0.25])
    name = "model.layers.1.self_attn.o_proj.weight"
    report = update_sparsity({name: torch.zeros(rows, cols)}, {name: torch.outer(u, v)})
    assert report["matrices"][name] == {"shape": [rows, cols], "rank": 1, "rank_ratio": 1 / 4}
    # The same step onto nonzero weights, with values whose sums are exact: still rank 1.
    before_int = torch.randint(-8, 8, (rows, cols), generator=torch.Generator().manual_seed(3))
    before_exact = before_int.float()
    report = update_sparsity({name: before_exact}, {name: before_exact + torch.outer(u, v)})
    assert report["matrices"][name]["rank"] == 1
    # Onto generic float32 weights the stored sum rounds, and that rounding is part of the
    # stored update: it is no longer rank 1 (documented in _delta_rank).
    after = before + 1e-3 * torch.outer(u, v)
    report = update_sparsity({name: before}, {name: after})
    assert report["matrices"][name]["rank"] > 1


def test_zero_delta_has_rank_zero_and_full_update_full_rank() -> None:
    before = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    report = update_sparsity({"w.weight": before}, {"w.weight": before.clone()})
    assert report["matrices"]["w.weight"] == {"shape": [5, 3], "rank": 0, "rank_ratio": 0.0}
    assert report["overall"]["unchanged"] == 1.0
    after = before + torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    report = update_sparsity({"w.weight": before}, {"w.weight": after})
    assert report["matrices"]["w.weight"]["rank_ratio"] == 1.0


def test_compute_rank_false_skips_matrices() -> None:
    state = {"w.weight": torch.ones(3, 3)}
    assert update_sparsity(state, state, compute_rank=False)["matrices"] == {}


def test_layer_groups_aggregate_per_block() -> None:
    names = [
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.10.input_layernorm.weight",
        "lm_head.weight",
    ]
    before = {name: torch.zeros(2, 2) for name in names}
    after = {name: torch.zeros(2, 2) for name in names}
    after["model.layers.0.mlp.down_proj.weight"][0, 0] = 1.0
    layers = update_sparsity(before, after)["layers"]
    assert set(layers) == {"model.embed_tokens", "model.layers.0", "model.layers.10", "lm_head"}
    assert layers["model.layers.0"] == {"params": 8, "unchanged": 7 / 8, "small": 7 / 8}
    assert layers["lm_head"] == {"params": 4, "unchanged": 1.0, "small": 1.0}


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("model.layers.3.self_attn.q_proj.weight", "model.layers.3"),
        ("layers.12.mlp.weight", "layers.12"),
        ("model.vision.encoder.layers.2.fc.bias", "model.vision.encoder.layers.2"),
        ("model.embed_tokens.weight", "model.embed_tokens"),
        ("model.norm.weight", "model.norm"),
        ("lm_head.weight", "lm_head"),
        ("model.sublayers.4.weight", "model.sublayers.4"),  # module path, not a block
        ("scale", "scale"),
    ],
)
def test_param_group(name: str, group: str) -> None:
    assert param_group(name) == group


def test_mismatched_models_raise_naming_the_keys() -> None:
    before = {"a.weight": torch.zeros(2), "b.weight": torch.zeros(2), "c.weight": torch.zeros(3)}
    after = {"a.weight": torch.zeros(2), "d.weight": torch.zeros(2), "c.weight": torch.zeros(4)}
    with pytest.raises(ValueError) as info:
        update_sparsity(before, after)
    message = str(info.value)
    assert "b.weight" in message and "d.weight" in message and "c.weight" in message


def test_empty_state_dicts() -> None:
    report = update_sparsity({}, {})
    assert report == {
        "overall": {"params": 0, "unchanged": 0.0, "small": 0.0},
        "layers": {},
        "matrices": {},
    }


# --- loading saved models ------------------------------------------------------------------


def test_load_state_dict_single_file_round_trip(tmp_path) -> None:
    state = {"model.embed_tokens.weight": torch.randn(4, 3), "lm_head.bias": torch.arange(3.0)}
    save_file(state, str(tmp_path / "model.safetensors"))
    loaded = load_state_dict(tmp_path)
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value)
    assert load_state_dict(tmp_path / "model.safetensors").keys() == state.keys()
    assert update_sparsity(state, loaded)["overall"]["unchanged"] == 1.0


def test_load_state_dict_sharded_with_index(tmp_path) -> None:
    shard1 = {"model.layers.0.w": torch.ones(2, 2)}
    shard2 = {"model.layers.1.w": torch.zeros(3)}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_file(shard1, str(tmp_path / names[0]))
    save_file(shard2, str(tmp_path / names[1]))
    weight_map = {"model.layers.0.w": names[0], "model.layers.1.w": names[1]}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    loaded = load_state_dict(tmp_path)
    assert set(loaded) == set(weight_map)
    assert torch.equal(loaded["model.layers.0.w"], shard1["model.layers.0.w"])
    # Without the index the shards are still found by name.
    (tmp_path / "model.safetensors.index.json").unlink()
    assert set(load_state_dict(tmp_path)) == set(weight_map)


def test_load_state_dict_missing_weights(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no model weights"):
        load_state_dict(tmp_path)
    index = {"weight_map": {"w": "model-00001-of-00001.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(FileNotFoundError, match="missing shards"):
        load_state_dict(tmp_path)
