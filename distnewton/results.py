"""Compatibility: the result file's reader and writer live in :mod:`distnewton.io`.

``distnewton.results.load`` (documented since 0.1) and the names below stay
importable from here; new code imports from :mod:`distnewton.io`.
"""

from .io.read import Run, load, open_h5, reaching, reaching_loss  # noqa: F401
from .io.record import History  # noqa: F401
from .io.schema import (BASE_COLUMNS, TIMING_COLUMNS, check_history,  # noqa: F401
                        check_version, clean_attr, clean_text)
from .io.write import check_output_path, column_arrays, write_result  # noqa: F401
