"""The strategy-diversity bonus: rare correct strategies within a GRPO group earn more."""

from __future__ import annotations

import pytest

from agents.training.rewards import strategy_bonus


def test_rare_correct_strategies_earn_the_bonus_and_wrong_ones_nothing() -> None:
    groups = ["q1"] * 4 + ["q2"] * 2
    labels = [["entity"], ["entity"], ["keyword", "wrong_entity"], ["keyword"],
              ["verbatim"], ["verbatim"]]
    correct = [True, True, True, False, True, True]
    bonus = strategy_bonus(groups, labels, correct, coef=0.4)
    # q1: entity is shared by 2 of 4 episodes; ("keyword",) by 2 of 4 (the error label is no
    # strategy), but episode 3 was wrong. q2: one strategy for the whole group: no bonus.
    assert bonus == pytest.approx([0.2, 0.2, 0.2, 0.0, 0.0, 0.0])
    alone = strategy_bonus(["q"] * 4, [["entity"], ["bridge"], ["bridge"], ["bridge"]],
                           [True] * 4, coef=1.0)
    assert alone == pytest.approx([0.75, 0.25, 0.25, 0.25])
    with pytest.raises(ValueError, match="one group, label list and outcome per episode"):
        strategy_bonus(["q"], [], [True], coef=1.0)
