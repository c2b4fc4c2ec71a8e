"""Throw-away services for tests and benchmarks: a PostgreSQL cluster in a temp dir on loopback,
and a small file system to fill up (disk-full faults).

Shipped with the package (as pySigma ships test backends) so that `tests/reports` and
`bench/audit_bench.py` start the same thing. Needs the Debian `postgresql` binaries; as root it
runs them as `nobody`, because initdb refuses to run as root.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return Path(dirs[-1]) if dirs else None


class TempPostgres:
    """`TempPostgres().start()` … `.stop()`; raises FileNotFoundError without the binaries."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None or not (bindir / "pg_ctl").exists():
            raise FileNotFoundError("PostgreSQL binaries (Debian package postgresql) are not installed")
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="baomi-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "nobody"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, capture_output=True,
                       user=self.user, cwd=self.root, timeout=120)

    def start(self) -> TempPostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        self._pg_start()
        return self

    def _pg_start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port}"
                f" -c unix_socket_directories={self.root} -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "pg.log"),
                  "-w", "start")

    def restart(self, down: float = 1.0, mode: str = "fast") -> None:
        """Stop the server (`fast`: sessions are terminated mid-transaction; `immediate`: as if
        it crashed), stay down `down` seconds, start it again on the same port and data."""
        import time

        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        time.sleep(down)
        self._pg_start()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


class NoSmallFilesystem(RuntimeError):
    """Neither a tmpfs nor a loop-mounted file system could be mounted (not root, no mount)."""


@contextlib.contextmanager
def small_filesystem(mountpoint: str | Path, size_kb: int) -> Iterator[Path]:
    """Mount a file system of `size_kb` KiB at `mountpoint` (created) for disk-full faults: a
    tmpfs, else an ext4 image on a loop device. Needs root; raises NoSmallFilesystem (with why)
    when neither mounts. Unmounted on exit."""
    mnt = Path(mountpoint)
    mnt.mkdir(parents=True, exist_ok=True)
    image: Path | None = None
    why = []
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(mnt)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        why.append(f"tmpfs: {res.stderr.strip() or res.returncode}")
        image = mnt.with_name(mnt.name + ".img")
        with open(image, "wb") as fh:
            fh.truncate(size_kb * 1024)
        mk = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True, check=False)
        res = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True,
                             check=False) if mk.returncode == 0 else mk
        if res.returncode != 0:
            why.append(f"loop ext4: {res.stderr.strip() or res.returncode}")
            image.unlink(missing_ok=True)
            raise NoSmallFilesystem("; ".join(why))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        if image is not None:
            image.unlink(missing_ok=True)


def fill_up(directory: str | Path, leave: int = 0) -> Path:
    """Fill the file system holding `directory` with a file until at most `leave` bytes are free;
    returns the file (delete it to free the space)."""
    path = Path(directory) / "filler.bin"
    block = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
            if free <= leave:
                break
            try:
                os.write(fd, block[: max(1, min(len(block), free - leave))])
            except OSError:
                break
    finally:
        os.close(fd)
    return path
