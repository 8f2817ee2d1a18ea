"""Adversarial corpus, class *outputs*: a result file is claimed, never clobbered
or lost (tests/support/corpus.py runs each case)."""

import pytest

from support.corpus import Case, check, params

CASES = [
    Case("output exists without --overwrite", files={"out.h5": "precious"},
         message="{tmp}/out.h5: exists (use --overwrite"),
    Case("output is a folder", files={"out.h5/x": "x"},
         message="{tmp}/out.h5: output path is a directory"),
]


@pytest.mark.parametrize("case", params(CASES, "outputs"))
def test_outputs(case, tmp_path):
    check(case, tmp_path)

