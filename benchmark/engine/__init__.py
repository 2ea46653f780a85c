"""A warm engine for `membench run`: the imports of torch and transformers paid once, not per run.

A fresh `membench run` that must compute features spends about 2.5 s importing torch and
transformers, and 0.3 s starting the interpreter and the harness, before forward passes that
take 4-5 s on the demo. `membench engine start` starts one server per
MEMBENCH_HOME that has imported the heavy third-party libraries (``PRELOAD``) and membench's
modules, then waits. A `membench run` that finds it sends its arguments, ``sys.path``, working
folder, environment, umask and standard streams (the file descriptors themselves, over a Unix
socket) and exits with the status of a child the server forks for it. The child takes the
client's streams, folder, environment and path and runs the command as a fresh process would.
The server has imported membench's own modules too (``OWN_PRELOAD`` and the command modules,
nothing run); a child reuses them only while none of their files has changed since and the
client's ``benchmark`` package is the server's: otherwise it drops every ``benchmark`` module
and imports them anew, so an edited scorer is always what runs. Results are the same as
without the engine (a test compares them file by file).

A run takes the engine only when it would behave exactly as a fresh process; otherwise it runs
in-process as always, saying why under ``-v``:

- a different Python interpreter or interpreter flags, or a different file for any preloaded
  library: as the client resolves it (another virtual environment), or changed on disk since
  the server imported it (an upgrade changes its modification time);
- a different environment (only the shell's bookkeeping variables, ``VOLATILE``, are ignored:
  libraries read variables such as ``HF_HUB_OFFLINE`` at import, so they must match);
- different resource limits, CPU affinity or niceness;
- a run on a GPU (``--device cuda...``): CUDA cannot be used in a child forked from a process
  that touched it, and on a GPU the imports are a small part of a run anyway;
- ``MEMBENCH_ENGINE=off`` in the environment.

Trust: the socket lives in ``MEMBENCH_HOME/engine`` (mode 0700) and the server serves only
peers of its own uid (``SO_PEERCRED``); a client, in turn, sends nothing (its environment holds
tokens) to a socket that another user serves, whatever the path led to. Only `membench run` is served; submitted code (`evaluate`,
the worker) never runs in it. Ctrl-C and termination of the client are passed to the child's
process group, and a client that dies without a word (``SIGKILL``) takes its child with it (the
server sees the connection close). The server exits after ``--idle-minutes`` without a request,
on `membench engine stop`, or on SIGTERM, removing its socket.

Protocol: one request per connection, a 4-byte big-endian length and a JSON object (with the
three stream descriptors as ancillary data for ``run``); answers are JSON lines:
``{"pid": N}`` when the child starts, then ``{"exit": CODE}`` when it ends (128 + the signal
for a child killed by one).
"""

from .client import delegate, ping, start, stop, usable_here
from .protocol import SERVED, EngineError, ask, differences, fingerprint, socket_path

__all__ = ["SERVED", "EngineError", "ask", "delegate", "differences", "fingerprint", "ping", "socket_path", "start",
           "stop", "usable_here"]
