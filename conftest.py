"""pytest set-up shared by the unit tests and the nbval run over chapters/: parallel workers start their
Jupyter kernels one at a time (see tools/kernel_lock.py), so two kernels never race for the same port."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tools"))

from kernel_lock import serialize_nbval_kernel_starts  # noqa: E402

serialize_nbval_kernel_starts()
