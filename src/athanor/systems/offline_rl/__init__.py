"""Offline RL on the point maze: the environment wrapper, tasks and rollouts (maze) and the IQL agents (iql)."""
