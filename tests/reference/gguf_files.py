"""Shared by the GGUF test tools (hf_to_gguf.py, slice_gguf.py): writing a file whole or not at
all, and importing gguf-py."""

import os
import pathlib
import sys
import tempfile


def write_atomically(out, write):
    """Calls write(path) on a temporary file beside `out`, then renames it to `out` with the
    permissions the umask gives a new file; on any error the temporary file is removed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(out)}.", dir=os.path.dirname(os.path.abspath(out)))
    os.close(fd)
    try:
        write(pathlib.Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def import_gguf(gguf_py_dir):
    """gguf-py, llama.cpp's Python package, from the directory tests/llama/extract_gguf_py.sh made."""
    sys.path.insert(0, gguf_py_dir)
    import gguf

    return gguf


def exit_code(prog, run, refusals):
    """Runs run(); a refusal (an exception of the types `refusals`) is printed as `prog: message`
    on stderr with exit code 2, as moeslice's own refusals are. Returns the exit code."""
    try:
        run()
    except refusals as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    return 0
