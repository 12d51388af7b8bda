"""Test-session settings: one torch thread.

The tests run tiny graphs, where thread start-up and contention cost more than they save
(the DGI tests take 4-11 s each with 2 threads on a busy 2-core machine, 0.1-0.3 s with 1).
"""

import torch

torch.set_num_threads(1)
