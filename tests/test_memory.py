"""Memory stays bounded by the size of the export, whatever its shape (issue 14, item 12).

Reading an export holds the parsed plays (Arrow columns, a fraction of the JSON) and
one window of text with its rows at a time, never a whole file's rows as Python
objects. Peak memory is measured in a fresh process (its largest resident set), so
the figure is what the operating system sees, not what Python thinks it allocated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import orjson
import pytest

from tunetrust import ExportError
from tunetrust.formats.package import open_package
from tunetrust.settings import ImportLimits

from .factories import extended_row, fabricated_rows, json_bytes

MB = 1_000_000

# The stated bound (docs/formats.md): reading a JSON file grows memory by at most
# MEMORY_MULTIPLE × its size, plus a fixed allowance for one window of rows.
MEMORY_MULTIPLE = 1.0
FIXED_ALLOWANCE = 96 * 1024 * 1024

_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from tunetrust import Settings, init_home
    from tunetrust.ingest.pipeline import read_package

    def hwm():  # this process's peak resident set (ru_maxrss keeps the parent's over exec)
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) * 1024 for x in fh if x.startswith("VmHWM:"))

    home = init_home(Settings(home=Path(sys.argv[2])))
    base = hwm()
    read = read_package(home, [Path(sys.argv[1])])
    peak = hwm()
    rows = sum(p.table.num_rows for _, p in read.parsed)
    print(json.dumps({"base": base, "peak": peak, "rows": rows}))
    """
)


def _big_history(path: Path, target_bytes: int) -> int:
    """An extended-history file of about ``target_bytes`` (distinct rows, repeated)."""
    rows = fabricated_rows(2_000, seed=7)
    one = orjson.dumps(rows, option=orjson.OPT_INDENT_2)
    copies = max(1, target_bytes // len(one))
    with path.open("wb") as fh:
        fh.write(b"[")
        for i in range(copies):
            fh.write(b",\n" if i else b"\n")
            fh.write(one[1:-1].strip())  # the rows without the list's brackets
        fh.write(b"\n]\n")
    return copies * len(rows)


def _measure(tmp_path: Path, export: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(export), str(tmp_path / "home")],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_reading_a_large_file_stays_within_the_stated_multiple(tmp_path: Path) -> None:
    export = tmp_path / "Streaming_History_Audio_2021-2024_0.json"
    rows = _big_history(export, 60 * MB)
    size = export.stat().st_size
    got = _measure(tmp_path, export)
    assert got["rows"] == rows
    growth = got["peak"] - got["base"]
    bound = MEMORY_MULTIPLE * size + FIXED_ALLOWANCE
    assert growth <= bound, (
        f"reading {size / MB:.0f} MB grew memory by {growth / MB:.0f} MB "
        f"({growth / size:.1f}× the file), over the bound of {bound / MB:.0f} MB"
    )


# --- folders get the limits zips get ------------------------------------------------


def _both(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, Path]:
    folder = tmp_path / "MyData"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    zpath = tmp_path / "export.zip"
    with zipfile.ZipFile(zpath, "w") as zf:  # stored: the ratio guard is not what is tested
        for name, data in files.items():
            zf.writestr(name, data)
    return folder, zpath


@pytest.mark.parametrize(
    ("limits", "files", "message"),
    [
        (
            ImportLimits(max_total_bytes=1_000_000),
            {f"endsong_{i}.json": b"[" + b" " * 400_000 + b"]" for i in range(3)},
            "over the limit of 1,000,000",
        ),
        (
            ImportLimits(max_entries=3),
            {f"endsong_{i}.json": b"[]" for i in range(4)},
            "more than 3",
        ),
        (
            # a file over the per-file limit is refused when the package is opened,
            # even one that would never be read (a folder's sizes are known exactly)
            ImportLimits(max_file_bytes=1_000),
            {
                "endsong_0.json": json_bytes([extended_row("b")]),
                "Playlist1.json": b"[" + b" " * 5_000 + b"]",
            },
            "Playlist1.json: the file is larger than the limit of 1,000 bytes",
        ),
    ],
    ids=["total", "count", "file"],
)
def test_a_folder_over_the_limits_is_refused_like_a_zip(
    tmp_path: Path, limits: ImportLimits, files: dict[str, bytes], message: str
) -> None:
    folder, zpath = _both(tmp_path, files)
    for path in (folder, zpath):
        with pytest.raises(ExportError) as info:
            with open_package([path], limits):
                pass
        assert message in str(info.value), path
