"""Pure quota and fair-share mathematics: quota trees, borrowing and lending, shares, decay.

Nothing in this package performs I/O or imports a framework; every function is deterministic
in its arguments, so the scheduling cycle, the simulator and the tests share one implementation.
"""
