"""Run one fuzz target under atheris (libFuzzer): `python -m tests.fuzz.fuzz TARGET [libFuzzer args]`.

The scanner's modules are imported under `atheris.instrument_imports`, so
libFuzzer's `cov:` counts edges in the scanner's Python code as well as in native extensions
built with coverage."""
from __future__ import annotations

import sys


def main() -> None:
    import atheris

    name = sys.argv.pop(1)
    # Only the scanner's own modules are instrumented (instrumenting every loaded module takes
    # minutes at start-up); the native parsers report their own coverage when built with it.
    with atheris.instrument_imports(include=["scanner"]):
        from tests.fuzz.targets import targets

        run = targets()[name]
        run(b"")  # import what the target reaches lazily inside the instrumenting block
        run(b"PK\x03\x04" + b"\x00" * 64)
    atheris.Setup(sys.argv, run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
