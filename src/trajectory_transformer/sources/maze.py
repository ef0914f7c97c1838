"""A scripted PointMaze controller (`collect.policy=maze`): a shortest path over the maze's cells,
then a PD controller towards the next cell on it.

Gymnasium-Robotics' PointMaze envs (PointMaze_UMaze-v3, _Medium-v3, _Large-v3, ...) observe a Dict:
`observation` = [x, y, vx, vy] of a force-actuated ball, `achieved_goal` = [x, y], `desired_goal` =
the goal's [x, y]; an action is the force along x and y in [-1, 1]. The maze is a grid of unit
cells (`env.unwrapped.maze.maze_map`: 1 = wall).

D4RL (and Minari's D4RL/pointmaze datasets) steer the ball with Q-iteration waypoints followed by a
PD controller that remembers which waypoints it has passed, so their behaviour policy is not
Markovian. This one is: each step it looks up the ball's cell, takes the neighbouring cell one step
closer to the goal's cell (breadth-first distances from the goal cell, cached per goal cell) and
pushes the ball towards that cell's centre, or towards the goal itself once in the goal's cell. The
ball and the next waypoint are always in two adjacent free cells, whose union is a rectangle, so
the straight line between them never crosses a wall. A Markovian behaviour policy is one that
`tt eval --agent behaviour` can rebuild exactly from the dataset's collect record.

Measured here (gymnasium-robotics 1.4.2, registered envs: random start and goal cells, reset
seeds 0-49, success = the ball within 0.45 of the goal before the time limit): 50/50 episodes on
each of PointMaze_UMaze-v3, _Medium-v3 and _Large-v3, both without noise and with collect.noise=0.5
(D4RL's action noise); mean (max) steps to the goal 58 (125), 105 (218), 169 (356) without noise,
63 (132), 112 (231), 181 (361) with it, against time limits of 300, 600 and 800 steps. 30 episodes
each with noise 1.0 also all reached it. D4RL-style datasets made with it: sources/pointmaze.py.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from ..errors import TTError

__all__ = ["MazeController", "goal_distances", "maze_policy"]

_KEYS = ("observation", "achieved_goal", "desired_goal")
_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (row, col) moves: up, down, left, right


def goal_distances(free: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Breadth-first steps from every free cell to `goal` over 4-neighbours (inf: wall/unreachable)."""
    dist = np.full(free.shape, np.inf)  # (rows, cols)
    if not free[goal]:
        return dist
    dist[goal] = 0.0
    queue = deque([goal])
    while queue:
        r, c = queue.popleft()
        for dr, dc in _STEPS:
            nr, nc = r + dr, c + dc
            inside = 0 <= nr < free.shape[0] and 0 <= nc < free.shape[1]
            if inside and free[nr, nc] and dist[nr, nc] == np.inf:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))
    return dist


class MazeController:
    """Shortest path over cells + PD control of the ball; a batch of Dict observations -> actions.

    `kp` pulls towards the waypoint, `kd` damps the velocity (action = kp·(waypoint − pos) −
    kd·vel, clipped to [-1, 1]). The defaults are D4RL maze2d's gains (p 10, d -1); with them
    every measured episode reached its goal (module docstring), so they were not tuned further.
    """

    def __init__(
        self,
        maze_map: list[list[Any]],
        scale: float = 1.0,
        kp: float = 10.0,
        kd: float = 1.0,
    ) -> None:
        self.free = np.array([[cell != 1 for cell in row] for row in maze_map], dtype=bool)
        if not self.free.any():
            raise TTError("collect.policy=maze: the maze has no free cell")
        self.scale, self.kp, self.kd = float(scale), float(kp), float(kd)
        rows, cols = self.free.shape
        self._x0 = cols / 2 * self.scale  # the maze is centred on the origin
        self._y0 = rows / 2 * self.scale
        self._dist: dict[tuple[int, int], np.ndarray] = {}
        free_cells = np.argwhere(self.free)  # (F, 2) rows, cols
        self._free_cells = free_cells
        self._free_xy = np.stack([self.cell_xy(tuple(rc)) for rc in free_cells])  # (F, 2)

    def cell_xy(self, cell: tuple[int, int]) -> np.ndarray:
        """Centre (x, y) of a (row, col) cell (as gymnasium-robotics' `cell_rowcol_to_xy`)."""
        return np.array(
            [(cell[1] + 0.5) * self.scale - self._x0, self._y0 - (cell[0] + 0.5) * self.scale]
        )

    def cell_of(self, xy: np.ndarray) -> tuple[int, int]:
        """The free (row, col) cell holding point `xy`; the nearest free cell if it is in a wall."""
        r = int(np.floor((self._y0 - xy[1]) / self.scale))
        c = int(np.floor((xy[0] + self._x0) / self.scale))
        if 0 <= r < self.free.shape[0] and 0 <= c < self.free.shape[1] and self.free[r, c]:
            return r, c
        nearest = int(np.argmin(np.sum((self._free_xy - xy) ** 2, axis=1)))
        row, col = self._free_cells[nearest]
        return int(row), int(col)

    def distances(self, goal: tuple[int, int]) -> np.ndarray:
        if goal not in self._dist:
            self._dist[goal] = goal_distances(self.free, goal)
        return self._dist[goal]

    def waypoint(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Where to steer the ball at `pos` now: the goal in its cell, else the next cell's centre."""
        cell, goal_cell = self.cell_of(pos), self.cell_of(goal)
        if cell == goal_cell:
            return goal
        dist = self.distances(goal_cell)
        best, best_d = cell, dist[cell]
        for dr, dc in _STEPS:
            r, c = cell[0] + dr, cell[1] + dc
            if 0 <= r < dist.shape[0] and 0 <= c < dist.shape[1] and dist[r, c] < best_d:
                best, best_d = (r, c), dist[r, c]
        if best == cell:  # the goal cannot be reached from here: head for it anyway
            return goal
        return self.cell_xy(best)

    def __call__(self, obs: Any) -> np.ndarray:
        if not isinstance(obs, dict) or any(k not in obs for k in _KEYS):
            raise TTError(
                "collect.policy=maze: expects PointMaze Dict observations with the keys "
                f"{list(_KEYS)}; use it with a gymnasium-robotics PointMaze env"
            )
        state = np.asarray(obs["observation"], np.float64).reshape(-1, 4)  # (N, 4) x, y, vx, vy
        goals = np.asarray(obs["desired_goal"], np.float64).reshape(-1, 2)  # (N, 2)
        targets = np.stack([self.waypoint(s[:2], g) for s, g in zip(state, goals)])  # (N, 2)
        action = self.kp * (targets - state[:, :2]) - self.kd * state[:, 2:]
        return np.clip(action, -1.0, 1.0).astype(np.float32)  # (N, 2)


def maze_policy(env: gym.Env[Any, Any]) -> MazeController:
    """The controller for this PointMaze env, reading its maze layout (TTError for other envs)."""
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    maze = getattr(env.unwrapped, "maze", None)
    space = env.observation_space
    is_point = (
        maze is not None
        and isinstance(space, gym.spaces.Dict)
        and all(k in space.spaces for k in _KEYS)
        and getattr(space.spaces["observation"], "shape", None) == (4,)
        and getattr(env.action_space, "shape", None) == (2,)
    )
    if not is_point:
        raise TTError(
            f"collect.policy=maze: {name} is not a PointMaze env; use it with a gymnasium-robotics "
            "PointMaze env, e.g. collect.env=PointMaze_Medium-v3"
        )
    assert maze is not None
    return MazeController(maze.maze_map, float(maze.maze_size_scaling))
