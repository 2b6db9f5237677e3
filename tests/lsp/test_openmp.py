"""The server shortens OpenMP's spin after model calls, unless the user tuned OpenMP themselves."""

from __future__ import annotations

from lsp.__main__ import OPENMP_SPIN_COUNT, quiet_openmp


def test_the_spin_is_shortened_by_default():
    environ: dict[str, str] = {}
    quiet_openmp(environ)
    assert environ == {"GOMP_SPINCOUNT": OPENMP_SPIN_COUNT}


def test_a_users_openmp_settings_win():
    for mine in ({"GOMP_SPINCOUNT": "infinite"}, {"OMP_WAIT_POLICY": "active"}):
        environ = dict(mine)
        quiet_openmp(environ)
        assert environ == mine
