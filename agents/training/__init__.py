"""SFT and entropy-regulated RL on TRL."""
