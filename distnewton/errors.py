"""Errors and exit codes shared by every rank.

Exit codes (documented in the README): 0 done, 1 internal error, 2 user error
(bad config, bad data, bad arguments), 3 stopped by SIGTERM/SIGUSR1 with a
checkpoint written (``distnewton run --resume FILE`` continues), 4 the run
finished but its result file could not be written: the model and history are
in the fallback file named on stderr (``distnewton recover FILE``).
"""

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_STOPPED = 3
EXIT_SALVAGED = 4


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2.

    The message names the file and line (``FILE:LINE: what``), the config key
    (``algorithm.L: ...``) or the argument at fault.
    """

    exit_code = EXIT_USER
