"""Hand-computed checks of the registered policy losses, their selection rules and aggregation."""

from __future__ import annotations

import math

import pytest
import torch

from agents.training.config import EntropyRegulation
from agents.training.losses import (
    POLICY_LOSSES,
    AdaptiveEntropyCoef,
    aggregate,
    clip_cov_select,
    kl_cov_select,
    planning_boost,
    register_policy_loss,
    token_covariance,
)

NAN = float("nan")

# A shared hand-made batch, B=2, T=5, 8 valid tokens t1..t8, two masked (M) tokens:
#   row 0: [t1, t2, t3, t4, M]      row 1: [M, t5, t6, t7, t8]
# Valid advantages sum to 0 (mean A = 0); valid log-probs sum to -16 (mean logp = -2), so
# cov_t = A_t * (logp_t + 2):
#   t1: 2*2=4  t2: -2*-2=4  t3: 1*1.5=1.5  t4: -1*-1=1 (on the exclusive bound lb=1)
#   t5: 0.5*-3=-1.5  t6: -0.5*1=-0.5  t7: 3*-0.5=-1.5  t8: -3*2=-6
MASK = torch.tensor([[1, 1, 1, 1, 0], [0, 1, 1, 1, 1]], dtype=torch.float32)
ADV = torch.tensor([[2.0, -2.0, 1.0, -1.0, 100.0], [100.0, 0.5, -0.5, 3.0, -3.0]])
LOGP = torch.tensor([[0.0, -4.0, -0.5, -3.0, 5.0], [5.0, -5.0, -1.0, -2.5, 0.0]])
COV = torch.tensor([[4.0, 4.0, 1.5, 1.0, 0.0], [0.0, -1.5, -0.5, -1.5, -6.0]])
CANDIDATES = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)


def _loss(name: str, old_logp: torch.Tensor, logp: torch.Tensor = LOGP,
          advantages: torch.Tensor = ADV, mask: torch.Tensor = MASK, seed: int = 0,
          **settings: float) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Per-token loss, its per-token gradient (d loss_t / d logp_t) and the stats."""
    logp = logp.clone().requires_grad_(True)
    reg = EntropyRegulation(policy_loss=name, **settings)  # type: ignore[arg-type]
    per_token, stats = POLICY_LOSSES[name](logp, old_logp, advantages, mask, reg,
                                           torch.Generator().manual_seed(seed))
    assert per_token.shape == logp.shape and per_token.dtype == torch.float32
    per_token.sum().backward()
    assert logp.grad is not None
    return per_token.detach(), logp.grad, stats


# --- registry -----------------------------------------------------------------------------


def test_registry_holds_the_three_losses_and_refuses_a_second_entry() -> None:
    assert sorted(POLICY_LOSSES) == ["clip", "clip_cov", "kl_cov"]
    with pytest.raises(ValueError, match="already registered"):
        register_policy_loss("clip")(POLICY_LOSSES["kl_cov"])
    assert POLICY_LOSSES["clip"].__name__ == "clip_loss"  # the failed registration changed nothing


@pytest.mark.parametrize("name", ["clip", "clip_cov", "kl_cov"])
def test_masked_tokens_get_zero_loss_and_exactly_zero_gradient(name: str) -> None:
    old = LOGP - 0.3
    old[0, 4], old[1, 0] = NAN, float("inf")  # garbage old log-probs on masked tokens
    logp_b = LOGP.clone()
    logp_b[0, 4], logp_b[1, 0] = 80.0, -80.0  # masked log-probs change wildly
    kw = dict(clip_cov_ratio=0.5, kl_cov_ratio=0.5, clip_cov_lb=-10.0)
    loss_a, grad_a, _ = _loss(name, old, **kw)
    loss_b, grad_b, _ = _loss(name, old, logp=logp_b, **kw)
    assert torch.isfinite(loss_a).all() and torch.isfinite(grad_a).all()
    assert torch.equal(loss_a, loss_b) and torch.equal(grad_a, grad_b)
    masked = ~MASK.bool()
    assert (loss_a[masked] == 0).all() and (grad_a[masked] == 0).all()


# --- planning_boost -----------------------------------------------------------------------


def test_planning_boost_changes_only_query_tokens() -> None:
    adv = torch.tensor([2.0, -1.0])
    query = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]], dtype=torch.bool)
    got = planning_boost(adv, query, alpha=0.2)
    want = torch.tensor([[2.0, 2.4, 2.4, 2.0], [-0.8, -1.0, -1.0, -0.8]])
    assert got.shape == (2, 4)
    torch.testing.assert_close(got, want)
    assert torch.equal(adv, torch.tensor([2.0, -1.0]))  # input untouched


def test_planning_boost_token_level_advantages() -> None:
    adv = torch.tensor([[1.0, -2.0, 0.0], [-0.5, 3.0, -1.0]])
    query = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    want = torch.tensor([[1.5, -1.0, 0.0], [-0.5, 4.5, -0.5]])
    torch.testing.assert_close(planning_boost(adv, query, alpha=0.5), want)


# --- token_covariance ---------------------------------------------------------------------


def test_token_covariance_matches_hand_computation() -> None:
    logp = LOGP.clone()
    logp[0, 4] = NAN  # garbage on masked tokens must not leak into the means
    logp[1, 0] = -float("inf")
    logp.requires_grad_(True)
    got = token_covariance(logp, ADV, MASK)
    torch.testing.assert_close(got, COV)
    assert not got.requires_grad


def test_token_covariance_sequence_advantages() -> None:
    logp = torch.tensor([[-1.0, -2.0, 9.0], [-3.0, -0.5, -1.5]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # mean A = (1+1-1-1-1)/5 = -0.2; mean logp = -8/5 = -1.6.
    want = torch.tensor([[1.2 * 0.6, 1.2 * -0.4, 0.0], [-0.8 * -1.4, -0.8 * 1.1, -0.8 * 0.1]])
    torch.testing.assert_close(token_covariance(logp, torch.tensor([1.0, -1.0]), mask), want)


# --- clip_cov_select / kl_cov_select -------------------------------------------------------


def test_clip_cov_select_count_rule_and_band() -> None:
    # N=8 valid, candidates (1 < cov < 5) are t1, t2, t3; t4 sits on lb and is excluded.
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        sel = clip_cov_select(COV, MASK, clip_ratio=2e-4, generator=g)
        assert int(sel.sum()) == 1  # max(1, int(2e-4 * 8)) = 1: never rounded down to 0
        assert not (sel & ~CANDIDATES).any()
    seen = torch.zeros_like(CANDIDATES)
    for seed in range(50):
        seen |= clip_cov_select(COV, MASK, 2e-4, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(seen, CANDIDATES)  # the draw is random over the candidates
    sel = clip_cov_select(COV, MASK, clip_ratio=0.25, generator=torch.Generator().manual_seed(0))
    assert int(sel.sum()) == 2 and not (sel & ~CANDIDATES).any()  # int(0.25 * 8) = 2
    # More requested than candidates: all candidates.
    assert torch.equal(clip_cov_select(COV, MASK, clip_ratio=0.9), CANDIDATES)


def test_clip_cov_select_reproducible_empty_and_exclude() -> None:
    a = clip_cov_select(COV, MASK, 0.25, generator=torch.Generator().manual_seed(7))
    b = clip_cov_select(COV, MASK, 0.25, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not clip_cov_select(COV, MASK, 0.5, lb=10.0, ub=20.0).any()
    assert not clip_cov_select(COV, torch.zeros(2, 5), 0.5).any()
    exclude = torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    got = clip_cov_select(COV, MASK, 0.9, exclude=exclude)
    assert torch.equal(got, CANDIDATES & ~exclude)
    # A masked token inside the band is never chosen.
    cov = COV.clone()
    cov[0, 4] = 3.0
    assert not clip_cov_select(cov, MASK, 0.9)[0, 4]


def test_kl_cov_select_top_k_rule() -> None:
    cov = torch.tensor([[0.3, 2.0, -1.0, 9.0], [1.5, 0.7, 5.0, -2.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 1]])
    # N=6: k = max(1, int(2e-4*6)) = 1 -> {2.0}; the masked 9.0 and 5.0 are ignored.
    want1 = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(kl_cov_select(cov, mask, 2e-4), want1)
    # k = int(0.5*6) = 3 -> {2.0, 1.5, 0.7}.
    want3 = torch.tensor([[0, 1, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)
    assert torch.equal(kl_cov_select(cov, mask, 0.5), want3)
    # k = int(0.9*6) = 5 -> all but the smallest (-2.0), negative covariances included.
    want5 = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    assert torch.equal(kl_cov_select(cov, mask, 0.9), want5)
    assert not kl_cov_select(cov, torch.zeros(2, 4), 0.5).any()


# --- the registered losses ----------------------------------------------------------------


def test_clip_on_policy_is_minus_advantage_with_reinforce_gradient() -> None:
    loss, grad, stats = _loss("clip", LOGP.clone())
    want = -ADV * MASK  # ratio 1 everywhere: -A_t, d/dlogp = -A_t
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(grad, want)
    assert stats == {}


def test_clip_higher_bounds() -> None:
    # One token, A=1: ratio 1.25 is inside [0.8, 1.28] (no clip) but outside [0.8, 1.2].
    kw = dict(logp=torch.tensor([[math.log(1.25)]]), advantages=torch.tensor([1.0]),
              mask=torch.ones(1, 1))
    loss, grad, _ = _loss("clip", torch.zeros(1, 1), epsilon_high=0.28, **kw)
    assert loss.item() == pytest.approx(-1.25) and grad.item() == pytest.approx(-1.25)
    loss, grad, _ = _loss("clip", torch.zeros(1, 1), epsilon_high=0.2, **kw)
    assert loss.item() == pytest.approx(-1.2) and grad.item() == 0.0
    # Negative advantage, ratio 0.5 below 1 - epsilon_low: the loss is held at -A * 0.8.
    loss, grad, _ = _loss("clip", torch.zeros(1, 1), logp=torch.tensor([[math.log(0.5)]]),
                          advantages=torch.tensor([-1.0]), mask=torch.ones(1, 1))
    assert loss.item() == pytest.approx(0.8) and grad.item() == 0.0


def test_infinite_epsilon_disables_ratio_clip() -> None:
    inf = float("inf")
    _, grad, _ = _loss("clip", LOGP - 0.5, epsilon_low=inf, epsilon_high=inf)
    torch.testing.assert_close(grad, -ADV * MASK * math.exp(0.5))


def test_clip_cov_zeroes_loss_and_gradient_exactly_on_selected_tokens() -> None:
    loss, grad, stats = _loss("clip_cov", LOGP.clone(), seed=3, clip_cov_ratio=0.25)
    sel = clip_cov_select(COV, MASK, 0.25, 1.0, 5.0, torch.Generator().manual_seed(3))
    assert int(sel.sum()) == 2 and not (sel & ~CANDIDATES).any()
    want = torch.where(sel, torch.zeros(()), -ADV * MASK)  # on-policy: -A_t elsewhere
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(grad, want)
    assert torch.equal(grad == 0, sel | ~MASK.bool())
    assert stats == {"clip_cov_fraction": 2 / 8}


def test_clip_cov_skips_tokens_already_clipped_by_ratio() -> None:
    old = LOGP.clone()
    old[0, 0] = -0.5  # t1: ratio e^0.5 > 1.2 with A=2 > 0 -> PPO-clipped, not eligible
    loss, grad, stats = _loss("clip_cov", old, clip_cov_ratio=0.9)
    # Eligible: t2, t3 only; int(0.9*8) = 7 > 2 -> both (t1 would be taken too if it were
    # eligible). t1 keeps its clipped loss -2*1.2 with no gradient; t4..t8 give -A.
    want = torch.tensor([[-2.4, 0.0, 0.0, 1.0, 0.0], [0.0, -0.5, 0.5, -3.0, 3.0]])
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(grad, torch.where(torch.arange(5) == 0, 0.0, want))
    assert stats == {"clip_cov_fraction": 2 / 8}


def test_kl_cov_adds_penalty_exactly_on_top_k_tokens() -> None:
    delta = torch.full((2, 5), 0.1)
    delta[0, 0] = 0.5  # t1 would be PPO-clipped; KL-Cov uses the unclipped loss there
    old, beta = LOGP - delta, 2.0
    loss, grad, stats = _loss("kl_cov", old, kl_cov_ratio=0.25, kl_cov_beta=beta)
    # k = int(0.25*8) = 2: top covariances are t1 (4) and t2 (4). Others: -A * r, unclipped.
    r1, r = math.exp(0.5), math.exp(0.1)
    want = torch.tensor([[-2 * r1 + beta * 0.5, 2 * r + beta * 0.1, -r, r, 0.0],
                         [0.0, -0.5 * r, 0.5 * r, -3 * r, 3 * r]])
    torch.testing.assert_close(loss, want)
    want_grad = torch.tensor([[-2 * r1 + beta, 2 * r + beta, -r, r, 0.0],
                              [0.0, -0.5 * r, 0.5 * r, -3 * r, 3 * r]])
    torch.testing.assert_close(grad, want_grad)
    assert stats["kl_cov_fraction"] == 2 / 8
    assert stats["kl_cov_penalty"] == pytest.approx((2 * 0.5 + 2 * 0.1) / 2)
    # The clip loss on the same batch: t1 is clipped (-2 * 1.2, zero gradient), no penalty.
    loss0, grad0, _ = _loss("clip", old)
    assert loss0[0, 0].item() == pytest.approx(-2.4) and grad0[0, 0].item() == 0.0
    assert loss0[0, 1].item() == pytest.approx(2 * r)


def test_kl_cov_penalty_is_zero_on_policy() -> None:
    loss, grad, stats = _loss("kl_cov", LOGP.clone(), kl_cov_ratio=0.5)
    torch.testing.assert_close(loss, -ADV * MASK)
    assert stats == {"kl_cov_fraction": 4 / 8, "kl_cov_penalty": 0.0}


# --- aggregate ----------------------------------------------------------------------------


def test_aggregate_loss_types_by_hand() -> None:
    # Row 0 has 4 valid tokens summing to 10, row 1 has 2 summing to 11; garbage elsewhere.
    per_token = torch.tensor([[1.0, 2.0, 3.0, 4.0, NAN], [float("inf"), 5.0, 6.0, 9.0, 8.0]],
                             requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 0], [0, 1, 1, 0, 0]])
    cases = {"grpo": (10 / 4 + 11 / 2) / 2, "bnpo": 21 / 6, "dapo": 21 / 6}
    for loss_type, want in cases.items():
        assert aggregate(per_token, mask, loss_type).item() == pytest.approx(want)
    dr_grpo = aggregate(per_token, mask, "dr_grpo", max_completion_length=10)
    assert dr_grpo.item() == pytest.approx(21 / 20)
    loss = aggregate(per_token, mask, "dapo", normalizer=42.0)
    assert loss.item() == 0.5
    loss.backward()
    assert per_token.grad is not None
    torch.testing.assert_close(per_token.grad, mask / 42.0)  # masked garbage: zero gradient
    # grpo: a sequence without valid tokens counts 0 in the batch mean.
    empty = torch.tensor([[1, 1, 1, 1, 0], [0, 0, 0, 0, 0]])
    assert aggregate(per_token, empty, "grpo").item() == pytest.approx(2.5 / 2)


def test_aggregate_refuses_unknown_types_and_dr_grpo_without_length() -> None:
    with pytest.raises(ValueError, match="got 'sapo'"):
        aggregate(LOGP, MASK, "sapo")
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate(LOGP, MASK, "dr_grpo")


# --- adaptive entropy coefficient ---------------------------------------------------------


def test_adaptive_entropy_coef_update_rule_and_gating() -> None:
    ctl = AdaptiveEntropyCoef(target=1.0, coef=0.1, step=0.05, coef_max=0.2)
    assert ctl.applied == 0.0  # nothing measured yet: no bonus
    assert ctl.update(0.5) == pytest.approx(0.15)  # below target: raise
    assert ctl.applied == pytest.approx(0.15)
    assert ctl.update(0.5) == pytest.approx(0.2)
    assert ctl.update(0.5) == pytest.approx(0.2)  # clamped at coef_max
    assert ctl.update(2.0) == pytest.approx(0.15)  # above target: lower...
    assert ctl.applied == 0.0  # ...and no bonus while above
    for _ in range(5):
        ctl.update(2.0)
    assert ctl.coef == 0.0  # clamped at coef_min
    assert ctl.update(1.0) == pytest.approx(0.05)  # at target counts as below (as TRL)
    assert ctl.applied == pytest.approx(0.05) and ctl.last_entropy == 1.0
