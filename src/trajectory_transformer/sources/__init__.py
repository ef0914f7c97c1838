"""What makes datasets: `tt collect` (collect), behaviour policies, the maze planner, PPO behaviour
policies (behaviour), the D4RL-style recipes, PointMaze data, and the store's collect hints.

Importing this package registers the hints with the store (hints.py), so a missing dataset's error
names the command that makes it.
"""

from . import hints as hints
