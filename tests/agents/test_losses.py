"""Hand-computed checks of the entropy-regulation losses and masks."""

from __future__ import annotations

import math

import pytest
import torch

from agents.training.losses import (
    AdaptiveEntropyCoef,
    ClipCovConfig,
    KLCovConfig,
    clip_cov_select,
    entropy_bonus,
    forking_mask,
    kl_cov_select,
    planning_boost,
    policy_loss,
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


def _grad(**kwargs: object) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    logp = kwargs.pop("logp", LOGP).clone().requires_grad_(True)  # type: ignore[attr-defined]
    loss, stats = policy_loss(logp, **kwargs)  # type: ignore[arg-type]
    loss.backward()
    assert logp.grad is not None
    return loss.detach(), logp.grad, stats


# --- forking_mask -------------------------------------------------------------------------


def test_forking_mask_keeps_top_quantile_and_ignores_masked_tokens() -> None:
    ent = torch.tensor([[0.1, 2.0, 0.5, 3.0, 9.0], [8.0, 0.2, 2.5, 0.3, 1.5]])
    # Valid sorted: 0.1 0.2 0.3 0.5 1.5 2.0 2.5 3.0 (N=8); masked 9.0 and 8.0 are the largest.
    # rho=0.25: position 0.75*7=5.25 -> threshold 2.0 + 0.25*(2.5-2.0) = 2.125 -> {3.0, 2.5}.
    got = forking_mask(ent, MASK, rho=0.25)
    want = torch.tensor([[0, 0, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=torch.bool)
    assert got.dtype == torch.bool
    assert torch.equal(got, want)
    # rho=0.5: position 3.5 -> threshold 0.5 + 0.5*(1.5-0.5) = 1.0 -> {2.0, 3.0, 2.5, 1.5}.
    want_half = torch.tensor([[0, 1, 0, 1, 0], [0, 0, 1, 0, 1]], dtype=torch.bool)
    assert torch.equal(forking_mask(ent, MASK, rho=0.5), want_half)
    # rho=1 keeps every valid token and nothing else.
    assert torch.equal(forking_mask(ent, MASK, rho=1.0), MASK.bool())


def test_forking_mask_default_rho_keeps_top_20_percent() -> None:
    ent = torch.tensor([[0.9, 0.1, 0.5, 0.7, 0.3], [0.2, 1.0, 0.4, 0.6, 0.8]])
    # N=10, position 0.8*9=7.2 -> threshold 0.8 + 0.2*(0.9-0.8) = 0.82 -> {0.9, 1.0}.
    want = torch.tensor([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(forking_mask(ent, torch.ones(2, 5)), want)


def test_forking_mask_ties_at_threshold_are_kept() -> None:
    ent = torch.tensor([[1.0, 1.0, 1.0, 1.0, 5.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    assert torch.equal(forking_mask(ent, mask, rho=0.2), mask.bool())


def test_forking_mask_no_valid_tokens_and_bad_rho() -> None:
    assert not forking_mask(torch.rand(2, 5), torch.zeros(2, 5)).any()
    with pytest.raises(ValueError):
        forking_mask(torch.rand(2, 5), torch.ones(2, 5), rho=1.5)


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


# --- policy_loss --------------------------------------------------------------------------


def test_on_policy_loss_is_minus_mean_advantage_and_reinforce_gradient() -> None:
    adv = torch.tensor([1.5, -0.5])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float32)
    logp = torch.tensor([[-0.2, -1.0, -3.0, -0.7], [-2.0, -0.1, -0.4, -1.3]])
    loss, grad, stats = _grad(logp=logp, old_logp=logp.clone(), advantages=adv, mask=mask)
    # dapo: -(3*1.5 + 2*(-0.5)) / 5 = -0.7; REINFORCE gradient -A_t / N on valid tokens.
    assert loss.item() == pytest.approx(-0.7)
    want = torch.tensor([[-0.3, -0.3, -0.3, 0.0], [0.1, 0.1, 0.0, 0.0]])
    torch.testing.assert_close(grad, want)
    assert stats == {
        "clip_cov_fraction": 0.0,
        "kl_cov_fraction": 0.0,
        "kl_cov_penalty": 0.0,
        "clip_ratio": 0.0,
    }
    # grpo: per-sequence mean then batch mean: -(1.5 + (-0.5)) / 2 = -0.5.
    loss, grad, _ = _grad(
        logp=logp, old_logp=logp.clone(), advantages=adv, mask=mask, loss_type="grpo"
    )
    assert loss.item() == pytest.approx(-0.5)
    want = torch.tensor([[-0.25, -0.25, -0.25, 0.0], [0.125, 0.125, 0.0, 0.0]])
    torch.testing.assert_close(grad, want)


def test_masked_tokens_get_exactly_zero_gradient() -> None:
    old = LOGP.clone()
    old[0, 4] = NAN  # garbage old log-probs on masked tokens
    old[1, 0] = float("inf")
    logp_a = LOGP.clone()
    logp_b = LOGP.clone()
    logp_b[0, 4] = 80.0  # masked log-probs change wildly
    logp_b[1, 0] = -80.0
    kw = dict(old_logp=old, advantages=ADV, mask=MASK, kl_cov=KLCovConfig(ratio=0.25))
    loss_a, grad_a, _ = _grad(logp=logp_a, **kw)
    loss_b, grad_b, _ = _grad(logp=logp_b, **kw)
    assert torch.isfinite(loss_a) and loss_a.item() == loss_b.item()
    assert torch.equal(grad_a, grad_b)
    assert grad_a[0, 4].item() == 0.0 and grad_a[1, 0].item() == 0.0
    assert torch.isfinite(grad_a).all()


def test_clip_cov_zeroes_gradient_exactly_on_selected_tokens() -> None:
    g = torch.Generator().manual_seed(3)
    loss, grad, stats = _grad(
        old_logp=LOGP.clone(),
        advantages=ADV,
        mask=MASK,
        clip_cov=ClipCovConfig(ratio=0.25, lb=1.0, ub=5.0),
        generator=g,
    )
    sel = clip_cov_select(COV, MASK, 0.25, 1.0, 5.0, torch.Generator().manual_seed(3))
    assert int(sel.sum()) == 2 and not (sel & ~CANDIDATES).any()
    plain = torch.where(MASK.bool(), -ADV / 8.0, torch.zeros(()))  # on-policy PPO gradient
    want = torch.where(sel, torch.zeros(()), plain)
    assert torch.equal(grad == 0, sel | ~MASK.bool())
    torch.testing.assert_close(grad, want)
    # Selected tokens stay in the denominator (8), their loss is 0.
    assert loss.item() == pytest.approx(float((-ADV * MASK * ~sel).sum() / 8.0))
    assert stats["clip_cov_fraction"] == pytest.approx(2 / 8)


def test_clip_cov_skips_tokens_already_clipped_by_ratio() -> None:
    old = LOGP.clone()
    old[0, 0] = -0.5  # t1: ratio e^0.5 > 1.2 with A=2 > 0 -> PPO-clipped, not eligible
    loss, grad, stats = _grad(
        old_logp=old,
        advantages=ADV,
        mask=MASK,
        clip_cov=ClipCovConfig(ratio=0.9),
        generator=torch.Generator().manual_seed(0),
    )
    # Eligible: t2, t3 only; int(0.9*8) = 7 > 2 -> both (t1 would be taken too if it were
    # eligible). t1 contributes -2*1.2 with no gradient.
    # Remaining on-policy tokens: t4..t8 give -A = 1 - 0.5 + 0.5 - 3 + 3 = 1.
    assert loss.item() == pytest.approx((-2.4 + 1.0) / 8)
    want = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0], [0.0, -0.5, 0.5, -3.0, 3.0]]) / 8
    torch.testing.assert_close(grad, want)
    assert stats["clip_cov_fraction"] == pytest.approx(2 / 8)
    assert stats["clip_ratio"] == pytest.approx(1 / 8)


def test_kl_cov_adds_penalty_exactly_on_top_k_tokens() -> None:
    delta = torch.full((2, 5), 0.1)
    delta[0, 0] = 0.5  # t1 would be PPO-clipped; KL-Cov uses the unclipped loss there
    old = LOGP - delta
    beta = 2.0
    loss, grad, stats = _grad(
        old_logp=old, advantages=ADV, mask=MASK, kl_cov=KLCovConfig(ratio=0.25, beta=beta)
    )
    # k = int(0.25*8) = 2: top covariances are t1 (4) and t2 (4).
    r1, r = math.exp(0.5), math.exp(0.1)
    # t1: -2*r1 + 2*0.5; t2: 2r + 2*0.1; others -A*r with sum(-A) over t3..t8 = 0.
    assert loss.item() == pytest.approx((-2 * r1 + 1.0 + 2 * r + 0.2) / 8, rel=1e-6)
    want = torch.tensor(
        [[-2 * r1 + beta, 2 * r + beta, -r, r, 0.0], [0.0, -0.5 * r, 0.5 * r, -3 * r, 3 * r]]
    )
    torch.testing.assert_close(grad, want / 8)
    assert stats["kl_cov_fraction"] == pytest.approx(2 / 8)
    assert stats["kl_cov_penalty"] == pytest.approx((2 * 0.5 + 2 * 0.1) / 2)
    assert stats["clip_ratio"] == 0.0
    # Without KL-Cov, t1 is clipped (zero gradient) and there is no penalty.
    loss0, grad0, stats0 = _grad(old_logp=old, advantages=ADV, mask=MASK)
    assert grad0[0, 0].item() == 0.0
    assert grad0[0, 1].item() == pytest.approx(2 * r / 8)
    assert stats0["clip_ratio"] == pytest.approx(1 / 8)


def test_infinite_epsilon_disables_ratio_clip() -> None:
    old = LOGP - 0.5
    inf = float("inf")
    loss, grad, stats = _grad(
        old_logp=old, advantages=ADV, mask=MASK, epsilon_low=inf, epsilon_high=inf
    )
    r = math.exp(0.5)
    torch.testing.assert_close(grad, -ADV * MASK * r / 8)
    assert stats["clip_ratio"] == 0.0


def test_clip_higher_bounds() -> None:
    # One token, A=1: ratio 1.25 is inside [0.8, 1.28] (no clip) but outside [0.8, 1.2].
    logp = torch.tensor([[math.log(1.25)]])
    kw = dict(old_logp=torch.zeros(1, 1), advantages=torch.tensor([1.0]), mask=torch.ones(1, 1))
    _, grad, stats = _grad(logp=logp, epsilon_high=0.28, **kw)
    assert grad.item() == pytest.approx(-1.25) and stats["clip_ratio"] == 0.0
    _, grad, stats = _grad(logp=logp, epsilon_high=0.2, **kw)
    assert grad.item() == 0.0 and stats["clip_ratio"] == 1.0


def test_keep_mask_and_normalizer() -> None:
    keep = torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=torch.bool)
    loss, grad, _ = _grad(
        old_logp=LOGP.clone(), advantages=ADV, mask=MASK, keep_mask=keep, normalizer=16.0
    )
    # Only t1 (A=2) and t8 (A=-3) carry loss, divided by the given normalizer.
    assert loss.item() == pytest.approx((-2.0 + 3.0) / 16)
    want = torch.zeros(2, 5)
    want[0, 0], want[1, 4] = -2.0 / 16, 3.0 / 16
    torch.testing.assert_close(grad, want)


def test_bad_loss_type() -> None:
    with pytest.raises(ValueError):
        policy_loss(LOGP, LOGP, ADV, MASK, loss_type="bnpo")  # type: ignore[arg-type]


# --- entropy bonus and adaptive coefficient -----------------------------------------------


def test_entropy_bonus_mean_over_valid_tokens() -> None:
    ent = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, NAN]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [0, 1, 0]])
    h = entropy_bonus(ent, mask)
    assert h.item() == pytest.approx(8.0 / 3.0)
    h.backward()
    assert ent.grad is not None
    want = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]) / 3.0
    torch.testing.assert_close(ent.grad, want)
    assert entropy_bonus(torch.ones(2, 3), torch.zeros(2, 3)).item() == 0.0


def test_adaptive_entropy_coef_direction_and_clamping() -> None:
    ctl = AdaptiveEntropyCoef(target=1.0, coef=0.1, step=0.05, coef_min=0.0, coef_max=0.2)
    assert ctl.update(0.5) == pytest.approx(0.15)  # below target: raise
    assert ctl.update(0.5) == pytest.approx(0.2)
    assert ctl.update(0.5) == pytest.approx(0.2)  # clamped at coef_max
    assert ctl.update(2.0) == pytest.approx(0.15)  # above target: lower
    for _ in range(5):
        ctl.update(2.0)
    assert ctl.coef == 0.0  # clamped at coef_min
    assert ctl.effective(2.0) == 0.0
    ctl.update(1.0)  # at target counts as below (as TRL)
    assert ctl.coef == pytest.approx(0.05)
    assert ctl.effective(0.9) == pytest.approx(0.05)
    assert ctl.effective(1.1) == 0.0
    assert AdaptiveEntropyCoef(target=1.0, coef=5.0, coef_max=0.3).coef == 0.3
    with pytest.raises(ValueError):
        AdaptiveEntropyCoef(target=1.0, coef_min=0.5, coef_max=0.1)
